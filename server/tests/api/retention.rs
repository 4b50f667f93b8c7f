//! Retention and erasure (issue 23): housekeeping deletes exactly what is past the days the
//! class or the server keeps it, in batches; one session's data exports as JSON and erases
//! without a trace of the name or text while the class's totals stay; "end of term" erases
//! a class's conversations and names only when confirmed. SQLite and PostgreSQL.

use classchat_server::store::conversations::ExchangeRow;
use classchat_server::store::{Outcome, SessionRow, UsageRow};
use reqwest::Method;
use serde_json::{Value, json};

use crate::admin_api::{admin_token, api, teacher};
use crate::conversations::{TWO_CLASSES, sign_in_as};
use crate::helpers::*;

const DAY_MS: i64 = 86_400_000;

fn exchange(id: &str, class_id: &str, at_ms: i64) -> ExchangeRow {
    ExchangeRow {
        id: id.into(),
        class_id: class_id.into(),
        activity_id: None,
        session_id: "s-1".into(),
        display_name: Some("Mei".into()),
        conversation_id: "c-1".into(),
        at_ms,
        kept: "full".into(),
        sealed: "AAAA".into(),
    }
}

fn usage(class_id: &str, session: &str, at_ms: i64) -> UsageRow {
    UsageRow {
        at_ms,
        class_id: class_id.into(),
        session_id: session.into(),
        display_name: Some("Mei".into()),
        conversation_id: "c-1".into(),
        model: Some("m".into()),
        prompt_tokens: Some(3),
        completion_tokens: Some(4),
        outcome: Outcome::Completed,
        ..UsageRow::default()
    }
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    let store = &app.state.store;
    store.scalar_for_tests(sql).await
}

#[tokio::test]
async fn retention_deletes_exactly_what_is_past_its_time_per_class_and_in_batches() {
    let toml = String::from(
        r#"
[[class]]
id = "short"
title = "Short"
codes = ["short-memory-1"]
visibility = "full"
keep_conversations_days = 1
keep_usage_days = 2
keep_sessions_days = 3

[[class]]
id = "plain"
title = "Plain"
codes = ["plain-memory-2"]
visibility = "full"
"#,
    );
    let app = spawn_app_with(Opts::default().with(move |s| {
        s.classes = toml_classes(s, &toml);
        s.retention.conversations_days = 30;
        s.retention.usage_days = 365;
        s.retention.sessions_days = 0;
    }))
    .await;
    let store = &app.state.store;
    let now = 1_900_000_000_000_i64;
    // Exactly at the limit is kept; a millisecond older goes.
    let mut rows = vec![
        exchange("short-keep", "short", now - DAY_MS),
        exchange("short-go", "short", now - DAY_MS - 1),
        exchange("plain-keep", "plain", now - 30 * DAY_MS),
        exchange("plain-young", "plain", now - 2 * DAY_MS),
        exchange("gone-class-go", "deleted-class", now - 30 * DAY_MS - 1),
    ];
    // Enough old rows of the plain class for several batches.
    rows.extend((0..1_200).map(|i| exchange(&format!("old-{i}"), "plain", now - 40 * DAY_MS - i)));
    store.insert_exchanges(&rows).await.unwrap();
    store
        .insert_usage(
            &[
                usage("short", "s-a", now - 2 * DAY_MS),
                usage("short", "s-b", now - 2 * DAY_MS - 1),
                usage("plain", "s-c", now - 300 * DAY_MS),
                usage("plain", "s-d", now - 366 * DAY_MS),
            ],
            &[
                SessionRow {
                    session_id: "s-a".into(),
                    class_id: "short".into(),
                    display_name: Some("Mei".into()),
                    started_at_ms: now - 3 * DAY_MS,
                },
                SessionRow {
                    session_id: "s-b".into(),
                    class_id: "short".into(),
                    display_name: Some("Ana".into()),
                    started_at_ms: now - 3 * DAY_MS - 1,
                },
                // No message since signing in: counted from the sign-in.
                SessionRow {
                    session_id: "s-e".into(),
                    class_id: "short".into(),
                    display_name: Some("Gone".into()),
                    started_at_ms: now - 3 * DAY_MS - 1,
                },
                SessionRow {
                    session_id: "s-f".into(),
                    class_id: "short".into(),
                    display_name: Some("Kept".into()),
                    started_at_ms: now - 3 * DAY_MS,
                },
                SessionRow {
                    session_id: "s-d".into(),
                    class_id: "plain".into(),
                    display_name: Some("Old".into()),
                    started_at_ms: now - 900 * DAY_MS,
                },
            ],
        )
        .await
        .unwrap();
    let totals = |c: &'static str| {
        let store = store.clone();
        async move {
            let t = store.class_usage(c, 0, i64::MAX).await.unwrap();
            (t.messages, t.tokens)
        }
    };
    let before = (totals("short").await, totals("plain").await);

    let classes = app.state.classes.current();
    let deleted = run_retention(&app, now).await;
    let left: Vec<String> = {
        let mut ids: Vec<String> = store
            .recent_exchanges("short", 100)
            .await
            .unwrap()
            .into_iter()
            .chain(store.recent_exchanges("plain", 2_000).await.unwrap())
            .chain(store.recent_exchanges("deleted-class", 10).await.unwrap())
            .map(|r| r.id)
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(left, ["plain-keep", "plain-young", "short-keep"]);
    let usage_left: Vec<String> = usage_log(store)
        .await
        .into_iter()
        .map(|r| r.session_id)
        .collect();
    assert_eq!(usage_left.len(), 2, "{usage_left:?}");
    assert!(usage_left.contains(&"s-a".to_owned()) && usage_left.contains(&"s-c".to_owned()));
    // Sessions: the class keeps 3 days (counted from the last use); the server keeps them.
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM sessions WHERE session_id = 's-d'"
        )
        .await,
        1,
        "KEEP_SESSIONS_DAYS=0 keeps them"
    );
    let mut short: Vec<String> = store
        .scalar_list_for_tests("SELECT session_id FROM sessions WHERE class_id = 'short'")
        .await;
    short.sort();
    assert_eq!(
        short,
        ["s-a", "s-b", "s-f"],
        "last used within 3 days (s-b by its message)"
    );
    assert_eq!(deleted, 1_202 + 2 + 1, "exchanges, usage rows, a session");
    // The class totals (hourly rollups) are never deleted.
    assert_eq!((totals("short").await, totals("plain").await), before);
    // A second pass finds nothing more.
    assert_eq!(run_retention(&app, now).await, 0);
    drop(classes);
}

/// A retention pass at `now`, once the lock is free (on PostgreSQL the server's own
/// housekeeping, which starts with it, may hold it for a moment).
async fn run_retention(app: &TestApp, now: i64) -> u64 {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let classes = app.state.classes.current();
        let r = classchat_server::retention::run(
            &app.state.store,
            &classes,
            app.state.settings.retention,
            now,
        )
        .await
        .unwrap();
        if let Some(n) = r {
            return n;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the housekeeping lock stays held"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Whether any of the SQLite database's files (the WAL too) holds `needle`'s bytes.
fn database_files_hold(app: &TestApp, needle: &str) -> bool {
    let dir = app.db_path.parent().unwrap();
    std::fs::read_dir(dir).unwrap().any(|e| {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        name.starts_with("classchat.db")
            && std::fs::read(&p)
                .unwrap()
                .windows(needle.len())
                .any(|w| w == needle.as_bytes())
    })
}

#[tokio::test]
async fn export_then_erase_leaves_no_trace_of_the_name_or_text_and_the_class_totals_stay() {
    let app =
        spawn_app_with(Opts::default().with(|s| s.classes = toml_classes(s, TWO_CLASSES))).await;
    let admin = admin_token(&app).await;
    let name = "Zhang Weiming";
    let student = sign_in_as(&app, "open-book-11", name).await;
    let other = sign_in_as(&app, "open-book-11", "Lin").await;
    for (token, conv, text) in [
        (&student.token, "c-1", "My grandmother lives in Tainan"),
        (&student.token, "c-2", "Tell me about volcanoes"),
        (&other.token, "c-9", "What is a prime number?"),
    ] {
        let r = app
            .post_chat(
                token,
                json!({"conversation_id": conv, "messages": [{"role": "user", "content": text}], "stream": false}),
            )
            .await;
        assert_eq!(r.status(), 200);
    }
    app.usage_rows(3).await;
    wait_for("the exchanges are stored", || async {
        app.state
            .store
            .recent_exchanges("open-book", 10)
            .await
            .unwrap()
            .len()
            == 3
    })
    .await;
    let totals = app
        .state
        .store
        .class_usage("open-book", 0, i64::MAX)
        .await
        .unwrap();
    let session = {
        let (_, list) = api(
            &app,
            Method::GET,
            "/api/v1/admin/classes/open-book/conversations",
            &admin,
            None,
        )
        .await;
        list.as_array()
            .unwrap()
            .iter()
            .find(|s| s["display_name"] == name)
            .unwrap()["session_id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let base = format!("/api/v1/admin/classes/open-book/sessions/{session}");
    let (s, export) = api(&app, Method::GET, &format!("{base}/export"), &admin, None).await;
    assert_eq!(s, 200, "{export}");
    assert_eq!(export["session"]["display_name"], name);
    assert_eq!(export["usage"].as_array().unwrap().len(), 2);
    let texts: Vec<&str> = export["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["exchanges"][0]["student"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        ["My grandmother lives in Tainan", "Tell me about volcanoes"]
    );
    // The export is a reading too.
    let (_, reads) = api(
        &app,
        Method::GET,
        "/api/v1/admin/conversation-reads",
        &admin,
        None,
    )
    .await;
    assert_eq!(reads[0]["conversation_id"], "*");

    let (s, erased) = api(&app, Method::DELETE, &base, &admin, None).await;
    assert_eq!(s, 200, "{erased}");
    assert_eq!(
        erased,
        json!({"exchanges": 2, "usage_rows": 2, "sessions": 1})
    );
    // Nothing about them is left: no text, no name, no session id (but in the revocation,
    // which goes once the session could have ended); the other student's stay.
    let left = app
        .state
        .store
        .recent_exchanges("open-book", 10)
        .await
        .unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].display_name.as_deref(), Some("Lin"));
    for table in [
        "sessions",
        "usage_log",
        "usage_by_session",
        "conversation_reads",
        "conversation_exchanges",
    ] {
        for col in ["display_name", "session_id"] {
            let sql = format!(
                "SELECT COUNT(*) FROM {table} WHERE {col} = '{}'",
                if col == "display_name" {
                    name
                } else {
                    &session
                }
            );
            assert_eq!(count(&app, &sql).await, 0, "{sql}");
        }
    }
    if !on_postgres() {
        assert!(
            !database_files_hold(&app, name),
            "the name is gone from the file"
        );
        assert!(!database_files_hold(&app, "grandmother"));
        assert!(database_files_hold(&app, "Lin"), "the search itself works");
    }
    let after = app
        .state
        .store
        .class_usage("open-book", 0, i64::MAX)
        .await
        .unwrap();
    assert_eq!(
        (after.messages, after.tokens),
        (totals.messages, totals.tokens)
    );
    assert_eq!(
        usage_log(&app.state.store).await.len(),
        3,
        "usage rows stay, anonymous"
    );
    // The session is revoked: its token no longer chats.
    let r = app
        .post_chat(&student.token, chat_body("still here?", false))
        .await;
    assert_eq!(r.status(), 401);
    // Nothing is left to export or erase.
    let (s, _) = api(&app, Method::GET, &format!("{base}/export"), &admin, None).await;
    assert_eq!(s, 404);
    let (s, _) = api(&app, Method::DELETE, &base, &admin, None).await;
    assert_eq!(s, 404);
    // The erasure is audited, naming neither the student nor the session.
    let (_, audit) = api(&app, Method::GET, "/api/v1/admin/audit", &admin, None).await;
    let lines: Vec<&Value> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["action"] == "erase_session")
        .collect();
    assert_eq!(lines.len(), 1, "{audit}");
    assert!(
        lines[0]["detail"]
            .as_str()
            .unwrap()
            .contains("2 stored exchanges deleted")
    );
    assert!(!audit.to_string().contains(name) && !audit.to_string().contains(&session));
}

#[tokio::test]
async fn end_of_term_names_what_will_go_and_erases_only_when_confirmed_by_the_owner() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let (_, owner) = teacher(&app, &admin, "owner@school.test").await;
    let (co_id, co) = teacher(&app, &admin, "co@school.test").await;
    let (_, class) = api(
        &app,
        Method::POST,
        "/api/v1/admin/classes",
        &owner,
        Some(json!({"title": "7A", "visibility": "full"})),
    )
    .await;
    let id = class["id"].as_str().unwrap().to_owned();
    let c = format!("/api/v1/admin/classes/{id}");
    api(
        &app,
        Method::PUT,
        &format!("{c}/members/{co_id}"),
        &owner,
        Some(json!({"role": "co_teacher"})),
    )
    .await;
    let (_, act) = api(
        &app,
        Method::POST,
        &format!("{c}/activities"),
        &owner,
        Some(json!({"title": "Lab"})),
    )
    .await;
    let student = sign_in_as(&app, act["code"].as_str().unwrap(), "Mei").await;
    let r = app
        .post_chat(&student.token, chat_body("my end-of-term question", false))
        .await;
    assert_eq!(r.status(), 200);
    wait_for("stored", || async {
        app.state
            .store
            .recent_exchanges(&id, 10)
            .await
            .unwrap()
            .len()
            == 1
    })
    .await;
    app.usage_rows(1).await;
    let eot = format!("{c}/end-of-term");
    let (s, e) = api(&app, Method::POST, &eot, &co, Some(json!({"confirm": id}))).await;
    assert_eq!(s, 403, "{e}");
    for body in [json!({}), json!({"confirm": "another-class"})] {
        let (s, e) = api(&app, Method::POST, &eot, &owner, Some(body)).await;
        assert_eq!(s, 400);
        let msg = e["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains("1 stored exchanges") && msg.contains("1 sessions") && msg.contains(&id),
            "{msg}"
        );
    }
    assert_eq!(
        app.state
            .store
            .recent_exchanges(&id, 10)
            .await
            .unwrap()
            .len(),
        1,
        "nothing changed"
    );
    let (s, done): (u16, Value) = api(
        &app,
        Method::POST,
        &eot,
        &owner,
        Some(json!({"confirm": id})),
    )
    .await;
    assert_eq!(s, 200, "{done}");
    assert_eq!(
        done,
        json!({"exchanges": 1, "usage_rows": 1, "sessions": 1})
    );
    assert!(
        app.state
            .store
            .recent_exchanges(&id, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM sessions WHERE display_name IS NOT NULL"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM usage_log WHERE display_name IS NOT NULL"
        )
        .await,
        0
    );
    assert_eq!(
        usage_log(&app.state.store).await.len(),
        1,
        "the usage row stays, nameless"
    );
    let (_, audit) = api(&app, Method::GET, "/api/v1/admin/audit", &admin, None).await;
    assert!(
        audit
            .to_string()
            .contains("end of term: 1 stored exchanges deleted"),
        "{audit}"
    );
}

#[tokio::test]
async fn a_class_made_through_the_api_keeps_its_own_days_set_only_by_its_owner() {
    let app = spawn_app_with(Opts::default().with(|s| {
        s.retention.conversations_days = 30;
    }))
    .await;
    let admin = admin_token(&app).await;
    let (_, owner) = teacher(&app, &admin, "owner@school.edu").await;
    let (co_id, co) = teacher(&app, &admin, "co@school.edu").await;
    let (s, made) = api(
        &app,
        Method::POST,
        "/api/v1/admin/classes",
        &owner,
        Some(json!({"title": "Short memory", "visibility": "full", "keep_conversations_days": 1})),
    )
    .await;
    assert_eq!(s, 201, "{made}");
    assert_eq!(made["keep_conversations_days"], 1);
    assert_eq!(made["keep_usage_days"], Value::Null, "unset: the server's");
    let class = made["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/admin/classes/{class}");

    // Out of range: a specific error, and nothing changes.
    let (s, e) = api(
        &app,
        Method::PATCH,
        &path,
        &owner,
        Some(json!({"keep_conversations_days": -1, "title": "Renamed"})),
    )
    .await;
    assert_eq!(s, 400, "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("keep_conversations_days"),
        "{e}"
    );
    let (_, now_is) = api(&app, Method::GET, &path, &owner, None).await;
    assert_eq!(
        (
            now_is["title"].clone(),
            now_is["keep_conversations_days"].clone()
        ),
        (json!("Short memory"), json!(1))
    );

    // A co-teacher edits the class but not how long students' words are kept.
    let (s, b) = api(
        &app,
        Method::PUT,
        &format!("{path}/members/{co_id}"),
        &owner,
        Some(json!({"role": "co_teacher"})),
    )
    .await;
    assert_eq!(s, 204, "{b}");
    let (s, _) = api(
        &app,
        Method::PATCH,
        &path,
        &co,
        Some(json!({"keep_conversations_days": 0})),
    )
    .await;
    assert_eq!(s, 403);
    let (s, _) = api(
        &app,
        Method::PATCH,
        &path,
        &co,
        Some(json!({"greeting": "Hello", "keep_conversations_days": 1})),
    )
    .await;
    assert_eq!(s, 200, "the same value is no change");

    // Housekeeping uses the class's day, and the server's 30 for every other class.
    let store = &app.state.store;
    let now = 1_900_000_000_000_i64;
    store
        .insert_exchanges(&[
            exchange("api-keep", &class, now - DAY_MS),
            exchange("api-go", &class, now - DAY_MS - 1),
            exchange("other-keep", "other", now - 2 * DAY_MS),
        ])
        .await
        .unwrap();
    assert_eq!(run_retention(&app, now).await, 1);
    let ids = |c: String| async move {
        store
            .recent_exchanges(&c, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(class.clone()).await, ["api-keep"]);
    assert_eq!(ids("other".into()).await, ["other-keep"]);

    // The owner clears it back to the server's setting: the kept exchange stays (30 days).
    let (s, v) = api(
        &app,
        Method::PATCH,
        &path,
        &owner,
        Some(json!({"keep_conversations_days": null})),
    )
    .await;
    assert_eq!(
        (s, v["keep_conversations_days"].clone()),
        (200, Value::Null)
    );
    assert_eq!(run_retention(&app, now + DAY_MS).await, 0);
}
