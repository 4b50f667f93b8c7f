//! Paths every request must pass, tried on every route: a table of the dashboard's
//! state-changing routes, each sent without a CSRF token, with a wrong one, with another
//! teacher's, and against a class or session that is not there, changing nothing; and a
//! class's own system prompt from the classes file reaching the upstream.
//!
//! A new state-changing route joins [`ROUTES`] (admin API routes too, as they are written):
//! `every_state_changing_route_is_in_the_table` reads the routers' sources and fails for
//! one that is missing.

use serde_json::json;

use crate::admin::{PASSWORD, Teacher, act, sign_in_teacher};
use crate::helpers::*;

/// One state-changing route. `{class}` and `{session}` in `path` stand for a real class and
/// session (or, in the "not there" case, for ids that do not exist). The dashboard has one
/// teacher account today, so "another teacher" is another dashboard session; once teachers
/// own classes, add the case "a teacher of another class" (403/404, nothing changed) to the
/// loop below, and it runs for every row.
struct Route {
    path: &'static str,
    /// Form fields besides `csrf`, valid ones (the control case must succeed with them).
    form: &'static [(&'static str, &'static str)],
    /// What the control case (a right token, a real class or session) answers.
    ok: u16,
}

const ROUTES: &[Route] = &[
    Route {
        path: "/admin/classes/{class}/rotate",
        form: &[],
        ok: 303,
    },
    Route {
        path: "/admin/classes/{class}/disable",
        form: &[],
        ok: 303,
    },
    Route {
        path: "/admin/classes/{class}/enable",
        form: &[],
        ok: 303,
    },
    Route {
        path: "/admin/classes/{class}/quota",
        form: &[("quota", "7")],
        ok: 303,
    },
    Route {
        path: "/admin/classes/{class}/reset",
        form: &[],
        ok: 303,
    },
    // Any other action: the same checks, then 404.
    Route {
        path: "/admin/classes/{class}/explode",
        form: &[],
        ok: 404,
    },
    Route {
        path: "/admin/sessions/{session}/revoke",
        form: &[("class_id", "class-1")],
        ok: 303,
    },
    // Teachers' pages (admin/classes.rs, admin/teachers.rs). `{class}` is a class of the
    // configuration here, which these pages show read-only (409); their effect on classes
    // made in the store is dashboard_teachers'. `{id}`/`{teacher_id}` stay as written: no
    // such activity or teacher (404, after the CSRF check).
    Route {
        path: "/admin/classes",
        form: &[("title", "Made by the guard test")],
        ok: 303,
    },
    Route {
        path: "/admin/classes/{class}/settings",
        form: &[("title", "x")],
        ok: 409,
    },
    Route {
        path: "/admin/classes/{class}/delete",
        form: &[],
        ok: 409,
    },
    Route {
        path: "/admin/classes/{class}/activities",
        form: &[("title", "x")],
        ok: 409,
    },
    Route {
        path: "/admin/classes/{class}/members",
        form: &[("email", "a@b.example"), ("role", "assistant")],
        ok: 409,
    },
    Route {
        path: "/admin/classes/{class}/members/{teacher_id}/role",
        form: &[("role", "assistant")],
        ok: 409,
    },
    Route {
        path: "/admin/classes/{class}/members/{teacher_id}/remove",
        form: &[],
        ok: 409,
    },
    Route {
        path: "/admin/activities/{id}",
        form: &[("title", "x")],
        ok: 404,
    },
    Route {
        path: "/admin/activities/{id}/pause",
        form: &[],
        ok: 404,
    },
    Route {
        path: "/admin/activities/{id}/resume",
        form: &[],
        ok: 404,
    },
    Route {
        path: "/admin/activities/{id}/rotate",
        form: &[],
        ok: 404,
    },
    // A Dynamic Registration URL (admin/lti.rs), shown on the page the form answers.
    Route {
        path: "/admin/lti",
        form: &[],
        ok: 200,
    },
    Route {
        path: "/admin/teachers",
        form: &[("email", "guard@school.example"), ("name", "Guard")],
        ok: 303,
    },
    Route {
        path: "/admin/teachers/{id}/disable",
        form: &[],
        ok: 404,
    },
    Route {
        path: "/admin/teachers/{id}/enable",
        form: &[],
        ok: 404,
    },
    // Personal access tokens (admin/tokens.rs): `{id}` is no token here (404, after the
    // CSRF check); making and revoking one is dashboard_teachers'.
    Route {
        path: "/admin/tokens",
        form: &[("name", "Made by the guard test")],
        ok: 303,
    },
    Route {
        path: "/admin/tokens/{id}/revoke",
        form: &[],
        ok: 404,
    },
    // Personal codes and allowances (admin/personal_codes.rs): class-1 is a class of the
    // configuration (409, after the CSRF check) and `{id}` no code (404); their effects are
    // personal_codes:: and student_allowances::'.
    Route {
        path: "/admin/classes/{class}/students",
        form: &[("names", "Mei Lin")],
        ok: 409,
    },
    Route {
        path: "/admin/classes/{class}/students/allowance",
        form: &[("per_day", "5")],
        ok: 409,
    },
    Route {
        path: "/admin/classes/{class}/students/reset",
        form: &[("student", "code:p_x")],
        ok: 409,
    },
    Route {
        path: "/admin/personal-codes/{id}/revoke",
        form: &[],
        ok: 404,
    },
    Route {
        path: "/admin/personal-codes/{id}/reissue",
        form: &[],
        ok: 404,
    },
    // Safety alerts (admin/alerts.rs): no such flag here (404, after the CSRF check); a
    // dismissal's effect is alerts::'.
    Route {
        path: "/admin/alerts/{id}/dismiss",
        form: &[],
        ok: 404,
    },
    // Last: the control case signs the teacher out.
    Route {
        path: "/admin/logout",
        form: &[],
        ok: 303,
    },
];

/// Routes that change state but are not sent by a signed-in teacher, with the test that
/// guards them instead.
const EXEMPT: &[(&str, &str)] = &[(
    "/admin/login",
    "before sign-in: its own login CSRF, admin::password_sign_in_refuses_wrong_passwords_…",
)];

/// Everything a dashboard action can change, as one comparable value.
async fn snapshot(app: &TestApp, t: &Teacher, token: &str) -> String {
    let classes: Vec<String> = app
        .state
        .classes
        .current()
        .iter()
        .map(|c| {
            format!(
                "{} enabled={} quota={:?} stored={:?} generation={}",
                c.id, c.enabled, c.daily_message_quota, c.stored_codes, c.generation
            )
        })
        .collect();
    let audit = app
        .state
        .store
        .recent_audit(None, 1000)
        .await
        .unwrap()
        .len();
    let generations = app.state.store.class_generations().await.unwrap();
    let revocations = app.state.store.revocations(0).await.unwrap().len();
    // The student's token still chats, and the teacher is still signed in.
    let chat = app
        .post_chat(token, chat_body("hi", false))
        .await
        .status()
        .as_u16();
    let dashboard = app
        .client
        .get(format!("{}/admin", app.address))
        .header("cookie", &t.cookie)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    format!(
        "{classes:?} audit={audit} generations={generations:?} revocations={revocations} \
         in_memory_revoked={} chat={chat} dashboard={dashboard}",
        app.state.revoked.len()
    )
}

/// The session id (`sub`) a widget token carries.
fn session_id(token: &str) -> String {
    use base64::Engine;
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.split('.').nth(1).unwrap())
        .unwrap();
    serde_json::from_slice::<serde_json::Value>(&claims).unwrap()["sub"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn path_for(route: &Route, class: &str, session: &str) -> String {
    route
        .path
        .replace("{class}", class)
        .replace("{session}", session)
}

async fn post(app: &TestApp, t: &Teacher, path: &str, form: &[(&str, String)]) -> u16 {
    app.client
        .post(format!("{}{path}", app.address))
        .header("cookie", &t.cookie)
        .form(form)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn every_state_changing_dashboard_route_refuses_a_missing_wrong_or_foreign_token() {
    let app = spawn_app_with(Opts::default().with(|s| {
        s.admin = admin_password(PASSWORD);
        s.messages_per_minute = 0;
        s.class_messages_per_minute = 0;
    }))
    .await;
    let student = app.sign_in().await;
    let session = session_id(&student.token);
    wait_for("the sign-in's row", || async {
        app.state
            .store
            .session_info(&session)
            .await
            .unwrap()
            .is_some()
    })
    .await;
    let t = sign_in_teacher(&app).await;
    // Another teacher's dashboard session: its token is valid, but bound to that session.
    let other = sign_in_teacher(&app).await;
    assert_ne!(other.csrf, t.csrf);

    for route in ROUTES {
        let path = path_for(route, "class-1", &session);
        let before = snapshot(&app, &t, &student.token).await;
        let with = |csrf: Option<&str>| {
            let mut form: Vec<(&str, String)> =
                csrf.map(|c| ("csrf", c.to_owned())).into_iter().collect();
            form.extend(route.form.iter().map(|(k, v)| (*k, (*v).to_owned())));
            form
        };
        // The teacher's own token with the last character of its MAC changed.
        let mut tampered = t.csrf.clone();
        let last = tampered.pop().unwrap();
        tampered.push(if last == 'A' { 'B' } else { 'A' });
        for (case, form) in [
            ("no token", with(None)),
            ("an empty token", with(Some(""))),
            ("a made-up token", with(Some("1999999999.AAAA"))),
            ("a tampered token", with(Some(&tampered))),
            ("another teacher's token", with(Some(&other.csrf))),
        ] {
            let status = post(&app, &t, &path, &form).await;
            assert_eq!(status, 403, "{path} with {case}");
            assert_eq!(
                snapshot(&app, &t, &student.token).await,
                before,
                "{path} with {case} changed something"
            );
        }
        // A right token against a class or session that is not there: 404, nothing changed.
        if route.path.contains('{') {
            let path = path_for(route, "no-such-class", "no-such-session");
            assert_eq!(
                post(&app, &t, &path, &with(Some(&t.csrf))).await,
                404,
                "{path}"
            );
            assert_eq!(
                snapshot(&app, &t, &student.token).await,
                before,
                "{path} changed something"
            );
        }
    }

    // Control: with the right token each route does what it is for, so the refusals above
    // were the token's doing, not a malformed request's.
    for route in ROUTES {
        let path = path_for(route, "class-1", &session);
        let before = snapshot(&app, &t, &student.token).await;
        let status = act(&app, &t, &path, route.form).await.status().as_u16();
        assert_eq!(status, route.ok, "{path} with the right token");
        if route.ok == 303 {
            assert_ne!(
                snapshot(&app, &t, &student.token).await,
                before,
                "{path} changed nothing"
            );
        }
    }
}

/// The paths of every `.route(...)` in `source` that takes a state-changing method.
fn state_changing_routes(source: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = source;
    while let Some(at) = rest.find(".route(") {
        rest = &rest[at + ".route(".len()..];
        // The call's text, to its closing parenthesis.
        let mut depth = 1;
        let end = rest
            .char_indices()
            .find(|(_, c)| {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                depth == 0
            })
            .map_or(rest.len(), |(i, _)| i);
        let call = &rest[..end];
        let Some(path) = call.split('"').nth(1) else {
            continue;
        };
        if ["post(", "put(", "patch(", "delete("]
            .iter()
            .any(|m| call.contains(m))
        {
            out.push(path.to_owned());
        }
    }
    out
}

/// The dashboard's and admin API's sources: `admin.rs` and everything under `admin/`.
fn admin_sources() -> Vec<(std::path::PathBuf, String)> {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![src.join("admin.rs")];
    let mut dirs = vec![src.join("admin")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    files
        .into_iter()
        .filter_map(|p| std::fs::read_to_string(&p).ok().map(|s| (p, s)))
        .collect()
}

#[test]
fn every_state_changing_route_is_in_the_table() {
    let table: Vec<String> = ROUTES
        .iter()
        .map(|r| {
            r.path
                .replace("{class}", "{id}")
                .replace("{session}", "{session_id}")
        })
        .collect();
    let mut found = Vec::new();
    for (file, source) in admin_sources() {
        for path in state_changing_routes(&source) {
            // The table names its catch-all by an example action.
            let known = table.contains(&path)
                || (path == "/admin/classes/{id}/{action}"
                    && table.iter().any(|t| t == "/admin/classes/{id}/explode"))
                || EXEMPT.iter().any(|(p, _)| *p == path);
            assert!(
                known,
                "{path} (in {}) changes state: add it to route_guards::ROUTES",
                file.display()
            );
            found.push(path);
        }
    }
    assert!(
        found.len() >= ROUTES.len(),
        "the source scan found too few routes: {found:?}"
    );
}

#[tokio::test]
async fn a_class_from_the_classes_file_sends_its_own_system_prompt_upstream() {
    let toml = r#"
[[class]]
id = "bio-101"
title = "Biology 101"
codes = ["cell-wall-88"]
system_prompt = "You are a biology tutor for Biology 101."

[[class]]
id = "chem-7"
title = "Chemistry"
codes = ["beaker-set-7"]
system_prompt = "You are a chemistry tutor; never give a synthesis route."
"#;
    let app = spawn_app_with(Opts::default().with(|s| s.classes = toml_classes(s, toml))).await;
    for (code, prompt) in [
        (
            "beaker-set-7",
            "You are a chemistry tutor; never give a synthesis route.",
        ),
        ("cell-wall-88", "You are a biology tutor for Biology 101."),
    ] {
        let r = app.post_session(json!({ "access_code": code })).await;
        assert_eq!(r.status(), 200);
        let s: classchat_shared::SessionResponse = r.json().await.unwrap();
        let before = app.upstream.requests().len();
        let r = app.post_chat(&s.token, chat_body("hi", false)).await;
        assert_eq!(r.status(), 200);
        let reqs = app.upstream.requests();
        assert_eq!(reqs.len(), before + 1, "one chat, one upstream request");
        let m = reqs[before].body["messages"].as_array().unwrap().clone();
        assert_eq!(
            m[0],
            json!({"role": "system", "content": prompt}),
            "{code}: {m:?}"
        );
        let prompts = m.iter().filter(|x| x["role"] == "system").count();
        assert_eq!(
            prompts, 2,
            "the class's prompt and the time, nothing else: {m:?}"
        );
    }
}
