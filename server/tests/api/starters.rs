//! Starters and the limits a student can see: what the sign-in response, the `done` event,
//! the non-streamed reply and a refusal tell the widget.

use classchat_fake_upstream::Behavior;
use classchat_server::config::Settings;
use classchat_shared::limits::MAX_STARTER_CHARS;
use classchat_shared::{
    Allowance, ChatEvent, ChatResponse, ErrorCode, LimitKind, LimitsLeft, SessionResponse,
};
use serde_json::{Value, json};

use crate::helpers::{
    CODE, Opts, SECRET, TestApp, chat_body, classes_file, expect_error, read_events,
    spawn_app_with, toml_classes,
};

fn class_with_starters(starters: &str) -> String {
    format!(
        "[[class]]\nid = \"bio-101\"\ntitle = \"Biology\"\ncodes = [\"cell-wall-88\"]\nstarters = {starters}\n"
    )
}

#[tokio::test]
async fn starters_from_the_classes_file_reach_the_sign_in_response_trimmed() {
    let toml = format!(
        "{}\n[[class]]\nid = \"plain\"\ntitle = \"Plain\"\ncodes = [\"plain-code-1\"]\n",
        class_with_starters(r#"[" What is a cell? ", "Quiz me on mitosis"]"#)
    );
    let app =
        spawn_app_with(Opts::default().with(move |s| s.classes = toml_classes(s, &toml))).await;
    let r: SessionResponse = app
        .post_session(json!({"access_code": "cell-wall-88"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r.class.starters, ["What is a cell?", "Quiz me on mitosis"]);
    // A class without starters sends none at all, as servers before starters did.
    let plain: Value = app
        .post_session(json!({"access_code": "plain-code-1"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(plain["class"]["id"], "plain");
    assert!(plain["class"].get("starters").is_none(), "{plain}");
}

#[tokio::test]
async fn starters_for_access_code_classes_come_from_starters_split_on_bars() {
    // STARTERS as the command line gives it, served by a server configured in code.
    let parsed = Settings::for_tests(&[
        "--auth-secret",
        SECRET,
        "--access-code",
        CODE,
        "--starters",
        "What is photosynthesis?| Explain it like I'm 10 |Give me a quiz",
    ])
    .unwrap();
    let app =
        spawn_app_with(Opts::default().with(move |s| s.classes = parsed.classes.clone())).await;
    let s = app.sign_in().await;
    assert_eq!(
        s.class.starters,
        [
            "What is photosynthesis?",
            "Explain it like I'm 10",
            "Give me a quiz"
        ]
    );
}

fn refusal(args: &[&str]) -> String {
    let mut all = vec!["--auth-secret", crate::helpers::SECRET];
    all.extend_from_slice(args);
    Settings::for_tests(&all)
        .expect_err("bad starters must stop start-up")
        .to_string()
}

#[test]
fn bad_starters_stop_start_up_naming_the_class_and_the_field() {
    let long = format!("[\"{}\"]", "x".repeat(MAX_STARTER_CHARS + 1));
    for (starters, want) in [
        (
            r#"["a", "b", "c", "d", "e"]"#,
            "5 starters given, at most 4",
        ),
        (r#"["a", "  "]"#, "starter number 2 is empty"),
        (long.as_str(), "starter number 1 is longer than 200"),
    ] {
        let f = classes_file(&class_with_starters(starters));
        let e = refusal(&["--classes-file", f.path().to_str().unwrap()]);
        for part in ["CLASSES_FILE", "class \"bio-101\"", "field starters", want] {
            assert!(e.contains(part), "{e:?} should say {part:?}");
        }
        assert!(!e.contains("cell-wall-88"), "no code in {e:?}");
    }
    let long = "y".repeat(MAX_STARTER_CHARS + 1);
    for (starters, want) in [
        ("a|b|c|d|e", "at most 4"),
        ("a||b", "starter number 2 is empty"),
        ("a|", "starter number 2 is empty"),
        (long.as_str(), "longer than 200"),
    ] {
        let e = refusal(&["--access-code", CODE, "--starters", starters]);
        assert!(e.starts_with("STARTERS: "), "{e:?}");
        assert!(e.contains(want), "{e:?} should say {want:?}");
    }
}

async fn reply(app: &TestApp, token: &str) -> ChatResponse {
    let r = app.post_chat(token, chat_body("hi", false)).await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn done_limits(app: &TestApp, token: &str) -> Option<LimitsLeft> {
    let events = read_events(app.post_chat(token, chat_body("hi", true)).await).await;
    match events.last() {
        Some(ChatEvent::Done { limits, .. }) => *limits,
        other => panic!("the stream ends with done: {other:?}"),
    }
}

fn left(l: &Option<LimitsLeft>) -> (Option<u32>, Option<u32>) {
    let l = l.expect("limits are set");
    (l.minute.map(|a| a.left), l.day.map(|a| a.left))
}

#[tokio::test]
async fn the_reply_and_the_done_event_count_down_the_minute_and_the_day() {
    // 4 a minute is one message per 15 s: the test sends its four well within that.
    let app = spawn_app_with(Opts::default().with(|s| {
        s.messages_per_minute = 4;
        s.class_messages_per_minute = 0;
        s.daily_message_quota = 6;
    }))
    .await;
    let s = app.sign_in().await;
    let first = reply(&app, &s.token).await;
    assert_eq!(left(&first.limits), (Some(3), Some(5)));
    let LimitsLeft {
        minute: Some(Allowance { reset_secs, .. }),
        day: Some(day),
    } = first.limits.unwrap()
    else {
        unreachable!()
    };
    assert!(
        (1..=15).contains(&reset_secs),
        "whole after one interval: {reset_secs}"
    );
    assert!(
        (1..=86_400).contains(&day.reset_secs),
        "until midnight: {day:?}"
    );
    assert_eq!(left(&done_limits(&app, &s.token).await), (Some(2), Some(4)));
    assert_eq!(
        left(&reply(&app, &s.token).await.limits),
        (Some(1), Some(3))
    );
    assert_eq!(left(&done_limits(&app, &s.token).await), (Some(0), Some(2)));

    let r = app.post_chat(&s.token, chat_body("hi", false)).await;
    let e = expect_error(r, 429, ErrorCode::RateLimited).await;
    assert_eq!(e.error.limit, Some(LimitKind::Minute));
    assert!((1..=15).contains(&e.error.retry_after.unwrap()));

    // Another student's minute is their own; the class's day is shared.
    let other = app.sign_in().await;
    assert_eq!(
        left(&reply(&app, &other.token).await.limits),
        (Some(3), Some(1))
    );
    assert_eq!(
        left(&done_limits(&app, &other.token).await),
        (Some(2), Some(0))
    );
    let r = app.post_chat(&other.token, chat_body("hi", true)).await;
    let e = expect_error(r, 429, ErrorCode::RateLimited).await;
    assert_eq!(e.error.limit, Some(LimitKind::Day));
    assert!(e.error.message.contains("today"));
    // On PostgreSQL the counts came from the database's one statement, not the fallback.
    assert!(!app.logs().contains("not answering"), "{}", app.logs());
}

#[tokio::test]
async fn the_tighter_per_minute_budget_is_the_one_reported() {
    let app = spawn_app_with(Opts::default().with(|s| {
        s.messages_per_minute = 10;
        s.class_messages_per_minute = 3;
    }))
    .await;
    let (a, b) = (app.sign_in().await, app.sign_in().await);
    assert_eq!(left(&reply(&app, &a.token).await.limits), (Some(2), None));
    assert_eq!(left(&done_limits(&app, &b.token).await), (Some(1), None));
    assert_eq!(left(&reply(&app, &a.token).await.limits), (Some(0), None));
    let r = app.post_chat(&b.token, chat_body("hi", false)).await;
    let e = expect_error(r, 429, ErrorCode::RateLimited).await;
    assert_eq!(e.error.limit, Some(LimitKind::ClassMinute));
}

#[tokio::test]
async fn without_limits_neither_the_reply_nor_the_done_event_carries_any() {
    let app = spawn_app_with(Opts::default().with(|s| {
        s.messages_per_minute = 0;
        s.class_messages_per_minute = 0;
    }))
    .await;
    let s = app.sign_in().await;
    let r = app.post_chat(&s.token, chat_body("hi", false)).await;
    let body: Value = r.json().await.unwrap();
    assert!(body.get("limits").is_none(), "{body}");
    assert_eq!(done_limits(&app, &s.token).await, None);
}

#[tokio::test]
async fn the_providers_quota_refusal_is_named_with_its_retry_after() {
    let app = spawn_app_with(Opts::default()).await;
    app.upstream
        .set_behavior(Behavior::QuotaRefusal { retry_after: 42 });
    let s = app.sign_in().await;
    let r = app.post_chat(&s.token, chat_body("hi", false)).await;
    assert_eq!(r.headers()["retry-after"], "42");
    let e = expect_error(r, 429, ErrorCode::RateLimited).await;
    assert_eq!(
        (e.error.limit, e.error.retry_after),
        (Some(LimitKind::Upstream), Some(42))
    );
    // A stream has answered before the refusal: it is the stream's error event, named the
    // same way.
    let events = read_events(app.post_chat(&s.token, chat_body("hi", true)).await).await;
    assert_eq!(
        events,
        [classchat_shared::ChatEvent::Error {
            code: ErrorCode::RateLimited,
            message: e.error.message,
            retry_after: Some(42),
            limit: Some(LimitKind::Upstream),
        }]
    );
}
