//! Token counts of streamed replies: classchat asks for them, reads every spelling, and
//! records a marked estimate when none arrives (docs/open-webui.md, "Token counts").

use classchat_fake_upstream::{FAKE_USAGE, FakeConfig, UsageStyle};
use serde_json::json;

use crate::admin::{PASSWORD, sign_in_teacher};
use crate::helpers::*;

#[tokio::test]
async fn a_stream_asks_for_usage_and_a_plain_request_does_not() {
    let app = spawn_app().await;
    let s = app.sign_in().await;
    read_events(app.post_chat(&s.token, chat_body("one", true)).await).await;
    let _ = app
        .post_chat(&s.token, chat_body("two", false))
        .await
        .text()
        .await;
    let reqs = app.upstream.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(
        reqs[0].body["stream_options"],
        json!({"include_usage": true})
    );
    assert_eq!(reqs[1].body["stream"], false);
    assert!(
        reqs[1].body.get("stream_options").is_none(),
        "no stream_options without a stream: {}",
        reqs[1].body
    );
}

#[tokio::test]
async fn every_spelling_of_a_streams_usage_is_recorded_exactly() {
    let app = spawn_app().await;
    let s = app.sign_in().await;
    let styles = [
        UsageStyle::OpenAi,
        UsageStyle::InputOutput,
        UsageStyle::Ollama,
    ];
    for style in styles {
        app.upstream.configure(|c| c.usage = style);
        read_events(app.post_chat(&s.token, chat_body("hi", true)).await).await;
    }
    let rows = app.usage_rows(styles.len()).await;
    for (style, r) in styles.iter().zip(&rows) {
        assert_eq!(
            (r.prompt_tokens, r.completion_tokens, r.tokens_estimated),
            (
                Some(i64::from(FAKE_USAGE.0)),
                Some(i64::from(FAKE_USAGE.1)),
                0
            ),
            "{style:?}"
        );
    }
}

#[tokio::test]
async fn a_stream_without_usage_records_an_estimate_marked_everywhere() {
    let reply = "An answer of exactly forty-one characters";
    let app = spawn_app_with(
        Opts {
            fake: FakeConfig {
                usage: UsageStyle::Never,
                reply: Some(reply.into()),
                ..FakeConfig::default()
            },
            ..Opts::default()
        }
        .with(|s| s.admin = admin_password(PASSWORD)),
    )
    .await;
    let s = app.sign_in().await;
    let events = read_events(app.post_chat(&s.token, chat_body("hello", true)).await).await;
    assert_eq!(reply_text(&events), reply);

    // Characters / 4, rounded up, of what was sent and what came back.
    let sent: usize = app.upstream.requests()[0].body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap().chars().count())
        .sum();
    let want_prompt = sent.div_ceil(4) as i64;
    let want_completion = reply.chars().count().div_ceil(4) as i64;
    let rows = app.usage_rows(1).await;
    assert_eq!(
        (
            rows[0].prompt_tokens,
            rows[0].completion_tokens,
            rows[0].tokens_estimated
        ),
        (Some(want_prompt), Some(want_completion), 1)
    );

    let t = sign_in_teacher(&app).await;
    let html = app.page_as("/admin/classes/class-1", &t.cookie).await;
    let total = want_prompt + want_completion;
    assert!(
        html.contains(&format!("data-value=\"{total}\" data-estimated=\"1\"")),
        "{html}"
    );
    assert!(html.contains(&format!(">≈{total}</span>")), "{html}");
    assert!(html.contains("for 1 reply the upstream reported no token counts"));

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
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
    let col = lines[0]
        .iter()
        .position(|h| *h == "tokens_estimated")
        .expect("a tokens_estimated column");
    assert_eq!(
        lines[0][col - 2..col],
        ["prompt_tokens", "completion_tokens"]
    );
    assert_eq!(lines.len(), 2, "{csv}");
    assert_eq!(
        lines[1][col - 2..=col],
        [
            want_prompt.to_string(),
            want_completion.to_string(),
            "1".to_string()
        ],
        "{csv}"
    );
}

#[tokio::test]
async fn a_refused_request_gets_no_estimate() {
    let app = spawn_app().await;
    app.upstream
        .set_behavior(classchat_fake_upstream::Behavior::Status {
            status: 500,
            body: r#"{"error":{"message":"down"}}"#.into(),
            content_type: "application/json".into(),
        });
    let s = app.sign_in().await;
    let _ = app
        .post_chat(&s.token, chat_body("hi", true))
        .await
        .text()
        .await;
    let rows = app.usage_rows(1).await;
    assert_eq!(rows[0].outcome, "upstream_error");
    assert_eq!((rows[0].prompt_tokens, rows[0].tokens_estimated), (None, 0));
}
