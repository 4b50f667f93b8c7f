//! LTI 1.3 launch and Deep Linking 2.0 through the real app, with the emulated platform of
//! `lti_platform`: a learner signs in without a code and chats; Deep Linking binds the
//! course and answers with a response that verifies against `/lti/jwks.json`; each check
//! of the 1EdTech certification list refuses its launch with its own error page and stores
//! nothing; a launch started on one replica finishes on the other.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};

use crate::admin_api::admin_token;
use crate::helpers::*;
use crate::lti_platform::*;

/// The app, a registered emulated platform, and an administrator token.
pub(crate) struct Tool {
    pub(crate) app: TestApp,
    pub(crate) platform: Platform,
    pub(crate) launch: String,
    pub(crate) admin: String,
}

pub(crate) async fn register(app: &TestApp, admin: &str, platform: &Platform) -> reqwest::Response {
    app.client
        .post(format!("{}/api/v1/admin/lti/platforms", app.address))
        .bearer_auth(admin)
        .json(&platform.registration())
        .send()
        .await
        .unwrap()
}

pub(crate) async fn tool_with(opts: Opts) -> Tool {
    let app = spawn_app_with(opts).await;
    let platform = Platform::spawn().await;
    let admin = admin_token(&app).await;
    assert_eq!(register(&app, &admin, &platform).await.status(), 201);
    let launch = format!("{}/lti/launch", app.state.public_url);
    platform.expect_redirect(&launch);
    Tool {
        app,
        platform,
        launch,
        admin,
    }
}

pub(crate) async fn tool() -> Tool {
    tool_with(Opts::default()).await
}

/// What `/lti/login` and the platform's authentication endpoint gave the browser.
pub(crate) struct Login {
    pub(crate) state: String,
    pub(crate) nonce: String,
    /// `classchat_lti_state=…`, as the browser sends it back.
    pub(crate) cookie: String,
    /// The platform's own `id_token` for this login (a learner's).
    pub(crate) id_token: String,
}

pub(crate) fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = s.find(start)? + start.len();
    let len = s[from..].find(end)?;
    Some(&s[from..from + len])
}

pub(crate) fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

pub(crate) async fn login_at(app: &TestApp, platform: &Platform, launch: &str) -> Login {
    let r = app
        .client
        .get(format!("{}/lti/login", app.address))
        .query(&[
            ("iss", platform.issuer()),
            ("login_hint", LOGIN_HINT),
            ("target_link_uri", launch),
            ("lti_message_hint", MESSAGE_HINT),
            ("client_id", CLIENT_ID),
            ("lti_deployment_id", DEPLOYMENT),
        ])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection(), "{}", r.status());
    let set_cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    for attr in [
        "HttpOnly",
        "Secure",
        "SameSite=None",
        "Partitioned",
        "Path=/lti/",
    ] {
        assert!(set_cookie.contains(attr), "{set_cookie}");
    }
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(&format!("{}/auth?", platform.url)));
    let auth = app.client.get(&location).send().await.unwrap();
    let status = auth.status();
    let html = auth.text().await.unwrap();
    assert_eq!(status, 200, "the platform refused the request: {html}");
    Login {
        state: between(&html, "name=state value=\"", "\"")
            .unwrap()
            .to_owned(),
        nonce: between(&html, "data-nonce=\"", "\"").unwrap().to_owned(),
        cookie,
        id_token: between(&html, "name=id_token value=\"", "\"")
            .unwrap()
            .to_owned(),
    }
}

pub(crate) async fn login(t: &Tool) -> Login {
    login_at(&t.app, &t.platform, &t.launch).await
}

/// Posts a launch form as the browser would; answers status and page.
pub(crate) async fn post_launch_to(
    app: &TestApp,
    id_token: &str,
    state: &str,
    cookie: Option<&str>,
) -> (u16, String) {
    let mut req = app
        .client
        .post(format!("{}/lti/launch", app.address))
        .form(&[("id_token", id_token), ("state", state)]);
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

pub(crate) async fn post_launch(t: &Tool, l: &Login, id_token: &str) -> (u16, String) {
    post_launch_to(&t.app, id_token, &l.state, Some(&l.cookie)).await
}

pub(crate) fn error_code(page: &str) -> &str {
    between(page, "data-error=\"", "\"").unwrap_or("(no error)")
}

/// Deep Linking as `sub`, choosing `choice` ("new" or a class id); the response's JWT.
pub(crate) async fn deep_link_as(t: &Tool, sub: &str, choice: &str) -> String {
    let l = login(t).await;
    let claims = t.platform.deep_linking_claims(&t.launch, &l.nonce, sub);
    let (status, picker) = post_launch(t, &l, &platform_key().sign(Some("p1"), &claims)).await;
    assert_eq!(status, 200, "{picker}");
    assert!(picker.contains("data-role=\"picker\""), "{picker}");
    let ticket = unescape(between(&picker, "name=\"ticket\" value=\"", "\"").unwrap());
    let r = t
        .app
        .client
        .post(format!("{}/lti/deep-link", t.app.address))
        .form(&[
            ("ticket", ticket.as_str()),
            ("choice", choice),
            ("title", "Biology helper"),
        ])
        .send()
        .await
        .unwrap();
    let status = r.status();
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let page = r.text().await.unwrap();
    assert_eq!(status, 200, "{page}");
    assert!(
        csp.contains(&format!("form-action 'self' {}", t.platform.url)),
        "{csp}"
    );
    let action = between(&page, "action=\"", "\"").unwrap();
    assert_eq!(action, format!("{}/deep-link-return", t.platform.url));
    assert!(page.contains("data-autopost"));
    unescape(between(&page, "name=\"JWT\" value=\"", "\"").unwrap())
}

/// Verifies classchat's Deep Linking response against its published keyset.
pub(crate) async fn verify_response(t: &Tool, jwt: &str) -> Value {
    let jwks: Value = t.app.get("/lti/jwks.json").await.json().await.unwrap();
    let header = jsonwebtoken::decode_header(jwt).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    let kid = header.kid.expect("kid");
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .expect("the signing key is published");
    assert_eq!(jwk["alg"], "RS256");
    assert_eq!(jwk["use"], "sig");
    assert!(jwk.get("d").is_none(), "no private part");
    let key =
        DecodingKey::from_rsa_components(jwk["n"].as_str().unwrap(), jwk["e"].as_str().unwrap())
            .unwrap();
    let mut v = Validation::new(Algorithm::RS256);
    v.set_audience(&[t.platform.issuer()]);
    v.set_issuer(&[CLIENT_ID]);
    jsonwebtoken::decode::<Value>(jwt, &key, &v).unwrap().claims
}

pub(crate) fn session_of(page: &str) -> classchat_shared::SessionResponse {
    serde_json::from_str(&unescape(between(page, "data-session=\"", "\"").unwrap())).unwrap()
}

pub(crate) async fn platform_id(t: &Tool) -> String {
    let list = t.app.state.store.lti_platforms().await.unwrap();
    list.into_iter()
        .find(|p| p.issuer == t.platform.issuer())
        .unwrap()
        .id
}

pub(crate) async fn counts(t: &Tool) -> (i64, i64, i64, i64) {
    t.app.state.store.lti_counts().await.unwrap()
}

#[tokio::test]
async fn deep_linking_binds_the_course_and_its_response_verifies_against_our_keyset() {
    let t = tool().await;
    let jwt = deep_link_as(&t, "teacher-1", "new").await;
    let c = verify_response(&t, &jwt).await;
    assert_eq!(c[format!("{LTI}message_type")], "LtiDeepLinkingResponse");
    assert_eq!(c[format!("{LTI}version")], "1.3.0");
    assert_eq!(c[format!("{LTI}deployment_id")], DEPLOYMENT);
    assert_eq!(
        c[format!("{DL}data")],
        "opaque-platform-data-123",
        "data echoed"
    );
    assert!(c["nonce"].as_str().is_some_and(|n| n.len() >= 32));
    let items = c[format!("{DL}content_items")].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["type"], "ltiResourceLink");
    assert_eq!(items[0]["url"], t.launch.as_str());
    assert_eq!(items[0]["title"], "Biology helper");
    let class_id = items[0]["custom"]["classchat_class"].as_str().unwrap();
    // The binding, not the custom parameter, decides.
    let bound = t
        .app
        .state
        .store
        .lti_binding(&platform_id(&t).await, DEPLOYMENT, CONTEXT)
        .await
        .unwrap();
    assert_eq!(bound.as_deref(), Some(class_id));
    let class = t
        .app
        .state
        .classes
        .current()
        .get(class_id)
        .cloned()
        .unwrap();
    assert_eq!(class.title, "Biology helper");
    // A second Deep Linking by the same instructor may pick that class again.
    let again = deep_link_as(&t, "teacher-1", class_id).await;
    let c = verify_response(&t, &again).await;
    assert_eq!(
        c[format!("{DL}content_items")][0]["custom"]["classchat_class"],
        class_id
    );
    // Another instructor may not pick a class that is not theirs or the course's... but the
    // course's current class is offered to them.
    let l = login(&t).await;
    let claims = t
        .platform
        .deep_linking_claims(&t.launch, &l.nonce, "teacher-2");
    let (_, picker) = post_launch(&t, &l, &platform_key().sign(Some("p1"), &claims)).await;
    assert!(picker.contains(&format!("value=\"{class_id}\"")));
    let ticket = unescape(between(&picker, "name=\"ticket\" value=\"", "\"").unwrap());
    let r = t
        .app
        .client
        .post(format!("{}/lti/deep-link", t.app.address))
        .form(&[("ticket", ticket.as_str()), ("choice", "class-1")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(&r.text().await.unwrap()), "bad_choice");
    // A forged ticket is refused.
    let r = t
        .app
        .client
        .post(format!("{}/lti/deep-link", t.app.address))
        .form(&[("ticket", "e30.e30.x"), ("choice", "new")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn a_learner_launch_signs_in_without_a_code_and_the_learner_chats() {
    let t = tool().await;
    let jwt = deep_link_as(&t, "teacher-1", "new").await;
    let class_id = verify_response(&t, &jwt).await[format!("{DL}content_items")][0]["custom"]
        ["classchat_class"]
        .as_str()
        .unwrap()
        .to_owned();

    // The platform's own form, as the browser would post it.
    let l = login(&t).await;
    let (status, page) = post_launch(&t, &l, &l.id_token).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("data-role=\"learner\""));
    assert_eq!(
        between(&page, "data-next=\"", "\""),
        Some("/embed?lang=zh-TW")
    );
    assert!(page.contains("<script src=\"/lti/launch.js\"></script>"));
    let session = session_of(&page);
    assert_eq!(session.class.id, class_id);
    let r = t
        .app
        .post_chat(&session.token, chat_body("hi", false))
        .await;
    assert_eq!(r.status(), 200);
    // The display name is the LMS's; the relay carried no identity.
    let rows = t.app.usage_rows(1).await;
    assert_eq!(rows[0].display_name.as_deref(), Some("Mei Lin"));
    let upstream = serde_json::to_string(&t.app.upstream.requests()).unwrap();
    for secret in [
        "learner-7",
        "Mei Lin",
        "mei.lin@school.example",
        "SIS-998877",
    ] {
        assert!(!upstream.contains(secret), "{secret} reached Open WebUI");
    }
    let (_, _, users, instructors) = counts(&t).await;
    assert_eq!((users, instructors), (2, 1), "teacher-1 and the learner");

    // What is stored: no sub, email, SIS id or id_token anywhere in the database file.
    if !on_postgres() {
        wait_for("the session row", || async {
            std::fs::read(&t.app.db_path)
                .is_ok_and(|b| String::from_utf8_lossy(&b).contains("Mei Lin"))
                || std::fs::read(t.app.db_path.with_extension("db-wal"))
                    .is_ok_and(|b| String::from_utf8_lossy(&b).contains("Mei Lin"))
        })
        .await;
        let mut bytes = std::fs::read(&t.app.db_path).unwrap();
        bytes.extend(std::fs::read(t.app.db_path.with_extension("db-wal")).unwrap_or_default());
        let db = String::from_utf8_lossy(&bytes);
        for never in [
            "learner-7",
            "teacher-1",
            "mei.lin@school.example",
            "SIS-998877",
            &l.id_token[..40],
        ] {
            assert!(!db.contains(never), "{never} stored");
        }
    }
    assert!(!t.app.logs().contains("learner-7"));

    // The script the page runs stores the session where the widget looks for it.
    let js = t.app.get("/lti/launch.js").await.text().await.unwrap();
    assert!(js.contains("\"classchat:v1:\" + location.origin + \":session\""));
}

#[tokio::test]
async fn an_instructor_launch_offers_the_class_on_the_dashboard_and_records_the_instructor() {
    let t = tool().await;
    let jwt = deep_link_as(&t, "teacher-1", "new").await;
    let class_id = verify_response(&t, &jwt).await[format!("{DL}content_items")][0]["custom"]
        ["classchat_class"]
        .as_str()
        .unwrap()
        .to_owned();
    let l = login(&t).await;
    let claims = t.platform.claims(
        &t.launch,
        &l.nonce,
        "teacher-3",
        &["http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"],
    );
    let (status, page) = post_launch(&t, &l, &platform_key().sign(Some("p1"), &claims)).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("data-role=\"instructor\""));
    assert!(page.contains(&format!("href=\"/admin/classes/{class_id}\"")));
    assert_eq!(
        counts(&t).await.3,
        2,
        "teacher-1 by Deep Linking, teacher-3 by launch"
    );
    // An institution role grants nothing: a learner page.
    let l = login(&t).await;
    let claims = t.platform.claims(
        &t.launch,
        &l.nonce,
        "staff-1",
        &["http://purl.imsglobal.org/vocab/lis/v2/institution/person#Instructor"],
    );
    let (_, page) = post_launch(&t, &l, &platform_key().sign(Some("p1"), &claims)).await;
    assert!(page.contains("data-role=\"learner\""), "{page}");
}

/// Makes a bad `id_token` out of a good learner launch's claims.
type MakeToken = Box<dyn Fn(Value) -> String>;

#[tokio::test]
async fn every_bad_launch_is_refused_with_its_own_error_and_nothing_is_stored() {
    let t = tool().await;
    deep_link_as(&t, "teacher-1", "new").await;
    let sign = |c: &Value| platform_key().sign(Some("p1"), c);
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    };
    let lti = |k: &str| format!("{LTI}{k}");
    let cases: Vec<(&str, u16, &str, MakeToken)> = vec![
        (
            "no kid",
            401,
            "no_kid",
            Box::new(|c| platform_key().sign(None, &c)),
        ),
        (
            "unknown kid",
            401,
            "unknown_kid",
            Box::new(|c| platform_key().sign(Some("nope"), &c)),
        ),
        (
            "signed by another key",
            401,
            "bad_signature",
            Box::new(|c| other_key().sign(Some("p1"), &c)),
        ),
        (
            "alg none",
            401,
            "wrong_algorithm",
            Box::new(|c| hand_made(&json!({"alg": "none", "typ": "JWT", "kid": "p1"}), &c, "")),
        ),
        (
            "HS256 with the public key",
            401,
            "wrong_algorithm",
            Box::new(|c| hs256_with_public_key(&c)),
        ),
        ("not a JWT", 400, "malformed", Box::new(|_| "a.b.c".into())),
        (
            "wrong iss",
            401,
            "wrong_issuer",
            Box::new(move |c| sign(&with(c, "iss", json!("https://evil.example")))),
        ),
        (
            "no iss",
            400,
            "missing_claim",
            Box::new(move |c| sign(&with(c, "iss", Value::Null))),
        ),
        (
            "wrong aud",
            401,
            "wrong_audience",
            Box::new(move |c| sign(&with(c, "aud", json!("someone-else")))),
        ),
        (
            "aud array without azp",
            401,
            "azp_missing",
            Box::new(move |c| sign(&with(c, "aud", json!([CLIENT_ID, "another-tool"])))),
        ),
        (
            "wrong azp",
            401,
            "wrong_azp",
            Box::new(move |c| sign(&with(c, "azp", json!("another-tool")))),
        ),
        (
            "expired",
            401,
            "expired",
            Box::new(move |c| sign(&with(c, "exp", json!(now() - 3600)))),
        ),
        (
            "no exp",
            400,
            "missing_claim",
            Box::new(move |c| sign(&with(c, "exp", Value::Null))),
        ),
        (
            "iat in the future",
            401,
            "issued_in_future",
            Box::new(move |c| sign(&with(c, "iat", json!(now() + 3600)))),
        ),
        (
            "iat too old",
            401,
            "issued_too_long_ago",
            Box::new(move |c| sign(&with(c, "iat", json!(now() - 7200)))),
        ),
        (
            "no iat",
            400,
            "missing_claim",
            Box::new(move |c| sign(&with(c, "iat", Value::Null))),
        ),
        (
            "wrong nonce",
            401,
            "nonce_mismatch",
            Box::new(move |c| sign(&with(c, "nonce", json!("x".repeat(43))))),
        ),
        (
            "no nonce",
            400,
            "missing_claim",
            Box::new(move |c| sign(&with(c, "nonce", Value::Null))),
        ),
        (
            "no message type",
            400,
            "missing_message_type",
            Box::new(move |c| sign(&with(c, &lti("message_type"), Value::Null))),
        ),
        (
            "unknown message type",
            400,
            "wrong_message_type",
            Box::new(move |c| {
                sign(&with(
                    c,
                    &lti("message_type"),
                    json!("LtiSubmissionReviewRequest"),
                ))
            }),
        ),
        (
            "wrong version",
            400,
            "wrong_version",
            Box::new(move |c| sign(&with(c, &lti("version"), json!("1.1.0")))),
        ),
        (
            "no version",
            400,
            "wrong_version",
            Box::new(move |c| sign(&with(c, &lti("version"), Value::Null))),
        ),
        (
            "no deployment id",
            400,
            "missing_claim",
            Box::new(move |c| sign(&with(c, &lti("deployment_id"), Value::Null))),
        ),
        (
            "deployment other than the login's",
            400,
            "deployment_mismatch",
            Box::new(move |c| sign(&with(c, &lti("deployment_id"), json!("deployment-2")))),
        ),
        (
            "no target_link_uri",
            400,
            "missing_claim",
            Box::new(move |c| sign(&with(c, &lti("target_link_uri"), Value::Null))),
        ),
        (
            "target_link_uri mismatch",
            400,
            "target_link_mismatch",
            Box::new(move |c| {
                sign(&with(
                    c,
                    &lti("target_link_uri"),
                    json!("https://evil.example/lti/launch"),
                ))
            }),
        ),
        (
            "no resource link",
            400,
            "missing_resource_link_id",
            Box::new(move |c| sign(&with(c, &lti("resource_link"), Value::Null))),
        ),
        (
            "resource link without id",
            400,
            "missing_resource_link_id",
            Box::new(move |c| sign(&with(c, &lti("resource_link"), json!({"title": "x"})))),
        ),
        (
            "no sub",
            400,
            "missing_sub",
            Box::new(move |c| sign(&with(c, "sub", Value::Null))),
        ),
        (
            "empty sub",
            400,
            "missing_sub",
            Box::new(move |c| sign(&with(c, "sub", json!("")))),
        ),
        (
            "no roles",
            400,
            "missing_roles",
            Box::new(move |c| sign(&with(c, &lti("roles"), Value::Null))),
        ),
        (
            "no context",
            400,
            "no_context",
            Box::new(move |c| sign(&with(c, &lti("context"), Value::Null))),
        ),
        (
            "unbound course",
            404,
            "not_bound",
            Box::new(move |c| sign(&with(c, &lti("context"), json!({"id": "course-999"})))),
        ),
        (
            "learner asking for deep linking",
            403,
            "not_instructor",
            Box::new(move |c| {
                let c = with(c, &lti("message_type"), json!("LtiDeepLinkingRequest"));
                let c = with(
                    c,
                    &format!("{DL}deep_linking_settings"),
                    json!({"deep_link_return_url": "https://lms.example/r"}),
                );
                sign(&c)
            }),
        ),
        (
            "deep linking without a return URL",
            400,
            "missing_claim",
            Box::new(move |c| {
                let c = with(c, &lti("message_type"), json!("LtiDeepLinkingRequest"));
                let c = with(c, &lti("roles"), json!([INSTRUCTOR]));
                sign(&with(c, &format!("{DL}deep_linking_settings"), json!({})))
            }),
        ),
    ];
    let before = counts(&t).await;
    for (name, status, code, make) in cases {
        let l = login(&t).await;
        let claims = t
            .platform
            .claims(&t.launch, &l.nonce, "learner-9", &[LEARNER]);
        let (got, page) = post_launch(&t, &l, &make(claims)).await;
        assert_eq!((got, error_code(&page)), (status, code), "{name}: {page}");
        assert!(page.contains("lang=\"zh-TW\""), "{name}: both languages");
        assert!(!page.contains("data-session"), "{name}");
        assert_eq!(counts(&t).await, before, "{name}: nothing stored");
    }
    // The unknown kid cost one refetch, not one per launch (throttled).
    assert_eq!(t.platform.fetches(), 2);
}

#[tokio::test]
async fn unregistered_deployments_are_refused_at_login_and_at_launch() {
    let t = tool().await;
    deep_link_as(&t, "teacher-1", "new").await;
    let r = t
        .app
        .client
        .get(format!("{}/lti/login", t.app.address))
        .query(&[
            ("iss", t.platform.issuer()),
            ("login_hint", LOGIN_HINT),
            ("target_link_uri", t.launch.as_str()),
            ("lti_deployment_id", "deployment-9"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        error_code(&r.text().await.unwrap()),
        "unregistered_deployment"
    );
    // A login without lti_deployment_id, then a token naming an unregistered deployment.
    let r = t
        .app
        .client
        .post(format!("{}/lti/login", t.app.address))
        .form(&[
            ("iss", t.platform.issuer()),
            ("login_hint", LOGIN_HINT),
            ("target_link_uri", t.launch.as_str()),
            ("lti_message_hint", MESSAGE_HINT),
        ])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection());
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let auth = t
        .app
        .client
        .get(r.headers()["location"].to_str().unwrap())
        .send()
        .await
        .unwrap();
    let html = auth.text().await.unwrap();
    let (state, nonce) = (
        between(&html, "name=state value=\"", "\"").unwrap(),
        between(&html, "data-nonce=\"", "\"").unwrap(),
    );
    let claims = with(
        t.platform.claims(&t.launch, nonce, "learner-1", &[LEARNER]),
        &format!("{LTI}deployment_id"),
        json!("deployment-9"),
    );
    let before = counts(&t).await;
    let (status, page) = post_launch_to(
        &t.app,
        &platform_key().sign(Some("p1"), &claims),
        state,
        Some(&cookie),
    )
    .await;
    assert_eq!(
        (status, error_code(&page)),
        (403, "unregistered_deployment")
    );
    assert_eq!(counts(&t).await, before);
}

#[tokio::test]
async fn bad_logins_are_refused_without_a_redirect() {
    let t = tool().await;
    for (query, status, code) in [
        (
            vec![
                ("iss", "https://unknown.example"),
                ("login_hint", "x"),
                ("target_link_uri", t.launch.as_str()),
            ],
            404,
            "unknown_platform",
        ),
        (
            vec![
                ("iss", t.platform.issuer()),
                ("login_hint", "x"),
                ("target_link_uri", "https://evil.example/lti/launch"),
            ],
            400,
            "target_not_ours",
        ),
        (
            vec![
                ("iss", t.platform.issuer()),
                ("login_hint", "x"),
                ("target_link_uri", &format!("{}x", t.launch)),
            ],
            400,
            "target_not_ours",
        ),
        (
            vec![
                ("iss", t.platform.issuer()),
                ("target_link_uri", t.launch.as_str()),
            ],
            400,
            "missing_login_param",
        ),
        (
            vec![
                ("iss", t.platform.issuer()),
                ("login_hint", "x"),
                ("target_link_uri", t.launch.as_str()),
                ("client_id", "other"),
            ],
            404,
            "unknown_platform",
        ),
    ] {
        let r = t
            .app
            .client
            .get(format!("{}/lti/login", t.app.address))
            .query(&query)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{query:?}");
        assert!(r.headers().get("location").is_none());
        assert_eq!(error_code(&r.text().await.unwrap()), code, "{query:?}");
    }
}

#[tokio::test]
async fn a_replayed_launch_a_state_mismatch_and_a_blocked_cookie_are_refused() {
    let t = tool().await;
    deep_link_as(&t, "teacher-1", "new").await;
    let l = login(&t).await;
    let (status, _) = post_launch(&t, &l, &l.id_token).await;
    assert_eq!(status, 200);
    let before = counts(&t).await;
    // The same form again: the state is spent (on every replica: it was deleted).
    let (status, page) = post_launch(&t, &l, &l.id_token).await;
    assert_eq!((status, error_code(&page)), (401, "state_unknown"));
    // The same id_token under a fresh login: its nonce is not this login's.
    let fresh = login(&t).await;
    let (status, page) = post_launch(&t, &fresh, &l.id_token).await;
    assert_eq!((status, error_code(&page)), (401, "nonce_mismatch"));
    // A state that is not this browser's.
    let other = login(&t).await;
    let (status, page) =
        post_launch_to(&t.app, &other.id_token, &other.state, Some(&l.cookie)).await;
    assert_eq!((status, error_code(&page)), (401, "state_mismatch"));
    // No cookie at all: the browser blocked it inside the iframe.
    let blocked = login(&t).await;
    let (status, page) = post_launch_to(&t.app, &blocked.id_token, &blocked.state, None).await;
    assert_eq!((status, error_code(&page)), (401, "cookie_blocked"));
    assert!(
        page.contains("new window") && page.contains("新視窗"),
        "{page}"
    );
    // That login still works in a browser that kept the cookie.
    let (status, _) = post_launch(&t, &blocked, &blocked.id_token).await;
    assert_eq!(status, 200);
    assert_eq!(counts(&t).await, before, "the learner was already known");
}

#[tokio::test]
async fn a_platform_key_rotation_is_followed_after_one_refetch() {
    let t = tool().await;
    deep_link_as(&t, "teacher-1", "new").await;
    assert_eq!(t.platform.fetches(), 1);
    t.platform
        .publish(vec![platform_key().jwk("p1"), other_key().jwk("p2")]);
    let l = login(&t).await;
    let claims = t
        .platform
        .claims(&t.launch, &l.nonce, "learner-2", &[LEARNER]);
    let (status, page) = post_launch(&t, &l, &other_key().sign(Some("p2"), &claims)).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(t.platform.fetches(), 2, "one refetch for the new kid");
    // The old key, withdrawn by the platform, stops working once the cache is refreshed:
    // after the rotation, p1 is still published here, so it keeps working.
    let l = login(&t).await;
    let (status, _) = post_launch(&t, &l, &l.id_token).await;
    assert_eq!(status, 200);
    assert_eq!(t.platform.fetches(), 2);
}

#[tokio::test]
async fn our_key_rotation_keeps_the_previous_key_published() {
    let t = tool().await;
    let first = deep_link_as(&t, "teacher-1", "new").await;
    let old_kid = jsonwebtoken::decode_header(&first).unwrap().kid.unwrap();
    let r = t
        .app
        .client
        .post(format!(
            "{}/api/v1/admin/lti/tool-key/rotate",
            t.app.address
        ))
        .bearer_auth(&t.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let new_kid = r.json::<Value>().await.unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(new_kid, old_kid);
    let jwks: Value = t.app.get("/lti/jwks.json").await.json().await.unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(
        kids,
        [new_kid.as_str(), old_kid.as_str()],
        "current, then previous"
    );
    let second = deep_link_as(&t, "teacher-1", "new").await;
    assert_eq!(
        jsonwebtoken::decode_header(&second).unwrap().kid.unwrap(),
        new_kid
    );
    verify_response(&t, &second).await;
    verify_response(&t, &first).await;
    // The private key is sealed at rest.
    let rows = t.app.state.store.lti_tool_keys().await.unwrap();
    assert_eq!(rows.len(), 2);
    // An unsealed PKCS#8 RSA key holds the rsaEncryption OID (1.2.840.113549.1.1.1); 11
    // bytes that random ciphertext does not hold by chance (a 3-letter base64 "MII" did,
    // about once a hundred runs).
    const RSA_ENCRYPTION_OID: [u8; 11] = [
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
    ];
    use base64::Engine as _;
    for r in &rows {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&r.sealed)
            .expect("the sealed key is base64url");
        assert!(
            !bytes.windows(11).any(|w| w == RSA_ENCRYPTION_OID),
            "the private key is stored unsealed"
        );
    }
}

#[tokio::test]
async fn registration_is_for_the_administrator_and_checks_its_values() {
    let t = tool().await;
    assert_eq!(register(&t.app, &t.admin, &t.platform).await.status(), 409);
    let r = t
        .app
        .client
        .get(format!("{}/api/v1/admin/lti/platforms", t.app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let mut body = t.platform.registration();
    body["client_id"] = json!("other");
    body["jwks_url"] = json!("http://lms.example/jwks");
    let r = t
        .app
        .client
        .post(format!("{}/api/v1/admin/lti/platforms", t.app.address))
        .bearer_auth(&t.admin)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "http only on loopback");
    let list: Value = t
        .app
        .client
        .get(format!("{}/api/v1/admin/lti/platforms", t.app.address))
        .bearer_auth(&t.admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list[0]["deployments"], json!([DEPLOYMENT]));
    let values: Value = t
        .app
        .client
        .get(format!("{}/api/v1/admin/lti/tool", t.app.address))
        .bearer_auth(&t.admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(values["launch_url"], t.launch.as_str());
    assert_eq!(
        values["jwks_url"],
        format!("{}/lti/jwks.json", t.app.state.public_url)
    );
    let doc: Value = t
        .app
        .get("/api/v1/openapi.json")
        .await
        .json()
        .await
        .unwrap();
    assert!(doc["paths"]["/api/v1/admin/lti/platforms"]["post"].is_object());
}

#[tokio::test]
async fn a_launch_started_on_one_replica_finishes_on_the_other() {
    let url = crate::pg_cluster::shared().create_database().await;
    let opts = || {
        Opts::default().with(database(&url)).with(|s| {
            s.public_url = Some("https://classchat.example.edu".into());
        })
    };
    let t = tool_with(opts()).await;
    let b = spawn_app_with(opts()).await;
    let jwt = deep_link_as(&t, "teacher-1", "new").await;
    let class_id = verify_response(&t, &jwt).await[format!("{DL}content_items")][0]["custom"]
        ["classchat_class"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_for("the new class on replica B", || async {
        b.state.classes.current().get(&class_id).is_some()
    })
    .await;
    let l = login(&t).await;
    let (status, page) = post_launch_to(&b, &l.id_token, &l.state, Some(&l.cookie)).await;
    assert_eq!(status, 200, "{page}");
    let session = session_of(&page);
    wait_for("the class on replica B", || async {
        b.post_chat(&session.token, chat_body("hi", false))
            .await
            .status()
            == 200
    })
    .await;
    // And the state is spent for replica A too.
    let (status, page) = post_launch(&t, &l, &l.id_token).await;
    assert_eq!((status, error_code(&page)), (401, "state_unknown"));
}

#[tokio::test]
async fn the_dashboard_lists_the_values_to_enter_in_the_lms() {
    let t =
        tool_with(Opts::default().with(|s| s.admin = admin_password(crate::admin::PASSWORD))).await;
    assert!(
        t.app.get("/admin/lti").await.status().is_redirection(),
        "signed in only"
    );
    let teacher = crate::admin::sign_in_teacher(&t.app).await;
    let page = t.app.page_as("/admin/lti", &teacher.cookie).await;
    for value in [
        t.launch.clone(),
        format!("{}/lti/login", t.app.state.public_url),
        format!("{}/lti/jwks.json", t.app.state.public_url),
        t.platform.issuer().to_owned(),
        DEPLOYMENT.to_owned(),
    ] {
        assert!(page.contains(&value), "{value} missing: {page}");
    }
    assert!(page.contains("lang=\"zh-TW\""));
}

/// A learner known by the LMS has one allowance across launches (each a new session, as
/// on another device): it is keyed by the LMS identity's digest, not by the session.
#[tokio::test]
async fn a_learners_allowance_follows_them_across_launches() {
    let t = tool().await;
    let jwt = deep_link_as(&t, "teacher-1", "new").await;
    let class_id = verify_response(&t, &jwt).await[format!("{DL}content_items")][0]["custom"]
        ["classchat_class"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, v) = crate::admin_api::api(
        &t.app,
        reqwest::Method::PUT,
        &format!("/api/v1/admin/classes/{class_id}/allowance"),
        &t.admin,
        Some(json!({"per_day": 3, "per_week": 0})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let launch = || async {
        let l = login(&t).await;
        let (status, page) = post_launch(&t, &l, &l.id_token).await;
        assert_eq!(status, 200, "{page}");
        session_of(&page).token
    };
    let first = launch().await;
    for _ in 0..2 {
        let r = t.app.post_chat(&first, chat_body("hi", false)).await;
        assert_eq!(r.status(), 200);
    }
    let second = launch().await;
    assert_ne!(first, second, "a new session");
    let r = t.app.post_chat(&second, chat_body("hi", false)).await;
    assert_eq!(r.status(), 200, "the third of three");
    let r = t.app.post_chat(&second, chat_body("hi", false)).await;
    assert_eq!(r.status(), 429, "a new launch starts no fresh allowance");
    let r = t.app.post_chat(&first, chat_body("hi", false)).await;
    assert_eq!(r.status(), 429);
}
