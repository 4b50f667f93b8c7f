//! A class's students known by identity, in the dashboard: personal codes made from a
//! pasted list of names (shown once, as printable cards, on whichever replica the redirect
//! lands), revoked or re-issued one at a time; the class's allowance per such student, who
//! is close to it or over it, and a reset for one student. Reading needs any role in the
//! class; changing needs `Need::Edit` (owners and co-teachers), as elsewhere.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use super::Signed;
use super::classes::{
    TeachError, TeachResult, access, address, answer, audit_of, check_csrf, page_with_lang,
    teach_ctx,
};
use super::i18n::PageLang;
use super::one_time;
use super::personal_codes_views as pv;
use crate::allowances::{Periods, code_student, parse_allowance, standing};
use crate::basics::now_secs;
use crate::client_addr::ClientAddr;
use crate::personal_codes::{NamesProblem, fresh_code, split_names};
use crate::state::AppState;
use crate::store::allowances::AllowanceRecord;
use crate::store::personal_codes::{NewPersonalCode, PersonalCodeRecord};
use crate::store::teachers::Audit;
use crate::teachers::{Need, new_id};

/// The one-time kind of a class's new personal codes (a JSON list of name and code).
const PERSONAL_CODES: &str = "personal_codes";

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/classes/{id}/students", get(page).post(create))
        .route("/admin/classes/{id}/students/cards", get(cards))
        .route(
            "/admin/classes/{id}/students/allowance",
            post(set_allowance),
        )
        .route("/admin/classes/{id}/students/reset", post(reset))
        .route("/admin/personal-codes/{id}/revoke", post(revoke))
        .route("/admin/personal-codes/{id}/reissue", post(reissue))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct NamesForm {
    csrf: String,
    names: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct AllowanceForm {
    csrf: String,
    per_day: String,
    per_week: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ResetForm {
    csrf: String,
    student: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CsrfOnly {
    csrf: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PageQuery {
    done: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct TicketQuery {
    ticket: String,
}

/// One card: who and their code. Sealed as JSON in the one-time store until shown.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Card {
    pub(super) name: String,
    pub(super) code: String,
}

/// The page's data for class `id`, with a form's problem and text to show again.
async fn page_data(
    state: &AppState,
    t: &Signed,
    id: &str,
    problem: Option<pv::Problem>,
    names: String,
    done: String,
) -> TeachResult<pv::StudentsPage> {
    let a = access(state, t, id).await?;
    let codes = state.store.personal_codes(id).await?;
    let allowance = state.store.student_allowance(id).await?.unwrap_or_default();
    let class = state.classes.resolve(&a.class);
    let watch = watch_list(state, &class, allowance, &codes).await?;
    Ok(pv::StudentsPage {
        class_id: a.class.id.clone(),
        class_title: a.class.title.clone(),
        can_edit: a.may(Need::Edit),
        allowance,
        codes,
        watch,
        problem,
        names,
        done,
        time_zone: class.time_zone.iana_name().unwrap_or("UTC").to_owned(),
    })
}

/// `GET /admin/classes/{id}/students`.
async fn page(
    State(state): State<AppState>,
    t: Signed,
    l: PageLang,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Response {
    let r = async {
        let p = page_data(&state, &t, &id, None, String::new(), q.done).await?;
        let ctx = teach_ctx(&state, &t, l.lang);
        Ok(page_with_lang(
            l,
            StatusCode::OK,
            pv::students_page(&ctx, &p),
        ))
    }
    .await;
    answer(l.lang, r)
}

/// `POST /admin/classes/{id}/students`: one code per pasted name, shown once as cards on
/// the page this redirects to.
async fn create(
    State(state): State<AppState>,
    t: Signed,
    l: PageLang,
    client: ClientAddr,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<NamesForm>,
) -> Response {
    let r = async {
        check_csrf(&state, &t, &form.csrf)?;
        let a = access(&state, &t, &id).await?;
        a.require(Need::Edit)?;
        let names = match split_names(&form.names, |line| {
            crate::auth::clean_display_name(Some(line.to_owned()))
        }) {
            Ok(Ok(names)) => names,
            Ok(Err(NamesProblem::Empty)) => {
                return refuse(&state, &t, l, &id, pv::Problem::NoNames, form.names).await;
            }
            Ok(Err(NamesProblem::TooMany)) => {
                return refuse(&state, &t, l, &id, pv::Problem::TooMany, form.names).await;
            }
            Err((line, _)) => {
                return refuse(&state, &t, l, &id, pv::Problem::TooLong(line), form.names).await;
            }
        };
        let addr = address(&client);
        let made = make_codes(&state, &id, names, audit_of(&t, &addr)).await?;
        let cards: Vec<Card> = made
            .into_iter()
            .map(|(_, name, code)| Card { name, code })
            .collect();
        show_once(&state, &t, &id, &cards).await
    }
    .await;
    answer(l.lang, r)
}

/// The page again with the names as typed and what is wrong with them.
async fn refuse(
    state: &AppState,
    t: &Signed,
    l: PageLang,
    id: &str,
    problem: pv::Problem,
    names: String,
) -> TeachResult {
    let p = page_data(state, t, id, Some(problem), names, String::new()).await?;
    let ctx = teach_ctx(state, t, l.lang);
    Ok(page_with_lang(
        l,
        StatusCode::BAD_REQUEST,
        pv::students_page(&ctx, &p),
    ))
}

/// Seals the cards for this dashboard session and redirects to the page that shows them.
async fn show_once(state: &AppState, t: &Signed, class_id: &str, cards: &[Card]) -> TeachResult {
    let json = serde_json::to_string(cards).map_err(|_| TeachError::Gone)?;
    let ticket = one_time::put(state, &t.binding, PERSONAL_CODES, class_id, &json).await?;
    Ok(Redirect::to(&format!(
        "/admin/classes/{}/students/cards?ticket={ticket}",
        pv::segment(class_id)
    ))
    .into_response())
}

/// `GET /admin/classes/{id}/students/cards?ticket=…`: the new codes, once, as cards.
async fn cards(
    State(state): State<AppState>,
    t: Signed,
    l: PageLang,
    Path(id): Path<String>,
    Query(q): Query<TicketQuery>,
) -> Response {
    let r = async {
        let a = access(&state, &t, &id).await?;
        a.require(Need::Edit)?;
        let json = one_time::take(&state, &q.ticket, &t.binding, PERSONAL_CODES, &id)
            .await?
            .ok_or(TeachError::Gone)?;
        let cards: Vec<Card> = serde_json::from_str(&json).map_err(|_| TeachError::Gone)?;
        let ctx = teach_ctx(&state, &t, l.lang);
        let embed = format!("{}/embed", state.public_url.trim_end_matches('/'));
        Ok(page_with_lang(
            l,
            StatusCode::OK,
            pv::cards_page(&ctx, &id, &a.class.title, &embed, &cards),
        ))
    }
    .await;
    answer(l.lang, r)
}

/// `POST /admin/classes/{id}/students/allowance`: messages per day and week per student.
async fn set_allowance(
    State(state): State<AppState>,
    t: Signed,
    l: PageLang,
    client: ClientAddr,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<AllowanceForm>,
) -> Response {
    let r = async {
        check_csrf(&state, &t, &form.csrf)?;
        let a = access(&state, &t, &id).await?;
        a.require(Need::Edit)?;
        let allowance = match parse_allowance(&form.per_day, &form.per_week) {
            Ok(a) => a,
            Err(field) => {
                return refuse(&state, &t, l, &id, pv::Problem::Allowance(field), String::new()).await;
            }
        };
        let addr = address(&client);
        state
            .store
            .set_student_allowance(&id, allowance, audit_of(&t, &addr))
            .await?;
        tracing::info!(target: "classchat::admin", actor = %t.actor, class = %id, action = "student_allowance_set", "student allowance set");
        Ok(Redirect::to(&format!("/admin/classes/{}/students?done=allowance", pv::segment(&id)))
            .into_response())
    }
    .await;
    answer(l.lang, r)
}

/// `POST /admin/classes/{id}/students/reset`: one student's day and week start afresh.
async fn reset(
    State(state): State<AppState>,
    t: Signed,
    l: PageLang,
    client: ClientAddr,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<ResetForm>,
) -> Response {
    let r = async {
        check_csrf(&state, &t, &form.csrf)?;
        let a = access(&state, &t, &id).await?;
        a.require(Need::Edit)?;
        let addr = address(&client);
        if !state
            .store
            .reset_student(&id, &form.student, audit_of(&t, &addr))
            .await?
        {
            return Err(TeachError::NotFound);
        }
        tracing::info!(target: "classchat::admin", actor = %t.actor, class = %id, action = "student_allowance_reset", "student allowance reset");
        Ok(Redirect::to(&format!("/admin/classes/{}/students?done=reset", pv::segment(&id)))
            .into_response())
    }
    .await;
    answer(l.lang, r)
}

/// The code `id` and the signed-in person's right to change it.
async fn code_access(
    state: &AppState,
    t: &Signed,
    id: &str,
) -> TeachResult<crate::store::personal_codes::PersonalCodeRecord> {
    let code = state
        .store
        .personal_code(id)
        .await?
        .ok_or(TeachError::NotFound)?;
    access(state, t, &code.class_id)
        .await?
        .require(Need::Edit)?;
    Ok(code)
}

// What the dashboard and the admin API (`api_admin::students`) both do.

/// One code per name for class `class_id`, stored (digests only) with its audit line:
/// answers each (id, name, code), the codes to be shown once.
pub(crate) async fn make_codes(
    state: &AppState,
    class_id: &str,
    names: Vec<String>,
    audit: Audit<'_>,
) -> sqlx::Result<Vec<(String, String, String)>> {
    let classes = state.classes.current();
    let keys = state.classes.code_keys();
    let mut made = Vec::with_capacity(names.len());
    let mut rows = Vec::with_capacity(names.len());
    for name in names {
        let (code, digest) = fresh_code(&classes, keys);
        let id = new_id('p');
        rows.push(NewPersonalCode {
            id: id.clone(),
            name: name.clone(),
            digest,
        });
        made.push((id, name, code));
    }
    let actor = audit.actor.to_owned();
    state
        .store
        .create_personal_codes(class_id, &rows, audit)
        .await?;
    tracing::info!(target: "classchat::admin", actor = %actor, class = %class_id, codes = rows.len(), action = "personal_codes_created", "personal codes made");
    Ok(made)
}

/// Revokes the code `id` and ends its sessions. `false`: no such code in force.
pub(crate) async fn revoke_code(
    state: &AppState,
    id: &str,
    audit: Audit<'_>,
) -> sqlx::Result<bool> {
    let actor = audit.actor.to_owned();
    if !state.store.revoke_personal_code(id, audit).await? {
        return Ok(false);
    }
    end_sessions(state, id).await?;
    tracing::info!(target: "classchat::admin", actor = %actor, code = %id, action = "personal_code_revoked", "personal code revoked");
    Ok(true)
}

/// A new code for the student of code `id` (the old one and its sessions stop); `None`:
/// no such code.
pub(crate) async fn reissue_code(
    state: &AppState,
    id: &str,
    audit: Audit<'_>,
) -> sqlx::Result<Option<String>> {
    let (code, digest) = fresh_code(&state.classes.current(), state.classes.code_keys());
    let actor = audit.actor.to_owned();
    if !state
        .store
        .reissue_personal_code(id, &digest, audit)
        .await?
    {
        return Ok(None);
    }
    end_sessions(state, id).await?;
    tracing::info!(target: "classchat::admin", actor = %actor, student = %code_student(id), action = "personal_code_reissued", "personal code re-issued");
    Ok(Some(code))
}

/// Ends every session signed in with the code `code_id`, on every replica.
async fn end_sessions(state: &AppState, code_id: &str) -> sqlx::Result<()> {
    let now = now_secs();
    for (session, class, ends) in state.store.personal_code_sessions(code_id, now).await? {
        state
            .store
            .revoke_session(&session, &class, ends, "personal_code", now)
            .await?;
        state.revoked.insert_until(session.clone(), ends);
        state
            .store
            .notify(&crate::sync::revoked_event(&session, ends))
            .await;
    }
    Ok(())
}

/// The students of `class` at 80 % or more of `allowance` today or this week (in the
/// class's time zone), named by their personal code when they have one.
pub(crate) async fn watch_list(
    state: &AppState,
    class: &crate::classes::Class,
    allowance: AllowanceRecord,
    codes: &[PersonalCodeRecord],
) -> sqlx::Result<Vec<pv::WatchRow>> {
    let now = jiff::Zoned::now().with_time_zone(class.time_zone.clone());
    let p = Periods::at(&now);
    let uses = state.store.student_uses(&class.id, &p.day, &p.week).await?;
    Ok(uses
        .into_iter()
        .filter_map(|u| {
            let day = standing(u.day, allowance.per_day);
            let week = standing(u.week, allowance.per_week);
            if day.is_none() && week.is_none() {
                return None;
            }
            let name = u
                .student
                .strip_prefix("code:")
                .and_then(|cid| codes.iter().find(|c| c.id == cid))
                .map(|c| c.name.clone());
            Some(pv::WatchRow {
                student: u.student,
                name,
                day: u.day,
                week: u.week,
                over: day == Some(true) || week == Some(true),
            })
        })
        .collect())
}

/// `POST /admin/personal-codes/{id}/revoke`: the code stops signing in, and the sessions
/// signed in with it end at once.
async fn revoke(
    State(state): State<AppState>,
    t: Signed,
    l: PageLang,
    client: ClientAddr,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<CsrfOnly>,
) -> Response {
    let r = async {
        check_csrf(&state, &t, &form.csrf)?;
        let code = code_access(&state, &t, &id).await?;
        let addr = address(&client);
        if !revoke_code(&state, &id, audit_of(&t, &addr)).await? {
            return Err(TeachError::NotFound);
        }
        Ok(Redirect::to(&format!(
            "/admin/classes/{}/students?done=revoked",
            pv::segment(&code.class_id)
        ))
        .into_response())
    }
    .await;
    answer(l.lang, r)
}

/// `POST /admin/personal-codes/{id}/reissue`: a new code for the same student (their
/// allowance stays theirs); the old code and its sessions stop. Shown once, as a card.
async fn reissue(
    State(state): State<AppState>,
    t: Signed,
    l: PageLang,
    client: ClientAddr,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<CsrfOnly>,
) -> Response {
    let r = async {
        check_csrf(&state, &t, &form.csrf)?;
        let code = code_access(&state, &t, &id).await?;
        let addr = address(&client);
        let new_code = reissue_code(&state, &id, audit_of(&t, &addr))
            .await?
            .ok_or(TeachError::NotFound)?;
        let card = Card {
            name: code.name,
            code: new_code,
        };
        show_once(&state, &t, &code.class_id, &[card]).await
    }
    .await;
    answer(l.lang, r)
}
