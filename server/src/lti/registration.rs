//! LTI Dynamic Registration 1.0 (1EdTech, imsglobal.org/spec/lti-dr/v1p0): the
//! administrator makes a single-use registration URL on the dashboard's LTI page and
//! pastes it into the LMS; the LMS opens it with `openid_configuration` and
//! `registration_token`. classchat reads the platform's OpenID configuration (its issuer
//! must prefix the configuration's URL, §3.5.1), posts its own tool configuration to the
//! platform's registration endpoint (§3.5.2: redirect URI, login and keyset URLs, the
//! claims it reads, `LtiResourceLinkRequest` and `LtiDeepLinkingRequest`, no scopes),
//! stores the registration the platform answers (issuer, client id, deployment id, keyset
//! and authentication URLs) and asks the LMS to close its window
//! (`org.imsglobal.lti.close`, §3.6). Nothing is stored unless every step succeeds.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::error::LaunchError;
use super::{jwks_url, launch_url, login_url, origin_of, page, random, refuse, shell};
use crate::basics::now_ms;
use crate::embed::escape_html;
use crate::state::AppState;
use crate::store::lti::PlatformRecord;
use crate::store::teachers::Audit;

/// The ticket kind in `lti_tickets`.
const KIND: &str = "registration";
/// How long a registration URL waits for the LMS.
const TICKET_TTL_MS: i64 = 3600 * 1000;
/// The claims classchat reads (never `email`): Moodle sends only those listed.
const CLAIMS: &[&str] = &["iss", "sub", "name", "given_name", "locale"];
/// The platform configuration's LTI part (DR §3.4); the tool's is the request's `lti`.
const PLATFORM_CONF: &str = "https://purl.imsglobal.org/spec/lti-platform-configuration";

/// The registration URL for a new single-use ticket (its SHA-256 is stored).
pub async fn new_ticket(state: &AppState, now: i64) -> sqlx::Result<String> {
    let ticket = random();
    state
        .store
        .lti_put_ticket(
            &crate::teachers::secret_digest(&ticket),
            KIND,
            "",
            now + TICKET_TTL_MS,
            now,
        )
        .await?;
    Ok(format!(
        "{}/lti/register?ticket={ticket}",
        state.public_url.trim_end_matches('/')
    ))
}

/// The part of the platform's OpenID configuration classchat uses (DR §3.4).
#[derive(Debug, Deserialize)]
struct PlatformConfiguration {
    issuer: String,
    authorization_endpoint: String,
    registration_endpoint: String,
    jwks_uri: String,
    #[serde(default)]
    token_endpoint: Option<String>,
    #[serde(
        default,
        rename = "https://purl.imsglobal.org/spec/lti-platform-configuration"
    )]
    lti: Option<serde_json::Value>,
}

/// classchat's registration request (DR §3.5.2, OpenID Connect Dynamic Client Registration).
#[derive(Debug, Serialize)]
struct ToolRegistration {
    application_type: &'static str,
    response_types: [&'static str; 1],
    grant_types: [&'static str; 2],
    initiate_login_uri: String,
    redirect_uris: Vec<String>,
    client_name: &'static str,
    jwks_uri: String,
    token_endpoint_auth_method: &'static str,
    scope: &'static str,
    #[serde(rename = "https://purl.imsglobal.org/spec/lti-tool-configuration")]
    lti: serde_json::Value,
}

/// The platform's answer: at least the client id; the deployment id when it made one.
#[derive(Debug, Deserialize)]
struct RegistrationAnswer {
    client_id: String,
    #[serde(
        default,
        rename = "https://purl.imsglobal.org/spec/lti-tool-configuration"
    )]
    lti: Option<ToolConfigurationAnswer>,
}

#[derive(Debug, Deserialize)]
struct ToolConfigurationAnswer {
    #[serde(default)]
    deployment_id: Option<String>,
}

fn is_web_url(u: &str) -> bool {
    url::Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "https" | "http") && u.has_host())
}

/// `GET /lti/register`.
pub(super) async fn register(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let origin = q.get("openid_configuration").and_then(|u| origin_of(u));
    match run(&state, &q).await {
        Ok(p) => done(&state, &p, origin.as_deref()),
        Err(e) => refuse(&state, e, origin.as_deref()),
    }
}

async fn run(state: &AppState, q: &HashMap<String, String>) -> Result<PlatformRecord, LaunchError> {
    let param = |name: &'static str| {
        q.get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .ok_or(LaunchError::RegistrationParam(name))
    };
    let ticket = q.get("ticket").map(String::as_str).unwrap_or("");
    let digest = crate::teachers::secret_digest(ticket);
    let internal = |e: sqlx::Error| LaunchError::Internal(e.to_string());
    if ticket.is_empty()
        || !state
            .store
            .lti_ticket_waiting(&digest, KIND, now_ms())
            .await
            .map_err(internal)?
    {
        return Err(LaunchError::RegistrationTicket);
    }
    let config_url = param("openid_configuration")?;
    if !is_web_url(config_url) {
        return Err(LaunchError::RegistrationParam("openid_configuration"));
    }
    // Optional (§3.3): a platform may rely on other means, but sends it when it has one.
    let token = q
        .get("registration_token")
        .map(|v| v.trim())
        .filter(|v| !v.is_empty());
    let http = &state.lti.http;
    let config: PlatformConfiguration = async {
        let r = http
            .get(config_url)
            .header("accept", "application/json")
            .send()
            .await?
            .error_for_status()?;
        r.json().await
    }
    .await
    .map_err(|e: reqwest::Error| LaunchError::RegistrationConfig(e.without_url().to_string()))?;
    // §3.5.1: the issuer must match the configuration URL's prefix, so a page cannot
    // register one platform's issuer with another's endpoints.
    if !config_url.starts_with(config.issuer.as_str()) || !is_web_url(&config.issuer) {
        return Err(LaunchError::RegistrationIssuer);
    }
    for (u, name) in [
        (&config.authorization_endpoint, "authorization_endpoint"),
        (&config.registration_endpoint, "registration_endpoint"),
        (&config.jwks_uri, "jwks_uri"),
    ] {
        if !is_web_url(u) {
            return Err(LaunchError::RegistrationConfig(format!(
                "{name} is not a URL"
            )));
        }
    }
    if config.lti.is_none() {
        return Err(LaunchError::RegistrationConfig(format!(
            "no {PLATFORM_CONF} in the configuration"
        )));
    }
    let launch = launch_url(&state.public_url);
    let domain = url::Url::parse(&state.public_url)
        .ok()
        .and_then(|u| {
            u.host_str()
                .map(|h| u.port().map_or(h.to_owned(), |p| format!("{h}:{p}")))
        })
        .unwrap_or_default();
    let body = ToolRegistration {
        application_type: "web",
        response_types: ["id_token"],
        grant_types: ["implicit", "client_credentials"],
        initiate_login_uri: login_url(&state.public_url),
        redirect_uris: vec![launch.clone()],
        client_name: "classchat",
        jwks_uri: jwks_url(&state.public_url),
        token_endpoint_auth_method: "private_key_jwt",
        scope: "",
        lti: json!({
            "domain": domain,
            "description": "A class's AI chat assistant / 班級的 AI 聊天助理",
            "target_link_uri": launch,
            "claims": CLAIMS,
            "messages": [
                { "type": "LtiResourceLinkRequest" },
                { "type": "LtiDeepLinkingRequest", "target_link_uri": launch, "label": "classchat",
                  "placements": ["ContentArea", "link_selection", "assignment_selection"] },
            ],
        }),
    };
    let mut req = http
        .post(&config.registration_endpoint)
        .header("accept", "application/json")
        .json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let answer: RegistrationAnswer = async {
        let r = req.send().await?.error_for_status()?;
        r.json().await
    }
    .await
    .map_err(|e: reqwest::Error| LaunchError::RegistrationRefused(e.without_url().to_string()))?;
    if answer.client_id.trim().is_empty() {
        return Err(LaunchError::RegistrationRefused("no client_id".into()));
    }
    let now = now_ms();
    let p = PlatformRecord {
        id: crate::teachers::new_id('p'),
        issuer: config.issuer,
        client_id: answer.client_id,
        auth_url: config.authorization_endpoint,
        jwks_url: config.jwks_uri,
        token_url: config.token_endpoint,
        created_ms: now,
        deployments: answer
            .lti
            .and_then(|l| l.deployment_id)
            .filter(|d| !d.is_empty())
            .into_iter()
            .collect(),
    };
    // Single use: a second LMS (or a replay) with the same link stores nothing.
    if state
        .store
        .lti_take_ticket(&digest, KIND, now)
        .await
        .map_err(internal)?
        .is_none()
    {
        return Err(LaunchError::RegistrationTicket);
    }
    let audit = Audit {
        actor: "lti dynamic registration",
        address: None,
        now_ms: now,
    };
    if !state
        .store
        .lti_create_platform(&p, audit)
        .await
        .map_err(internal)?
    {
        return Err(LaunchError::RegistrationTaken);
    }
    tracing::info!(target: "classchat::lti", platform = %p.id, issuer = %p.issuer, "a platform registered by LTI Dynamic Registration");
    Ok(p)
}

/// The page that tells the administrator it worked and asks the LMS to close it.
fn done(state: &AppState, p: &PlatformRecord, origin: Option<&str>) -> Response {
    let deployments = if p.deployments.is_empty() {
        "The LMS sent no deployment id: add it on classchat's LTI page once the tool is deployed. \
         <span lang=\"zh-TW\">LMS 沒有傳來部署 ID：部署工具後，請在 classchat 的 LTI 頁面加入。</span>"
            .to_owned()
    } else {
        format!(
            "Deployment · 部署: <code>{}</code>",
            escape_html(&p.deployments.join(", "))
        )
    };
    let inner = format!(
        "<main data-role=\"registered\" data-platform=\"{id}\"><h1>classchat is registered</h1>\
         <p lang=\"zh-TW\" class=\"zh\">classchat 已註冊</p>\
         <p>Issuer · 發行者: <code>{iss}</code><br>Client ID: <code>{cid}</code><br>{deployments}</p>\
         <p>You may close this window. <span lang=\"zh-TW\">您可以關閉此視窗。</span></p></main>",
        id = escape_html(&p.id),
        iss = escape_html(&p.issuer),
        cid = escape_html(&p.client_id),
    );
    page(
        &state.settings,
        StatusCode::OK,
        origin,
        None,
        shell("classchat · LTI", " data-lti-close", &inner),
    )
}
