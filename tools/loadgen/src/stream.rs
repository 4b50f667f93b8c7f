//! Streams: closed-loop SSE requests (time to the first delta, time to the end), and
//! many streams held open at once while the relay's memory is sampled.
//!
//! Two dialects are read: classchat's (`event: delta` … `event: done`) and the
//! OpenAI-style one Open WebUI speaks (`data: {chunk}` … `data: [DONE]`), where a "delta"
//! is a chunk with non-empty `content`. The check is a byte scan, equally cheap for both.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::{Args, ValueEnum};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, watch};

use crate::client::{self, Sender, Template};
use crate::procfs::{self, Pids};
use crate::stats::{Errors, Latencies};
use crate::{Load, Span, Window, secs};

/// Which SSE dialect the target speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Protocol {
    /// classchat: `event: delta` / `event: done` / `event: error`.
    Classchat,
    /// Open WebUI / OpenAI: `data: {"choices":[{"delta":{"content":..}}]}`, `data: [DONE]`.
    Openai,
}

/// Reads an SSE body line by line, across chunk boundaries.
#[derive(Debug)]
pub(crate) struct Scan {
    protocol: Protocol,
    pending: Vec<u8>,
    in_error_event: bool,
    pub(crate) deltas: u32,
    pub(crate) done: bool,
    pub(crate) error: Option<String>,
}

impl Scan {
    pub(crate) fn new(protocol: Protocol) -> Self {
        Self {
            protocol,
            pending: Vec::new(),
            in_error_event: false,
            deltas: 0,
            done: false,
            error: None,
        }
    }

    /// Feeds body bytes; true when they held the stream's first delta.
    pub(crate) fn feed(&mut self, data: &[u8]) -> bool {
        let before = self.deltas;
        self.pending.extend_from_slice(data);
        let mut start = 0;
        while let Some(i) = self.pending[start..].iter().position(|&b| b == b'\n') {
            let end = start + i;
            let line = self.pending[start..end].to_vec();
            self.line(line.strip_suffix(b"\r").unwrap_or(&line));
            start = end + 1;
        }
        self.pending.drain(..start);
        before == 0 && self.deltas > 0
    }

    fn line(&mut self, line: &[u8]) {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            self.in_error_event = false;
            return;
        };
        let (field, value) = (&line[..colon], &line[colon + 1..]);
        let value = value.strip_prefix(b" ").unwrap_or(value);
        match (self.protocol, field) {
            (Protocol::Classchat, b"event") => match value {
                b"delta" => self.deltas += 1,
                b"done" => self.done = true,
                b"error" => {
                    self.in_error_event = true;
                    self.error.get_or_insert_with(|| "error event".into());
                }
                _ => {}
            },
            (Protocol::Classchat, b"data") if self.in_error_event => {
                self.error = Some(String::from_utf8_lossy(value).into_owned());
            }
            (Protocol::Openai, b"data") => {
                if value == b"[DONE]" {
                    self.done = true;
                } else if has_content(value) {
                    self.deltas += 1;
                } else if client::contains(value, b"\"error\"") {
                    self.error = Some(String::from_utf8_lossy(value).into_owned());
                }
            }
            _ => {}
        }
    }
}

/// Whether an OpenAI chunk carries non-empty `"content"`.
fn has_content(chunk: &[u8]) -> bool {
    const KEY: &[u8] = b"\"content\":";
    let Some(at) = chunk.windows(KEY.len()).position(|w| w == KEY) else {
        return false;
    };
    let rest = chunk[at + KEY.len()..].trim_ascii_start();
    rest.first() == Some(&b'"') && rest.get(1).is_some_and(|&b| b != b'"')
}

#[derive(Debug, Args)]
pub(crate) struct StreamArgs {
    #[command(flatten)]
    load: Load,
    #[command(flatten)]
    window: Window,
    #[arg(long, value_enum)]
    protocol: Protocol,
    /// Deltas every stream must carry (0: at least one).
    #[arg(long, default_value_t = 0)]
    expect_deltas: u32,
}

#[derive(Debug, Default)]
struct Tally {
    first: Latencies,
    total: Latencies,
    ok: u64,
    deltas: u64,
    errors: Errors,
}

struct Shared {
    template: Template,
    protocol: Protocol,
    span: Span,
    expect_deltas: u32,
    issued: AtomicU64,
    max_requests: u64,
    timeout: Duration,
}

pub(crate) async fn run(args: StreamArgs) -> Result<Value> {
    let template = args.load.template().await?;
    let pids = args.load.pids()?;
    let span = args.window.span();
    let shared = Arc::new(Shared {
        template,
        protocol: args.protocol,
        span,
        expect_deltas: args.expect_deltas,
        issued: AtomicU64::new(0),
        max_requests: args.window.max_requests,
        timeout: args.load.request_timeout(),
    });
    let workers: Vec<_> = (0..args.window.concurrency.max(1))
        .map(|_| tokio::spawn(stream_worker(shared.clone())))
        .collect();
    tokio::time::sleep_until(span.start.into()).await;
    let meter = pids.cpu_meter();
    tokio::time::sleep_until(span.end.into()).await;
    let mut cpu = meter.finish(span.start.elapsed());
    let mut t = Tally::default();
    for w in workers {
        let w = w.await?;
        t.ok += w.ok;
        t.deltas += w.deltas;
        t.first.merge(w.first);
        t.total.merge(w.total);
        t.errors.merge(w.errors);
    }
    procfs::per_request(&mut cpu, t.ok);
    let secs = (span.end - span.start).as_secs_f64();
    let mut out = args.load.output("stream")?;
    out.insert("concurrency".into(), json!(args.window.concurrency));
    out.insert("duration_s".into(), json!(secs));
    out.insert("ok".into(), json!(t.ok));
    out.insert("streams_per_s".into(), json!((t.ok as f64 / secs).round()));
    out.insert(
        "deltas_per_stream".into(),
        json!(if t.ok == 0 {
            0.0
        } else {
            t.deltas as f64 / t.ok as f64
        }),
    );
    out.insert("first_delta".into(), t.first.summary());
    out.insert("total".into(), t.total.summary());
    out.insert("errors".into(), json!(t.errors.total()));
    out.insert("error_kinds".into(), t.errors.to_json());
    out.insert("cpu".into(), cpu);
    let out = Value::Object(out);
    eprintln!(
        "stream {} c={} ok={} first p50={}us p99={}us total p50={}us p99={}us deltas/stream={} errors={}",
        args.load.url,
        args.window.concurrency,
        out["ok"],
        out["first_delta"]["p50_us"],
        out["first_delta"]["p99_us"],
        out["total"]["p50_us"],
        out["total"]["p99_us"],
        out["deltas_per_stream"],
        out["errors"]
    );
    Ok(out)
}

async fn stream_worker(s: Arc<Shared>) -> Tally {
    let mut t = Tally::default();
    let mut conn: Option<Sender> = None;
    loop {
        if Instant::now() >= s.span.end
            || s.issued.fetch_add(1, Ordering::Relaxed) >= s.max_requests
        {
            break;
        }
        let sender = match conn.as_mut() {
            Some(c) if !c.is_closed() => c,
            _ => match tokio::time::timeout(s.timeout, client::connect(&s.template.target)).await {
                Ok(Ok(c)) => conn.insert(c),
                Ok(Err(e)) => {
                    t.errors.add("connect", || format!("{e:#}"));
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
                Err(_) => {
                    t.errors.add("connect", || "connect timed out".into());
                    continue;
                }
            },
        };
        if sender.ready().await.is_err() {
            conn = None;
            continue;
        }
        let t0 = Instant::now();
        let deadline = t0 + s.timeout;
        let resp = match tokio::time::timeout_at(
            deadline.into(),
            sender.send_request(s.template.request()),
        )
        .await
        {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                t.errors.add("io", || e.to_string());
                conn = None;
                continue;
            }
            Err(_) => {
                t.errors
                    .add("timeout", || "no response headers in time".into());
                conn = None;
                continue;
            }
        };
        if !resp.status().is_success() {
            let status = resp.status();
            let body = tokio::time::timeout_at(deadline.into(), resp.into_body().collect()).await;
            let body = match body {
                Ok(Ok(b)) => String::from_utf8_lossy(&b.to_bytes()).into_owned(),
                _ => String::new(),
            };
            t.errors.add("status", || format!("{status}: {body}"));
            continue;
        }
        let mut body = resp.into_body();
        let mut scan = Scan::new(s.protocol);
        let mut first = None;
        let end = loop {
            match tokio::time::timeout_at(deadline.into(), body.frame()).await {
                Err(_) => break Err(("timeout", "stream not finished in time".to_owned())),
                Ok(None) => break Ok(()),
                Ok(Some(Err(e))) => break Err(("io", e.to_string())),
                Ok(Some(Ok(frame))) => {
                    if let Some(d) = frame.data_ref()
                        && scan.feed(d)
                    {
                        first = Some(t0.elapsed());
                    }
                }
            }
        };
        let t1 = Instant::now();
        let problem = match end {
            Err(p) => {
                conn = None;
                Some(p)
            }
            Ok(()) => check(&scan, s.expect_deltas),
        };
        match (problem, first) {
            (Some((kind, msg)), _) => t.errors.add(kind, || msg),
            (None, Some(first)) => {
                if s.span.counts(t1) {
                    t.ok += 1;
                    t.deltas += u64::from(scan.deltas);
                    t.first.push(first);
                    t.total.push(t1 - t0);
                }
            }
            (None, None) => t.errors.add("no_delta", || "no delta".into()),
        }
    }
    t
}

/// What is wrong with a stream that ended, if anything.
fn check(scan: &Scan, expect_deltas: u32) -> Option<(&'static str, String)> {
    if let Some(e) = &scan.error {
        return Some(("error_event", e.clone()));
    }
    if !scan.done {
        return Some(("unfinished", "stream ended without done/[DONE]".into()));
    }
    if scan.deltas == 0 || (expect_deltas > 0 && scan.deltas != expect_deltas) {
        return Some((
            "deltas",
            format!("{} deltas, expected {expect_deltas}", scan.deltas),
        ));
    }
    None
}

#[derive(Debug, Args)]
pub(crate) struct HoldArgs {
    #[command(flatten)]
    load: Load,
    #[arg(long, value_enum)]
    protocol: Protocol,
    /// Streams to hold open at once.
    #[arg(long, short = 'n', default_value_t = 1000)]
    streams: usize,
    /// Connections being opened at the same time.
    #[arg(long, default_value_t = 256)]
    connect_parallel: usize,
    /// Seconds allowed for every stream to be open and to have its first delta.
    #[arg(long, default_value_t = 60.0)]
    open_timeout: f64,
    /// Seconds to sample memory once every stream is open.
    #[arg(long, default_value_t = 2.0)]
    sample: f64,
}

struct HoldShared {
    template: Template,
    protocol: Protocol,
    open_deadline: Instant,
    gate: Semaphore,
    ready: AtomicUsize,
    failed: AtomicUsize,
    ended_early: AtomicUsize,
    errors: std::sync::Mutex<Errors>,
}

impl HoldShared {
    fn fail(&self, kind: &'static str, msg: impl FnOnce() -> String) {
        self.failed.fetch_add(1, Ordering::SeqCst);
        self.errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .add(kind, msg);
    }
}

/// Opens `streams` streams, waits until each has had its first delta, samples the
/// metered processes' memory while all are open, then closes them.
pub(crate) async fn hold(args: HoldArgs) -> Result<Value> {
    let template = args.load.template().await?;
    let pids: Pids = args.load.pids()?;
    let n = args.streams.max(1);
    let baseline = pids.status_kb("VmRSS");
    let started = Instant::now();
    let shared = Arc::new(HoldShared {
        template,
        protocol: args.protocol,
        open_deadline: started + secs(args.open_timeout),
        gate: Semaphore::new(args.connect_parallel.max(1)),
        ready: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
        ended_early: AtomicUsize::new(0),
        errors: std::sync::Mutex::new(Errors::default()),
    });
    let (stop, stopped) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        tasks.spawn(hold_one(shared.clone(), stopped.clone()));
    }
    let mut peak = baseline.clone();
    let sample = |peak: &mut std::collections::BTreeMap<String, u64>| {
        for (k, v) in pids.status_kb("VmRSS") {
            let p = peak.entry(k).or_insert(0);
            *p = (*p).max(v);
        }
    };
    // Until every stream is open (or has failed), or time is up.
    while shared.ready.load(Ordering::SeqCst) + shared.failed.load(Ordering::SeqCst) < n
        && Instant::now() < shared.open_deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
        sample(&mut peak);
    }
    let open_s = started.elapsed().as_secs_f64();
    let ready_at_open = shared.ready.load(Ordering::SeqCst);
    let sample_until = Instant::now() + secs(args.sample);
    let mut open_rss = std::collections::BTreeMap::new();
    while Instant::now() < sample_until {
        tokio::time::sleep(Duration::from_millis(100)).await;
        sample(&mut peak);
        for (k, v) in pids.status_kb("VmRSS") {
            let p = open_rss.entry(k).or_insert(0u64);
            *p = (*p).max(v);
        }
    }
    let held = shared.ready.load(Ordering::SeqCst);
    let hwm = pids.status_kb("VmHWM");
    let _ = stop.send(true);
    let drained = tokio::time::timeout(Duration::from_secs(15), async {
        while tasks.join_next().await.is_some() {}
    })
    .await
    .is_ok();
    if !drained {
        tasks.abort_all();
    }
    // What the relay gives back once they are closed.
    tokio::time::sleep(secs(args.sample)).await;
    let after = pids.status_kb("VmRSS");

    let errors = shared
        .errors
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .to_json();
    let failed = shared.failed.load(Ordering::SeqCst);
    let ended_early = shared.ended_early.load(Ordering::SeqCst);
    let per_stream: serde_json::Map<String, Value> = peak
        .iter()
        .map(|(k, &p)| {
            let base = baseline.get(k).copied().unwrap_or(0);
            let per = if held == 0 {
                Value::Null
            } else {
                json!(procfs::round2(p.saturating_sub(base) as f64 / held as f64))
            };
            (k.clone(), per)
        })
        .collect();
    let mut out = args.load.output("hold")?;
    out.insert("streams".into(), json!(n));
    out.insert("held".into(), json!(held));
    out.insert("ready_when_sampled".into(), json!(ready_at_open));
    out.insert("open_s".into(), json!(procfs::round2(open_s)));
    out.insert("failed".into(), json!(failed));
    out.insert("ended_early".into(), json!(ended_early));
    out.insert("errors".into(), json!(failed + ended_early));
    out.insert("error_kinds".into(), errors);
    out.insert("rss_before_kb".into(), json!(baseline));
    out.insert("rss_peak_kb".into(), json!(peak));
    out.insert("rss_while_open_kb".into(), json!(open_rss));
    out.insert("hwm_kb".into(), json!(hwm));
    out.insert("rss_after_close_kb".into(), json!(after));
    out.insert("kb_per_stream".into(), Value::Object(per_stream));
    out.insert("drained".into(), json!(drained));
    let out = Value::Object(out);
    eprintln!(
        "hold {} n={} held={} failed={} ended_early={} open={:.1}s rss {} -> {} kB, kB/stream {}",
        args.load.url,
        n,
        held,
        failed,
        ended_early,
        open_s,
        out["rss_before_kb"],
        out["rss_peak_kb"],
        out["kb_per_stream"]
    );
    Ok(out)
}

async fn hold_one(s: Arc<HoldShared>, mut stop: watch::Receiver<bool>) {
    let deadline = s.open_deadline;
    // Open: connect and get the response headers, a limited number at a time.
    let opened = {
        let _permit = s.gate.acquire().await;
        tokio::time::timeout_at(deadline.into(), async {
            let mut sender = client::connect(&s.template.target).await?;
            let resp = sender.send_request(s.template.request()).await?;
            Ok::<_, anyhow::Error>((sender, resp))
        })
        .await
    };
    let (sender, resp) = match opened {
        Ok(Ok(x)) => x,
        Ok(Err(e)) => return s.fail("open", || format!("{e:#}")),
        Err(_) => return s.fail("open_timeout", || "not open in time".into()),
    };
    if !resp.status().is_success() {
        let status = resp.status();
        return s.fail("status", || status.to_string());
    }
    let mut body: Incoming = resp.into_body();
    let mut scan = Scan::new(s.protocol);
    // Wait for the first delta.
    loop {
        match tokio::time::timeout_at(deadline.into(), body.frame()).await {
            Err(_) => return s.fail("first_delta_timeout", || "no delta in time".into()),
            Ok(None) => return s.fail("ended", || "stream ended before a delta".into()),
            Ok(Some(Err(e))) => return s.fail("io", || e.to_string()),
            Ok(Some(Ok(frame))) => {
                if let Some(d) = frame.data_ref()
                    && scan.feed(d)
                {
                    break;
                }
            }
        }
        if let Some(e) = &scan.error {
            let e = e.clone();
            return s.fail("error_event", || e);
        }
    }
    s.ready.fetch_add(1, Ordering::SeqCst);
    // Hold: keep reading until told to stop; a stream that ends first was not held.
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            f = body.frame() => match f {
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    s.ended_early.fetch_add(1, Ordering::SeqCst);
                    s.ready.fetch_sub(1, Ordering::SeqCst);
                    break;
                }
            },
        }
    }
    drop(body);
    drop(sender);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classchat_events_are_counted_across_chunk_boundaries() {
        let mut s = Scan::new(Protocol::Classchat);
        assert!(!s.feed(b"event: del"));
        assert!(s.feed(b"ta\ndata: {\"text\":\"Hi\"}\n\n"));
        assert!(!s.feed(b"event: delta\ndata: {\"text\":\"!\"}\n\nevent: done\ndata: {}\n\n"));
        assert_eq!((s.deltas, s.done, s.error.is_none()), (2, true, true));
    }

    #[test]
    fn classchat_error_events_keep_their_data() {
        let mut s = Scan::new(Protocol::Classchat);
        s.feed(b"event: error\ndata: {\"code\":\"upstream_error\"}\n\n");
        assert_eq!(s.error.as_deref(), Some("{\"code\":\"upstream_error\"}"));
    }

    #[test]
    fn openai_chunks_with_empty_content_are_not_deltas() {
        let mut s = Scan::new(Protocol::Openai);
        assert!(!s.feed(
            b"data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n"
        ));
        assert!(s.feed(b"data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\r\n\r\n"));
        assert!(!s.feed(b"data: {\"choices\":[],\"usage\":{}}\n\ndata: [DONE]\n\n"));
        assert_eq!((s.deltas, s.done), (1, true));
        assert_eq!(check(&s, 0), None);
        assert!(check(&s, 20).is_some());
    }

    #[test]
    fn a_stream_without_done_is_unfinished() {
        let mut s = Scan::new(Protocol::Openai);
        s.feed(b"data: {\"content\": \"x\"}\n\n");
        assert_eq!(check(&s, 0).map(|p| p.0), Some("unfinished"));
    }
}
