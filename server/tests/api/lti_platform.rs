//! A stand-in LMS for the LTI tests, on loopback: an RSA key and its keyset served over
//! HTTP (counting fetches, swappable for a rotation), an OIDC authentication endpoint that
//! checks every parameter of the tool's request (Security Framework §5.1.1.2) and answers
//! with the auto-post form, and an `id_token` builder with overrides.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use rsa::pkcs1::{EncodeRsaPrivateKey, EncodeRsaPublicKey};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::{Value, json};

pub(crate) const CLIENT_ID: &str = "classchat-client-1";
pub(crate) const DEPLOYMENT: &str = "deployment-1";
pub(crate) const CONTEXT: &str = "course-101";
pub(crate) const LOGIN_HINT: &str = "hint-42";
pub(crate) const MESSAGE_HINT: &str = "message-hint-7";
pub(crate) const LTI: &str = "https://purl.imsglobal.org/spec/lti/claim/";
pub(crate) const DL: &str = "https://purl.imsglobal.org/spec/lti-dl/claim/";
pub(crate) const LEARNER: &str = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner";
pub(crate) const INSTRUCTOR: &str = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor";

/// An RSA key pair in the forms the tests need.
pub(crate) struct TestKey {
    pub(crate) private_der: Vec<u8>,
    /// PKCS#1 DER public key: the "secret" of the HS256 confusion attack.
    pub(crate) public_der: Vec<u8>,
    n: String,
    e: String,
}

impl TestKey {
    fn generate() -> Self {
        let private = RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("keygen");
        let public = RsaPublicKey::from(&private);
        Self {
            private_der: private.to_pkcs1_der().expect("der").as_bytes().to_vec(),
            public_der: public.to_pkcs1_der().expect("der").as_bytes().to_vec(),
            n: URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
            e: URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
        }
    }

    pub(crate) fn jwk(&self, kid: &str) -> Value {
        json!({ "kid": kid, "kty": "RSA", "alg": "RS256", "use": "sig", "e": self.e, "n": self.n })
    }

    pub(crate) fn sign(&self, kid: Option<&str>, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = kid.map(str::to_owned);
        encode(
            &header,
            claims,
            &EncodingKey::from_rsa_der(&self.private_der),
        )
        .expect("sign")
    }
}

/// The platform's key (generated once per test binary: keygen is the slow part).
pub(crate) fn platform_key() -> &'static TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(TestKey::generate)
}

/// Another key: the rotated-in key, or a forger's.
pub(crate) fn other_key() -> &'static TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(TestKey::generate)
}

/// A token with a hand-made header (algorithms jsonwebtoken will not sign with).
pub(crate) fn hand_made(header: &Value, claims: &Value, signature: &str) -> String {
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("json"));
    format!("{}.{}.{signature}", part(header), part(claims))
}

/// HS256 keyed with the platform's public key: the algorithm confusion attack.
pub(crate) fn hs256_with_public_key(claims: &Value) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("p1".into());
    encode(
        &header,
        claims,
        &EncodingKey::from_secret(&platform_key().public_der),
    )
    .expect("sign")
}

#[derive(Clone, Default)]
struct Shared {
    keys: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<AtomicUsize>,
    /// The tool's launch URL: the only acceptable `redirect_uri`.
    redirect_uri: Arc<Mutex<String>>,
    issuer: Arc<Mutex<String>>,
    /// Dynamic Registration: the tool configurations posted, and the issuer the OpenID
    /// configuration names (the platform's own unless a test changes it).
    registrations: Arc<Mutex<Vec<Value>>>,
    config_issuer: Arc<Mutex<Option<String>>>,
}

/// The registration token the emulator's registration endpoint insists on.
pub(crate) const REGISTRATION_TOKEN: &str = "registration-token-9";

/// The platform's OpenID configuration (Dynamic Registration §3.4).
async fn openid_configuration(State(s): State<Shared>) -> Response {
    let url = s.issuer.lock().unwrap().clone();
    let issuer = s
        .config_issuer
        .lock()
        .unwrap()
        .clone()
        .unwrap_or(url.clone());
    axum::Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{url}/auth"),
        "registration_endpoint": format!("{url}/register"),
        "jwks_uri": format!("{url}/jwks"),
        "token_endpoint": format!("{url}/token"),
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "scopes_supported": ["openid"],
        "response_types_supported": ["id_token"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "claims_supported": ["iss", "sub", "name", "given_name", "email"],
        "https://purl.imsglobal.org/spec/lti-platform-configuration": {
            "product_family_code": "emulator", "version": "1.0",
            "messages_supported": [{ "type": "LtiResourceLinkRequest" }, { "type": "LtiDeepLinkingRequest" }],
        },
    }))
    .into_response()
}

/// The registration endpoint: needs the registration token; records the tool's
/// configuration and answers with the client id and deployment id.
async fn registration(
    State(s): State<Shared>,
    headers: axum::http::HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    if auth != Some(&format!("Bearer {REGISTRATION_TOKEN}")) {
        return (StatusCode::UNAUTHORIZED, "bad registration token").into_response();
    }
    s.registrations.lock().unwrap().push(body.clone());
    let mut answer = body;
    answer["client_id"] = json!(CLIENT_ID);
    answer["https://purl.imsglobal.org/spec/lti-tool-configuration"]["deployment_id"] =
        json!(DEPLOYMENT);
    (StatusCode::CREATED, axum::Json(answer)).into_response()
}

/// The emulated LMS.
pub(crate) struct Platform {
    /// Also its issuer.
    pub(crate) url: String,
    shared: Shared,
}

async fn serve_keys(State(s): State<Shared>) -> Response {
    s.fetches.fetch_add(1, Ordering::SeqCst);
    let keys = s.keys.lock().unwrap().clone();
    axum::Json(json!({ "keys": keys })).into_response()
}

/// The OIDC authentication endpoint: every parameter of the tool's request is checked; a
/// wrong one is a 400 naming it. Answers with the auto-post form to the redirect URI, an
/// `id_token` made for the nonce (tests that need another token build their own with
/// `data-nonce`).
async fn authorize(State(s): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    let redirect = s.redirect_uri.lock().unwrap().clone();
    let expect = [
        ("scope", "openid"),
        ("response_type", "id_token"),
        ("response_mode", "form_post"),
        ("prompt", "none"),
        ("client_id", CLIENT_ID),
        ("redirect_uri", redirect.as_str()),
        ("login_hint", LOGIN_HINT),
        ("lti_message_hint", MESSAGE_HINT),
    ];
    for (k, v) in expect {
        if q.get(k).map(String::as_str) != Some(v) {
            return (StatusCode::BAD_REQUEST, format!("bad {k}: {:?}", q.get(k))).into_response();
        }
    }
    for k in ["state", "nonce"] {
        match q.get(k) {
            Some(v) if v.len() >= 32 => {}
            _ => return (StatusCode::BAD_REQUEST, format!("bad {k}")).into_response(),
        }
    }
    let allowed: Vec<&str> = expect
        .iter()
        .map(|(k, _)| *k)
        .chain(["state", "nonce"])
        .collect();
    if let Some(extra) = q.keys().find(|k| !allowed.contains(&k.as_str())) {
        return (StatusCode::BAD_REQUEST, format!("unexpected {extra}")).into_response();
    }
    let issuer = s.issuer.lock().unwrap().clone();
    let claims = resource_link_claims(&issuer, &redirect, &q["nonce"], "learner-7", &[LEARNER]);
    let token = platform_key().sign(Some("p1"), &claims);
    Html(format!(
        "<form method=post action=\"{redirect}\" data-nonce=\"{}\"><input type=hidden name=id_token value=\"{token}\">\
         <input type=hidden name=state value=\"{}\"></form>",
        q["nonce"], q["state"]
    ))
    .into_response()
}

impl Platform {
    pub(crate) async fn spawn() -> Self {
        let shared = Shared::default();
        *shared.keys.lock().unwrap() = vec![platform_key().jwk("p1")];
        let app = axum::Router::new()
            .route("/jwks", axum::routing::get(serve_keys))
            .route("/auth", axum::routing::get(authorize))
            .route(
                "/.well-known/openid-configuration",
                axum::routing::get(openid_configuration),
            )
            .route("/register", axum::routing::post(registration))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        *shared.issuer.lock().unwrap() = url.clone();
        Self { url, shared }
    }

    pub(crate) fn issuer(&self) -> &str {
        &self.url
    }

    /// The tool's launch URL, which the authentication endpoint insists on.
    pub(crate) fn expect_redirect(&self, launch_url: &str) {
        *self.shared.redirect_uri.lock().unwrap() = launch_url.to_owned();
    }

    pub(crate) fn publish(&self, keys: Vec<Value>) {
        *self.shared.keys.lock().unwrap() = keys;
    }

    /// The tool configurations Dynamic Registration posted.
    pub(crate) fn registrations(&self) -> Vec<Value> {
        self.shared.registrations.lock().unwrap().clone()
    }

    /// Makes the OpenID configuration name another issuer.
    pub(crate) fn claim_issuer(&self, issuer: &str) {
        *self.shared.config_issuer.lock().unwrap() = Some(issuer.to_owned());
    }

    pub(crate) fn fetches(&self) -> usize {
        self.shared.fetches.load(Ordering::SeqCst)
    }

    /// The registration body of the admin API.
    pub(crate) fn registration(&self) -> Value {
        json!({
            "issuer": self.url, "client_id": CLIENT_ID,
            "auth_url": format!("{}/auth", self.url), "jwks_url": format!("{}/jwks", self.url),
            "token_url": format!("{}/token", self.url), "deployments": [DEPLOYMENT],
        })
    }

    pub(crate) fn claims(&self, launch_url: &str, nonce: &str, sub: &str, roles: &[&str]) -> Value {
        resource_link_claims(&self.url, launch_url, nonce, sub, roles)
    }

    pub(crate) fn deep_linking_claims(&self, launch_url: &str, nonce: &str, sub: &str) -> Value {
        let mut c = resource_link_claims(&self.url, launch_url, nonce, sub, &[INSTRUCTOR]);
        let o = c.as_object_mut().unwrap();
        o.remove(&format!("{LTI}resource_link"));
        o.insert(format!("{LTI}message_type"), json!("LtiDeepLinkingRequest"));
        o.insert(
            format!("{DL}deep_linking_settings"),
            json!({
                "deep_link_return_url": format!("{}/deep-link-return", self.url),
                "accept_types": ["ltiResourceLink"],
                "accept_presentation_document_targets": ["iframe", "window"],
                "data": "opaque-platform-data-123",
            }),
        );
        c
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A good `LtiResourceLinkRequest`'s claims (LTI Core §5.3, §5.4), with the personal data
/// a platform may send (name, email, SIS ids) that classchat must not keep.
pub(crate) fn resource_link_claims(
    issuer: &str,
    launch_url: &str,
    nonce: &str,
    sub: &str,
    roles: &[&str],
) -> Value {
    let now = now();
    json!({
        "iss": issuer, "aud": CLIENT_ID, "sub": sub, "exp": now + 300, "iat": now, "nonce": nonce,
        "name": "Mei Lin", "given_name": "Mei", "family_name": "Lin",
        "email": "mei.lin@school.example",
        format!("{LTI}message_type"): "LtiResourceLinkRequest",
        format!("{LTI}version"): "1.3.0",
        format!("{LTI}deployment_id"): DEPLOYMENT,
        format!("{LTI}target_link_uri"): launch_url,
        format!("{LTI}resource_link"): { "id": "link-1", "title": "Ask the class assistant" },
        format!("{LTI}roles"): roles,
        format!("{LTI}context"): { "id": CONTEXT, "label": "BIO101", "title": "Biology 101",
            "type": ["http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"] },
        format!("{LTI}launch_presentation"): { "document_target": "iframe", "locale": "zh-TW" },
        format!("{LTI}lis"): { "person_sourcedid": "SIS-998877", "course_section_sourcedid": "SEC-1" },
        format!("{LTI}custom"): { "classchat_class": "class-1" },
        format!("{LTI}tool_platform"): { "guid": "lms-guid", "product_family_code": "moodle" },
    })
}

/// `claims` with `key` set (a `null` value removes it).
pub(crate) fn with(mut claims: Value, key: &str, value: Value) -> Value {
    let o = claims.as_object_mut().unwrap();
    if value.is_null() {
        o.remove(key);
    } else {
        o.insert(key.to_owned(), value);
    }
    claims
}
