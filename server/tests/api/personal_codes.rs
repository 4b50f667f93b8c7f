//! Personal codes (issue 24): pasted names become codes shown once as cards; a student
//! signs in with one in the widget's code field and the session carries the teacher's name;
//! a code is revoked or re-issued alone; a member of another class reaches none of it.
//! Runs on SQLite, and on PostgreSQL with `CLASSCHAT_TEST_DB=postgres`.

use classchat_shared::{ErrorCode, SessionResponse};
use reqwest::Method;
use serde_json::{Value, json};

use crate::admin::{PASSWORD, Teacher, act, csrf_of, set_cookie, sign_in_teacher};
use crate::admin_api::{TEACHER_PASSWORD, admin_token, api, teacher};
use crate::helpers::*;

pub(crate) fn admin_opts() -> Opts {
    Opts::default().with(|s| {
        s.admin = admin_password(PASSWORD);
        s.messages_per_minute = 0;
        s.class_messages_per_minute = 0;
    })
}

pub(crate) fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The claims of a widget token.
pub(crate) fn claims(token: &str) -> Value {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.split('.').nth(1).unwrap())
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// A class made through the API by the administrator, and the administrator signed in to
/// the dashboard: (administrator, class id, administrator token).
pub(crate) async fn admin_class(app: &TestApp) -> (Teacher, String, String) {
    let token = admin_token(app).await;
    let (s, class) = api(
        app,
        Method::POST,
        "/api/v1/admin/classes",
        &token,
        Some(json!({"title": "Biology 7A", "time_zone": "Asia/Taipei"})),
    )
    .await;
    assert_eq!(s, 201, "{class}");
    let id = class["id"].as_str().unwrap().to_owned();
    (sign_in_teacher(app).await, id, token)
}

/// Every text between `data-testid="{id}">` and the next `<`.
pub(crate) fn all_testid(html: &str, id: &str) -> Vec<String> {
    let marker = format!("data-testid=\"{id}\"");
    html.split(&marker)
        .skip(1)
        .map(|rest| {
            let rest = &rest[rest.find('>').unwrap() + 1..];
            rest[..rest.find('<').unwrap()].to_owned()
        })
        .collect()
}

/// Pastes `names` on the class's page; answers each card's (name, code), read from the
/// page the form redirects to, which shows them once.
pub(crate) async fn make_codes(
    app: &TestApp,
    t: &Teacher,
    class: &str,
    names: &str,
) -> Vec<(String, String)> {
    let r = act(
        app,
        t,
        &format!("/admin/classes/{class}/students"),
        &[("names", names)],
    )
    .await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    let to = location(&r);
    assert!(
        to.starts_with(&format!("/admin/classes/{class}/students/cards?ticket=")),
        "{to}"
    );
    let html = app.page_as(&to, &t.cookie).await;
    let cards: Vec<(String, String)> = all_testid(&html, "card-name")
        .into_iter()
        .zip(all_testid(&html, "card-code"))
        .collect();
    assert!(!cards.is_empty(), "cards on {html}");
    let embed = format!("{}/embed", app.state.public_url.trim_end_matches('/'));
    assert!(
        html.contains(&embed),
        "the embed page's address is on the cards"
    );
    // Shown once: the ticket is spent.
    let again = app
        .client
        .get(format!("{}{to}", app.address))
        .header("cookie", &t.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);
    cards
}

/// Signs in with a code (typing a name the server must not use).
pub(crate) async fn sign_in_with(app: &TestApp, code: &str) -> SessionResponse {
    let r = app
        .post_session(json!({"access_code": code, "display_name": "Typed Name"}))
        .await;
    assert_eq!(r.status(), 200, "{code}");
    r.json().await.unwrap()
}

async fn chat_status(app: &TestApp, token: &str) -> u16 {
    app.post_chat(token, chat_body("hi", false))
        .await
        .status()
        .as_u16()
}

#[tokio::test]
async fn pasted_names_become_codes_that_sign_in_with_the_teachers_name() {
    let app = spawn_app_with(admin_opts()).await;
    let (t, class, _) = admin_class(&app).await;
    let cards = make_codes(
        &app,
        &t,
        &class,
        "Mei Lin\r\n\n  Chen Wei \nAnanya\u{200B} Rao\n",
    )
    .await;
    let names: Vec<&str> = cards.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["Mei Lin", "Chen Wei", "Ananya Rao"]);
    let codes: std::collections::HashSet<&str> = cards.iter().map(|(_, c)| c.as_str()).collect();
    assert_eq!(codes.len(), 3, "one code each");

    // Only digests are stored: no code appears in the table.
    let stored = app.state.store.personal_codes(&class).await.unwrap();
    assert_eq!(stored.len(), 3);
    let page = app
        .page_as(&format!("/admin/classes/{class}/students"), &t.cookie)
        .await;
    for (name, code) in &cards {
        assert!(page.contains(name.as_str()), "{name} listed");
        assert!(!page.contains(code.as_str()), "the list never shows a code");
    }

    // The widget's sign-in, the same field as a class code, typed in capitals with spaces.
    let (name, code) = &cards[0];
    let s = sign_in_with(&app, &format!("  {}  ", code.to_uppercase())).await;
    assert_eq!(s.class.id, class);
    let c = claims(&s.token);
    assert_eq!(
        c["name"], "Mei Lin",
        "the teacher's name, not the typed one"
    );
    assert!(c["stu"].as_str().unwrap().starts_with("code:p_"));
    assert_eq!(chat_status(&app, &s.token).await, 200);
    // The dashboard shows the teacher's name for the session.
    wait_for("the student's row on the dashboard", || async {
        app.page_as(&format!("/admin/classes/{class}"), &t.cookie)
            .await
            .contains(name.as_str())
    })
    .await;
    let usage = app
        .page_as(&format!("/admin/classes/{class}"), &t.cookie)
        .await;
    assert!(!usage.contains("Typed Name"));

    // A wrong code is still a wrong code.
    app.sign_in_refused("zzzz-zzzz", ErrorCode::InvalidCode)
        .await;
}

#[tokio::test]
async fn a_bad_list_changes_nothing_and_says_why() {
    let app = spawn_app_with(admin_opts()).await;
    let (t, class, _) = admin_class(&app).await;
    let long = "x".repeat(65);
    for (names, says) in [
        ("  \n\n", "at least one name"),
        (&format!("Mei\n{long}") as &str, "line 2"),
    ] {
        let r = act(
            &app,
            &t,
            &format!("/admin/classes/{class}/students"),
            &[("names", names)],
        )
        .await;
        assert_eq!(r.status(), 400);
        let html = r.text().await.unwrap();
        assert!(html.contains(says), "{says}: {html}");
        assert!(html.contains("error-summary"));
    }
    let many = "Student\n".repeat(201);
    let r = act(
        &app,
        &t,
        &format!("/admin/classes/{class}/students"),
        &[("names", &many)],
    )
    .await;
    assert_eq!(r.status(), 400);
    assert!(
        app.state
            .store
            .personal_codes(&class)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_code_is_revoked_or_reissued_alone() {
    let app = spawn_app_with(admin_opts()).await;
    let (t, class, _) = admin_class(&app).await;
    let cards = make_codes(&app, &t, &class, "Mei Lin\nChen Wei").await;
    let mei = sign_in_with(&app, &cards[0].1).await;
    let chen = sign_in_with(&app, &cards[1].1).await;
    let mei_id = app
        .state
        .store
        .personal_codes(&class)
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.name == "Mei Lin")
        .unwrap()
        .id;

    // Revoke: the code no longer signs in, and Mei's open session ends; Chen's goes on.
    let r = act(
        &app,
        &t,
        &format!("/admin/personal-codes/{mei_id}/revoke"),
        &[],
    )
    .await;
    assert_eq!(r.status(), 303);
    app.sign_in_refused(&cards[0].1, ErrorCode::InvalidCode)
        .await;
    expect_error(
        app.post_chat(&mei.token, chat_body("hi", false)).await,
        401,
        ErrorCode::SessionRevoked,
    )
    .await;
    assert_eq!(chat_status(&app, &chen.token).await, 200);
    // Revoking twice: nothing to revoke.
    assert_eq!(
        act(
            &app,
            &t,
            &format!("/admin/personal-codes/{mei_id}/revoke"),
            &[]
        )
        .await
        .status(),
        404
    );

    // Re-issue: a new code for Mei alone, shown once as a card; the old one stays dead.
    let r = act(
        &app,
        &t,
        &format!("/admin/personal-codes/{mei_id}/reissue"),
        &[],
    )
    .await;
    assert_eq!(r.status(), 303);
    let html = app.page_as(&location(&r), &t.cookie).await;
    let names = all_testid(&html, "card-name");
    let codes = all_testid(&html, "card-code");
    assert_eq!(names, ["Mei Lin"]);
    assert_ne!(codes[0], cards[0].1);
    app.sign_in_refused(&cards[0].1, ErrorCode::InvalidCode)
        .await;
    let again = sign_in_with(&app, &codes[0]).await;
    assert_eq!(claims(&again.token)["name"], "Mei Lin");
    assert_eq!(
        claims(&again.token)["stu"],
        claims(&mei.token)["stu"],
        "the same student"
    );
    assert_eq!(
        chat_status(&app, &chen.token).await,
        200,
        "Chen's session untouched"
    );
    sign_in_with(&app, &cards[1].1).await;

    // Each change is in the class's audit log.
    let audit = app.state.store.audit_lines(Some(&class), 50).await.unwrap();
    let actions: Vec<&str> = audit.iter().map(|l| l.action.as_str()).collect();
    for a in [
        "personal_codes_created",
        "personal_code_revoked",
        "personal_code_reissued",
    ] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
}

#[tokio::test]
async fn wrong_codes_spend_the_same_limit_whichever_kind_of_code_is_tried() {
    let app = spawn_app_with(admin_opts().with(|s| {
        s.login_failures_per_address = rate(3, minutes(15));
    }))
    .await;
    let (t, class, _) = admin_class(&app).await;
    let cards = make_codes(&app, &t, &class, "Mei Lin").await;
    // A right personal code gives its attempt back, like a right class code.
    for _ in 0..5 {
        sign_in_with(&app, &cards[0].1).await;
    }
    for _ in 0..3 {
        app.sign_in_refused("wxyz-wxyz", ErrorCode::InvalidCode)
            .await;
    }
    // Now even the right personal code waits, as a class code would.
    let r = app.post_session(json!({"access_code": cards[0].1})).await;
    expect_error(r, 429, ErrorCode::RateLimited).await;
}

/// Signs in to the dashboard as a teacher (email and password).
pub(crate) async fn sign_in_as(app: &TestApp, email: &str) -> Teacher {
    let r = app.get("/admin/login").await;
    let pre = set_cookie(&r, "classchat_admin_login").unwrap();
    let csrf = csrf_of(&r.text().await.unwrap());
    let r = app
        .client
        .post(format!("{}/admin/login", app.address))
        .header("cookie", &pre)
        .form(&[
            ("email", email),
            ("password", TEACHER_PASSWORD),
            ("csrf", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "{email} signed in");
    let cookie = set_cookie(&r, "classchat_admin").unwrap();
    let html = app.page_as("/admin/classes", &cookie).await;
    Teacher {
        csrf: csrf_of(&html),
        cookie,
    }
}

#[tokio::test]
async fn a_member_of_another_class_reaches_none_of_it() {
    let app = spawn_app_with(admin_opts()).await;
    let (admin, class, admin_tok) = admin_class(&app).await;
    let cards = make_codes(&app, &admin, &class, "Mei Lin").await;
    let code_id = app.state.store.personal_codes(&class).await.unwrap()[0]
        .id
        .clone();
    // A teacher who owns another class.
    let (_, tok) = teacher(&app, &admin_tok, "other@school.example").await;
    let (s, other) = api(
        &app,
        Method::POST,
        "/api/v1/admin/classes",
        &tok,
        Some(json!({"title": "Chemistry"})),
    )
    .await;
    assert_eq!(s, 201);
    let o = sign_in_as(&app, "other@school.example").await;
    // Their own class's page works.
    let own = app
        .page_as(
            &format!("/admin/classes/{}/students", other["id"].as_str().unwrap()),
            &o.cookie,
        )
        .await;
    assert!(own.contains("names-form"), "an owner may make codes");

    let get = app
        .client
        .get(format!("{}/admin/classes/{class}/students", app.address))
        .header("cookie", &o.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 404);
    for (path, form) in [
        (
            format!("/admin/classes/{class}/students"),
            vec![("names", "Intruder")],
        ),
        (
            format!("/admin/classes/{class}/students/allowance"),
            vec![("per_day", "1")],
        ),
        (
            format!("/admin/classes/{class}/students/reset"),
            vec![("student", "code:x")],
        ),
        (format!("/admin/personal-codes/{code_id}/revoke"), vec![]),
        (format!("/admin/personal-codes/{code_id}/reissue"), vec![]),
    ] {
        assert_eq!(act(&app, &o, &path, &form).await.status(), 404, "{path}");
    }
    // Nothing changed: the code still signs in, no code was added, no allowance set.
    sign_in_with(&app, &cards[0].1).await;
    assert_eq!(
        app.state.store.personal_codes(&class).await.unwrap().len(),
        1
    );
    assert_eq!(
        app.state.store.student_allowance(&class).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn the_admin_api_makes_lists_revokes_and_reissues_codes_and_sets_and_resets_allowances() {
    let app = spawn_app_with(admin_opts()).await;
    let (_, class, token) = admin_class(&app).await;
    let base = format!("/api/v1/admin/classes/{class}");
    let (s, made) = api(
        &app,
        Method::POST,
        &format!("{base}/personal-codes"),
        &token,
        Some(json!({"names": ["Mei Lin", "Chen Wei"]})),
    )
    .await;
    assert_eq!(s, 201, "{made}");
    let mei = &made["codes"][0];
    assert_eq!(mei["name"], "Mei Lin");
    let code = mei["code"].as_str().unwrap();
    let id = mei["id"].as_str().unwrap();
    // A bad list changes nothing.
    for bad in [
        json!({"names": []}),
        json!({"names": ["ok", " "]}),
        json!({"names": ["x".repeat(65)]}),
    ] {
        let (s, body) = api(
            &app,
            Method::POST,
            &format!("{base}/personal-codes"),
            &token,
            Some(bad),
        )
        .await;
        assert_eq!(s, 400, "{body}");
    }
    let (s, list) = api(
        &app,
        Method::GET,
        &format!("{base}/personal-codes"),
        &token,
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert!(
        !list.to_string().contains(code),
        "the list never shows a code"
    );

    let (s, a) = api(
        &app,
        Method::PUT,
        &format!("{base}/allowance"),
        &token,
        Some(json!({"per_day": 2, "per_week": 0})),
    )
    .await;
    assert_eq!((s, a["per_day"].as_i64()), (200, Some(2)));
    let student = sign_in_with(&app, code).await;
    for _ in 0..2 {
        assert_eq!(chat_status(&app, &student.token).await, 200);
    }
    assert_eq!(chat_status(&app, &student.token).await, 429);
    let (_, a) = api(
        &app,
        Method::GET,
        &format!("{base}/allowance"),
        &token,
        None,
    )
    .await;
    assert_eq!(a["students"][0]["name"], "Mei Lin", "{a}");
    assert_eq!(a["students"][0]["status"], "over");
    let key = a["students"][0]["student"].as_str().unwrap().to_owned();
    let (s, _) = api(
        &app,
        Method::POST,
        &format!("{base}/allowance/reset"),
        &token,
        Some(json!({"student": key})),
    )
    .await;
    assert_eq!(s, 204);
    assert_eq!(chat_status(&app, &student.token).await, 200);

    let (s, again) = api(
        &app,
        Method::POST,
        &format!("/api/v1/admin/personal-codes/{id}/reissue"),
        &token,
        None,
    )
    .await;
    assert_eq!(s, 200, "{again}");
    app.sign_in_refused(code, ErrorCode::InvalidCode).await;
    let fresh = sign_in_with(&app, again["code"].as_str().unwrap()).await;
    let (s, _) = api(
        &app,
        Method::POST,
        &format!("/api/v1/admin/personal-codes/{id}/revoke"),
        &token,
        None,
    )
    .await;
    assert_eq!(s, 204);
    expect_error(
        app.post_chat(&fresh.token, chat_body("hi", false)).await,
        401,
        ErrorCode::SessionRevoked,
    )
    .await;
    sign_in_with(&app, made["codes"][1]["code"].as_str().unwrap()).await;
}
