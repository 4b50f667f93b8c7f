//! The admin API: teachers, invitations, tokens, classes and activities made in the store
//! and live at once, roles, the audit log, and the OpenAPI document. Runs on SQLite, and
//! on PostgreSQL with `CLASSCHAT_TEST_DB=postgres`; the two-replica test always on
//! PostgreSQL.

use std::time::{Duration, Instant};

use base64::Engine;
use classchat_shared::{ErrorCode, SessionResponse};
use reqwest::Method;
use serde_json::{Value, json};

use crate::admin_api::{TEACHER_PASSWORD, admin_token, api, teacher};
use crate::helpers::*;

/// A server and an administrator token.
async fn app_with_admin() -> (TestApp, String) {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    (app, admin)
}

/// A server, an administrator token and a teacher, mei@school.edu: (id, token).
async fn app_with_teacher() -> (TestApp, String, (String, String)) {
    let (app, admin) = app_with_admin().await;
    let t = teacher(&app, &admin, "mei@school.edu").await;
    (app, admin, t)
}

async fn get(app: &TestApp, path: &str, token: &str) -> (u16, Value) {
    api(app, Method::GET, path, token, None).await
}

async fn delete(app: &TestApp, path: &str, token: &str) -> (u16, Value) {
    api(app, Method::DELETE, path, token, None).await
}

async fn post(app: &TestApp, path: &str, token: &str, body: Value) -> (u16, Value) {
    api(app, Method::POST, path, token, Some(body)).await
}

async fn patch(app: &TestApp, path: &str, token: &str, body: Value) -> (u16, Value) {
    api(app, Method::PATCH, path, token, Some(body)).await
}

async fn put(app: &TestApp, path: &str, token: &str, body: Value) -> (u16, Value) {
    api(app, Method::PUT, path, token, Some(body)).await
}

/// Invites a teacher (as the administrator `admin`).
async fn invite(app: &TestApp, admin: &str, email: &str, name: &str) -> (u16, Value) {
    let body = json!({"email": email, "name": name});
    post(app, "/api/v1/admin/teachers", admin, body).await
}

/// Gives an activity a new code.
async fn rotate(app: &TestApp, activity: &str, token: &str) -> (u16, Value) {
    let path = format!("/api/v1/admin/activities/{activity}/rotate");
    api(app, Method::POST, &path, token, None).await
}

fn invitation_of(invited: &Value) -> String {
    let url = invited["invite_url"].as_str().unwrap();
    url.split("code=").nth(1).unwrap().to_owned()
}

async fn accept(app: &TestApp, invitation: &str, password: &str) -> reqwest::Response {
    app.client
        .post(format!("{}/api/v1/invitations/accept", app.address))
        .json(&json!({"invitation": invitation, "password": password}))
        .send()
        .await
        .unwrap()
}

/// A refusal's status and error code.
async fn status_and_code(r: reqwest::Response) -> (u16, String) {
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    (
        status,
        body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

async fn token_with_password(app: &TestApp, email: &str, password: &str) -> (u16, Value) {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{email}:{password}"));
    let r = app
        .client
        .post(format!("{}/api/v1/admin/tokens", app.address))
        .header("authorization", format!("Basic {basic}"))
        .json(&json!({"name": "script"}))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// A class with one activity; answers (class id, activity id, code).
async fn class_with_activity(app: &TestApp, token: &str, prompt: &str) -> (String, String, String) {
    let (s, class) = post(
        app,
        "/api/v1/admin/classes",
        token,
        json!({"title": "Biology 7A", "system_prompt": prompt, "greeting": "Hello, 7A!"}),
    )
    .await;
    assert_eq!(s, 201, "{class}");
    let id = class["id"].as_str().unwrap().to_owned();
    let (s, act) = post(
        app,
        &format!("/api/v1/admin/classes/{id}/activities"),
        token,
        json!({"title": "Lab report helper"}),
    )
    .await;
    assert_eq!(s, 201, "{act}");
    (
        id,
        act["id"].as_str().unwrap().to_owned(),
        act["code"].as_str().unwrap().to_owned(),
    )
}

async fn sign_in_with(app: &TestApp, code: &str) -> SessionResponse {
    let r = app
        .post_session(json!({"access_code": code, "display_name": "Mei"}))
        .await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// The system prompt of the latest request the fake upstream received.
fn last_system_prompt(app: &TestApp) -> String {
    let reqs = app.upstream.requests();
    let last = reqs.last().expect("a request reached the upstream");
    last.body["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn set_invitations_expired(app: &TestApp) {
    let sql = "UPDATE invitations SET expires_ms = 1";
    if on_postgres() {
        let pool = sqlx::PgPool::connect(&app.db_url).await.unwrap();
        sqlx::query(sql).execute(&pool).await.unwrap();
        pool.close().await;
    } else {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", app.db_url))
            .await
            .unwrap();
        sqlx::query(sql).execute(&pool).await.unwrap();
        pool.close().await;
    }
}

#[tokio::test]
async fn an_invitation_works_once_and_not_after_it_expires() {
    let (app, admin) = app_with_admin().await;
    let (s, invited) = invite(&app, &admin, "Mei@School.edu", "Mei").await;
    assert_eq!(s, 201);
    assert_eq!(invited["email"], "mei@school.edu");
    let code = invitation_of(&invited);
    // Too short a password changes nothing: the invitation still works afterwards.
    assert_eq!(accept(&app, &code, "short").await.status(), 400);
    assert_eq!(accept(&app, &code, TEACHER_PASSWORD).await.status(), 204);
    let again = accept(&app, &code, "another password!").await;
    assert_eq!(
        status_and_code(again).await,
        (410, "invitation_used".into())
    );
    // The first password stands; the second attempt did not replace it.
    let mei = |password| token_with_password(&app, "mei@school.edu", password);
    assert_eq!(mei(TEACHER_PASSWORD).await.0, 201);
    assert_eq!(mei("another password!").await.0, 401);
    let unknown = accept(&app, "no-such-invitation", TEACHER_PASSWORD).await;
    assert_eq!(unknown.status(), 404);

    let (_, late) = invite(&app, &admin, "lin@school.edu", "Lin").await;
    set_invitations_expired(&app).await;
    let r = accept(&app, &invitation_of(&late), TEACHER_PASSWORD).await;
    assert_eq!(status_and_code(r).await, (410, "invitation_expired".into()));
    let lin = token_with_password(&app, "lin@school.edu", TEACHER_PASSWORD).await;
    assert_eq!(lin.0, 401);
    // The same email twice is refused.
    let (s, _) = invite(&app, &admin, "lin@school.edu", "Lin").await;
    assert_eq!(s, 409);
}

/// One admin API route as the table below tries it: `{class}`, `{activity}`, `{teacher}`
/// and `{token}` are filled in with the other teacher's ids.
struct Route {
    method: Method,
    path: String,
    body: Option<Value>,
}

/// A request of a table: `METHOD path`, each `{name}` of `vars` filled in, and a JSON body
/// (empty: none).
fn request(spec: &str, body: &str, vars: &[(&str, &str)]) -> Route {
    let (method, path) = spec.split_once(' ').unwrap();
    let path = vars.iter().fold(path.to_owned(), |p, (k, v)| {
        p.replace(&format!("{{{k}}}"), v)
    });
    Route {
        method: method.parse().unwrap(),
        path,
        body: (!body.is_empty()).then(|| serde_json::from_str(body).unwrap()),
    }
}

/// Each request of `table`, sent as `token`, is refused with 403 `forbidden`.
async fn all_forbidden(app: &TestApp, token: &str, table: &[(&str, &str)], vars: &[(&str, &str)]) {
    for (spec, body) in table {
        let r = request(spec, body, vars);
        let (s, b) = api(app, r.method.clone(), &r.path, token, r.body).await;
        let code = b["error"]["code"].as_str();
        assert_eq!(
            (s, code),
            (403, Some("forbidden")),
            "{} {}: {b}",
            r.method,
            r.path
        );
    }
}

/// Every admin API route, as `METHOD path` and a JSON body (empty: none). The test below
/// checks it against the OpenAPI document, so a new route that is not listed here fails it.
const ROUTES: &[(&str, &str)] = &[
    ("GET /api/v1/admin/classes/{id}", ""),
    (
        "PATCH /api/v1/admin/classes/{id}",
        r#"{"system_prompt": "Hacked."}"#,
    ),
    ("DELETE /api/v1/admin/classes/{id}", ""),
    ("GET /api/v1/admin/classes/{id}/members", ""),
    (
        "PUT /api/v1/admin/classes/{id}/members/{teacher_id}",
        r#"{"role": "owner"}"#,
    ),
    ("DELETE /api/v1/admin/classes/{id}/members/{teacher_id}", ""),
    (
        "POST /api/v1/admin/classes/{id}/activities",
        r#"{"title": "Mine now"}"#,
    ),
    ("PATCH /api/v1/admin/activities/{id}", r#"{"paused": true}"#),
    ("POST /api/v1/admin/activities/{id}/rotate", ""),
    ("GET /api/v1/admin/classes/{id}/usage", ""),
    ("GET /api/v1/admin/classes/{id}/conversations", ""),
    (
        "GET /api/v1/admin/classes/{id}/conversations/{session_id}/{conversation_id}",
        "",
    ),
    ("GET /api/v1/admin/conversation-reads", ""),
    ("GET /api/v1/admin/lti/platforms", ""),
    (
        "POST /api/v1/admin/lti/platforms",
        r#"{"issuer": "https://lms.example.edu", "client_id": "x", "auth_url": "https://lms.example.edu/auth", "jwks_url": "https://lms.example.edu/jwks", "deployments": ["1"]}"#,
    ),
    (
        "PUT /api/v1/admin/lti/platforms/{id}/deployments",
        r#"{"deployments": ["1"]}"#,
    ),
    ("DELETE /api/v1/admin/lti/platforms/{id}", ""),
    ("GET /api/v1/admin/lti/tool", ""),
    ("POST /api/v1/admin/lti/tool-key/rotate", ""),
    ("GET /api/v1/admin/classes/{id}/safety", ""),
    (
        "PUT /api/v1/admin/classes/{id}/safety",
        r#"{"contacts": []}"#,
    ),
    ("GET /api/v1/admin/alerts/{id}", ""),
    ("POST /api/v1/admin/alerts/{id}/dismiss", ""),
    (
        "GET /api/v1/admin/classes/{id}/sessions/{session_id}/export",
        "",
    ),
    (
        "DELETE /api/v1/admin/classes/{id}/sessions/{session_id}",
        "",
    ),
    (
        "POST /api/v1/admin/classes/{id}/end-of-term",
        r#"{"confirm":"x"}"#,
    ),
    ("GET /api/v1/admin/audit?class_id={class}", ""),
    ("GET /api/v1/admin/classes/{id}/personal-codes", ""),
    (
        "POST /api/v1/admin/classes/{id}/personal-codes",
        r#"{"names": ["Intruder"]}"#,
    ),
    ("POST /api/v1/admin/personal-codes/{id}/revoke", ""),
    ("POST /api/v1/admin/personal-codes/{id}/reissue", ""),
    ("GET /api/v1/admin/classes/{id}/allowance", ""),
    (
        "PUT /api/v1/admin/classes/{id}/allowance",
        r#"{"per_day": 1, "per_week": 0}"#,
    ),
    (
        "POST /api/v1/admin/classes/{id}/allowance/reset",
        r#"{"student": "code:x"}"#,
    ),
    (
        "POST /api/v1/admin/teachers",
        r#"{"email": "x@y.edu", "name": "X"}"#,
    ),
    ("GET /api/v1/admin/teachers", ""),
    ("PATCH /api/v1/admin/teachers/{id}", r#"{"disabled": true}"#),
    ("DELETE /api/v1/admin/tokens/{id}", ""),
    // Scoped to the caller by construction (their own list, their own token, an
    // invitation secret): tried too, and must not show or change the other's data.
    ("GET /api/v1/admin/classes", ""),
    ("GET /api/v1/admin/alerts", ""),
    ("GET /api/v1/admin/models", ""),
    ("POST /api/v1/admin/classes", r#"{"title": "Own class"}"#),
    ("GET /api/v1/admin/tokens", ""),
    ("POST /api/v1/admin/tokens", r#"{"name": "own"}"#),
    (
        "POST /api/v1/invitations/accept",
        r#"{"invitation": "x", "password": "p"}"#,
    ),
];

fn every_route() -> Vec<Route> {
    ROUTES
        .iter()
        .map(|(spec, body)| request(spec, body, &[]))
        .collect()
}

#[tokio::test]
async fn a_teacher_cannot_read_or_change_another_teachers_class_on_any_route() {
    let (app, admin) = app_with_admin().await;
    let (a_id, a) = teacher(&app, &admin, "a@school.edu").await;
    let (b_id, b) = teacher(&app, &admin, "b@school.edu").await;
    let (class, activity, code) = class_with_activity(&app, &a, "Be kind.").await;
    let (_, a_tokens) = get(&app, "/api/v1/admin/tokens", &a).await;
    let a_token_id = a_tokens[0]["id"].as_str().unwrap().to_owned();
    let before = get(&app, &format!("/api/v1/admin/classes/{class}"), &a).await;
    assert_eq!(before.0, 200);
    let members_before = get(&app, &format!("/api/v1/admin/classes/{class}/members"), &a).await;
    // A personal code of A's class, which B must neither revoke nor re-issue.
    let (s, made) = api(
        &app,
        Method::POST,
        &format!("/api/v1/admin/classes/{class}/personal-codes"),
        &a,
        Some(json!({"names": ["Mei Lin"]})),
    )
    .await;
    assert_eq!(s, 201, "{made}");
    let personal_id = made["codes"][0]["id"].as_str().unwrap().to_owned();
    let personal_code = made["codes"][0]["code"].as_str().unwrap().to_owned();

    // The table covers every route of the document.
    let (_, doc) = get(&app, "/api/v1/openapi.json", &b).await;
    let routes = every_route();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let listed = routes.iter().any(|r| {
                r.method.as_str().eq_ignore_ascii_case(method)
                    && r.path.split('?').next() == Some(path.as_str())
            });
            assert!(
                listed,
                "{method} {path} is in the API but not in every_route()"
            );
        }
    }

    for r in &routes {
        let id = if r.path.contains("/activities/") {
            &activity
        } else if r.path.contains("/teachers/") {
            &a_id
        } else if r.path.contains("/tokens/") {
            &a_token_id
        } else if r.path.contains("/personal-codes/") {
            &personal_id
        } else {
            &class
        };
        let path = r
            .path
            .replace("{id}", id)
            .replace("{teacher_id}", &b_id)
            .replace("{class}", &class);
        let (status, body) = api(&app, r.method.clone(), &path, &b, r.body.clone()).await;
        let scoped = matches!(
            (r.method.as_str(), r.path.as_str()),
            ("GET", "/api/v1/admin/classes")
                | ("GET", "/api/v1/admin/alerts")
                | ("GET", "/api/v1/admin/models")
                | ("POST", "/api/v1/admin/classes")
                | ("GET", "/api/v1/admin/tokens")
                | ("POST", "/api/v1/admin/tokens")
                | ("POST", "/api/v1/invitations/accept")
        );
        if scoped {
            let text = body.to_string();
            assert!(
                !text.contains(&class) && !text.contains(&a_token_id),
                "{} {path}: {text}",
                r.method
            );
        } else {
            assert!(
                status == 404 || status == 403,
                "{} {path}: {status} {body}",
                r.method
            );
            assert!(
                body["error"]["code"].is_string(),
                "{} {path}: {body}",
                r.method
            );
        }
    }
    // Nothing changed: the class, its members, its activity's code, A's token.
    let after = get(&app, &format!("/api/v1/admin/classes/{class}"), &a).await;
    assert_eq!(after.1["system_prompt"], "Be kind.");
    assert_eq!(after, before);
    let members_after = get(&app, &format!("/api/v1/admin/classes/{class}/members"), &a).await;
    assert_eq!(members_after, members_before);
    sign_in_with(&app, &code).await;
    sign_in_with(&app, &personal_code).await;
    let (s, me) = get(&app, "/api/v1/admin/tokens", &a).await;
    assert_eq!(s, 200, "A's token still works");
    assert_eq!(me[0]["id"], a_token_id.as_str());
    let (_, teachers) = get(&app, "/api/v1/admin/teachers", &admin).await;
    assert!(
        teachers
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["disabled"] == false)
    );
}

#[tokio::test]
async fn a_co_teacher_cannot_delete_or_change_members_and_an_assistant_changes_nothing() {
    let (app, admin) = app_with_admin().await;
    let (_, owner) = teacher(&app, &admin, "owner@school.edu").await;
    let (co_id, co) = teacher(&app, &admin, "co@school.edu").await;
    let (as_id, asst) = teacher(&app, &admin, "asst@school.edu").await;
    let (class, activity, _) = class_with_activity(&app, &owner, "Be kind.").await;
    let c = format!("/api/v1/admin/classes/{class}");
    for (id, role) in [(&co_id, "co_teacher"), (&as_id, "assistant")] {
        let (s, b) = put(
            &app,
            &format!("{c}/members/{id}"),
            &owner,
            json!({"role": role}),
        )
        .await;
        assert_eq!(s, 204, "{b}");
    }
    // The co-teacher edits the class and its activities…
    let (s, v) = patch(&app, &c, &co, json!({"greeting": "Hi from co"})).await;
    assert_eq!((s, v["role"].clone()), (200, json!("co_teacher")));
    let (s, _) = rotate(&app, &activity, &co).await;
    assert_eq!(s, 200);
    // …but cannot delete it or change its members.
    let vars = [
        ("c", c.as_str()),
        ("class", class.as_str()),
        ("activity", activity.as_str()),
        ("as", as_id.as_str()),
        ("co", co_id.as_str()),
    ];
    let co_cannot = [
        ("DELETE {c}", ""),
        ("PUT {c}/members/{as}", r#"{"role": "owner"}"#),
        ("DELETE {c}/members/{as}", ""),
        ("GET /api/v1/admin/audit?class_id={class}", ""),
    ];
    all_forbidden(&app, &co, &co_cannot, &vars).await;

    // The assistant reads, and changes nothing.
    assert_eq!(get(&app, &c, &asst).await.0, 200);
    assert_eq!(get(&app, &format!("{c}/usage"), &asst).await.0, 200);
    let before = get(&app, &c, &owner).await;
    let assistant_cannot = [
        ("PATCH {c}", r#"{"title": "Mine"}"#),
        ("DELETE {c}", ""),
        ("POST {c}/activities", r#"{"title": "X"}"#),
        (
            "PATCH /api/v1/admin/activities/{activity}",
            r#"{"paused": true}"#,
        ),
        ("POST /api/v1/admin/activities/{activity}/rotate", ""),
        ("PUT {c}/members/{as}", r#"{"role": "owner"}"#),
        ("DELETE {c}/members/{co}", ""),
    ];
    all_forbidden(&app, &asst, &assistant_cannot, &vars).await;
    assert_eq!(get(&app, &c, &owner).await, before, "nothing changed");
    let (_, members) = get(&app, &format!("{c}/members"), &owner).await;
    assert_eq!(members.as_array().unwrap().len(), 3);
    // The owner may.
    assert_eq!(
        delete(&app, &format!("{c}/members/{co_id}"), &owner)
            .await
            .0,
        204
    );
    assert_eq!(delete(&app, &c, &owner).await.0, 204);
    assert_eq!(get(&app, &c, &owner).await.0, 404);
}

#[tokio::test]
async fn a_revoked_token_is_refused_with_401() {
    let (app, _, (_, t)) = app_with_teacher().await;
    let (s, list) = get(&app, "/api/v1/admin/tokens", &t).await;
    assert_eq!(s, 200);
    assert!(list[0]["prefix"].as_str().unwrap().starts_with("cc_pat_"));
    assert!(
        !list.to_string().contains(&t),
        "the list never shows a token"
    );
    let id = list[0]["id"].as_str().unwrap();
    assert_eq!(
        delete(&app, &format!("/api/v1/admin/tokens/{id}"), &t)
            .await
            .0,
        204
    );
    let (s, body) = get(&app, "/api/v1/admin/classes", &t).await;
    assert_eq!(s, 401);
    assert_eq!(body["error"]["code"], "unauthorized");
    // Neither a malformed token nor none at all gets further.
    assert_eq!(
        get(&app, "/api/v1/admin/classes", "cc_pat_nope").await.0,
        401
    );
    let r = app.get("/api/v1/admin/classes").await;
    assert_eq!(r.status(), 401);
    // A wrong password makes no token.
    assert_eq!(
        token_with_password(&app, "mei@school.edu", "wrong password!")
            .await
            .0,
        401
    );
}

#[tokio::test]
async fn a_disabled_teachers_token_stops() {
    let (app, admin, (id, t)) = app_with_teacher().await;
    assert_eq!(get(&app, "/api/v1/admin/classes", &t).await.0, 200);
    let (s, v) = patch(
        &app,
        &format!("/api/v1/admin/teachers/{id}"),
        &admin,
        json!({"disabled": true}),
    )
    .await;
    assert_eq!((s, v["disabled"].clone()), (200, json!(true)));
    assert_eq!(get(&app, "/api/v1/admin/classes", &t).await.0, 401);
    assert_eq!(
        token_with_password(&app, "mei@school.edu", TEACHER_PASSWORD)
            .await
            .0,
        401
    );
    // A teacher may not disable anyone.
    let (_, other) = teacher(&app, &admin, "lin@school.edu").await;
    assert_eq!(
        patch(
            &app,
            &format!("/api/v1/admin/teachers/{id}"),
            &other,
            json!({"disabled": false})
        )
        .await
        .0,
        403
    );
}

#[tokio::test]
async fn a_class_made_and_edited_through_the_api_is_live_at_once() {
    let app = spawn_app_with_fake(classchat_fake_upstream::FakeConfig {
        models: vec!["test-model".into(), "other-model".into()],
        ..Default::default()
    })
    .await;
    let admin = admin_token(&app).await;
    let (_, t) = teacher(&app, &admin, "mei@school.edu").await;
    let (class, _, code) = class_with_activity(&app, &t, "You are a patient biology tutor.").await;
    let s = sign_in_with(&app, &code).await;
    assert_eq!(s.class.greeting.as_deref(), Some("Hello, 7A!"));
    assert_eq!(
        app.post_chat(&s.token, chat_body("hi", false))
            .await
            .status(),
        200
    );
    assert_eq!(last_system_prompt(&app), "You are a patient biology tutor.");

    let change = json!({"system_prompt": "Answer only in haiku.", "greeting": "Welcome back!", "model": "other-model"});
    let (st, _) = patch(&app, &format!("/api/v1/admin/classes/{class}"), &t, change).await;
    assert_eq!(st, 200);
    // The same token: the next reply has the new prompt and model, without a restart.
    assert_eq!(
        app.post_chat(&s.token, chat_body("hi", false))
            .await
            .status(),
        200
    );
    assert_eq!(last_system_prompt(&app), "Answer only in haiku.");
    assert_eq!(
        app.upstream.requests().last().unwrap().body["model"],
        "other-model"
    );
    // And the next sign-in greets with the new greeting (a refresh too).
    assert_eq!(
        sign_in_with(&app, &code).await.class.greeting.as_deref(),
        Some("Welcome back!")
    );
    let r: SessionResponse = app.refresh(&s.token).await.json().await.unwrap();
    assert_eq!(r.class.greeting.as_deref(), Some("Welcome back!"));
    // A deleted class's tokens and code stop.
    assert_eq!(
        delete(&app, &format!("/api/v1/admin/classes/{class}"), &t)
            .await
            .0,
        204
    );
    assert_eq!(
        app.post_chat(&s.token, chat_body("hi", false))
            .await
            .status(),
        401
    );
    let r = app.post_session(json!({"access_code": code})).await;
    expect_error(r, 401, ErrorCode::InvalidCode).await;
}

#[tokio::test]
async fn an_activitys_code_brings_its_own_prompt_and_a_paused_activity_refuses_while_another_works()
{
    let (app, _, (_, t)) = app_with_teacher().await;
    let (class, lab, lab_code) = class_with_activity(&app, &t, "Class prompt.").await;
    let exam = json!({"title": "Exam revision", "system_prompt": "Quiz the student.", "greeting": "Ready?"});
    let (s, exam) = post(
        &app,
        &format!("/api/v1/admin/classes/{class}/activities"),
        &t,
        exam,
    )
    .await;
    assert_eq!(s, 201);
    let exam_code = exam["code"].as_str().unwrap();
    let e = sign_in_with(&app, exam_code).await;
    assert_eq!(e.class.greeting.as_deref(), Some("Ready?"));
    assert_eq!(e.class.id, class, "budgets and usage stay the class's");
    let l = sign_in_with(&app, &lab_code).await;
    assert_eq!(
        l.class.greeting.as_deref(),
        Some("Hello, 7A!"),
        "the class's greeting"
    );
    assert_eq!(
        app.post_chat(&e.token, chat_body("hi", false))
            .await
            .status(),
        200
    );
    assert_eq!(last_system_prompt(&app), "Quiz the student.");

    let (s, v) = patch(
        &app,
        &format!("/api/v1/admin/activities/{lab}"),
        &t,
        json!({"paused": true}),
    )
    .await;
    assert_eq!((s, v["paused"].clone()), (200, json!(true)));
    // Neither a sign-in nor a signed-in student's message gets through, and each is told why.
    for refusal in [
        app.post_session(json!({"access_code": lab_code})).await,
        app.post_chat(&l.token, chat_body("hi", false)).await,
    ] {
        let e = expect_error(refusal, 401, ErrorCode::ClassDisabled).await;
        assert!(e.error.message.contains("paused"), "{}", e.error.message);
    }
    // The other activity carries on.
    assert_eq!(
        app.post_chat(&e.token, chat_body("hi", false))
            .await
            .status(),
        200
    );
    sign_in_with(&app, exam_code).await;
    // Going on again.
    patch(
        &app,
        &format!("/api/v1/admin/activities/{lab}"),
        &t,
        json!({"paused": false}),
    )
    .await;
    assert_eq!(
        app.post_chat(&l.token, chat_body("hi", false))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn the_audit_log_holds_each_change_in_order_and_no_secret() {
    let (app, admin, (_, t)) = app_with_teacher().await;
    let (co_id, _) = teacher(&app, &admin, "lin@school.edu").await;
    let (class, activity, code) = class_with_activity(&app, &t, "Be kind.").await;
    let c = format!("/api/v1/admin/classes/{class}");
    patch(&app, &c, &t, json!({"system_prompt": "Be brief."})).await;
    patch(
        &app,
        &format!("/api/v1/admin/activities/{activity}"),
        &t,
        json!({"paused": true}),
    )
    .await;
    let (_, rotated) = rotate(&app, &activity, &t).await;
    put(
        &app,
        &format!("{c}/members/{co_id}"),
        &t,
        json!({"role": "co_teacher"}),
    )
    .await;
    let (s, lines) = get(&app, &format!("/api/v1/admin/audit?class_id={class}"), &t).await;
    assert_eq!(s, 200, "{lines}");
    let actions: Vec<&str> = lines
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "create_class",
            "create_activity",
            "update_class",
            "update_activity",
            "rotate_activity_code",
            "put_member"
        ]
    );
    let first = &lines[0];
    assert_eq!(first["actor"], "mei@school.edu");
    assert_eq!(first["address"], "127.0.0.1");
    assert!(lines[3]["detail"].as_str().unwrap().contains("paused"));
    // Exported for a spreadsheet, the same lines.
    let r = app
        .client
        .get(format!(
            "{}/api/v1/admin/audit?class_id={class}&format=csv",
            app.address
        ))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = r.text().await.unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows[0], "id,at,actor,action,class_id,detail,address");
    assert_eq!(rows.len(), 7, "{csv}");
    assert!(rows[6].contains(",put_member,"), "{}", rows[6]);
    // The administrator sees every line, the teacher-level ones too.
    let (_, all) = get(&app, "/api/v1/admin/audit", &admin).await;
    let all_actions: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["action"].as_str().unwrap())
        .collect();
    for a in [
        "invite_teacher",
        "accept_invitation",
        "create_token",
        "create_class",
    ] {
        assert!(all_actions.contains(&a), "{a} in {all_actions:?}");
    }
    let text = all.to_string();
    for secret in [
        code.as_str(),
        rotated["code"].as_str().unwrap(),
        t.as_str(),
        TEACHER_PASSWORD,
        &t[7..20],
    ] {
        assert!(!text.contains(secret), "a secret in the audit log");
    }
}

#[tokio::test]
async fn a_script_drives_the_routes_the_openapi_document_describes() {
    let (app, _, (_, t)) = app_with_teacher().await;
    let doc: Value = app.get("/api/v1/openapi.json").await.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    // Each step uses a route the document lists, with the method it lists.
    let described = |method: &str, path: &str| -> String {
        let item = paths
            .get(path)
            .unwrap_or_else(|| panic!("{path} is not in the document"));
        assert!(
            item.get(method).is_some(),
            "{method} {path} is not in the document"
        );
        path.to_owned()
    };
    let create = described("post", "/api/v1/admin/classes");
    assert!(doc["components"]["schemas"]["ClassFields"]["properties"]["system_prompt"].is_object());
    let (s, class) = post(
        &app,
        &create,
        &t,
        json!({"title": "Chemistry", "daily_quota": 500}),
    )
    .await;
    assert_eq!(s, 201);
    let id = class["id"].as_str().unwrap();
    let activities = described("post", "/api/v1/admin/classes/{id}/activities").replace("{id}", id);
    let (s, act) = post(&app, &activities, &t, json!({"title": "Titration"})).await;
    assert_eq!(s, 201);
    let old_code = act["code"].as_str().unwrap().to_owned();
    let rotate = described("post", "/api/v1/admin/activities/{id}/rotate")
        .replace("{id}", act["id"].as_str().unwrap());
    let (s, rotated) = api(&app, Method::POST, &rotate, &t, None).await;
    assert_eq!(s, 200);
    let new_code = rotated["code"].as_str().unwrap();
    assert_ne!(new_code, old_code);
    app.sign_in_refused(&old_code, ErrorCode::InvalidCode).await;
    let s = sign_in_with(&app, new_code).await;
    assert_eq!(
        app.post_chat(&s.token, chat_body("hi", false))
            .await
            .status(),
        200
    );
    let usage = described("get", "/api/v1/admin/classes/{id}/usage").replace("{id}", id);
    let deadline = Instant::now() + PATIENCE;
    let last = loop {
        let (s, u) = get(&app, &usage, &t).await;
        assert_eq!(s, 200, "{u}");
        if u["messages"] == 1 {
            break u;
        }
        assert!(
            Instant::now() < deadline,
            "the message never reached the usage rollups: {u}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(last["class_id"], id);
    let (s, bad) = get(&app, &format!("{usage}?from=yesterday"), &t).await;
    assert_eq!(
        (s, bad["error"]["code"].clone()),
        (400, json!("bad_request"))
    );
}

#[tokio::test]
async fn bad_input_gets_a_specific_error_and_changes_nothing() {
    let (app, admin) = app_with_admin().await;
    for (body, word) in [
        (json!({"title": " "}), "title"),
        (json!({"title": "A", "time_zone": "Mars/Base"}), "time_zone"),
        (json!({"title": "A", "starters": ["", "x"]}), "starter"),
        (json!({"title": "A", "token_ttl_secs": 5}), "token_ttl_secs"),
        (json!({"title": "A", "colour": "red"}), "colour"),
    ] {
        let (s, b) = post(&app, "/api/v1/admin/classes", &admin, body).await;
        assert_eq!(s, 400, "{b}");
        assert!(
            b["error"]["message"].as_str().unwrap().contains(word),
            "{b}"
        );
    }
    let (_, list) = get(&app, "/api/v1/admin/classes", &admin).await;
    assert_eq!(list, json!([]));
}

#[tokio::test]
async fn classchat_admin_create_token_prints_a_working_administrator_token_once() {
    let app = spawn_app().await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_classchat"))
        .args(["admin", "create-token", "--name", "SIS sync"])
        .env_clear()
        .env("DATABASE_URL", &app.db_url)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(token.starts_with("cc_pat_"), "{token}");
    assert!(!String::from_utf8_lossy(&out.stderr).contains(&token));
    let (s, _) = get(&app, "/api/v1/admin/teachers", &token).await;
    assert_eq!(s, 200, "an administrator token");
}

/// Two replicas on one PostgreSQL database: a class edited through one is live on the
/// other, and a teacher disabled on one is refused by the other within 2 s.
#[tokio::test]
async fn on_two_replicas_a_class_edit_and_a_disabled_teacher_reach_the_other_at_once() {
    let url = crate::pg_cluster::shared().create_database().await;
    let opts = || {
        Opts::default()
            .with(database(&url))
            .with(|s| s.resync_interval = hours(1))
    };
    let a = spawn_app_with(opts()).await;
    let b = spawn_app_with(opts()).await;
    let admin = admin_token(&a).await;
    let (id, t) = teacher(&a, &admin, "mei@school.edu").await;
    let (class, _, _) = class_with_activity(&a, &t, "First prompt.").await;
    let (s, act) = post(
        &a,
        &format!("/api/v1/admin/classes/{class}/activities"),
        &t,
        json!({"title": "Two"}),
    )
    .await;
    assert_eq!(s, 201);
    let code = act["code"].as_str().unwrap().to_owned();
    // B learns of the new activity by notification (the resync is an hour away).
    let start = Instant::now();
    let session = loop {
        let r = b.post_session(json!({"access_code": code})).await;
        if r.status() == 200 {
            eprintln!("the new activity on B: after {:?}", start.elapsed());
            break r.json::<SessionResponse>().await.unwrap();
        }
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "the new activity on B: not within 2 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    patch(
        &a,
        &format!("/api/v1/admin/classes/{class}"),
        &t,
        json!({"system_prompt": "Second prompt.", "greeting": "Second greeting."}),
    )
    .await;
    poll_within(Duration::from_secs(2), "the edited prompt on B", || async {
        assert_eq!(
            b.post_chat(&session.token, chat_body("hi", false))
                .await
                .status(),
            200
        );
        last_system_prompt(&b) == "Second prompt."
    })
    .await;
    let refreshed: SessionResponse = b.refresh(&session.token).await.json().await.unwrap();
    assert_eq!(
        refreshed.class.greeting.as_deref(),
        Some("Second greeting.")
    );

    assert_eq!(get(&b, "/api/v1/admin/classes", &t).await.0, 200);
    patch(
        &a,
        &format!("/api/v1/admin/teachers/{id}"),
        &admin,
        json!({"disabled": true}),
    )
    .await;
    poll_within(
        Duration::from_secs(2),
        "the disabled teacher on B",
        || async { get(&b, "/api/v1/admin/classes", &t).await.0 == 401 },
    )
    .await;
    assert_eq!(get(&a, "/api/v1/admin/classes", &t).await.0, 401);
}

/// Polls `cond` until it holds, failing if that takes longer than `limit`.
async fn poll_within<F, Fut>(limit: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if cond().await {
            eprintln!("{what}: after {:?}", start.elapsed());
            return;
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_dashboard_switch_holds_for_a_class_made_through_the_api_and_all_its_activities() {
    use crate::admin::{PASSWORD, act, sign_in_teacher};
    let app = spawn_app_with(Opts::default().with(|s| s.admin = admin_password(PASSWORD))).await;
    let admin = admin_token(&app).await;
    let (class, _, code) = class_with_activity(&app, &admin, "Be kind.").await;
    let s = sign_in_with(&app, &code).await;
    let dashboard = sign_in_teacher(&app).await;
    let overview = app.page_as("/admin", &dashboard.cookie).await;
    assert!(
        overview.contains("Biology 7A"),
        "the administrator's overview lists it"
    );
    let r = act(
        &app,
        &dashboard,
        &format!("/admin/classes/{class}/disable"),
        &[],
    )
    .await;
    assert_eq!(r.status(), 303);
    // The dashboard applies its change here at once; on PostgreSQL a reload this replica
    // began for an earlier notification may land just after it, and the next notification
    // heals it: poll.
    wait_for("the switch off", || async {
        app.post_chat(&s.token, chat_body("hi", false))
            .await
            .status()
            == 401
    })
    .await;
    app.chat_refused(&s.token, ErrorCode::ClassDisabled).await;
    app.sign_in_refused(&code, ErrorCode::ClassDisabled).await;
    act(
        &app,
        &dashboard,
        &format!("/admin/classes/{class}/enable"),
        &[],
    )
    .await;
    wait_for("the switch on", || async {
        app.post_chat(&s.token, chat_body("hi", false))
            .await
            .status()
            == 200
    })
    .await;
}

#[tokio::test]
async fn the_invitation_link_opens_a_form_that_sets_the_password_once() {
    let (app, admin) = app_with_admin().await;
    let (_, invited) = invite(&app, &admin, "mei@school.edu", "Mei").await;
    let url = invited["invite_url"].as_str().unwrap();
    assert!(url.starts_with(&app.address), "{url}");
    let page = app.client.get(url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let code = invitation_of(&invited);
    let html = page.text().await.unwrap();
    assert!(
        html.contains(&format!("value=\"{code}\"")),
        "the form carries the code"
    );
    assert!(html.contains("no-referrer"));
    let post = |password: &'static str, again: &'static str| {
        let app = &app;
        let code = code.clone();
        async move {
            app.client
                .post(format!("{}/admin/invitation", app.address))
                .form(&[
                    ("code", code.as_str()),
                    ("password", password),
                    ("again", again),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    let r = post(TEACHER_PASSWORD, "something else entirely").await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("not the same"));
    let r = post("short", "short").await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("shorter than 12"));
    // In Traditional Chinese when the browser asks for it, and the answer to the form too.
    let zh = app
        .client
        .get(url)
        .header("accept-language", "zh-TW,zh;q=0.9")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        zh.contains("設定您的 classchat 密碼") && zh.contains(r#"lang="zh-TW""#),
        "{zh}"
    );
    assert!(zh.contains("/admin/invitation?lang=zh-TW"));
    let r = app
        .client
        .post(format!("{}/admin/invitation?lang=zh-TW", app.address))
        .form(&[
            ("code", code.as_str()),
            ("password", "short"),
            ("again", "short"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("密碼至少需要 12 個字元"));
    let r = post(TEACHER_PASSWORD, TEACHER_PASSWORD).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Your password is set"));
    assert_eq!(
        token_with_password(&app, "mei@school.edu", TEACHER_PASSWORD)
            .await
            .0,
        201
    );
    let r = post("a different password", "a different password").await;
    assert_eq!(r.status(), 410);
    assert!(r.text().await.unwrap().contains("already been used"));
    assert_eq!(
        token_with_password(&app, "mei@school.edu", "a different password")
            .await
            .0,
        401
    );
}
