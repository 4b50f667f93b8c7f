//! `fake-upstream`: the fake Open WebUI as a process, for end-to-end tests and benchmarks.
//!
//! Usage: fake-upstream [--port N] [--api-key KEY] [--model NAME]... [--cf-access ID:SECRET]
//!                      [--chunks N] [--chunk-delay-ms N] [--first-delay-ms N] [--reply TEXT]
//!                      [--shape WEIGHT:CHUNKS:FIRST_DELAY_MS:CHUNK_DELAY_MS]... [--no-record]
//! Prints `listening on http://127.0.0.1:PORT` once ready.

use std::time::Duration;

use classchat_fake_upstream::{FakeConfig, FakeUpstream, ReplyShape};

#[tokio::main]
async fn main() {
    let mut config = FakeConfig {
        models: Vec::new(),
        ..FakeConfig::default()
    };
    let mut port = 0u16;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| die(&format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--port" => {
                port = value()
                    .parse()
                    .unwrap_or_else(|_| die("--port takes a number"))
            }
            "--api-key" => config.api_key = value(),
            "--model" => config.models.push(value()),
            "--cf-access" => {
                let v = value();
                let (id, secret) = v
                    .split_once(':')
                    .unwrap_or_else(|| die("--cf-access takes ID:SECRET"));
                config.cf_access = Some((id.to_owned(), secret.to_owned()));
            }
            "--chunks" => {
                config.chunks = value()
                    .parse()
                    .unwrap_or_else(|_| die("--chunks takes a number"))
            }
            "--chunk-delay-ms" => {
                config.chunk_delay = Duration::from_millis(
                    value()
                        .parse()
                        .unwrap_or_else(|_| die("--chunk-delay-ms takes a number")),
                )
            }
            "--first-delay-ms" => {
                config.first_delay = Some(Duration::from_millis(
                    value()
                        .parse()
                        .unwrap_or_else(|_| die("--first-delay-ms takes a number")),
                ))
            }
            "--shape" => config.shapes.push(ReplyShape::parse(&value()).unwrap_or_else(|| {
                die("--shape takes WEIGHT:CHUNKS:FIRST_DELAY_MS:CHUNK_DELAY_MS (weight, chunks > 0)")
            })),
            "--reply" => config.reply = Some(value()),
            "--no-record" => config.record = false,
            "-h" | "--help" => {
                println!(
                    "fake-upstream [--port N] [--api-key KEY] [--model NAME]... [--cf-access ID:SECRET] [--chunks N] [--chunk-delay-ms N] [--first-delay-ms N] [--reply TEXT] [--shape WEIGHT:CHUNKS:FIRST_DELAY_MS:CHUNK_DELAY_MS]... [--no-record]"
                );
                return;
            }
            other => die(&format!("unknown argument {other}")),
        }
    }
    if config.models.is_empty() {
        config.models.push("test-model".into());
    }
    let fake = FakeUpstream::spawn_on(port, config)
        .await
        .unwrap_or_else(|e| die(&format!("cannot listen: {e}")));
    println!("listening on {}", fake.url());
    let _ = tokio::signal::ctrl_c().await;
}

fn die(msg: &str) -> ! {
    eprintln!("fake-upstream: {msg}");
    std::process::exit(2)
}
