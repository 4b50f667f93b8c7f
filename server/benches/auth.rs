//! Sign-in and token verification throughput.
//!
//! `login`: a whole `POST /api/v1/session` through the real router (JSON, limiter checks,
//! the constant-time code lookup, signing). `verify_token`: a token's first check (HS256
//! signature and claims). `verify_token_seen`: every check the chat route's extractor makes
//! (claims from the cache of seen tokens, revocation set, class, code fingerprint).
//! Run: `cargo bench -p classchat-server --bench auth`; per-second figures are 1 / time.

use axum::body::Body;
use axum::http::Request;
use classchat_server::config::Settings;
use classchat_server::startup::{Application, router};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tower::ServiceExt;

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bench.db").display().to_string();
    let settings = Settings::for_tests(&[
        "--listen-addr",
        "127.0.0.1:0",
        "--database-url",
        &db,
        "--auth-secret",
        "bench-secret-0123456789-0123456789-0123456789",
        "--access-code",
        "alpha-code-1,beta-code-2,gamma-code-3,delta-code-4",
        // Benchmarks sign in thousands of times from one address.
        "--login-failures-per-address",
        "1000000/1m",
    ])
    .unwrap();
    let app = rt.block_on(Application::build(settings)).unwrap();
    let state = app.state().clone();
    let service = router(state.clone());

    let login = || {
        Request::post("/api/v1/session")
            .header("content-type", "application/json")
            .body(Body::from(
                r#"{"access_code":" Gamma-Code-3 ","display_name":"Mei"}"#,
            ))
            .unwrap()
    };
    let resp = rt.block_on(service.clone().oneshot(login())).unwrap();
    assert_eq!(resp.status(), 200);
    let body = rt
        .block_on(axum::body::to_bytes(resp.into_body(), 1 << 16))
        .unwrap();
    let token = serde_json::from_slice::<serde_json::Value>(&body).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut g = c.benchmark_group("auth");
    g.throughput(Throughput::Elements(1));
    g.bench_function("login", |b| {
        b.to_async(&rt).iter(|| {
            let svc = service.clone();
            async move {
                let r = svc.oneshot(login()).await.unwrap();
                assert_eq!(r.status(), 200);
            }
        })
    });
    // A token's first use: signature and claims checked afresh. This is the figure the
    // README reports; later uses of the same token hit the cache of seen tokens.
    g.bench_function("verify_token", |b| {
        b.iter(|| {
            state
                .keys
                .verify_fresh(std::hint::black_box(&token))
                .unwrap()
        })
    });
    // Every check the chat route's extractor makes, for a token already seen.
    g.bench_function("verify_token_seen", |b| {
        b.iter(|| classchat_server::auth::verify(&state, std::hint::black_box(&token)).unwrap())
    });
    g.finish();
}

criterion_group!(auth, benches);
criterion_main!(auth);
