//! One error story: every response carries a request id, and a failed request is logged once,
//! with that id and its cause, by one layer (never by the error's conversion).

use crate::helpers::*;
use classchat_shared::ErrorCode;

fn unreachable_upstream() -> Opts {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    Opts::default().with(move |s| open_webui_at(s, &format!("http://127.0.0.1:{port}")))
}

#[tokio::test]
async fn a_failed_request_is_logged_once_with_the_id_the_client_gets_back() {
    let app = spawn_app_with(unreachable_upstream()).await;
    let s = app.sign_in().await;
    let r = app
        .client
        .post(format!("{}/api/v1/chat", app.address))
        .bearer_auth(&s.token)
        .header("x-request-id", "ticket-4711")
        .json(&chat_body("hi", false))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers().get("x-request-id").unwrap(),
        "ticket-4711",
        "a proxy's request id comes back unchanged"
    );
    expect_error(r, 503, ErrorCode::UpstreamUnavailable).await;

    let logs = app.logs();
    let failed: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("request failed"))
        .collect();
    assert_eq!(failed.len(), 1, "one line per failed request: {logs}");
    let line = failed[0];
    for part in ["ticket-4711", "/api/v1/chat", "503", "upstream_unavailable"] {
        assert!(line.contains(part), "{part} missing from {line}");
    }
    // The relay's own line about the cause carries the same id.
    assert!(
        logs.lines()
            .any(|l| l.contains("cannot connect to Open WebUI") && l.contains("ticket-4711")),
        "{logs}"
    );
    for secret in [SECRET, API_KEY] {
        assert!(!logs.contains(secret), "a secret reached the log");
    }
}

#[tokio::test]
async fn every_response_gets_a_fresh_request_id_when_none_came() {
    let app = spawn_app().await;
    let mut seen = Vec::new();
    for path in ["/healthz", "/no-such-page"] {
        let r = app
            .client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        let id = r.headers().get("x-request-id").expect("x-request-id");
        let id = uuid::Uuid::parse_str(id.to_str().unwrap()).expect("a UUID");
        seen.push(id);
    }
    assert_ne!(seen[0], seen[1], "each request has its own id");
    // A refusal (404) is not an error line: the log keeps error level for server faults.
    assert!(!app.logs().contains("request failed"), "{}", app.logs());
}
