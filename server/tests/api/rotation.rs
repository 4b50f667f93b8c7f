//! Rotating a code and going back to the configuration never revives old tokens, and the
//! database keeps only keyed digests of the codes the dashboard made.

use classchat_shared::ErrorCode;
use serde_json::json;

use crate::admin::{PASSWORD, act, sign_in_teacher};
use crate::helpers::*;

/// The new code shown once on the page the rotation redirects to.
async fn rotate(app: &TestApp, cookie: &str, csrf: &str) -> String {
    let r = app
        .client
        .post(format!("{}/admin/classes/class-1/rotate", app.address))
        .header("cookie", cookie)
        .form(&[("csrf", csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let to = r.headers()["location"].to_str().unwrap().to_owned();
    let html = app.page_as(&to, cookie).await;
    let at = html
        .find("data-testid=\"admin-new-code\"")
        .expect("the new code on the page");
    let rest = &html[at..];
    let start = rest.find("<code class=\"code\">").unwrap() + "<code class=\"code\">".len();
    rest[start..start + rest[start..].find('<').unwrap()]
        .trim()
        .to_owned()
}

#[tokio::test]
async fn rotating_and_going_back_never_revives_old_tokens() {
    let app = spawn_app_with(Opts::default().with(|s| s.admin = admin_password(PASSWORD))).await;
    let before = app.sign_in().await;
    let t = sign_in_teacher(&app).await;
    let (cookie, csrf) = (t.cookie.as_str(), t.csrf.as_str());

    let code = rotate(&app, cookie, csrf).await;
    let during = app
        .post_session(json!({ "access_code": code }))
        .await
        .json::<classchat_shared::SessionResponse>()
        .await
        .unwrap();
    expect_error(
        app.post_chat(&before.token, chat_body("hi", false)).await,
        401,
        ErrorCode::SessionRevoked,
    )
    .await;

    // The database keeps a keyed digest, not the code.
    let stored = app.state.store.load_overrides().await.unwrap();
    let codes = stored[0].codes.clone().unwrap();
    assert!(!codes.iter().any(|c| c.contains(&code)), "{codes:?}");
    assert!(codes[0].starts_with("hmac-sha256:"), "{codes:?}");

    // Back to the configured code: it works again, but neither the tokens of before the
    // rotation nor those of the rotated code do.
    assert_eq!(
        act(&app, &t, "/admin/classes/class-1/reset", &[])
            .await
            .status(),
        303
    );
    for old in [&before.token, &during.token] {
        expect_error(
            app.post_chat(old, chat_body("hi", false)).await,
            401,
            ErrorCode::SessionRevoked,
        )
        .await;
        expect_error(app.refresh(old).await, 401, ErrorCode::SessionRevoked).await;
    }
    let after = app.sign_in().await;
    assert_eq!(
        app.post_chat(&after.token, chat_body("hi", false))
            .await
            .status(),
        200
    );

    // And after a restart on the same database, the same holds.
    let dir = app.dir();
    app.stop().await;
    let app = spawn_app_with(Opts {
        dir: Some(dir),
        ..Opts::default().with(|s| s.admin = admin_password(PASSWORD))
    })
    .await;
    expect_error(
        app.post_chat(&before.token, chat_body("hi", false)).await,
        401,
        ErrorCode::SessionRevoked,
    )
    .await;
    assert_eq!(
        app.post_chat(&after.token, chat_body("hi", false))
            .await
            .status(),
        200
    );
}
