//! `/admin/lti`: the values to enter in Moodle, Canvas or Open edX to add classchat as an
//! LTI 1.3 tool, ready to copy, the platforms registered (manual registration is the
//! admin API's `/api/v1/admin/lti/platforms`), and a single-use LTI Dynamic Registration
//! URL to paste into the LMS. Also the dashboard cookie an instructor's launch hands over.

use axum::Router;
use axum::extract::{Form, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::session::{COOKIE, SESSION_AGE};
use super::{AdminError, CsrfForm, Mode, Operator, csrf_ok, html};
use crate::basics::{now_ms, now_secs};
use crate::embed::escape_html;
use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/admin/lti", get(lti_page).post(new_registration))
}

/// Whether the dashboard signs teachers in with its own cookie (password mode).
pub(crate) fn signs_in_teachers(state: &AppState) -> bool {
    matches!(state.admin.mode, Mode::Password(_))
}

/// The dashboard session cookie for a teacher account, as a password sign-in sets it; `None`
/// when the dashboard does not sign in with its own cookie (off, or Cloudflare Access).
pub(crate) fn teacher_session_cookie(state: &AppState, teacher_id: &str) -> Option<HeaderValue> {
    let admin = &state.admin;
    if !signs_in_teachers(state) {
        return None;
    }
    let value = admin.keys.issue_teacher(teacher_id, now_secs());
    let secure = if admin.secure_cookies { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        SESSION_AGE.as_secs()
    ))
    .ok()
}

/// `POST /admin/lti`: a new Dynamic Registration URL, shown once on the page it answers.
async fn new_registration(
    State(state): State<AppState>,
    t: Operator,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !csrf_ok(&state, &t.binding, &form.csrf) {
        return AdminError::FormExpired.into_response();
    }
    match crate::lti::registration::new_ticket(&state, now_ms()).await {
        Ok(url) => render(&state, &t, Some(url)).await,
        Err(e) => AdminError::from(e).into_response(),
    }
}

async fn lti_page(State(state): State<AppState>, t: Operator) -> Response {
    render(&state, &t, None).await
}

async fn render(state: &AppState, t: &Operator, registration_url: Option<String>) -> Response {
    let base = &state.public_url;
    let launch = crate::lti::launch_url(base);
    let login = crate::lti::login_url(base);
    let jwks = crate::lti::jwks_url(base);
    let row = |label: &str, zh: &str, v: &str| {
        format!(
            "<tr><th>{} <span lang=\"zh-TW\">{}</span></th><td><input readonly size=\"60\" value=\"{}\" data-copy></td></tr>",
            escape_html(label),
            escape_html(zh),
            escape_html(v)
        )
    };
    let mut body = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>classchat · LTI</title>\
         <style>body{font:15px/1.5 system-ui,sans-serif;margin:2rem}th{text-align:left;padding-right:1rem}\
         td,th{vertical-align:top;padding:.2rem .5rem}table{border-collapse:collapse}</style></head><body>\
         <p><a href=\"/admin\">← Dashboard · 管理頁面</a></p>\
         <h1>Add classchat to an LMS (LTI 1.3) <span lang=\"zh-TW\">將 classchat 加入 LMS</span></h1>\
         <p>Enter these values in Moodle (Site administration › Plugins › Manage tools › configure a tool manually), \
         Canvas (Admin › Developer Keys › + LTI Key) or Open edX (the LTI component, version 1.3). \
         <span lang=\"zh-TW\">請在 Moodle、Canvas 或 Open edX 中填入以下值。</span></p><table>",
    );
    for (label, zh, v) in [
        (
            "Tool URL / Target Link URI / Launch URL",
            "工具網址／啟動網址",
            launch.as_str(),
        ),
        (
            "Initiate login URL / OIDC Initiation URL",
            "登入起始網址",
            login.as_str(),
        ),
        ("Redirection URI(s)", "重新導向網址", launch.as_str()),
        ("Public keyset URL (JWKS)", "公開金鑰網址", jwks.as_str()),
        (
            "Deep Linking / Content Selection URL",
            "深度連結網址",
            launch.as_str(),
        ),
    ] {
        body.push_str(&row(label, zh, v));
    }
    body.push_str(
        "</table><p>Public key type: Keyset URL. Supports Deep Linking: yes. Share the name: optional; \
         share the email: no (classchat never stores it). Add the LMS's address to ALLOWED_ORIGINS so the \
         chat may show inside its pages. <span lang=\"zh-TW\">公開金鑰類型：金鑰集網址。支援深度連結：是。\
         分享姓名：可選；分享電子郵件：否。請將 LMS 的網址加入 ALLOWED_ORIGINS。</span></p>\
         <h2>Registered platforms <span lang=\"zh-TW\">已註冊的平台</span></h2>",
    );
    body.push_str(&registration_section(state, t, registration_url.as_deref()));
    match state.store.lti_platforms().await {
        Ok(list) if list.is_empty() => body.push_str(
            "<p>None yet: register one by Dynamic Registration (above), or with <code>POST /api/v1/admin/lti/platforms</code> (an administrator token) \
             with the issuer, client id, authentication URL, keyset URL and deployment ids the LMS shows. \
             <span lang=\"zh-TW\">尚無：請以管理員權杖呼叫 API 註冊。</span></p>",
        ),
        Ok(list) => {
            body.push_str("<table data-testid=\"lti-platforms\"><tr><th>Issuer</th><th>Client id</th><th>Deployments</th><th>Auth URL</th><th>Keyset URL</th></tr>");
            for p in list {
                body.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    escape_html(&p.issuer),
                    escape_html(&p.client_id),
                    escape_html(&p.deployments.join(", ")),
                    escape_html(&p.auth_url),
                    escape_html(&p.jwks_url),
                ));
            }
            body.push_str("</table>");
        }
        Err(e) => {
            tracing::error!(target: "classchat::admin", "LTI page: {e}");
            body.push_str("<p>The database did not answer. 資料庫沒有回應。</p>");
        }
    }
    body.push_str("</body></html>\n");
    html(StatusCode::OK, body)
}

/// Dynamic Registration: the button that makes a URL, or the URL just made (once).
fn registration_section(state: &AppState, t: &Operator, url: Option<&str>) -> String {
    let mut s = String::from(
        "<section data-testid=\"lti-dynamic-registration\"><h3>LTI Dynamic Registration \
         <span lang=\"zh-TW\">LTI 動態註冊</span></h3>\
         <p>Moodle (Site administration › Plugins › Manage tools › Tool URL › Add LTI Advantage) and Canvas \
         (Developer Keys › + LTI Registration) register classchat by themselves from a registration URL. \
         The URL works once, for an hour; afterwards add the deployment id if the LMS did not send one. \
         Open edX has no Dynamic Registration: use the values above. \
         <span lang=\"zh-TW\">Moodle 與 Canvas 可用註冊網址自動註冊 classchat。網址只能使用一次，有效一小時。\
         Open edX 不支援動態註冊，請使用上方的值。</span></p>",
    );
    match url {
        Some(u) => s.push_str(&format!(
            "<p><label>Registration URL · 註冊網址 <input readonly size=\"80\" value=\"{}\" data-copy \
             data-testid=\"lti-registration-url\"></label></p>",
            escape_html(u)
        )),
        None => s.push_str(&format!(
            "<form method=\"post\" action=\"/admin/lti\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <button>Make a registration URL · 產生註冊網址</button></form>",
            escape_html(&state.admin.keys.csrf(&t.binding))
        )),
    }
    s.push_str("</section>");
    s
}
