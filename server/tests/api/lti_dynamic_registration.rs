//! LTI Dynamic Registration through the real app and the emulated platform: the
//! administrator makes a single-use registration URL on the dashboard's LTI page; the
//! platform opens it with its OpenID configuration and registration token; classchat posts
//! its tool configuration, stores the answer, and a launch through the new registration
//! works. A foreign issuer, a used or made-up link, or a refused token store nothing.

use serde_json::Value;

use crate::admin::{PASSWORD, act, sign_in_teacher};
use crate::helpers::*;
use crate::lti::{between, login_at, post_launch_to, unescape};
use crate::lti_platform::*;

/// The app with the dashboard, and a registration URL made on its LTI page.
async fn app_and_url() -> (TestApp, String) {
    let app = spawn_app_with(Opts::default().with(|s| s.admin = admin_password(PASSWORD))).await;
    let url = registration_url(&app).await;
    (app, url)
}

async fn registration_url(app: &TestApp) -> String {
    let admin = sign_in_teacher(app).await;
    let page = app
        .client
        .get(format!("{}/admin/lti", app.address))
        .header("cookie", &admin.cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // Manual registration's values are there, ready to copy, for each LMS.
    for needle in [
        "/lti/login",
        "/lti/jwks.json",
        "Moodle",
        "Canvas",
        "Open edX",
    ] {
        assert!(page.contains(needle), "{needle}");
    }
    assert!(page.contains("Make a registration URL"));
    let r = act(app, &admin, "/admin/lti", &[]).await;
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    let input = &page[page.find("data-testid=\"lti-registration-url\"").unwrap() - 200..];
    let url = unescape(between(input, "value=\"", "\"").unwrap());
    assert!(
        url.starts_with(&format!("{}/lti/register?ticket=", app.state.public_url)),
        "{url}"
    );
    url
}

/// The platform opening the registration URL (in its iframe or window).
async fn open(app: &TestApp, url: &str, platform: &Platform, token: &str) -> (u16, String) {
    // The URL names the public address; the test server listens on its own.
    let url = url.replace(&*app.state.public_url, &app.address);
    let r = app
        .client
        .get(url)
        .query(&[
            (
                "openid_configuration",
                format!("{}/.well-known/openid-configuration", platform.url),
            ),
            ("registration_token", token.to_owned()),
        ])
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn dynamic_registration_stores_the_platform_and_a_launch_through_it_works() {
    let (app, url) = app_and_url().await;
    let platform = Platform::spawn().await;
    let (status, page) = open(&app, &url, &platform, REGISTRATION_TOKEN).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("data-role=\"registered\""));
    assert!(
        page.contains("data-lti-close"),
        "the page asks the LMS to close it"
    );
    assert!(page.contains("已註冊"));

    // What classchat asked for (DR §3.5.2).
    let regs = platform.registrations();
    assert_eq!(regs.len(), 1);
    let r = &regs[0];
    let launch = format!("{}/lti/launch", app.state.public_url);
    assert_eq!(r["application_type"], "web");
    assert_eq!(r["response_types"], serde_json::json!(["id_token"]));
    assert_eq!(r["token_endpoint_auth_method"], "private_key_jwt");
    assert_eq!(r["redirect_uris"], serde_json::json!([launch]));
    assert_eq!(
        r["initiate_login_uri"],
        format!("{}/lti/login", app.state.public_url)
    );
    assert_eq!(
        r["jwks_uri"],
        format!("{}/lti/jwks.json", app.state.public_url)
    );
    assert_eq!(r["scope"], "");
    let tool = &r["https://purl.imsglobal.org/spec/lti-tool-configuration"];
    assert_eq!(tool["target_link_uri"], launch.as_str());
    let claims: Vec<&str> = tool["claims"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(
        claims.contains(&"sub") && !claims.contains(&"email"),
        "{claims:?}"
    );
    let types: Vec<&str> = tool["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m: &Value| m["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["LtiResourceLinkRequest", "LtiDeepLinkingRequest"]);

    // What classchat stored.
    let list = app.state.store.lti_platforms().await.unwrap();
    assert_eq!(list.len(), 1);
    let p = &list[0];
    assert_eq!(p.issuer, platform.url);
    assert_eq!(p.client_id, CLIENT_ID);
    assert_eq!(p.deployments, [DEPLOYMENT]);
    assert_eq!(p.auth_url, format!("{}/auth", platform.url));
    assert_eq!(p.jwks_url, format!("{}/jwks", platform.url));

    // A launch through it gets as far as the course binding (none yet): the keys, issuer,
    // client id and deployment all came from the registration.
    platform.expect_redirect(&launch);
    let l = login_at(&app, &platform, &launch).await;
    let (status, page) = post_launch_to(&app, &l.id_token, &l.state, Some(&l.cookie)).await;
    assert_eq!(status, 404, "{page}");
    assert_eq!(between(&page, "data-error=\"", "\""), Some("not_bound"));

    // The link works once.
    let (status, page) = open(&app, &url, &platform, REGISTRATION_TOKEN).await;
    assert_eq!(status, 410, "{page}");
    assert!(page.contains("data-error=\"registration_ticket\""));
    assert_eq!(
        platform.registrations().len(),
        1,
        "the platform was not asked again"
    );
}

#[tokio::test]
async fn a_bad_registration_stores_nothing_and_keeps_the_link() {
    let (app, url) = app_and_url().await;
    let platform = Platform::spawn().await;

    // A made-up or missing ticket: refused before the platform is asked.
    let fake = format!("{}/lti/register?ticket=made-up", app.state.public_url);
    let (status, page) = open(&app, &fake, &platform, REGISTRATION_TOKEN).await;
    assert_eq!(
        (status, between(&page, "data-error=\"", "\"")),
        (410, Some("registration_ticket"))
    );
    assert!(platform.registrations().is_empty());

    // The issuer does not prefix the configuration URL (§3.5.1).
    platform.claim_issuer("https://canvas.instructure.com");
    let (status, page) = open(&app, &url, &platform, REGISTRATION_TOKEN).await;
    assert_eq!(
        (status, between(&page, "data-error=\"", "\"")),
        (400, Some("registration_issuer"))
    );
    assert!(platform.registrations().is_empty());
    platform.claim_issuer(&platform.url);

    // The platform refuses the registration token.
    let (status, page) = open(&app, &url, &platform, "wrong-token").await;
    assert_eq!(
        (status, between(&page, "data-error=\"", "\"")),
        (502, Some("registration_refused"))
    );
    assert!(!page.contains("wrong-token"), "no token in the page");

    // No configuration URL at all.
    let local = url.replace(&*app.state.public_url, &app.address);
    let r = app.client.get(&local).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("data-error=\"registration_param\"")
    );
    assert!(app.state.store.lti_platforms().await.unwrap().is_empty());

    // The link survived the failures: the right request still registers.
    let (status, page) = open(&app, &url, &platform, REGISTRATION_TOKEN).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(app.state.store.lti_platforms().await.unwrap().len(), 1);
}

#[tokio::test]
async fn only_the_administrator_makes_registration_urls() {
    let (app, _) = app_and_url().await;
    // No session: to the sign-in page; no CSRF token: refused.
    let r = app
        .client
        .post(format!("{}/admin/lti", app.address))
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_redirection() || r.status() == 403,
        "{}",
        r.status()
    );
    let admin = sign_in_teacher(&app).await;
    let r = app
        .client
        .post(format!("{}/admin/lti", app.address))
        .header("cookie", &admin.cookie)
        .form(&[("csrf", "1999999999.AAAA")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(!r.text().await.unwrap().contains("/lti/register?ticket="));
}
