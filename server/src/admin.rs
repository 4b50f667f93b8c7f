//! The teacher dashboard at `/admin`: usage per class and per student, and the actions
//! that change who may chat (rotate a code, disable a class, revoke a session, set a
//! quota). Server-rendered, usable without JavaScript; every form carries a CSRF token.
//!
//! The widget API never accepts these credentials and these pages never accept widget
//! tokens: the two sides share nothing but the database.

pub mod cf_access;
pub mod failed_sign_ins;
pub mod health;
mod lti;
pub mod model;
pub mod session;
pub mod views;

use std::collections::HashMap;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use futures::StreamExt;

use crate::basics::{HOUR_MS, now_ms, now_secs};
use crate::classes::{Class, generate_code};
use crate::client_addr::ClientAddr;
use crate::config::{AdminSettings, PasswordCheck, Settings};
use crate::state::AppState;
use crate::store::dashboard::{ClassStats, OverrideChange};
use cf_access::CfAccess;
use model::*;
use session::{
    ADMIN_ACCOUNT, COOKIE, CookieKeys, DEVICE_AGE, DEVICE_COOKIE, DEVICE_FAILURES, LOGIN_COOKIE,
    LOGIN_FORM_AGE, LockedBy, LoginBudgets, LoginForm, SESSION_AGE, Verifier, cookie, random_token,
};

/// The dashboard's configuration and keys.
#[derive(Debug)]
pub struct Admin {
    mode: Mode,
    keys: CookieKeys,
    secure_cookies: bool,
    /// Wrong passwords per address, per account and per known browser, counted in the
    /// database (see `session`).
    login_budgets: LoginBudgets,
    verifier: Verifier,
    new_codes: NewCodes,
}

/// Freshly rotated codes waiting to be shown once, each behind a random ticket that only
/// the teacher who rotated can redeem, for a few minutes.
#[derive(Debug, Default)]
struct NewCodes(std::sync::Mutex<HashMap<String, PendingCode>>);

/// A new code behind its ticket: for whom, for which class, and since when.
#[derive(Debug)]
struct PendingCode {
    binding: String,
    class_id: String,
    code: String,
    made: std::time::Instant,
}

impl NewCodes {
    const TTL: std::time::Duration = std::time::Duration::from_secs(300);

    fn put(&self, binding: &str, class_id: &str, code: String) -> String {
        let ticket = random_token();
        let mut m = crate::basics::lock(&self.0);
        m.retain(|_, p| p.made.elapsed() < Self::TTL);
        m.insert(
            ticket.clone(),
            PendingCode {
                binding: binding.to_owned(),
                class_id: class_id.to_owned(),
                code,
                made: std::time::Instant::now(),
            },
        );
        ticket
    }

    fn take(&self, ticket: &str, binding: &str, class_id: &str) -> Option<String> {
        let mut m = crate::basics::lock(&self.0);
        match m.get(ticket) {
            Some(p)
                if p.binding == binding
                    && p.class_id == class_id
                    && p.made.elapsed() < Self::TTL =>
            {
                m.remove(ticket).map(|p| p.code)
            }
            _ => None,
        }
    }
}

#[derive(Debug)]
enum Mode {
    Off,
    Password(PasswordCheck),
    CfAccess(Box<CfAccess>),
}

impl Admin {
    pub fn new(settings: &Settings, public_url: &str) -> anyhow::Result<Self> {
        let mode = match &settings.admin {
            AdminSettings::Off => Mode::Off,
            AdminSettings::Password(p) => Mode::Password(p.clone()),
            AdminSettings::CfAccess {
                team_domain,
                aud,
                certs_url,
                emails,
            } => {
                // HTTPS_PROXY and NO_PROXY as for Open WebUI, from the settings only.
                let http = settings
                    .proxy
                    .apply(reqwest::Client::builder())?
                    .redirect(reqwest::redirect::Policy::none())
                    .timeout(std::time::Duration::from_secs(5))
                    .build()?;
                Mode::CfAccess(Box::new(CfAccess::new(
                    team_domain,
                    aud,
                    certs_url.clone(),
                    emails.clone(),
                    http,
                )))
            }
        };
        let keys = match &mode {
            Mode::Password(check) => CookieKeys::new(&settings.auth_secret).for_password(check),
            _ => CookieKeys::new(&settings.auth_secret),
        };
        Ok(Self {
            mode,
            keys,
            secure_cookies: public_url.starts_with("https://"),
            login_budgets: LoginBudgets {
                address: settings.login_failures_per_address,
                account: settings.admin_login_failures,
                device: DEVICE_FAILURES,
            },
            verifier: Verifier::default(),
            new_codes: NewCodes::default(),
        })
    }
}

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/admin", get(overview))
        .route("/admin/login", get(login_form).post(login))
        .route("/admin/logout", post(logout))
        .route("/admin/classes/{id}", get(class_view))
        .route("/admin/classes/{id}/rotate", post(rotate))
        .route("/admin/classes/{id}/disable", post(disable))
        .route("/admin/classes/{id}/enable", post(enable))
        .route("/admin/classes/{id}/quota", post(set_quota))
        .route("/admin/classes/{id}/reset", post(reset))
        .route("/admin/classes/{id}/{action}", post(no_such_action))
        .route("/admin/sessions/{session_id}/revoke", post(revoke_session))
        .route("/admin/export.csv", get(export))
        .merge(lti::router())
}

/// A signed-in teacher. Being an extractor, a dashboard handler cannot forget to check.
struct Teacher {
    actor: String,
    /// What the CSRF token is bound to: the session nonce, or the Access email.
    binding: String,
}

/// An HTML page with the headers every dashboard answer carries.
fn html(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'"),
    );
    r
}

fn page(status: StatusCode, title: &str, text: &str) -> Response {
    html(status, views::message_page(title, text))
}

/// Why a dashboard request did not do what it asked: the dashboard's [`crate::error::AppError`],
/// answered with the message page instead of JSON.
#[derive(Debug, thiserror::Error)]
enum AdminError {
    /// Logged with its cause; the page says only that the database did not answer.
    #[error("dashboard query failed: {0}")]
    Db(#[from] sqlx::Error),
    #[error("no such class")]
    NoClass,
    #[error("no such session")]
    NoSession,
    #[error("no such action")]
    NoAction,
    #[error("the form's CSRF token is missing or wrong")]
    FormExpired,
    #[error("the quota is not a whole number")]
    BadQuota,
    #[error("the change clashes with another class's codes")]
    Conflict,
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let (status, title, text) = match &self {
            Self::Db(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "The database did not answer. Please try again.",
            ),
            Self::NoClass => (
                StatusCode::NOT_FOUND,
                "No such class",
                "There is no class with that id.",
            ),
            Self::NoSession => (
                StatusCode::NOT_FOUND,
                "No such session",
                "That session never signed in here.",
            ),
            Self::NoAction => (
                StatusCode::NOT_FOUND,
                "No such action",
                "That action does not exist.",
            ),
            Self::FormExpired => (
                StatusCode::FORBIDDEN,
                "This form has expired",
                "The form was missing its security token or it was out of date. Go back, reload the page and try again.",
            ),
            Self::BadQuota => (
                StatusCode::BAD_REQUEST,
                "Not a number",
                "The daily quota must be a whole number (0 for no quota).",
            ),
            Self::Conflict => (
                StatusCode::CONFLICT,
                "That change conflicts",
                "The new settings clash with another class's codes.",
            ),
        };
        let mut resp = page(status, title, text);
        // Logged once by the failure layer, with the request id; never shown on the page.
        resp.extensions_mut().insert(crate::error::FailureReport {
            code: "dashboard",
            detail: match &self {
                Self::Db(e) => Some(crate::basics::error_chain(e)),
                _ => None,
            },
        });
        resp
    }
}

type AdminResult<T = Response> = Result<T, AdminError>;

async fn identify(state: &AppState, headers: &HeaderMap) -> Result<Teacher, Response> {
    let admin = &state.admin;
    match &admin.mode {
        Mode::Off => Err(page(
            StatusCode::NOT_FOUND,
            "The dashboard is off",
            "Turn it on with ADMIN_PASSWORD (or ADMIN_PASSWORD_HASH), or put it behind Cloudflare Access with \
             CF_ACCESS_TEAM_DOMAIN, CF_ACCESS_AUD and ADMIN_EMAILS, then restart classchat.",
        )),
        Mode::Password(_) => {
            let Some(nonce) = cookie(headers, COOKIE).and_then(|c| admin.keys.check(c, now_secs()))
            else {
                return Err(Redirect::to("/admin/login").into_response());
            };
            // Signed out on some replica: the cookie alone cannot say so.
            match state.store.admin_session_revoked(&nonce).await {
                Ok(false) => Ok(Teacher {
                    actor: "admin".into(),
                    binding: nonce,
                }),
                Ok(true) => Err(Redirect::to("/admin/login").into_response()),
                Err(e) => Err(AdminError::from(e).into_response()),
            }
        }
        Mode::CfAccess(cf) => {
            let assertion = headers
                .get("cf-access-jwt-assertion")
                .and_then(|v| v.to_str().ok());
            match cf.verify(assertion).await {
                Ok(email) => Ok(Teacher {
                    binding: email.clone(),
                    actor: email,
                }),
                Err(e) => {
                    tracing::warn!(target: "classchat::admin", "dashboard refused: {}", e.log_line());
                    let status =
                        StatusCode::from_u16(e.status()).unwrap_or(StatusCode::UNAUTHORIZED);
                    Err(page(status, "Not allowed", &e.page_text()))
                }
            }
        }
    }
}

impl axum::extract::FromRequestParts<AppState> for Teacher {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Response> {
        identify(state, &parts.headers).await
    }
}

fn ctx(state: &AppState, t: &Teacher, flash: Option<String>) -> PageCtx {
    PageCtx {
        actor: t.actor.clone(),
        csrf: state.admin.keys.csrf(&t.binding),
        flash,
        timezone: state.settings.timezone_name.clone(),
    }
}

/// Refuses a form whose CSRF token is missing or wrong.
fn check_csrf(state: &AppState, t: &Teacher, form: &HashMap<String, String>) -> AdminResult<()> {
    match form.get("csrf") {
        Some(token) if state.admin.keys.csrf_ok(&t.binding, token) => Ok(()),
        _ => Err(AdminError::FormExpired),
    }
}

/// Refuses a form with a bad CSRF token, then one for a class that does not exist.
fn check_class_form(
    state: &AppState,
    t: &Teacher,
    id: &str,
    form: &HashMap<String, String>,
) -> AdminResult<()> {
    check_csrf(state, t, form)?;
    match state.classes.current().get(id) {
        Some(_) => Ok(()),
        None => Err(AdminError::NoClass),
    }
}

/// The instants the dashboard counts from, in the configured zone.
struct Window {
    now_ms: i64,
    today_ms: i64,
    week_ms: i64,
    first_hour_ms: i64,
}

fn window(state: &AppState) -> Window {
    let now = jiff::Zoned::now().with_time_zone(state.settings.timezone.clone());
    let now_ms = now.timestamp().as_millisecond();
    let today = now
        .start_of_day()
        .map(|d| d.timestamp().as_millisecond())
        .unwrap_or(now_ms);
    let week = now
        .start_of_day()
        .ok()
        .and_then(|d| d.checked_sub(jiff::Span::new().days(6)).ok())
        .map(|d| d.timestamp().as_millisecond())
        .unwrap_or(today);
    let hour = now_ms - now_ms.rem_euclid(HOUR_MS);
    Window {
        now_ms,
        today_ms: today,
        week_ms: week,
        first_hour_ms: hour - (CHART_HOURS as i64 - 1) * HOUR_MS,
    }
}

async fn summary(state: &AppState, class: &Class, w: &Window) -> AdminResult<ClassSummary> {
    let st: ClassStats = state
        .store
        .class_stats(
            &class.id,
            w.today_ms,
            w.week_ms,
            w.first_hour_ms,
            CHART_HOURS,
            w.now_ms - HOUR_MS,
        )
        .await?;
    let overridden = state.classes.override_of(&class.id).map(|o| {
        let mut fields = Vec::new();
        if o.codes.is_some() {
            fields.push("codes".to_owned());
        }
        if o.enabled.is_some() {
            fields.push("enabled".to_owned());
        }
        if o.daily_quota.is_some() {
            fields.push("daily quota".to_owned());
        }
        OverrideInfo {
            by: o.updated_by,
            at_ms: o.updated_ms,
            fields,
        }
    });
    Ok(ClassSummary {
        id: class.id.clone(),
        title: class.title.clone(),
        enabled: class.enabled,
        daily_quota: class.daily_message_quota,
        overridden,
        messages_today: st.messages_today,
        tokens_today: st.tokens_today,
        estimated_today: st.estimated_today,
        messages_week: st.messages_week,
        tokens_week: st.tokens_week,
        estimated_week: st.estimated_week,
        active_sessions: st.active_sessions,
        error_rate_week: if st.messages_week == 0 {
            0.0
        } else {
            st.errors_week as f64 / st.messages_week as f64
        },
        hourly: st.hourly,
    })
}

async fn overview(
    State(state): State<AppState>,
    t: Teacher,
    Query(q): Query<HashMap<String, String>>,
) -> AdminResult {
    let w = window(&state);
    let mut classes = Vec::new();
    for class in state.classes.current().iter() {
        classes.push(summary(&state, class, &w).await?);
    }
    let o = Overview {
        classes,
        first_hour_ms: w.first_hour_ms,
        now_ms: w.now_ms,
    };
    let page = views::overview_page(&ctx(&state, &t, flash(&q)), &o);
    let page = health::with_panel(page, &state.health, &state.settings.timezone_name);
    let page = if matches!(state.admin.mode, Mode::Password(_)) {
        let failed = state
            .store
            .admin_failed_since_last_visit(ADMIN_ACCOUNT)
            .await?;
        failed_sign_ins::with_failed_sign_ins(page, &failed, &state.settings.timezone_name)
    } else {
        page
    };
    Ok(html(StatusCode::OK, page))
}

fn flash(q: &HashMap<String, String>) -> Option<String> {
    let text = match q.get("done")?.as_str() {
        "disabled" => "Class disabled: its students are signed out and cannot sign in.",
        "enabled" => "Class enabled.",
        "quota" => "Daily quota saved.",
        "reset" => "Back to the configured settings.",
        "revoked" => "Session revoked: that student must enter the access code again.",
        _ => return None,
    };
    Some(text.to_owned())
}

async fn class_page(
    state: &AppState,
    t: &Teacher,
    id: &str,
    flash: Option<String>,
    new_code: Option<String>,
) -> AdminResult {
    let classes = state.classes.current();
    let class = classes.get(id).ok_or(AdminError::NoClass)?;
    let w = window(state);
    let summary = summary(state, class, &w).await?;
    let store = &state.store;
    let students = store.class_students(id, 500).await?;
    let errors = store.class_errors(id, 20).await?;
    let audit = store.recent_audit(Some(id), 20).await?;
    let p = ClassPage {
        summary,
        first_hour_ms: w.first_hour_ms,
        now_ms: w.now_ms,
        students: students
            .into_iter()
            .map(
                |crate::store::dashboard::StudentRecord {
                     session_id,
                     display_name,
                     messages,
                     tokens,
                     estimated,
                     last_at_ms,
                     revoked,
                 }| StudentRow {
                    revoked: revoked != 0 || state.revoked.contains(&session_id),
                    session_id,
                    display_name,
                    messages,
                    tokens,
                    estimated,
                    last_at_ms,
                },
            )
            .collect(),
        errors: errors
            .into_iter()
            .map(
                |crate::store::dashboard::ErrorRecord {
                     at_ms,
                     session_id,
                     display_name,
                     error_code,
                 }| ErrorRow {
                    at_ms,
                    session_id,
                    display_name,
                    error_code,
                },
            )
            .collect(),
        audit: audit
            .into_iter()
            .map(
                |crate::store::dashboard::AuditRecord {
                     at_ms,
                     actor,
                     action,
                     class_id,
                     detail,
                 }| AuditRow {
                    at_ms,
                    actor,
                    action,
                    class_id,
                    detail,
                },
            )
            .collect(),
        new_code,
    };
    Ok(html(
        StatusCode::OK,
        views::class_page(&ctx(state, t, flash), &p),
    ))
}

async fn class_view(
    State(state): State<AppState>,
    t: Teacher,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> AdminResult {
    let new_code = q
        .get("code")
        .and_then(|ticket| state.admin.new_codes.take(ticket, &t.binding, &id));
    let flash = match new_code {
        Some(_) => Some("New access code made: every student must enter it.".to_owned()),
        None => flash(&q),
    };
    class_page(&state, &t, &id, flash, new_code).await
}

/// Reloads one class's overrides from the store into the registry after a change.
async fn refresh_class(state: &AppState, id: &str) -> AdminResult<()> {
    let record = state
        .store
        .load_overrides()
        .await?
        .into_iter()
        .find(|o| o.class_id == id);
    let generation = state
        .store
        .class_generations()
        .await?
        .get(id)
        .copied()
        .unwrap_or(0);
    state.store.notify(crate::sync::CLASSES_EVENT).await;
    state.classes.set_override(id, record, generation).map_err(|e| {
        tracing::error!(target: "classchat::admin", class = id, error = %e, "dashboard change conflicts");
        AdminError::Conflict
    })
}

/// The dashboard form posted to one class's action: its id and fields.
type ClassForm = (Path<String>, axum::Form<HashMap<String, String>>);

/// Records one change to a class, applies it, and sends the teacher back to the class.
async fn change(
    state: &AppState,
    t: &Teacher,
    id: &str,
    change: OverrideChange,
    detail: &str,
    (action, done): (&str, &str),
) -> AdminResult {
    state
        .store
        .change_class(id, &change, &t.actor, now_ms(), detail)
        .await?;
    refresh_class(state, id).await?;
    tracing::info!(target: "classchat::admin", actor = %t.actor, class = %id, action = %action, "{detail}");
    Ok(Redirect::to(&format!("/admin/classes/{id}?done={done}")).into_response())
}

/// A new code for the class: every token of the old one ends.
async fn rotate(
    State(state): State<AppState>,
    t: Teacher,
    (Path(id), axum::Form(form)): ClassForm,
) -> AdminResult {
    check_class_form(&state, &t, &id, &form)?;
    let code = generate_code();
    // The generation moves first: if the change then fails, old tokens merely end.
    state.store.bump_generation(&id).await?;
    let stored = state.classes.code_keys().store(&code);
    state
        .store
        .change_class(
            &id,
            &OverrideChange::Codes(vec![stored]),
            &t.actor,
            now_ms(),
            "new access code; old tokens revoked",
        )
        .await?;
    refresh_class(&state, &id).await?;
    tracing::info!(target: "classchat::admin", actor = %t.actor, class = %id, action = "rotate_code", "access code rotated");
    // Shown once, on the page this redirects to: the URL carries a one-time id, never the
    // code, and a reload cannot rotate again (post/redirect/get).
    let ticket = state.admin.new_codes.put(&t.binding, &id, code);
    Ok(Redirect::to(&format!("/admin/classes/{id}?code={ticket}")).into_response())
}

async fn disable(
    State(state): State<AppState>,
    t: Teacher,
    (Path(id), axum::Form(form)): ClassForm,
) -> AdminResult {
    check_class_form(&state, &t, &id, &form)?;
    let c = OverrideChange::Enabled(false);
    change(
        &state,
        &t,
        &id,
        c,
        "class disabled",
        ("disable", "disabled"),
    )
    .await
}

async fn enable(
    State(state): State<AppState>,
    t: Teacher,
    (Path(id), axum::Form(form)): ClassForm,
) -> AdminResult {
    check_class_form(&state, &t, &id, &form)?;
    let c = OverrideChange::Enabled(true);
    change(&state, &t, &id, c, "class enabled", ("enable", "enabled")).await
}

async fn set_quota(
    State(state): State<AppState>,
    t: Teacher,
    (Path(id), axum::Form(form)): ClassForm,
) -> AdminResult {
    check_class_form(&state, &t, &id, &form)?;
    let q = form
        .get("quota")
        .and_then(|q| q.trim().parse::<u32>().ok())
        .ok_or(AdminError::BadQuota)?;
    let detail = format!("daily quota set to {q}");
    change(
        &state,
        &t,
        &id,
        OverrideChange::DailyQuota(q),
        &detail,
        ("quota", "quota"),
    )
    .await
}

/// Drops the dashboard's changes to the class: the configuration applies again.
async fn reset(
    State(state): State<AppState>,
    t: Teacher,
    (Path(id), axum::Form(form)): ClassForm,
) -> AdminResult {
    check_class_form(&state, &t, &id, &form)?;
    // Back to the configured codes is a code change too: tokens of the rotated code end,
    // and those from before the rotation must not come back.
    let had_codes = state
        .classes
        .override_of(&id)
        .is_some_and(|o| o.codes.is_some());
    if had_codes {
        state.store.bump_generation(&id).await?;
    }
    state.store.reset_class(&id, &t.actor, now_ms()).await?;
    refresh_class(&state, &id).await?;
    tracing::info!(target: "classchat::admin", actor = %t.actor, class = %id, action = "reset_class", "class back to configuration");
    Ok(Redirect::to(&format!("/admin/classes/{id}?done=reset")).into_response())
}

/// Any other action posted to a class: the same checks, then "no such action".
async fn no_such_action(
    State(state): State<AppState>,
    t: Teacher,
    Path((id, _action)): Path<(String, String)>,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> AdminResult {
    check_class_form(&state, &t, &id, &form)?;
    Err(AdminError::NoAction)
}

async fn revoke_session(
    State(state): State<AppState>,
    t: Teacher,
    Path(session_id): Path<String>,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> AdminResult {
    check_csrf(&state, &t, &form)?;
    let info = state
        .store
        .session_info(&session_id)
        .await?
        .ok_or(AdminError::NoSession)?;
    let class_id = info.class_id;
    let ends = info.started_at_ms / 1000 + state.settings.session_max_age.as_secs() as i64;
    state
        .store
        .admin_revoke(&session_id, &class_id, ends, &t.actor, now_ms())
        .await?;
    state.revoked.insert_until(session_id.clone(), ends);
    state
        .store
        .notify(&crate::sync::revoked_event(&session_id, ends))
        .await;
    tracing::info!(target: "classchat::admin", actor = %t.actor, class = %class_id, session = %session_id, action = "revoke_session", "session revoked");
    Ok(Redirect::to(&format!("/admin/classes/{class_id}?done=revoked")).into_response())
}

fn set_cookie(name: &str, value: &str, max_age: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

async fn login_form(State(state): State<AppState>) -> Response {
    if !matches!(state.admin.mode, Mode::Password(_)) {
        return Redirect::to("/admin").into_response();
    }
    login_page(&state, StatusCode::OK, None)
}

fn login_page(state: &AppState, status: StatusCode, error: Option<&str>) -> Response {
    let pre = random_token();
    let mut r = html(
        status,
        views::login_page(error, &state.admin.keys.login_csrf(&pre, now_secs())),
    );
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            LOGIN_COOKIE,
            &pre,
            LOGIN_FORM_AGE.as_secs(),
            state.admin.secure_cookies,
        ),
    );
    r
}

/// The login form again with a 429, a Retry-After and the wait in words.
fn too_many(state: &AppState, wait_secs: u64, text: &str) -> Response {
    let mut r = login_page(state, StatusCode::TOO_MANY_REQUESTS, Some(text));
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(wait_secs.max(1)));
    r
}

async fn login(
    State(state): State<AppState>,
    client: ClientAddr,
    headers: HeaderMap,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    let Mode::Password(check) = &state.admin.mode else {
        return Redirect::to("/admin").into_response();
    };
    let pre = cookie(&headers, LOGIN_COOKIE).unwrap_or("");
    let csrf = form.get("csrf").map(String::as_str).unwrap_or("");
    match state.admin.keys.login_csrf_check(pre, csrf, now_secs()) {
        Ok(()) => {}
        Err(LoginForm::Expired) => {
            return login_page(
                &state,
                StatusCode::FORBIDDEN,
                Some(
                    "That sign-in page had been open for more than an hour, so the password was \
                     not checked. This page is fresh: enter the password again (or reload the page).",
                ),
            );
        }
        Err(LoginForm::Invalid) => {
            return login_page(
                &state,
                StatusCode::FORBIDDEN,
                Some(
                    "This form was missing its security token, or it did not match. Please try again.",
                ),
            );
        }
    }
    let given = form.get("password").cloned().unwrap_or_default();
    let device = cookie(&headers, DEVICE_COOKIE)
        .and_then(|v| state.admin.keys.check_device(v, ADMIN_ACCOUNT, now_secs()));
    // Limits are checked inside the slot, right before the check they guard, so parallel
    // attempts cannot all pass a count that none of them has added to yet.
    state
        .admin
        .verifier
        .with_slot(attempt(&state, check, client, device, given))
        .await
}

/// One password check, once the limits allow it: a browser that signed in to the account
/// before (`device`, its device cookie's nonce) by its own budget, any other by its
/// address's and the account's.
async fn attempt(
    state: &AppState,
    check: &PasswordCheck,
    client: ClientAddr,
    device: Option<String>,
    given: String,
) -> Response {
    // Milliseconds, not `now_ms()`'s whole seconds: "since your last visit" must tell a
    // failure from the sign-in in the same second.
    let now_ms = jiff::Timestamp::now().as_millisecond();
    let budgets = state.admin.login_budgets;
    let address = client.limit_key();
    let from = crate::store::admin::LoginSource {
        account: ADMIN_ACCOUNT,
        address: &address,
        device: device.as_deref(),
    };
    let reserved = match state
        .store
        .admin_login_reserve(&from, now_ms, &budgets.windows(now_ms))
        .await
    {
        Ok(a) => a,
        Err(e) => return AdminError::from(e).into_response(),
    };
    if let Err((by, secs)) = session::judge(&reserved, device.is_some(), &budgets, now_ms) {
        if let Err(e) = state.store.admin_login_release(reserved.id).await {
            tracing::error!(target: "classchat::admin", error = %e, "could not take back a refused sign-in attempt");
        }
        let (outcome, msg) = match by {
            LockedBy::Address => (
                "rate_limited",
                format!("Too many wrong passwords. Try again in {secs} seconds."),
            ),
            LockedBy::Account => (
                "rate_limited_account",
                format!(
                    "Too many wrong passwords have been tried lately on this account, so sign-in \
                     from browsers that have not signed in before is paused. Try again in {} \
                     minutes, or use a browser you signed in with before.",
                    secs.div_ceil(60)
                ),
            ),
            LockedBy::Device => (
                "rate_limited_device",
                format!(
                    "Too many wrong passwords from this browser. Try again in {} minutes.",
                    secs.div_ceil(60)
                ),
            ),
        };
        tracing::warn!(target: "classchat::admin", client = %client, known_browser = device.is_some(), outcome, "dashboard sign-in refused");
        return too_many(state, secs, &msg);
    }
    if !Verifier::check(check, given).await {
        tracing::warn!(target: "classchat::admin", client = %client, known_browser = device.is_some(), outcome = "wrong_password", "dashboard sign-in refused");
        return login_page(state, StatusCode::UNAUTHORIZED, Some("Wrong password."));
    }
    if let Err(e) = state.store.admin_login_release(reserved.id).await {
        // The right password then counts as one failure for a while: no reason to refuse.
        tracing::error!(target: "classchat::admin", error = %e, "could not take back a successful sign-in attempt");
    }
    if let Err(e) = state.store.admin_signed_in(ADMIN_ACCOUNT, now_ms).await {
        tracing::error!(target: "classchat::admin", error = %e, "could not note the sign-in time");
    }
    let value = state.admin.keys.issue(now_secs());
    let _ = state
        .store
        // The audit's clock (whole seconds), so its lines stay in order with the others'.
        .record_audit(
            crate::basics::now_ms(),
            "admin",
            "sign_in",
            None,
            &format!("from {client}"),
        )
        .await;
    tracing::info!(target: "classchat::admin", client = %client, outcome = "ok", "dashboard sign-in");
    let mut r = Redirect::to("/admin").into_response();
    let secure = state.admin.secure_cookies;
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(COOKIE, &value, SESSION_AGE.as_secs(), secure),
    );
    r.headers_mut()
        .append(header::SET_COOKIE, set_cookie(LOGIN_COOKIE, "", 0, secure));
    // This browser is now known to the account: strangers' failures no longer lock it out.
    let known = state.admin.keys.issue_device(ADMIN_ACCOUNT, now_secs());
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(DEVICE_COOKIE, &known, DEVICE_AGE.as_secs(), secure),
    );
    r
}

/// Signs out: the browser forgets the cookie, and the database remembers its nonce until it
/// would have expired, so a copy of it stops working too, on every replica.
async fn logout(
    State(state): State<AppState>,
    t: Teacher,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> AdminResult {
    check_csrf(&state, &t, &form)?;
    if matches!(state.admin.mode, Mode::Password(_)) {
        let now_ms = now_ms();
        let until_ms = now_ms + SESSION_AGE.as_millis() as i64;
        state
            .store
            .admin_session_revoke(&t.binding, until_ms, now_ms)
            .await?;
        tracing::info!(target: "classchat::admin", actor = %t.actor, "dashboard sign-out");
    }
    let mut r = Redirect::to("/admin/login").into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(COOKIE, "", 0, state.admin.secure_cookies),
    );
    Ok(r)
}

/// A CSV cell: defused when a spreadsheet would run it as a formula (display names are
/// student input), and quoted whenever it holds a character some locale's spreadsheet takes
/// as a delimiter (`,` `;` tab) or a quote or line break, so it stays one cell everywhere.
pub(crate) fn csv_cell(s: &str) -> String {
    // Spreadsheets skip leading spaces before looking for `=`; tab and CR start formulas
    // in some (OWASP's CSV injection list).
    let s = if s.starts_with(['\t', '\r']) || s.trim_start().starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', ';', '\t', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

fn local_midnight_ms(state: &AppState, date: &str) -> Option<(jiff::civil::Date, i64)> {
    let d: jiff::civil::Date = date.trim().parse().ok()?;
    let ms = d
        .to_zoned(state.settings.timezone.clone())
        .ok()?
        .timestamp()
        .as_millisecond();
    Some((d, ms))
}

async fn export(
    State(state): State<AppState>,
    t: Teacher,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let bad = |text: &str| page(StatusCode::BAD_REQUEST, "Cannot export", text);
    let (Some((from_d, from_ms)), Some((to_d, _))) = (
        q.get("from").and_then(|d| local_midnight_ms(&state, d)),
        q.get("to").and_then(|d| local_midnight_ms(&state, d)),
    ) else {
        return bad("Give both dates as YYYY-MM-DD.");
    };
    if to_d < from_d || from_d.until(to_d).map(|s| s.get_days()).unwrap_or(0) > 400 {
        return bad("The range must run forwards and span at most 400 days.");
    }
    let Some(to_ms) = to_d
        .tomorrow()
        .ok()
        .and_then(|d| d.to_zoned(state.settings.timezone.clone()).ok())
        .map(|z| z.timestamp().as_millisecond())
    else {
        return bad("That end date is out of range.");
    };
    let class = q.get("class").filter(|c| !c.is_empty()).cloned();
    if let Some(c) = &class
        && state.classes.current().get(c).is_none()
    {
        return bad("There is no class with that id.");
    }
    let _ = state
        .store
        .record_audit(
            now_ms(),
            &t.actor,
            "export_csv",
            class.as_deref(),
            &format!("{from_d} to {to_d}"),
        )
        .await;
    let tz = state.settings.timezone.clone();
    let store = state.store.clone();
    let header_row = "time,class_id,session_id,display_name,conversation_id,model,prompt_tokens,completion_tokens,tokens_estimated,first_token_ms,total_ms,outcome,error_code\n";
    let pages = futures::stream::unfold(Some(0i64), move |after| {
        let (store, class, tz) = (store.clone(), class.clone(), tz.clone());
        async move {
            let after = after?;
            match store
                .export_page(from_ms, to_ms, class.as_deref(), after, 2000)
                .await
            {
                Ok(rows) if rows.is_empty() => None,
                Ok(rows) => {
                    let last = rows.last().map(|r| r.id);
                    let mut out = String::new();
                    for r in rows {
                        let time = jiff::Timestamp::from_millisecond(r.at_ms)
                            .map(|t| {
                                t.to_zoned(tz.clone())
                                    .strftime("%Y-%m-%dT%H:%M:%S%:z")
                                    .to_string()
                            })
                            .unwrap_or_default();
                        let opt = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
                        let cells = [
                            time,
                            csv_cell(&r.class_id),
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
                        out.push('\n');
                    }
                    Some((Ok::<_, std::io::Error>(bytes::Bytes::from(out)), last))
                }
                Err(e) => {
                    tracing::error!(target: "classchat::admin", error = %e, "export failed mid-way");
                    Some((Err(std::io::Error::other("export failed")), None))
                }
            }
        }
    });
    let body =
        futures::stream::once(async move { Ok(bytes::Bytes::from_static(header_row.as_bytes())) })
            .chain(pages);
    let filename = format!("attachment; filename=\"classchat-usage-{from_d}-to-{to_d}.csv\"");
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&filename).unwrap_or(HeaderValue::from_static("attachment")),
            ),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_defused() {
        assert_eq!(csv_cell("Mei"), "Mei");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("-1"), "'-1");
    }

    #[test]
    fn every_formula_start_is_defused_even_after_whitespace() {
        for (given, cell) in [
            ("=1+1", "'=1+1"),
            ("+1", "'+1"),
            ("-2", "'-2"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("  =1+1", "'  =1+1"),
            ("\u{a0}@x", "'\u{a0}@x"),
            ("\t=1", "\"'\t=1\""),
            ("\r=1", "\"'\r=1\""),
            ("\n=1", "\"'\n=1\""),
            ("\tplain", "\"'\tplain\""),
            ("a=b", "a=b"),
            ("Mei-Ling", "Mei-Ling"),
        ] {
            assert_eq!(csv_cell(given), cell, "{given:?}");
        }
    }

    #[test]
    fn cells_with_any_locales_delimiter_are_quoted() {
        for (given, cell) in [
            ("a;b", "\"a;b\""),
            ("a\tb", "\"a\tb\""),
            ("a,b", "\"a,b\""),
            ("a\nb", "\"a\nb\""),
            ("a\r\nb", "\"a\r\nb\""),
            ("\"", "\"\"\"\""),
            ("=x;y", "\"'=x;y\""),
            ("plain text", "plain text"),
        ] {
            assert_eq!(csv_cell(given), cell, "{given:?}");
        }
    }
}
