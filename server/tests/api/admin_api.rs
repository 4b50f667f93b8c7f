//! The admin API as a script sees it: an administrator token, a request with a token, and
//! a teacher who accepted an invitation and made a token. Shared by every test file that
//! drives `/api/v1/admin/`.

use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::TestApp;

/// A teacher's password in these tests.
pub(crate) const TEACHER_PASSWORD: &str = "correct horse battery";

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
        .create_token(
            &format!("k_{}", uuid::Uuid::new_v4().simple()),
            &t.digest,
            &t.prefix,
            "test",
            None,
            audit,
        )
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

/// A teacher the administrator invited, who accepted with [`TEACHER_PASSWORD`] and made a
/// token with email:password: (id, token).
pub(crate) async fn teacher(app: &TestApp, admin: &str, email: &str) -> (String, String) {
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
    let r = app
        .client
        .post(format!("{}/api/v1/invitations/accept", app.address))
        .json(&json!({"invitation": code, "password": TEACHER_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{email}:{TEACHER_PASSWORD}"));
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
