//! RUNTIME=per-core: the real binary with one current-thread runtime per core, each on its
//! own SO_REUSEPORT listener. What could break when connections land on different runtimes:
//! a token signed on one must work on all, a sign-out seen by all, a class ceiling one
//! budget for the process, streams relayed, and a clean stop that ends every runtime.

use std::collections::BTreeMap;
use std::time::Duration;

use classchat_fake_upstream::{FakeConfig, FakeUpstream};
use classchat_shared::ErrorCode;
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;

use crate::helpers::{
    API_KEY, SECRET, chat_body, expect_error, on_postgres, read_events, reply_text, wait_for,
};

const RUNTIMES: usize = 3;
const CODE: &str = "per-core-code-7";
const CEILING: usize = 6;

/// A client that opens a new connection for every request, so the kernel spreads them
/// over the listeners.
fn fresh_connections() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .no_proxy()
        .build()
        .unwrap()
}

/// Every thread of `pid` by name, with its voluntary context switches (a runtime that
/// stays parked in epoll makes none).
fn threads(pid: u32) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let dir = task.unwrap().path();
        let tid = dir.file_name().unwrap().to_string_lossy().into_owned();
        let Ok(comm) = std::fs::read_to_string(dir.join("comm")) else {
            continue;
        };
        let Ok(status) = std::fs::read_to_string(dir.join("status")) else {
            continue;
        };
        let switches = status
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        // The first runtime is the main thread (its id is the process's).
        let name = if tid == pid.to_string() {
            "main".to_owned()
        } else {
            comm.trim().to_owned()
        };
        if name == "main" || name.starts_with("classchat-rt-") {
            out.insert(name, switches);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_core_runtimes_serve_chat_with_one_shared_state() {
    let fake = FakeUpstream::spawn(FakeConfig {
        chunks: 4,
        chunk_delay: Duration::from_millis(2),
        ..FakeConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let classes = dir.path().join("classes.toml");
    std::fs::write(
        &classes,
        format!(
            "[[class]]\nid = \"per-core\"\ntitle = \"Per core\"\ncodes = [\"{CODE}\"]\n\
             messages_per_minute = 1000\nclass_messages_per_minute = {CEILING}\n"
        ),
    )
    .unwrap();
    let database = if on_postgres() {
        crate::pg_cluster::shared().create_database().await
    } else {
        format!("sqlite://{}", dir.path().join("classchat.db").display())
    };
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_classchat"))
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("RUNTIME", "per-core")
        .env("TOKIO_WORKER_THREADS", RUNTIMES.to_string())
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("LOG_FORMAT", "json")
        .env("AUTH_SECRET", SECRET)
        .env("CLASSES_FILE", &classes)
        .env("DATABASE_URL", &database)
        .env("OPEN_WEBUI_URL", fake.url())
        .env("OPEN_WEBUI_API_KEY", API_KEY)
        .env("OPEN_WEBUI_MODEL", "test-model")
        .env("SHUTDOWN_GRACE", "2s")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut address = None;
    let mut runtimes = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while address.is_none() || runtimes.is_none() {
        let line = tokio::time::timeout_at(deadline, lines.next_line())
            .await
            .expect("the server starts within a minute")
            .unwrap()
            .expect("the server kept running");
        let v: Value = serde_json::from_str(&line).unwrap_or_default();
        if let Some(n) = v.pointer("/fields/runtimes").and_then(Value::as_u64) {
            runtimes = Some(n);
        }
        if v.pointer("/fields/message").and_then(Value::as_str) == Some("classchat listening") {
            address = v
                .pointer("/fields/address")
                .and_then(Value::as_str)
                .map(str::to_owned);
        }
    }
    // Keep reading the log, so the server never blocks on a full pipe.
    let log = tokio::spawn(async move {
        let mut all = Vec::new();
        while let Ok(Some(l)) = lines.next_line().await {
            all.push(l);
        }
        all
    });
    assert_eq!(runtimes, Some(RUNTIMES as u64));
    let base = format!("http://{}", address.unwrap());
    let before = threads(pid);
    assert_eq!(
        before.keys().cloned().collect::<Vec<_>>(),
        ["classchat-rt-1", "classchat-rt-2", "main"],
        "one thread per runtime"
    );

    let http = fresh_connections();
    let sign_in = || async {
        let r = http
            .post(format!("{base}/api/v1/session"))
            .json(&json!({"access_code": CODE, "display_name": "Mei"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json::<Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned()
    };

    // A streamed reply is relayed whole.
    let token = sign_in().await;
    let r = http
        .post(format!("{base}/api/v1/chat"))
        .bearer_auth(&token)
        .json(&chat_body("hello there", true))
        .send()
        .await
        .unwrap();
    assert_eq!(reply_text(&read_events(r).await), "You said: hello there");

    // Concurrent requests on fresh connections: the token signed on one runtime is known to
    // all (refreshing it needs its session, which the one store holds), and every runtime
    // takes some of the connections.
    let refreshes = futures::future::join_all((0..60).map(|_| {
        let (http, base, token) = (http.clone(), base.clone(), token.clone());
        async move {
            http.post(format!("{base}/api/v1/session/refresh"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    }))
    .await;
    assert!(refreshes.iter().all(|&s| s == 200), "{refreshes:?}");
    let after = threads(pid);
    for (name, n) in &before {
        assert!(
            after[name] > *n,
            "runtime {name} woke for none of 60 connections: {before:?} then {after:?}"
        );
    }

    // A sign-out on one connection is seen on every other.
    let r = http
        .delete(format!("{base}/api/v1/session"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    for _ in 0..12 {
        let r = http
            .post(format!("{base}/api/v1/chat"))
            .bearer_auth(&token)
            .json(&chat_body("still here?", false))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "a signed-out token is refused everywhere");
    }

    // The class ceiling is one budget, whichever runtime a message lands on.
    let mut tokens = Vec::new();
    for _ in 0..4 {
        tokens.push(sign_in().await);
    }
    let answers = futures::future::join_all((0..4 * CEILING).map(|i| {
        let (http, base, token) = (http.clone(), base.clone(), tokens[i % 4].clone());
        async move {
            http.post(format!("{base}/api/v1/chat"))
                .bearer_auth(&token)
                .json(&chat_body("count me", false))
                .send()
                .await
                .unwrap()
        }
    }))
    .await;
    let mut admitted = 0;
    for r in answers {
        if r.status() == 200 {
            admitted += 1;
        } else {
            expect_error(r, 429, ErrorCode::RateLimited).await;
        }
    }
    // The streamed reply above spent one message of the minute's budget.
    assert_eq!(admitted, CEILING - 1, "one class ceiling for every runtime");

    // SIGTERM: every runtime stops, the process ends cleanly.
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("stopped within the grace period")
        .unwrap();
    assert!(status.success(), "{status:?}");
    let log = log.await.unwrap().join("\n");
    assert!(log.contains("\"stopped\""), "{log}");
    wait_for("the fake to see every stream end", || async {
        let s = fake.stats();
        s.streams_started == s.streams_finished + s.streams_dropped
    })
    .await;
}

/// A RUNTIME value that is neither shape stops the server with one line naming it.
#[tokio::test]
async fn an_unknown_runtime_shape_is_refused() {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_classchat"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("RUNTIME", "per-thread")
        .env("DEMO", "true")
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("RUNTIME") && err.contains("per-thread") && err.contains("per-core"),
        "{err}"
    );
}
