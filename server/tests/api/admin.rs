//! The teacher dashboard: password sign-in, CSRF, the actions and their effect on
//! students, and that every change survives a restart.

use classchat_shared::{ErrorCode, SessionResponse};
use serde_json::json;

use crate::helpers::*;

pub(crate) const PASSWORD: &str = "a-long-teacher-password";

/// The value of the first `csrf` hidden field in a page.
pub(crate) fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf\"")
        .or_else(|| html.find("name=csrf"))
        .expect("a csrf field");
    let rest = &html[at..];
    let v = rest.find("value=\"").expect("a csrf value") + 7;
    rest[v..v + rest[v..].find('"').unwrap()].to_owned()
}

pub(crate) fn set_cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap().to_owned())
}

pub(crate) struct Teacher {
    pub(crate) cookie: String,
    pub(crate) csrf: String,
}

pub(crate) async fn sign_in_teacher(app: &TestApp) -> Teacher {
    let r = app.get("/admin/login").await;
    assert_eq!(r.status(), 200);
    let pre = set_cookie(&r, "classchat_admin_login").expect("login cookie");
    let csrf = csrf_of(&r.text().await.unwrap());
    let r = app
        .client
        .post(format!("{}/admin/login", app.address))
        .header("cookie", &pre)
        .form(&[("password", PASSWORD), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "signed in");
    let cookie = set_cookie(&r, "classchat_admin").expect("session cookie");
    let page = app
        .client
        .get(format!("{}/admin", app.address))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    Teacher {
        csrf: csrf_of(&html),
        cookie,
    }
}

/// Posts a dashboard form (with the teacher's CSRF token) and returns the answer.
pub(crate) async fn act(
    app: &TestApp,
    t: &Teacher,
    path: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = vec![("csrf", t.csrf.as_str())];
    form.extend_from_slice(extra);
    app.client
        .post(format!("{}{path}", app.address))
        .header("cookie", &t.cookie)
        .form(&form)
        .send()
        .await
        .unwrap()
}

fn admin_opts() -> Opts {
    Opts::default().with(|s| s.admin = admin_password(PASSWORD))
}

#[tokio::test]
async fn without_admin_settings_the_dashboard_is_off_and_says_how_to_turn_it_on() {
    let app = spawn_app().await;
    let r = app.get("/admin").await;
    assert_eq!(r.status(), 404);
    let html = r.text().await.unwrap();
    assert!(html.contains("ADMIN_PASSWORD") && html.contains("CF_ACCESS_TEAM_DOMAIN"));
}

#[tokio::test]
async fn password_sign_in_refuses_wrong_passwords_missing_csrf_tampered_cookies_and_widget_tokens()
{
    let app =
        spawn_app_with(admin_opts().with(|s| s.login_failures_per_address = rate(3, minutes(10))))
            .await;
    let r = app.get("/admin").await;
    assert_eq!(
        (
            r.status().as_u16(),
            r.headers()["location"].to_str().unwrap()
        ),
        (303, "/admin/login")
    );

    let r = app.get("/admin/login").await;
    let pre = set_cookie(&r, "classchat_admin_login").unwrap();
    assert!(r.headers().get_all("set-cookie").iter().all(|c| {
        let c = c.to_str().unwrap();
        c.contains("HttpOnly") && c.contains("SameSite=Strict")
    }));
    let csrf = csrf_of(&r.text().await.unwrap());
    let post = |pw: &'static str, csrf: Option<String>| {
        let mut form = vec![("password", pw.to_owned())];
        if let Some(c) = csrf {
            form.push(("csrf", c));
        }
        app.client
            .post(format!("{}/admin/login", app.address))
            .header("cookie", &pre)
            .form(&form)
            .send()
    };
    assert_eq!(
        post(PASSWORD, None).await.unwrap().status(),
        403,
        "no CSRF token"
    );
    for _ in 0..3 {
        let r = post("wrong-password-123", Some(csrf.clone()))
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        assert!(set_cookie(&r, "classchat_admin").is_none());
    }
    let r = post(PASSWORD, Some(csrf.clone())).await.unwrap();
    assert_eq!(r.status(), 429, "rate limited even with the right password");
    assert!(!captured_logs().contains(PASSWORD));

    let app = spawn_app_with(admin_opts()).await;
    let t = sign_in_teacher(&app).await;
    let mut tampered = t.cookie.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let r = app
        .client
        .get(format!("{}/admin", app.address))
        .header("cookie", &tampered)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "tampered cookie is not a session");
    let student = app.sign_in().await;
    let r = app
        .client
        .get(format!("{}/admin", app.address))
        .bearer_auth(&student.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "a widget token is not an admin credential");
    let r = app
        .client
        .post(format!("{}/api/v1/chat", app.address))
        .header("cookie", &t.cookie)
        .json(&chat_body("hi", false))
        .send()
        .await
        .unwrap();
    expect_error(r, 401, ErrorCode::InvalidToken).await;
}

#[tokio::test]
async fn the_dashboard_shows_usage_after_a_student_chats() {
    let app = spawn_app_with(admin_opts()).await;
    let s = app.sign_in().await;
    read_events(app.post_chat(&s.token, chat_body("hello", true)).await).await;
    app.usage_rows(1).await;
    let t = sign_in_teacher(&app).await;
    let html = app.page_as("/admin", &t.cookie).await;
    assert!(html.contains("data-class-id=\"class-1\""), "{html}");
    let class = app.page_as("/admin/classes/class-1", &t.cookie).await;
    assert!(
        class.contains("admin-student-row") && class.contains("Mei"),
        "{class}"
    );
    let csv = app
        .client
        .get(format!(
            "{}/admin/export.csv?from=2000-01-01&to=2099-12-31",
            app.address
        ))
        .header("cookie", &t.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), 400, "more than 400 days");
    let today = jiff::Zoned::now()
        .with_time_zone(jiff::tz::TimeZone::get("Asia/Taipei").unwrap())
        .date();
    let csv = app
        .client
        .get(format!(
            "{}/admin/export.csv?from={today}&to={today}",
            app.address
        ))
        .header("cookie", &t.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let text = csv.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("time,class_id,activity_id,session_id,display_name"));
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[1].contains(",class-1,") && lines[1].contains(",Mei,conv-1,test-model,11,7,"),
        "{text}"
    );
}

#[tokio::test]
async fn rotate_disable_revoke_and_quota_take_effect_at_once_and_survive_a_restart() {
    let started_ms = classchat_server::basics::now_ms();
    let app = spawn_app_with(admin_opts()).await;
    let t = sign_in_teacher(&app).await;
    let before = app.sign_in().await;
    let victim = app.sign_in().await;

    // Without the CSRF token nothing changes.
    let r = app
        .client
        .post(format!("{}/admin/classes/class-1/rotate", app.address))
        .header("cookie", &t.cookie)
        .form(&[("x", "y")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        app.post_chat(&before.token, chat_body("hi", false))
            .await
            .status(),
        200
    );

    // Rotate: the new code is shown once; old tokens and the old code stop working.
    let r = act(&app, &t, "/admin/classes/class-1/rotate", &[]).await;
    assert_eq!(
        r.status(),
        303,
        "post/redirect/get: a reload cannot rotate again"
    );
    let shown_at = format!(
        "{}{}",
        app.address,
        r.headers()["location"].to_str().unwrap()
    );
    let page = |url: String| app.client.get(url).header("cookie", &t.cookie).send();
    let html = page(shown_at.clone()).await.unwrap().text().await.unwrap();
    let again = page(shown_at.clone()).await.unwrap().text().await.unwrap();
    assert!(
        !again.contains("admin-new-code"),
        "the new code is shown only once"
    );
    let at = html.find("admin-new-code").expect("the new code is shown");
    let code: String = html[at..]
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .find(|w| {
            // The generator's alphabet has no look-alikes (0, 1, i, l, o).
            w.len() == 9
                && w.as_bytes()[4] == b'-'
                && w.chars()
                    .all(|c| c == '-' || "23456789abcdefghjkmnpqrstuvwxyz".contains(c))
        })
        .expect("a xxxx-xxxx code")
        .to_owned();
    assert!(!shown_at.contains(&code), "the code is never in a URL");
    app.chat_refused(&before.token, ErrorCode::SessionRevoked)
        .await;
    app.sign_in_refused(CODE, ErrorCode::InvalidCode).await;
    let r = app
        .post_session(json!({"access_code": code.to_uppercase()}))
        .await;
    assert_eq!(r.status(), 200, "new code {code:?} signs in");
    let fresh: SessionResponse = r.json().await.unwrap();
    assert!(
        !captured_logs().contains(&code),
        "the new code is never logged"
    );

    // Revoke one session.
    let victim_fresh: SessionResponse = app
        .post_session(json!({"access_code": code, "display_name": "Bo"}))
        .await
        .json()
        .await
        .unwrap();
    let _ = victim;
    app.post_chat(&victim_fresh.token, chat_body("hi", false))
        .await
        .text()
        .await
        .unwrap();
    app.usage_rows(1).await;
    let sid = serde_json::from_slice::<serde_json::Value>(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            victim_fresh.token.split('.').nth(1).unwrap(),
        )
        .unwrap(),
    )
    .unwrap()["sub"]
        .as_str()
        .unwrap()
        .to_owned();
    // The session row is written with the usage batch, off the request path.
    wait_for("the session row is stored", || async {
        app.state.store.session_info(&sid).await.unwrap().is_some()
    })
    .await;
    let r = act(
        &app,
        &t,
        &format!("/admin/sessions/{sid}/revoke"),
        &[("class_id", "class-1")],
    )
    .await;
    assert_eq!(r.status(), 303);
    expect_error(
        app.post_chat(&victim_fresh.token, chat_body("hi", false))
            .await,
        401,
        ErrorCode::SessionRevoked,
    )
    .await;
    assert_eq!(
        app.post_chat(&fresh.token, chat_body("hi", false))
            .await
            .status(),
        200,
        "others unaffected"
    );

    // Quota.
    let r = act(
        &app,
        &t,
        "/admin/classes/class-1/quota",
        &[("quota", "nope")],
    )
    .await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("whole number"));
    // An action or a class that does not exist: the message page, nothing changed.
    for (path, says) in [
        ("/admin/classes/class-1/bogus", "No such action"),
        ("/admin/classes/no-such-class/disable", "No such class"),
        ("/admin/sessions/no-such-session/revoke", "No such session"),
    ] {
        let r = act(&app, &t, path, &[("class_id", "class-1")]).await;
        assert_eq!(r.status(), 404, "{path}");
        assert!(r.text().await.unwrap().contains(says), "{path}");
    }

    // Disable: chats and sign-ins stop.
    assert_eq!(
        act(&app, &t, "/admin/classes/class-1/disable", &[])
            .await
            .status(),
        303
    );
    app.chat_refused(&fresh.token, ErrorCode::ClassDisabled)
        .await;
    app.sign_in_refused(&code, ErrorCode::ClassDisabled).await;

    // Everything survives a restart.
    let dir = app.dir();
    app.stop().await;
    let app = spawn_app_with(Opts {
        dir: Some(dir),
        ..admin_opts()
    })
    .await;
    app.sign_in_refused(&code, ErrorCode::ClassDisabled).await;
    let t = sign_in_teacher(&app).await;
    assert_eq!(
        act(&app, &t, "/admin/classes/class-1/enable", &[])
            .await
            .status(),
        303
    );
    app.sign_in_refused(CODE, ErrorCode::InvalidCode).await;
    assert_eq!(
        app.post_chat(&fresh.token, chat_body("hi", false))
            .await
            .status(),
        200,
        "rotated code still in force"
    );
    expect_error(
        app.post_chat(&victim_fresh.token, chat_body("hi", false))
            .await,
        401,
        ErrorCode::SessionRevoked,
    )
    .await;

    // Reset: back to the configured code.
    assert_eq!(
        act(&app, &t, "/admin/classes/class-1/reset", &[])
            .await
            .status(),
        303
    );
    assert_eq!(
        app.post_session(json!({"access_code": CODE}))
            .await
            .status(),
        200
    );

    // The audit trail holds who did what to which class, and when, in order; the refused
    // quota and the request without a CSRF token left no line.
    let mut audit = app.state.store.recent_audit(None, 50).await.unwrap();
    audit.reverse();
    let what: Vec<(&str, &str, Option<&str>)> = audit
        .iter()
        .map(|a| (a.actor.as_str(), a.action.as_str(), a.class_id.as_deref()))
        .collect();
    let class = Some("class-1");
    assert_eq!(
        what,
        [
            ("admin", "sign_in", None),
            ("admin", "rotate_code", class),
            ("admin", "revoke_session", class),
            ("admin", "disable_class", class),
            ("admin", "sign_in", None),
            ("admin", "enable_class", class),
            ("admin", "reset_class", class),
        ]
    );
    let ended_ms = classchat_server::basics::now_ms();
    assert!(
        audit.windows(2).all(|w| w[0].at_ms <= w[1].at_ms)
            && audit
                .iter()
                .all(|a| (started_ms..=ended_ms).contains(&a.at_ms)),
        "each line has the time of its action: {audit:?}"
    );
    assert!(
        audit[2].detail.contains(&sid[..8]),
        "the revocation names the session: {:?}",
        audit[2].detail
    );
    assert!(
        audit.iter().all(|a| !a.detail.contains(&code)),
        "no audit line holds the new code"
    );
    // The class page shows the same trail.
    let page = app.page_as("/admin/classes/class-1", &t.cookie).await;
    assert!(page.contains("rotate_code") && page.contains("revoke_session"));
}

#[tokio::test]
async fn a_daily_quota_set_in_the_dashboard_applies_at_once() {
    let app = spawn_app_with(admin_opts()).await;
    let t = sign_in_teacher(&app).await;
    assert_eq!(
        act(&app, &t, "/admin/classes/class-1/quota", &[("quota", "1")])
            .await
            .status(),
        303
    );
    let s = app.sign_in().await;
    assert_eq!(
        app.post_chat(&s.token, chat_body("one", false))
            .await
            .status(),
        200
    );
    expect_error(
        app.post_chat(&s.token, chat_body("two", false)).await,
        429,
        ErrorCode::RateLimited,
    )
    .await;
}
