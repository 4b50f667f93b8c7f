//! The dashboard at `/admin`, server-rendered, usable without JavaScript; every form carries
//! a CSRF token. This module holds who is signed in ([`Signed`]: the administrator or a
//! teacher account; [`Operator`]: the administrator only) and the answers every page shares.
//! One module per area, each reading its typed forms and handing plain data to views:
//!
//! - `sign_in`: signing in (the administrator's password, a teacher's email and password)
//!   and out;
//! - `teachers`: the administrator's Teachers page (invite, disable);
//! - `classes`: a teacher's classes, their activities and members (rules: `crate::teachers`);
//! - `usage`: the administrator's usage pages, the actions on a class's code, switch and
//!   quota, and the CSV export.
//!
//! The widget API never accepts these credentials and these pages never accept widget
//! tokens: the two sides share nothing but the database.

pub mod alerts;
pub mod cf_access;
mod classes;
pub mod conversations;
pub mod failed_sign_ins;
pub mod health;
pub(crate) mod i18n;
pub(crate) mod lti;
pub mod model;
mod one_time;
pub(crate) mod personal_codes;
pub(crate) mod personal_codes_views;
pub mod session;
mod sign_in;
mod teach_views;
mod teachers;
mod tokens;
mod usage;
pub mod views;

pub(crate) use usage::csv_cell;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use futures::StreamExt;

use crate::basics::{HOUR_MS, now_ms, now_secs};
use crate::classes::{Class, generate_code};
use crate::config::{AdminSettings, PasswordCheck, Settings};
use crate::state::AppState;
use crate::store::dashboard::{ClassStats, OverrideChange};
use cf_access::CfAccess;
use model::*;
use session::{ADMIN_ACCOUNT, COOKIE, CookieKeys, DEVICE_FAILURES, LoginBudgets, Verifier, cookie};

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
        })
    }
}

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .merge(sign_in::router())
        .merge(teachers::router())
        .merge(tokens::router())
        .merge(personal_codes::router())
        .merge(classes::router())
        .merge(usage::router())
        .merge(conversations::router())
        .merge(alerts::routes())
        .merge(lti::router())
}

/// Who is signed in to the dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Who {
    /// The server's operator (ADMIN_PASSWORD, or an email in ADMIN_EMAILS): sees and
    /// changes everything.
    Administrator,
    /// A teacher account: sees only the classes it is a member of.
    Teacher { id: String, email: String },
}

/// Anyone signed in to the dashboard. Being an extractor, a handler cannot forget to check.
#[derive(Debug, Clone)]
pub(crate) struct Signed {
    pub actor: String,
    /// What the CSRF token is bound to: the session nonce, or the Access email.
    pub binding: String,
    pub who: Who,
}

impl Signed {
    pub(crate) fn teacher_id(&self) -> Option<&str> {
        match &self.who {
            Who::Administrator => None,
            Who::Teacher { id, .. } => Some(id),
        }
    }
}

/// The administrator only: the operator's pages (usage of every class, sessions, export).
/// A teacher account is sent to its own classes (GET) or told there is no such page.
struct Operator {
    actor: String,
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
    #[error("a teacher account asked for an administrator's page")]
    NotForTeachers,
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
            Self::NotForTeachers => (
                StatusCode::NOT_FOUND,
                "No such page",
                "This page is for the server's administrator. Your classes are at /admin/classes.",
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

async fn identify(state: &AppState, headers: &HeaderMap) -> Result<Signed, Response> {
    let admin = &state.admin;
    let to_login = || Redirect::to("/admin/login").into_response();
    match &admin.mode {
        Mode::Off => Err(page(
            StatusCode::NOT_FOUND,
            "The dashboard is off",
            "Turn it on with ADMIN_PASSWORD (or ADMIN_PASSWORD_HASH), or put it behind Cloudflare Access with \
             CF_ACCESS_TEAM_DOMAIN, CF_ACCESS_AUD and ADMIN_EMAILS, then restart classchat.",
        )),
        Mode::Password(_) => {
            let Some(value) = cookie(headers, COOKIE) else {
                return Err(to_login());
            };
            let now = now_secs();
            let (teacher_id, nonce) = match admin.keys.check(value, now) {
                Some(nonce) => (None, nonce),
                None => match admin.keys.check_teacher(value, now) {
                    Some((id, nonce)) => (Some(id), nonce),
                    None => return Err(to_login()),
                },
            };
            // Signed out on some replica: the cookie alone cannot say so.
            match state.store.admin_session_revoked(&nonce).await {
                Ok(false) => {}
                Ok(true) => return Err(to_login()),
                Err(e) => return Err(AdminError::from(e).into_response()),
            }
            let who = match teacher_id {
                None => Who::Administrator,
                // Looked up on every request: a disabled teacher is out at once, everywhere.
                Some(id) => match state.store.teacher(&id).await {
                    Ok(Some(t)) if t.disabled == 0 => Who::Teacher { id, email: t.email },
                    Ok(_) => return Err(to_login()),
                    Err(e) => return Err(AdminError::from(e).into_response()),
                },
            };
            Ok(Signed {
                actor: match &who {
                    Who::Administrator => "admin".into(),
                    Who::Teacher { email, .. } => email.clone(),
                },
                binding: nonce,
                who,
            })
        }
        Mode::CfAccess(cf) => {
            let assertion = headers
                .get("cf-access-jwt-assertion")
                .and_then(|v| v.to_str().ok());
            let refuse = |e: &cf_access::CfAccessError| {
                tracing::warn!(target: "classchat::admin", "dashboard refused: {}", e.log_line());
                let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::UNAUTHORIZED);
                page(status, "Not allowed", &e.page_text())
            };
            match cf.verify(assertion).await {
                Ok(email) => Ok(Signed {
                    binding: email.clone(),
                    actor: email,
                    who: Who::Administrator,
                }),
                // Not an administrator: an invited teacher with that email, enabled, may
                // come in as that teacher (Access has verified the address).
                Err(cf_access::CfAccessError::EmailNotAllowed(email)) => {
                    match state.store.teacher_login(&email).await {
                        Ok(Some(t)) if t.disabled == 0 && !email.is_empty() => Ok(Signed {
                            binding: format!("teacher:{email}"),
                            actor: email.clone(),
                            who: Who::Teacher { id: t.id, email },
                        }),
                        Ok(_) => Err(refuse(&cf_access::CfAccessError::EmailNotAllowed(email))),
                        Err(e) => Err(AdminError::from(e).into_response()),
                    }
                }
                Err(e) => Err(refuse(&e)),
            }
        }
    }
}

impl axum::extract::FromRequestParts<AppState> for Signed {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Response> {
        identify(state, &parts.headers).await
    }
}

impl axum::extract::FromRequestParts<AppState> for Operator {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Response> {
        let s = identify(state, &parts.headers).await?;
        match s.who {
            Who::Administrator => Ok(Operator {
                actor: s.actor,
                binding: s.binding,
            }),
            Who::Teacher { .. } if parts.method == axum::http::Method::GET => {
                Err(Redirect::to("/admin/classes").into_response())
            }
            Who::Teacher { .. } => Err(AdminError::NotForTeachers.into_response()),
        }
    }
}

/// A form that carries nothing but its CSRF token.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

/// Refuses a form whose CSRF token is missing or wrong.
pub(crate) fn csrf_ok(state: &AppState, binding: &str, token: &str) -> bool {
    !token.is_empty() && state.admin.keys.csrf_ok(binding, token)
}

/// Refuses a form whose CSRF token is not the signed-in person's.
fn check_signed_csrf(state: &AppState, t: &Signed, token: &str) -> AdminResult<()> {
    if csrf_ok(state, &t.binding, token) {
        Ok(())
    } else {
        Err(AdminError::FormExpired)
    }
}
