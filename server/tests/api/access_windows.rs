//! Access windows (issue 22): a class in Asia/Taipei refuses sign-in and chat outside its
//! weekly periods and course dates with `class_closed` and the next opening, a token issued
//! inside a window stops at chat time once the window closes, bad windows change nothing;
//! and the models the key can use, checked when a class's model is set. Time is driven by
//! setting windows relative to "now" in Taipei (no sleeps). Runs on SQLite, and on
//! PostgreSQL with `CLASSCHAT_TEST_DB=postgres`.

use classchat_shared::{ApiError, ErrorCode};
use jiff::civil::Date;
use reqwest::Method;
use serde_json::{Value, json};

use crate::admin_api::{admin_token, api};
use crate::helpers::*;

const TAIPEI: &str = "Asia/Taipei";

/// Today in Taipei.
fn today() -> Date {
    jiff::Zoned::now()
        .with_time_zone(jiff::tz::TimeZone::get(TAIPEI).unwrap())
        .date()
}

fn day_name(d: Date) -> &'static str {
    ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][d.weekday().to_monday_zero_offset() as usize]
}

/// A class in Taipei with `extra` settings and one activity; answers (class id, code).
async fn taipei_class(app: &TestApp, admin: &str, extra: Value) -> (String, String) {
    let mut body = json!({"title": "Biology 7A", "time_zone": TAIPEI});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let (s, class) = api(
        app,
        Method::POST,
        "/api/v1/admin/classes",
        admin,
        Some(body),
    )
    .await;
    assert_eq!(s, 201, "{class}");
    let id = class["id"].as_str().unwrap().to_owned();
    let (s, act) = api(
        app,
        Method::POST,
        &format!("/api/v1/admin/classes/{id}/activities"),
        admin,
        Some(json!({"title": "Lab report helper"})),
    )
    .await;
    assert_eq!(s, 201, "{act}");
    (id, act["code"].as_str().unwrap().to_owned())
}

async fn patch_class(app: &TestApp, admin: &str, id: &str, body: Value) -> (u16, Value) {
    api(
        app,
        Method::PATCH,
        &format!("/api/v1/admin/classes/{id}"),
        admin,
        Some(body),
    )
    .await
}

/// Open all of today in Taipei (and only today's weekday).
fn open_today() -> Value {
    json!([{"days": [day_name(today())], "start": "00:00", "end": "24:00"}])
}

/// Open only tomorrow (Taipei), 10:00–11:00; and when that opens, as the server writes it.
/// Tomorrow is read again after the request, so a test that runs across midnight accepts
/// either day.
fn tomorrow_window() -> Value {
    let t = today().tomorrow().unwrap();
    json!([{"days": [day_name(t)], "start": "10:00", "end": "11:00"}])
}

fn tomorrow_at(hhmm: &str) -> [String; 2] {
    let t = today().tomorrow().unwrap();
    [
        format!("{t}T{hhmm}:00+08:00"),
        format!("{}T{hhmm}:00+08:00", t.tomorrow().unwrap()),
    ]
}

async fn closed(r: reqwest::Response) -> ApiError {
    expect_error(r, 403, ErrorCode::ClassClosed).await
}

#[tokio::test]
async fn sign_in_and_chat_are_refused_outside_the_windows_with_the_next_opening_in_taipei() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let (class, code) = taipei_class(&app, &admin, json!({"windows": tomorrow_window()})).await;

    // Outside: sign-in is refused with tomorrow 10:00 in Taipei's offset.
    let r = app
        .post_session(json!({"access_code": code, "display_name": "Mei"}))
        .await;
    let e = closed(r).await;
    let opens = e.error.opens_at.clone().expect("opens_at");
    assert!(tomorrow_at("10:00").contains(&opens), "{opens}");
    assert!(
        e.error
            .message
            .contains(&format!("opens on {} at 10:00 (UTC+08:00)", &opens[..10])),
        "{}",
        e.error.message
    );
    let (_, view) = api(
        &app,
        Method::GET,
        &format!("/api/v1/admin/classes/{class}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(view["open_now"], false);
    assert_eq!(view["opens_at"], opens.as_str());

    // Inside (all of today): sign-in and chat work.
    let (s, body) = patch_class(&app, &admin, &class, json!({"windows": open_today()})).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["open_now"], true);
    let r = app
        .post_session(json!({"access_code": code, "display_name": "Mei"}))
        .await;
    assert_eq!(r.status(), 200);
    let session: classchat_shared::SessionResponse = r.json().await.unwrap();
    let token = session.token;
    let r = app.post_chat(&token, chat_body("hi", false)).await;
    assert_eq!(r.status(), 200);

    // The window closes: the token issued inside it is refused for chat and refresh, with
    // the next opening, and nothing reaches Open WebUI. Signing out still works.
    let sent = app.upstream.requests().len();
    let (s, _) = patch_class(&app, &admin, &class, json!({"windows": tomorrow_window()})).await;
    assert_eq!(s, 200);
    let e = closed(
        app.post_chat(&token, chat_body("still there?", false))
            .await,
    )
    .await;
    assert!(tomorrow_at("10:00").contains(&e.error.opens_at.unwrap()));
    closed(app.refresh(&token).await).await;
    assert_eq!(
        app.upstream.requests().len(),
        sent,
        "nothing reached the upstream"
    );

    // Reopened: the same token chats again (the check is at chat time, not baked into it).
    patch_class(&app, &admin, &class, json!({"windows": open_today()})).await;
    assert_eq!(
        app.post_chat(&token, chat_body("back", false))
            .await
            .status(),
        200
    );

    // The course starts tomorrow (no periods): it opens at tomorrow's midnight.
    let tomorrow = today().tomorrow().unwrap().to_string();
    let (s, body) = patch_class(
        &app,
        &admin,
        &class,
        json!({"windows": [], "course_start": tomorrow}),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let e = closed(app.post_chat(&token, chat_body("early", false)).await).await;
    assert!(tomorrow_at("00:00").contains(&e.error.opens_at.unwrap()));

    // The course ended yesterday: refused with no opening at all.
    let yesterday = today().yesterday().unwrap().to_string();
    let (s, body) = patch_class(
        &app,
        &admin,
        &class,
        json!({"course_start": null, "course_end": yesterday, "windows": open_today()}),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["open_now"], false);
    assert!(body.get("opens_at").is_none(), "{body}");
    let r = app
        .post_session(json!({"access_code": code, "display_name": "Mei"}))
        .await;
    let e = closed(r).await;
    assert_eq!(e.error.opens_at, None);
    assert!(e.error.message.contains("has ended"), "{}", e.error.message);
    let e = closed(app.post_chat(&token, chat_body("late", false)).await).await;
    assert_eq!(e.error.opens_at, None);
    assert_eq!(
        app.logout(&token).await.status(),
        204,
        "signing out works at any time"
    );

    // No windows and no dates: always open, as before windows existed.
    let (s, _) = patch_class(
        &app,
        &admin,
        &class,
        json!({"course_end": null, "windows": []}),
    )
    .await;
    assert_eq!(s, 200);
    let r = app
        .post_session(json!({"access_code": code, "display_name": "Mei"}))
        .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn malformed_overlapping_and_backwards_windows_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let (class, _) = taipei_class(
        &app,
        &admin,
        json!({"windows": [{"days": ["mon-fri"], "start": "08:00", "end": "16:30"}],
               "course_start": "2026-09-01", "course_end": "2027-01-20"}),
    )
    .await;
    let path = format!("/api/v1/admin/classes/{class}");
    let (_, before) = api(&app, Method::GET, &path, &admin, None).await;
    assert_eq!(
        before["windows"],
        json!([{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:00", "end": "16:30"}])
    );
    assert_eq!(before["course_start"], "2026-09-01");

    for (body, status, code, says) in [
        (
            json!({"title": "Changed", "windows": [
                {"days": ["mon-fri"], "start": "08:00", "end": "12:00"},
                {"days": ["fri"], "start": "11:30", "end": "13:00"}]}),
            422,
            "overlapping_windows",
            "windows 1 (08:00–12:00) and 2 (11:30–13:00) overlap on fri",
        ),
        (
            json!({"title": "Changed", "windows": [{"days": ["mon"], "start": "8 am", "end": "12:00"}]}),
            422,
            "invalid_window",
            "window 1: start \"8 am\"",
        ),
        (
            json!({"windows": [{"days": ["funday"], "start": "08:00", "end": "12:00"}]}),
            422,
            "invalid_window",
            "\"funday\" is not a day",
        ),
        (
            json!({"windows": [{"days": ["mon"], "start": "13:00", "end": "12:00"}]}),
            422,
            "invalid_window",
            "not after start",
        ),
        (
            json!({"course_end": "2026-08-31"}),
            422,
            "course_ends_before_start",
            "course_end 2026-08-31 is before course_start 2026-09-01",
        ),
        (
            json!({"course_start": "2026-02-30"}),
            422,
            "invalid_course_date",
            "course_start \"2026-02-30\" is not a date",
        ),
        (
            json!({"windows": [{"days": "mon", "start": "08:00", "end": "12:00"}]}),
            400,
            "bad_request",
            "days",
        ),
        (
            json!({"windows": [{"days": ["mon"], "start": "08:00"}]}),
            400,
            "bad_request",
            "end",
        ),
    ] {
        let (s, e) = api(&app, Method::PATCH, &path, &admin, Some(body.clone())).await;
        assert_eq!(s, status, "{body}: {e}");
        assert_eq!(e["error"]["code"], code, "{body}: {e}");
        let message = e["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{body}: {message}");
    }
    let (_, after) = api(&app, Method::GET, &path, &admin, None).await;
    assert_eq!(after, before, "nothing changed");

    // A new class with bad windows is not made at all.
    let (_, list_before) = api(&app, Method::GET, "/api/v1/admin/classes", &admin, None).await;
    let (s, e) = api(
        &app,
        Method::POST,
        "/api/v1/admin/classes",
        &admin,
        Some(json!({"title": "Bad", "course_start": "2027-01-02", "course_end": "2027-01-01"})),
    )
    .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (422, Some("course_ends_before_start"))
    );
    let (_, list_after) = api(&app, Method::GET, "/api/v1/admin/classes", &admin, None).await;
    assert_eq!(list_after, list_before);
}

#[tokio::test]
async fn a_classes_file_class_keeps_to_its_windows() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("classes.toml");
    let t = today().tomorrow().unwrap();
    std::fs::write(
        &file,
        format!(
            r#"
[[class]]
id = "bio"
title = "Biology"
codes = ["bio-code-2026"]
windows = [{{ days = ["{}"], start = "10:00", end = "11:00" }}]
course_start = 2020-01-01

[[class]]
id = "chem"
title = "Chemistry"
codes = ["chem-code-2026"]
course_end = "{}"
"#,
            day_name(t),
            today().yesterday().unwrap()
        ),
    )
    .unwrap();
    // TIMEZONE is Asia/Taipei in the tests: the file's windows are in it.
    let toml = std::fs::read_to_string(&file).unwrap();
    let app =
        spawn_app_with(Opts::default().with(move |s| s.classes = toml_classes(s, &toml))).await;
    let e = closed(
        app.post_session(json!({"access_code": "bio-code-2026"}))
            .await,
    )
    .await;
    assert!(tomorrow_at("10:00").contains(&e.error.opens_at.unwrap()));
    let e = closed(
        app.post_session(json!({"access_code": "chem-code-2026"}))
            .await,
    )
    .await;
    assert_eq!(e.error.opens_at, None);
}

#[tokio::test]
async fn a_class_model_must_be_one_the_key_can_use_when_the_list_can_be_had() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;

    // Any signed-in caller gets the list; no token, no list.
    let (s, list) = api(&app, Method::GET, "/api/v1/admin/models", &admin, None).await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(
        list["models"],
        json!([{"id": "test-model", "name": "test-model"}])
    );
    let r = app.get("/api/v1/admin/models").await;
    assert_eq!(r.status(), 401);

    // An unknown model is refused by name, with the ones that exist; nothing is made.
    let (_, before) = api(&app, Method::GET, "/api/v1/admin/classes", &admin, None).await;
    let (s, e) = api(
        &app,
        Method::POST,
        "/api/v1/admin/classes",
        &admin,
        Some(json!({"title": "Physics", "model": "gpt-imaginary"})),
    )
    .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (422, Some("unknown_model")),
        "{e}"
    );
    let message = e["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("\"gpt-imaginary\"") && message.contains("test-model"),
        "{message}"
    );
    let (_, after) = api(&app, Method::GET, "/api/v1/admin/classes", &admin, None).await;
    assert_eq!(after, before);

    let (s, class) = api(
        &app,
        Method::POST,
        "/api/v1/admin/classes",
        &admin,
        Some(json!({"title": "Physics", "model": "test-model"})),
    )
    .await;
    assert_eq!(s, 201, "{class}");
    assert!(class.get("warnings").is_none(), "{class}");
    let id = class["id"].as_str().unwrap();

    // A model added in Open WebUI is seen once the list is refreshed (it is cached).
    app.upstream
        .configure(|c| c.models = vec!["test-model".into(), "new-model".into()]);
    let (s, _) = patch_class(&app, &admin, id, json!({"model": "new-model"})).await;
    assert_eq!(s, 422, "the cached list does not have it yet");
    let (s, list) = api(
        &app,
        Method::GET,
        "/api/v1/admin/models?refresh=true",
        &admin,
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(list["models"].as_array().unwrap().len(), 2);
    let (s, class) = patch_class(&app, &admin, id, json!({"model": "new-model"})).await;
    assert_eq!(s, 200, "{class}");
    assert_eq!(class["model"], "new-model");

    // An activity's model is checked the same way.
    let (s, e) = api(
        &app,
        Method::POST,
        &format!("/api/v1/admin/classes/{id}/activities"),
        &admin,
        Some(json!({"title": "Lab", "model": "nope"})),
    )
    .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (422, Some("unknown_model")),
        "{e}"
    );
    assert!(app.state.store.activities_of(id).await.unwrap().is_empty());
}

#[tokio::test]
async fn while_open_webui_cannot_be_reached_a_model_is_accepted_and_the_answer_says_so() {
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{closed_port}");
    let app = spawn_app_with(Opts::default().with(move |s| open_webui_at(s, &base))).await;
    let admin = admin_token(&app).await;
    let (s, e) = api(&app, Method::GET, "/api/v1/admin/models", &admin, None).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (502, Some("models_unavailable")),
        "{e}"
    );
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("OPEN_WEBUI_URL"),
        "{e}"
    );
    let (s, class) = api(
        &app,
        Method::POST,
        "/api/v1/admin/classes",
        &admin,
        Some(json!({"title": "Physics", "model": "any-model"})),
    )
    .await;
    assert_eq!(s, 201, "{class}");
    assert_eq!(class["model"], "any-model");
    let warning = class["warnings"][0].as_str().unwrap();
    assert!(
        warning.contains("\"any-model\" was saved without being checked"),
        "{warning}"
    );
    assert!(!warning.contains(API_KEY));
}
