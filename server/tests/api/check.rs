//! `classchat check`, the real binary against the fake Open WebUI: every way the upstream
//! can refuse gets its own sentence and a non-zero exit; a healthy set-up exits 0. The
//! binary is configured through the environment, as a teacher's `.env` would.

use classchat_fake_upstream::FakeConfig;

use crate::helpers::{API_KEY, CF_ID, CF_SECRET, CODE, SECRET, TestApp, spawn_app_with_fake};

/// Runs `classchat check` from an empty directory with only `envs` set.
async fn check(envs: &[(&str, String)]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_classchat"))
        .arg("check")
        .current_dir(dir.path())
        .env_clear()
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for secret in [API_KEY, CF_ID, CF_SECRET, CODE, SECRET, "wrong-secret"] {
        assert!(!text.contains(secret), "a secret was printed: {text}");
    }
    (out.status.code().unwrap_or(-1), text)
}

/// What a teacher's `.env` holds for `app`: its fake upstream and its own address.
fn env_for(app: &TestApp) -> Vec<(&'static str, String)> {
    vec![
        ("OPEN_WEBUI_URL", app.upstream.url()),
        ("OPEN_WEBUI_API_KEY", API_KEY.into()),
        ("OPEN_WEBUI_MODEL", "test-model".into()),
        ("AUTH_SECRET", SECRET.into()),
        ("ACCESS_CODE", CODE.into()),
        ("PUBLIC_URL", app.address.clone()),
        ("UPSTREAM_CONNECT_TIMEOUT", "5s".into()),
    ]
}

fn set(env: &mut Vec<(&'static str, String)>, k: &'static str, v: &str) {
    env.retain(|(n, _)| *n != k);
    env.push((k, v.to_owned()));
}

/// Exactly one check failed, it is `name`, its sentence says `says`, and the exit is 1.
fn assert_one_failure(code: i32, text: &str, name: &str, says: &str) {
    assert_eq!(code, 1, "{text}");
    let failed: Vec<&str> = text.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert_eq!(failed.len(), 1, "one failure: {text}");
    assert!(
        failed[0].starts_with(&format!("FAIL  {name}: ")),
        "{name} failed: {text}"
    );
    assert!(failed[0].contains(says), "{says:?} in {text}");
}

/// Every check passes; the `PUBLIC_URL` the tests can serve is a loopback address, which
/// works but no student reaches: said plainly, and the summary is not "all good".
#[tokio::test]
async fn a_healthy_set_up_passes_every_check_but_a_loopback_public_url_is_named() {
    let app = spawn_app_with_fake(FakeConfig::default()).await;
    let (code, text) = check(&env_for(&app)).await;
    assert_eq!(code, 0, "{text}");
    for name in [
        "configuration",
        "Open WebUI reachable",
        "Cloudflare Access",
        "API key",
        "class models",
        "test completion",
        "clock",
    ] {
        assert!(text.contains(&format!("ok    {name}: ")), "{name}: {text}");
    }
    let public = text
        .lines()
        .find(|l| l.contains("PUBLIC_URL: "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(public.starts_with("warn  PUBLIC_URL: "), "{text}");
    assert!(
        public.contains("serves /widget.js, but 127.0.0.1 is a loopback address"),
        "{text}"
    );
    assert!(
        public.contains("students' browsers cannot reach it"),
        "{text}"
    );
    let last = text.lines().last().unwrap();
    assert!(
        !last.contains("all good") || last.contains("not all good"),
        "{text}"
    );
    assert!(last.contains("1 to look at (warn)"), "{text}");
    assert!(text.contains("streamed"), "{text}");
    assert!(
        app.upstream
            .requests()
            .iter()
            .any(|r| r.body["stream"] == true),
        "the test completion reached the upstream"
    );
}

/// A school network that reaches the internet only through a proxy: the check goes the way
/// the relay will (through HTTP_PROXY), and a direct connection is not held against it.
#[tokio::test]
async fn the_checks_go_through_the_outbound_proxy_like_the_relay() {
    let app = spawn_app_with_fake(FakeConfig::default()).await;
    let (proxy, seen) = crate::upstream_client::forward_proxy(None).await;
    let mut env = env_for(&app);
    set(&mut env, "HTTP_PROXY", &proxy);
    let (code, text) = check(&env).await;
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("skip  Open WebUI reachable: reached through the outbound proxy"),
        "{text}"
    );
    // A skipped check is counted as skipped, never as "all good".
    assert!(text.contains("1 skipped"), "{text}");
    assert!(!text.contains("check: all good"), "{text}");
    let upstream = app.upstream.url();
    let lines: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.request_line.clone())
        .collect();
    // The proxy records each connection's first request; the test completion follows on the
    // same kept-alive connection (and passed above).
    let want = format!("GET {upstream}/api/models ");
    assert!(
        lines.iter().any(|l| l.starts_with(&want)),
        "{want:?} in {lines:?}"
    );
}

async fn behind_access(refusal: u16) -> (i32, String) {
    let app = spawn_app_with_fake(FakeConfig {
        cf_access: Some((CF_ID.into(), CF_SECRET.into())),
        cf_refusal: refusal,
        ..FakeConfig::default()
    })
    .await;
    let mut env = env_for(&app);
    set(&mut env, "CF_ACCESS_CLIENT_ID", CF_ID);
    set(&mut env, "CF_ACCESS_CLIENT_SECRET", "wrong-secret");
    check(&env).await
}

#[tokio::test]
async fn access_302_401_and_403_are_each_explained() {
    let (code, text) = behind_access(302).await;
    assert_one_failure(code, &text, "Cloudflare Access", "login page (302)");
    let (code, text) = behind_access(401).await;
    assert_one_failure(
        code,
        &text,
        "Cloudflare Access",
        "\"401 Response for Service Auth policies\" is on",
    );
    let (code, text) = behind_access(403).await;
    assert_one_failure(code, &text, "Cloudflare Access", "(403)");
    assert!(text.contains("policy with action Service Auth"), "{text}");
    assert!(text.contains("skip  API key: skipped"), "{text}");
}

#[tokio::test]
async fn access_without_a_service_token_says_to_make_one() {
    let app = spawn_app_with_fake(FakeConfig {
        cf_access: Some((CF_ID.into(), CF_SECRET.into())),
        ..FakeConfig::default()
    })
    .await;
    let (code, text) = check(&env_for(&app)).await;
    assert_one_failure(code, &text, "Cloudflare Access", "no service token is set");
}

#[tokio::test]
async fn a_refused_key_and_disabled_api_keys_are_told_apart() {
    let app = spawn_app_with_fake(FakeConfig::default()).await;
    let mut env = env_for(&app);
    set(
        &mut env,
        "OPEN_WEBUI_API_KEY",
        "sk-ffffffffffffffffffffffffffffffff",
    );
    let (code, text) = check(&env).await;
    assert_one_failure(
        code,
        &text,
        "API key",
        "Open WebUI refused the API key (401",
    );
    assert!(text.contains("skip  test completion"), "{text}");

    app.upstream.configure(|c| c.api_keys_disabled = true);
    let (code, text) = check(&env_for(&app)).await;
    assert_one_failure(code, &text, "API key", "API keys are switched off");
}

#[tokio::test]
async fn a_missing_model_is_named_with_the_ones_the_key_can_use() {
    let app = spawn_app_with_fake(FakeConfig::default()).await;
    let mut env = env_for(&app);
    set(&mut env, "OPEN_WEBUI_MODEL", "no-such-model");
    let (code, text) = check(&env).await;
    assert_one_failure(
        code,
        &text,
        "class models",
        "\"no-such-model\" (class class-1) is not one this key can use (this key can use: test-model)",
    );
}

#[tokio::test]
async fn an_upstream_that_is_down_or_not_tls_or_unknown_is_named() {
    let app = spawn_app_with_fake(FakeConfig::default()).await;
    // A port nobody listens on: bound, then released.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down = format!("http://{}", free.local_addr().unwrap());
    drop(free);
    let mut env = env_for(&app);
    set(&mut env, "OPEN_WEBUI_URL", &down);
    let (code, text) = check(&env).await;
    assert_one_failure(code, &text, "Open WebUI reachable", "TCP: 127.0.0.1:");
    assert!(text.contains("refused the connection"), "{text}");
    assert!(text.contains("warn  PUBLIC_URL: "), "{text}");

    set(
        &mut env,
        "OPEN_WEBUI_URL",
        &app.upstream.url().replace("http://", "https://"),
    );
    let (code, text) = check(&env).await;
    assert_one_failure(
        code,
        &text,
        "Open WebUI reachable",
        "TLS: the handshake with",
    );

    // `.invalid` never resolves; a resolver that answers slowly gets the timeout sentence
    // instead, which names DNS and the host as well.
    set(&mut env, "OPEN_WEBUI_URL", "http://no-such-host.invalid");
    let (code, text) = check(&env).await;
    assert_one_failure(code, &text, "Open WebUI reachable", "DNS: ");
    assert!(text.contains("no-such-host.invalid"), "{text}");
}

#[tokio::test]
async fn a_skewed_clock_is_reported_with_its_size() {
    let app = spawn_app_with_fake(FakeConfig {
        date_offset_secs: 600,
        ..FakeConfig::default()
    })
    .await;
    let (code, text) = check(&env_for(&app)).await;
    assert_one_failure(code, &text, "clock", "behind Open WebUI's");
    assert!(
        text.contains("is 600s") || text.contains("is 599s") || text.contains("is 601s"),
        "{text}"
    );
}

#[tokio::test]
async fn a_public_url_that_does_not_answer_fails_and_bad_configuration_stops_at_once() {
    let app = spawn_app_with_fake(FakeConfig::default()).await;
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nowhere = format!("http://{}", free.local_addr().unwrap());
    drop(free);
    let mut env = env_for(&app);
    set(&mut env, "PUBLIC_URL", &nowhere);
    // LISTEN_ADDR is taken (by the app): a server runs here, so the silence is a failure.
    set(
        &mut env,
        "LISTEN_ADDR",
        app.address.trim_start_matches("http://"),
    );
    let (code, text) = check(&env).await;
    assert_one_failure(code, &text, "PUBLIC_URL", "does not answer");

    // LISTEN_ADDR free: classchat is simply not started yet (check right after init).
    set(
        &mut env,
        "LISTEN_ADDR",
        nowhere.trim_start_matches("http://"),
    );
    let (code, text) = check(&env).await;
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("skip  PUBLIC_URL: classchat is not running here yet"),
        "{text}"
    );
    // Even before the server runs, a loopback PUBLIC_URL is named as one.
    assert!(
        text.contains("students' browsers cannot reach it"),
        "{text}"
    );
    assert!(!text.contains("check: all good"), "{text}");

    set(&mut env, "AUTH_SECRET", "short");
    let (code, text) = check(&env).await;
    assert_one_failure(code, &text, "configuration", "AUTH_SECRET");
    assert_eq!(text.lines().count(), 1, "{text}");
}

/// The server runs the same checks in the background at start-up, one log line each, and
/// keeps serving whatever they find.
#[tokio::test]
async fn the_binary_logs_one_line_per_check_at_start_up_and_keeps_running() {
    let app = spawn_app_with_fake(FakeConfig::default()).await;
    let mut env = env_for(&app);
    set(&mut env, "OPEN_WEBUI_MODEL", "no-such-model");
    set(&mut env, "LISTEN_ADDR", "127.0.0.1:0");
    set(&mut env, "LOG_FORMAT", "json");
    let dir = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_classchat"))
        .current_dir(dir.path())
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut checks = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    while checks.len() < 7 {
        let line = tokio::time::timeout_at(deadline, lines.next_line())
            .await
            .expect("seven check lines within a minute")
            .unwrap()
            .expect("the server kept running");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if let Some(name) = v.pointer("/fields/check").and_then(|c| c.as_str()) {
            checks.push((
                name.to_owned(),
                v["level"].as_str().unwrap_or("").to_owned(),
                line,
            ));
        }
    }
    let failed: Vec<_> = checks
        .iter()
        .filter(|c| c.2.contains("check failed"))
        .collect();
    assert_eq!(failed.len(), 1, "{checks:?}");
    assert_eq!(failed[0].0, "class models");
    assert!(failed[0].2.contains("no-such-model"));
    assert!(child.try_wait().unwrap().is_none(), "still serving");
    child.kill().await.unwrap();
}

/// The dashboard's Health panel shows what the start-up checks found, failures with fixes.
#[tokio::test]
async fn the_dashboard_health_panel_shows_the_start_up_checks() {
    use crate::admin::{PASSWORD, sign_in_teacher};
    let app = crate::helpers::spawn_app_with(crate::helpers::Opts::default().with(|s| {
        s.admin = crate::helpers::admin_password(PASSWORD);
        s.default_model = Some("no-such-model".into());
    }))
    .await;
    let teacher = sign_in_teacher(&app).await;
    let page = app.page_as("/admin", &teacher.cookie).await;
    assert!(page.contains("start-up checks are still running"), "{page}");

    classchat_server::cli::check::spawn_startup(app.state.clone());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while app.state.health.get().is_none() {
        assert!(std::time::Instant::now() < deadline, "the checks finished");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let page = app.page_as("/admin", &teacher.cookie).await;
    let panel = &page[page.find("id=\"health\"").expect("a Health panel")..];
    assert!(panel.contains("1 check failed"), "{panel}");
    assert!(
        panel.contains("&quot;no-such-model&quot;") || panel.contains("\"no-such-model\""),
        "{panel}"
    );
    assert!(panel.contains("test completion"), "{panel}");
    assert!(!panel.contains(API_KEY));
}

/// Plain `http://` to another machine: one warning line naming the host (never a secret),
/// and the checks still pass. The other machine is reached only through HTTP_PROXY, which is
/// the fake upstream itself, so nothing leaves the loopback interface.
#[tokio::test]
async fn plain_http_to_another_machine_is_warned_about() {
    let app = spawn_app_with_fake(FakeConfig::default()).await;
    let mut env = env_for(&app);
    set(&mut env, "OPEN_WEBUI_URL", "http://open-webui.test:8080");
    set(&mut env, "HTTP_PROXY", &app.upstream.url());
    let (code, text) = check(&env).await;
    assert_eq!(code, 0, "a warning is not a failure: {text}");
    let warnings: Vec<&str> = text.lines().filter(|l| l.starts_with("warn")).collect();
    assert_eq!(warnings.len(), 1, "{text}");
    assert!(
        warnings[0]
            .starts_with("warn  configuration: OPEN_WEBUI_URL is http:// to open-webui.test,"),
        "{text}"
    );
    assert!(warnings[0].contains("unencrypted"), "{text}");

    // The same set-up on this machine (the fake on 127.0.0.1): no warning about it (the
    // loopback PUBLIC_URL's own warning may stand).
    let (code, text) = check(&env_for(&app)).await;
    assert_eq!(code, 0, "{text}");
    assert!(
        !text.contains("warn  configuration") && !text.contains("unencrypted"),
        "{text}"
    );
}
