//! Connection handling and client addresses: slow and greedy clients meet the header and body
//! timeouts and the connection cap, long upstream answers meet the size and duration caps,
//! and a proxy header counts only from a trusted proxy. Distinct loopback source addresses
//! (127.0.0.x) stand for distinct clients.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use classchat_fake_upstream::FakeConfig;
use classchat_server::config::{ClientIpSource, Settings};
use classchat_shared::{ChatEvent, ErrorCode};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use crate::helpers::*;

/// Far longer than any timeout the tests configure: only a hang reaches it.
const DEADLINE: Duration = Duration::from_secs(15);

fn addr_of(app: &TestApp) -> SocketAddr {
    app.address.trim_start_matches("http://").parse().unwrap()
}

/// A raw connection to the app from `from` (127.0.0.x).
async fn connect_from(app: &TestApp, from: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(from.parse().unwrap(), 0))
        .unwrap();
    socket.connect(addr_of(app)).await.unwrap()
}

/// A client whose requests leave from `from` (127.0.0.x), on connections of its own.
fn client_from(from: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(from.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

/// Reads until the server closes the connection (end of stream or reset); panics if it is
/// still open after [`DEADLINE`]. Returns what arrived.
async fn read_until_closed(stream: &mut (impl AsyncReadExt + Unpin)) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let read_all = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(DEADLINE, read_all)
        .await
        .expect("the server should have closed the connection");
    got
}

#[tokio::test]
async fn half_a_request_header_is_closed_after_the_header_timeout() {
    let app = spawn_app_with(
        Opts {
            fake: FakeConfig {
                chunks: 20,
                chunk_delay: Duration::from_millis(100),
                ..FakeConfig::default()
            },
            ..Opts::default()
        }
        .with(|s| s.request_header_timeout = Duration::from_secs(1)),
    )
    .await;

    let mut slow = connect_from(&app, "127.0.0.2").await;
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: classchat\r\nX-Wait: ")
        .await
        .unwrap();
    let started = Instant::now();
    let got = read_until_closed(&mut slow).await;
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "closed after {:?}: sooner than the timeout",
        started.elapsed()
    );
    assert!(
        !String::from_utf8_lossy(&got).contains("200 OK"),
        "no answer to half a header: {got:?}"
    );

    // An idle keep-alive connection is a header that never starts: closed too.
    let mut idle = connect_from(&app, "127.0.0.3").await;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: classchat\r\n\r\n")
        .await
        .unwrap();
    let got = String::from_utf8_lossy(&read_until_closed(&mut idle).await).into_owned();
    assert!(got.starts_with("HTTP/1.1 200 OK"), "{got}");

    // A reply that runs longer than the header timeout is not cut by it.
    let s = app.sign_in().await;
    let events = read_events(app.post_chat(&s.token, chat_body("hi", true)).await).await;
    assert!(
        matches!(events.last(), Some(ChatEvent::Done { .. })),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_trickling_body_is_cut_with_408_and_the_server_goes_on() {
    let app =
        spawn_app_with(Opts::default().with(|s| s.request_body_timeout = Duration::from_secs(1)))
            .await;
    let stream = connect_from(&app, "127.0.0.2").await;
    let (mut reader, mut writer) = stream.into_split();
    let body = json!({"access_code": CODE, "display_name": "Slow"}).to_string();
    let head = format!(
        "POST /api/v1/session HTTP/1.1\r\nHost: classchat\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let trickle = tokio::spawn(async move {
        writer.write_all(head.as_bytes()).await.unwrap();
        // A byte every 200 ms: each chunk is prompt, the whole body would take ~10 s.
        for b in body.bytes() {
            if writer.write_all(&[b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let got = String::from_utf8_lossy(&read_until_closed(&mut reader).await).into_owned();
    trickle.abort();
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    let json_body = &got[got.find("\r\n\r\n").unwrap() + 4..];
    let err: classchat_shared::ApiError = serde_json::from_str(json_body).unwrap();
    assert_eq!(err.error.code, ErrorCode::BadRequest);
    assert!(err.error.message.contains("too slowly"), "{err:?}");
    assert!(app.logs().contains("request body arrived too slowly"));
    // A body sent at once is unaffected.
    app.sign_in().await;
}

#[tokio::test]
async fn beyond_max_connections_a_client_gets_503_until_a_slot_frees() {
    let app = spawn_app_with(Opts::default().with(|s| s.max_connections = 2)).await;
    let first = connect_from(&app, "127.0.0.2").await;
    let _second = connect_from(&app, "127.0.0.3").await;

    let third = client_from("127.0.0.4");
    let r = third
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers().get("retry-after").and_then(|v| v.to_str().ok()),
        Some("5")
    );
    let err = expect_error(r, 503, ErrorCode::UpstreamUnavailable).await;
    assert_eq!(err.error.retry_after, Some(5));
    assert!(err.error.message.contains("busy"), "{err:?}");
    assert!(app.logs().contains("MAX_CONNECTIONS reached"));

    drop(first);
    let until = Instant::now() + DEADLINE;
    loop {
        // A new client each time: a refused connection is closed, never reused.
        let r = client_from("127.0.0.4")
            .get(format!("{}/healthz", app.address))
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            break;
        }
        assert_eq!(r.status(), 503);
        assert!(Instant::now() < until, "the freed slot was never reused");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A stand-in Open WebUI that answers every request with `head` and then `body`, a byte per
/// `pace` (`None`: `body` at once, then silence with the connection held open).
async fn raw_upstream(head: &'static str, body: &'static str, pace: Option<Duration>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(head.as_bytes()).await;
                match pace {
                    None => {
                        let _ = s.write_all(body.as_bytes()).await;
                    }
                    Some(pace) => {
                        for b in body.bytes() {
                            tokio::time::sleep(pace).await;
                            if s.write_all(&[b]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
                tokio::time::sleep(Duration::from_secs(60)).await;
            });
        }
    });
    url
}

const JSON_HEAD: &str =
    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n";

#[tokio::test]
async fn a_non_streamed_reply_is_held_to_the_idle_timeout_the_duration_cap_and_the_size_cap() {
    // Silent after the first bytes: the idle timeout.
    let url = raw_upstream(JSON_HEAD, "{\"id\":", None).await;
    let app = spawn_app_with(Opts::default().with(move |s| {
        open_webui_at(s, &url);
        s.timeouts.idle = Duration::from_secs(1);
    }))
    .await;
    let s = app.sign_in().await;
    let r = app.post_chat(&s.token, chat_body("hi", false)).await;
    expect_error(r, 504, ErrorCode::UpstreamTimeout).await;
    assert!(app.logs().contains("silence between chunks after 1s"));

    // A byte every 100 ms, never silent for long: the duration cap.
    let url = raw_upstream(
        JSON_HEAD,
        "{\"id\":\"slow-and-steady\"",
        Some(Duration::from_millis(100)),
    )
    .await;
    let app = spawn_app_with(Opts::default().with(move |s| {
        open_webui_at(s, &url);
        s.timeouts.reply_max = Duration::from_secs(1);
    }))
    .await;
    let s = app.sign_in().await;
    let r = app.post_chat(&s.token, chat_body("hi", false)).await;
    let err = expect_error(r, 502, ErrorCode::UpstreamError).await;
    assert!(err.error.message.contains("went on too long"), "{err:?}");
    assert!(
        app.logs()
            .contains("ran longer than STREAM_MAX_DURATION (1s)")
    );

    // More than the cap: refused, not held.
    let big = "x".repeat(classchat_server::relay::MAX_REPLY_BYTES + 1);
    let app = spawn_app_with_fake(FakeConfig {
        reply: Some(big),
        ..FakeConfig::default()
    })
    .await;
    let s = app.sign_in().await;
    let r = app.post_chat(&s.token, chat_body("hi", false)).await;
    let err = expect_error(r, 502, ErrorCode::UpstreamError).await;
    assert!(err.error.message.contains("went on too long"), "{err:?}");
    assert!(app.logs().contains("Open WebUI's answer is over 1024 kB"));
    assert_eq!(app.usage_rows(1).await[0].outcome, "upstream_error");
    // Just under the cap comes whole.
    let fits = "y".repeat(classchat_server::relay::MAX_REPLY_BYTES / 2);
    app.upstream.configure(|c| c.reply = Some(fits.clone()));
    let r = app.post_chat(&s.token, chat_body("hi", false)).await;
    assert_eq!(r.status(), 200);
    let reply: classchat_shared::ChatResponse = r.json().await.unwrap();
    assert_eq!(reply.reply, fits);
}

#[tokio::test]
async fn a_stream_longer_than_its_cap_ends_with_an_error_event() {
    let app = spawn_app_with(
        Opts {
            fake: FakeConfig {
                chunks: 40,
                chunk_delay: Duration::from_millis(100),
                ..FakeConfig::default()
            },
            ..Opts::default()
        }
        .with(|s| s.timeouts.reply_max = Duration::from_secs(1)),
    )
    .await;
    let s = app.sign_in().await;
    let events = read_events(
        app.post_chat(&s.token, chat_body("tell me everything", true))
            .await,
    )
    .await;
    assert!(
        events.iter().any(|e| matches!(e, ChatEvent::Delta { .. })),
        "deltas first: {events:?}"
    );
    match events.last() {
        Some(ChatEvent::Error { code, message, .. }) => {
            assert_eq!(*code, ErrorCode::UpstreamError);
            assert!(message.contains("went on too long"), "{message}");
        }
        other => panic!("expected a final error event, got {other:?}"),
    }
    assert!(events.len() < 40, "cut before the end: {events:?}");
    assert!(
        app.logs()
            .contains("ran longer than STREAM_MAX_DURATION (1s)")
    );
    assert_eq!(app.usage_rows(1).await[0].outcome, "upstream_error");
}

/// A wrong code "from" `client`, with these X-Forwarded-For (or other header) lines.
async fn wrong_code(
    app: &TestApp,
    client: &reqwest::Client,
    header: &str,
    lines: &[&str],
) -> reqwest::Response {
    let mut req = client
        .post(format!("{}/api/v1/session", app.address))
        .json(&json!({"access_code": "not-the-code"}));
    for l in lines {
        req = req.header(header, *l);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn forwarded_for_is_believed_from_a_trusted_proxy_only_and_read_from_the_right() {
    let app = spawn_app_with(Opts::default().with(|s| {
        s.client_ip = ClientIpSource::XForwardedFor;
        s.trusted_proxies = nets(&["127.0.0.1/32"]);
        s.login_failures_per_address = rate(2, minutes(15));
    }))
    .await;
    let proxy = client_from("127.0.0.1");
    let xff = "x-forwarded-for";

    // Through the proxy, two header addresses are two clients.
    for _ in 0..2 {
        expect_error(
            wrong_code(&app, &proxy, xff, &["10.77.0.1"]).await,
            401,
            ErrorCode::InvalidCode,
        )
        .await;
    }
    expect_error(
        wrong_code(&app, &proxy, xff, &["10.77.0.1"]).await,
        429,
        ErrorCode::RateLimited,
    )
    .await;
    expect_error(
        wrong_code(&app, &proxy, xff, &["10.77.0.2"]).await,
        401,
        ErrorCode::InvalidCode,
    )
    .await;
    assert!(app.logs().contains("client=10.77.0.1"));

    // Forged entries left of the proxy's do not make a new client, over one line or several.
    expect_error(
        wrong_code(&app, &proxy, xff, &["203.0.113.5, 10.77.0.1"]).await,
        429,
        ErrorCode::RateLimited,
    )
    .await;
    expect_error(
        wrong_code(
            &app,
            &proxy,
            xff,
            &["203.0.113.6", "198.51.100.1, 10.77.0.1"],
        )
        .await,
        429,
        ErrorCode::RateLimited,
    )
    .await;
    // A trusted proxy's own entry is skipped: the client is the entry before it.
    expect_error(
        wrong_code(&app, &proxy, xff, &["10.77.0.1", "127.0.0.1"]).await,
        429,
        ErrorCode::RateLimited,
    )
    .await;
    // Garbage where the client's address should be: the client is unknown (a budget of its
    // own), neither the forged address nor the proxy.
    expect_error(
        wrong_code(&app, &proxy, xff, &["10.77.0.9, junk"]).await,
        401,
        ErrorCode::InvalidCode,
    )
    .await;
    expect_error(
        wrong_code(&app, &proxy, xff, &["10.77.0.9, junk"]).await,
        401,
        ErrorCode::InvalidCode,
    )
    .await;
    expect_error(
        wrong_code(&app, &proxy, xff, &["junk"]).await,
        429,
        ErrorCode::RateLimited,
    )
    .await;
    expect_error(
        wrong_code(&app, &proxy, xff, &["10.77.0.9"]).await,
        401,
        ErrorCode::InvalidCode,
    )
    .await;
    expect_error(
        wrong_code(&app, &proxy, xff, &[]).await,
        401,
        ErrorCode::InvalidCode,
    )
    .await;

    // From a peer that is not a trusted proxy the header is ignored: one client, whatever it says.
    let direct = client_from("127.0.0.2");
    expect_error(
        wrong_code(&app, &direct, xff, &["10.77.0.3"]).await,
        401,
        ErrorCode::InvalidCode,
    )
    .await;
    expect_error(
        wrong_code(&app, &direct, xff, &["10.77.0.4"]).await,
        401,
        ErrorCode::InvalidCode,
    )
    .await;
    expect_error(
        wrong_code(&app, &direct, xff, &["10.77.0.5"]).await,
        429,
        ErrorCode::RateLimited,
    )
    .await;
    expect_error(
        wrong_code(&app, &direct, xff, &[]).await,
        429,
        ErrorCode::RateLimited,
    )
    .await;
}

#[tokio::test]
async fn a_header_without_trusted_proxies_is_believed_from_loopback_only() {
    let app = spawn_app_with(Opts::default().with(|s| {
        behind_loopback_proxy(s, ClientIpSource::CfConnectingIp);
        s.login_failures_per_address = rate(1, minutes(15));
    }))
    .await;
    let cf = "cf-connecting-ip";
    // 127.0.0.2 is a loopback peer (cloudflared on the same host): believed.
    let tunnel = client_from("127.0.0.2");
    expect_error(
        wrong_code(&app, &tunnel, cf, &["198.51.100.20"]).await,
        401,
        ErrorCode::InvalidCode,
    )
    .await;
    expect_error(
        wrong_code(&app, &tunnel, cf, &["198.51.100.20"]).await,
        429,
        ErrorCode::RateLimited,
    )
    .await;
    expect_error(
        wrong_code(&app, &tunnel, cf, &["198.51.100.21"]).await,
        401,
        ErrorCode::InvalidCode,
    )
    .await;
    // Two lines of a one-address header: neither is believed, the peer is the client.
    expect_error(
        wrong_code(&app, &tunnel, cf, &["198.51.100.22", "198.51.100.23"]).await,
        401,
        ErrorCode::InvalidCode,
    )
    .await;
    expect_error(
        wrong_code(&app, &tunnel, cf, &[]).await,
        429,
        ErrorCode::RateLimited,
    )
    .await;
}

#[test]
fn network_settings_are_checked_and_documented() {
    let settings = |extra: &[&str]| {
        let mut args = vec!["--auth-secret", SECRET, "--access-code", CODE];
        args.extend_from_slice(extra);
        Settings::for_tests(&args)
    };
    let var_of = |extra: &[&str]| settings(extra).expect_err("refused").var;
    assert_eq!(
        var_of(&["--trusted-proxies", "10.0.0.0/8"]),
        "TRUSTED_PROXIES"
    );
    assert_eq!(
        var_of(&[
            "--client-ip-header",
            "x-real-ip",
            "--trusted-proxies",
            "10.0.0.0/33"
        ]),
        "TRUSTED_PROXIES"
    );
    assert_eq!(var_of(&["--max-connections", "0"]), "MAX_CONNECTIONS");
    assert_eq!(
        var_of(&["--request-header-timeout", "0s"]),
        "REQUEST_HEADER_TIMEOUT"
    );
    assert_eq!(
        var_of(&["--request-body-timeout", "soon"]),
        "REQUEST_BODY_TIMEOUT"
    );
    assert_eq!(
        var_of(&["--stream-max-duration", "0"]),
        "STREAM_MAX_DURATION"
    );

    let s = settings(&[]).unwrap();
    assert_eq!(s.max_connections, 16384);
    assert_eq!(s.request_header_timeout, Duration::from_secs(30));
    assert_eq!(s.request_body_timeout, Duration::from_secs(30));
    assert_eq!(s.timeouts.reply_max, Duration::from_secs(600));
    assert!(s.trusted_proxies.is_empty());
    let s = settings(&[
        "--client-ip-header",
        "cf-connecting-ip",
        "--trusted-proxies",
        "cloudflare, 10.1.0.0/16",
    ])
    .unwrap();
    assert_eq!(
        s.trusted_proxies.len(),
        classchat_server::config::CLOUDFLARE_RANGES.len() + 1
    );

    let help = std::process::Command::new(env!("CARGO_BIN_EXE_classchat"))
        .arg("--help")
        .env_clear()
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for needle in [
        "MAX_CONNECTIONS",
        "[default: 16384]",
        "REQUEST_HEADER_TIMEOUT",
        "REQUEST_BODY_TIMEOUT",
        "STREAM_MAX_DURATION",
        "TRUSTED_PROXIES",
    ] {
        assert!(help.contains(needle), "--help lacks {needle}");
    }
}
