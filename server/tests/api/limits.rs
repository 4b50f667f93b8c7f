//! Sign-in and message limits, with distinct loopback source addresses as distinct
//! clients (no header is trusted for these).

use classchat_server::config::ClientIpSource;
use classchat_shared::ErrorCode;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{
    CODE, Opts, TestApp, behind_loopback_proxy, chat_body, client_from, expect_error, minutes,
    rate, spawn_app_with,
};

async fn sign_in_from(app: &TestApp, client: &reqwest::Client, code: &str) -> reqwest::Response {
    client
        .post(format!("{}/api/v1/session", app.address))
        .json(&json!({ "access_code": code }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_flood_of_wrong_codes_from_many_addresses_does_not_stop_a_right_code() {
    let app = spawn_app_with(Opts::default()).await;
    // Thirty addresses each guess until they are refused (the defaults).
    for n in 2..32u8 {
        let c = client_from(n);
        let mut refused = false;
        for _ in 0..40 {
            let r = sign_in_from(&app, &c, "wrong-guess-1").await;
            if r.status() == StatusCode::TOO_MANY_REQUESTS {
                refused = true;
                break;
            }
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        }
        assert!(refused, "127.0.0.{n} was never limited");
    }
    let r = sign_in_from(&app, &client_from(40), CODE).await;
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "a student elsewhere still signs in"
    );
}

#[tokio::test]
async fn a_guesser_on_one_address_is_stopped_with_retry_after() {
    let app = spawn_app_with(Opts::default()).await;
    let c = client_from(2);
    let mut refused = 0;
    for i in 0..60 {
        let r = sign_in_from(&app, &c, &format!("guess-{i:04}")).await;
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            let retry: u64 = r.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!(retry >= 1);
            refused += 1;
        } else {
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        }
    }
    assert!(refused >= 40, "only {refused} of 60 guesses refused");
    // And being refused, the right code is refused too until the wait is over.
    expect_error(
        sign_in_from(&app, &c, CODE).await,
        429,
        ErrorCode::RateLimited,
    )
    .await;
}

#[tokio::test]
async fn a_classroom_behind_one_address_that_mistypes_is_not_locked_out() {
    let app = spawn_app_with(Opts::default()).await;
    let c = client_from(3);
    let mut typos = 0;
    for i in 0..40 {
        if i % 3 == 0 && typos < 13 {
            let r = sign_in_from(&app, &c, "green-leaf-24").await;
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "typo {typos}");
            typos += 1;
        }
        let r = sign_in_from(&app, &c, CODE).await;
        assert_eq!(
            r.status(),
            StatusCode::OK,
            "student {i} after {typos} typos"
        );
    }
    assert_eq!(typos, 13);
}

#[tokio::test]
async fn each_right_code_gives_one_daily_failure_back() {
    let app = spawn_app_with(Opts::default().with(|s| {
        s.login_failures_per_address = rate(100, minutes(1));
        s.login_failures_per_address_per_day = 3;
    }))
    .await;
    let c = client_from(4);
    for _ in 0..2 {
        assert_eq!(sign_in_from(&app, &c, "nope-nope").await.status(), 401);
    }
    assert_eq!(sign_in_from(&app, &c, CODE).await.status(), 200);
    assert_eq!(sign_in_from(&app, &c, "nope-nope").await.status(), 401);
    // Three wrong codes were counted and one given back: there is room for this one.
    assert_eq!(sign_in_from(&app, &c, CODE).await.status(), 200);
    // Without right codes the daily budget runs out.
    let d = client_from(5);
    for _ in 0..3 {
        assert_eq!(sign_in_from(&app, &d, "nope-nope").await.status(), 401);
    }
    expect_error(
        sign_in_from(&app, &d, CODE).await,
        429,
        ErrorCode::RateLimited,
    )
    .await;
}

#[tokio::test]
async fn successful_sign_ins_per_address_are_limited() {
    let app =
        spawn_app_with(Opts::default().with(|s| s.sign_ins_per_address = rate(3, minutes(10))))
            .await;
    let c = client_from(6);
    for _ in 0..3 {
        assert_eq!(sign_in_from(&app, &c, CODE).await.status(), 200);
    }
    let e = expect_error(
        sign_in_from(&app, &c, CODE).await,
        429,
        ErrorCode::RateLimited,
    )
    .await;
    assert!(e.error.message.contains("sign-ins"), "{}", e.error.message);
    assert_eq!(
        sign_in_from(&app, &client_from(7), CODE).await.status(),
        200
    );
}

#[tokio::test]
async fn ipv6_clients_are_counted_per_64() {
    let app = spawn_app_with(Opts::default().with(|s| {
        behind_loopback_proxy(s, ClientIpSource::XForwardedFor);
        s.login_failures_per_address = rate(3, minutes(10));
    }))
    .await;
    let from = |ip: &'static str, code: &'static str| {
        app.client
            .post(format!("{}/api/v1/session", app.address))
            .header("x-forwarded-for", ip)
            .json(&json!({ "access_code": code }))
            .send()
    };
    for ip in ["2001:db8:7:1::1", "2001:db8:7:1::2", "2001:db8:7:1:ffff::9"] {
        assert_eq!(from(ip, "wrong-code").await.unwrap().status(), 401);
    }
    let r = from("2001:db8:7:1:abcd::1", CODE).await.unwrap();
    expect_error(r, 429, ErrorCode::RateLimited).await;
    let r = from("2001:db8:7:2::1", CODE).await.unwrap();
    assert_eq!(r.status(), 200, "the next /64 has its own budget");
}

#[tokio::test]
async fn a_code_holder_with_many_sessions_cannot_pass_the_class_ceiling() {
    let app = spawn_app_with(Opts::default().with(|s| {
        s.class_messages_per_minute = 5;
        s.messages_per_minute = 10;
    }))
    .await;
    let mut tokens = Vec::new();
    for _ in 0..6 {
        tokens.push(app.sign_in().await.token);
    }
    for t in &tokens[..5] {
        let r = app.post_chat(t, chat_body("hi", false)).await;
        assert_eq!(r.status(), 200);
    }
    let r = app.post_chat(&tokens[5], chat_body("hi", false)).await;
    let e = expect_error(r, 429, ErrorCode::RateLimited).await;
    assert!(e.error.message.contains("class"), "{}", e.error.message);
    assert!(e.error.retry_after.is_some());
}
