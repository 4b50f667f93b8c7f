//! Signing in to the dashboard and out of it: the administrator with ADMIN_PASSWORD, a
//! teacher with their email and the password they set from their invitation. Both spend
//! the same budgets (per address, per account, per known browser; see `session`), the
//! account being "admin" or the teacher's email.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use super::i18n::{Lang, PageLang};
use super::session::{
    ADMIN_ACCOUNT, COOKIE, DEVICE_AGE, DEVICE_COOKIE, LOGIN_COOKIE, LOGIN_FORM_AGE, LockedBy,
    LoginForm, SESSION_AGE, Verifier, cookie, random_token,
};
use super::{AdminError, AdminResult, CsrfForm, Mode, Signed, Who, check_signed_csrf, html, views};
use crate::basics::{now_ms, now_secs};
use crate::client_addr::ClientAddr;
use crate::config::PasswordCheck;
use crate::state::AppState;
use crate::teachers::{normalize_email, verify_password};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/login", get(login_form).post(login))
        .route("/admin/logout", post(logout))
}

/// The sign-in form: an email for a teacher, none for the administrator.
#[derive(Debug, Default, serde::Deserialize)]
struct LoginFields {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

/// Whose password is being checked.
enum Account<'a> {
    Administrator(&'a PasswordCheck),
    /// A teacher, by lower-cased email.
    Teacher(String),
}

impl Account<'_> {
    /// The name the budgets and device cookies count by.
    fn name(&self) -> &str {
        match self {
            Self::Administrator(_) => ADMIN_ACCOUNT,
            Self::Teacher(email) => email,
        }
    }
}

pub(super) fn set_cookie(name: &str, value: &str, max_age: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

async fn login_form(State(state): State<AppState>, l: PageLang) -> Response {
    if !matches!(state.admin.mode, Mode::Password(_)) {
        return Redirect::to("/admin").into_response();
    }
    let mut r = login_page(&state, l.lang, StatusCode::OK, None);
    if l.chosen {
        r.headers_mut().append(header::SET_COOKIE, l.lang.cookie());
    }
    r
}

fn login_page(state: &AppState, lang: Lang, status: StatusCode, error: Option<&str>) -> Response {
    let pre = random_token();
    let mut r = html(
        status,
        views::login_page(error, &state.admin.keys.login_csrf(&pre, now_secs()), lang),
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
fn too_many(state: &AppState, lang: Lang, wait_secs: u64, text: &str) -> Response {
    let mut r = login_page(state, lang, StatusCode::TOO_MANY_REQUESTS, Some(text));
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(wait_secs.max(1)));
    r
}

async fn login(
    State(state): State<AppState>,
    client: ClientAddr,
    l: PageLang,
    headers: HeaderMap,
    axum::Form(form): axum::Form<LoginFields>,
) -> Response {
    let lang = l.lang;
    let Mode::Password(check) = &state.admin.mode else {
        return Redirect::to("/admin").into_response();
    };
    let pre = cookie(&headers, LOGIN_COOKIE).unwrap_or("");
    match state
        .admin
        .keys
        .login_csrf_check(pre, &form.csrf, now_secs())
    {
        Ok(()) => {}
        Err(LoginForm::Expired) => {
            return login_page(
                &state,
                lang,
                StatusCode::FORBIDDEN,
                Some(lang.t(
                    "That sign-in page had been open for more than an hour, so the password was \
                     not checked. This page is fresh: enter the password again (or reload the page).",
                    "這個登入頁面已開啟超過一小時，因此沒有檢查密碼。這是新的頁面：請再輸入一次密碼（或重新載入頁面）。",
                )),
            );
        }
        Err(LoginForm::Invalid) => {
            return login_page(
                &state,
                lang,
                StatusCode::FORBIDDEN,
                Some(lang.t(
                    "This form was missing its security token, or it did not match. Please try again.",
                    "這個表單缺少安全權杖，或權杖不符。請再試一次。",
                )),
            );
        }
    }
    let account = if form.email.trim().is_empty() {
        Account::Administrator(check)
    } else {
        match normalize_email(&form.email) {
            Ok(e) => Account::Teacher(e),
            Err(_) => {
                return login_page(
                    &state,
                    lang,
                    StatusCode::BAD_REQUEST,
                    Some(lang.t(
                        "That is not an email address. Teachers sign in with the email address \
                         they were invited with; leave it empty for the administrator's password.",
                        "這不是電子郵件地址。教師請以受邀的電子郵件地址登入；管理員密碼則請將此欄留空。",
                    )),
                );
            }
        }
    };
    let device = cookie(&headers, DEVICE_COOKIE)
        .and_then(|v| state.admin.keys.check_device(v, account.name(), now_secs()));
    // Limits are checked inside the slot, right before the check they guard, so parallel
    // attempts cannot all pass a count that none of them has added to yet.
    state
        .admin
        .verifier
        .with_slot(attempt(
            &state,
            lang,
            account,
            client,
            device,
            form.password,
        ))
        .await
}

/// Whether the password is right, and the session cookie to issue when it is. A teacher
/// who is unknown, disabled or has not set a password fails like a wrong password (and
/// costs the same argon2 time, so the answer's timing does not tell them apart).
async fn verify(state: &AppState, account: &Account<'_>, given: String) -> Option<String> {
    match account {
        Account::Administrator(check) => Verifier::check(check, given)
            .await
            .then(|| state.admin.keys.issue(now_secs())),
        Account::Teacher(email) => {
            let login = match state.store.teacher_login(email).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!(target: "classchat::admin", error = %e, "could not read a teacher for sign-in");
                    None
                }
            };
            let hash = login
                .as_ref()
                .and_then(|l| l.password_hash.clone())
                .unwrap_or_else(|| dummy_hash().to_owned());
            let ok = tokio::task::spawn_blocking(move || verify_password(&hash, &given))
                .await
                .unwrap_or(false);
            match login {
                Some(l) if ok && l.disabled == 0 && l.password_hash.is_some() => {
                    Some(state.admin.keys.issue_teacher(&l.id, now_secs()))
                }
                _ => None,
            }
        }
    }
}

/// An argon2 hash nobody's password matches, checked for unknown teachers.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        crate::teachers::hash_password(&random_token()).unwrap_or_else(|_| String::new())
    })
}

/// One password check, once the limits allow it: a browser that signed in to the account
/// before (`device`, its device cookie's nonce) by its own budget, any other by its
/// address's and the account's.
async fn attempt(
    state: &AppState,
    lang: Lang,
    account: Account<'_>,
    client: ClientAddr,
    device: Option<String>,
    given: String,
) -> Response {
    // Milliseconds, not `now_ms()`'s whole seconds: "since your last visit" must tell a
    // failure from the sign-in in the same second.
    let now_ms_precise = jiff::Timestamp::now().as_millisecond();
    let budgets = state.admin.login_budgets;
    let address = client.limit_key();
    let from = crate::store::admin::LoginSource {
        account: account.name(),
        address: &address,
        device: device.as_deref(),
    };
    let reserved = match state
        .store
        .admin_login_reserve(&from, now_ms_precise, &budgets.windows(now_ms_precise))
        .await
    {
        Ok(a) => a,
        Err(e) => return AdminError::from(e).into_response(),
    };
    if let Err((by, secs)) =
        super::session::judge(&reserved, device.is_some(), &budgets, now_ms_precise)
    {
        if let Err(e) = state.store.admin_login_release(reserved.id).await {
            tracing::error!(target: "classchat::admin", error = %e, "could not take back a refused sign-in attempt");
        }
        let mins = secs.div_ceil(60);
        let (outcome, msg) = match (by, lang) {
            (LockedBy::Address, Lang::En) => (
                "rate_limited",
                format!("Too many wrong passwords. Try again in {secs} seconds."),
            ),
            (LockedBy::Address, Lang::ZhTw) => (
                "rate_limited",
                format!("密碼錯誤次數過多。請在 {secs} 秒後再試。"),
            ),
            (LockedBy::Account, Lang::En) => (
                "rate_limited_account",
                format!(
                    "Too many wrong passwords have been tried lately on this account, so sign-in \
                     from browsers that have not signed in before is paused. Try again in {mins} \
                     minutes, or use a browser you signed in with before."
                ),
            ),
            (LockedBy::Account, Lang::ZhTw) => (
                "rate_limited_account",
                format!(
                    "最近這個帳號的密碼錯誤次數過多，因此暫停從未登入過的瀏覽器登入。請在 {mins} 分鐘後再試，或使用曾經登入過的瀏覽器。"
                ),
            ),
            (LockedBy::Device, Lang::En) => (
                "rate_limited_device",
                format!("Too many wrong passwords from this browser. Try again in {mins} minutes."),
            ),
            (LockedBy::Device, Lang::ZhTw) => (
                "rate_limited_device",
                format!("這個瀏覽器的密碼錯誤次數過多。請在 {mins} 分鐘後再試。"),
            ),
        };
        tracing::warn!(target: "classchat::admin", client = %client, known_browser = device.is_some(), outcome, "dashboard sign-in refused");
        return too_many(state, lang, secs, &msg);
    }
    let Some(value) = verify(state, &account, given).await else {
        tracing::warn!(target: "classchat::admin", client = %client, known_browser = device.is_some(), outcome = "wrong_password", "dashboard sign-in refused");
        let text = match account {
            Account::Administrator(_) => lang.t("Wrong password.", "密碼錯誤。"),
            Account::Teacher(_) => lang.t("Wrong email or password.", "電子郵件或密碼錯誤。"),
        };
        return login_page(state, lang, StatusCode::UNAUTHORIZED, Some(text));
    };
    if let Err(e) = state.store.admin_login_release(reserved.id).await {
        // The right password then counts as one failure for a while: no reason to refuse.
        tracing::error!(target: "classchat::admin", error = %e, "could not take back a successful sign-in attempt");
    }
    if let Err(e) = state
        .store
        .admin_signed_in(account.name(), now_ms_precise)
        .await
    {
        tracing::error!(target: "classchat::admin", error = %e, "could not note the sign-in time");
    }
    let actor = match &account {
        Account::Administrator(_) => "admin",
        Account::Teacher(email) => email.as_str(),
    };
    let _ = state
        .store
        // The audit's clock (whole seconds), so its lines stay in order with the others'.
        .record_audit(now_ms(), actor, "sign_in", None, &format!("from {client}"))
        .await;
    tracing::info!(target: "classchat::admin", client = %client, outcome = "ok", "dashboard sign-in");
    let home = match account {
        Account::Administrator(_) => "/admin",
        Account::Teacher(_) => "/admin/classes",
    };
    let mut r = Redirect::to(home).into_response();
    let secure = state.admin.secure_cookies;
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(COOKIE, &value, SESSION_AGE.as_secs(), secure),
    );
    r.headers_mut()
        .append(header::SET_COOKIE, set_cookie(LOGIN_COOKIE, "", 0, secure));
    // This browser is now known to the account: strangers' failures no longer lock it out.
    let known = state.admin.keys.issue_device(account.name(), now_secs());
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
    t: Signed,
    axum::Form(form): axum::Form<CsrfForm>,
) -> AdminResult {
    check_signed_csrf(&state, &t, &form.csrf)?;
    if matches!(state.admin.mode, Mode::Password(_)) {
        let now_ms = now_ms();
        let until_ms = now_ms + SESSION_AGE.as_millis() as i64;
        state
            .store
            .admin_session_revoke(&t.binding, until_ms, now_ms)
            .await?;
        let role = match t.who {
            Who::Administrator => "administrator",
            Who::Teacher { .. } => "teacher",
        };
        tracing::info!(target: "classchat::admin", actor = %t.actor, role, "dashboard sign-out");
    }
    let mut r = Redirect::to("/admin/login").into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(COOKIE, "", 0, state.admin.secure_cookies),
    );
    Ok(r)
}
