//! Classes made in the store, their members, activities and usage. A change is live on
//! every replica for the next sign-in and message: the store call that makes it (with its
//! audit line) is followed by [`classes_changed`].

use std::collections::HashMap;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::conversations::VisibilityName;
use super::models::check_model;
use super::{ActivityAccess, ApiCaller, ApiFailure, ApiJson, ApiQuery, ClassAccess, ErrorBody};
use crate::admin::csv_cell;
use crate::basics::now_ms;
use crate::classes::{check_starters, generate_code};
use crate::config::access_windows::{AccessWindows, Openness, PeriodSpec, rfc3339};
use crate::state::AppState;
use crate::store::teachers::{ActivityRecord, ClassRecord};
use crate::sync::classes_changed;
use crate::teachers::class_fields::MAX_KEEP_DAYS;
use crate::teachers::{Need, Role, new_id};

const MAX_TITLE: usize = 200;
const MAX_GREETING: usize = 2_000;
const MAX_PROMPT: usize = 20_000;
const MAX_MODEL: usize = 200;
const MAX_RATE: i64 = 100_000;

/// `Some(None)` for an explicit `null` (clear the field), `None` when absent (keep it).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A class's settings: a new class's (`POST`: `title` is required; what is unset takes the
/// server's setting) or a change (`PATCH`: absent fields stay, `null` clears a field back to
/// the server's setting).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ClassFields {
    pub title: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub greeting: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub system_prompt: Option<Option<String>>,
    pub starters: Option<Vec<String>>,
    /// An Open WebUI model id (`classchat check` lists them); unset: OPEN_WEBUI_MODEL.
    #[serde(default, deserialize_with = "present")]
    pub model: Option<Option<String>>,
    /// An IANA time zone, e.g. Asia/Taipei: the time line the assistant gets, and when the
    /// daily quota starts again. Unset: TIMEZONE.
    #[serde(default, deserialize_with = "present")]
    pub time_zone: Option<Option<String>>,
    /// Each student's messages per minute.
    #[serde(default, deserialize_with = "present")]
    pub messages_per_minute: Option<Option<i64>>,
    /// The whole class's messages per minute.
    #[serde(default, deserialize_with = "present")]
    pub class_messages_per_minute: Option<Option<i64>>,
    /// Messages per day for the whole class.
    #[serde(default, deserialize_with = "present")]
    pub daily_quota: Option<Option<i64>>,
    /// Widget token lifetime in seconds (at least 60).
    #[serde(default, deserialize_with = "present")]
    pub token_ttl_secs: Option<Option<i64>>,
    /// Who can read the class's conversations (the owner's and the administrator's to set);
    /// applies to messages sent from now on.
    #[serde(default, deserialize_with = "super::conversations::strict_some")]
    #[schema(value_type = Option<VisibilityName>)]
    pub visibility: Option<classchat_shared::Visibility>,
    /// Replaces every period; `[]` removes them.
    pub windows: Option<Vec<PeriodSpec>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub course_start: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub course_end: Option<Option<String>>,
    /// Days the class's stored conversations (and their flags) are kept; 0: until erased;
    /// unset: KEEP_CONVERSATIONS_DAYS. The owner's and the administrator's to set.
    #[serde(default, deserialize_with = "present")]
    pub keep_conversations_days: Option<Option<i64>>,
    /// Days its usage rows are kept (class totals stay); unset: KEEP_USAGE_DAYS.
    #[serde(default, deserialize_with = "present")]
    pub keep_usage_days: Option<Option<i64>>,
    /// Days its sessions (with the names students typed) are kept; unset: KEEP_SESSIONS_DAYS.
    #[serde(default, deserialize_with = "present")]
    pub keep_sessions_days: Option<Option<i64>>,
}

impl ClassFields {
    /// Whether this change sets a retention other than the class's: how long students'
    /// words are kept is decided by whoever decides whether they are kept.
    fn changes_retention(&self, c: &ClassRecord) -> bool {
        [
            (self.keep_conversations_days, c.keep_conversations_days),
            (self.keep_usage_days, c.keep_usage_days),
            (self.keep_sessions_days, c.keep_sessions_days),
        ]
        .iter()
        .any(|(new, old)| new.is_some_and(|n| n != *old))
    }

    /// Gives `c` the fields given here (each field named once) and checks the result; the
    /// answer names the given fields, in this order, for the audit line.
    fn apply_to(self, c: &mut ClassRecord) -> Result<String, ApiFailure> {
        let mut given: Vec<(&str, bool)> = Vec::new();
        macro_rules! apply {
            ($($field:ident),*) => {$(
                given.push((stringify!($field), self.$field.is_some()));
                if let Some(v) = self.$field {
                    c.$field = v;
                }
            )*};
        }
        apply!(
            title,
            greeting,
            system_prompt,
            starters,
            model,
            time_zone,
            messages_per_minute,
            class_messages_per_minute,
            daily_quota,
            token_ttl_secs,
            visibility,
            windows,
            course_start,
            course_end,
            keep_conversations_days,
            keep_usage_days,
            keep_sessions_days
        );
        check_class(c)?;
        Ok(changed_fields(&given))
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ClassView {
    pub id: String,
    pub title: String,
    pub greeting: Option<String>,
    pub system_prompt: Option<String>,
    pub starters: Vec<String>,
    pub model: Option<String>,
    pub time_zone: Option<String>,
    pub messages_per_minute: Option<i64>,
    pub class_messages_per_minute: Option<i64>,
    pub daily_quota: Option<i64>,
    pub token_ttl_secs: Option<i64>,
    #[schema(value_type = VisibilityName)]
    pub visibility: classchat_shared::Visibility,
    /// Weekly access windows (each day named, times as HH:MM); empty: none.
    pub windows: Vec<PeriodSpec>,
    pub course_start: Option<String>,
    pub course_end: Option<String>,
    pub keep_conversations_days: Option<i64>,
    pub keep_usage_days: Option<i64>,
    pub keep_sessions_days: Option<i64>,
    /// Whether students may sign in and chat now (inside the windows).
    pub open_now: bool,
    /// When a closed class opens next (RFC 3339, the class's offset); absent when open,
    /// or when the course has ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opens_at: Option<String>,
    /// The caller's role; absent for the administrator.
    pub role: Option<RoleName>,
    pub activities: Vec<ActivityView>,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// What was saved but could not be checked (a model, while Open WebUI's list cannot
    /// be had); absent when there is nothing to say.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ActivityView {
    pub id: String,
    pub class_id: String,
    pub title: String,
    pub greeting: Option<String>,
    pub system_prompt: Option<String>,
    /// Absent: the class's starters.
    pub starters: Option<Vec<String>>,
    pub model: Option<String>,
    pub paused: bool,
    /// What was saved but could not be checked; absent when there is nothing to say.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl From<&ActivityRecord> for ActivityView {
    fn from(a: &ActivityRecord) -> Self {
        Self {
            id: a.id.clone(),
            class_id: a.class_id.clone(),
            title: a.title.clone(),
            greeting: a.greeting.clone(),
            system_prompt: a.system_prompt.clone(),
            starters: a.starters.clone(),
            model: a.model.clone(),
            paused: a.paused,
            warnings: Vec::new(),
        }
    }
}

/// A new activity: its own title and, where given, its own prompt, greeting, starters
/// and model (unset: the class's).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateActivity {
    pub title: String,
    pub greeting: Option<String>,
    pub system_prompt: Option<String>,
    pub starters: Option<Vec<String>>,
    pub model: Option<String>,
    #[serde(default)]
    pub paused: bool,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct UpdateActivity {
    pub title: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub greeting: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub system_prompt: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub starters: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "present")]
    pub model: Option<Option<String>>,
    /// A paused activity refuses sign-ins and messages; the class's others carry on.
    pub paused: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct NewActivity {
    pub id: String,
    /// The activity's access code: shown here and on rotation only.
    pub code: String,
    /// What was saved but could not be checked; absent when there is nothing to say.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct NewCode {
    /// The new access code; the old one (and its sessions) stop at once.
    pub code: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PutMember {
    pub role: RoleName,
}

/// A member's role: `owner` (everything), `co_teacher` (everything but deleting the class
/// and changing members), `assistant` (reads; changes nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum RoleName {
    Owner,
    CoTeacher,
    Assistant,
}

impl From<RoleName> for Role {
    fn from(r: RoleName) -> Self {
        match r {
            RoleName::Owner => Self::Owner,
            RoleName::CoTeacher => Self::CoTeacher,
            RoleName::Assistant => Self::Assistant,
        }
    }
}

impl From<Role> for RoleName {
    fn from(r: Role) -> Self {
        match r {
            Role::Owner => Self::Owner,
            Role::CoTeacher => Self::CoTeacher,
            Role::Assistant => Self::Assistant,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct MemberView {
    pub teacher_id: String,
    pub email: String,
    pub name: String,
    pub role: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct UsageRange {
    /// First day (YYYY-MM-DD, in the class's time zone); default: six days before `to`.
    pub from: Option<String>,
    /// Last day, included; default: today.
    pub to: Option<String>,
    /// `csv`: every usage row of the range, one a line, with its activity; default JSON
    /// (the totals and each activity's share).
    pub format: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct UsageView {
    pub class_id: String,
    pub from: String,
    pub to: String,
    pub messages: i64,
    pub tokens: i64,
    pub errors: i64,
    /// The same split by the activity each session signed in to; they add up to the
    /// totals. The class's own code (no activity) has no `activity_id`.
    pub activities: Vec<ActivityUsageView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ActivityUsageView {
    /// Absent: sessions signed in with the class's own code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activity_id: Option<String>,
    /// The activity's title now (absent for a deleted activity or the class's own code).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub messages: i64,
    pub tokens: i64,
    pub errors: i64,
}

/// The CSV export's columns.
const USAGE_CSV_HEADER: &str = "time,class_id,activity_id,activity,session_id,display_name,conversation_id,model,prompt_tokens,completion_tokens,tokens_estimated,first_token_ms,total_ms,outcome,error_code\r\n";
/// The longest range a request may cover.
const MAX_USAGE_DAYS: i64 = 400;

fn bad(m: impl Into<String>) -> ApiFailure {
    ApiFailure::BadRequest(m.into())
}

/// Trimmed text of at most `max` characters; empty is refused for required fields and
/// means "unset" otherwise.
fn text(
    field: &str,
    v: Option<String>,
    max: usize,
    required: bool,
) -> Result<Option<String>, ApiFailure> {
    let v = v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    match &v {
        None if required => Err(bad(format!("{field} must not be empty."))),
        Some(s) if s.chars().count() > max => {
            Err(bad(format!("{field} is longer than {max} characters.")))
        }
        _ => Ok(v),
    }
}

fn rate(field: &str, v: Option<i64>, min: i64) -> Result<Option<i64>, ApiFailure> {
    match v {
        Some(n) if !(min..=MAX_RATE).contains(&n) => Err(bad(format!(
            "{field} must be between {min} and {MAX_RATE}."
        ))),
        _ => Ok(v),
    }
}

fn time_zone(v: Option<String>) -> Result<Option<String>, ApiFailure> {
    let v = text("time_zone", v, 64, false)?;
    if let Some(tz) = &v
        && jiff::tz::TimeZone::get(tz).is_err()
    {
        return Err(bad(format!(
            "time_zone {tz:?} is not a known time zone (use an IANA name such as Asia/Taipei)."
        )));
    }
    Ok(v)
}

fn ttl(v: Option<i64>) -> Result<Option<i64>, ApiFailure> {
    match v {
        Some(s) if !(60..=86_400 * 30).contains(&s) => Err(bad(
            "token_ttl_secs must be between 60 and 2592000 (30 days).",
        )),
        _ => Ok(v),
    }
}

fn starters(v: Vec<String>) -> Result<Vec<String>, ApiFailure> {
    check_starters(&v).map_err(|p| bad(format!("starters: {p}.")))
}

/// Checks every field of a class as it will be stored.
fn check_class(c: &mut ClassRecord) -> Result<(), ApiFailure> {
    c.title = text("title", Some(c.title.clone()), MAX_TITLE, true)?.unwrap_or_default();
    c.greeting = text("greeting", c.greeting.take(), MAX_GREETING, false)?;
    c.system_prompt = text("system_prompt", c.system_prompt.take(), MAX_PROMPT, false)?;
    c.model = text("model", c.model.take(), MAX_MODEL, false)?;
    c.starters = starters(std::mem::take(&mut c.starters))?;
    c.time_zone = time_zone(c.time_zone.take())?;
    c.messages_per_minute = rate("messages_per_minute", c.messages_per_minute, 1)?;
    c.class_messages_per_minute =
        rate("class_messages_per_minute", c.class_messages_per_minute, 1)?;
    c.daily_quota = rate("daily_quota", c.daily_quota, 0)?;
    c.token_ttl_secs = ttl(c.token_ttl_secs)?;
    for (field, v) in [
        ("keep_conversations_days", c.keep_conversations_days),
        ("keep_usage_days", c.keep_usage_days),
        ("keep_sessions_days", c.keep_sessions_days),
    ] {
        if v.is_some_and(|d| !(0..=MAX_KEEP_DAYS).contains(&d)) {
            return Err(bad(format!(
                "{field} must be between 0 (until erased) and {MAX_KEEP_DAYS}."
            )));
        }
    }
    let w = AccessWindows::parse(
        &c.windows,
        c.course_start.as_deref(),
        c.course_end.as_deref(),
    )
    .map_err(|e| ApiFailure::Invalid {
        code: e.code(),
        message: format!("{e}."),
    })?;
    c.windows = w.specs();
    c.course_start = w.course_start.map(|d| d.to_string());
    c.course_end = w.course_end.map(|d| d.to_string());
    Ok(())
}

async fn view(
    state: &AppState,
    class: ClassRecord,
    role: Option<Role>,
) -> Result<ClassView, ApiFailure> {
    let activities = state.store.activities_of(&class.id).await?;
    let resolved = state.classes.resolve(&class);
    let opens_at = match resolved
        .windows
        .at(jiff::Timestamp::now(), &resolved.time_zone)
    {
        Openness::Open => None,
        Openness::Closed { opens_at } => Some(opens_at.as_ref().map(rfc3339)),
    };
    Ok(ClassView {
        id: class.id,
        title: class.title,
        greeting: class.greeting,
        system_prompt: class.system_prompt,
        starters: class.starters,
        model: class.model,
        time_zone: class.time_zone,
        messages_per_minute: class.messages_per_minute,
        class_messages_per_minute: class.class_messages_per_minute,
        daily_quota: class.daily_quota,
        token_ttl_secs: class.token_ttl_secs,
        visibility: class.visibility,
        windows: class.windows,
        course_start: class.course_start,
        course_end: class.course_end,
        keep_conversations_days: class.keep_conversations_days,
        keep_usage_days: class.keep_usage_days,
        keep_sessions_days: class.keep_sessions_days,
        open_now: opens_at.is_none(),
        opens_at: opens_at.flatten(),
        role: role.map(Into::into),
        activities: activities.iter().map(Into::into).collect(),
        created_ms: class.created_ms,
        updated_ms: class.updated_ms,
        warnings: Vec::new(),
    })
}

/// The classes the caller is a member of (every class, for the administrator).
#[utoipa::path(get, path = "/api/v1/admin/classes", tag = "classes",
    responses((status = 200, body = [ClassView]), (status = 401, body = ErrorBody)),
    security(("token" = [])))]
pub(super) async fn list_classes(
    State(state): State<AppState>,
    who: ApiCaller,
) -> Result<ApiJson<Vec<ClassView>>, ApiFailure> {
    let teacher = who.caller.teacher_id();
    let mut out = Vec::new();
    for c in state.store.classes_of(teacher).await? {
        let role = match teacher {
            Some(t) => state.store.member_role(&c.id, t).await?,
            None => None,
        };
        out.push(view(&state, c, role).await?);
    }
    Ok(ApiJson(out))
}

/// Creates a class; a teacher who creates one becomes its owner.
#[utoipa::path(post, path = "/api/v1/admin/classes", tag = "classes",
    request_body = ClassFields,
    responses((status = 201, body = ClassView), (status = 400, body = ErrorBody)),
    security(("token" = [])))]
pub(super) async fn create_class(
    State(state): State<AppState>,
    who: ApiCaller,
    ApiJson(req): ApiJson<ClassFields>,
) -> Result<(StatusCode, ApiJson<ClassView>), ApiFailure> {
    let now = now_ms();
    let mut id = new_id('c');
    while state.classes.current().get(&id).is_some() {
        id = new_id('c');
    }
    let mut c = ClassRecord {
        id,
        created_ms: now,
        updated_ms: now,
        ..ClassRecord::default()
    };
    req.apply_to(&mut c)?;
    let warnings = check_model(&state, "model", c.model.as_deref()).await?;
    let actor = who.caller.actor();
    let owner = who.caller.teacher_id();
    state
        .store
        .create_class(&c, owner, who.audit(&actor))
        .await?;
    classes_changed(&state).await;
    let role = owner.map(|_| Role::Owner);
    let mut v = view(&state, c, role).await?;
    v.warnings.extend(warnings);
    Ok((StatusCode::CREATED, ApiJson(v)))
}

/// One class with its activities.
#[utoipa::path(get, path = "/api/v1/admin/classes/{id}", tag = "classes",
    params(("id" = String, Path, description = "The class's id")),
    responses((status = 200, body = ClassView), (status = 404, body = ErrorBody)),
    security(("token" = [])))]
pub(super) async fn get_class(
    State(state): State<AppState>,
    access: ClassAccess,
) -> Result<ApiJson<ClassView>, ApiFailure> {
    access.require(Need::Read)?;
    Ok(ApiJson(view(&state, access.class, access.role).await?))
}

/// Names the fields a change touches, for the audit line (never their values: a prompt
/// may be long, and the log is for who and when).
fn changed_fields(pairs: &[(&str, bool)]) -> String {
    let names: Vec<&str> = pairs.iter().filter(|(_, c)| *c).map(|(n, _)| *n).collect();
    if names.is_empty() {
        "nothing".into()
    } else {
        names.join(", ")
    }
}

/// Changes a class's settings; live for the next sign-in and message on every replica.
#[utoipa::path(patch, path = "/api/v1/admin/classes/{id}", tag = "classes",
    params(("id" = String, Path, description = "The class's id")),
    request_body = ClassFields,
    responses((status = 200, body = ClassView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("token" = [])))]
pub(super) async fn update_class(
    State(state): State<AppState>,
    access: ClassAccess,
    ApiJson(req): ApiJson<ClassFields>,
) -> Result<ApiJson<ClassView>, ApiFailure> {
    access.require(Need::Edit)?;
    if req.visibility.is_some_and(|v| v != access.class.visibility)
        || req.changes_retention(&access.class)
    {
        access.require(Need::Visibility)?;
    }
    // Only a model being set is checked: a class whose model Open WebUI has since dropped
    // can still have its title changed.
    let model_given = req.model.is_some();
    let mut c = access.class.clone();
    let detail = req.apply_to(&mut c)?;
    let warnings = match model_given {
        true => check_model(&state, "model", c.model.as_deref()).await?,
        false => None,
    };
    let actor = access.who.caller.actor();
    if !state
        .store
        .update_class(&c, format!("changed {detail}"), access.who.audit(&actor))
        .await?
    {
        return Err(ApiFailure::NotFound);
    }
    classes_changed(&state).await;
    let c = state
        .store
        .class(&c.id)
        .await?
        .ok_or(ApiFailure::NotFound)?;
    let mut v = view(&state, c, access.role).await?;
    v.warnings.extend(warnings);
    Ok(ApiJson(v))
}

/// Deletes a class, its members and activities (owners and the administrator only).
#[utoipa::path(delete, path = "/api/v1/admin/classes/{id}", tag = "classes",
    params(("id" = String, Path, description = "The class's id")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("token" = [])))]
pub(super) async fn delete_class(
    State(state): State<AppState>,
    access: ClassAccess,
) -> Result<StatusCode, ApiFailure> {
    access.require(Need::Delete)?;
    let actor = access.who.caller.actor();
    if !state
        .store
        .delete_class(&access.class.id, access.who.audit(&actor))
        .await?
    {
        return Err(ApiFailure::NotFound);
    }
    classes_changed(&state).await;
    Ok(StatusCode::NO_CONTENT)
}

/// The class's members and their roles.
#[utoipa::path(get, path = "/api/v1/admin/classes/{id}/members", tag = "classes",
    params(("id" = String, Path, description = "The class's id")),
    responses((status = 200, body = [MemberView]), (status = 404, body = ErrorBody)),
    security(("token" = [])))]
pub(super) async fn list_members(
    State(state): State<AppState>,
    access: ClassAccess,
) -> Result<ApiJson<Vec<MemberView>>, ApiFailure> {
    access.require(Need::Read)?;
    let list = state.store.members(&access.class.id).await?;
    Ok(ApiJson(
        list.into_iter()
            .map(|m| MemberView {
                teacher_id: m.teacher_id,
                email: m.email,
                name: m.name,
                role: m.role,
            })
            .collect(),
    ))
}

/// Adds a teacher to the class or changes their role (owners and the administrator).
#[utoipa::path(put, path = "/api/v1/admin/classes/{id}/members/{teacher_id}", tag = "classes",
    params(("id" = String, Path, description = "The class's id"),
        ("teacher_id" = String, Path, description = "The teacher's id")),
    request_body = PutMember,
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("token" = [])))]
pub(super) async fn put_member(
    State(state): State<AppState>,
    access: ClassAccess,
    axum::extract::Path(ids): axum::extract::Path<(String, String)>,
    ApiJson(req): ApiJson<PutMember>,
) -> Result<StatusCode, ApiFailure> {
    access.require(Need::Members)?;
    let (_, teacher_id) = ids;
    let role = Role::from(req.role);
    if state.store.teacher(&teacher_id).await?.is_none() {
        return Err(ApiFailure::NotFound);
    }
    if access.who.caller.teacher_id() == Some(teacher_id.as_str()) && role != Role::Owner {
        return Err(bad(
            "You cannot lower your own role; ask another owner or the administrator.",
        ));
    }
    let actor = access.who.caller.actor();
    state
        .store
        .put_member(
            &access.class.id,
            &teacher_id,
            role,
            access.who.audit(&actor),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes a teacher from the class (owners and the administrator).
#[utoipa::path(delete, path = "/api/v1/admin/classes/{id}/members/{teacher_id}", tag = "classes",
    params(("id" = String, Path, description = "The class's id"),
        ("teacher_id" = String, Path, description = "The teacher's id")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("token" = [])))]
pub(super) async fn delete_member(
    State(state): State<AppState>,
    access: ClassAccess,
    axum::extract::Path(ids): axum::extract::Path<(String, String)>,
) -> Result<StatusCode, ApiFailure> {
    access.require(Need::Members)?;
    let (_, teacher_id) = ids;
    if access.who.caller.teacher_id() == Some(teacher_id.as_str()) {
        return Err(bad(
            "You cannot remove yourself; ask another owner or the administrator.",
        ));
    }
    let actor = access.who.caller.actor();
    if state
        .store
        .delete_member(&access.class.id, &teacher_id, access.who.audit(&actor))
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiFailure::NotFound)
    }
}

/// A fresh code no class or activity uses, and its stored (digest) form.
fn fresh_code(state: &AppState) -> (String, String) {
    loop {
        let code = generate_code();
        if state.classes.current().find_by_code(&code).is_none() {
            let stored = state.classes.code_keys().store(&code);
            return (code, stored);
        }
    }
}

/// Adds an activity with its own access code (shown once here).
#[utoipa::path(post, path = "/api/v1/admin/classes/{id}/activities", tag = "classes",
    params(("id" = String, Path, description = "The class's id")),
    request_body = CreateActivity,
    responses((status = 201, body = NewActivity), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("token" = [])))]
pub(super) async fn create_activity(
    State(state): State<AppState>,
    access: ClassAccess,
    ApiJson(req): ApiJson<CreateActivity>,
) -> Result<(StatusCode, ApiJson<NewActivity>), ApiFailure> {
    access.require(Need::Edit)?;
    let now = now_ms();
    let (code, code_digest) = fresh_code(&state);
    let r = ActivityRecord {
        id: new_id('a'),
        class_id: access.class.id.clone(),
        title: text("title", Some(req.title), MAX_TITLE, true)?.unwrap_or_default(),
        greeting: text("greeting", req.greeting, MAX_GREETING, false)?,
        system_prompt: text("system_prompt", req.system_prompt, MAX_PROMPT, false)?,
        starters: req.starters.map(starters).transpose()?,
        model: text("model", req.model, MAX_MODEL, false)?,
        code_digest,
        code_generation: 0,
        paused: req.paused,
        created_ms: now,
        updated_ms: now,
    };
    let warnings = check_model(&state, "model", r.model.as_deref()).await?;
    let actor = access.who.caller.actor();
    state
        .store
        .create_activity(&r, access.who.audit(&actor))
        .await?;
    classes_changed(&state).await;
    Ok((
        StatusCode::CREATED,
        ApiJson(NewActivity {
            id: r.id,
            code,
            warnings: warnings.into_iter().collect(),
        }),
    ))
}

/// Changes an activity, or pauses it (`{"paused": true}`) and lets it go on again.
#[utoipa::path(patch, path = "/api/v1/admin/activities/{id}", tag = "classes",
    params(("id" = String, Path, description = "The activity's id")),
    request_body = UpdateActivity,
    responses((status = 200, body = ActivityView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("token" = [])))]
pub(super) async fn update_activity(
    State(state): State<AppState>,
    access: ActivityAccess,
    ApiJson(req): ApiJson<UpdateActivity>,
) -> Result<ApiJson<ActivityView>, ApiFailure> {
    access.class.require(Need::Edit)?;
    let mut r = access.activity.clone();
    let detail = changed_fields(&[
        ("title", req.title.is_some()),
        ("greeting", req.greeting.is_some()),
        ("system_prompt", req.system_prompt.is_some()),
        ("starters", req.starters.is_some()),
        ("model", req.model.is_some()),
    ]);
    if let Some(v) = req.title {
        r.title = text("title", Some(v), MAX_TITLE, true)?.unwrap_or_default();
    }
    if let Some(v) = req.greeting {
        r.greeting = text("greeting", v, MAX_GREETING, false)?;
    }
    if let Some(v) = req.system_prompt {
        r.system_prompt = text("system_prompt", v, MAX_PROMPT, false)?;
    }
    if let Some(v) = req.starters {
        r.starters = v.map(starters).transpose()?;
    }
    let mut warnings = None;
    if let Some(v) = req.model {
        r.model = text("model", v, MAX_MODEL, false)?;
        warnings = check_model(&state, "model", r.model.as_deref()).await?;
    }
    let detail = match req.paused {
        Some(p) if p != r.paused => {
            r.paused = p;
            let what = if p { "paused" } else { "resumed" };
            format!("activity {}: {what}; changed {detail}", r.id)
        }
        _ => format!("activity {}: changed {detail}", r.id),
    };
    let who = &access.class.who;
    let actor = who.caller.actor();
    if !state
        .store
        .update_activity(&r, detail, who.audit(&actor))
        .await?
    {
        return Err(ApiFailure::NotFound);
    }
    classes_changed(&state).await;
    let mut v = ActivityView::from(&r);
    v.warnings.extend(warnings);
    Ok(ApiJson(v))
}

/// Gives an activity a new access code (shown once here); the old code and every
/// session signed in with it stop at once.
#[utoipa::path(post, path = "/api/v1/admin/activities/{id}/rotate", tag = "classes",
    params(("id" = String, Path, description = "The activity's id")),
    responses((status = 200, body = NewCode), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("token" = [])))]
pub(super) async fn rotate_activity_code(
    State(state): State<AppState>,
    access: ActivityAccess,
) -> Result<ApiJson<NewCode>, ApiFailure> {
    access.class.require(Need::Edit)?;
    let (code, digest) = fresh_code(&state);
    let who = &access.class.who;
    let actor = who.caller.actor();
    if !state
        .store
        .rotate_activity_code(
            &access.activity.id,
            &access.activity.class_id,
            &digest,
            who.audit(&actor),
        )
        .await?
    {
        return Err(ApiFailure::NotFound);
    }
    classes_changed(&state).await;
    Ok(ApiJson(NewCode { code }))
}

/// The class's messages, tokens and upstream errors over whole days in its time zone, in
/// all and per activity; `format=csv` exports the rows themselves, with their activity.
#[utoipa::path(get, path = "/api/v1/admin/classes/{id}/usage", tag = "classes",
    params(("id" = String, Path, description = "The class's id"), UsageRange),
    responses((status = 200, body = UsageView),
        (status = 200, content_type = "text/csv", description = "with format=csv: time,class_id,activity_id,activity,session_id,display_name,conversation_id,model,prompt_tokens,completion_tokens,tokens_estimated,first_token_ms,total_ms,outcome,error_code"),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("token" = [])))]
pub(super) async fn class_usage(
    State(state): State<AppState>,
    access: ClassAccess,
    ApiQuery(range): ApiQuery<UsageRange>,
) -> Result<Response, ApiFailure> {
    access.require(Need::Read)?;
    let csv = match range.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => return Err(bad("format is json or csv.")),
    };
    let tz = state.classes.resolve(&access.class).time_zone;
    let day = |field: &str, v: &str| {
        v.parse::<jiff::civil::Date>()
            .map_err(|_| bad(format!("{field} is not a date (YYYY-MM-DD).")))
    };
    let to = match range.to.as_deref() {
        Some(v) => day("to", v)?,
        None => jiff::Zoned::now().with_time_zone(tz.clone()).date(),
    };
    let from = match range.from.as_deref() {
        Some(v) => day("from", v)?,
        None => to.checked_sub(jiff::Span::new().days(6)).unwrap_or(to),
    };
    if from > to {
        return Err(bad("from is after to."));
    }
    if from.until(to).map(|s| s.get_days() as i64).unwrap_or(0) >= MAX_USAGE_DAYS {
        return Err(bad(format!(
            "The range spans at most {MAX_USAGE_DAYS} days."
        )));
    }
    let start = |d: jiff::civil::Date| {
        d.to_zoned(tz.clone())
            .map(|z| z.timestamp().as_millisecond())
            .map_err(|_| bad("That date range is out of range."))
    };
    let end = to.tomorrow().map_err(|_| bad("to is out of range."))?;
    let (from_ms, to_ms) = (start(from)?, start(end)?);
    let titles: HashMap<String, String> = state
        .store
        .activities_of(&access.class.id)
        .await?
        .into_iter()
        .map(|a| (a.id, a.title))
        .collect();
    if csv {
        let name = format!("classchat-usage-{}-{from}-to-{to}.csv", access.class.id);
        return Ok(usage_csv(
            &state,
            access.class.id,
            titles,
            tz,
            from_ms,
            to_ms,
            &name,
        ));
    }
    let totals = state
        .store
        .class_usage(&access.class.id, from_ms, to_ms)
        .await?;
    let activities = state
        .store
        .class_usage_by_activity(&access.class.id, from_ms, to_ms)
        .await?
        .into_iter()
        .map(|a| ActivityUsageView {
            title: a
                .activity_id
                .as_ref()
                .and_then(|id| titles.get(id).cloned()),
            activity_id: a.activity_id,
            messages: a.messages,
            tokens: a.tokens,
            errors: a.errors,
        })
        .collect();
    Ok(ApiJson(UsageView {
        class_id: access.class.id,
        from: from.to_string(),
        to: to.to_string(),
        messages: totals.messages,
        tokens: totals.tokens,
        errors: totals.errors,
        activities,
    })
    .into_response())
}

/// The class's usage rows in `[from_ms, to_ms)` as CSV, read and sent page by page so a
/// long range never sits in memory whole. Cells a spreadsheet would run are defused.
fn usage_csv(
    state: &AppState,
    class_id: String,
    titles: HashMap<String, String>,
    tz: jiff::tz::TimeZone,
    from_ms: i64,
    to_ms: i64,
    name: &str,
) -> Response {
    let store = state.store.clone();
    let titles = std::sync::Arc::new(titles);
    let pages = futures::stream::unfold(Some(0i64), move |after| {
        let (store, class_id, tz, titles) =
            (store.clone(), class_id.clone(), tz.clone(), titles.clone());
        async move {
            let rows = match store
                .export_page(from_ms, to_ms, Some(&class_id), after?, 2000)
                .await
            {
                Ok(rows) if rows.is_empty() => return None,
                Ok(rows) => rows,
                Err(e) => {
                    tracing::error!(error = %e, "admin API: usage export failed mid-way");
                    return Some((Err(std::io::Error::other("export failed")), None));
                }
            };
            let last = rows.last().map(|r| r.id);
            let mut out = String::new();
            for r in rows {
                let time = jiff::Timestamp::from_millisecond(r.at_ms)
                    .map(|t| rfc3339(&t.to_zoned(tz.clone())))
                    .unwrap_or_default();
                let opt = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
                let activity = r.activity_id.as_ref().and_then(|id| titles.get(id));
                let cells = [
                    time,
                    csv_cell(&r.class_id),
                    csv_cell(r.activity_id.as_deref().unwrap_or("")),
                    csv_cell(activity.map_or("", String::as_str)),
                    csv_cell(&r.session_id),
                    csv_cell(r.display_name.as_deref().unwrap_or("")),
                    csv_cell(&r.conversation_id),
                    csv_cell(r.model.as_deref().unwrap_or("")),
                    opt(r.prompt_tokens),
                    opt(r.completion_tokens),
                    r.tokens_estimated.to_string(),
                    opt(r.first_token_ms),
                    r.total_ms.to_string(),
                    csv_cell(&r.outcome),
                    csv_cell(r.error_code.as_deref().unwrap_or("")),
                ];
                out.push_str(&cells.join(","));
                out.push_str("\r\n");
            }
            Some((Ok(bytes::Bytes::from(out)), last))
        }
    });
    let body =
        futures::stream::once(async { Ok(bytes::Bytes::from_static(USAGE_CSV_HEADER.as_bytes())) })
            .chain(pages);
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CACHE_CONTROL, "no-store".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        axum::body::Body::from_stream(body),
    )
        .into_response()
}
