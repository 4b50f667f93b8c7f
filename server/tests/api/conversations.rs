//! Conversation visibility (issue 23): per class `off` (the default), `flagged` or `full`,
//! carried in every sign-in answer; stored conversations, sealed; who may read them and
//! the access log. Runs on SQLite, and on PostgreSQL with `CLASSCHAT_TEST_DB=postgres`.

use classchat_shared::{SessionResponse, Visibility};
use reqwest::Method;
use serde_json::{Value, json};

use crate::admin_api::{admin_token, api, teacher};
use crate::helpers::*;

/// Two classes of the classes file: `open-book` (visibility full) and `quiet` (default).
pub(crate) const TWO_CLASSES: &str = r#"
[[class]]
id = "open-book"
title = "Open book"
codes = ["open-book-11"]
visibility = "full"

[[class]]
id = "quiet"
title = "Quiet"
codes = ["quiet-room-22"]

[[class]]
id = "watchful"
title = "Watchful"
codes = ["watchful-33"]
visibility = "flagged"
"#;

pub(crate) async fn sign_in_as(app: &TestApp, code: &str, name: &str) -> SessionResponse {
    let r = app
        .post_session(json!({"access_code": code, "display_name": name}))
        .await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test]
async fn the_sign_in_answer_and_every_refresh_carry_the_class_visibility() {
    let app =
        spawn_app_with(Opts::default().with(|s| s.classes = toml_classes(s, TWO_CLASSES))).await;
    for (code, want) in [
        ("open-book-11", "full"),
        ("quiet-room-22", "off"),
        ("watchful-33", "flagged"),
    ] {
        let r = app.post_session(json!({"access_code": code})).await;
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        // Always on the wire, `off` included: the widget never has to guess.
        assert_eq!(body["visibility"], want, "{code}");
        let token = body["token"].as_str().unwrap();
        let refreshed: Value = app.refresh(token).await.json().await.unwrap();
        assert_eq!(refreshed["visibility"], want, "{code} refreshed");
    }
    let s = sign_in_as(&app, "OPEN-BOOK-11", "Mei").await;
    assert_eq!(s.visibility, Visibility::Full);
}

#[test]
fn a_classes_file_with_an_unknown_visibility_is_refused_naming_the_field() {
    let f = classes_file(
        "[[class]]\nid = \"a\"\ntitle = \"A\"\ncodes = [\"alpha-code-1\"]\nvisibility = \"public\"\n",
    );
    let e = classchat_server::config::Settings::for_tests(&[
        "--auth-secret",
        SECRET,
        "--classes-file",
        f.path().to_str().unwrap(),
    ])
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("class \"a\"") && e.contains("field visibility"),
        "{e}"
    );
    assert!(
        e.contains("\"public\"") && !e.contains("alpha-code-1"),
        "{e}"
    );
}

#[tokio::test]
async fn only_the_owner_sets_a_class_visibility_and_the_next_sign_in_carries_it() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let (_, owner) = teacher(&app, &admin, "owner@school.test").await;
    let (co_id, co) = teacher(&app, &admin, "co@school.test").await;
    let (s, class) = api(
        &app,
        Method::POST,
        "/api/v1/admin/classes",
        &owner,
        Some(json!({"title": "7A", "visibility": "full"})),
    )
    .await;
    assert_eq!(s, 201, "{class}");
    assert_eq!(class["visibility"], "full");
    let id = class["id"].as_str().unwrap().to_owned();
    let c = format!("/api/v1/admin/classes/{id}");
    let (s, _) = api(
        &app,
        Method::PUT,
        &format!("{c}/members/{co_id}"),
        &owner,
        Some(json!({"role": "co_teacher"})),
    )
    .await;
    assert_eq!(s, 204);
    let (s, act) = api(
        &app,
        Method::POST,
        &format!("{c}/activities"),
        &owner,
        Some(json!({"title": "Lab"})),
    )
    .await;
    assert_eq!(s, 201);
    let code = act["code"].as_str().unwrap().to_owned();
    assert_eq!(
        sign_in_as(&app, &code, "Mei").await.visibility,
        Visibility::Full
    );

    // A co-teacher edits the class but may not change who reads it.
    let (s, e) = api(
        &app,
        Method::PATCH,
        &c,
        &co,
        Some(json!({"visibility": "off"})),
    )
    .await;
    assert_eq!(s, 403, "{e}");
    let (s, v) = api(
        &app,
        Method::PATCH,
        &c,
        &co,
        Some(json!({"title": "7A science", "visibility": "full"})),
    )
    .await;
    assert_eq!(
        (s, &v["visibility"]),
        (200, &json!("full")),
        "the same value is no change"
    );
    // A value that is not one of the three is refused, nothing changed.
    let (s, e) = api(
        &app,
        Method::PATCH,
        &c,
        &owner,
        Some(json!({"visibility": "public"})),
    )
    .await;
    assert_eq!(s, 400, "{e}");
    let (s, v) = api(
        &app,
        Method::PATCH,
        &c,
        &owner,
        Some(json!({"visibility": "flagged"})),
    )
    .await;
    assert_eq!((s, &v["visibility"]), (200, &json!("flagged")));
    assert_eq!(
        sign_in_as(&app, &code, "Mei").await.visibility,
        Visibility::Flagged
    );
    let (_, audit) = api(&app, Method::GET, "/api/v1/admin/audit", &admin, None).await;
    assert!(
        audit.to_string().contains("changed visibility"),
        "the change is audited: {audit}"
    );
    let (s, e) = api(
        &app,
        Method::POST,
        "/api/v1/admin/classes",
        &owner,
        Some(json!({"title": "7C", "visibility": "everyone"})),
    )
    .await;
    assert_eq!(s, 400, "{e}");
    // The wire type itself reads a value it does not know as `full`: a widget older than
    // its server tells the student more, never less.
    assert_eq!(
        serde_json::from_str::<Visibility>("\"a-later-mode\"").unwrap(),
        Visibility::Full
    );
    // A class made without saying is `off`.
    let (s, plain) = api(
        &app,
        Method::POST,
        "/api/v1/admin/classes",
        &owner,
        Some(json!({"title": "7B"})),
    )
    .await;
    assert_eq!((s, &plain["visibility"]), (201, &json!("off")));
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

/// Sends one streamed message and returns the reply's text.
async fn say(app: &TestApp, token: &str, conversation: &str, text: &str) -> String {
    let r = app
        .post_chat(
            token,
            json!({"conversation_id": conversation, "messages": [{"role": "user", "content": text}], "stream": true}),
        )
        .await;
    reply_text(&read_events(r).await)
}

/// How many exchanges of `class_id` are stored.
async fn stored(app: &TestApp, class_id: &str) -> i64 {
    app.state
        .store
        .conversations_of(class_id, 1000)
        .await
        .unwrap()
        .iter()
        .map(|c| c.exchanges)
        .sum()
}

#[tokio::test]
async fn off_stores_no_text_and_full_stores_it_sealed_for_the_teacher_to_read() {
    let app =
        spawn_app_with(Opts::default().with(|s| s.classes = toml_classes(s, TWO_CLASSES))).await;
    let quiet_sentence = "The purple giraffe hums quietly at midnight";
    let open_sentence = "Osmosis moves water across the membrane of a carrot";

    let quiet = sign_in_as(&app, "quiet-room-22", "Ana").await;
    assert_eq!(quiet.visibility, Visibility::Off);
    let reply = say(&app, &quiet.token, "q-1", quiet_sentence).await;
    assert!(reply.contains(quiet_sentence), "the fake echoes: {reply}");
    let open = sign_in_as(&app, "open-book-11", "Mei").await;
    let reply = say(&app, &open.token, "o-1", open_sentence).await;
    assert!(reply.contains(open_sentence));
    // Both usage rows, and the full class's exchange, reach the database.
    app.usage_rows(2).await;
    wait_for("the exchange is stored", || async {
        stored(&app, "open-book").await == 1
    })
    .await;
    assert_eq!(stored(&app, "quiet").await, 0);
    if !on_postgres() {
        // Neither sentence is anywhere in the database's files: `off` kept nothing, `full`
        // keeps it sealed.
        assert!(!database_files_hold(&app, quiet_sentence));
        assert!(!database_files_hold(&app, "purple giraffe"));
        assert!(!database_files_hold(&app, open_sentence));
        assert!(!database_files_hold(&app, "Osmosis moves"));
        assert!(
            database_files_hold(&app, "open-book"),
            "the search itself works"
        );
    }
    assert!(!app.logs().contains("giraffe") && !app.logs().contains("Osmosis"));

    // The administrator reads the full class's conversation; the reading is logged.
    let admin = admin_token(&app).await;
    let (s, list) = api(
        &app,
        Method::GET,
        "/api/v1/admin/classes/open-book/conversations",
        &admin,
        None,
    )
    .await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(list[0]["display_name"], "Mei");
    assert!(
        !list.to_string().contains("Osmosis"),
        "a list shows no text"
    );
    let session = list[0]["session_id"].as_str().unwrap().to_owned();
    assert_eq!(list[0]["conversations"][0]["conversation_id"], "o-1");
    let (s, none) = api(
        &app,
        Method::GET,
        "/api/v1/admin/classes/quiet/conversations",
        &admin,
        None,
    )
    .await;
    assert_eq!((s, none), (200, json!([])));
    let path = format!("/api/v1/admin/classes/open-book/conversations/{session}/o-1");
    let (s, conv) = api(&app, Method::GET, &path, &admin, None).await;
    assert_eq!(s, 200, "{conv}");
    let ex = &conv["exchanges"][0];
    assert_eq!(ex["student"], open_sentence);
    assert_eq!(ex["reply"], format!("You said: {open_sentence}"));
    assert_eq!(
        (&ex["kept"], &ex["completed"]),
        (&json!("full"), &json!(true))
    );
    let (s, reads) = api(
        &app,
        Method::GET,
        "/api/v1/admin/conversation-reads",
        &admin,
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(reads.as_array().unwrap().len(), 1, "{reads}");
    assert_eq!(reads[0]["display_name"], "Mei");
    assert_eq!(reads[0]["session_id"], session.as_str());
    assert_eq!(reads[0]["conversation_id"], "o-1");
    assert_eq!(reads[0]["address"], "127.0.0.1");
    assert!(
        reads[0]["reader"]
            .as_str()
            .unwrap()
            .starts_with("administrator")
    );

    // Search opens the sealed text on the server; it answers which conversations match.
    for (q, hits) in [
        ("carrot", 1),
        ("CARROT", 1),
        ("giraffe", 0),
        ("You said", 1),
    ] {
        let (s, found) = api(
            &app,
            Method::GET,
            &format!(
                "/api/v1/admin/classes/open-book/conversations?q={}",
                q.replace(' ', "%20")
            ),
            &admin,
            None,
        )
        .await;
        assert_eq!(s, 200);
        assert_eq!(found.as_array().unwrap().len(), hits, "{q}: {found}");
    }
    let long = "x".repeat(201);
    let (s, _) = api(
        &app,
        Method::GET,
        &format!("/api/v1/admin/classes/open-book/conversations?q={long}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(s, 400);
    // An unknown conversation or class is 404, and logs nothing.
    for p in [
        format!("/api/v1/admin/classes/open-book/conversations/{session}/nope"),
        "/api/v1/admin/classes/nope/conversations".to_owned(),
    ] {
        assert_eq!(api(&app, Method::GET, &p, &admin, None).await.0, 404, "{p}");
    }
    let (_, reads) = api(
        &app,
        Method::GET,
        "/api/v1/admin/conversation-reads",
        &admin,
        None,
    )
    .await;
    assert_eq!(reads.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_changed_visibility_applies_only_to_messages_sent_after_it() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let (_, owner) = teacher(&app, &admin, "owner@school.test").await;
    let (s, class) = api(
        &app,
        Method::POST,
        "/api/v1/admin/classes",
        &owner,
        Some(json!({"title": "7A"})),
    )
    .await;
    assert_eq!(s, 201);
    let id = class["id"].as_str().unwrap().to_owned();
    let c = format!("/api/v1/admin/classes/{id}");
    let (_, act) = api(
        &app,
        Method::POST,
        &format!("{c}/activities"),
        &owner,
        Some(json!({"title": "Lab"})),
    )
    .await;
    let code = act["code"].as_str().unwrap().to_owned();
    let student = sign_in_as(&app, &code, "Mei").await;
    assert_eq!(student.visibility, Visibility::Off);
    say(&app, &student.token, "c-1", "sent while off").await;
    app.usage_rows(1).await;
    let set = |v: &'static str| {
        let (app, owner, c) = (&app, &owner, &c);
        async move {
            let (s, _) = api(app, Method::PATCH, c, owner, Some(json!({"visibility": v}))).await;
            assert_eq!(s, 200);
        }
    };
    set("full").await;
    // The same sign-in (its token says nothing of visibility): the class's setting now.
    say(&app, &student.token, "c-1", "sent while full").await;
    wait_for("the exchange is stored", || async {
        stored(&app, &id).await == 1
    })
    .await;
    set("off").await;
    say(&app, &student.token, "c-1", "sent after it was off again").await;
    app.usage_rows(3).await;
    // A barrier: once a later exchange is stored, the one before it would have been too.
    set("full").await;
    say(&app, &student.token, "c-1", "full once more").await;
    wait_for("the later exchange is stored", || async {
        stored(&app, &id).await == 2
    })
    .await;
    let (s, list) = api(
        &app,
        Method::GET,
        &format!("{c}/conversations"),
        &owner,
        None,
    )
    .await;
    assert_eq!(s, 200, "{list}");
    let session = list[0]["session_id"].as_str().unwrap().to_owned();
    let (_, conv) = api(
        &app,
        Method::GET,
        &format!("{c}/conversations/{session}/c-1"),
        &owner,
        None,
    )
    .await;
    let texts: Vec<&str> = conv["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["student"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["sent while full", "full once more"]);
    assert_eq!(conv["exchanges"][0]["activity_id"], act["id"]);
}

#[tokio::test]
async fn only_owners_and_co_teachers_of_the_class_read_and_only_the_administrator_reads_the_log() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let (_, owner) = teacher(&app, &admin, "owner@school.test").await;
    let (co_id, co) = teacher(&app, &admin, "co@school.test").await;
    let (as_id, assistant) = teacher(&app, &admin, "assistant@school.test").await;
    let (_, stranger) = teacher(&app, &admin, "stranger@school.test").await;
    let (_, own) = api(
        &app,
        Method::POST,
        "/api/v1/admin/classes",
        &owner,
        Some(json!({"title": "7A", "visibility": "full"})),
    )
    .await;
    let id = own["id"].as_str().unwrap().to_owned();
    let c = format!("/api/v1/admin/classes/{id}");
    for (t, role) in [(&co_id, "co_teacher"), (&as_id, "assistant")] {
        let (s, _) = api(
            &app,
            Method::PUT,
            &format!("{c}/members/{t}"),
            &owner,
            Some(json!({"role": role})),
        )
        .await;
        assert_eq!(s, 204);
    }
    // The stranger owns a class of their own.
    let (s, _) = api(
        &app,
        Method::POST,
        "/api/v1/admin/classes",
        &stranger,
        Some(json!({"title": "8B", "visibility": "full"})),
    )
    .await;
    assert_eq!(s, 201);
    let (_, act) = api(
        &app,
        Method::POST,
        &format!("{c}/activities"),
        &owner,
        Some(json!({"title": "Lab"})),
    )
    .await;
    let student = sign_in_as(&app, act["code"].as_str().unwrap(), "Mei").await;
    say(&app, &student.token, "c-9", "a question for my teacher").await;
    wait_for("the exchange is stored", || async {
        stored(&app, &id).await == 1
    })
    .await;
    let session = student_session(&app, &id).await;
    let one = format!("{c}/conversations/{session}/c-9");
    for (who, token) in [("owner", &owner), ("co-teacher", &co)] {
        let (s, conv) = api(&app, Method::GET, &one, token, None).await;
        assert_eq!(s, 200, "{who}: {conv}");
        assert_eq!(conv["exchanges"][0]["student"], "a question for my teacher");
    }
    for (who, token) in [("assistant", &assistant), ("stranger", &stranger)] {
        for p in [&one, &format!("{c}/conversations")] {
            let (s, body) = api(&app, Method::GET, p, token, None).await;
            assert_eq!(s, 404, "{who} {p}: {body}");
            assert!(!body.to_string().contains("question"));
        }
    }
    let (s, _) = api(
        &app,
        Method::GET,
        "/api/v1/admin/conversation-reads",
        &owner,
        None,
    )
    .await;
    assert_eq!(s, 403);
    let (_, reads) = api(
        &app,
        Method::GET,
        "/api/v1/admin/conversation-reads",
        &admin,
        None,
    )
    .await;
    let readers: Vec<&str> = reads
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reader"].as_str().unwrap())
        .collect();
    assert_eq!(
        readers,
        ["co@school.test", "owner@school.test"],
        "newest first"
    );
    let (_, by_class) = api(
        &app,
        Method::GET,
        &format!("/api/v1/admin/conversation-reads?class_id={id}&limit=1"),
        &admin,
        None,
    )
    .await;
    assert_eq!(by_class.as_array().unwrap().len(), 1);
}

/// The one student session with stored conversations in `class_id`.
async fn student_session(app: &TestApp, class_id: &str) -> String {
    app.state
        .store
        .conversations_of(class_id, 10)
        .await
        .unwrap()
        .remove(0)
        .session_id
}

#[tokio::test]
async fn stored_text_stays_readable_through_a_secret_rotation_and_not_after_the_old_secret_is_dropped()
 {
    let app =
        spawn_app_with(Opts::default().with(|s| s.classes = toml_classes(s, TWO_CLASSES))).await;
    let s = sign_in_as(&app, "open-book-11", "Mei").await;
    say(&app, &s.token, "r-1", "sealed under the first secret").await;
    wait_for("stored", || async { stored(&app, "open-book").await == 1 }).await;
    let dir = app.dir();
    app.stop().await;

    let new_secret = "a-new-secret-after-rotation-0123456789abcdef";
    let open = |previous: Option<&'static str>| {
        let dir = dir.clone();
        async move {
            let opts = Opts {
                dir: Some(dir),
                ..Opts::default()
            }
            .with(move |s| {
                s.auth_secret = new_secret.to_owned().into();
                s.auth_secret_previous = previous.map(|p| p.to_owned().into());
                s.classes = toml_classes(s, TWO_CLASSES);
            });
            let app = spawn_app_with(opts).await;
            let admin = admin_token(&app).await;
            let session = app
                .state
                .store
                .conversations_of("open-book", 10)
                .await
                .unwrap()
                .remove(0)
                .session_id;
            let (s, conv) = api(
                &app,
                Method::GET,
                &format!("/api/v1/admin/classes/open-book/conversations/{session}/r-1"),
                &admin,
                None,
            )
            .await;
            assert_eq!(s, 200, "{conv}");
            app.stop().await;
            conv["exchanges"][0]["student"].clone()
        }
    };
    assert_eq!(
        open(Some(SECRET)).await,
        json!("sealed under the first secret"),
        "AUTH_SECRET_PREVIOUS opens what the old secret sealed"
    );
    assert_eq!(
        open(None).await,
        Value::Null,
        "without the old secret the text cannot be opened (and is not shown)"
    );
}
