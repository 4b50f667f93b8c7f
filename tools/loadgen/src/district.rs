//! A district's load: many sessions of many classes, each a student who signs in with their
//! class's code, then asks, reads the streamed reply, pauses, and now and then refreshes
//! their token or signs in again (a reloaded page). Open loop per session: each keeps one
//! keep-alive connection and waits a random think time between actions, so the load is
//! `sessions / think time` actions a second, however slow the target.
//!
//! Measured: time to the first delta and to the end of each reply, sign-ins and refreshes,
//! errors over the whole run (warm-up included: every session must get through), and the
//! metered processes' CPU per streamed message.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use http_body_util::BodyExt;
use serde_json::{Value, json};

use crate::client::{self, Sender, Template};
use crate::procfs;
use crate::stats::{Errors, Latencies};
use crate::stream::{Protocol, Scan};
use crate::{Span, secs};

#[derive(Debug, Args)]
pub(crate) struct DistrictArgs {
    /// The chat URL (classchat's /api/v1/chat, or Open WebUI's completions behind nginx).
    #[arg(long)]
    url: String,
    /// Extra header, `Name: value` (repeatable).
    #[arg(long = "header", short = 'H')]
    headers: Vec<String>,
    /// The streamed request's body; `{n}` becomes the session's number.
    #[arg(long)]
    body: String,
    #[arg(long, value_enum)]
    protocol: Protocol,
    /// classchat's sign-in URL; without it sessions send no token (nginx, the floor).
    #[arg(long)]
    login_url: Option<String>,
    /// classchat's token refresh URL.
    #[arg(long)]
    refresh_url: Option<String>,
    /// Access codes, one a line: session n signs in with code n mod their number.
    #[arg(long)]
    codes_file: Option<std::path::PathBuf>,
    /// Sessions (students), each with its own connection.
    #[arg(long, default_value_t = 5000)]
    sessions: usize,
    /// Mean pause between a session's actions, in ms (uniform between half and 1.5 times).
    #[arg(long, default_value_t = 5000.0)]
    think_ms: f64,
    /// Every Nth action of a session is a token refresh (0: never).
    #[arg(long, default_value_t = 10)]
    refresh_every: u64,
    /// Every Nth action of a session is a fresh sign-in, as after a reload (0: never).
    #[arg(long, default_value_t = 25)]
    sign_in_every: u64,
    /// Seconds over which the sessions start (and sign in), within the warm-up.
    #[arg(long, default_value_t = 2.0)]
    ramp: f64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 3.0)]
    warmup: f64,
    /// Measured seconds.
    #[arg(long, short = 'd', default_value_t = 10.0)]
    duration: f64,
    /// Longest one request or reply may take, in seconds.
    #[arg(long, default_value_t = 30.0)]
    request_timeout: f64,
    /// Processes to meter, `NAME=PID` (repeatable; equal names are summed).
    #[arg(long = "pid")]
    pids: Vec<String>,
    /// Copied into the output, `KEY=VALUE` (repeatable).
    #[arg(long = "tag")]
    tags: Vec<String>,
}

#[derive(Debug, Default)]
struct Tally {
    first: Latencies,
    total: Latencies,
    auth: Latencies,
    ok: u64,
    deltas: u64,
    sign_ins: u64,
    refreshes: u64,
    errors: Errors,
    /// Sessions that got a token (or needed none) and sent at least one message.
    active: u64,
}

struct Shared {
    chat: Template,
    body: String,
    protocol: Protocol,
    login: Option<Template>,
    refresh: Option<Template>,
    codes: Vec<String>,
    think: Duration,
    refresh_every: u64,
    sign_in_every: u64,
    ramp: Duration,
    span: Span,
    timeout: Duration,
}

pub(crate) async fn run(args: DistrictArgs) -> Result<Value> {
    let codes: Vec<String> = match &args.codes_file {
        Some(p) => std::fs::read_to_string(p)
            .with_context(|| format!("read {}", p.display()))?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
        None => Vec::new(),
    };
    if args.login_url.is_some() && codes.is_empty() {
        bail!("--login-url needs --codes-file with at least one code");
    }
    let pids = procfs::Pids::parse(&args.pids)?;
    let start = Instant::now() + secs(args.warmup);
    let span = Span {
        start,
        end: start + secs(args.duration),
    };
    let shared = Arc::new(Shared {
        chat: Template::new(&args.url, "POST", &args.headers, "")?,
        body: args.body.clone(),
        protocol: args.protocol,
        login: args
            .login_url
            .as_deref()
            .map(|u| Template::new(u, "POST", &[], "{}"))
            .transpose()?,
        refresh: args
            .refresh_url
            .as_deref()
            .map(|u| Template::new(u, "POST", &[], ""))
            .transpose()?,
        codes,
        think: Duration::from_secs_f64(args.think_ms.max(1.0) / 1000.0),
        refresh_every: args.refresh_every,
        sign_in_every: args.sign_in_every,
        ramp: secs(args.ramp.min(args.warmup)),
        span,
        timeout: secs(args.request_timeout),
    });
    let sessions: Vec<_> = (0..args.sessions.max(1))
        .map(|n| tokio::spawn(session(shared.clone(), n)))
        .collect();
    tokio::time::sleep_until(span.start.into()).await;
    let meter = pids.cpu_meter();
    tokio::time::sleep_until(span.end.into()).await;
    let mut cpu = meter.finish(span.start.elapsed());
    let mut t = Tally::default();
    for s in sessions {
        let s = s.await?;
        t.ok += s.ok;
        t.deltas += s.deltas;
        t.sign_ins += s.sign_ins;
        t.refreshes += s.refreshes;
        t.active += s.active;
        t.first.merge(s.first);
        t.total.merge(s.total);
        t.auth.merge(s.auth);
        t.errors.merge(s.errors);
    }
    procfs::per_request(&mut cpu, t.ok);
    let secs = (span.end - span.start).as_secs_f64();
    let mut out = serde_json::Map::new();
    for tag in &args.tags {
        let (k, v) = tag
            .split_once('=')
            .with_context(|| format!("--tag {tag:?} is not KEY=VALUE"))?;
        let v = v
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::from(v));
        out.insert(k.to_owned(), v);
    }
    out.insert("kind".into(), json!("district"));
    out.insert("url".into(), json!(args.url));
    out.insert("sessions".into(), json!(args.sessions));
    out.insert("active_sessions".into(), json!(t.active));
    out.insert("think_ms".into(), json!(args.think_ms));
    out.insert("duration_s".into(), json!(secs));
    out.insert("ok".into(), json!(t.ok));
    out.insert("streams_per_s".into(), json!((t.ok as f64 / secs).round()));
    out.insert(
        "sign_ins_per_s".into(),
        json!((t.sign_ins as f64 / secs).round()),
    );
    out.insert(
        "refreshes_per_s".into(),
        json!((t.refreshes as f64 / secs).round()),
    );
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
    out.insert("auth".into(), t.auth.summary());
    out.insert("errors".into(), json!(t.errors.total()));
    out.insert("error_kinds".into(), t.errors.to_json());
    out.insert("cpu".into(), cpu);
    let out = Value::Object(out);
    eprintln!(
        "district {} sessions={} active={} ok={} first p50={}us p99={}us sign-ins/s={} refreshes/s={} errors={}",
        args.url,
        args.sessions,
        out["active_sessions"],
        out["ok"],
        out["first_delta"]["p50_us"],
        out["first_delta"]["p99_us"],
        out["sign_ins_per_s"],
        out["refreshes_per_s"],
        out["errors"]
    );
    Ok(out)
}

/// A small, seeded generator: each session's pauses differ, and a run repeats.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Uniform in [0, 1).
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// What one action of a session is, by its number (from 1).
#[derive(Debug, PartialEq, Eq)]
enum Action {
    Message,
    Refresh,
    SignIn,
}

fn action(k: u64, refresh_every: u64, sign_in_every: u64) -> Action {
    if sign_in_every > 0 && k.is_multiple_of(sign_in_every) {
        Action::SignIn
    } else if refresh_every > 0 && k.is_multiple_of(refresh_every) {
        Action::Refresh
    } else {
        Action::Message
    }
}

async fn session(s: Arc<Shared>, n: usize) -> Tally {
    let mut t = Tally::default();
    let mut rng = Rng::new(n as u64 + 1);
    let mut conn: Option<Sender> = None;
    let mut chat = s.chat.clone();
    let body = s.body.replace("{n}", &n.to_string());
    let code = (!s.codes.is_empty()).then(|| s.codes[n % s.codes.len()].clone());
    let sign_in_body = code
        .as_ref()
        .map(|c| json!({ "access_code": c }).to_string());
    tokio::time::sleep(s.ramp.mul_f64(rng.next())).await;
    let mut token: Option<String> = None;
    // Each session starts its count of actions at a random point of the refresh and sign-in
    // cycle, so a window shorter than the cycle still holds its share of both.
    let cycle = (s.refresh_every.max(1) * s.sign_in_every.max(1)) as f64;
    let mut k = (rng.next() * cycle) as u64;
    let mut sent_any = false;
    while Instant::now() < s.span.end {
        k += 1;
        let todo = if s.login.is_some() && token.is_none() {
            Action::SignIn
        } else {
            action(k, s.refresh_every, s.sign_in_every)
        };
        let t0 = Instant::now();
        let outcome =
            match todo {
                Action::SignIn | Action::Refresh if s.login.is_none() => Ok(()),
                Action::SignIn => {
                    let login = s.login.as_ref().expect("checked above");
                    let body = sign_in_body.clone().unwrap_or_default();
                    auth(&s, &mut conn, login, None, body).await.map(|tok| {
                        t.sign_ins += u64::from(s.span.counts(Instant::now()));
                        token = Some(tok);
                    })
                }
                Action::Refresh => match (&s.refresh, &token) {
                    (Some(r), Some(old)) => auth(&s, &mut conn, r, Some(old), String::new())
                        .await
                        .map(|tok| {
                            t.refreshes += u64::from(s.span.counts(Instant::now()));
                            token = Some(tok);
                        }),
                    _ => Ok(()),
                },
                Action::Message => {
                    if let Some(tok) = &token
                        && let Err(e) = chat.bearer(tok)
                    {
                        t.errors.add("token", || e.to_string());
                    }
                    let r = message(&s, &mut conn, &chat, &body, &mut t).await;
                    sent_any |= r.is_ok();
                    r
                }
            };
        if let Err((kind, msg)) = outcome {
            t.errors.add(kind, || msg);
            conn = None;
            if matches!(todo, Action::SignIn) {
                token = None;
            }
        } else if matches!(todo, Action::SignIn | Action::Refresh) && s.span.counts(Instant::now())
        {
            t.auth.push(t0.elapsed());
        }
        let pause = s.think.mul_f64(0.5 + rng.next());
        let until = (Instant::now() + pause).min(s.span.end);
        tokio::time::sleep_until(until.into()).await;
    }
    t.active = u64::from(sent_any);
    t
}

type Failure = (&'static str, String);

/// The session's connection, opened again when the last one closed.
async fn connection<'a>(
    s: &Shared,
    conn: &'a mut Option<Sender>,
) -> Result<&'a mut Sender, Failure> {
    if conn.as_ref().is_none_or(|c| c.is_closed()) {
        *conn = None;
        match tokio::time::timeout(s.timeout, client::connect(&s.chat.target)).await {
            Ok(Ok(c)) => *conn = Some(c),
            Ok(Err(e)) => return Err(("connect", format!("{e:#}"))),
            Err(_) => return Err(("connect", "connect timed out".into())),
        }
    }
    let c = conn.as_mut().expect("just set");
    if c.ready().await.is_err() {
        return Err(("io", "connection closed".into()));
    }
    Ok(c)
}

/// A sign-in (no token) or a refresh (the old token); the new token.
async fn auth(
    s: &Shared,
    conn: &mut Option<Sender>,
    template: &Template,
    old: Option<&String>,
    body: String,
) -> Result<String, Failure> {
    let mut req = template.request();
    *req.body_mut() = http_body_util::Full::new(body.into());
    if let Some(old) = old {
        let v = format!("Bearer {old}")
            .parse()
            .map_err(|_| ("token", "token is not a header value".to_owned()))?;
        req.headers_mut().insert(hyper::header::AUTHORIZATION, v);
    }
    let sender = connection(s, conn).await?;
    let answer = tokio::time::timeout(s.timeout, async {
        let resp = sender.send_request(req).await?;
        let status = resp.status();
        let bytes = resp.into_body().collect().await?.to_bytes();
        anyhow::Ok((status, bytes))
    })
    .await;
    let (status, bytes) = match answer {
        Err(_) => return Err(("timeout", "no sign-in answer in time".into())),
        Ok(Err(e)) => return Err(("io", format!("{e:#}"))),
        Ok(Ok(a)) => a,
    };
    if !status.is_success() {
        return Err((
            "auth_status",
            format!("{status}: {}", String::from_utf8_lossy(&bytes)),
        ));
    }
    serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| v["token"].as_str().map(str::to_owned))
        .ok_or_else(|| ("auth_answer", "no token in the answer".into()))
}

/// One streamed message: recorded in `t` when it ends inside the measured window.
async fn message(
    s: &Shared,
    conn: &mut Option<Sender>,
    chat: &Template,
    body: &str,
    t: &mut Tally,
) -> Result<(), Failure> {
    let mut req = chat.request();
    *req.body_mut() = http_body_util::Full::new(body.to_owned().into());
    req.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    let sender = connection(s, conn).await?;
    let t0 = Instant::now();
    let deadline = t0 + s.timeout;
    let resp = match tokio::time::timeout_at(deadline.into(), sender.send_request(req)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return Err(("io", e.to_string())),
        Err(_) => return Err(("timeout", "no response headers in time".into())),
    };
    if !resp.status().is_success() {
        let status = resp.status();
        let body = match tokio::time::timeout_at(deadline.into(), resp.into_body().collect()).await
        {
            Ok(Ok(b)) => String::from_utf8_lossy(&b.to_bytes()).into_owned(),
            _ => String::new(),
        };
        return Err(("status", format!("{status}: {body}")));
    }
    let mut body = resp.into_body();
    let mut scan = Scan::new(s.protocol);
    let mut first = None;
    loop {
        match tokio::time::timeout_at(deadline.into(), body.frame()).await {
            Err(_) => return Err(("timeout", "stream not finished in time".into())),
            Ok(None) => break,
            Ok(Some(Err(e))) => return Err(("io", e.to_string())),
            Ok(Some(Ok(frame))) => {
                if let Some(d) = frame.data_ref()
                    && scan.feed(d)
                {
                    first = Some(t0.elapsed());
                }
            }
        }
    }
    let t1 = Instant::now();
    if let Some(e) = scan.error {
        return Err(("error_event", e));
    }
    if !scan.done {
        return Err(("unfinished", "stream ended without done/[DONE]".into()));
    }
    let Some(first) = first else {
        return Err(("no_delta", "no delta".into()));
    };
    if s.span.counts(t1) {
        t.ok += 1;
        t.deltas += u64::from(scan.deltas);
        t.first.push(first);
        t.total.push(t1 - t0);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_ins_and_refreshes_take_their_turns() {
        let kinds: Vec<_> = (1..=50).map(|k| action(k, 10, 25)).collect();
        assert_eq!(kinds.iter().filter(|a| **a == Action::SignIn).count(), 2);
        assert_eq!(kinds.iter().filter(|a| **a == Action::Refresh).count(), 4);
        assert_eq!(kinds[9], Action::Refresh);
        assert_eq!(kinds[24], Action::SignIn);
        assert!((1..=50).all(|k| action(k, 0, 0) == Action::Message));
    }

    #[test]
    fn pauses_spread_over_the_unit_interval() {
        let mut r = Rng::new(7);
        let xs: Vec<f64> = (0..1000).map(|_| r.next()).collect();
        assert!(xs.iter().all(|x| (0.0..1.0).contains(x)));
        let mean = xs.iter().sum::<f64>() / 1000.0;
        assert!((0.45..0.55).contains(&mean), "{mean}");
    }
}
