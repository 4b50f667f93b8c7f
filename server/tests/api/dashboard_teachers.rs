//! The dashboard's pages for teachers: sign-in with a teacher account, "My classes", a
//! class's page (settings, activities, members), the one-time code page, the Teachers
//! page. Runs on SQLite, and on PostgreSQL with `CLASSCHAT_TEST_DB=postgres`; the
//! two-replica test always on PostgreSQL.

use classchat_shared::SessionResponse;
use serde_json::json;

use crate::admin::{PASSWORD, Teacher, act, csrf_of, set_cookie, sign_in_teacher};
use crate::helpers::*;

const TEACHER_PASSWORD: &str = "a teacher's own passphrase";

fn admin_opts() -> Opts {
    Opts::default().with(|s| s.admin = admin_password(PASSWORD))
}

fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

async fn get(app: &TestApp, who: &Teacher, path: &str) -> reqwest::Response {
    app.client
        .get(format!("{}{path}", app.address))
        .header("cookie", &who.cookie)
        .send()
        .await
        .unwrap()
}

/// The text between `start` and the next `end` after it.
fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let at = html
        .find(start)
        .unwrap_or_else(|| panic!("{start} in {html}"))
        + start.len();
    &html[at..at + html[at..].find(end).unwrap()]
}

/// The text of the element with this `data-testid`.
fn testid_text(html: &str, id: &str) -> String {
    let rest = between(html, &format!("data-testid=\"{id}\""), "<");
    rest[rest.find('>').unwrap() + 1..].to_owned()
}

/// The administrator invites `email` on the Teachers page; answers the teacher's id and
/// the invitation's secret, read from the page that shows the link once.
async fn invite(app: &TestApp, admin: &Teacher, email: &str) -> (String, String) {
    let r = act(
        app,
        admin,
        "/admin/teachers",
        &[("email", email), ("name", email)],
    )
    .await;
    assert_eq!(r.status(), 303);
    let to = location(&r);
    let teacher_id = to.split("teacher=").nth(1).unwrap().to_owned();
    let page = get(app, admin, &to).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let code = between(&html, "/admin/invitation?code=", "<").to_owned();
    // Shown once.
    assert_eq!(get(app, admin, &to).await.status(), 404);
    (teacher_id, code)
}

/// Sets the password on the invitation page.
async fn accept(app: &TestApp, code: &str) {
    let r = app
        .client
        .post(format!("{}/admin/invitation", app.address))
        .form(&[
            ("code", code),
            ("password", TEACHER_PASSWORD),
            ("again", TEACHER_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

/// Signs in to the dashboard with a teacher's email and password.
async fn sign_in_as(app: &TestApp, email: &str) -> Teacher {
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
    assert_eq!(location(&r), "/admin/classes");
    let cookie = set_cookie(&r, "classchat_admin").unwrap();
    let t = Teacher {
        cookie,
        csrf: String::new(),
    };
    let page = get(app, &t, "/admin/classes").await;
    assert_eq!(page.status(), 200);
    Teacher {
        csrf: csrf_of(&page.text().await.unwrap()),
        cookie: t.cookie,
    }
}

/// A teacher invited, with a password, signed in.
async fn teacher(app: &TestApp, admin: &Teacher, email: &str) -> (String, Teacher) {
    let (id, code) = invite(app, admin, email).await;
    accept(app, &code).await;
    (id, sign_in_as(app, email).await)
}

/// Creates a class on its page; answers its id.
async fn create_class(app: &TestApp, t: &Teacher, title: &str, prompt: &str) -> String {
    let r = act(
        app,
        t,
        "/admin/classes",
        &[("title", title), ("system_prompt", prompt)],
    )
    .await;
    assert_eq!(r.status(), 303);
    let to = location(&r);
    between(&to, "/admin/classes/", "/settings").to_owned()
}

/// Adds an activity; answers its id and code, read from the one-time page.
async fn add_activity(app: &TestApp, t: &Teacher, class: &str, title: &str) -> (String, String) {
    let r = act(
        app,
        t,
        &format!("/admin/classes/{class}/activities"),
        &[("title", title)],
    )
    .await;
    assert_eq!(r.status(), 303);
    let to = location(&r);
    let id = between(&to, "/admin/activities/", "/code").to_owned();
    let page = get(app, t, &to).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let code = testid_text(&html, "activity-code");
    (id, code)
}

/// Everything a class page's action can change, as one comparable value.
async fn snapshot(app: &TestApp, class: &str) -> String {
    let s = &app.state.store;
    format!(
        "{:?} {:?} {:?} audit={}",
        s.class(class).await.unwrap(),
        s.activities_of(class).await.unwrap(),
        s.members(class).await.unwrap(),
        s.audit_lines(None, 10_000).await.unwrap().len()
    )
}

/// Every state-changing route of a class's pages, with valid fields.
fn class_posts(
    class: &str,
    activity: &str,
    member: &str,
) -> Vec<(String, Vec<(&'static str, &'static str)>)> {
    vec![
        (
            format!("/admin/classes/{class}/settings"),
            vec![("title", "Taken over")],
        ),
        (
            format!("/admin/classes/{class}/activities"),
            vec![("title", "Intruder")],
        ),
        (
            format!("/admin/classes/{class}/members"),
            vec![("email", "someone@school.example"), ("role", "owner")],
        ),
        (
            format!("/admin/classes/{class}/members/{member}/role"),
            vec![("role", "assistant")],
        ),
        (
            format!("/admin/classes/{class}/members/{member}/remove"),
            vec![],
        ),
        (
            format!("/admin/activities/{activity}"),
            vec![("title", "Renamed")],
        ),
        (format!("/admin/activities/{activity}/pause"), vec![]),
        (format!("/admin/activities/{activity}/resume"), vec![]),
        (format!("/admin/activities/{activity}/rotate"), vec![]),
        (format!("/admin/classes/{class}/delete"), vec![]),
    ]
}

#[tokio::test]
async fn a_teacher_cannot_open_or_post_to_another_teachers_class() {
    let app = spawn_app_with(admin_opts()).await;
    let admin = sign_in_teacher(&app).await;
    let (owner_id, owner) = teacher(&app, &admin, "mei@school.example").await;
    let (_, other) = teacher(&app, &admin, "lin@school.example").await;
    let class = create_class(&app, &owner, "Biology 7A", "You are a biology tutor.").await;
    let (activity, _) = add_activity(&app, &owner, &class, "Lab report helper").await;

    // Her list shows her class with her role; his shows nothing of it.
    let mine = get(&app, &owner, "/admin/classes")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        mine.contains("Biology 7A") && mine.contains("Owner"),
        "{mine}"
    );
    let his = get(&app, &other, "/admin/classes")
        .await
        .text()
        .await
        .unwrap();
    assert!(!his.contains("Biology 7A"), "{his}");

    for path in [
        format!("/admin/classes/{class}/settings"),
        format!("/admin/classes/{class}/audit"),
        format!("/admin/activities/{activity}/code?ticket=x"),
    ] {
        assert_eq!(get(&app, &other, &path).await.status(), 404, "GET {path}");
    }
    let before = snapshot(&app, &class).await;
    for (path, form) in class_posts(&class, &activity, &owner_id) {
        let r = act(&app, &other, &path, &form).await;
        assert_eq!(r.status(), 404, "POST {path}");
        assert_eq!(
            snapshot(&app, &class).await,
            before,
            "POST {path} changed something"
        );
    }
    // The administrator's own pages are not a teacher's.
    let r = get(&app, &other, "/admin").await;
    assert_eq!(
        (r.status().as_u16(), location(&r)),
        (303, "/admin/classes".into())
    );
    assert_eq!(get(&app, &other, "/admin/teachers").await.status(), 404);
    assert_eq!(
        get(
            &app,
            &other,
            "/admin/export.csv?from=2026-01-01&to=2026-01-02"
        )
        .await
        .status(),
        303
    );
    assert_eq!(
        act(&app, &other, "/admin/classes/class-1/disable", &[])
            .await
            .status(),
        404
    );
    assert_eq!(
        act(&app, &other, "/admin/teachers", &[("email", "x@y.example")])
            .await
            .status(),
        404
    );
    assert!(app.state.classes.current().get("class-1").unwrap().enabled);

    // The administrator sees and may change every class.
    assert_eq!(
        get(&app, &admin, &format!("/admin/classes/{class}/settings"))
            .await
            .status(),
        200
    );
    assert_eq!(
        get(&app, &admin, &format!("/admin/classes/{class}/audit"))
            .await
            .status(),
        200
    );

    // Both languages.
    let zh = get(&app, &owner, "/admin/classes?lang=zh-TW").await;
    assert!(set_cookie(&zh, "classchat_admin_lang").is_some());
    let zh = zh.text().await.unwrap();
    assert!(
        zh.contains("lang=\"zh-TW\"") && zh.contains("我的班級"),
        "{zh}"
    );
}

#[tokio::test]
async fn a_co_teacher_cannot_delete_or_change_members_and_an_assistant_changes_nothing() {
    let app = spawn_app_with(admin_opts()).await;
    let admin = sign_in_teacher(&app).await;
    let (owner_id, owner) = teacher(&app, &admin, "mei@school.example").await;
    let (co_id, co) = teacher(&app, &admin, "lin@school.example").await;
    let (_, assistant) = teacher(&app, &admin, "wu@school.example").await;
    let class = create_class(&app, &owner, "Chemistry", "You are a chemistry tutor.").await;
    let (activity, _) = add_activity(&app, &owner, &class, "Exam revision").await;
    for (email, role) in [
        ("lin@school.example", "co_teacher"),
        ("wu@school.example", "assistant"),
    ] {
        let r = act(
            &app,
            &owner,
            &format!("/admin/classes/{class}/members"),
            &[("email", email), ("role", role)],
        )
        .await;
        assert_eq!(r.status(), 303, "{email}");
    }
    let roles = app.state.store.members(&class).await.unwrap();
    assert_eq!(roles.len(), 3, "{roles:?}");

    // The assistant reads the class and changes nothing.
    let page = get(
        &app,
        &assistant,
        &format!("/admin/classes/{class}/settings"),
    )
    .await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Assistant"));
    assert_eq!(
        get(&app, &assistant, &format!("/admin/classes/{class}/audit"))
            .await
            .status(),
        403
    );
    let before = snapshot(&app, &class).await;
    for (path, form) in class_posts(&class, &activity, &owner_id) {
        let r = act(&app, &assistant, &path, &form).await;
        assert_eq!(r.status(), 403, "assistant POST {path}");
        assert_eq!(
            snapshot(&app, &class).await,
            before,
            "assistant POST {path} changed something"
        );
    }

    // The co-teacher may not delete the class or touch its members, nor read the audit log.
    for (path, form) in class_posts(&class, &activity, &owner_id)
        .into_iter()
        .filter(|(p, _)| p.contains("/members") || p.ends_with("/delete"))
    {
        let r = act(&app, &co, &path, &form).await;
        assert_eq!(r.status(), 403, "co-teacher POST {path}");
        assert_eq!(
            snapshot(&app, &class).await,
            before,
            "co-teacher POST {path} changed something"
        );
    }
    assert_eq!(
        get(&app, &co, &format!("/admin/classes/{class}/audit"))
            .await
            .status(),
        403
    );
    // … but may edit it.
    let r = act(
        &app,
        &co,
        &format!("/admin/classes/{class}/settings"),
        &[("title", "Chemistry 8B"), ("daily_quota", "40")],
    )
    .await;
    assert_eq!(r.status(), 303);
    let c = app.state.store.class(&class).await.unwrap().unwrap();
    assert_eq!(
        (c.title.as_str(), c.daily_quota),
        ("Chemistry 8B", Some(40))
    );

    // The owner cannot lower their own role; the administrator changes roles.
    let r = act(
        &app,
        &owner,
        &format!("/admin/classes/{class}/members/{owner_id}/role"),
        &[("role", "assistant")],
    )
    .await;
    assert_eq!(r.status(), 400);
    let r = act(
        &app,
        &owner,
        &format!("/admin/classes/{class}/members/{co_id}/role"),
        &[("role", "assistant")],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        app.state.store.member_role(&class, &co_id).await.unwrap(),
        Some(classchat_server::teachers::Role::Assistant)
    );

    // A bad field: the page again with an error summary, nothing saved.
    let before = snapshot(&app, &class).await;
    let r = act(
        &app,
        &owner,
        &format!("/admin/classes/{class}/settings"),
        &[("title", "Chemistry"), ("time_zone", "Mars/Olympus")],
    )
    .await;
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("data-testid=\"error-summary\"")
            && html.contains("href=\"#class-time_zone\""),
        "{html}"
    );
    assert_eq!(snapshot(&app, &class).await, before);

    // The audit log lists the changes, owners see it; no code in it.
    let audit = get(&app, &owner, &format!("/admin/classes/{class}/audit")).await;
    assert_eq!(audit.status(), 200);
    let audit = audit.text().await.unwrap();
    assert!(
        audit.contains("create_activity") || audit.contains("activity"),
        "{audit}"
    );
}

#[tokio::test]
async fn a_class_made_and_edited_in_the_dashboard_changes_the_next_replys_prompt() {
    let app = spawn_app_with(admin_opts()).await;
    let admin = sign_in_teacher(&app).await;
    let (_, t) = teacher(&app, &admin, "mei@school.example").await;
    let class = create_class(&app, &t, "Physics", "You are a physics tutor.").await;
    let (_, code) = add_activity(&app, &t, &class, "Homework help").await;
    let r = app
        .post_session(json!({"access_code": code, "display_name": "Mei"}))
        .await;
    assert_eq!(r.status(), 200);
    let s: SessionResponse = r.json().await.unwrap();
    let prompt = |app: &TestApp| {
        let reqs = app.upstream.requests();
        reqs.last().unwrap().body["messages"][0]["content"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        app.post_chat(&s.token, chat_body("hi", false))
            .await
            .status(),
        200
    );
    assert_eq!(prompt(&app), "You are a physics tutor.");

    let r = act(
        &app,
        &t,
        &format!("/admin/classes/{class}/settings"),
        &[
            ("title", "Physics"),
            (
                "system_prompt",
                "You are a physics tutor; answer with questions.",
            ),
            ("greeting", "Welcome to physics!"),
            ("time_zone", "Asia/Taipei"),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        app.post_chat(&s.token, chat_body("hi", false))
            .await
            .status(),
        200
    );
    assert_eq!(
        prompt(&app),
        "You are a physics tutor; answer with questions."
    );
    let page = get(&app, &t, &format!("/admin/classes/{class}/settings"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Welcome to physics!") && page.contains("<script src="),
        "the page shows the settings and an embed snippet"
    );
}

#[tokio::test]
async fn a_disabled_teachers_cookie_stops_working_at_once() {
    let app = spawn_app_with(admin_opts()).await;
    let admin = sign_in_teacher(&app).await;
    let (id, t) = teacher(&app, &admin, "mei@school.example").await;
    assert_eq!(get(&app, &t, "/admin/classes").await.status(), 200);
    let r = act(&app, &admin, &format!("/admin/teachers/{id}/disable"), &[]).await;
    assert_eq!(r.status(), 303);
    let r = get(&app, &t, "/admin/classes").await;
    assert_eq!(
        (r.status().as_u16(), location(&r)),
        (303, "/admin/login".into())
    );
    assert_eq!(
        act(&app, &t, "/admin/classes", &[("title", "x")])
            .await
            .status(),
        303
    );
    assert!(app.state.store.classes_of(None).await.unwrap().is_empty());
    // And a disabled teacher cannot sign in again.
    let r = app.get("/admin/login").await;
    let pre = set_cookie(&r, "classchat_admin_login").unwrap();
    let csrf = csrf_of(&r.text().await.unwrap());
    let r = app
        .client
        .post(format!("{}/admin/login", app.address))
        .header("cookie", &pre)
        .form(&[
            ("email", "mei@school.example"),
            ("password", TEACHER_PASSWORD),
            ("csrf", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

/// Two replicas on one PostgreSQL database: the code rotated on one is shown once on the
/// other (the redirect of a round-robin balancer), and a teacher disabled on one is out on
/// the other at once.
#[tokio::test]
async fn the_rotated_code_page_works_behind_two_replicas() {
    let url = crate::pg_cluster::shared().create_database().await;
    let opts = || {
        Opts::default().with(database(&url)).with(|s| {
            s.admin = admin_password(PASSWORD);
            s.resync_interval = hours(1);
        })
    };
    let a = spawn_app_with(opts()).await;
    let b = spawn_app_with(opts()).await;
    let admin = sign_in_teacher(&a).await;
    let (id, t) = teacher(&a, &admin, "mei@school.example").await;
    let class = create_class(&a, &t, "Biology", "You are a biology tutor.").await;
    let (activity, first) = add_activity(&a, &t, &class, "Lab").await;

    let r = act(&a, &t, &format!("/admin/activities/{activity}/rotate"), &[]).await;
    assert_eq!(r.status(), 303);
    let to = location(&r);
    assert!(!to.contains(&first));
    let page = get(&b, &t, &to).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let code = testid_text(&html, "activity-code");
    assert_ne!(code, first);
    // Once: neither replica shows it again.
    assert_eq!(get(&a, &t, &to).await.status(), 404);
    assert_eq!(get(&b, &t, &to).await.status(), 404);
    // The code works on the other replica (once it has the change).
    let mut ok = false;
    for _ in 0..250 {
        let r = b
            .post_session(json!({"access_code": code, "display_name": "Mei"}))
            .await;
        if r.status() == 200 {
            ok = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(ok, "the rotated code signs in on the other replica");

    // Disabled on one, out on both.
    assert_eq!(
        act(&a, &admin, &format!("/admin/teachers/{id}/disable"), &[])
            .await
            .status(),
        303
    );
    for app in [&a, &b] {
        assert_eq!(get(app, &t, "/admin/classes").await.status(), 303);
    }
}

/// Behind Cloudflare Access: an invited teacher whose Access email matches arrives as that
/// teacher (not as an administrator), a stranger is refused, a disabled teacher too.
#[tokio::test]
async fn behind_cloudflare_access_an_invited_teacher_arrives_with_their_email() {
    use crate::admin_cf::Access;
    let access = Access::spawn("head@school.example").await;
    let app = &access.app;
    let as_ = |email: &str| Teacher {
        cookie: String::new(),
        csrf: access.assertion(email, crate::admin_cf::AUD),
    };
    let send = |who: &Teacher, path: &str, form: Option<Vec<(&str, String)>>| {
        let url = format!("{}{path}", app.address);
        let r = match form {
            Some(f) => app.client.post(url).form(&f),
            None => app.client.get(url),
        };
        r.header("cf-access-jwt-assertion", &who.csrf).send()
    };
    let head = as_("head@school.example");
    let page = send(&head, "/admin/teachers", None).await.unwrap();
    assert_eq!(page.status(), 200);
    let csrf = csrf_of(&page.text().await.unwrap());
    let r = send(
        &head,
        "/admin/teachers",
        Some(vec![
            ("csrf", csrf.clone()),
            ("email", "mei@school.example".into()),
        ]),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 303);
    let id = location(&r).split("teacher=").nth(1).unwrap().to_owned();

    let mei = as_("Mei@School.example");
    let r = send(&mei, "/admin", None).await.unwrap();
    assert_eq!(
        (r.status().as_u16(), location(&r)),
        (303, "/admin/classes".into())
    );
    let page = send(&mei, "/admin/classes", None).await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("My classes") && !html.contains("nav-teachers"),
        "{html}"
    );
    let mei_csrf = csrf_of(&html);
    assert_ne!(mei_csrf, csrf);
    let r = send(
        &mei,
        "/admin/classes",
        Some(vec![
            ("csrf", mei_csrf.clone()),
            ("title", "Mei's class".into()),
        ]),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 303);
    let class = between(&location(&r), "/admin/classes/", "/settings").to_owned();
    assert_eq!(
        app.state.store.member_role(&class, &id).await.unwrap(),
        Some(classchat_server::teachers::Role::Owner)
    );
    assert_eq!(
        send(&mei, "/admin/teachers", None).await.unwrap().status(),
        404
    );
    assert_eq!(
        send(&as_("someone@else.example"), "/admin/classes", None)
            .await
            .unwrap()
            .status(),
        403
    );

    let r = send(
        &head,
        &format!("/admin/teachers/{id}/disable"),
        Some(vec![("csrf", csrf)]),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        send(&mei, "/admin/classes", None).await.unwrap().status(),
        403
    );
}

/// Who can read a class's conversations is the owner's to choose in the dashboard: the next
/// sign-in carries it (so the widget tells the student); a co-teacher's change is refused.
#[tokio::test]
async fn the_owner_sets_conversation_visibility_in_the_dashboard_and_a_co_teacher_cannot() {
    let app = spawn_app_with(admin_opts()).await;
    let admin = sign_in_teacher(&app).await;
    let (_, owner) = teacher(&app, &admin, "mei@school.example").await;
    let (_, co) = teacher(&app, &admin, "lin@school.example").await;
    let class = create_class(&app, &owner, "History", "You are a history tutor.").await;
    let (_, code) = add_activity(&app, &owner, &class, "Essay help").await;
    let r = act(
        &app,
        &owner,
        &format!("/admin/classes/{class}/members"),
        &[("email", "lin@school.example"), ("role", "co_teacher")],
    )
    .await;
    assert_eq!(r.status(), 303);
    let visibility = || async {
        let r = app
            .post_session(json!({"access_code": code, "display_name": "Ana"}))
            .await;
        assert_eq!(r.status(), 200);
        r.json::<SessionResponse>().await.unwrap().visibility
    };
    assert_eq!(visibility().await, classchat_shared::Visibility::Off);

    let settings = format!("/admin/classes/{class}/settings");
    let before = snapshot(&app, &class).await;
    let r = act(
        &app,
        &co,
        &settings,
        &[("title", "History"), ("visibility", "full")],
    )
    .await;
    assert_eq!(r.status(), 403, "a co-teacher changes the visibility");
    assert_eq!(snapshot(&app, &class).await, before);
    let r = act(
        &app,
        &owner,
        &settings,
        &[("title", "History"), ("visibility", "nobody-knows")],
    )
    .await;
    assert_eq!(r.status(), 400, "an unknown visibility");
    assert_eq!(snapshot(&app, &class).await, before);

    let r = act(
        &app,
        &owner,
        &settings,
        &[("title", "History"), ("visibility", "full")],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(visibility().await, classchat_shared::Visibility::Full);
    // The co-teacher may still save the other settings, the visibility as it is.
    let r = act(
        &app,
        &co,
        &settings,
        &[("title", "History 2"), ("visibility", "full")],
    )
    .await;
    assert_eq!(r.status(), 303);

    // How long the words are kept is the owner's too.
    let keep = || async {
        let c = app.state.store.class(&class).await.unwrap().unwrap();
        (c.keep_conversations_days, c.keep_sessions_days)
    };
    let r = act(
        &app,
        &owner,
        &settings,
        &[("title", "History 2"), ("keep_conversations_days", "-3")],
    )
    .await;
    assert_eq!(r.status(), 400, "a negative number of days");
    assert_eq!(keep().await, (None, None));
    let r = act(
        &app,
        &owner,
        &settings,
        &[
            ("title", "History 2"),
            ("keep_conversations_days", "7"),
            ("keep_sessions_days", "0"),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(keep().await, (Some(7), Some(0)));
    let page = app
        .client
        .get(format!("{}{settings}", app.address))
        .header("cookie", &owner.cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(r#"name="keep_conversations_days""#) && page.contains(r#"value="7""#));
    let r = act(
        &app,
        &co,
        &settings,
        &[
            ("title", "History 2"),
            ("keep_conversations_days", "365"),
            ("keep_sessions_days", "0"),
        ],
    )
    .await;
    assert_eq!(r.status(), 403, "a co-teacher lengthens what is kept");
    assert_eq!(keep().await, (Some(7), Some(0)));
}

/// A teacher makes a personal access token in the dashboard: it is shown once, works on
/// the admin API for that teacher's classes only, is listed without its secret, and stops
/// at once when revoked there; another teacher cannot revoke it.
#[tokio::test]
async fn a_teacher_makes_and_revokes_an_api_token_in_the_dashboard() {
    let app = spawn_app_with(admin_opts()).await;
    let admin = sign_in_teacher(&app).await;
    let (_, mei) = teacher(&app, &admin, "mei@school.example").await;
    let (_, lin) = teacher(&app, &admin, "lin@school.example").await;
    let class = create_class(&app, &mei, "Biology", "You are a biology tutor.").await;
    let other = create_class(&app, &lin, "Art", "You are an art tutor.").await;

    let r = act(&app, &mei, "/admin/tokens", &[("name", "  ")]).await;
    assert_eq!(r.status(), 400, "a token needs a name");
    assert!(app.state.store.tokens(None).await.unwrap().is_empty());

    let r = act(&app, &mei, "/admin/tokens", &[("name", "grade sync")]).await;
    assert_eq!(r.status(), 303);
    let shown = location(&r);
    let page = get(&app, &mei, &shown).await.text().await.unwrap();
    let token = testid_text(&page, "new-token-value");
    assert!(token.starts_with("cc_pat_"), "{token}");
    let again = get(&app, &mei, &shown).await;
    assert_eq!(again.status(), 404, "shown once");
    assert!(!again.text().await.unwrap().contains(&token));
    let list = get(&app, &mei, "/admin/tokens").await.text().await.unwrap();
    assert!(list.contains("grade sync") && !list.contains(&token));

    let api = |path: String| {
        app.client
            .get(format!("{}{path}", app.address))
            .bearer_auth(&token)
            .send()
    };
    let mine = api(format!("/api/v1/admin/classes/{class}")).await.unwrap();
    assert_eq!(mine.status(), 200);
    let theirs = api(format!("/api/v1/admin/classes/{other}")).await.unwrap();
    assert_eq!(theirs.status(), 404, "scoped to the teacher's classes");

    let id = between(&list, "/admin/tokens/", "/revoke").to_owned();
    let r = act(&app, &lin, &format!("/admin/tokens/{id}/revoke"), &[]).await;
    assert_eq!(r.status(), 404, "another teacher's token is not there");
    assert_eq!(
        api(format!("/api/v1/admin/classes/{class}"))
            .await
            .unwrap()
            .status(),
        200
    );
    let r = act(&app, &mei, &format!("/admin/tokens/{id}/revoke"), &[]).await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        api(format!("/api/v1/admin/classes/{class}"))
            .await
            .unwrap()
            .status(),
        401,
        "a revoked token stops at once"
    );
}

/// The class page splits the week's usage by activity.
#[tokio::test]
async fn the_class_page_shows_the_weeks_usage_by_activity() {
    let app = spawn_app_with(admin_opts()).await;
    let admin = sign_in_teacher(&app).await;
    let (_, t) = teacher(&app, &admin, "mei@school.example").await;
    let class = create_class(&app, &t, "Physics", "You are a physics tutor.").await;
    let (_, lab) = add_activity(&app, &t, &class, "Lab report helper").await;
    let (_, exam) = add_activity(&app, &t, &class, "Exam revision").await;
    for (code, messages) in [(&lab, 2), (&exam, 1)] {
        let r = app
            .post_session(json!({"access_code": code, "display_name": "Ana"}))
            .await;
        let s: SessionResponse = r.json().await.unwrap();
        for _ in 0..messages {
            let r = app.post_chat(&s.token, chat_body("hi", false)).await;
            assert_eq!(r.status(), 200);
        }
    }
    app.usage_rows(3).await;
    let page = get(&app, &t, &format!("/admin/classes/{class}/settings"))
        .await
        .text()
        .await
        .unwrap();
    let table = between(&page, "data-testid=\"activity-usage\"", "</table>");
    let row = |title: &str| between(table, &format!(">{title}</th>"), "</tr>").to_owned();
    assert!(
        row("Lab report helper").starts_with("<td class=\"num\">2</td>"),
        "{table}"
    );
    assert!(
        row("Exam revision").starts_with("<td class=\"num\">1</td>"),
        "{table}"
    );
}
