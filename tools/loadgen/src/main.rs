//! `classchat-loadgen`: the load generator behind `scripts/bench`.
//!
//! Every subcommand drives one target (the fake Open WebUI directly, nginx in front of it,
//! or classchat in front of it) and prints one JSON object on stdout, plus a one-line
//! summary on stderr. Every loop is bounded in time and in count.
//!
//! - `rr`: closed-loop request/response at a concurrency for a duration.
//! - `stream`: closed-loop SSE streams; time to the first delta and to the end.
//! - `hold`: N streams held open at once; the relay's resident memory meanwhile.
//! - `district`: many sessions of many classes, streaming with pauses, signing in and
//!   refreshing their tokens; time to first delta and CPU per message.
//! - `report`: gathers the runs' JSON lines into the table and the result file.
//! - `wait`, `send`, `free-port`: helpers for the script.

mod client;
mod district;
mod procfs;
mod report;
mod rr;
mod stats;
mod stream;

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use serde_json::{Map, Value, json};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Load generator for classchat's benchmark (scripts/bench)"
)]
struct Cli {
    /// Runtime threads for the load generator (1: a single-threaded runtime).
    #[arg(long, global = true, default_value_t = 1)]
    threads: usize,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Closed-loop request/response: requests per second and latency.
    Rr(rr::RrArgs),
    /// Closed-loop SSE streams: time to first delta and total time.
    Stream(stream::StreamArgs),
    /// Hold N streams open at once and sample the relay's memory.
    Hold(stream::HoldArgs),
    /// Many sessions of many classes: streams with pauses, sign-ins and refreshes.
    District(district::DistrictArgs),
    /// Turn the runs' JSON lines into the result file and the table.
    Report(report::ReportArgs),
    /// Wait until a URL answers 2xx to a GET.
    Wait {
        #[arg(long)]
        url: String,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 20.0)]
        timeout: f64,
    },
    /// Send one request; print the answer; fail unless it is 2xx.
    Send {
        #[arg(long)]
        url: String,
        #[arg(long, default_value = "POST")]
        method: String,
        #[arg(long, default_value = "")]
        body: String,
    },
    /// Print free loopback ports (bound together, then released).
    FreePort {
        #[arg(long, default_value_t = 1)]
        count: usize,
    },
}

/// What every load subcommand shares: the request, the load and what to record.
#[derive(Debug, Args)]
pub(crate) struct Load {
    /// Target URL (plain http).
    #[arg(long)]
    url: String,
    #[arg(long, default_value = "POST")]
    method: String,
    /// Extra header, `Name: value` (repeatable).
    #[arg(long = "header", short = 'H')]
    headers: Vec<String>,
    /// Request body (JSON).
    #[arg(long, default_value = "")]
    body: String,
    /// Sign in here first (classchat's POST /api/v1/session) and send the token as Bearer.
    #[arg(long, requires = "access_code")]
    login_url: Option<String>,
    #[arg(long)]
    access_code: Option<String>,
    /// Processes to meter, `NAME=PID` (repeatable; equal names are summed).
    #[arg(long = "pid")]
    pids: Vec<String>,
    /// Copied into the output, `KEY=VALUE` (repeatable).
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// Longest a single request may take, in seconds.
    #[arg(long, default_value_t = 10.0)]
    request_timeout: f64,
}

impl Load {
    async fn template(&self) -> Result<client::Template> {
        let mut t = client::Template::new(&self.url, &self.method, &self.headers, &self.body)?;
        if let (Some(url), Some(code)) = (&self.login_url, &self.access_code) {
            t.bearer(&client::login(url, code).await?)?;
        }
        Ok(t)
    }

    fn pids(&self) -> Result<procfs::Pids> {
        procfs::Pids::parse(&self.pids)
    }

    fn request_timeout(&self) -> Duration {
        secs(self.request_timeout)
    }

    /// The output object, starting with the tags.
    fn output(&self, kind: &str) -> Result<Map<String, Value>> {
        let mut m = Map::new();
        for t in &self.tags {
            let (k, v) = t
                .split_once('=')
                .with_context(|| format!("--tag {t:?} is not KEY=VALUE"))?;
            let v = v
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or_else(|_| Value::from(v));
            m.insert(k.to_owned(), v);
        }
        m.insert("kind".into(), json!(kind));
        m.insert("url".into(), json!(self.url));
        Ok(m)
    }
}

/// The timed part of a closed-loop run: a warm-up, then the measured window.
#[derive(Debug, Args, Clone, Copy)]
pub(crate) struct Window {
    /// Concurrent connections, each with one request at a time.
    #[arg(long, short = 'c', default_value_t = 16)]
    concurrency: usize,
    /// Measured seconds (after the warm-up).
    #[arg(long, short = 'd', default_value_t = 3.0)]
    duration: f64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Stop after this many requests in all, whatever the time.
    #[arg(long, default_value_t = 5_000_000)]
    max_requests: u64,
}

/// When a run measures: the requests that finish between `start` and `end` (as `wrk`
/// counts), so a request longer than the window still counts once it ends inside it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Span {
    pub(crate) start: Instant,
    pub(crate) end: Instant,
}

impl Span {
    pub(crate) fn counts(&self, finished: Instant) -> bool {
        finished >= self.start && finished <= self.end
    }
}

impl Window {
    pub(crate) fn span(&self) -> Span {
        let start = Instant::now() + secs(self.warmup);
        Span {
            start,
            end: start + secs(self.duration),
        }
    }
}

pub(crate) fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s.max(0.0)).unwrap_or(Duration::from_secs(3600))
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let rt = if cli.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cli.threads)
            .enable_all()
            .build()
    };
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("classchat-loadgen: cannot start a runtime: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match rt.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("classchat-loadgen: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run(command: Command) -> Result<std::process::ExitCode> {
    let out = match command {
        Command::Rr(a) => rr::run(a).await?,
        Command::Stream(a) => stream::run(a).await?,
        Command::Hold(a) => stream::hold(a).await?,
        Command::District(a) => district::run(a).await?,
        Command::Report(a) => return report::run(a),
        Command::Wait { url, timeout } => {
            wait(&url, secs(timeout)).await?;
            return Ok(std::process::ExitCode::SUCCESS);
        }
        Command::Send { url, method, body } => {
            let t = client::Template::new(&url, &method, &[], &body)?;
            let (status, answer) = client::once(&t, Duration::from_secs(10)).await?;
            println!("{status} {}", String::from_utf8_lossy(&answer));
            return Ok(if status.is_success() {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::FAILURE
            });
        }
        Command::FreePort { count } => {
            let listeners = (0..count.clamp(1, 64))
                .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
                .collect::<std::io::Result<Vec<_>>>()?;
            for l in &listeners {
                println!("{}", l.local_addr()?.port());
            }
            return Ok(std::process::ExitCode::SUCCESS);
        }
    };
    println!("{out}");
    Ok(std::process::ExitCode::SUCCESS)
}

async fn wait(url: &str, limit: Duration) -> Result<()> {
    let t = client::Template::new(url, "GET", &[], "")?;
    let deadline = Instant::now() + limit;
    let mut last = String::from("no attempt");
    while Instant::now() < deadline {
        match client::once(&t, Duration::from_secs(1)).await {
            Ok((status, _)) if status.is_success() => return Ok(()),
            Ok((status, _)) => last = format!("answered {status}"),
            Err(e) => last = format!("{e:#}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("{url} not ready after {limit:?}: {last}")
}
