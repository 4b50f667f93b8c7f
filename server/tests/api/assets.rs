//! The embedded widget files, the landing page and health checks.

use crate::helpers::*;

#[tokio::test]
async fn the_loader_is_javascript_with_cors() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(format!("{}/widget.js", app.address))
        .header("origin", "http://127.0.0.1:9999")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "the widget must be built before the tests (./scripts/build)"
    );
    assert_eq!(
        r.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    let body = r.text().await.unwrap();
    assert!(
        body.contains("classchat-widget"),
        "the loader defines the widget element"
    );
    let r = app
        .client
        .get(format!("{}/widget.js", app.address))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
}

#[tokio::test]
async fn wasm_is_served_immutable_with_precompressed_variants() {
    let app = spawn_app().await;
    let loader = app.get("/widget.js").await.text().await.unwrap();
    let wasm = loader
        .split(['"', '\'', '`'])
        .find(|s| s.ends_with("_bg.wasm"))
        .expect("the loader names the hashed wasm file");
    let url = format!(
        "{}/widget/{}",
        app.address,
        wasm.rsplit('/').next().unwrap()
    );
    let raw = app
        .client
        .get(&url)
        .header("accept-encoding", "identity")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 200);
    assert_eq!(raw.headers()["content-type"], "application/wasm");
    assert_eq!(
        raw.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert!(raw.headers().get("content-encoding").is_none());
    let raw = raw.bytes().await.unwrap();
    assert_eq!(&raw[..4], b"\0asm");
    for enc in ["gzip", "br"] {
        let r = app
            .client
            .get(&url)
            .header("accept-encoding", enc)
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["content-encoding"], enc);
        assert_eq!(r.headers()["vary"], "accept-encoding");
        let body = r.bytes().await.unwrap();
        assert!(body.len() < raw.len() / 2, "{enc} is smaller");
        assert!(
            decode(enc, &body) == raw,
            "{enc} decodes to the identity body"
        );
    }
    let missing = app.get("/widget/nope.wasm").await;
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn the_landing_page_shows_the_snippet_and_loads_the_widget() {
    let app = spawn_app().await;
    let r = app.get("/").await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = r.text().await.unwrap();
    assert!(
        html.starts_with("<!DOCTYPE html>"),
        "{}",
        &html[..60.min(html.len())]
    );
    assert!(
        html.contains(&format!(
            "&lt;script src=&quot;{}/widget.js&quot;",
            app.address
        )) || html.contains(&format!("&lt;script src=\"{}/widget.js\"", app.address)),
        "{html}"
    );
    assert!(html.contains(r#"<script src="/widget.js""#));
    assert!(!html.contains(SECRET) && !html.contains(API_KEY));
}

#[tokio::test]
async fn health_and_readiness() {
    let app = spawn_app().await;
    let h = app.get("/healthz").await;
    assert_eq!(
        (h.status().as_u16(), h.text().await.unwrap().as_str()),
        (200, "ok")
    );
    let r = app.get("/readyz").await;
    assert_eq!(r.status(), 200);
    let nf = app.get("/nope").await;
    expect_error(nf, 404, classchat_shared::ErrorCode::NotFound).await;
}

#[tokio::test]
async fn cors_preflight_allows_configured_origins_only() {
    let app = spawn_app_with(Opts::default().with(|s| {
        s.allowed_origins = Some(vec![
            "https://school.example".into(),
            "http://127.0.0.1:5555".into(),
        ]);
    }))
    .await;
    let preflight = |origin: &'static str| {
        app.client
            .request(
                reqwest::Method::OPTIONS,
                format!("{}/api/v1/chat", app.address),
            )
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .send()
    };
    let ok = preflight("https://school.example").await.unwrap();
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://school.example"
    );
    let no = preflight("https://evil.example").await.unwrap();
    assert!(no.headers().get("access-control-allow-origin").is_none());
}

/// The body a `content-encoding` of `enc` stands for.
fn decode(enc: &str, body: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    match enc {
        "gzip" => flate2::read::GzDecoder::new(body)
            .read_to_end(&mut out)
            .expect("valid gzip"),
        "br" => brotli::Decompressor::new(body, 4096)
            .read_to_end(&mut out)
            .expect("valid brotli"),
        other => panic!("no decoder for {other}"),
    };
    out
}
