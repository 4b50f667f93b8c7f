//! Access codes, widget tokens, refresh, logout, revocation and brute-force limits.

use base64::Engine;
use classchat_shared::{ErrorCode, SessionResponse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::helpers::*;

fn b64(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

fn now() -> i64 {
    classchat_server::basics::now_secs()
}

/// The claims of a token (read without verifying, as anyone holding it could).
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

fn sign(secret: &str, alg: Algorithm, claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(alg),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

async fn chat_status(app: &TestApp, token: &str) -> reqwest::Response {
    app.post_chat(token, chat_body("hello", false)).await
}

#[tokio::test]
async fn right_code_signs_in_and_wrong_code_is_refused() {
    let app = spawn_app().await;
    let s = app.sign_in().await;
    assert_eq!(s.class.id, "class-1");
    assert_eq!(s.class.title, "Class assistant");
    assert!(
        s.expires_at > now() + 3000 && s.expires_at <= now() + 3600,
        "60 minute default"
    );
    assert_eq!(
        s.session_expires_at - claims_of(&s.token)["sat"].as_i64().unwrap(),
        12 * 3600
    );
    let c = claims_of(&s.token);
    assert_eq!(c["name"], "Mei");
    assert_eq!(c["aud"], "classchat-widget");
    assert!(
        !s.token.contains(CODE) && !c.to_string().to_lowercase().contains("green-leaf"),
        "no code in the token"
    );
    assert_eq!(chat_status(&app, &s.token).await.status(), 200);

    let r = app
        .post_session(json!({"access_code": "green-leaf-43"}))
        .await;
    let e = expect_error(r, 401, ErrorCode::InvalidCode).await;
    assert!(!e.error.message.contains("green"), "{}", e.error.message);
}

#[tokio::test]
async fn codes_are_trimmed_and_case_insensitive() {
    let app = spawn_app().await;
    for code in ["  GREEN-LEAF-42\t", "green-leaf-42", "Green-Leaf-42 "] {
        let r = app.post_session(json!({"access_code": code})).await;
        assert_eq!(r.status(), 200, "{code:?}");
    }
}

#[tokio::test]
async fn bad_session_requests_get_specific_errors() {
    let app = spawn_app().await;
    let r = app
        .client
        .post(format!("{}/api/v1/session", app.address))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    expect_error(r, 400, ErrorCode::BadRequest).await;
    let r = app.post_session(json!({"code": CODE})).await;
    expect_error(r, 400, ErrorCode::BadRequest).await;
    let r = app
        .post_session(json!({"access_code": CODE, "display_name": "x".repeat(65)}))
        .await;
    expect_error(r, 400, ErrorCode::BadRequest).await;
}

#[tokio::test]
async fn forged_expired_and_foreign_tokens_are_refused() {
    let app = spawn_app().await;
    let good = app.sign_in().await;
    let c = claims_of(&good.token);
    let with = |patch: Value| {
        let mut v = c.clone();
        for (k, val) in patch.as_object().unwrap() {
            v[k] = val.clone();
        }
        v
    };
    let unsigned = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&c)
    );
    let rs256 = format!(
        "{}.{}.{}",
        b64(&json!({"alg": "RS256", "typ": "JWT"})),
        b64(&c),
        "c2lnbmF0dXJl"
    );
    let cases: Vec<(&str, String, ErrorCode)> = vec![
        ("alg none", unsigned, ErrorCode::InvalidToken),
        ("RS256 header", rs256, ErrorCode::InvalidToken),
        (
            "HS384 with our secret",
            sign(SECRET, Algorithm::HS384, &c),
            ErrorCode::InvalidToken,
        ),
        (
            "another secret",
            sign(
                "another-secret-0123456789-0123456789-xyz",
                Algorithm::HS256,
                &c,
            ),
            ErrorCode::InvalidToken,
        ),
        (
            "wrong aud",
            sign(
                SECRET,
                Algorithm::HS256,
                &with(json!({"aud": "open-webui"})),
            ),
            ErrorCode::InvalidToken,
        ),
        (
            "wrong iss",
            sign(SECRET, Algorithm::HS256, &with(json!({"iss": "someone"}))),
            ErrorCode::InvalidToken,
        ),
        (
            "unknown class",
            sign(SECRET, Algorithm::HS256, &with(json!({"cls": "class-9"}))),
            ErrorCode::InvalidToken,
        ),
        (
            "expired",
            sign(SECRET, Algorithm::HS256, &with(json!({"exp": now() - 120}))),
            ErrorCode::TokenExpired,
        ),
        ("garbage", "abc.def.ghi".into(), ErrorCode::InvalidToken),
    ];
    for (name, token, code) in cases {
        let r = chat_status(&app, &token).await;
        assert_eq!(r.status(), 401, "{name}");
        let body: classchat_shared::ApiError = r.json().await.unwrap();
        assert_eq!(body.error.code, code, "{name}");
    }
    // Just expired, within the 30 s leeway: still fine.
    let fresh = sign(SECRET, Algorithm::HS256, &with(json!({"exp": now() - 5})));
    assert_eq!(chat_status(&app, &fresh).await.status(), 200);
    // No token at all.
    let r = app
        .client
        .post(format!("{}/api/v1/chat", app.address))
        .json(&chat_body("hi", false))
        .send()
        .await
        .unwrap();
    expect_error(r, 401, ErrorCode::InvalidToken).await;
    assert!(!captured_logs().contains(SECRET));
}

#[tokio::test]
async fn refresh_renews_up_to_the_maximum_age_and_not_beyond() {
    let app = spawn_app_with(Opts::default().with(|s| {
        s.token_ttl = minutes(10);
        s.session_max_age = hours(1);
    }))
    .await;
    let s = app.sign_in().await;
    let r = app.refresh(&s.token).await;
    assert_eq!(r.status(), 200);
    let fresh: SessionResponse = r.json().await.unwrap();
    assert_eq!(
        claims_of(&fresh.token)["sub"],
        claims_of(&s.token)["sub"],
        "same session"
    );
    assert!(fresh.expires_at >= s.expires_at);

    // A session 55 minutes old gets a token cut at its hour.
    let mut c = claims_of(&s.token);
    let sat = now() - 55 * 60;
    c["sat"] = json!(sat);
    let old = sign(SECRET, Algorithm::HS256, &c);
    let r: SessionResponse = app.refresh(&old).await.json().await.unwrap();
    assert_eq!(r.expires_at, sat + 3600);
    // Past its hour, refreshing is refused even though the token itself has not expired.
    c["sat"] = json!(now() - 3601);
    let too_old = sign(SECRET, Algorithm::HS256, &c);
    expect_error(app.refresh(&too_old).await, 401, ErrorCode::TokenExpired).await;
}

#[tokio::test]
async fn logout_revokes_the_token_and_survives_a_restart() {
    let app = spawn_app().await;
    let s = app.sign_in().await;
    let other = app.sign_in().await;
    assert_eq!(app.logout(&s.token).await.status(), 204);
    expect_error(
        chat_status(&app, &s.token).await,
        401,
        ErrorCode::SessionRevoked,
    )
    .await;
    expect_error(app.refresh(&s.token).await, 401, ErrorCode::SessionRevoked).await;
    assert_eq!(
        chat_status(&app, &other.token).await.status(),
        200,
        "other sessions unaffected"
    );

    let dir = app.dir();
    app.stop().await;
    let again = spawn_app_with(Opts {
        dir: Some(dir),
        ..Opts::default()
    })
    .await;
    expect_error(
        chat_status(&again, &s.token).await,
        401,
        ErrorCode::SessionRevoked,
    )
    .await;
    assert_eq!(chat_status(&again, &other.token).await.status(), 200);
}

#[tokio::test]
async fn rotating_the_secret_keeps_tokens_working_through_auth_secret_previous() {
    let app = spawn_app().await;
    let s = app.sign_in().await;
    let dir = app.dir();
    app.stop().await;
    const NEW: &str = "brand-new-secret-0123456789-0123456789-xyz";
    let rotated = spawn_app_with(
        Opts {
            dir: Some(dir.clone()),
            ..Opts::default()
        }
        .with(|s| {
            s.auth_secret = NEW.into();
            s.auth_secret_previous = Some(SECRET.into());
        }),
    )
    .await;
    assert_eq!(
        chat_status(&rotated, &s.token).await.status(),
        200,
        "old token verifies with the previous secret"
    );
    let r: SessionResponse = rotated.refresh(&s.token).await.json().await.unwrap();
    rotated.stop().await;
    let only_new = spawn_app_with(
        Opts {
            dir: Some(dir),
            ..Opts::default()
        }
        .with(|s| s.auth_secret = NEW.into()),
    )
    .await;
    expect_error(
        chat_status(&only_new, &s.token).await,
        401,
        ErrorCode::InvalidToken,
    )
    .await;
    assert_eq!(
        chat_status(&only_new, &r.token).await.status(),
        200,
        "refreshed token is signed with the new secret"
    );
}

#[tokio::test]
async fn changing_a_class_code_revokes_its_tokens() {
    let app = spawn_app().await;
    let s = app.sign_in().await;
    let dir = app.dir();
    app.stop().await;
    let changed = spawn_app_with(
        Opts {
            dir: Some(dir),
            ..Opts::default()
        }
        .with(|s| s.classes = access_codes(s, "new-code-2027")),
    )
    .await;
    let e = expect_error(
        chat_status(&changed, &s.token).await,
        401,
        ErrorCode::SessionRevoked,
    )
    .await;
    assert!(
        e.error.message.contains("code has changed"),
        "{}",
        e.error.message
    );
}

#[tokio::test]
async fn too_many_wrong_codes_from_one_address_are_rate_limited() {
    let app = spawn_app_with(
        Opts::default().with(|s| s.login_failures_per_address = rate(3, minutes(10))),
    )
    .await;
    for _ in 0..3 {
        expect_error(
            app.post_session(json!({"access_code": "wrong-code"})).await,
            401,
            ErrorCode::InvalidCode,
        )
        .await;
    }
    let r = app.post_session(json!({"access_code": CODE})).await;
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=200).contains(&retry), "{retry}");
    let e = expect_error(r, 429, ErrorCode::RateLimited).await;
    assert_eq!(e.error.retry_after, Some(retry));
}

#[tokio::test]
async fn forwarded_headers_are_ignored_unless_configured() {
    let app = spawn_app_with(
        Opts::default().with(|s| s.login_failures_per_address = rate(2, minutes(10))),
    )
    .await;
    for i in 0..2 {
        let r = app
            .client
            .post(format!("{}/api/v1/session", app.address))
            .header("x-forwarded-for", format!("10.9.9.{i}"))
            .header("cf-connecting-ip", format!("10.8.8.{i}"))
            .json(&json!({"access_code": "wrong-code"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    // A spoofed header does not buy a fresh budget: both came from the socket address.
    let r = app
        .client
        .post(format!("{}/api/v1/session", app.address))
        .header("x-forwarded-for", "10.7.7.7")
        .json(&json!({"access_code": CODE}))
        .send()
        .await
        .unwrap();
    expect_error(r, 429, ErrorCode::RateLimited).await;
}

#[tokio::test]
async fn classes_file_gives_each_class_its_own_code_settings_and_switch() {
    let toml = r#"
[[class]]
id = "bio-101"
title = "Biology 101"
codes = ["cell-wall-88", "mitosis-77"]
greeting = "Ask me about cells."
system_prompt = "You are a biology tutor."
model = "test-model"

[[class]]
id = "closed"
title = "Closed class"
codes = ["closed-door-1"]
enabled = false
"#;
    let app = spawn_app_with(Opts::default().with(|s| s.classes = toml_classes(s, toml))).await;
    let r: SessionResponse = app
        .post_session(json!({"access_code": "MITOSIS-77"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r.class.id, "bio-101");
    assert_eq!(r.class.greeting.as_deref(), Some("Ask me about cells."));
    let e = expect_error(
        app.post_session(json!({"access_code": "closed-door-1"}))
            .await,
        401,
        ErrorCode::ClassDisabled,
    )
    .await;
    assert!(e.error.message.contains("not open"));
    // A token for the disabled class (e.g. issued before it was disabled) stops working.
    let claims = json!({"sub": "s", "cls": "closed", "cfp": "x", "sat": now(), "iat": now(), "exp": now() + 60,
                        "aud": "classchat-widget", "iss": "classchat"});
    let t = sign(SECRET, Algorithm::HS256, &claims);
    expect_error(chat_status(&app, &t).await, 401, ErrorCode::ClassDisabled).await;
}
