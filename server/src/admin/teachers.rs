//! The administrator's Teachers page: invite a teacher by email (the single-use link is
//! shown once, on the page the form redirects to), list teachers, disable or enable one.
//! A disabled teacher's dashboard sessions and tokens stop at once on every replica: both
//! look the teacher up on every request.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::classes::{TeachError, page_with_lang, teach_ctx};
use super::i18n::{Lang, PageLang};
use super::one_time::{self, INVITATION};
use super::teach_views as tv;
use super::{CsrfForm, Signed, Who, csrf_ok, html};
use crate::basics::now_ms;
use crate::client_addr::ClientAddr;
use crate::state::AppState;
use crate::store::teachers::Audit;
use crate::teachers::{INVITATION_TTL, new_id, new_invitation, normalize_email};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/teachers", get(list).post(invite))
        .route("/admin/teachers/{id}/disable", post(disable))
        .route("/admin/teachers/{id}/enable", post(enable))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct InviteFields {
    csrf: String,
    email: String,
    name: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ListQuery {
    /// The ticket of an invitation link to show once.
    invited: String,
    /// The invited teacher's id (what the ticket's secret is bound to).
    teacher: String,
    done: String,
}

/// The administrator, or a page saying this is not a teacher's page.
fn administrator(t: &Signed) -> Result<(), TeachError> {
    match t.who {
        Who::Administrator => Ok(()),
        Who::Teacher { .. } => Err(TeachError::NotFound),
    }
}

async fn render(
    state: &AppState,
    t: &Signed,
    lang: Lang,
    invited: Option<(String, String)>,
    problem: Option<tv::InviteProblem>,
    done: &str,
) -> Result<String, TeachError> {
    let teachers = state.store.teachers().await?;
    let ctx = teach_ctx(state, t, lang);
    Ok(tv::teachers_page(&ctx, &teachers, invited, problem, done))
}

/// `GET /admin/teachers`.
async fn list(
    State(state): State<AppState>,
    t: Signed,
    l: PageLang,
    Query(q): Query<ListQuery>,
) -> Response {
    let r = async {
        administrator(&t)?;
        let invited = if q.invited.is_empty() {
            None
        } else {
            let secret =
                one_time::take(&state, &q.invited, &t.binding, INVITATION, &q.teacher).await?;
            let teacher = state.store.teacher(&q.teacher).await?;
            match (secret, teacher) {
                (Some(secret), Some(teacher)) => Some((
                    teacher.email,
                    format!(
                        "{}/admin/invitation?code={secret}",
                        state.public_url.trim_end_matches('/')
                    ),
                )),
                _ => return Err(TeachError::Gone),
            }
        };
        let body = render(&state, &t, l.lang, invited, None, &q.done).await?;
        Ok(page_with_lang(l, StatusCode::OK, body))
    }
    .await;
    r.unwrap_or_else(|e| e.page(l.lang))
}

/// `POST /admin/teachers`: invites a teacher; the link is shown once after the redirect.
async fn invite(
    State(state): State<AppState>,
    t: Signed,
    l: PageLang,
    client: ClientAddr,
    axum::Form(form): axum::Form<InviteFields>,
) -> Response {
    let r = async {
        if !csrf_ok(&state, &t.binding, &form.csrf) {
            return Err(TeachError::FormExpired);
        }
        administrator(&t)?;
        let Ok(email) = normalize_email(&form.email) else {
            return bad(&state, &t, l.lang, tv::InviteProblem::NotAnEmail).await;
        };
        let name = form.name.trim();
        if name.chars().count() > 200 {
            return bad(&state, &t, l.lang, tv::InviteProblem::NameTooLong).await;
        }
        let id = new_id('t');
        let (secret, digest) = new_invitation();
        let addr = client.0.map(|ip| ip.to_string());
        let a = Audit {
            actor: &t.actor,
            address: addr.as_deref(),
            now_ms: now_ms(),
        };
        let expires = a.now_ms + INVITATION_TTL.as_millis() as i64;
        if !state
            .store
            .invite_teacher(&id, &email, name, &digest, expires, a)
            .await?
        {
            return bad(&state, &t, l.lang, tv::InviteProblem::Taken).await;
        }
        let ticket = one_time::put(&state, &t.binding, INVITATION, &id, &secret).await?;
        Ok(Redirect::to(&format!("/admin/teachers?invited={ticket}&teacher={id}")).into_response())
    }
    .await;
    r.unwrap_or_else(|e| e.page(l.lang))
}

/// The Teachers page again with what is wrong with the invitation form.
async fn bad(
    state: &AppState,
    t: &Signed,
    lang: Lang,
    p: tv::InviteProblem,
) -> Result<Response, TeachError> {
    let body = render(state, t, lang, None, Some(p), "").await?;
    Ok(html(StatusCode::BAD_REQUEST, body))
}

async fn set_disabled(
    state: &AppState,
    t: &Signed,
    client: &ClientAddr,
    id: &str,
    csrf: &str,
    disabled: bool,
) -> Result<Response, TeachError> {
    if !csrf_ok(state, &t.binding, csrf) {
        return Err(TeachError::FormExpired);
    }
    administrator(t)?;
    let addr = client.0.map(|ip| ip.to_string());
    let a = Audit {
        actor: &t.actor,
        address: addr.as_deref(),
        now_ms: now_ms(),
    };
    if !state.store.set_teacher_disabled(id, disabled, a).await? {
        return Err(TeachError::NotFound);
    }
    let done = if disabled { "disabled" } else { "enabled" };
    tracing::info!(target: "classchat::admin", actor = %t.actor, teacher = %id, action = done, "teacher {done}");
    Ok(Redirect::to(&format!("/admin/teachers?done={done}")).into_response())
}

/// `POST /admin/teachers/{id}/disable`: every session and token of theirs stops at once.
async fn disable(
    State(state): State<AppState>,
    t: Signed,
    l: PageLang,
    client: ClientAddr,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Response {
    set_disabled(&state, &t, &client, &id, &form.csrf, true)
        .await
        .unwrap_or_else(|e| e.page(l.lang))
}

async fn enable(
    State(state): State<AppState>,
    t: Signed,
    l: PageLang,
    client: ClientAddr,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Response {
    set_disabled(&state, &t, &client, &id, &form.csrf, false)
        .await
        .unwrap_or_else(|e| e.page(l.lang))
}
