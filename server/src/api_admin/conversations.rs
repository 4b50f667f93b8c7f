//! A class's stored conversations (issue 23): its conversation visibility as the API
//! writes it, and the routes that read what `full` and `flagged` kept.
//!
//! Who reads: the administrator (every class, the classes file's too), and a class's
//! owners and co-teachers. An assistant (or anyone else) gets 404, as for a class they
//! cannot see: "members with the right role" reads as the roles that teach the class,
//! which the widget's notice ("your teacher") names to students. Every opening of a
//! conversation is logged before its text is sent; the administrator reads that log.

use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiCaller, ApiFailure, ApiJson, ApiQuery, ErrorBody};
use crate::basics::now_ms;
use crate::conversations::{MAX_SEARCH_CHARS, by_student, open_conversation};
use crate::state::AppState;
use crate::store::conversations::ReadRecord;
use crate::teachers::{Need, allows};
use classchat_shared::Visibility;

/// Who can read a class's conversations: `off` (nothing stored, the default), `flagged`
/// (only exchanges flagged for safety, with their context) or `full` (every exchange).
/// Students are told in the widget whenever it is not `off`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)] // The schema's shape; the fields carry `classchat_shared::Visibility`.
pub(super) enum VisibilityName {
    Off,
    Flagged,
    Full,
}

/// A visibility in a request: one of the three, or the request is refused (the wire type
/// reads an unknown value as `full`, which suits the widget, not a setting).
pub(super) fn strict<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Visibility, D::Error> {
    let s = String::deserialize(d)?;
    Visibility::parse(&s).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "visibility must be \"off\", \"flagged\" or \"full\", not {s:?}"
        ))
    })
}

/// [`strict`] for a field that may be absent.
pub(super) fn strict_some<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Visibility>, D::Error> {
    strict(d).map(Some)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ListQuery {
    /// Only conversations holding this text (case ignored), among the class's newest
    /// 5,000 exchanges; 1–200 characters.
    pub q: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ConversationItem {
    pub conversation_id: String,
    pub exchanges: i64,
    pub first_ms: i64,
    pub last_ms: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct StudentView {
    /// The sign-in session (one student on one device, for one sign-in).
    pub session_id: String,
    /// The name the student typed at sign-in, if any.
    pub display_name: Option<String>,
    /// Most recent first.
    pub conversations: Vec<ConversationItem>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ExchangeView {
    pub id: String,
    pub at_ms: i64,
    pub activity_id: Option<String>,
    /// `full`, `flagged` (a safety flag kept it) or `context` (around a flagged one).
    pub kept: String,
    /// Absent when the text cannot be opened (sealed under an AUTH_SECRET no longer set).
    pub student: Option<String>,
    pub reply: Option<String>,
    /// Whether the reply finished (false: cut off, failed, or the student left).
    pub completed: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ConversationView {
    pub class_id: String,
    pub session_id: String,
    pub display_name: Option<String>,
    pub conversation_id: String,
    /// Oldest first.
    pub exchanges: Vec<ExchangeView>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ReadsQuery {
    /// One class's openings only.
    pub class_id: Option<String>,
    /// At most this many, newest first (1–1000, default 200).
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ReadView {
    pub id: i64,
    pub at_ms: i64,
    /// Who opened it: a teacher's email, or the administrator (with the token's id).
    pub reader: String,
    pub class_id: String,
    pub session_id: String,
    pub display_name: Option<String>,
    pub conversation_id: String,
    /// The reader's client address.
    pub address: Option<String>,
}

/// Whether the caller may read `class_id`'s conversations; 404 otherwise (as if the class
/// did not exist).
pub(super) async fn may_read(
    state: &AppState,
    who: &ApiCaller,
    class_id: &str,
) -> Result<(), ApiFailure> {
    match who.caller.teacher_id() {
        None if state.classes.current().get(class_id).is_some() => Ok(()),
        None => match state.store.class(class_id).await? {
            Some(_) => Ok(()),
            None => Err(ApiFailure::NotFound),
        },
        Some(t) => match state.store.member_role(class_id, t).await? {
            Some(role) if allows(role, Need::Conversations) => Ok(()),
            _ => Err(ApiFailure::NotFound),
        },
    }
}

/// A class's stored conversations by student, the most recently active first; with `q`,
/// only those holding the text. Lists no message text.
#[utoipa::path(get, path = "/api/v1/admin/classes/{id}/conversations", tag = "conversations",
    params(("id" = String, Path, description = "The class's id"), ListQuery),
    responses((status = 200, body = [StudentView]), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("token" = [])))]
pub(super) async fn list_conversations(
    State(state): State<AppState>,
    who: ApiCaller,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<ApiJson<Vec<StudentView>>, ApiFailure> {
    may_read(&state, &who, &id).await?;
    let q = query
        .q
        .map(|q| q.trim().to_owned())
        .filter(|q| !q.is_empty());
    if q.as_ref()
        .is_some_and(|q| q.chars().count() > MAX_SEARCH_CHARS)
    {
        return Err(ApiFailure::BadRequest(format!(
            "q is longer than {MAX_SEARCH_CHARS} characters."
        )));
    }
    let list = by_student(
        &state.store,
        state.conversations.sealer(),
        &id,
        q.as_deref(),
    )
    .await?;
    Ok(ApiJson(
        list.into_iter()
            .map(|s| StudentView {
                session_id: s.session_id,
                display_name: s.display_name,
                conversations: s
                    .conversations
                    .into_iter()
                    .map(|c| ConversationItem {
                        conversation_id: c.conversation_id,
                        exchanges: c.exchanges,
                        first_ms: c.first_ms,
                        last_ms: c.last_ms,
                    })
                    .collect(),
            })
            .collect(),
    ))
}

/// Opens one conversation (logged in the access log first: who, whose, when, from where).
#[utoipa::path(get, path = "/api/v1/admin/classes/{id}/conversations/{session_id}/{conversation_id}",
    tag = "conversations",
    params(("id" = String, Path, description = "The class's id"),
        ("session_id" = String, Path, description = "The student's session"),
        ("conversation_id" = String, Path, description = "The conversation")),
    responses((status = 200, body = ConversationView), (status = 404, body = ErrorBody)),
    security(("token" = [])))]
pub(super) async fn open_one(
    State(state): State<AppState>,
    who: ApiCaller,
    Path((id, session_id, conversation_id)): Path<(String, String, String)>,
) -> Result<ApiJson<ConversationView>, ApiFailure> {
    may_read(&state, &who, &id).await?;
    let sealer = state.conversations.sealer();
    let opened =
        open_conversation(&state.store, &sealer, &id, &session_id, &conversation_id).await?;
    if opened.is_empty() {
        return Err(ApiFailure::NotFound);
    }
    let display_name = opened.iter().find_map(|o| o.row.display_name.clone());
    state
        .store
        .log_conversation_read(&ReadRecord {
            id: 0,
            at_ms: now_ms(),
            reader: who.caller.actor(),
            class_id: id.clone(),
            session_id: session_id.clone(),
            display_name: display_name.clone(),
            conversation_id: conversation_id.clone(),
            address: who.address.clone(),
        })
        .await?;
    Ok(ApiJson(ConversationView {
        class_id: id,
        session_id,
        display_name,
        conversation_id,
        exchanges: opened
            .into_iter()
            .map(|o| ExchangeView {
                id: o.row.id,
                at_ms: o.row.at_ms,
                activity_id: o.row.activity_id,
                kept: o.row.kept,
                completed: o.text.as_ref().is_some_and(|t| t.completed),
                student: o.text.as_ref().map(|t| t.student.clone()),
                reply: o.text.map(|t| t.reply),
            })
            .collect(),
    }))
}

/// The access log: who opened whose conversation, when and from where, newest first
/// (the administrator's).
#[utoipa::path(get, path = "/api/v1/admin/conversation-reads", tag = "conversations",
    params(ReadsQuery),
    responses((status = 200, body = [ReadView]), (status = 403, body = ErrorBody)),
    security(("token" = [])))]
pub(super) async fn list_reads(
    State(state): State<AppState>,
    who: ApiCaller,
    ApiQuery(q): ApiQuery<ReadsQuery>,
) -> Result<ApiJson<Vec<ReadView>>, ApiFailure> {
    who.require_administrator()?;
    let limit = q.limit.unwrap_or(200).clamp(1, 1000);
    let rows = state
        .store
        .conversation_reads(q.class_id.as_deref(), limit)
        .await?;
    Ok(ApiJson(
        rows.into_iter()
            .map(|r| ReadView {
                id: r.id,
                at_ms: r.at_ms,
                reader: r.reader,
                class_id: r.class_id,
                session_id: r.session_id,
                display_name: r.display_name,
                conversation_id: r.conversation_id,
                address: r.address,
            })
            .collect(),
    ))
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct SessionInfo {
    pub session_id: String,
    pub display_name: Option<String>,
    pub started_at_ms: i64,
    pub last_seen_ms: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct UsageItem {
    pub at_ms: i64,
    pub conversation_id: String,
    pub model: Option<String>,
    pub prompt_tokens: Option<i64>,
    pub completion_tokens: Option<i64>,
    pub outcome: String,
}

/// Everything classchat holds about one session of a class.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct SessionExportView {
    pub class_id: String,
    pub session_id: String,
    /// Absent once the sign-in row is gone (retention, erasure).
    pub session: Option<SessionInfo>,
    pub usage: Vec<UsageItem>,
    pub conversations: Vec<ConversationView>,
}

/// What an erasure changed.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ErasedView {
    /// Stored exchanges deleted.
    pub exchanges: u64,
    /// Usage rows kept without a name (and, for one session, under an anonymous id).
    pub usage_rows: u64,
    /// Sign-ins deleted (one session) or left without a name (end of term).
    pub sessions: u64,
}

impl From<crate::store::conversations::Erased> for ErasedView {
    fn from(e: crate::store::conversations::Erased) -> Self {
        Self {
            exchanges: e.exchanges,
            usage_rows: e.usage_rows,
            sessions: e.sessions,
        }
    }
}

fn exchange_view(o: crate::conversations::Opened) -> ExchangeView {
    ExchangeView {
        id: o.row.id,
        at_ms: o.row.at_ms,
        activity_id: o.row.activity_id,
        kept: o.row.kept,
        completed: o.text.as_ref().is_some_and(|t| t.completed),
        student: o.text.as_ref().map(|t| t.student.clone()),
        reply: o.text.map(|t| t.reply),
    }
}

/// Everything held about one session (its name, usage rows, stored conversations) as JSON;
/// written to the access log as a reading of all its conversations (`*`).
#[utoipa::path(get, path = "/api/v1/admin/classes/{id}/sessions/{session_id}/export", tag = "conversations",
    params(("id" = String, Path, description = "The class's id"),
        ("session_id" = String, Path, description = "The student's session")),
    responses((status = 200, body = SessionExportView), (status = 404, body = ErrorBody)),
    security(("token" = [])))]
pub(super) async fn export_session(
    State(state): State<AppState>,
    who: ApiCaller,
    Path((id, session_id)): Path<(String, String)>,
) -> Result<ApiJson<SessionExportView>, ApiFailure> {
    may_read(&state, &who, &id).await?;
    let session = state
        .store
        .session_export(&session_id)
        .await?
        .filter(|s| s.class_id == id);
    let usage = state.store.usage_export(&id, &session_id).await?;
    let sealer = state.conversations.sealer();
    let mut conversations = Vec::new();
    let mut ids: Vec<String> = state
        .store
        .conversations_of(&id, i64::MAX)
        .await?
        .into_iter()
        .filter(|c| c.session_id == session_id)
        .map(|c| c.conversation_id)
        .collect();
    ids.sort();
    for conversation_id in ids {
        let opened =
            open_conversation(&state.store, &sealer, &id, &session_id, &conversation_id).await?;
        conversations.push(ConversationView {
            class_id: id.clone(),
            session_id: session_id.clone(),
            display_name: opened.iter().find_map(|o| o.row.display_name.clone()),
            conversation_id,
            exchanges: opened.into_iter().map(exchange_view).collect(),
        });
    }
    if session.is_none() && usage.is_empty() && conversations.is_empty() {
        return Err(ApiFailure::NotFound);
    }
    let display_name = session
        .as_ref()
        .and_then(|s| s.display_name.clone())
        .or_else(|| conversations.iter().find_map(|c| c.display_name.clone()));
    state
        .store
        .log_conversation_read(&ReadRecord {
            id: 0,
            at_ms: now_ms(),
            reader: who.caller.actor(),
            class_id: id.clone(),
            session_id: session_id.clone(),
            display_name,
            conversation_id: "*".into(),
            address: who.address.clone(),
        })
        .await?;
    Ok(ApiJson(SessionExportView {
        class_id: id,
        session_id,
        session: session.map(|s| SessionInfo {
            session_id: s.session_id,
            display_name: s.display_name,
            started_at_ms: s.started_at_ms,
            last_seen_ms: s.last_seen_ms,
        }),
        usage: usage
            .into_iter()
            .map(|u| UsageItem {
                at_ms: u.at_ms,
                conversation_id: u.conversation_id,
                model: u.model,
                prompt_tokens: u.prompt_tokens,
                completion_tokens: u.completion_tokens,
                outcome: u.outcome,
            })
            .collect(),
        conversations,
    }))
}

/// Erases one session: its stored conversations are deleted, its usage rows kept without
/// its name under an anonymous id (the class's totals stay the same), its sign-in deleted
/// and revoked on every replica.
#[utoipa::path(delete, path = "/api/v1/admin/classes/{id}/sessions/{session_id}", tag = "conversations",
    params(("id" = String, Path, description = "The class's id"),
        ("session_id" = String, Path, description = "The student's session")),
    responses((status = 200, body = ErasedView), (status = 404, body = ErrorBody)),
    security(("token" = [])))]
pub(super) async fn erase_session(
    State(state): State<AppState>,
    who: ApiCaller,
    Path((id, session_id)): Path<(String, String)>,
) -> Result<ApiJson<ErasedView>, ApiFailure> {
    may_read(&state, &who, &id).await?;
    let session = state.store.session_export(&session_id).await?;
    if session.as_ref().is_some_and(|s| s.class_id != id) {
        return Err(ApiFailure::NotFound);
    }
    let held = session.is_some()
        || !state.store.usage_export(&id, &session_id).await?.is_empty()
        || state
            .store
            .conversations_of(&id, i64::MAX)
            .await?
            .iter()
            .any(|c| c.session_id == session_id);
    if !held {
        return Err(ApiFailure::NotFound);
    }
    let anonymous = format!("erased-{}", uuid::Uuid::new_v4());
    let actor = who.caller.actor();
    let erased = state
        .store
        .erase_session(&id, &session_id, &anonymous, who.audit(&actor))
        .await?;
    state.store.flush_erased().await;
    // Revoked until its longest possible end, on every replica.
    let now = crate::basics::now_secs();
    let ends = session.map_or(now, |s| s.started_at_ms / 1000)
        + state.settings.session_max_age.as_secs() as i64;
    state
        .store
        .revoke_session(&session_id, &id, ends, "erased", now)
        .await?;
    state.revoked.insert_until(session_id.clone(), ends);
    state
        .store
        .notify(&crate::sync::revoked_event(&session_id, ends))
        .await;
    tracing::info!(target: "classchat::admin", class = %id, session = %session_id, by = %who.caller.actor(), "session erased");
    Ok(ApiJson(erased.into()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct EndOfTerm {
    /// The class's id, typed again: without it the answer only says what would go.
    pub confirm: Option<String>,
}

/// "End of term": deletes the class's stored conversations and every student name it holds
/// (sessions, usage rows, access log); totals stay. Without `confirm` set to the class's id,
/// changes nothing and answers 400 naming what would go. The owner's and the administrator's.
#[utoipa::path(post, path = "/api/v1/admin/classes/{id}/end-of-term", tag = "conversations",
    params(("id" = String, Path, description = "The class's id")),
    request_body = EndOfTerm,
    responses((status = 200, body = ErasedView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("token" = [])))]
pub(super) async fn end_of_term(
    State(state): State<AppState>,
    who: ApiCaller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<EndOfTerm>,
) -> Result<ApiJson<ErasedView>, ApiFailure> {
    may_read(&state, &who, &id).await?;
    if let Some(t) = who.caller.teacher_id() {
        let role = state.store.member_role(&id, t).await?;
        if !role.is_some_and(|r| allows(r, Need::Delete)) {
            return Err(ApiFailure::Forbidden(
                "Only the class's owner or the administrator may end the term.".into(),
            ));
        }
    }
    if req.confirm.as_deref() != Some(id.as_str()) {
        let p = state.store.end_of_term_preview(&id).await?;
        return Err(ApiFailure::BadRequest(format!(
            "This deletes {} stored exchanges of class {id} and the names on {} sessions and {} usage rows \
             (totals stay). To do it, send {{\"confirm\": \"{id}\"}}.",
            p.exchanges, p.sessions, p.usage_rows
        )));
    }
    let actor = who.caller.actor();
    let erased = state.store.end_of_term(&id, who.audit(&actor)).await?;
    state.store.flush_erased().await;
    tracing::info!(target: "classchat::admin", class = %id, by = %who.caller.actor(), exchanges = erased.exchanges, "end of term: conversations and names erased");
    Ok(ApiJson(erased.into()))
}
