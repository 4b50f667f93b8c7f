//! `/admin/invitation`: where an invited teacher sets a password, from the link the
//! administrator sent (`invite_url`). A plain form, no JavaScript. The form needs no CSRF
//! token: it carries the invitation's secret, which a forging page cannot know.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use leptos::prelude::*;
use serde::Deserialize;

use crate::admin::i18n::{Lang, PageLang};
use crate::admin::views::document_full;
use crate::api_admin::ApiFailure;
use crate::client_addr::ClientAddr;
use crate::state::AppState;
use crate::teachers::MIN_PASSWORD_CHARS;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/admin/invitation", get(show_form).post(set_password))
}

#[derive(Debug, Deserialize)]
struct Link {
    #[serde(default)]
    code: String,
}

#[derive(Debug, Deserialize)]
struct PasswordForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    again: String,
}

async fn show_form(l: PageLang, Query(link): Query<Link>) -> Response {
    html(StatusCode::OK, form_page(l.lang, &link.code, None))
}

async fn set_password(
    State(state): State<AppState>,
    l: PageLang,
    client: ClientAddr,
    axum::Form(form): axum::Form<PasswordForm>,
) -> Response {
    let lang = l.lang;
    if form.password != form.again {
        let e = lang.t(
            "The two passwords are not the same.",
            "兩次輸入的密碼不一樣。",
        );
        return html(
            StatusCode::BAD_REQUEST,
            form_page(lang, &form.code, Some(e)),
        );
    }
    if crate::teachers::check_password(&form.password).is_err() {
        let e = match lang {
            Lang::En => format!(
                "The password is shorter than {MIN_PASSWORD_CHARS} characters (or longer than 1024)."
            ),
            Lang::ZhTw => format!("密碼至少需要 {MIN_PASSWORD_CHARS} 個字元（最多 1024 個）。"),
        };
        return html(
            StatusCode::BAD_REQUEST,
            form_page(lang, &form.code, Some(&e)),
        );
    }
    match crate::api_admin::accept_invitation(&state, &client, &form.code, form.password).await {
        Ok(()) => html(StatusCode::OK, done_page()),
        Err(e) => {
            let (status, _) = e.status_code();
            let text = match (&e, lang) {
                (_, Lang::En) => e.to_string(),
                (ApiFailure::NotFound, Lang::ZhTw) => {
                    "找不到這個邀請連結。請向管理員索取新的邀請。".to_owned()
                }
                (ApiFailure::InvitationUsed, Lang::ZhTw) => "這個邀請已經使用過了。".to_owned(),
                (ApiFailure::InvitationExpired, Lang::ZhTw) => {
                    "這個邀請已經過期。請向管理員索取新的邀請。".to_owned()
                }
                (ApiFailure::RateLimited(secs), Lang::ZhTw) => {
                    format!("嘗試次數太多。請等待 {secs} 秒後再試。")
                }
                (ApiFailure::Unavailable, Lang::ZhTw) => {
                    "classchat 目前無法連線到資料庫。請稍後再試。".to_owned()
                }
                (_, Lang::ZhTw) => "發生錯誤。請稍後再試。".to_owned(),
            };
            let title = lang.t("This invitation cannot be used", "無法使用這個邀請");
            html(status, message(lang, title, &text))
        }
    }
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::VARY, "Accept-Language"),
        ],
        body,
    )
        .into_response()
}

fn form_page(lang: Lang, code: &str, error: Option<&str>) -> String {
    let error = error.map(|e| {
        view! { <p class="error" role="alert" data-testid="invitation-error">{e.to_string()}</p> }
    });
    let code = code.to_string();
    // The answer to the form comes in the language the form was shown in.
    let action = format!("/admin/invitation?lang={}", lang.tag());
    let title = lang.t("Set your classchat password", "設定您的 classchat 密碼");
    let new_password = match lang {
        Lang::En => format!("New password (at least {MIN_PASSWORD_CHARS} characters)"),
        Lang::ZhTw => format!("新密碼（至少 {MIN_PASSWORD_CHARS} 個字元）"),
    };
    let body = view! {
        <main class="admin-main narrow">
            <h1>{title}</h1>
            {error}
            <form method="post" action=action class="card login">
                <input type="hidden" name="code" value=code/>
                <label for="invitation-password">{new_password}</label>
                <input id="invitation-password" type="password" name="password"
                    autocomplete="new-password" minlength=MIN_PASSWORD_CHARS.to_string() required=true autofocus=true/>
                <label for="invitation-again">{lang.t("The same password again", "再次輸入相同的密碼")}</label>
                <input id="invitation-again" type="password" name="again"
                    autocomplete="new-password" minlength=MIN_PASSWORD_CHARS.to_string() required=true/>
                <button type="submit" class="primary">{lang.t("Set password", "設定密碼")}</button>
            </form>
        </main>
    };
    document(lang, title, body)
}

fn message(lang: Lang, title: &str, text: &str) -> String {
    let body = view! {
        <main class="admin-main narrow">
            <h1>{title.to_string()}</h1>
            <p class="message-text" data-testid="invitation-message">{text.to_string()}</p>
        </main>
    };
    document(lang, title, body)
}

/// The password is set: where to sign in, in both languages.
fn done_page() -> String {
    let body = view! {
        <main class="admin-main narrow">
            <h1>"Your password is set"</h1>
            <p class="message-text" data-testid="invitation-message">
                "Sign in to the dashboard with your email address and this password."
            </p>
            <p class="message-text" lang="zh-TW">"您的密碼已設定：請以電子郵件地址與這個密碼登入管理後台。"</p>
            <p><a href="/admin/login" class="button primary" data-testid="invitation-sign-in">"Sign in · 登入"</a></p>
        </main>
    };
    document(Lang::En, "Your password is set", body)
}

/// The link carries the invitation's secret: never send it on as a referrer.
fn document(lang: Lang, title: &str, body: impl IntoView) -> String {
    document_full(title, body, "no-referrer", lang.tag())
}
