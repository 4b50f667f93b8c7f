//! A streamed reply through a real nginx in front of classchat: the first delta reaches the
//! student while Open WebUI is still sending, with nginx's ordinary `proxy_pass` and with
//! compression applied to every type. Needs Debian's nginx (`/usr/sbin/nginx`).

use std::io::Write;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use classchat_fake_upstream::FakeConfig;
use futures::StreamExt;

use crate::helpers::*;

const NGINX: &str = "/usr/sbin/nginx";

/// An nginx serving `extra` in front of the app; stopped (killed) on drop.
struct Nginx {
    url: String,
    _child: tokio::process::Child,
    _dir: tempfile::TempDir,
}

impl Nginx {
    async fn start(app_address: &str, extra: &str) -> Option<Nginx> {
        if !std::path::Path::new(NGINX).exists() {
            eprintln!("SKIPPED: {NGINX} is missing (Debian: apt-get install nginx-light)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        // Workers run as `nobody` when the tests run as root: they must reach the temp paths.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let upstream = app_address.trim_start_matches("http://");
        let d = dir.path().display();
        let conf = format!(
            "master_process off;
             pid {d}/nginx.pid;
             error_log {d}/error.log info;
             events {{ worker_connections 64; }}
             http {{
                 access_log off;
                 client_body_temp_path {d}/body;
                 proxy_temp_path {d}/proxy;
                 fastcgi_temp_path {d}/fastcgi;
                 uwsgi_temp_path {d}/uwsgi;
                 scgi_temp_path {d}/scgi;
                 server {{
                     listen 127.0.0.1:{port};
                     {extra}
                     location / {{ proxy_pass http://{upstream}; }}
                 }}
             }}"
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::File::create(&conf_path)
            .unwrap()
            .write_all(conf.as_bytes())
            .unwrap();
        let child = tokio::process::Command::new(NGINX)
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-c")
            .arg(&conf_path)
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start nginx");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "nginx did not start listening: {}",
                std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Some(Nginx {
            url: format!("http://127.0.0.1:{port}"),
            _child: child,
            _dir: dir,
        })
    }
}

/// What the client has decoded so far (gzip undone incrementally when nginx compressed).
struct Decoded {
    gzip: Option<flate2::write::GzDecoder<Vec<u8>>>,
    plain: Vec<u8>,
}

impl Decoded {
    fn push(&mut self, bytes: &[u8]) {
        match &mut self.gzip {
            Some(g) => {
                g.write_all(bytes).unwrap();
                g.flush().unwrap();
            }
            None => self.plain.extend_from_slice(bytes),
        }
    }

    fn text(&self) -> String {
        let b = self.gzip.as_ref().map_or(&self.plain, |g| g.get_ref());
        String::from_utf8_lossy(b).into_owned()
    }
}

/// Streams a reply through nginx configured with `extra`; the fake holds its finish chunk
/// until the client has seen the first delta. Returns the response's Content-Encoding, or
/// `None` when nginx is missing (skipped).
async fn first_delta_arrives_while_upstream_sends(
    extra: &str,
    accept_gzip: bool,
) -> Option<Option<String>> {
    let gate = Arc::new(tokio::sync::Notify::new());
    let app = spawn_app_with_fake(FakeConfig {
        reply: Some("The first part arrives at once; the rest waits.".into()),
        chunks: 3,
        hold_finish: Some(gate.clone()),
        ..FakeConfig::default()
    })
    .await;
    let nginx = Nginx::start(&app.address, extra).await?;
    let s = app.sign_in().await;
    let mut req = app
        .client
        .post(format!("{}/api/v1/chat", nginx.url))
        .bearer_auth(&s.token)
        .json(&chat_body("hello", true));
    if accept_gzip {
        req = req.header("accept-encoding", "gzip");
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 200);
    let encoding = r
        .headers()
        .get("content-encoding")
        .map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(
        r.headers()["cache-control"],
        "no-cache, no-transform",
        "passed on by the proxy"
    );
    let mut got = Decoded {
        gzip: (encoding.as_deref() == Some("gzip"))
            .then(|| flate2::write::GzDecoder::new(Vec::new())),
        plain: Vec::new(),
    };
    let mut body = r.bytes_stream();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !got.text().contains("event: delta") {
        let next = tokio::time::timeout_at(deadline, body.next()).await;
        let chunk = next
            .unwrap_or_else(|_| {
                panic!(
                    "no delta through nginx ({extra}) while the upstream held its last chunk; got {:?}",
                    got.text()
                )
            })
            .expect("the stream stays open")
            .unwrap();
        got.push(&chunk);
    }
    assert_eq!(
        app.upstream.stats().streams_finished,
        0,
        "the upstream is still sending"
    );
    gate.notify_one();
    while let Some(chunk) = tokio::time::timeout_at(deadline, body.next())
        .await
        .expect("the reply finishes once released")
    {
        got.push(&chunk.unwrap());
    }
    let text = got.text();
    assert!(text.contains("event: done"), "{text}");
    assert!(text.contains("the rest waits."), "{text}");
    Some(encoding)
}

#[tokio::test]
async fn a_stream_passes_a_plain_nginx_proxy_pass_as_it_comes() {
    first_delta_arrives_while_upstream_sends("", false).await;
}

#[tokio::test]
async fn a_stream_passes_nginx_compressing_every_type_as_it_comes() {
    let Some(encoding) = first_delta_arrives_while_upstream_sends(
        "gzip on; gzip_types *; gzip_proxied any; gzip_min_length 0;",
        true,
    )
    .await
    else {
        return;
    };
    assert_eq!(
        encoding.as_deref(),
        Some("gzip"),
        "nginx compressed the stream (the case under test)"
    );
}

#[tokio::test]
async fn a_stream_tells_proxies_not_to_buffer_or_transform_it() {
    let app = spawn_app().await;
    let s = app.sign_in().await;
    let r = app.post_chat(&s.token, chat_body("hi", true)).await;
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    assert_eq!(r.headers()["cache-control"], "no-cache, no-transform");
    assert_eq!(r.headers()["x-accel-buffering"], "no");
    read_events(r).await;
}

/// A model that takes over a minute to load (a cold Ollama model on school hardware): the
/// stream opens before Open WebUI's first byte, and the heartbeats keep nginx's default
/// 60 s `proxy_read_timeout` from answering 504 while it loads. Takes a little over 65 s.
#[tokio::test]
async fn a_first_byte_after_65_s_through_nginx_with_default_timeouts_completes() {
    let app = spawn_app_with_fake(FakeConfig::default()).await;
    let Some(nginx) = Nginx::start(&app.address, "").await else {
        return;
    };
    app.upstream
        .set_behavior(classchat_fake_upstream::Behavior::SlowStart { delay_ms: 65_000 });
    let s = app.sign_in().await;
    let r = app
        .client
        .post(format!("{}/api/v1/chat", nginx.url))
        .bearer_auth(&s.token)
        .json(&chat_body("wake up", true))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        app.upstream.stats().streams_started,
        0,
        "the stream opened before Open WebUI answered"
    );
    let events = read_events(r).await;
    assert_eq!(reply_text(&events), "You said: wake up", "{events:?}");
    assert!(
        matches!(
            events.last(),
            Some(classchat_shared::ChatEvent::Done { .. })
        ),
        "{events:?}"
    );
}
