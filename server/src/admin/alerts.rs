//! `/admin/alerts`: every class's safety flags for the signed-in operator, newest first,
//! with *Open* (the flag and how its notifications went, pending ones marked) and
//! *Dismiss* (the flag stays, with who dismissed it and when). In English or Traditional
//! Chinese (`?lang=zh-TW`, else the browser's Accept-Language). The student's words are
//! never on these pages.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use jiff::tz::TimeZone;
use leptos::prelude::*;

use super::views::fmt_time;
use super::{AdminResult, CsrfForm, Signed, check_signed_csrf, html};
use crate::safety::Category;
use crate::state::AppState;
use crate::store::safety::FlagRecord;
use crate::store::teachers::Audit;

/// The routes; the dashboard's router merges them.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/alerts", get(list))
        .route("/admin/alerts/{id}", get(open))
        .route("/admin/alerts/{id}/dismiss", post(dismiss))
}

/// The page's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    En,
    ZhTw,
}

impl Lang {
    fn pick(query: &HashMap<String, String>, headers: &HeaderMap) -> Self {
        let asked = query.get("lang").map(String::as_str).or_else(|| {
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
        });
        match asked.map(|l| l.trim().to_ascii_lowercase()) {
            Some(l) if l.starts_with("zh") => Self::ZhTw,
            _ => Self::En,
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::ZhTw => "zh-TW",
        }
    }

    /// English or Chinese.
    fn t(self, en: &'static str, zh: &'static str) -> &'static str {
        match self {
            Self::En => en,
            Self::ZhTw => zh,
        }
    }

    fn query(self) -> &'static str {
        match self {
            Self::En => "?lang=en",
            Self::ZhTw => "?lang=zh-TW",
        }
    }
}

fn category(lang: Lang, c: &str) -> String {
    match Category::parse(c) {
        Some(c) => lang.t(c.label(), c.label_zh()).to_owned(),
        None => c.to_owned(),
    }
}

fn source(lang: Lang, s: &str) -> &'static str {
    match s {
        "model" => lang.t("safety model", "安全模型"),
        _ => lang.t("phrase lists", "詞句清單"),
    }
}

fn title_of(state: &AppState, class_id: &str) -> String {
    state
        .classes
        .current()
        .get(class_id)
        .map(|c| c.title.clone())
        .unwrap_or_else(|| class_id.to_owned())
}

/// The page around `body`, in `lang`.
fn page(lang: Lang, title: &'static str, csrf_bar: &str, body: impl IntoView + 'static) -> String {
    let csrf = csrf_bar.to_owned();
    let main = view! {
        <header class="admin-bar">
            <a class="brand" href="/admin">{lang.t("classchat dashboard", "classchat 管理面板")}</a>
            <nav aria-label=lang.t("Language", "語言")>
                <a href="?lang=en" lang="en">"English"</a>" · "<a href="?lang=zh-TW" lang="zh-TW">"中文"</a>
            </nav>
            <form method="post" action="/admin/logout" class="inline">
                <input type="hidden" name="csrf" value=csrf/>
                <button type="submit" class="secondary small">{lang.t("Sign out", "登出")}</button>
            </form>
        </header>
        <main class="admin-main" lang=lang.tag()>{body}</main>
    };
    super::views::document_with_referrer(title, main, "same-origin")
}

async fn list(
    State(state): State<AppState>,
    t: Signed,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> AdminResult {
    let lang = Lang::pick(&q, &headers);
    let classes = contact_classes(&state, &t).await?;
    let flags = state.store.flags(classes.as_deref(), None, 500).await?;
    let tz = state.settings.timezone.clone();
    let csrf = state.admin.keys.csrf(&t.binding);
    let flash = q
        .get("done")
        .map(|_| lang.t("Alert dismissed.", "已關閉警示。"));
    let rows: Vec<_> = flags
        .into_iter()
        .map(|f| row(&state, lang, &tz, &csrf, f))
        .collect();
    let empty = rows.is_empty();
    let table = (!empty).then(|| {
        view! {
            <div class="table-wrap">
                <table class="data stack" data-testid="alerts-table">
                    <thead>
                        <tr>
                            <th scope="col">{lang.t("Time", "時間")}</th>
                            <th scope="col">{lang.t("Class", "班級")}</th>
                            <th scope="col">{lang.t("Category", "類別")}</th>
                            <th scope="col">{lang.t("Found by", "偵測方式")}</th>
                            <th scope="col">{lang.t("Student", "學生")}</th>
                            <th scope="col">{lang.t("Notifications", "通知")}</th>
                            <th scope="col">{lang.t("Status", "狀態")}</th>
                            <th scope="col">{lang.t("Actions", "動作")}</th>
                        </tr>
                    </thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        }
    });
    let body = view! {
        <h1>{lang.t("Safety alerts", "安全警示")}</h1>
        {flash.map(|f| view! { <p class="flash" role="status">{f}</p> })}
        <p class="meta">
            {lang.t(
                "Messages the phrase lists or the safety model flagged in classes whose visibility is flagged or full. A dismissed alert stays listed.",
                "在「僅標記」或「完整」可見度的班級中，被詞句清單或安全模型標記的訊息。已關閉的警示仍會列出。",
            )}
        </p>
        {empty.then(|| view! { <p class="empty">{lang.t("No alerts.", "沒有警示。")}</p> })}
        {table}
    };
    Ok(html(
        StatusCode::OK,
        page(lang, "Safety alerts", &csrf, body),
    ))
}

fn row(state: &AppState, lang: Lang, tz: &TimeZone, csrf: &str, f: FlagRecord) -> AnyView {
    let open_href = format!("/admin/alerts/{}{}", f.id, lang.query());
    let dismiss_action = format!("/admin/alerts/{}/dismiss{}", f.id, lang.query());
    let notifications = if f.pending > 0 {
        format!("{} {}", f.pending, lang.t("pending", "待送出"))
    } else if f.sent > 0 {
        format!("{} {}", f.sent, lang.t("sent", "已送出"))
    } else {
        lang.t("none", "無").to_owned()
    };
    let status = match (&f.dismissed_ms, &f.dismissed_by) {
        (Some(ms), by) => format!(
            "{} {} · {}",
            lang.t("Dismissed by", "關閉者："),
            by.clone().unwrap_or_default(),
            fmt_time(*ms, tz)
        ),
        (None, _) => lang.t("Open", "未處理").to_owned(),
    };
    let dismiss = f.dismissed_ms.is_none().then(|| {
        let csrf = csrf.to_owned();
        let label = format!(
            "{} {}",
            lang.t("Dismiss alert of", "關閉警示："),
            fmt_time(f.created_ms, tz)
        );
        view! {
            <form method="post" action=dismiss_action class="inline">
                <input type="hidden" name="csrf" value=csrf/>
                <button type="submit" class="secondary small" aria-label=label>{lang.t("Dismiss", "關閉")}</button>
            </form>
        }
    });
    let open_label = format!(
        "{} {}",
        lang.t("Open alert of", "開啟警示："),
        fmt_time(f.created_ms, tz)
    );
    let student = f
        .display_name
        .clone()
        .unwrap_or_else(|| lang.t("(no name)", "（未具名）").to_owned());
    view! {
        <tr id=f.id.clone() data-testid="alert-row">
            <td data-label=lang.t("Time", "時間")>{fmt_time(f.created_ms, tz)}</td>
            <td data-label=lang.t("Class", "班級")>{title_of(state, &f.class_id)}</td>
            <td data-label=lang.t("Category", "類別")>{category(lang, &f.category)}</td>
            <td data-label=lang.t("Found by", "偵測方式")>{source(lang, &f.source)}</td>
            <td data-label=lang.t("Student", "學生")>{student}</td>
            <td data-label=lang.t("Notifications", "通知")>{notifications}</td>
            <td data-label=lang.t("Status", "狀態")>{status}</td>
            <td data-label=lang.t("Actions", "動作")>
                <a href=open_href aria-label=open_label>{lang.t("Open", "開啟")}</a>
                " "
                {dismiss}
            </td>
        </tr>
    }
    .into_any()
}

async fn open(
    State(state): State<AppState>,
    t: Signed,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> AdminResult {
    let lang = Lang::pick(&q, &headers);
    let Some(f) = visible_flag(&state, &t, &id).await? else {
        return Ok(no_such_alert(lang));
    };
    let tz = state.settings.timezone.clone();
    let csrf = state.admin.keys.csrf(&t.binding);
    let notes = state.store.notifications_of(&f.id).await?;
    // Reading the student's words is logged, before they are shown.
    let audit = Audit {
        actor: &t.actor,
        address: None,
        now_ms: crate::basics::now_ms(),
    };
    state
        .store
        .log_flag_opened(&f.id, &f.class_id, audit)
        .await?;
    let exchange = f
        .exchange
        .as_deref()
        .and_then(|sealed| crate::alerts::open_exchange(&state.alerts, &f.id, sealed))
        .map(|msgs| {
            msgs.into_iter()
                .map(|m| {
                    let who = if m.role == classchat_shared::Role::User {
                        lang.t("Student", "學生")
                    } else {
                        lang.t("Assistant", "助理")
                    };
                    view! { <div class="exchange-msg"><strong>{who}": "</strong><span>{m.content}</span></div> }
                })
                .collect_view()
                .into_any()
        })
        .unwrap_or_else(|| {
            view! { <p class="empty">{lang.t("Not available.", "無法顯示。")}</p> }.into_any()
        });
    let note_rows = notes
        .into_iter()
        .map(|(channel, recipient, attempts, sent, error)| {
            let status = match sent {
                Some(ms) => format!("{} {}", lang.t("sent", "已送出"), fmt_time(ms, &tz)),
                None => lang.t("pending", "待送出").to_owned(),
            };
            view! {
                <tr data-testid="notification-row">
                    <td data-label=lang.t("Channel", "管道")>{channel}</td>
                    <td data-label=lang.t("To", "收件者")>{recipient}</td>
                    <td data-label=lang.t("Status", "狀態")>{status}</td>
                    <td data-label=lang.t("Attempts", "嘗試次數") class="num">{attempts}</td>
                    <td data-label=lang.t("Last error", "最近錯誤")>{error.unwrap_or_default()}</td>
                </tr>
            }
        })
        .collect_view();
    let back = format!("/admin/alerts{}", lang.query());
    let facts = vec![
        (lang.t("Class", "班級"), title_of(&state, &f.class_id)),
        (lang.t("Category", "類別"), category(lang, &f.category)),
        (
            lang.t("Found by", "偵測方式"),
            format!("{} ({})", source(lang, &f.source), f.detail),
        ),
        (lang.t("Time", "時間"), fmt_time(f.created_ms, &tz)),
        (
            lang.t("Student", "學生"),
            f.display_name
                .clone()
                .unwrap_or_else(|| lang.t("(no name)", "（未具名）").to_owned()),
        ),
        (lang.t("Session", "工作階段"), f.session_id.clone()),
        (
            lang.t("Status", "狀態"),
            match (&f.dismissed_ms, &f.dismissed_by) {
                (Some(ms), by) => format!(
                    "{} {} · {}",
                    lang.t("Dismissed by", "關閉者："),
                    by.clone().unwrap_or_default(),
                    fmt_time(*ms, &tz)
                ),
                (None, _) => lang.t("Open", "未處理").to_owned(),
            },
        ),
    ]
    .into_iter()
    .map(|(k, v)| view! { <dt>{k}</dt><dd>{v}</dd> })
    .collect_view();
    let body = view! {
        <p class="crumbs"><a href=back>{lang.t("Safety alerts", "安全警示")}</a></p>
        <h1>{lang.t("Alert", "警示")}</h1>
        <dl class="facts">{facts}</dl>
        <h2>{lang.t("Flagged exchange", "被標記的對話")}</h2>
        <p class="meta">{lang.t("Opening this page is recorded in the audit log.", "開啟本頁會記錄在稽核紀錄中。")}</p>
        <div class="exchange" data-testid="alert-exchange">
            {exchange}
        </div>
        <h2>{lang.t("Notifications", "通知")}</h2>
        <div class="table-wrap">
            <table class="data stack">
                <thead>
                    <tr>
                        <th scope="col">{lang.t("Channel", "管道")}</th>
                        <th scope="col">{lang.t("To", "收件者")}</th>
                        <th scope="col">{lang.t("Status", "狀態")}</th>
                        <th scope="col" class="num">{lang.t("Attempts", "嘗試次數")}</th>
                        <th scope="col">{lang.t("Last error", "最近錯誤")}</th>
                    </tr>
                </thead>
                <tbody>{note_rows}</tbody>
            </table>
        </div>
    };
    Ok(html(
        StatusCode::OK,
        page(lang, "Safety alert", &csrf, body),
    ))
}

/// The classes whose alerts `t` sees: every class for the administrator (`None`), else the
/// classes the teacher is a safety contact of (the rule the admin API follows too).
async fn contact_classes(state: &AppState, t: &Signed) -> sqlx::Result<Option<Vec<String>>> {
    match t.teacher_id() {
        None => Ok(None),
        Some(id) => Ok(Some(state.store.contact_classes(id).await?)),
    }
}

/// A flag `t` may see; `None` also for one of a class they are no safety contact of.
async fn visible_flag(state: &AppState, t: &Signed, id: &str) -> sqlx::Result<Option<FlagRecord>> {
    let Some(flag) = state.store.flag(id).await? else {
        return Ok(None);
    };
    Ok(match contact_classes(state, t).await? {
        Some(classes) if !classes.contains(&flag.class_id) => None,
        _ => Some(flag),
    })
}

fn no_such_alert(lang: Lang) -> Response {
    super::page(
        StatusCode::NOT_FOUND,
        lang.t("No such alert", "沒有這則警示"),
        lang.t("There is no alert with that id.", "找不到這個編號的警示。"),
    )
}

async fn dismiss(
    State(state): State<AppState>,
    t: Signed,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    axum::Form(form): axum::Form<CsrfForm>,
) -> AdminResult {
    check_signed_csrf(&state, &t, &form.csrf)?;
    let audit = Audit {
        actor: &t.actor,
        address: None,
        now_ms: crate::basics::now_ms(),
    };
    if visible_flag(&state, &t, &id).await?.is_none() {
        return Ok(no_such_alert(Lang::En));
    }
    // Dismissed already (another tab, another teacher): the list shows by whom.
    state.store.dismiss_flag(&id, &t.actor, audit).await?;
    let lang = q
        .get("lang")
        .map_or("en", |l| if l.starts_with("zh") { "zh-TW" } else { "en" });
    Ok(Redirect::to(&format!("/admin/alerts?lang={lang}&done=1")).into_response())
}
