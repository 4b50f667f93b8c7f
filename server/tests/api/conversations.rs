//! Conversation visibility (issue 23): per class `off` (the default), `flagged` or `full`,
//! carried in every sign-in answer; stored conversations, sealed; who may read them and
//! the access log. Runs on SQLite, and on PostgreSQL with `CLASSCHAT_TEST_DB=postgres`.

use std::io::Write;

use classchat_shared::{SessionResponse, Visibility};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

pub(crate) fn classes_file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

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

/// An administrator token, made the way `classchat admin create-token` makes one.
pub(crate) async fn admin_token(app: &TestApp) -> String {
    let t = classchat_server::teachers::new_token();
    let audit = classchat_server::store::teachers::Audit {
        actor: "test",
        address: None,
        now_ms: 0,
    };
    app.state
        .store
        .create_token("k_admin", &t.digest, &t.prefix, "test", None, audit)
        .await
        .unwrap();
    t.token
}

/// Sends a request to the admin API; answers the status and the JSON body (Null when empty).
pub(crate) async fn api(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = app
        .client
        .request(method, format!("{}{path}", app.address))
        .bearer_auth(token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A teacher invited by the administrator, with a token: (id, token).
pub(crate) async fn teacher(app: &TestApp, admin: &str, email: &str) -> (String, String) {
    use base64::Engine;
    let (s, invited) = api(
        app,
        Method::POST,
        "/api/v1/admin/teachers",
        admin,
        Some(json!({"email": email, "name": email})),
    )
    .await;
    assert_eq!(s, 201, "{invited}");
    let url = invited["invite_url"].as_str().unwrap();
    let code = url.split("code=").nth(1).unwrap();
    let password = "correct horse battery";
    let r = app
        .client
        .post(format!("{}/api/v1/invitations/accept", app.address))
        .json(&json!({"invitation": code, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{email}:{password}"));
    let r = app
        .client
        .post(format!("{}/api/v1/admin/tokens", app.address))
        .header("authorization", format!("Basic {basic}"))
        .json(&json!({"name": "script"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let t: Value = r.json().await.unwrap();
    (
        invited["id"].as_str().unwrap().to_owned(),
        t["token"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn the_sign_in_answer_and_every_refresh_carry_the_class_visibility() {
    let f = classes_file(TWO_CLASSES);
    let app =
        spawn_app_with(Opts::default().arg("--classes-file", f.path().to_str().unwrap())).await;
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
