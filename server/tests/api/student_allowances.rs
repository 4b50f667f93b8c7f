//! Allowances that follow the student (issue 24): a student known by a personal code
//! spends one allowance per day and week across all their sessions, devices and (on
//! PostgreSQL) replicas; the widget's `day_left` shows it; the dashboard lists who is close
//! to or over it and resets one student; a class-code student is not counted. Runs on
//! SQLite, and on PostgreSQL with `CLASSCHAT_TEST_DB=postgres`; the two-replica scenario
//! always on PostgreSQL.

use reqwest::Method;
use serde_json::{Value, json};

use crate::admin::{PASSWORD, Teacher, act, sign_in_teacher};
use crate::helpers::*;
use crate::personal_codes::{admin_class, admin_opts, all_testid, make_codes, sign_in_with};

/// One message; answers the status and the body (the reply's `limits`, or the error).
async fn send(app: &TestApp, token: &str) -> (u16, Value) {
    let r = app.post_chat(token, chat_body("hi", false)).await;
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn set_allowance(app: &TestApp, t: &Teacher, class: &str, day: &str, week: &str) {
    let r = act(
        app,
        t,
        &format!("/admin/classes/{class}/students/allowance"),
        &[("per_day", day), ("per_week", week)],
    )
    .await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
}

/// An activity's (class) code for the class, through the API.
async fn class_code(app: &TestApp, token: &str, class: &str) -> String {
    let (s, a) = crate::admin_api::api(
        app,
        Method::POST,
        &format!("/api/v1/admin/classes/{class}/activities"),
        token,
        Some(json!({"title": "Lab"})),
    )
    .await;
    assert_eq!(s, 201, "{a}");
    a["code"].as_str().unwrap().to_owned()
}

fn refused_by_the_day(status: u16, body: &Value) {
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "rate_limited");
    assert_eq!(
        body["error"]["limit"], "student_day",
        "the widget says it is the student's own"
    );
    assert!(body["error"]["retry_after"].as_u64().unwrap() >= 1);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("your messages"),
        "{body}"
    );
}

#[tokio::test]
async fn a_students_day_follows_them_across_devices_and_a_reset_lets_them_go_on() {
    let app = spawn_app_with(admin_opts()).await;
    let (t, class, token) = admin_class(&app).await;
    set_allowance(&app, &t, &class, "5", "").await;
    let cards = make_codes(&app, &t, &class, "Mei Lin\nChen Wei").await;
    let laptop = sign_in_with(&app, &cards[0].1).await;
    let phone = sign_in_with(&app, &cards[0].1).await;

    // Three on the laptop: the widget's figure counts down the student's own allowance.
    for left in [4, 3, 2] {
        let (s, body) = send(&app, &laptop.token).await;
        assert_eq!(s, 200, "{body}");
        assert_eq!(body["limits"]["day_left"], left, "{body}");
        assert!(body["limits"]["day_reset_secs"].as_u64().unwrap() <= 86_400);
    }
    // Two more on the phone, a new session; then the sixth is refused, on either device.
    for left in [1, 0] {
        let (s, body) = send(&app, &phone.token).await;
        assert_eq!(s, 200, "{body}");
        assert_eq!(body["limits"]["day_left"], left);
    }
    let (s, body) = send(&app, &phone.token).await;
    refused_by_the_day(s, &body);
    let (s, body) = send(&app, &laptop.token).await;
    refused_by_the_day(s, &body);
    // A new sign-in starts no fresh allowance.
    let again = sign_in_with(&app, &cards[0].1).await;
    let (s, body) = send(&app, &again.token).await;
    refused_by_the_day(s, &body);

    // Chen has their own allowance; a class-code student is not counted at all.
    assert_eq!(
        send(&app, &sign_in_with(&app, &cards[1].1).await.token)
            .await
            .0,
        200
    );
    let code = class_code(&app, &token, &class).await;
    let anon = sign_in_with(&app, &code).await;
    for _ in 0..7 {
        let (s, body) = send(&app, &anon.token).await;
        assert_eq!(s, 200, "{body}");
        assert!(body["limits"]["day_left"].is_null(), "{body}");
    }

    // The dashboard lists Mei as over the limit (Chen, at 1 of 5, is not listed) and says
    // class-code students stay per session.
    let page = app
        .page_as(&format!("/admin/classes/{class}/students"), &t.cookie)
        .await;
    assert!(page.contains("data-testid=\"allowance-scope\""));
    assert!(page.contains("their limits stay per sign-in"));
    let rows = page
        .split("data-testid=\"watch-row\"")
        .skip(1)
        .collect::<Vec<_>>();
    assert_eq!(rows.len(), 1, "{page}");
    assert!(rows[0].contains("Mei Lin") && rows[0].contains("Over the limit"));
    let student = rows[0]
        .split("name=\"student\" value=\"")
        .nth(1)
        .map(|r| r[..r.find('"').unwrap()].to_owned())
        .unwrap();
    assert_eq!(student, claims_stu(&laptop.token));

    // Reset one student: audited, and Mei goes on (on any device).
    let r = act(
        &app,
        &t,
        &format!("/admin/classes/{class}/students/reset"),
        &[("student", &student)],
    )
    .await;
    assert_eq!(r.status(), 303);
    let (s, body) = send(&app, &laptop.token).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["limits"]["day_left"], 4);
    let audit = app.state.store.audit_lines(Some(&class), 50).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|l| l.action == "student_allowance_reset" && l.detail.contains(&student))
    );
    assert!(audit.iter().any(|l| l.action == "student_allowance_set"));
    let page = app
        .page_as(&format!("/admin/classes/{class}/students"), &t.cookie)
        .await;
    assert!(
        all_testid(&page, "watch-empty").len() == 1,
        "nobody close after the reset"
    );
}

fn claims_stu(token: &str) -> String {
    crate::personal_codes::claims(token)["stu"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_week_allowance_counts_too_and_the_closest_limit_shows() {
    let app = spawn_app_with(admin_opts()).await;
    let (t, class, _) = admin_class(&app).await;
    set_allowance(&app, &t, &class, "10", "3").await;
    let cards = make_codes(&app, &t, &class, "Mei Lin").await;
    let s = sign_in_with(&app, &cards[0].1).await;
    for left in [2, 1, 0] {
        let (st, body) = send(&app, &s.token).await;
        assert_eq!(st, 200, "{body}");
        assert_eq!(
            body["limits"]["day_left"], left,
            "the week's is the tighter"
        );
    }
    let (st, body) = send(&app, &s.token).await;
    assert_eq!(st, 429);
    assert_eq!(body["error"]["limit"], "student_week");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("this week"),
        "{body}"
    );
    // Close to the limit (80 %) counts as listed too: raise the week to 4 (3 of 4 = 75 %:
    // not listed), then to 3 again (over).
    set_allowance(&app, &t, &class, "10", "4").await;
    let page = app
        .page_as(&format!("/admin/classes/{class}/students"), &t.cookie)
        .await;
    assert_eq!(
        all_testid(&page, "watch-empty").len(),
        1,
        "75 % is not close"
    );
    assert_eq!(send(&app, &s.token).await.0, 200);
    let page = app
        .page_as(&format!("/admin/classes/{class}/students"), &t.cookie)
        .await;
    assert!(page.contains("Over the limit"));
}

#[tokio::test]
async fn a_message_refused_by_another_limit_does_not_spend_the_allowance() {
    let app = spawn_app_with(Opts::default().with(|s| {
        s.admin = admin_password(PASSWORD);
        s.messages_per_minute = 1;
        s.class_messages_per_minute = 0;
    }))
    .await;
    let (t, class, _) = admin_class(&app).await;
    set_allowance(&app, &t, &class, "5", "").await;
    let cards = make_codes(&app, &t, &class, "Mei Lin").await;
    let s = sign_in_with(&app, &cards[0].1).await;
    assert_eq!(send(&app, &s.token).await.0, 200);
    let (st, body) = send(&app, &s.token).await;
    assert_eq!(st, 429);
    assert_eq!(body["error"]["limit"], "minute", "{body}");
    let stu = claims_stu(&s.token);
    let tz = jiff::tz::TimeZone::get("Asia/Taipei").unwrap();
    let periods = classchat_server::allowances::Periods::at(&jiff::Zoned::now().with_time_zone(tz));
    let uses = app
        .state
        .store
        .student_uses(&class, &periods.day, &periods.week)
        .await
        .unwrap();
    assert_eq!(uses.len(), 1);
    assert_eq!(
        (uses[0].student.as_str(), uses[0].day),
        (stu.as_str(), 1),
        "the refused one was given back"
    );
}

/// The scenario on two replicas of one PostgreSQL database: 3 messages on one
/// device through replica A, 2 more on another device through replica B, then refused on
/// B (and on A); a reset on A's dashboard lets them go on through B.
#[tokio::test]
async fn on_two_replicas_a_student_is_refused_after_five_across_devices_and_a_reset_lets_them_go_on()
 {
    let url = crate::pg_cluster::shared().create_database().await;
    let opts = || {
        admin_opts()
            .with(database(&url))
            .with(|s| s.resync_interval = hours(1))
    };
    let a = spawn_app_with(opts()).await;
    let b = spawn_app_with(opts()).await;
    let (t, class, token) = admin_class(&a).await;
    set_allowance(&a, &t, &class, "5", "").await;
    let cards = make_codes(&a, &t, &class, "Mei Lin").await;
    // B learns of the class by notification; its students sign in there.
    let code = class_code(&a, &token, &class).await;
    wait_for("the class on replica B", || async {
        b.post_session(json!({"access_code": code})).await.status() == 200
    })
    .await;

    let laptop = sign_in_with(&a, &cards[0].1).await;
    let phone = sign_in_with(&b, &cards[0].1).await;
    for _ in 0..3 {
        assert_eq!(send(&a, &laptop.token).await.0, 200);
    }
    for left in [1, 0] {
        let (s, body) = send(&b, &phone.token).await;
        assert_eq!(s, 200, "{body}");
        assert_eq!(body["limits"]["day_left"], left);
    }
    let (s, body) = send(&b, &phone.token).await;
    refused_by_the_day(s, &body);
    let (s, body) = send(&a, &laptop.token).await;
    refused_by_the_day(s, &body);

    // Replicas admitting the same student at once grant no more than the allowance.
    set_allowance(&a, &t, &class, "7", "").await;
    let sends = (0..4).map(|i| {
        let (app, tok) = if i % 2 == 0 {
            (&a, &laptop.token)
        } else {
            (&b, &phone.token)
        };
        send(app, tok)
    });
    let ok = futures::future::join_all(sends)
        .await
        .into_iter()
        .filter(|(s, _)| *s == 200)
        .count();
    assert_eq!(ok, 2, "7 - 5 = 2 granted of 4 sent at once");
    let (s, body) = send(&b, &phone.token).await;
    refused_by_the_day(s, &body);

    // A reset on A's dashboard: B lets the student go on.
    let t = sign_in_teacher(&a).await;
    let r = act(
        &a,
        &t,
        &format!("/admin/classes/{class}/students/reset"),
        &[("student", &claims_stu(&phone.token))],
    )
    .await;
    assert_eq!(r.status(), 303);
    let (s, body) = send(&b, &phone.token).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["limits"]["day_left"], 6);
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn without_an_allowance_nothing_is_counted() {
    let app = spawn_app_with(admin_opts()).await;
    let (t, class, _) = admin_class(&app).await;
    let cards = make_codes(&app, &t, &class, "Mei Lin").await;
    let s = sign_in_with(&app, &cards[0].1).await;
    let (st, body) = send(&app, &s.token).await;
    assert_eq!(st, 200);
    assert!(body["limits"]["day_left"].is_null(), "{body}");
    // A bad allowance is refused with the field named, and nothing is stored.
    let r = act(
        &app,
        &t,
        &format!("/admin/classes/{class}/students/allowance"),
        &[("per_day", "-3"), ("per_week", "")],
    )
    .await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("href=\"#per-day\""));
    assert_eq!(
        app.state.store.student_allowance(&class).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn a_new_periods_first_message_drops_the_students_past_periods() {
    use classchat_server::store::allowances::{Counted, Period};
    let app = spawn_app_with(admin_opts()).await;
    let store = &app.state.store;
    let count = |day: &'static str, week: &'static str| async move {
        store
            .count_student_message(
                "c1",
                "code:p1",
                &[
                    Period { key: day, limit: 5 },
                    Period {
                        key: week,
                        limit: 9,
                    },
                ],
            )
            .await
            .unwrap()
    };
    assert_eq!(
        count("d:2026-12-07", "w:2026-12-07").await,
        Counted::Admitted(vec![1, 1])
    );
    assert_eq!(
        count("d:2026-12-07", "w:2026-12-07").await,
        Counted::Admitted(vec![2, 2])
    );
    // Another student's rows stay.
    store
        .count_student_message(
            "c1",
            "code:p2",
            &[Period {
                key: "d:2026-12-07",
                limit: 5,
            }],
        )
        .await
        .unwrap();
    // Tuesday: Monday's row goes, the week's stays.
    assert_eq!(
        count("d:2026-12-08", "w:2026-12-07").await,
        Counted::Admitted(vec![1, 3])
    );
    let uses = store
        .student_uses("c1", "d:2026-12-07", "w:2026-12-07")
        .await
        .unwrap();
    let mine = uses.iter().find(|u| u.student == "code:p1").unwrap();
    assert_eq!((mine.day, mine.week), (0, 3));
    let other = uses.iter().find(|u| u.student == "code:p2").unwrap();
    assert_eq!(other.day, 1);
}
