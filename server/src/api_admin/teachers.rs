//! Teachers (invited and disabled by the administrator), invitations, personal access
//! tokens, and the audit log.

use std::sync::LazyLock;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiCaller, ApiFailure, ApiJson, ApiQuery, ErrorBody, client_address};
use crate::admin::csv_cell;
use crate::basics::now_ms;
use crate::client_addr::ClientAddr;
use crate::limits::Refusal;
use crate::state::AppState;
use crate::store::teachers::{Accepted, AuditLine, TeacherRecord, TokenRecord};
use crate::teachers::{
    Caller, INVITATION_TTL, Need, check_password, hash_password, new_id, new_invitation, new_token,
    normalize_email, secret_digest, verify_password,
};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct InviteTeacher {
    pub email: String,
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Invited {
    pub id: String,
    pub email: String,
    /// The single-use link to send the teacher (valid 48 hours). Shown only here.
    pub invite_url: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct TeacherView {
    pub id: String,
    pub email: String,
    pub name: String,
    /// Whether the teacher accepted the invitation (set a password).
    pub active: bool,
    pub disabled: bool,
    pub created_ms: i64,
}

impl From<TeacherRecord> for TeacherView {
    fn from(t: TeacherRecord) -> Self {
        Self {
            id: t.id,
            email: t.email,
            name: t.name,
            active: t.active != 0,
            disabled: t.disabled != 0,
            created_ms: t.created_ms,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct UpdateTeacher {
    /// `true` ends every token of the teacher at once, on every replica.
    pub disabled: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct AcceptInvitation {
    /// The secret from the invitation link.
    pub invitation: String,
    /// At least 12 characters.
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateToken {
    /// What the token is for, e.g. "SIS sync".
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct NewTokenView {
    pub id: String,
    /// The token: shown once, stored only as a digest.
    pub token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct TokenView {
    pub id: String,
    /// The token's first characters, to recognise it.
    pub prefix: String,
    pub name: String,
    pub created_ms: i64,
    pub last_used_ms: Option<i64>,
}

impl From<TokenRecord> for TokenView {
    fn from(t: TokenRecord) -> Self {
        Self {
            id: t.id,
            prefix: t.prefix,
            name: t.name,
            created_ms: t.created_ms,
            last_used_ms: t.last_used_ms,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct AuditQuery {
    /// One class's lines (required for a teacher, who must own the class).
    pub class_id: Option<String>,
    /// At most this many of the latest lines (default 200, at most 1000).
    pub limit: Option<i64>,
    /// `csv` for a spreadsheet (cells that would run as formulas are defused); default JSON.
    pub format: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct AuditView {
    pub id: i64,
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    pub class_id: Option<String>,
    pub detail: String,
    /// The client address the change came from.
    pub address: Option<String>,
}

impl From<AuditLine> for AuditView {
    fn from(l: AuditLine) -> Self {
        Self {
            id: l.id,
            at_ms: l.at_ms,
            actor: l.actor,
            action: l.action,
            class_id: l.class_id,
            detail: l.detail,
            address: l.address,
        }
    }
}

fn text(field: &str, value: &str, max: usize) -> Result<String, ApiFailure> {
    let v = value.trim();
    if v.is_empty() {
        return Err(ApiFailure::BadRequest(format!(
            "{field} must not be empty."
        )));
    }
    if v.chars().count() > max {
        return Err(ApiFailure::BadRequest(format!(
            "{field} is longer than {max} characters."
        )));
    }
    Ok(v.to_owned())
}

/// Invites a teacher: answers the single-use link to send them.
#[utoipa::path(post, path = "/api/v1/admin/teachers", tag = "teachers",
    request_body = InviteTeacher,
    responses((status = 201, body = Invited), (status = 409, body = ErrorBody, description = "email taken"),
        (status = 403, body = ErrorBody)),
    security(("token" = [])))]
pub(super) async fn invite_teacher(
    State(state): State<AppState>,
    who: ApiCaller,
    ApiJson(req): ApiJson<InviteTeacher>,
) -> Result<(StatusCode, ApiJson<Invited>), ApiFailure> {
    who.require_administrator()?;
    let email = normalize_email(&req.email).map_err(|e| ApiFailure::BadRequest(format!("{e}.")))?;
    let name = text("name", &req.name, 200)?;
    let id = new_id('t');
    let (secret, digest) = new_invitation();
    let actor = who.caller.actor();
    let a = who.audit(&actor);
    let expires = a.now_ms + INVITATION_TTL.as_millis() as i64;
    if !state
        .store
        .invite_teacher(&id, &email, &name, &digest, expires, a)
        .await?
    {
        return Err(ApiFailure::Conflict(
            "A teacher with this email address exists already.".into(),
        ));
    }
    let invite_url = format!(
        "{}/admin/invitation?code={secret}",
        state.public_url.trim_end_matches('/')
    );
    Ok((
        StatusCode::CREATED,
        ApiJson(Invited {
            id,
            email,
            invite_url,
        }),
    ))
}

/// Every teacher.
#[utoipa::path(get, path = "/api/v1/admin/teachers", tag = "teachers",
    responses((status = 200, body = [TeacherView]), (status = 403, body = ErrorBody)),
    security(("token" = [])))]
pub(super) async fn list_teachers(
    State(state): State<AppState>,
    who: ApiCaller,
) -> Result<ApiJson<Vec<TeacherView>>, ApiFailure> {
    who.require_administrator()?;
    let list = state.store.teachers().await?;
    Ok(ApiJson(list.into_iter().map(Into::into).collect()))
}

/// Disables (or enables again) a teacher: a disabled teacher's tokens stop at once.
#[utoipa::path(patch, path = "/api/v1/admin/teachers/{id}", tag = "teachers",
    params(("id" = String, Path, description = "The teacher's id")),
    request_body = UpdateTeacher,
    responses((status = 200, body = TeacherView), (status = 404, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("token" = [])))]
pub(super) async fn update_teacher(
    State(state): State<AppState>,
    who: ApiCaller,
    axum::extract::Path(id): axum::extract::Path<String>,
    ApiJson(req): ApiJson<UpdateTeacher>,
) -> Result<ApiJson<TeacherView>, ApiFailure> {
    who.require_administrator()?;
    let actor = who.caller.actor();
    if !state
        .store
        .set_teacher_disabled(&id, req.disabled, who.audit(&actor))
        .await?
    {
        return Err(ApiFailure::NotFound);
    }
    let t = state
        .store
        .teacher(&id)
        .await?
        .ok_or(ApiFailure::NotFound)?;
    Ok(ApiJson(t.into()))
}

/// Sets the invited teacher's password. Works once, within 48 hours of the invitation.
#[utoipa::path(post, path = "/api/v1/invitations/accept", tag = "teachers",
    request_body = AcceptInvitation,
    responses((status = 204), (status = 404, body = ErrorBody, description = "unknown invitation"),
        (status = 410, body = ErrorBody, description = "used or expired"), (status = 400, body = ErrorBody)))]
pub(super) async fn accept_invitation(
    State(state): State<AppState>,
    client: ClientAddr,
    ApiJson(req): ApiJson<AcceptInvitation>,
) -> Result<StatusCode, ApiFailure> {
    accept(&state, &client, &req.invitation, req.password).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sets an invited teacher's password if the invitation is known, unused and not expired
/// (the API route and the invitation page both come here). Every try is counted as a wrong
/// code up front and given back when the invitation is real.
pub(crate) async fn accept(
    state: &AppState,
    client: &ClientAddr,
    invitation: &str,
    password: String,
) -> Result<(), ApiFailure> {
    check_password(&password).map_err(|e| ApiFailure::BadRequest(format!("{e}.")))?;
    let attempt = state.limits.attempt(client.0).await.map_err(refusal)?;
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| ApiFailure::Internal(e.into()))??;
    let address = client.0.map(|ip| ip.to_string());
    match state
        .store
        .accept_invitation(
            &secret_digest(invitation.trim()),
            &hash,
            now_ms(),
            address.as_deref(),
        )
        .await?
    {
        Accepted::Unknown => Err(ApiFailure::NotFound),
        known => {
            state.limits.not_a_guess(attempt).await.map_err(refusal)?;
            match known {
                Accepted::Used => Err(ApiFailure::InvitationUsed),
                Accepted::Expired => Err(ApiFailure::InvitationExpired),
                _ => Ok(()),
            }
        }
    }
}

fn refusal(r: Refusal) -> ApiFailure {
    match r {
        Refusal::TooFast { wait, .. } => ApiFailure::RateLimited(crate::limiter::retry_secs(wait)),
        Refusal::Quota | Refusal::Unavailable => ApiFailure::Unavailable,
    }
}

/// A hash no password matches, checked when the email is unknown so that an unknown
/// address takes as long as a wrong password.
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash_password("classchat: no such teacher").unwrap_or_default());

/// `email:password` from `Authorization: Basic …`.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let b64 = v
        .strip_prefix("Basic ")
        .or_else(|| v.strip_prefix("basic "))?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let raw = String::from_utf8(raw).ok()?;
    let (email, password) = raw.split_once(':')?;
    Some((email.to_owned(), password.to_owned()))
}

/// Makes a personal access token: with HTTP Basic (a teacher's email and password) for
/// that teacher, or with a token for its owner. The token is shown once.
#[utoipa::path(post, path = "/api/v1/admin/tokens", tag = "teachers",
    request_body = CreateToken,
    responses((status = 201, body = NewTokenView), (status = 401, body = ErrorBody)),
    security(("password" = []), ("token" = [])))]
pub(super) async fn create_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    mut parts: axum::http::request::Parts,
    ApiJson(req): ApiJson<CreateToken>,
) -> Result<(StatusCode, ApiJson<NewTokenView>), ApiFailure> {
    let name = text("name", &req.name, 100)?;
    let who = match basic_credentials(&headers) {
        Some((email, password)) => password_caller(&state, &mut parts, email, password).await?,
        None => {
            use axum::extract::FromRequestParts;
            ApiCaller::from_request_parts(&mut parts, &state).await?
        }
    };
    let t = new_token();
    let id = new_id('k');
    let actor = who.caller.actor();
    state
        .store
        .create_token(
            &id,
            &t.digest,
            &t.prefix,
            &name,
            who.caller.teacher_id(),
            who.audit(&actor),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(NewTokenView { id, token: t.token }),
    ))
}

/// A teacher signing in with email and password (per-address attempt limits apply).
async fn password_caller(
    state: &AppState,
    parts: &mut axum::http::request::Parts,
    email: String,
    password: String,
) -> Result<ApiCaller, ApiFailure> {
    use axum::extract::FromRequestParts;
    let Ok(client) = ClientAddr::from_request_parts(parts, state).await;
    let attempt = state.limits.attempt(client.0).await.map_err(refusal)?;
    let login = match normalize_email(&email) {
        Ok(e) => state.store.teacher_login(&e).await?,
        Err(_) => None,
    };
    let hash = login
        .as_ref()
        .and_then(|l| l.password_hash.clone())
        .unwrap_or_else(|| DUMMY_HASH.clone());
    let ok = tokio::task::spawn_blocking(move || verify_password(&hash, &password))
        .await
        .unwrap_or(false);
    let Some(login) = login.filter(|l| ok && l.password_hash.is_some()) else {
        return Err(ApiFailure::Unauthorized("Wrong email address or password."));
    };
    state.limits.not_a_guess(attempt).await.map_err(refusal)?;
    if login.disabled != 0 {
        return Err(ApiFailure::Unauthorized(
            "This teacher account is disabled.",
        ));
    }
    Ok(ApiCaller {
        caller: Caller::Teacher {
            id: login.id,
            email: login.email,
            token_id: String::new(),
        },
        address: client_address(parts, state).await,
    })
}

/// The caller's own tokens in force (never the tokens themselves).
#[utoipa::path(get, path = "/api/v1/admin/tokens", tag = "teachers",
    responses((status = 200, body = [TokenView]), (status = 401, body = ErrorBody)),
    security(("token" = [])))]
pub(super) async fn list_tokens(
    State(state): State<AppState>,
    who: ApiCaller,
) -> Result<ApiJson<Vec<TokenView>>, ApiFailure> {
    let list = state.store.tokens(who.caller.teacher_id()).await?;
    Ok(ApiJson(list.into_iter().map(Into::into).collect()))
}

/// Revokes one of the caller's own tokens (the one in use, too).
#[utoipa::path(delete, path = "/api/v1/admin/tokens/{id}", tag = "teachers",
    params(("id" = String, Path, description = "The token's id")),
    responses((status = 204), (status = 404, body = ErrorBody)),
    security(("token" = [])))]
pub(super) async fn delete_token(
    State(state): State<AppState>,
    who: ApiCaller,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<StatusCode, ApiFailure> {
    let actor = who.caller.actor();
    if state
        .store
        .revoke_token(&id, who.caller.teacher_id(), who.audit(&actor))
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiFailure::NotFound)
    }
}

/// The audit log, oldest first: every line for the administrator; a class's lines for
/// its owners. `format=csv` exports it for a spreadsheet.
#[utoipa::path(get, path = "/api/v1/admin/audit", tag = "teachers",
    params(AuditQuery),
    responses((status = 200, body = [AuditView]),
        (status = 200, content_type = "text/csv", description = "with format=csv: id,at,actor,action,class_id,detail,address"),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("token" = [])))]
pub(super) async fn read_audit(
    State(state): State<AppState>,
    who: ApiCaller,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Response, ApiFailure> {
    let limit = q.limit.unwrap_or(200).clamp(1, 1000);
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => return Err(ApiFailure::BadRequest("format is json or csv.".into())),
    };
    if !who.caller.is_administrator() {
        let Some(class_id) = q.class_id.as_deref() else {
            return Err(ApiFailure::Forbidden(
                "Name a class you own: ?class_id=…".into(),
            ));
        };
        super::access(&state, who.clone(), class_id)
            .await?
            .require(Need::Audit)?;
    }
    let lines = state
        .store
        .audit_lines(q.class_id.as_deref(), limit)
        .await?;
    if !csv {
        let views: Vec<AuditView> = lines.into_iter().map(Into::into).collect();
        return Ok(ApiJson(views).into_response());
    }
    let mut out = String::from("id,at,actor,action,class_id,detail,address\r\n");
    for l in lines {
        let at = jiff::Timestamp::from_millisecond(l.at_ms)
            .map(|t| t.to_string())
            .unwrap_or_default();
        let cells = [
            l.id.to_string(),
            at,
            l.actor,
            l.action,
            l.class_id.unwrap_or_default(),
            l.detail,
            l.address.unwrap_or_default(),
        ];
        let row: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
        out.push_str(&row.join(","));
        out.push_str("\r\n");
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"classchat-audit.csv\"",
            ),
        ],
        out,
    )
        .into_response())
}
