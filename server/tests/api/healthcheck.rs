//! `classchat healthcheck`, the container image's HEALTHCHECK: the real binary asks the
//! server on LISTEN_ADDR for `/healthz` and says so in its exit status.

use crate::helpers::spawn_app;

/// Runs `classchat healthcheck` with only `LISTEN_ADDR` set (and `HTTP_PROXY` pointing
/// nowhere, which it must not use).
async fn healthcheck(listen_addr: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_classchat"))
        .arg("healthcheck")
        .current_dir(dir.path())
        .env_clear()
        .env("LISTEN_ADDR", listen_addr)
        .env("HTTP_PROXY", "http://127.0.0.1:9")
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn healthcheck_passes_only_while_the_server_answers() {
    let app = spawn_app().await;
    let addr = app.address.trim_start_matches("http://").to_owned();
    let port = addr.rsplit(':').next().unwrap();
    assert_eq!(healthcheck(&addr).await, (0, String::new()));
    // Listening on every address (as in the container): asked on loopback.
    assert_eq!(healthcheck(&format!("0.0.0.0:{port}")).await.0, 0);

    // A port nobody listens on: bound, then released.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down = free.local_addr().unwrap().to_string();
    drop(free);
    let (code, text) = healthcheck(&down).await;
    assert_eq!(code, 1, "{text}");
    assert!(text.contains(&format!("no answer from {down}")), "{text}");

    let (code, text) = healthcheck("nowhere").await;
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("LISTEN_ADDR"), "{text}");
}

#[tokio::test]
async fn help_lists_the_healthcheck_command() {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_classchat"))
        .arg("--help")
        .env_clear()
        .output()
        .await
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.lines()
            .any(|l| l.trim_start().starts_with("healthcheck ")),
        "{help}"
    );
}
