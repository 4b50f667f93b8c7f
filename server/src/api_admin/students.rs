//! A class's students known by identity, for scripts: personal codes (make from names,
//! list, revoke, re-issue) and the allowance per student (read with who is close to it or
//! over it, set, reset one student). The same rules as the dashboard's page
//! (`admin::personal_codes`): reading needs any role, changing `Need::Edit`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiCaller, ApiFailure, ApiJson, ClassAccess, ErrorBody, access};
use crate::admin::personal_codes::{make_codes, reissue_code, revoke_code, watch_list};
use crate::personal_codes::{MAX_NAMES, NamesProblem, split_names};
use crate::state::AppState;
use crate::store::allowances::AllowanceRecord;
use crate::teachers::Need;

/// A personal code as listed: never the code.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct PersonalCodeView {
    pub id: String,
    pub name: String,
    pub created_at_ms: i64,
    /// When the current code was made (a re-issue moves it).
    pub issued_at_ms: i64,
    pub revoked_at_ms: Option<i64>,
}

/// Names to make codes for.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewCodes {
    /// One per student, each 1–64 characters (at most 200).
    pub names: Vec<String>,
}

/// A new code, shown only in this answer.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct MadeCode {
    pub id: String,
    pub name: String,
    pub code: String,
}

/// The codes just made.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct MadeCodes {
    pub codes: Vec<MadeCode>,
}

/// A class's allowance per student known by identity (0: no such limit).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SetAllowance {
    /// Messages per local day, 0–100,000.
    pub per_day: u32,
    /// Messages per week from Monday, 0–100,000.
    pub per_week: u32,
}

/// One student close to (80 % or more) or over the allowance.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct StudentUseView {
    /// `code:<personal code id>` or `lti:<user digest>`: what a reset names.
    pub student: String,
    /// The personal code's name; `null` for a student from the LMS.
    pub name: Option<String>,
    pub today: i64,
    pub this_week: i64,
    /// `close` or `over`.
    pub status: &'static str,
}

/// The allowance and who is close to it or over it now.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct AllowanceView {
    pub per_day: i64,
    pub per_week: i64,
    pub students: Vec<StudentUseView>,
}

/// One student to start afresh.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ResetStudent {
    pub student: String,
}

/// Lists a class's personal codes (never the codes themselves).
#[utoipa::path(get, path = "/api/v1/admin/classes/{id}/personal-codes", tag = "classes",
    params(("id" = String, Path, description = "The class's id")),
    responses((status = 200, body = [PersonalCodeView]), (status = 404, body = ErrorBody)),
    security(("token" = [])))]
pub(super) async fn list_personal_codes(
    State(state): State<AppState>,
    access: ClassAccess,
) -> Result<ApiJson<Vec<PersonalCodeView>>, ApiFailure> {
    access.require(Need::Read)?;
    let codes = state.store.personal_codes(&access.class.id).await?;
    Ok(ApiJson(
        codes
            .into_iter()
            .map(|c| PersonalCodeView {
                id: c.id,
                name: c.name,
                created_at_ms: c.created_ms,
                issued_at_ms: c.issued_ms,
                revoked_at_ms: c.revoked_ms,
            })
            .collect(),
    ))
}

/// Makes one personal code per name; the codes are in this answer only (only digests are
/// kept). A student signs in with one where a class code goes, under this name.
#[utoipa::path(post, path = "/api/v1/admin/classes/{id}/personal-codes", tag = "classes",
    params(("id" = String, Path, description = "The class's id")),
    request_body = NewCodes,
    responses((status = 201, body = MadeCodes), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("token" = [])))]
pub(super) async fn create_personal_codes(
    State(state): State<AppState>,
    access: ClassAccess,
    ApiJson(req): ApiJson<NewCodes>,
) -> Result<(StatusCode, ApiJson<MadeCodes>), ApiFailure> {
    access.require(Need::Edit)?;
    let joined = req.names.join("\n");
    let names = match split_names(&joined, |n| {
        crate::auth::clean_display_name(Some(n.to_owned()))
    }) {
        Ok(Ok(names)) if names.len() == req.names.len() => names,
        Ok(Ok(_)) | Ok(Err(NamesProblem::Empty)) => {
            return Err(ApiFailure::BadRequest(
                "names: give at least one, none empty or on several lines.".into(),
            ));
        }
        Ok(Err(NamesProblem::TooMany)) => {
            return Err(ApiFailure::BadRequest(format!(
                "names: at most {MAX_NAMES} at a time."
            )));
        }
        Err((n, _)) => {
            return Err(ApiFailure::BadRequest(format!(
                "names: name {n} is longer than 64 characters."
            )));
        }
    };
    let actor = access.who.caller.actor();
    let made = make_codes(&state, &access.class.id, names, access.who.audit(&actor)).await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(MadeCodes {
            codes: made
                .into_iter()
                .map(|(id, name, code)| MadeCode { id, name, code })
                .collect(),
        }),
    ))
}

/// The code `id` and the caller's right to change it (404 when they may not see it).
async fn code_access(
    state: &AppState,
    who: ApiCaller,
    id: &str,
) -> Result<
    (
        ClassAccess,
        crate::store::personal_codes::PersonalCodeRecord,
    ),
    ApiFailure,
> {
    let code = state
        .store
        .personal_code(id)
        .await?
        .ok_or(ApiFailure::NotFound)?;
    let access = access(state, who, &code.class_id).await?;
    access.require(Need::Edit)?;
    Ok((access, code))
}

/// Revokes one personal code: it no longer signs in, and its sessions end at once.
#[utoipa::path(post, path = "/api/v1/admin/personal-codes/{id}/revoke", tag = "classes",
    params(("id" = String, Path, description = "The personal code's id")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("token" = [])))]
pub(super) async fn revoke_personal_code(
    State(state): State<AppState>,
    who: ApiCaller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiFailure> {
    let (access, _) = code_access(&state, who, &id).await?;
    let actor = access.who.caller.actor();
    if !revoke_code(&state, &id, access.who.audit(&actor)).await? {
        return Err(ApiFailure::NotFound);
    }
    Ok(StatusCode::NO_CONTENT)
}

/// A new code for one student (the old one and its sessions stop; their allowance stays
/// theirs). The code is in this answer only.
#[utoipa::path(post, path = "/api/v1/admin/personal-codes/{id}/reissue", tag = "classes",
    params(("id" = String, Path, description = "The personal code's id")),
    responses((status = 200, body = MadeCode), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("token" = [])))]
pub(super) async fn reissue_personal_code(
    State(state): State<AppState>,
    who: ApiCaller,
    Path(id): Path<String>,
) -> Result<ApiJson<MadeCode>, ApiFailure> {
    let (access, record) = code_access(&state, who, &id).await?;
    let actor = access.who.caller.actor();
    let code = reissue_code(&state, &id, access.who.audit(&actor))
        .await?
        .ok_or(ApiFailure::NotFound)?;
    Ok(ApiJson(MadeCode {
        id,
        name: record.name,
        code,
    }))
}

async fn allowance_view(
    state: &AppState,
    access: &ClassAccess,
) -> Result<AllowanceView, ApiFailure> {
    let id = &access.class.id;
    let allowance = state.store.student_allowance(id).await?.unwrap_or_default();
    let codes = state.store.personal_codes(id).await?;
    let class = state.classes.resolve(&access.class);
    let watch = watch_list(state, &class, allowance, &codes).await?;
    Ok(AllowanceView {
        per_day: allowance.per_day,
        per_week: allowance.per_week,
        students: watch
            .into_iter()
            .map(|w| StudentUseView {
                student: w.student,
                name: w.name,
                today: w.day,
                this_week: w.week,
                status: if w.over { "over" } else { "close" },
            })
            .collect(),
    })
}

/// A class's allowance per student known by a personal code or an LTI launch, and who is
/// at 80 % or more of it today or this week. Class-code students are not counted here:
/// theirs stays per session.
#[utoipa::path(get, path = "/api/v1/admin/classes/{id}/allowance", tag = "classes",
    params(("id" = String, Path, description = "The class's id")),
    responses((status = 200, body = AllowanceView), (status = 404, body = ErrorBody)),
    security(("token" = [])))]
pub(super) async fn get_allowance(
    State(state): State<AppState>,
    access: ClassAccess,
) -> Result<ApiJson<AllowanceView>, ApiFailure> {
    access.require(Need::Read)?;
    Ok(ApiJson(allowance_view(&state, &access).await?))
}

/// Sets a class's allowance per student (from the next message).
#[utoipa::path(put, path = "/api/v1/admin/classes/{id}/allowance", tag = "classes",
    params(("id" = String, Path, description = "The class's id")),
    request_body = SetAllowance,
    responses((status = 200, body = AllowanceView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("token" = [])))]
pub(super) async fn put_allowance(
    State(state): State<AppState>,
    access: ClassAccess,
    ApiJson(req): ApiJson<SetAllowance>,
) -> Result<ApiJson<AllowanceView>, ApiFailure> {
    access.require(Need::Edit)?;
    if req.per_day > 100_000 || req.per_week > 100_000 {
        return Err(ApiFailure::BadRequest(
            "per_day and per_week: at most 100,000 (0: no limit).".into(),
        ));
    }
    let actor = access.who.caller.actor();
    let a = AllowanceRecord {
        per_day: i64::from(req.per_day),
        per_week: i64::from(req.per_week),
    };
    state
        .store
        .set_student_allowance(&access.class.id, a, access.who.audit(&actor))
        .await?;
    Ok(ApiJson(allowance_view(&state, &access).await?))
}

/// Starts one student's day and week afresh (written to the audit log).
#[utoipa::path(post, path = "/api/v1/admin/classes/{id}/allowance/reset", tag = "classes",
    params(("id" = String, Path, description = "The class's id")),
    request_body = ResetStudent,
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("token" = [])))]
pub(super) async fn reset_allowance(
    State(state): State<AppState>,
    access: ClassAccess,
    ApiJson(req): ApiJson<ResetStudent>,
) -> Result<StatusCode, ApiFailure> {
    access.require(Need::Edit)?;
    let actor = access.who.caller.actor();
    if !state
        .store
        .reset_student(&access.class.id, &req.student, access.who.audit(&actor))
        .await?
    {
        return Err(ApiFailure::NotFound);
    }
    Ok(StatusCode::NO_CONTENT)
}
