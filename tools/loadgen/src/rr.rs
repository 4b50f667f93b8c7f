//! Closed-loop request/response: each of `concurrency` workers owns a connection and
//! sends the next request as soon as the previous answer is read and checked.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use http_body_util::BodyExt;
use serde_json::{Value, json};

use crate::client::{self, Sender, Template};
use crate::procfs;
use crate::stats::{Errors, Latencies};
use crate::{Load, Span, Window};

#[derive(Debug, Args)]
pub(crate) struct RrArgs {
    #[command(flatten)]
    load: Load,
    #[command(flatten)]
    window: Window,
    /// The status every answer must have.
    #[arg(long, default_value_t = 200)]
    expect_status: u16,
    /// A string every answer's body must contain.
    #[arg(long)]
    expect_contains: Option<String>,
}

#[derive(Debug, Default)]
struct Tally {
    lat: Latencies,
    ok: u64,
    errors: Errors,
    reconnects: u64,
}

struct Shared {
    template: Template,
    span: Span,
    expect_status: u16,
    expect_contains: Vec<u8>,
    issued: AtomicU64,
    max_requests: u64,
    timeout: std::time::Duration,
}

pub(crate) async fn run(args: RrArgs) -> Result<Value> {
    let template = args.load.template().await?;
    let pids = args.load.pids()?;
    let span = args.window.span();
    let shared = Arc::new(Shared {
        template,
        span,
        expect_status: args.expect_status,
        expect_contains: args
            .expect_contains
            .clone()
            .unwrap_or_default()
            .into_bytes(),
        issued: AtomicU64::new(0),
        max_requests: args.window.max_requests,
        timeout: args.load.request_timeout(),
    });
    let workers: Vec<_> = (0..args.window.concurrency.max(1))
        .map(|_| tokio::spawn(worker(shared.clone())))
        .collect();
    tokio::time::sleep_until(span.start.into()).await;
    let meter = pids.cpu_meter();
    tokio::time::sleep_until(span.end.into()).await;
    let mut cpu = meter.finish(span.start.elapsed());
    let mut total = Tally::default();
    for w in workers {
        let t = w.await?;
        total.ok += t.ok;
        total.reconnects += t.reconnects;
        total.lat.merge(t.lat);
        total.errors.merge(t.errors);
    }
    procfs::per_request(&mut cpu, total.ok);
    let secs = (span.end - span.start).as_secs_f64();
    let mut out = args.load.output("rr")?;
    out.insert("concurrency".into(), json!(args.window.concurrency));
    out.insert("duration_s".into(), json!(secs));
    out.insert("ok".into(), json!(total.ok));
    out.insert("rps".into(), json!((total.ok as f64 / secs).round()));
    out.insert("latency".into(), total.lat.summary());
    out.insert("errors".into(), json!(total.errors.total()));
    out.insert("error_kinds".into(), total.errors.to_json());
    out.insert("reconnects".into(), json!(total.reconnects));
    out.insert("cpu".into(), cpu);
    let out = Value::Object(out);
    eprintln!(
        "rr {} c={} ok={} rps={} p50={}us p99={}us max={}us errors={}",
        args.load.url,
        args.window.concurrency,
        out["ok"],
        out["rps"],
        out["latency"]["p50_us"],
        out["latency"]["p99_us"],
        out["latency"]["max_us"],
        out["errors"]
    );
    Ok(out)
}

async fn worker(s: Arc<Shared>) -> Tally {
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
                Ok(Ok(c)) => {
                    if conn.is_some() {
                        t.reconnects += 1;
                    }
                    conn.insert(c)
                }
                Ok(Err(e)) => {
                    t.errors.add("connect", || format!("{e:#}"));
                    conn = None;
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    continue;
                }
                Err(_) => {
                    t.errors.add("connect", || "connect timed out".into());
                    conn = None;
                    continue;
                }
            },
        };
        if sender.ready().await.is_err() {
            // The server closed this keep-alive connection between requests: reconnect.
            conn = None;
            continue;
        }
        let t0 = Instant::now();
        let answer = tokio::time::timeout(s.timeout, async {
            let resp = sender.send_request(s.template.request()).await?;
            let status = resp.status();
            let body = resp.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, body))
        })
        .await;
        let t1 = Instant::now();
        match answer {
            Err(_) => {
                t.errors
                    .add("timeout", || format!("no answer in {:?}", s.timeout));
                conn = None;
            }
            Ok(Err(e)) => {
                t.errors.add("io", || e.to_string());
                conn = None;
            }
            Ok(Ok((status, body))) => {
                if status.as_u16() != s.expect_status {
                    t.errors.add("status", || {
                        format!("{status}: {}", String::from_utf8_lossy(&body))
                    });
                } else if !client::contains(&body, &s.expect_contains) {
                    t.errors
                        .add("body", || String::from_utf8_lossy(&body).into_owned());
                } else if s.span.counts(t1) {
                    t.ok += 1;
                    t.lat.push(t1 - t0);
                }
            }
        }
    }
    t
}
