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

use crate::admin::views::document_with_referrer;
use crate::client_addr::ClientAddr;
use crate::state::AppState;

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

async fn show_form(Query(link): Query<Link>) -> Response {
    html(StatusCode::OK, form_page(&link.code, None))
}

async fn set_password(
    State(state): State<AppState>,
    client: ClientAddr,
    axum::Form(form): axum::Form<PasswordForm>,
) -> Response {
    if form.password != form.again {
        return html(
            StatusCode::BAD_REQUEST,
            form_page(&form.code, Some("The two passwords are not the same.")),
        );
    }
    match crate::api_admin::accept_invitation(&state, &client, &form.code, form.password).await {
        Ok(()) => html(StatusCode::OK, done_page()),
        Err(e) => {
            let (status, _) = e.status_code();
            let text = e.to_string();
            if status == StatusCode::BAD_REQUEST {
                // A password too short: the same form again, with the reason.
                html(status, form_page(&form.code, Some(&text)))
            } else {
                html(status, message("This invitation cannot be used", &text))
            }
        }
    }
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

fn form_page(code: &str, error: Option<&str>) -> String {
    let error = error.map(|e| {
        view! { <p class="error" role="alert" data-testid="invitation-error">{e.to_string()}</p> }
    });
    let code = code.to_string();
    let body = view! {
        <main class="admin-main narrow">
            <h1>"Set your classchat password"</h1>
            {error}
            <form method="post" action="/admin/invitation" class="card login">
                <input type="hidden" name="code" value=code/>
                <label for="invitation-password">"New password (at least 12 characters)"</label>
                <input id="invitation-password" type="password" name="password"
                    autocomplete="new-password" minlength="12" required=true autofocus=true/>
                <label for="invitation-again">"The same password again"</label>
                <input id="invitation-again" type="password" name="again"
                    autocomplete="new-password" minlength="12" required=true/>
                <button type="submit" class="primary">"Set password"</button>
            </form>
        </main>
    };
    document("Set your password", body)
}

fn message(title: &str, text: &str) -> String {
    let body = view! {
        <main class="admin-main narrow">
            <h1>{title.to_string()}</h1>
            <p class="message-text" data-testid="invitation-message">{text.to_string()}</p>
        </main>
    };
    document(title, body)
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
    document("Your password is set", body)
}

/// The link carries the invitation's secret: never send it on as a referrer.
fn document(title: &str, body: impl IntoView) -> String {
    document_with_referrer(title, body, "no-referrer")
}
