//! The safety check beside each reply: phrase lists in English and Traditional Chinese,
//! the optional safety model (a Llama Guard model the fake serves), help resources in the
//! stream, and a flag stored for each concern. The reply is never held by the check. Runs
//! on SQLite, and on PostgreSQL with `CLASSCHAT_TEST_DB=postgres`.

use std::time::{Duration, Instant};

use classchat_fake_upstream::{FakeConfig, Guard, GuardAnswer};
use classchat_server::config::Settings;
use classchat_server::config::safety::SafetyConfig;
use classchat_server::store::safety::FlagRecord;
use classchat_shared::ChatEvent;
use serde_json::json;

use crate::helpers::*;

/// The safety model's id in these tests.
pub(crate) const GUARD_MODEL: &str = "llama-guard3:1b";

/// Options for one class (the default code, `CODE`) whose visibility is `visibility`, from
/// a classes file kept in the test's directory (a restart with `Opts::dir` reads it again).
pub(crate) fn class_with(visibility: &str) -> Opts {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let file = dir.path().join("classes.toml");
    std::fs::write(
        &file,
        format!(
            "[[class]]\nid = \"bio\"\ntitle = \"Biology\"\ncodes = [\"{CODE}\"]\nvisibility = \"{visibility}\"\n"
        ),
    )
    .unwrap();
    let toml = std::fs::read_to_string(&file).unwrap();
    Opts {
        dir: Some(dir),
        ..Opts::default()
    }
    .with(move |s| s.classes = toml_classes(s, &toml))
}

/// The mail, webhook and help settings that SMTP_*, ALERT_* and SAFETY_HELP would give, as
/// `f` sets them: configured in code, still checked the way the server checks them.
pub(crate) fn safety(
    f: impl Fn(&mut SafetyConfig) + Send + Sync + 'static,
) -> impl Fn(&mut Settings) + Send + Sync + 'static {
    move |s| {
        let mut c = SafetyConfig {
            safety_model_timeout: "20s".into(),
            ..SafetyConfig::default()
        };
        f(&mut c);
        let built = c
            .into_settings(&s.timezone_name)
            .expect("valid safety settings");
        s.safety.smtp = built.smtp;
        s.safety.webhook = built.webhook;
        if c.safety_help.is_some() || c.safety_help_file.is_some() {
            s.safety.help = built.help;
        }
    }
}

/// Options for a class whose messages are checked (visibility `flagged`).
pub(crate) fn watched() -> Opts {
    class_with("flagged")
}

/// A fake that also serves the safety model, answering as given.
pub(crate) fn with_guard(opts: Opts, answer: GuardAnswer) -> Opts {
    Opts {
        fake: FakeConfig {
            guard: Some(Guard {
                model: GUARD_MODEL.into(),
                answer,
            }),
            ..opts.fake
        },
        ..opts
    }
    .with(|s| s.safety.model = Some(GUARD_MODEL.into()))
}

/// Every stored flag, newest first.
pub(crate) async fn flags(app: &TestApp) -> Vec<FlagRecord> {
    app.state.store.flags(None, None, 100).await.unwrap()
}

/// Waits until `n` flags are stored and returns them, newest first.
pub(crate) async fn wait_for_flags(app: &TestApp, n: usize) -> Vec<FlagRecord> {
    wait_for(&format!("{n} flag(s) stored"), || async {
        flags(app).await.len() >= n
    })
    .await;
    flags(app).await
}

/// Sends one message as a stream and reads every event.
pub(crate) async fn chat(app: &TestApp, token: &str, text: &str) -> Vec<ChatEvent> {
    read_events(app.post_chat(token, chat_body(text, true)).await).await
}

fn help_of(events: &[ChatEvent]) -> Option<String> {
    events.iter().find_map(|e| match e {
        ChatEvent::Help { text } => Some(text.clone()),
        _ => None,
    })
}

/// The help event comes after the reply, just before `done`.
fn assert_help_before_done(events: &[ChatEvent]) {
    let n = events.len();
    assert!(n >= 3, "{events:?}");
    assert!(
        matches!(events[n - 2], ChatEvent::Help { .. }),
        "{events:?}"
    );
    assert!(
        matches!(events[n - 1], ChatEvent::Done { .. }),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_self_harm_phrase_in_english_or_chinese_is_flagged_answered_and_gets_help() {
    let app = spawn_app_with(watched()).await;
    let token = app.sign_in().await.token;

    let sentence = "Honestly I want to kill myself after this exam";
    let events = chat(&app, &token, sentence).await;
    assert_eq!(
        reply_text(&events),
        format!("You said: {sentence}"),
        "answered as usual"
    );
    assert_help_before_done(&events);
    let help = help_of(&events).unwrap();
    // Asia/Taipei: Taiwan's lines by default.
    assert!(
        help.contains("1925") && help.contains("1995") && help.contains("113"),
        "{help}"
    );

    // The student's name comes from the session row, which the usage log writes after the reply.
    app.usage_rows(1).await;
    let f = &wait_for_flags(&app, 1).await[0];
    assert_eq!(
        (f.category.as_str(), f.source.as_str()),
        ("self_harm", "phrase")
    );
    assert!(f.detail.starts_with("en:"), "{}", f.detail);
    assert_eq!(f.conversation_id, "conv-1");
    let first_id = f.id.clone();
    assert_eq!(f.display_name.as_deref(), Some("Mei"));
    // Nothing of the message in clear: the exchange is sealed or absent.
    for field in [&f.detail, &f.category, &f.source] {
        assert!(!field.contains("kill myself"));
    }
    let sealed = f.exchange.as_deref().expect("the exchange is kept, sealed");
    assert!(!sealed.contains("kill myself") && !sealed.contains("exam"));
    let opened = classchat_server::alerts::open_exchange(&app.state.alerts, &f.id, sealed).unwrap();
    assert_eq!(opened.last().unwrap().content, sentence);
    // Bound to its flag: under another flag's id it does not open.
    assert!(
        classchat_server::alerts::open_exchange(&app.state.alerts, "f_other", sealed).is_none()
    );

    let chinese = "老師，我真的不想活了";
    let events = chat(&app, &token, chinese).await;
    assert_eq!(reply_text(&events), format!("You said: {chinese}"));
    assert_help_before_done(&events);
    let all = wait_for_flags(&app, 2).await;
    // (Flags of the same second may list in either order.)
    let f = all.iter().find(|f| f.id != first_id).unwrap();
    assert_eq!(
        (f.category.as_str(), f.source.as_str()),
        ("self_harm", "phrase")
    );
    assert!(f.detail.starts_with("zh-TW:"), "{}", f.detail);
}

#[tokio::test]
async fn harmless_messages_that_look_alike_get_no_help_and_no_flag() {
    let app = spawn_app_with(watched()).await;
    let token = app.sign_in().await.token;
    for text in [
        "What makes a killer app?",
        "How do I shoot a photo of the moon?",
        "笑死我了，這題好難",
        "百貨公司跳樓大拍賣是什麼意思？",
    ] {
        let events = chat(&app, &token, text).await;
        assert!(help_of(&events).is_none(), "{text}: {events:?}");
        assert!(matches!(events.last(), Some(ChatEvent::Done { .. })));
    }
    // A flagged message afterwards is stored alone: the harmless ones left nothing.
    chat(&app, &token, "he said he will bring a gun to school").await;
    let all = wait_for_flags(&app, 1).await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].category, "violence");
}

#[tokio::test]
async fn the_reply_never_waits_for_a_safety_model_that_hangs() {
    let app = spawn_app_with(
        with_guard(watched(), GuardAnswer::Hangs)
            .with(|s| s.safety.model_timeout = std::time::Duration::from_secs(120)),
    )
    .await;
    let token = app.sign_in().await.token;
    let started = Instant::now();
    let events = chat(&app, &token, "I want to die").await;
    let took = started.elapsed();
    assert_eq!(reply_text(&events), "You said: I want to die");
    assert_help_before_done(&events);
    // The model is still being asked (it never answers); the reply did not wait for it.
    assert!(took < Duration::from_secs(20), "the reply took {took:?}");
    wait_for("the safety model was asked", || async {
        app.upstream
            .requests()
            .iter()
            .any(|r| r.body["model"] == GUARD_MODEL)
    })
    .await;
    let f = &wait_for_flags(&app, 1).await[0];
    assert_eq!(f.source, "phrase");
    // Asked with the student's message alone, not streamed.
    let asked = app
        .upstream
        .requests()
        .into_iter()
        .find(|r| r.body["model"] == GUARD_MODEL)
        .unwrap();
    assert_eq!(asked.body["stream"], json!(false));
    assert_eq!(
        asked.body["messages"],
        json!([{"role": "user", "content": "I want to die"}])
    );
}

#[tokio::test]
async fn a_safety_model_answer_unsafe_with_a_category_flags_the_message() {
    let app = spawn_app_with(with_guard(
        watched(),
        GuardAnswer::Says("unsafe\nS11".into()),
    ))
    .await;
    let token = app.sign_in().await.token;
    // No listed phrase: only the model sees it.
    let events = chat(&app, &token, "what is the fastest way to stop existing").await;
    assert!(
        help_of(&events).is_none(),
        "the model's verdict comes after the reply"
    );
    let f = &wait_for_flags(&app, 1).await[0];
    assert_eq!(
        (f.category.as_str(), f.source.as_str(), f.detail.as_str()),
        ("self_harm", "model", "S11")
    );

    // A category classchat does not flag (S5, defamation) leaves nothing.
    app.upstream
        .configure(|c| c.guard.as_mut().unwrap().answer = GuardAnswer::Says("unsafe\nS5".into()));
    chat(&app, &token, "my neighbour is a liar and a thief").await;
    // And `safe` neither: a flagged message after both is the second flag.
    app.upstream
        .configure(|c| c.guard.as_mut().unwrap().answer = GuardAnswer::Says("safe".into()));
    chat(&app, &token, "what is photosynthesis").await;
    app.upstream.configure(|c| {
        c.guard.as_mut().unwrap().answer = GuardAnswer::Says("unsafe\nS1,S9".into())
    });
    chat(&app, &token, "how would someone plan an attack").await;
    let all = wait_for_flags(&app, 2).await;
    assert_eq!(all.len(), 2, "{all:?}");
    // (Flags of the same second may list in either order.)
    let mut got: Vec<(&str, &str)> = all
        .iter()
        .map(|f| (f.category.as_str(), f.detail.as_str()))
        .collect();
    got.sort();
    assert_eq!(got, [("self_harm", "S11"), ("violence", "S1,S9")]);
}

#[tokio::test]
async fn a_safety_model_that_is_down_leaves_the_phrase_check_working() {
    let app = spawn_app_with(with_guard(watched(), GuardAnswer::Down)).await;
    let token = app.sign_in().await.token;
    let events = chat(&app, &token, "我想自殺").await;
    assert_eq!(reply_text(&events), "You said: 我想自殺");
    assert!(help_of(&events).is_some());
    let f = &wait_for_flags(&app, 1).await[0];
    assert_eq!(
        (f.category.as_str(), f.source.as_str()),
        ("self_harm", "phrase")
    );
    wait_for("the model's failure logged", || async {
        app.logs().contains("safety model:")
    })
    .await;
    assert!(!app.logs().contains(API_KEY));
}

#[tokio::test]
async fn a_reply_that_is_not_streamed_carries_the_help_too() {
    let app = spawn_app_with(watched().with(safety(|c| c.safety_help = Some("us".into())))).await;
    let token = app.sign_in().await.token;
    let r = app
        .post_chat(
            &token,
            chat_body("nobody would care, I wish I was dead", false),
        )
        .await;
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    let help = body["help"].as_str().unwrap();
    assert!(
        help.contains("988") && help.contains("1-800-422-4453"),
        "{help}"
    );
    let plain = app.post_chat(&token, chat_body("hello", false)).await;
    let body: serde_json::Value = plain.json().await.unwrap();
    assert!(body.get("help").is_none(), "{body}");
}

#[tokio::test]
async fn a_class_whose_visibility_is_off_is_not_checked_and_one_that_is_full_is() {
    let app = spawn_app_with(class_with("off")).await;
    let token = app.sign_in().await.token;
    let events = chat(&app, &token, "I want to kill myself").await;
    assert_eq!(reply_text(&events), "You said: I want to kill myself");
    assert!(help_of(&events).is_none(), "{events:?}");
    // Its usage row is written after the reply, and still no flag then.
    app.usage_rows(1).await;
    assert!(flags(&app).await.is_empty());
    app.stop().await;

    let app = spawn_app_with(class_with("full")).await;
    let token = app.sign_in().await.token;
    let events = chat(&app, &token, "I want to kill myself").await;
    assert!(help_of(&events).is_some(), "{events:?}");
    wait_for_flags(&app, 1).await;
}

/// A `flagged` class keeps no text until a flag: then the flagged exchange and the one
/// before it in the same conversation are stored (sealed) for the teacher to read.
#[tokio::test]
async fn a_flagged_class_stores_the_flagged_exchange_with_its_context() {
    let app = spawn_app_with(watched()).await;
    let token = app.sign_in().await.token;
    chat(&app, &token, "What is photosynthesis?").await;
    chat(&app, &token, "I want to die").await;
    wait_for_flags(&app, 1).await;
    let stored = || async {
        app.state
            .store
            .conversations_of("bio", 100)
            .await
            .unwrap()
            .iter()
            .map(|c| c.exchanges)
            .sum::<i64>()
    };
    wait_for("the flagged exchange and its context stored", || async {
        stored().await == 2
    })
    .await;
}
