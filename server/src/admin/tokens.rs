//! A teacher's own personal access tokens for the admin API (the administrator's too):
//! make one (shown once, on the page the form redirects to, on whichever replica it lands),
//! list those in force, revoke one. Only digests are stored (see `teachers::new_token`).

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::classes::{TeachError, page_with_lang, teach_ctx};
use super::i18n::PageLang;
use super::one_time;
use super::teach_views as tv;
use super::{CsrfForm, Signed, csrf_ok};
use crate::basics::now_ms;
use crate::client_addr::ClientAddr;
use crate::state::AppState;
use crate::store::teachers::Audit;
use crate::teachers::{new_id, new_token};

/// The one-time kind of a new token.
const TOKEN: &str = "api_token";
const MAX_NAME: usize = 100;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/tokens", get(list).post(create))
        .route("/admin/tokens/{id}/revoke", post(revoke))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct NewTokenForm {
    csrf: String,
    name: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ListQuery {
    /// The ticket of a new token to show once, and the token's id it is bound to.
    made: String,
    token: String,
    done: String,
}

fn audit<'a>(t: &'a Signed, addr: &'a Option<String>) -> Audit<'a> {
    Audit {
        actor: &t.actor,
        address: addr.as_deref(),
        now_ms: now_ms(),
    }
}

/// `GET /admin/tokens`.
async fn list(
    State(state): State<AppState>,
    t: Signed,
    l: PageLang,
    Query(q): Query<ListQuery>,
) -> Response {
    let r = async {
        let made = if q.made.is_empty() {
            None
        } else {
            match one_time::take(&state, &q.made, &t.binding, TOKEN, &q.token).await? {
                Some(secret) => Some(secret),
                None => return Err(TeachError::Gone),
            }
        };
        let tokens = state.store.tokens(t.teacher_id()).await?;
        let ctx = teach_ctx(&state, &t, l.lang);
        let body = tv::tokens_page(&ctx, &tokens, made, None, &q.done);
        Ok(page_with_lang(l, StatusCode::OK, body))
    }
    .await;
    r.unwrap_or_else(|e| e.page(l.lang))
}

/// `POST /admin/tokens`: a new token for the signed-in person, shown once after the
/// redirect.
async fn create(
    State(state): State<AppState>,
    t: Signed,
    l: PageLang,
    client: ClientAddr,
    axum::Form(form): axum::Form<NewTokenForm>,
) -> Response {
    let r = async {
        if !csrf_ok(&state, &t.binding, &form.csrf) {
            return Err(TeachError::FormExpired);
        }
        let name = form.name.trim();
        let problem = if name.is_empty() {
            Some(tv::TokenProblem::NoName)
        } else if name.chars().count() > MAX_NAME {
            Some(tv::TokenProblem::NameTooLong)
        } else {
            None
        };
        if let Some(p) = problem {
            let tokens = state.store.tokens(t.teacher_id()).await?;
            let ctx = teach_ctx(&state, &t, l.lang);
            let body = tv::tokens_page(&ctx, &tokens, None, Some(p), "");
            return Ok(page_with_lang(l, StatusCode::BAD_REQUEST, body));
        }
        let made = new_token();
        let id = new_id('k');
        let addr = client.0.map(|ip| ip.to_string());
        state
            .store
            .create_token(
                &id,
                &made.digest,
                &made.prefix,
                name,
                t.teacher_id(),
                audit(&t, &addr),
            )
            .await?;
        let ticket = one_time::put(&state, &t.binding, TOKEN, &id, &made.token).await?;
        Ok(Redirect::to(&format!("/admin/tokens?made={ticket}&token={id}")).into_response())
    }
    .await;
    r.unwrap_or_else(|e| e.page(l.lang))
}

/// `POST /admin/tokens/{id}/revoke`: only one's own token; any other is not there.
async fn revoke(
    State(state): State<AppState>,
    t: Signed,
    l: PageLang,
    client: ClientAddr,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Response {
    let r = async {
        if !csrf_ok(&state, &t.binding, &form.csrf) {
            return Err(TeachError::FormExpired);
        }
        let addr = client.0.map(|ip| ip.to_string());
        if !state
            .store
            .revoke_token(&id, t.teacher_id(), audit(&t, &addr))
            .await?
        {
            return Err(TeachError::NotFound);
        }
        Ok(Redirect::to("/admin/tokens?done=revoked").into_response())
    }
    .await;
    r.unwrap_or_else(|e| e.page(l.lang))
}
