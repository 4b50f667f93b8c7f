//! LTI 1.3 tool: an LMS (Moodle, Canvas, Open edX) launches classchat inside a course and
//! the student lands on `/embed` already signed in, no code asked; an instructor adds
//! classchat with Deep Linking 2.0 and picks or creates the class the course uses.
//!
//! - `GET|POST /lti/login`: third-party initiated login (Security Framework §5.1.1). The
//!   platform is looked up by (`iss`, `client_id`); `state` and `nonce` are random, stored
//!   in the database (any replica finishes the launch; single use; ten minutes), and the
//!   state also goes to the browser in a `SameSite=None; Secure; Partitioned` cookie.
//! - `POST /lti/launch`: the `id_token` form post, checked by [`verify`]. The class is the
//!   one bound to (platform, deployment, context id), never a custom parameter.
//! - `POST /lti/deep-link`: the instructor's choice; answers the platform with an RS256
//!   `LtiDeepLinkingResponse` signed with classchat's key ([`tool_key`]).
//! - `GET /lti/jwks.json`: classchat's public keys, current and previous.
//!
//! Privacy: the LMS user is stored only as an HMAC of (issuer, sub) under a key derived
//! from AUTH_SECRET; the name only as the widget session's display name; never the
//! `id_token`, email or SIS ids. The relay to Open WebUI carries no identity.

pub mod error;
pub mod registration;
pub mod tool_key;
pub mod verify;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::Mac;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::basics::{HmacSha256, lock, now_ms, now_secs};
use crate::config::Settings;
use crate::embed::escape_html;
use crate::jwks::KeySetCache;
use crate::state::AppState;
use crate::store::lti::{PlatformRecord, StateRow};
use crate::store::teachers::{Audit, ClassRecord};
use error::LaunchError;
use tool_key::SealKeys;
use verify::{DL, Expected, LTI, Launch, Message};

/// How long a login waits for its launch, and a class choice form for its answer.
pub const STATE_TTL_SECS: i64 = 600;
/// The state cookie's name.
pub const STATE_COOKIE: &str = "classchat_lti_state";
/// `aud` of the class choice form's signed ticket.
const CHOICE_AUDIENCE: &str = "classchat-lti-choice";
/// Longest class title an instructor may type.
const MAX_TITLE_CHARS: usize = 100;

/// LTI's keys and the platforms' key sets.
pub struct Lti {
    http: reqwest::Client,
    /// Platform id → its keyset, created on the first launch through it.
    keysets: Mutex<HashMap<String, Arc<KeySetCache>>>,
    /// HMAC key for LMS user ids.
    user_key: [u8; 32],
    /// HS256 key of the class choice form's ticket.
    choice_key: [u8; 32],
    pub seal: SealKeys,
}

impl std::fmt::Debug for Lti {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Lti(..)")
    }
}

/// A 32-byte key for one purpose, derived from a secret: HMAC-SHA256(secret, label).
fn derive(secret: &str, label: &str) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(label.as_bytes());
    mac.finalize().into_bytes().into()
}

impl Lti {
    pub fn new(settings: &Settings) -> anyhow::Result<Self> {
        let secret = settings.auth_secret.expose_secret();
        // HTTPS_PROXY and NO_PROXY as for Open WebUI, from the settings only.
        let http = settings
            .proxy
            .apply(reqwest::Client::builder())?
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(5))
            .build()?;
        Ok(Self {
            http,
            keysets: Mutex::default(),
            user_key: derive(secret, "classchat lti user v1"),
            choice_key: derive(secret, "classchat lti choice v1"),
            seal: SealKeys::new(
                tool_key::SEAL_PURPOSE,
                &settings.auth_secret,
                settings.auth_secret_previous.as_ref(),
            ),
        })
    }

    /// The platform's key set (one cache per platform, shared by its launches).
    fn keyset(&self, p: &PlatformRecord) -> Arc<KeySetCache> {
        let mut sets = lock(&self.keysets);
        if let Some(k) = sets.get(&p.id).filter(|k| k.url() == p.jwks_url) {
            return k.clone();
        }
        let k = Arc::new(KeySetCache::new(
            p.jwks_url.clone(),
            format!("LTI platform {}", p.issuer),
            self.http.clone(),
        ));
        sets.insert(p.id.clone(), k.clone());
        k
    }

    /// How an LMS user is stored: hex HMAC-SHA256 of issuer and sub.
    pub fn user_digest(&self, issuer: &str, sub: &str) -> String {
        let mut mac = HmacSha256::new_from_slice(&self.user_key).expect("HMAC takes any key");
        mac.update(issuer.as_bytes());
        mac.update(b"\n");
        mac.update(sub.as_bytes());
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/lti/login", get(login_get).post(login_post))
        .route("/lti/launch", post(launch))
        .route("/lti/deep-link", post(deep_link))
        .route("/lti/jwks.json", get(jwks))
        .route("/lti/launch.js", get(script))
        .route("/lti/register", get(registration::register))
        .route("/lti/dashboard", post(dashboard))
}

/// The URLs a platform is given.
pub fn launch_url(public_url: &str) -> String {
    format!("{}/lti/launch", public_url.trim_end_matches('/'))
}

pub fn login_url(public_url: &str) -> String {
    format!("{}/lti/login", public_url.trim_end_matches('/'))
}

pub fn jwks_url(public_url: &str) -> String {
    format!("{}/lti/jwks.json", public_url.trim_end_matches('/'))
}

fn random() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

fn origin_of(url: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    Some(u.origin().ascii_serialization()).filter(|o| o != "null")
}

// ---- pages ---------------------------------------------------------------------------

/// An LTI page: framed by the LMS (its origin and ALLOWED_ORIGINS), script only from here.
fn page(
    settings: &Settings,
    status: StatusCode,
    platform_origin: Option<&str>,
    form_to: Option<&str>,
    body: String,
) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    let mut ancestors = crate::embed::frame_ancestors(settings);
    if ancestors != "*"
        && let Some(o) = platform_origin
    {
        ancestors.push(' ');
        ancestors.push_str(o);
    }
    let form_action = match form_to {
        Some(o) => format!("'self' {o}"),
        None => "'self'".into(),
    };
    let csp = format!(
        "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; base-uri 'none'; \
         form-action {form_action}; frame-ancestors {ancestors}"
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert("content-security-policy", v);
    }
    r
}

const STYLE: &str = "<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}\
    .zh{color:#444}button,input[type=submit]{font:inherit;padding:.4rem 1rem}label{display:block;margin:.3rem 0}</style>";

fn shell(title: &str, attrs: &str, inner: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title>{STYLE}</head><body{attrs}>{inner}\
         <script src=\"/lti/launch.js\"></script></body></html>\n",
        escape_html(title)
    )
}

/// The error page: both languages, the failed check as `data-error`; the cause is logged.
fn refuse(state: &AppState, e: LaunchError, platform_origin: Option<&str>) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    if status.is_server_error() {
        tracing::warn!(target: "classchat::lti", code = e.code(), "LTI request failed: {e}");
    } else {
        tracing::info!(target: "classchat::lti", code = e.code(), "LTI request refused: {e}");
    }
    let [(en_t, en), (zh_t, zh)] = e.texts();
    let inner = format!(
        "<main data-error=\"{code}\"><h1>{}</h1><p>{}</p><h1 lang=\"zh-TW\" class=\"zh\">{}</h1>\
         <p lang=\"zh-TW\" class=\"zh\">{}</p></main>",
        escape_html(en_t),
        escape_html(&en),
        escape_html(zh_t),
        escape_html(&zh),
        code = e.code(),
    );
    let mut r = page(
        &state.settings,
        status,
        platform_origin,
        None,
        shell(en_t, "", &inner),
    );
    r.extensions_mut().insert(crate::error::FailureReport {
        code: "lti",
        detail: None,
    });
    r
}

/// `/lti/launch.js`: stores a launch's widget session where the widget looks for it and
/// goes on to `/embed`; submits auto-post forms (the Deep Linking response).
async fn script() -> Response {
    const JS: &str = r#"/* classchat LTI pages: no inline script under their CSP. */
const d = document.body.dataset;
/* LTI Platform Storage (1EdTech lti-pm-s): post to the frame the platform named, answered
   only from the platform's origin, matched by message_id. */
function frame() {
  const t = d.ltiStorage;
  try { return t === "_parent" ? window.parent : window.parent.frames[t] || window.parent; }
  catch (e) { return window.parent; }
}
function ask(subject, key, value) {
  return new Promise((resolve) => {
    const id = (crypto.randomUUID && crypto.randomUUID()) || String(Math.random()).slice(2);
    const done = (v) => { window.removeEventListener("message", on); clearTimeout(timer); resolve(v); };
    const on = (e) => {
      const m = e.data;
      if (e.origin !== d.ltiOrigin || !m || m.message_id !== id || m.subject !== subject + ".response") return;
      done(m.error ? null : m);
    };
    const timer = setTimeout(() => done(null), 2000);
    window.addEventListener("message", on);
    const msg = { subject: subject, message_id: id, key: key };
    if (value !== undefined) msg.value = value;
    try { frame().postMessage(msg, d.ltiOrigin); } catch (e) { done(null); }
  });
}
function proceed() {
  if (d.session) {
    try {
      localStorage.setItem("classchat:v1:" + location.origin + ":session", d.session);
      if (d.next) location.replace(d.next);
    } catch (e) {
      const b = document.getElementById("cc-blocked");
      if (b) b.hidden = false;
    }
  }
  for (const f of document.querySelectorAll("form[data-autopost]")) f.submit();
}
async function main() {
  if (d.ltiClose !== undefined) {
    (window.opener || window.parent).postMessage({ subject: "org.imsglobal.lti.close" }, "*");
    return;
  }
  if (d.ltiStorage && d.ltiPutState) {
    /* The login: keep state and nonce with the platform, then on to its sign-in. */
    await ask("lti.put_data", "state-" + d.ltiPutState, d.ltiPutState);
    await ask("lti.put_data", "nonce-" + d.ltiPutNonce, d.ltiPutNonce);
    location.replace(d.next);
    return;
  }
  if (d.ltiStorage && d.ltiGetState) {
    /* The launch: the state and nonce must come back from the platform's storage. */
    const s = await ask("lti.get_data", "state-" + d.ltiGetState);
    const n = s && await ask("lti.get_data", "nonce-" + d.ltiGetNonce);
    document.getElementById("cc-checking").hidden = true;
    if (s && s.value === d.ltiGetState && n && n.value === d.ltiGetNonce) {
      document.getElementById("cc-checked").hidden = false;
      proceed();
    } else {
      document.getElementById("cc-unchecked").hidden = false;
    }
    return;
  }
  proceed();
}
main();
"#;
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        JS,
    )
        .into_response()
}

// ---- login ---------------------------------------------------------------------------

async fn login_get(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    login(state, q).await
}

async fn login_post(
    State(state): State<AppState>,
    Form(q): Form<HashMap<String, String>>,
) -> Response {
    login(state, q).await
}

/// Finds the registration a login names.
async fn platform_for(
    state: &AppState,
    iss: &str,
    client_id: Option<&str>,
) -> Result<PlatformRecord, LaunchError> {
    let all = state
        .store
        .lti_platforms()
        .await
        .map_err(|e| LaunchError::Internal(e.to_string()))?;
    let mut found: Vec<PlatformRecord> = all
        .into_iter()
        .filter(|p| p.issuer == iss && client_id.is_none_or(|c| c == p.client_id))
        .collect();
    match found.len() {
        0 => Err(LaunchError::UnknownPlatform),
        1 => Ok(found.remove(0)),
        _ => Err(LaunchError::AmbiguousClient),
    }
}

async fn login(state: AppState, q: HashMap<String, String>) -> Response {
    match start_login(&state, &q).await {
        Ok(r) => r,
        Err(e) => refuse(&state, e, None),
    }
}

async fn start_login(
    state: &AppState,
    q: &HashMap<String, String>,
) -> Result<Response, LaunchError> {
    let param = |name: &'static str| {
        q.get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .ok_or(LaunchError::MissingLoginParam(name))
    };
    let iss = param("iss")?;
    let login_hint = param("login_hint")?;
    let target = param("target_link_uri")?;
    let client_id = q
        .get("client_id")
        .map(String::as_str)
        .filter(|c| !c.is_empty());
    let platform = platform_for(state, iss, client_id).await?;
    // Only our own launch URL: never a redirect to somewhere else.
    let launch = launch_url(&state.public_url);
    let ours = target
        .strip_prefix(&launch)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('?'));
    if !ours {
        return Err(LaunchError::TargetNotOurs);
    }
    let login_deployment = q
        .get("lti_deployment_id")
        .filter(|d| !d.is_empty())
        .cloned();
    if let Some(d) = &login_deployment {
        let known = state
            .store
            .lti_deployment_registered(&platform.id, d)
            .await
            .map_err(|e| LaunchError::Internal(e.to_string()))?;
        if !known {
            return Err(LaunchError::UnregisteredDeployment);
        }
    }
    let st = random();
    let nonce = random();
    let now = now_ms();
    state
        .store
        .lti_put_state(
            &StateRow {
                state_digest: crate::teachers::secret_digest(&st),
                nonce: nonce.clone(),
                platform_id: platform.id.clone(),
                target_link_uri: target.to_owned(),
                deployment_id: login_deployment,
                expires_ms: now + STATE_TTL_SECS * 1000,
            },
            now,
        )
        .await
        .map_err(|e| LaunchError::Internal(e.to_string()))?;
    let mut url = url::Url::parse(&platform.auth_url)
        .map_err(|_| LaunchError::Internal("the registered auth URL does not parse".into()))?;
    {
        let mut p = url.query_pairs_mut();
        p.append_pair("scope", "openid")
            .append_pair("response_type", "id_token")
            .append_pair("response_mode", "form_post")
            .append_pair("prompt", "none")
            .append_pair("client_id", &platform.client_id)
            .append_pair("redirect_uri", &launch)
            .append_pair("login_hint", login_hint)
            .append_pair("state", &st)
            .append_pair("nonce", &nonce);
        if let Some(hint) = q.get("lti_message_hint") {
            p.append_pair("lti_message_hint", hint);
        }
    }
    // LTI Platform Storage (1EdTech lti-cs-oidc, lti-pm-s): where the platform names a frame
    // that keeps data for the tool, a page puts the state and nonce there before going on,
    // and the launch page reads them back; the cookie below is also set, for browsers that
    // keep it.
    let storage_target = q
        .get("lti_storage_target")
        .map(|t| t.trim())
        .filter(|t| valid_storage_target(t));
    let mut r = match (storage_target, origin_of(&platform.auth_url)) {
        (Some(target), Some(auth_origin)) => {
            let attrs = format!(
                " data-lti-storage=\"{}\" data-lti-origin=\"{}\" data-lti-put-state=\"{}\" data-lti-put-nonce=\"{}\" data-next=\"{}\"",
                escape_html(target),
                escape_html(&auth_origin),
                escape_html(&st),
                escape_html(&nonce),
                escape_html(url.as_str()),
            );
            let inner = "<main data-role=\"storing\"><p>Signing in… <span lang=\"zh-TW\">正在登入…</span></p></main>";
            page(
                &state.settings,
                StatusCode::OK,
                Some(&auth_origin),
                None,
                shell("classchat", &attrs, inner),
            )
        }
        _ => Redirect::to(url.as_str()).into_response(),
    };
    // Cross-site iframe: SameSite=None (needs Secure); Partitioned (CHIPS) keeps it
    // working where third-party cookies are otherwise blocked.
    let cookie = format!(
        "{STATE_COOKIE}={st}; Path=/lti/; Max-Age={STATE_TTL_SECS}; HttpOnly; Secure; SameSite=None; Partitioned"
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    tracing::info!(target: "classchat::lti", platform = %platform.id, "LTI login: sent to the platform");
    Ok(r)
}

/// A frame name the launch pages may post to: `_parent` or a plain window name (Canvas
/// sends `post_message_forwarding`).
fn valid_storage_target(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 64
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// How the launch proves it comes from the browser that logged in.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Proof {
    /// The state cookie matched (checked before the state is taken).
    Cookie,
    /// No cookie; the page checks the platform's storage before it goes on.
    Storage {
        target: String,
        platform_origin: String,
        state: String,
        nonce: String,
    },
}

/// The launch's answer page: with [`Proof::Storage`], its content stays hidden (and the
/// session unsaved) until `/lti/launch.js` has read back the state and nonce from the
/// platform's storage, answered from the platform's own origin.
fn launch_shell(title: &str, attrs: &str, inner: &str, proof: &Proof) -> String {
    match proof {
        Proof::Cookie => shell(title, attrs, inner),
        Proof::Storage {
            target,
            platform_origin,
            state,
            nonce,
        } => {
            let [(en_t, en), (zh_t, zh)] = LaunchError::CookieBlocked.texts();
            let attrs = format!(
                "{attrs} data-lti-storage=\"{}\" data-lti-origin=\"{}\" data-lti-get-state=\"{}\" data-lti-get-nonce=\"{}\"",
                escape_html(target),
                escape_html(platform_origin),
                escape_html(state),
                escape_html(nonce),
            );
            let inner = format!(
                "<p id=\"cc-checking\">Checking the sign-in… <span lang=\"zh-TW\">正在確認登入…</span></p>\
                 <div id=\"cc-checked\" hidden>{inner}</div>\
                 <main id=\"cc-unchecked\" data-error=\"storage_unavailable\" hidden><h1>{}</h1><p>{}</p>\
                 <h1 lang=\"zh-TW\" class=\"zh\">{}</h1><p lang=\"zh-TW\" class=\"zh\">{}</p></main>",
                escape_html(en_t),
                escape_html(&en),
                escape_html(zh_t),
                escape_html(&zh),
            );
            shell(title, &attrs, &inner)
        }
    }
}

// ---- launch --------------------------------------------------------------------------

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

async fn launch(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut origin = None;
    let result = finish_launch(&state, &headers, &form, &mut origin).await;
    let mut r = match result {
        Ok(r) => r,
        Err(e) => refuse(&state, e, origin.as_deref()),
    };
    // The login's cookie is spent either way.
    let clear = format!(
        "{STATE_COOKIE}=; Path=/lti/; Max-Age=0; HttpOnly; Secure; SameSite=None; Partitioned"
    );
    if let Ok(v) = HeaderValue::from_str(&clear) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

fn internal(e: impl std::fmt::Display) -> LaunchError {
    LaunchError::Internal(e.to_string())
}

async fn finish_launch(
    state: &AppState,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
    origin: &mut Option<String>,
) -> Result<Response, LaunchError> {
    let field = |name: &str| form.get(name).map(String::as_str).filter(|v| !v.is_empty());
    let id_token = field("id_token").ok_or(LaunchError::MissingIdToken)?;
    let st = field("state").ok_or(LaunchError::MissingState)?;
    // Platform Storage instead of the cookie: the launch form names the frame again.
    let storage_target = field("lti_storage_target").filter(|t| valid_storage_target(t));
    let mut proof = Proof::Cookie;
    match (cookie(headers, STATE_COOKIE), storage_target) {
        (None | Some(""), None) => return Err(LaunchError::CookieBlocked),
        (None | Some(""), Some(target)) => {
            proof = Proof::Storage {
                target: target.to_owned(),
                platform_origin: String::new(),
                state: st.to_owned(),
                nonce: String::new(),
            }
        }
        (Some(c), _) if !bool::from(subtle::ConstantTimeEq::ct_eq(c.as_bytes(), st.as_bytes())) => {
            return Err(LaunchError::StateMismatch);
        }
        (Some(_), _) => {}
    }
    let now = now_secs();
    let login = state
        .store
        .lti_take_state(&crate::teachers::secret_digest(st), now * 1000)
        .await
        .map_err(internal)?
        .ok_or(LaunchError::StateUnknown)?;
    let platform = state
        .store
        .lti_platforms()
        .await
        .map_err(internal)?
        .into_iter()
        .find(|p| p.id == login.platform_id)
        .ok_or(LaunchError::UnknownPlatform)?;
    *origin = origin_of(&platform.issuer);
    if let Proof::Storage {
        platform_origin,
        nonce,
        ..
    } = &mut proof
    {
        // The storage frame answers from the origin of the platform's authentication URL
        // (where the login page sent the state).
        *platform_origin = origin_of(&platform.auth_url).ok_or(LaunchError::CookieBlocked)?;
        nonce.clone_from(&login.nonce);
    }
    let keys = state.lti.keyset(&platform);
    let launch = verify::verify(
        id_token,
        &keys,
        &Expected {
            issuer: &platform.issuer,
            client_id: &platform.client_id,
            nonce: &login.nonce,
            target_link_uri: &login.target_link_uri,
            login_deployment: login.deployment_id.as_deref(),
            now,
            max_age_secs: STATE_TTL_SECS,
        },
    )
    .await?;
    let registered = state
        .store
        .lti_deployment_registered(&platform.id, &launch.deployment_id)
        .await
        .map_err(internal)?;
    if !registered {
        return Err(LaunchError::UnregisteredDeployment);
    }
    let context_id = launch.context_id.clone().ok_or(LaunchError::NoContext)?;
    let digest = state.lti.user_digest(&platform.issuer, &launch.sub);
    match &launch.message {
        Message::ResourceLink { .. } => {
            resource_link(
                state,
                &platform,
                &launch,
                &context_id,
                &digest,
                origin.as_deref(),
                &proof,
            )
            .await
        }
        Message::DeepLinking {
            return_url,
            data,
            accepts_resource_link,
        } => {
            if !launch.is_instructor() {
                return Err(LaunchError::NotInstructor);
            }
            if !accepts_resource_link {
                return Err(LaunchError::NoResourceLinkAccepted);
            }
            state
                .store
                .lti_seen_user(&digest, &platform.id, now_ms())
                .await
                .map_err(internal)?;
            let ticket = Ticket {
                pid: platform.id.clone(),
                dep: launch.deployment_id.clone(),
                ctx: context_id.clone(),
                ret: return_url.clone(),
                data: data.clone(),
                ud: digest.clone(),
                nm: launch.name.clone(),
                asst: member_role(&launch) == crate::teachers::Role::Assistant,
                aud: CHOICE_AUDIENCE.into(),
                exp: now + STATE_TTL_SECS,
            };
            picker(state, &launch, ticket, origin.as_deref(), &proof).await
        }
    }
}

/// A student or instructor opens classchat in a course.
async fn resource_link(
    state: &AppState,
    platform: &PlatformRecord,
    launch: &Launch,
    context_id: &str,
    digest: &str,
    origin: Option<&str>,
    proof: &Proof,
) -> Result<Response, LaunchError> {
    let class_id = state
        .store
        .lti_binding(&platform.id, &launch.deployment_id, context_id)
        .await
        .map_err(internal)?
        .ok_or(LaunchError::NotBound)?;
    let classes = state.classes.current();
    let class = classes
        .get(&class_id)
        .filter(|c| c.enabled && !c.paused())
        .ok_or(LaunchError::ClassUnavailable)?;
    let name: Option<String> = launch.name.as_ref().map(|n| {
        n.chars()
            .take(classchat_shared::limits::MAX_DISPLAY_NAME_CHARS)
            .collect()
    });
    let name = crate::auth::clean_display_name(name).unwrap_or(None);
    // The LMS says who this is: their allowance follows them across sessions and devices.
    let student = Some(crate::allowances::lti_student(digest));
    let (session_id, session) =
        crate::auth::start_session_as(state, class, name, student).map_err(internal)?;
    let now = now_ms();
    state
        .store
        .lti_seen_user(digest, &platform.id, now)
        .await
        .map_err(internal)?;
    let instructor = launch.is_instructor();
    // An instructor's launch makes them a member of the class (their teacher account,
    // keyed by the user digest, made at the first launch) and offers a one-use hand-off
    // to the class's dashboard.
    let handoff = if instructor {
        Some(instructor_member(state, &platform.id, launch, &class.id, digest).await?)
    } else {
        None
    };
    tracing::info!(target: "classchat::login", class = %class.id, session = %session_id, instructor, outcome = "ok", "signed in by an LTI launch");
    let lang = match launch.locale.as_deref() {
        Some(l) if l.to_ascii_lowercase().starts_with("zh") => "?lang=zh-TW",
        Some(l) if l.to_ascii_lowercase().starts_with("en") => "?lang=en",
        _ => "",
    };
    let next = format!("/embed{lang}");
    let json = serde_json::to_string(&session).map_err(internal)?;
    let blocked = "<p id=\"cc-blocked\" hidden>This browser blocks storage inside the course page: \
        open classchat in a new window. <span lang=\"zh-TW\">此瀏覽器在課程頁面中封鎖了儲存空間：請在新視窗開啟 classchat。</span></p>";
    let (attrs, inner) = if instructor {
        (
            format!(" data-session=\"{}\"", escape_html(&json)),
            format!(
                "<main data-role=\"instructor\" data-class=\"{id}\"><h1>{title}</h1>\
                 <p>You are an instructor of this class. <span lang=\"zh-TW\">您是此班級的授課教師。</span></p>\
                 <p><a href=\"{next}\">Open the chat · 開啟聊天</a></p>\
                 {dashboard}\
                 <p><a href=\"/admin/classes/{id}\" target=\"_blank\" rel=\"noopener\">The class on the dashboard · 管理頁面中的班級</a></p>{blocked}</main>",
                id = escape_html(&class.id),
                title = escape_html(&class.title),
                next = escape_html(&next),
                dashboard = handoff.flatten().map(|t| format!(
                    "<form method=\"post\" action=\"/lti/dashboard\" target=\"_blank\" rel=\"noopener\" data-testid=\"lti-dashboard\">\
                     <input type=\"hidden\" name=\"ticket\" value=\"{}\">\
                     <button>Open the class's dashboard (signs you in) · 開啟班級管理頁面（自動登入）</button></form>",
                    escape_html(&t)
                )).unwrap_or_default(),
            ),
        )
    } else {
        (
            format!(
                " data-session=\"{}\" data-next=\"{}\"",
                escape_html(&json),
                escape_html(&next)
            ),
            format!(
                "<main data-role=\"learner\"><p>Opening the chat… <span lang=\"zh-TW\">正在開啟聊天…</span></p>\
                 <noscript><a href=\"{next}\">Open the chat · 開啟聊天</a></noscript>{blocked}</main>",
                next = escape_html(&next)
            ),
        )
    };
    Ok(page(
        &state.settings,
        StatusCode::OK,
        origin,
        None,
        launch_shell(&class.title, &attrs, &inner, proof),
    ))
}

/// How long an instructor's dashboard hand-off may wait for its click.
const HANDOFF_TTL_MS: i64 = STATE_TTL_SECS * 1000;
/// The ticket kind of a dashboard hand-off in `lti_tickets`.
const HANDOFF: &str = "dashboard";
/// The mark of a teacher account made for an LMS instructor: the account's email column is
/// unique and required, and holds this undeliverable placeholder (RFC 2606 `.invalid`)
/// rather than the LMS's email, which classchat never reads.
pub const PLACEHOLDER_DOMAIN: &str = "lti.invalid";

/// The class role an instructor's context roles give (`teachers::allows` says what each
/// may do): a teaching assistant reads, an instructor or administrator of the course edits
/// (never deletes the class or changes its members: the class's owner or the server's
/// administrator does that).
fn member_role(launch: &Launch) -> crate::teachers::Role {
    use crate::teachers::Role;
    let assistant = launch.roles.iter().any(|r| {
        r == "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"
            || r == "TeachingAssistant"
    });
    let full = launch.roles.iter().any(|r| {
        matches!(
            r.as_str(),
            "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
                | "http://purl.imsglobal.org/vocab/lis/v2/membership#Administrator"
                | "Instructor"
                | "Administrator"
        )
    });
    if assistant && !full {
        Role::Assistant
    } else {
        Role::CoTeacher
    }
}

/// Makes the launching instructor a member of the class; the hand-off ticket, if the
/// dashboard signs teachers in with its own cookie and the account is enabled.
async fn instructor_member(
    state: &AppState,
    platform_id: &str,
    launch: &Launch,
    class_id: &str,
    digest: &str,
) -> Result<Option<String>, LaunchError> {
    let member = make_member(
        state,
        platform_id,
        launch.name.as_deref(),
        member_role(launch),
        class_id,
        digest,
    )
    .await?;
    if !member.enabled || !crate::admin::lti::signs_in_teachers(state) {
        return Ok(None);
    }
    let now = now_ms();
    let ticket = random();
    state
        .store
        .lti_put_ticket(
            &crate::teachers::secret_digest(&ticket),
            HANDOFF,
            &format!("{} {class_id}", member.teacher_id),
            now + HANDOFF_TTL_MS,
            now,
        )
        .await
        .map_err(internal)?;
    Ok(Some(ticket))
}

/// The LMS user `digest` as a member of `class_id` with `role` (their teacher account made
/// at the first time, named `name` or "LMS instructor").
async fn make_member(
    state: &AppState,
    platform_id: &str,
    name: Option<&str>,
    role: crate::teachers::Role,
    class_id: &str,
    digest: &str,
) -> Result<crate::store::lti::InstructorMember, LaunchError> {
    let now = now_ms();
    let actor = format!("lti:{platform_id}:{}", &digest[..12.min(digest.len())]);
    let name: String = name
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or("LMS instructor")
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_TITLE_CHARS)
        .collect();
    state
        .store
        .lti_instructor_member(
            class_id,
            digest,
            &crate::teachers::new_id('t'),
            &format!(
                "lti-{}@{PLACEHOLDER_DOMAIN}",
                &digest[..32.min(digest.len())]
            ),
            &name,
            role.as_str(),
            Audit {
                actor: &actor,
                address: None,
                now_ms: now,
            },
        )
        .await
        .map_err(internal)
}

/// `POST /lti/dashboard`: the instructor's hand-off, opened as a new top-level window (a
/// dashboard cookie is `SameSite=Strict` and cannot be set inside the LMS's iframe). Takes
/// the single-use ticket, signs the teacher in, and goes to the class.
async fn dashboard(
    State(state): State<AppState>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    match handoff(&state, &form).await {
        Ok(r) => r,
        Err(e) => refuse(&state, e, None),
    }
}

async fn handoff(
    state: &AppState,
    form: &HashMap<String, String>,
) -> Result<Response, LaunchError> {
    let ticket = form.get("ticket").map(String::as_str).unwrap_or("");
    if ticket.is_empty() {
        return Err(LaunchError::HandoffExpired);
    }
    let now = now_ms();
    let subject = state
        .store
        .lti_take_ticket(&crate::teachers::secret_digest(ticket), HANDOFF, now)
        .await
        .map_err(internal)?
        .ok_or(LaunchError::HandoffExpired)?;
    let (teacher_id, class_id) = subject
        .split_once(' ')
        .ok_or_else(|| internal("a malformed hand-off"))?;
    let teacher = state
        .store
        .teacher(teacher_id)
        .await
        .map_err(internal)?
        .filter(|t| t.disabled == 0)
        .ok_or(LaunchError::HandoffExpired)?;
    let cookie = crate::admin::lti::teacher_session_cookie(state, &teacher.id)
        .ok_or(LaunchError::DashboardUnavailable)?;
    let _ = state
        .store
        .record_audit(
            now,
            &teacher.email,
            "sign_in",
            Some(class_id),
            "by an LTI launch",
        )
        .await;
    tracing::info!(target: "classchat::admin", class = %class_id, outcome = "ok", "dashboard sign-in by an LTI launch");
    let mut r = Redirect::to(&format!("/admin/classes/{class_id}/settings")).into_response();
    r.headers_mut().append(header::SET_COOKIE, cookie);
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

// ---- deep linking --------------------------------------------------------------------

/// What the class choice form carries, signed (HS256, key derived from AUTH_SECRET), so
/// the choice needs no server-side state and any replica can take it.
#[derive(Debug, Serialize, Deserialize)]
struct Ticket {
    pid: String,
    dep: String,
    ctx: String,
    ret: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data: Option<Value>,
    ud: String,
    /// The instructor's name and whether they are only a teaching assistant: the account
    /// and role a new class's maker gets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nm: Option<String>,
    #[serde(default)]
    asst: bool,
    aud: String,
    exp: i64,
}

/// The classes an instructor may pick: those they taught through LTI, and the course's
/// current one.
async fn choosable(state: &AppState, t: &Ticket) -> Result<Vec<(String, String)>, LaunchError> {
    let mut ids = state
        .store
        .lti_instructor_classes(&t.ud)
        .await
        .map_err(internal)?;
    if let Some(bound) = state
        .store
        .lti_binding(&t.pid, &t.dep, &t.ctx)
        .await
        .map_err(internal)?
        && !ids.contains(&bound)
    {
        ids.insert(0, bound);
    }
    let classes = state.classes.current();
    Ok(ids
        .into_iter()
        .filter_map(|id| classes.get(&id).map(|c| (id, c.title.clone())))
        .collect())
}

async fn picker(
    state: &AppState,
    launch: &Launch,
    ticket: Ticket,
    origin: Option<&str>,
    proof: &Proof,
) -> Result<Response, LaunchError> {
    let options = choosable(state, &ticket).await?;
    let signed = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &ticket,
        &EncodingKey::from_secret(&state.lti.choice_key),
    )
    .map_err(internal)?;
    let mut inner = String::from(
        "<main data-role=\"picker\"><h1>Add classchat to this course</h1>\
         <p lang=\"zh-TW\" class=\"zh\">將 classchat 加入此課程</p><form method=\"post\" action=\"/lti/deep-link\">",
    );
    let _ = write!(
        inner,
        "<input type=\"hidden\" name=\"ticket\" value=\"{}\">",
        escape_html(&signed)
    );
    for (i, (id, title)) in options.iter().enumerate() {
        let _ = write!(
            inner,
            "<label><input type=\"radio\" name=\"choice\" value=\"{id}\"{checked}> {title}</label>",
            id = escape_html(id),
            title = escape_html(title),
            checked = if i == 0 { " checked" } else { "" }
        );
    }
    let default_title = launch
        .context_title
        .as_deref()
        .unwrap_or("Course chat")
        .chars()
        .take(MAX_TITLE_CHARS)
        .collect::<String>();
    let _ = write!(
        inner,
        "<label><input type=\"radio\" name=\"choice\" value=\"new\"{}> A new class · 新班級: \
         <input name=\"title\" maxlength=\"{MAX_TITLE_CHARS}\" value=\"{}\"></label>\
         <p><input type=\"submit\" value=\"Add · 加入\"></p></form></main>",
        if options.is_empty() { " checked" } else { "" },
        escape_html(&default_title)
    );
    Ok(page(
        &state.settings,
        StatusCode::OK,
        origin,
        None,
        launch_shell("Add classchat", "", &inner, proof),
    ))
}

async fn deep_link(
    State(state): State<AppState>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    match choose(&state, &form).await {
        Ok(r) => r,
        Err(e) => refuse(&state, e, None),
    }
}

async fn choose(state: &AppState, form: &HashMap<String, String>) -> Result<Response, LaunchError> {
    let mut v = Validation::new(Algorithm::HS256);
    v.set_audience(&[CHOICE_AUDIENCE]);
    v.set_required_spec_claims(&["exp", "aud"]);
    v.leeway = 0;
    let t: Ticket = jsonwebtoken::decode(
        form.get("ticket").map(String::as_str).unwrap_or(""),
        &DecodingKey::from_secret(&state.lti.choice_key),
        &v,
    )
    .map_err(|_| LaunchError::BadChoice)?
    .claims;
    let platform = state
        .store
        .lti_platforms()
        .await
        .map_err(internal)?
        .into_iter()
        .find(|p| p.id == t.pid)
        .ok_or(LaunchError::UnknownPlatform)?;
    let now = now_ms();
    let actor = format!("lti:{}:{}", platform.id, &t.ud[..12.min(t.ud.len())]);
    let audit = Audit {
        actor: &actor,
        address: None,
        now_ms: now,
    };
    let choice = form.get("choice").map(String::as_str).unwrap_or("");
    let (class_id, title) = if choice == "new" {
        let title: String = form
            .get("title")
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .unwrap_or("Course chat")
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_TITLE_CHARS)
            .collect();
        let mut id = crate::teachers::new_id('c');
        while state.classes.current().get(&id).is_some() {
            id = crate::teachers::new_id('c');
        }
        let record = ClassRecord {
            id: id.clone(),
            title: title.clone(),
            created_ms: now,
            updated_ms: now,
            ..ClassRecord::default()
        };
        state
            .store
            .create_class(&record, None, audit)
            .await
            .map_err(internal)?;
        crate::sync::classes_changed(state).await;
        (id, title)
    } else {
        choosable(state, &t)
            .await?
            .into_iter()
            .find(|(id, _)| id == choice)
            .ok_or(LaunchError::BadChoice)?
    };
    state
        .store
        .lti_bind(&t.pid, &t.dep, &t.ctx, &class_id, &t.ud, audit)
        .await
        .map_err(internal)?;
    if choice == "new" {
        // The instructor made this class: its owner (a teaching assistant: an assistant).
        let role = if t.asst {
            crate::teachers::Role::Assistant
        } else {
            crate::teachers::Role::Owner
        };
        make_member(state, &t.pid, t.nm.as_deref(), role, &class_id, &t.ud).await?;
    }
    tracing::info!(target: "classchat::lti", platform = %platform.id, class = %class_id, "a course was bound by Deep Linking");

    // DL 2.0 §4.4: the response message, signed with classchat's own key.
    let now_s = now_secs();
    let mut claims = json!({
        "iss": platform.client_id,
        "aud": platform.issuer,
        "azp": platform.client_id,
        "iat": now_s,
        "exp": now_s + STATE_TTL_SECS,
        "nonce": random(),
        format!("{LTI}deployment_id"): t.dep,
        format!("{LTI}message_type"): "LtiDeepLinkingResponse",
        format!("{LTI}version"): "1.3.0",
        format!("{DL}content_items"): [{
            "type": "ltiResourceLink",
            "title": title,
            "url": launch_url(&state.public_url),
            "custom": { "classchat_class": class_id },
        }],
        format!("{DL}msg"): format!("classchat: {title}"),
    });
    if let Some(data) = &t.data {
        claims[format!("{DL}data")] = data.clone();
    }
    let key = tool_key::current(&state.store, &state.lti.seal)
        .await
        .map_err(internal)?;
    let jwt = key.sign(&claims).map_err(internal)?;
    let inner = format!(
        "<main data-role=\"deep-link-response\"><p>Returning to the course… \
         <span lang=\"zh-TW\">正在返回課程…</span></p>\
         <form method=\"post\" action=\"{}\" data-autopost><input type=\"hidden\" name=\"JWT\" value=\"{}\">\
         <noscript><input type=\"submit\" value=\"Continue · 繼續\"></noscript></form></main>",
        escape_html(&t.ret),
        escape_html(&jwt)
    );
    let ret_origin = origin_of(&t.ret);
    Ok(page(
        &state.settings,
        StatusCode::OK,
        origin_of(&platform.issuer).as_deref(),
        ret_origin.as_deref(),
        shell("classchat", "", &inner),
    ))
}

async fn jwks(State(state): State<AppState>) -> Response {
    match tool_key::published(&state.store, &state.lti.seal).await {
        Ok(keys) => (
            [(header::CACHE_CONTROL, "public, max-age=300")],
            axum::Json(keys),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(target: "classchat::lti", "cannot publish the LTI keys: {e:#}");
            (StatusCode::SERVICE_UNAVAILABLE, "keys unavailable").into_response()
        }
    }
}
