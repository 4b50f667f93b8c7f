//! Safety alerts: the flags of the classes a caller is a safety contact of (the
//! administrator: of every class), opening and dismissing one, and each class's safety
//! settings (who its safety contacts are, its own help resources). A flag of a class the
//! caller is not a contact of is 404, as if it did not exist; a dismissed flag stays listed.

use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiCaller, ApiFailure, ApiJson, ApiQuery, ClassAccess, ErrorBody};
use crate::config::safety::check_help;
use crate::safety::Category;
use crate::state::AppState;
use crate::store::safety::FlagRecord;
use crate::teachers::Need;

/// Most alerts one list answers.
const MAX_LIST: i64 = 500;

/// One flag, as the Alerts view shows it. Never the student's words: opening the
/// conversation (where the class keeps it) is a separate, logged read.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct AlertView {
    pub id: String,
    pub class_id: String,
    pub class_title: String,
    /// `self_harm`, `violence` or `abuse`.
    pub category: String,
    pub category_label: String,
    /// `phrase` (the built-in lists) or `model` (SAFETY_MODEL).
    pub source: String,
    /// The phrase list entry (`en:12`) or the model's codes (`S11`).
    pub detail: String,
    /// The name the student typed at sign-in, if any.
    pub student: Option<String>,
    pub session_id: String,
    pub conversation_id: String,
    pub created_at_ms: i64,
    /// `open` or `dismissed`.
    pub status: &'static str,
    pub dismissed_at_ms: Option<i64>,
    pub dismissed_by: Option<String>,
    /// Notifications not sent yet (being retried).
    pub notifications_pending: i64,
    pub notifications_sent: i64,
}

/// One notification of a flag.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct NotificationView {
    /// `email` or `webhook`.
    pub channel: String,
    /// The address, or `webhook`.
    pub recipient: String,
    /// `pending` or `sent`.
    pub status: &'static str,
    pub attempts: i64,
    pub sent_at_ms: Option<i64>,
    /// Why the last attempt failed, while pending.
    pub last_error: Option<String>,
}

/// An alert opened: the flag, the flagged exchange and its notifications. Each opening is
/// written to the audit log (`open_alert`).
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct AlertDetail {
    #[serde(flatten)]
    pub alert: AlertView,
    /// The flagged message and up to two before it (`null` when it cannot be opened, e.g.
    /// sealed under an AUTH_SECRET no longer configured).
    pub exchange: Option<Vec<ExchangeMessage>>,
    pub notifications: Vec<NotificationView>,
}

/// One message of a flagged exchange.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ExchangeMessage {
    /// `user` or `assistant`.
    pub role: String,
    pub content: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct AlertFilter {
    /// Only this class's alerts.
    pub class_id: Option<String>,
    /// `open` (default: all, dismissed ones too) or `dismissed`.
    pub status: Option<String>,
    /// At most this many, newest first (default and most: 500).
    pub limit: Option<i64>,
}

/// A class's safety settings.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct SafetyView {
    /// The teachers told about the class's flags (members of the class).
    pub contacts: Vec<ContactView>,
    /// The class's own help resources (one per line); `null`: the server's.
    pub help: Option<String>,
    /// The help resources in force for the class.
    pub help_in_force: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ContactView {
    pub teacher_id: String,
    pub email: String,
    pub name: String,
}

/// A change to a class's safety settings: absent fields stay.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct UpdateSafety {
    /// The teacher ids told about flags (each a member of the class); only the class's
    /// owner may change them.
    pub contacts: Option<Vec<String>>,
    /// The class's own help resources, one per line (at most 12 lines of 300 characters);
    /// `null` or empty: the server's again.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub help: Option<Option<String>>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

fn view(state: &AppState, f: FlagRecord) -> AlertView {
    let class_title = state
        .classes
        .current()
        .get(&f.class_id)
        .map(|c| c.title.clone())
        .unwrap_or_else(|| f.class_id.clone());
    let category_label = Category::parse(&f.category)
        .map(Category::label)
        .unwrap_or("other")
        .to_owned();
    AlertView {
        status: if f.dismissed_ms.is_some() {
            "dismissed"
        } else {
            "open"
        },
        id: f.id,
        class_id: f.class_id,
        class_title,
        category: f.category,
        category_label,
        source: f.source,
        detail: f.detail,
        student: f.display_name,
        session_id: f.session_id,
        conversation_id: f.conversation_id,
        created_at_ms: f.created_ms,
        dismissed_at_ms: f.dismissed_ms,
        dismissed_by: f.dismissed_by,
        notifications_pending: f.pending,
        notifications_sent: f.sent,
    }
}

/// The classes whose flags the caller sees: `None` for every class (the administrator).
async fn visible_classes(
    state: &AppState,
    who: &ApiCaller,
) -> Result<Option<Vec<String>>, ApiFailure> {
    match who.caller.teacher_id() {
        None => Ok(None),
        Some(t) => Ok(Some(state.store.contact_classes(t).await?)),
    }
}

/// A flag the caller may see, or 404.
async fn visible_flag(
    state: &AppState,
    who: &ApiCaller,
    id: &str,
) -> Result<FlagRecord, ApiFailure> {
    let flag = state.store.flag(id).await?.ok_or(ApiFailure::NotFound)?;
    match visible_classes(state, who).await? {
        Some(classes) if !classes.contains(&flag.class_id) => Err(ApiFailure::NotFound),
        _ => Ok(flag),
    }
}

/// Flags of the classes the caller is a safety contact of, newest first.
#[utoipa::path(get, path = "/api/v1/admin/alerts", tag = "alerts",
    params(AlertFilter),
    responses((status = 200, body = [AlertView]), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("token" = [])))]
pub(super) async fn list_alerts(
    State(state): State<AppState>,
    who: ApiCaller,
    ApiQuery(filter): ApiQuery<AlertFilter>,
) -> Result<ApiJson<Vec<AlertView>>, ApiFailure> {
    let limit = filter.limit.unwrap_or(MAX_LIST);
    if !(1..=MAX_LIST).contains(&limit) {
        return Err(ApiFailure::BadRequest(format!(
            "limit must be 1 to {MAX_LIST}."
        )));
    }
    let open = match filter.status.as_deref() {
        None => None,
        Some("open") => Some(true),
        Some("dismissed") => Some(false),
        Some(_) => {
            return Err(ApiFailure::BadRequest(
                "status must be open or dismissed.".into(),
            ));
        }
    };
    let mut classes = visible_classes(&state, &who).await?;
    if let Some(c) = &filter.class_id {
        classes = Some(match classes {
            None => vec![c.clone()],
            Some(mine) => mine.into_iter().filter(|m| m == c).collect(),
        });
    }
    let flags = state.store.flags(classes.as_deref(), open, limit).await?;
    Ok(ApiJson(
        flags.into_iter().map(|f| view(&state, f)).collect(),
    ))
}

/// One alert and how its notifications went.
#[utoipa::path(get, path = "/api/v1/admin/alerts/{id}", tag = "alerts",
    params(("id" = String, Path, description = "The alert's id")),
    responses((status = 200, body = AlertDetail), (status = 404, body = ErrorBody)),
    security(("token" = [])))]
pub(super) async fn get_alert(
    State(state): State<AppState>,
    who: ApiCaller,
    Path(id): Path<String>,
) -> Result<ApiJson<AlertDetail>, ApiFailure> {
    let flag = visible_flag(&state, &who, &id).await?;
    let notifications = state
        .store
        .notifications_of(&flag.id)
        .await?
        .into_iter()
        .map(
            |(channel, recipient, attempts, sent, error)| NotificationView {
                channel,
                recipient,
                status: if sent.is_some() { "sent" } else { "pending" },
                attempts,
                sent_at_ms: sent,
                last_error: error,
            },
        )
        .collect();
    let actor = who.caller.actor();
    state
        .store
        .log_flag_opened(&flag.id, &flag.class_id, who.audit(&actor))
        .await?;
    let exchange = flag.exchange.as_deref().and_then(|sealed| {
        crate::alerts::open_exchange(&state.alerts, &flag.id, sealed).map(|msgs| {
            msgs.into_iter()
                .map(|m| ExchangeMessage {
                    role: if m.role == classchat_shared::Role::User {
                        "user"
                    } else {
                        "assistant"
                    }
                    .into(),
                    content: m.content,
                })
                .collect()
        })
    });
    Ok(ApiJson(AlertDetail {
        alert: view(&state, flag),
        exchange,
        notifications,
    }))
}

/// Dismisses an alert: it stays listed, with who dismissed it and when.
#[utoipa::path(post, path = "/api/v1/admin/alerts/{id}/dismiss", tag = "alerts",
    params(("id" = String, Path, description = "The alert's id")),
    responses((status = 200, body = AlertView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("token" = [])))]
pub(super) async fn dismiss_alert(
    State(state): State<AppState>,
    who: ApiCaller,
    Path(id): Path<String>,
) -> Result<ApiJson<AlertView>, ApiFailure> {
    visible_flag(&state, &who, &id).await?;
    let actor = who.caller.actor();
    if !state
        .store
        .dismiss_flag(&id, &actor, who.audit(&actor))
        .await?
    {
        return Err(ApiFailure::Conflict(
            "This alert was dismissed already.".into(),
        ));
    }
    let flag = state.store.flag(&id).await?.ok_or(ApiFailure::NotFound)?;
    Ok(ApiJson(view(&state, flag)))
}

async fn safety_view(state: &AppState, class_id: &str) -> Result<SafetyView, ApiFailure> {
    let contacts = state
        .store
        .safety_contacts(class_id)
        .await?
        .into_iter()
        .map(|c| ContactView {
            teacher_id: c.teacher_id,
            email: c.email,
            name: c.name,
        })
        .collect();
    let help = state.store.class_help(class_id).await?;
    let help_in_force = help
        .clone()
        .unwrap_or_else(|| state.settings.safety.help.clone());
    Ok(SafetyView {
        contacts,
        help,
        help_in_force,
    })
}

/// A class's safety contacts and help resources.
#[utoipa::path(get, path = "/api/v1/admin/classes/{id}/safety", tag = "alerts",
    params(("id" = String, Path, description = "The class's id")),
    responses((status = 200, body = SafetyView), (status = 404, body = ErrorBody)),
    security(("token" = [])))]
pub(super) async fn get_safety(
    State(state): State<AppState>,
    access: ClassAccess,
) -> Result<ApiJson<SafetyView>, ApiFailure> {
    access.require(Need::Read)?;
    Ok(ApiJson(safety_view(&state, &access.class.id).await?))
}

/// Names a class's safety contacts (its owner only) and sets its help resources.
#[utoipa::path(put, path = "/api/v1/admin/classes/{id}/safety", tag = "alerts",
    params(("id" = String, Path, description = "The class's id")),
    request_body = UpdateSafety,
    responses((status = 200, body = SafetyView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("token" = [])))]
pub(super) async fn put_safety(
    State(state): State<AppState>,
    access: ClassAccess,
    ApiJson(req): ApiJson<UpdateSafety>,
) -> Result<ApiJson<SafetyView>, ApiFailure> {
    access.require(Need::Edit)?;
    let class_id = access.class.id.clone();
    // Checked whole before anything is written: a bad field changes nothing.
    let contacts = match &req.contacts {
        None => None,
        Some(ids) => {
            access.require(Need::Members)?;
            let members = state.store.members(&class_id).await?;
            let mut list: Vec<String> = Vec::new();
            for id in ids {
                if !members.iter().any(|m| &m.teacher_id == id) {
                    return Err(ApiFailure::BadRequest(format!(
                        "{id:?} is not a member of this class: add them as a member first."
                    )));
                }
                if !list.contains(id) {
                    list.push(id.clone());
                }
            }
            Some(list)
        }
    };
    let help = match &req.help {
        None => None,
        Some(None) => Some(None),
        Some(Some(text)) => {
            let text =
                check_help(text).map_err(|p| ApiFailure::BadRequest(format!("help {p}.")))?;
            Some((!text.is_empty()).then_some(text))
        }
    };
    let actor = access.who.caller.actor();
    if let Some(list) = contacts {
        state
            .store
            .set_safety_contacts(&class_id, &list, access.who.audit(&actor))
            .await?;
    }
    if let Some(help) = help {
        state
            .store
            .set_class_help(&class_id, help.as_deref(), access.who.audit(&actor))
            .await?;
    }
    Ok(ApiJson(safety_view(&state, &class_id).await?))
}
