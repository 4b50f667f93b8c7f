//! LTI 1.3 platforms, for the administrator: register an LMS (issuer, client_id, its
//! authentication and keyset URLs, deployment ids), list, change deployments, remove; the
//! values to give the LMS; and rotating classchat's own signing key.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiCaller, ApiFailure, ApiJson, ErrorBody};
use crate::basics::now_ms;
use crate::state::AppState;
use crate::store::lti::PlatformRecord;

/// A platform to register.
#[derive(Debug, Deserialize, ToSchema)]
pub(super) struct NewPlatform {
    /// The platform's `iss` exactly (Moodle: its wwwroot; Canvas: `https://canvas.instructure.com`).
    issuer: String,
    /// The client id the platform gave classchat.
    client_id: String,
    /// The OIDC authentication request URL.
    auth_url: String,
    /// The platform's public keyset (JWKS) URL.
    jwks_url: String,
    /// The OAuth2 token URL (kept for LTI Advantage services; not used yet).
    #[serde(default)]
    token_url: Option<String>,
    /// Deployment ids that may launch classchat (Open edX: `"1"`).
    deployments: Vec<String>,
}

/// A platform's deployments, replacing the old list.
#[derive(Debug, Deserialize, ToSchema)]
pub(super) struct Deployments {
    deployments: Vec<String>,
}

/// A registered platform.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct PlatformView {
    id: String,
    issuer: String,
    client_id: String,
    auth_url: String,
    jwks_url: String,
    token_url: Option<String>,
    deployments: Vec<String>,
    created_ms: i64,
}

impl From<PlatformRecord> for PlatformView {
    fn from(p: PlatformRecord) -> Self {
        Self {
            id: p.id,
            issuer: p.issuer,
            client_id: p.client_id,
            auth_url: p.auth_url,
            jwks_url: p.jwks_url,
            token_url: p.token_url,
            deployments: p.deployments,
            created_ms: p.created_ms,
        }
    }
}

/// What to enter in the LMS.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ToolValues {
    /// Tool URL / Target Link URI / Launch URL / Redirect URI.
    launch_url: String,
    /// Initiate login URL / OIDC Initiation URL.
    login_url: String,
    /// Public keyset URL (JWKS).
    jwks_url: String,
    /// Deep Linking (Content Selection) URL: the launch URL.
    deep_linking_url: String,
}

/// The new signing key.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct RotatedKey {
    kid: String,
}

/// An https URL (http only for a loopback host, for tests and a platform on this machine).
fn url(field: &str, v: &str) -> Result<String, ApiFailure> {
    let v = v.trim();
    let bad = || ApiFailure::BadRequest(format!("{field} must be an https URL."));
    let u = url::Url::parse(v).map_err(|_| bad())?;
    let loopback = matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    if u.scheme() == "https" || (u.scheme() == "http" && loopback) {
        Ok(v.to_owned())
    } else {
        Err(bad())
    }
}

fn text(field: &str, v: &str) -> Result<String, ApiFailure> {
    let v = v.trim();
    if v.is_empty() || v.chars().count() > 255 || v.chars().any(char::is_control) {
        return Err(ApiFailure::BadRequest(format!(
            "{field} must be 1 to 255 characters, without control characters."
        )));
    }
    Ok(v.to_owned())
}

fn deployment_list(list: &[String]) -> Result<Vec<String>, ApiFailure> {
    let mut out: Vec<String> = Vec::new();
    for d in list {
        let d = text("each deployment id", d)?;
        if !out.contains(&d) {
            out.push(d);
        }
    }
    Ok(out)
}

/// Registers an LMS. Administrator only.
#[utoipa::path(post, path = "/api/v1/admin/lti/platforms", tag = "lti",
    request_body = NewPlatform,
    responses((status = 201, body = PlatformView), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "issuer and client_id already registered"),
        (status = 403, body = ErrorBody)),
    security(("token" = [])))]
pub(super) async fn create_platform(
    State(state): State<AppState>,
    who: ApiCaller,
    ApiJson(req): ApiJson<NewPlatform>,
) -> Result<(StatusCode, ApiJson<PlatformView>), ApiFailure> {
    who.require_administrator()?;
    let p = PlatformRecord {
        id: crate::teachers::new_id('p'),
        issuer: text("issuer", &req.issuer)?,
        client_id: text("client_id", &req.client_id)?,
        auth_url: url("auth_url", &req.auth_url)?,
        jwks_url: url("jwks_url", &req.jwks_url)?,
        token_url: req
            .token_url
            .as_deref()
            .filter(|t| !t.trim().is_empty())
            .map(|t| url("token_url", t))
            .transpose()?,
        created_ms: now_ms(),
        deployments: deployment_list(&req.deployments)?,
    };
    let actor = who.caller.actor();
    if !state
        .store
        .lti_create_platform(&p, who.audit(&actor))
        .await?
    {
        return Err(ApiFailure::Conflict(
            "A platform with this issuer and client_id is already registered.".into(),
        ));
    }
    Ok((StatusCode::CREATED, ApiJson(p.into())))
}

/// Every registered LMS. Administrator only.
#[utoipa::path(get, path = "/api/v1/admin/lti/platforms", tag = "lti",
    responses((status = 200, body = [PlatformView]), (status = 403, body = ErrorBody)),
    security(("token" = [])))]
pub(super) async fn list_platforms(
    State(state): State<AppState>,
    who: ApiCaller,
) -> Result<ApiJson<Vec<PlatformView>>, ApiFailure> {
    who.require_administrator()?;
    let list = state.store.lti_platforms().await?;
    Ok(ApiJson(list.into_iter().map(Into::into).collect()))
}

/// Replaces an LMS's deployment ids. Administrator only.
#[utoipa::path(put, path = "/api/v1/admin/lti/platforms/{id}/deployments", tag = "lti",
    params(("id" = String, Path, description = "The platform's id")),
    request_body = Deployments,
    responses((status = 204), (status = 404, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("token" = [])))]
pub(super) async fn put_deployments(
    State(state): State<AppState>,
    who: ApiCaller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<Deployments>,
) -> Result<StatusCode, ApiFailure> {
    who.require_administrator()?;
    let list = deployment_list(&req.deployments)?;
    let actor = who.caller.actor();
    if !state
        .store
        .lti_set_deployments(&id, &list, who.audit(&actor))
        .await?
    {
        return Err(ApiFailure::NotFound);
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Removes an LMS with its deployments and course bindings. Administrator only.
#[utoipa::path(delete, path = "/api/v1/admin/lti/platforms/{id}", tag = "lti",
    params(("id" = String, Path, description = "The platform's id")),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("token" = [])))]
pub(super) async fn delete_platform(
    State(state): State<AppState>,
    who: ApiCaller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiFailure> {
    who.require_administrator()?;
    let actor = who.caller.actor();
    if !state
        .store
        .lti_delete_platform(&id, who.audit(&actor))
        .await?
    {
        return Err(ApiFailure::NotFound);
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The URLs to enter in the LMS. Administrator only.
#[utoipa::path(get, path = "/api/v1/admin/lti/tool", tag = "lti",
    responses((status = 200, body = ToolValues), (status = 403, body = ErrorBody)),
    security(("token" = [])))]
pub(super) async fn tool_values(
    State(state): State<AppState>,
    who: ApiCaller,
) -> Result<ApiJson<ToolValues>, ApiFailure> {
    who.require_administrator()?;
    let base = &state.public_url;
    Ok(ApiJson(ToolValues {
        launch_url: crate::lti::launch_url(base),
        login_url: crate::lti::login_url(base),
        jwks_url: crate::lti::jwks_url(base),
        deep_linking_url: crate::lti::launch_url(base),
    }))
}

/// Makes a new signing key for Deep Linking responses; the old one stays published at
/// `/lti/jwks.json` as the previous key. Administrator only.
#[utoipa::path(post, path = "/api/v1/admin/lti/tool-key/rotate", tag = "lti",
    responses((status = 201, body = RotatedKey), (status = 403, body = ErrorBody)),
    security(("token" = [])))]
pub(super) async fn rotate_tool_key(
    State(state): State<AppState>,
    who: ApiCaller,
) -> Result<(StatusCode, ApiJson<RotatedKey>), ApiFailure> {
    who.require_administrator()?;
    let kid = crate::lti::tool_key::rotate(&state.store, &state.lti.seal).await?;
    tracing::info!(target: "classchat::lti", actor = %who.caller.actor(), kid, "rotated the LTI signing key");
    Ok((StatusCode::CREATED, ApiJson(RotatedKey { kid })))
}
