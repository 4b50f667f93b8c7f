//! The client that calls Open WebUI, against raw upstreams and a forward proxy written here:
//! a request is never sent twice, keep-alive and every body framing work, and HTTP_PROXY /
//! NO_PROXY are honoured from the settings.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;
use classchat_server::config::Settings;
use classchat_shared::{ChatResponse, ErrorCode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::{
    Opts, TestApp, captured_logs, chat_body, expect_error, open_webui_at, read_events,
    spawn_app_with,
};

/// Calls go through this proxy (HTTP_PROXY).
fn http_proxy(url: &str) -> impl Fn(&mut Settings) + Send + Sync + 'static {
    let url = url.to_owned();
    move |s| s.proxy.http = Some(url.clone().into())
}

const COMPLETION: &str = r#"{"id":"c1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hi there"},"finish_reason":"stop"}]}"#;

fn length_answer() -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{COMPLETION}",
        COMPLETION.len()
    )
    .into_bytes()
}

fn chunked_answer() -> Vec<u8> {
    let (a, b) = COMPLETION.split_at(20);
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
        a.len(),
        b.len()
    )
    .into_bytes()
}

fn close_delimited_answer() -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n{COMPLETION}"
    )
    .into_bytes()
}

/// What a raw upstream does with one request on a connection.
#[derive(Clone)]
enum Step {
    /// Writes these bytes (and closes if they said `connection: close`).
    Answer(Vec<u8>),
    /// Reads the request and closes without a byte of answer.
    Hangup,
}

/// A raw upstream: connection `i` follows `script[i]` (the last script repeats); counts
/// connections and fully read requests.
struct RawUpstream {
    url: String,
    connections: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
}

async fn raw_upstream(script: Vec<Vec<Step>>) -> RawUpstream {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(AtomicUsize::new(0));
    let (c, r) = (connections.clone(), requests.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let i = c.fetch_add(1, Ordering::SeqCst);
            let steps = script[i.min(script.len() - 1)].clone();
            let r = r.clone();
            tokio::spawn(async move {
                for step in steps {
                    if read_request(&mut s).await.is_none() {
                        return;
                    }
                    r.fetch_add(1, Ordering::SeqCst);
                    match step {
                        Step::Hangup => return,
                        Step::Answer(bytes) => {
                            s.write_all(&bytes).await.unwrap();
                            if String::from_utf8_lossy(&bytes).contains("connection: close") {
                                return;
                            }
                        }
                    }
                }
                // Linger until the client closes.
                let _ = s.read(&mut [0u8; 1]).await;
            });
        }
    });
    RawUpstream {
        url,
        connections,
        requests,
    }
}

/// One whole request (head and `content-length` body), or `None` if the peer closed first.
async fn read_request(s: &mut (impl AsyncRead + Unpin)) -> Option<String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).to_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .map_or(0, |v| v.trim().parse().unwrap());
            if got.len() >= end + 4 + len {
                return Some(String::from_utf8_lossy(&got).into_owned());
            }
        }
        let n = s.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        got.extend_from_slice(&buf[..n]);
    }
}

async fn app_for(url: &str) -> TestApp {
    let url = url.to_owned();
    spawn_app_with(Opts::default().with(move |s| open_webui_at(s, &url))).await
}

async fn chat_reply(app: &TestApp, token: &str) -> String {
    let r = app.post_chat(token, chat_body("hi", false)).await;
    assert_eq!(r.status(), 200);
    r.json::<ChatResponse>().await.unwrap().reply
}

#[tokio::test]
async fn a_request_the_upstream_read_and_hung_up_on_is_never_sent_again() {
    // A kept-alive connection: the first request is answered, the second read and dropped.
    let up = raw_upstream(vec![vec![Step::Answer(length_answer()), Step::Hangup]]).await;
    let app = app_for(&up.url).await;
    let token = app.sign_in().await.token;
    assert_eq!(chat_reply(&app, &token).await, "Hi there");
    let r = app.post_chat(&token, chat_body("again", false)).await;
    let err = expect_error(r, 503, ErrorCode::UpstreamUnavailable).await;
    assert_eq!(
        err.error.message,
        "The assistant closed the connection without answering. Please try again."
    );
    assert_eq!(up.requests.load(Ordering::SeqCst), 2, "each request once");
    assert_eq!(
        up.connections.load(Ordering::SeqCst),
        1,
        "no second connection"
    );
    assert!(captured_logs().contains("Open WebUI closed the connection without answering"));

    // A fresh connection that is hung up on: one request seen, not two.
    let up = raw_upstream(vec![vec![Step::Hangup]]).await;
    let app = app_for(&up.url).await;
    let token = app.sign_in().await.token;
    // (A stream answers before the upstream does: the failure is its one error event.)
    let events = read_events(app.post_chat(&token, chat_body("hi", true)).await).await;
    assert!(
        matches!(
            &events[..],
            [classchat_shared::ChatEvent::Error {
                code: ErrorCode::UpstreamUnavailable,
                ..
            }]
        ),
        "{events:?}"
    );
    assert_eq!(up.requests.load(Ordering::SeqCst), 1);
    assert_eq!(up.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn kept_alive_connections_are_reused_and_every_framing_parses() {
    let up = raw_upstream(vec![vec![
        Step::Answer(length_answer()),
        Step::Answer(chunked_answer()),
        Step::Answer(length_answer()),
    ]])
    .await;
    let app = app_for(&up.url).await;
    let token = app.sign_in().await.token;
    for _ in 0..3 {
        assert_eq!(chat_reply(&app, &token).await, "Hi there");
    }
    assert_eq!(up.connections.load(Ordering::SeqCst), 1, "one connection");

    // An answer delimited by the connection's end; the next chat needs a new connection.
    let up = raw_upstream(vec![vec![Step::Answer(close_delimited_answer())]]).await;
    let app = app_for(&up.url).await;
    let token = app.sign_in().await.token;
    for _ in 0..2 {
        assert_eq!(chat_reply(&app, &token).await, "Hi there");
    }
    assert_eq!(up.connections.load(Ordering::SeqCst), 2);
    assert_eq!(up.requests.load(Ordering::SeqCst), 2);
}

/// What the test proxy saw on one connection.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) request_line: String,
    proxy_authorization: Option<String>,
}

/// A forward proxy on loopback: CONNECT tunnels and absolute-form requests, each
/// connection's first request recorded. With `creds`, anything else gets a 407.
pub(crate) async fn forward_proxy(creds: Option<&str>) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let want = creds.map(|c| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(c)
        )
    });
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            let (log, want) = (log.clone(), want.clone());
            tokio::spawn(async move {
                let Some(head) = read_request(&mut client).await else {
                    return;
                };
                let request_line = head.lines().next().unwrap_or_default().to_owned();
                let proxy_authorization = head.lines().find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("proxy-authorization")
                        .then(|| v.trim().to_owned())
                });
                log.lock().unwrap().push(Seen {
                    request_line: request_line.clone(),
                    proxy_authorization: proxy_authorization.clone(),
                });
                if want.is_some() && proxy_authorization != want {
                    let _ = client
                        .write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .await;
                    return;
                }
                let mut parts = request_line.split(' ');
                let (method, target) = (parts.next().unwrap(), parts.next().unwrap());
                if method == "CONNECT" {
                    let mut up = TcpStream::connect(target).await.unwrap();
                    client
                        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                        .await
                        .unwrap();
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut up).await;
                    return;
                }
                // Absolute form: to the origin, as origin form, without our header.
                let rest = target.strip_prefix("http://").unwrap();
                let (authority, path) = rest.split_at(rest.find('/').unwrap());
                let mut up = TcpStream::connect(authority).await.unwrap();
                let mut out = format!("{method} {path} HTTP/1.1\r\n");
                for line in head.split("\r\n").skip(1) {
                    if !line
                        .to_ascii_lowercase()
                        .starts_with("proxy-authorization:")
                    {
                        out.push_str(line);
                        out.push_str("\r\n");
                    }
                }
                // `out` ends with the blank line, the body (the split kept them) and one CRLF
                // too many; only that one goes (a bodiless GET keeps its blank line).
                out.truncate(out.len() - 2);
                up.write_all(out.as_bytes()).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut client, &mut up).await;
            });
        }
    });
    (url, seen)
}

#[tokio::test]
async fn http_proxy_carries_the_call_unless_no_proxy_names_the_host() {
    let (proxy, seen) = forward_proxy(None).await;
    let app = spawn_app_with(Opts::default().with(http_proxy(&proxy))).await;
    let token = app.sign_in().await.token;
    assert!(chat_reply(&app, &token).await.starts_with("You said"));
    let lines: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.request_line.clone())
        .collect();
    assert_eq!(
        lines,
        [format!(
            "POST http://{}/api/chat/completions HTTP/1.1",
            app.upstream.addr
        )]
    );
    assert_eq!(app.upstream.requests().len(), 1, "the upstream got it");

    // NO_PROXY naming the upstream's address: straight there.
    let (proxy, seen) = forward_proxy(None).await;
    for no_proxy in ["127.0.0.1", "localhost, 127.0.0.0/8"] {
        let app = spawn_app_with(
            Opts::default()
                .with(http_proxy(&proxy))
                .with(move |s| s.proxy.no_proxy = no_proxy.into()),
        )
        .await;
        let token = app.sign_in().await.token;
        assert!(chat_reply(&app, &token).await.starts_with("You said"));
        assert_eq!(app.upstream.requests().len(), 1);
    }
    // HTTPS_PROXY is for https:// upstreams only.
    let https = proxy.clone();
    let app =
        spawn_app_with(Opts::default().with(move |s| s.proxy.https = Some(https.clone().into())))
            .await;
    let token = app.sign_in().await.token;
    assert!(chat_reply(&app, &token).await.starts_with("You said"));
    assert!(
        seen.lock().unwrap().is_empty(),
        "{:?}",
        seen.lock().unwrap()
    );
}

#[tokio::test]
async fn proxy_credentials_are_sent_to_the_proxy_and_never_logged() {
    let (proxy, seen) = forward_proxy(Some("alice:pr0xy-pa55")).await;
    let with_creds = proxy.replace("http://", "http://alice:pr0xy-pa55@");
    let app = spawn_app_with(Opts::default().with(http_proxy(&with_creds))).await;
    let token = app.sign_in().await.token;
    assert!(chat_reply(&app, &token).await.starts_with("You said"));
    let s = seen.lock().unwrap().clone();
    assert_eq!(s.len(), 1);
    assert_eq!(
        s[0].proxy_authorization.as_deref(),
        Some("Basic YWxpY2U6cHIweHktcGE1NQ==")
    );
    // The upstream never sees the proxy's credentials.
    let up = &app.upstream.requests()[0];
    assert!(up.header("proxy-authorization").is_none());

    // Wrong credentials: the proxy refuses, the student gets a specific error.
    let (proxy, _) = forward_proxy(Some("alice:pr0xy-pa55")).await;
    let wrong = proxy.replace("http://", "http://alice:wr0ng-pa55@");
    let app = spawn_app_with(Opts::default().with(http_proxy(&wrong))).await;
    let token = app.sign_in().await.token;
    let r = app.post_chat(&token, chat_body("hi", false)).await;
    let err = expect_error(r, 502, ErrorCode::UpstreamError).await;
    assert!(err.error.message.contains("not set up correctly"));
    let logs = captured_logs();
    assert!(!logs.contains("pr0xy-pa55") && !logs.contains("wr0ng-pa55"));
    assert!(!logs.contains("YWxpY2U6"), "no encoded credentials either");
    assert!(logs.contains("the outbound proxy refused classchat's credentials (407)"));
}

#[tokio::test]
async fn a_proxy_that_cannot_be_reached_is_a_clear_503() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    let app = spawn_app_with(Opts::default().with(http_proxy(&dead))).await;
    let token = app.sign_in().await.token;
    let r = app.post_chat(&token, chat_body("hi", false)).await;
    expect_error(r, 503, ErrorCode::UpstreamUnavailable).await;
    assert!(captured_logs().contains("cannot reach Open WebUI through the outbound proxy"));
}

/// Plain `http://` to another machine: the start-up log warns once, naming the host and no
/// secret. The other machine is reached only through HTTP_PROXY (a fake upstream on
/// loopback), so nothing leaves this machine.
#[tokio::test]
async fn plain_http_to_another_machine_is_warned_about_at_start_up() {
    let via = classchat_fake_upstream::FakeUpstream::spawn(Default::default()).await;
    let app = spawn_app_with(
        Opts::default()
            .with(|s| open_webui_at(s, "http://open-webui.test:8080"))
            .with(http_proxy(&via.url())),
    )
    .await;
    let logs = app.logs();
    let warnings: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("travel unencrypted"))
        .collect();
    assert_eq!(warnings.len(), 1, "{logs}");
    assert!(
        warnings[0].contains("OPEN_WEBUI_URL is http:// to open-webui.test,"),
        "{logs}"
    );
    assert!(!logs.contains(crate::helpers::API_KEY), "{logs}");

    // On this machine (the fake on 127.0.0.1): no warning.
    let app = spawn_app_with(Opts::default()).await;
    assert!(!app.logs().contains("travel unencrypted"), "{}", app.logs());
}
