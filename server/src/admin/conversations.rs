//! The dashboard's pages for stored conversations (issue 23): a class's conversations by
//! student with a search, one conversation (its opening written to the access log first),
//! and the access log. In English or Traditional Chinese: `?lang=zh-TW`, else the browser's
//! `Accept-Language`.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::get;
use leptos::prelude::*;

use super::{AdminError, AdminResult, Operator, Signed, html};
use crate::basics::now_ms;
use crate::client_addr::ClientAddr;
use crate::conversations::{MAX_SEARCH_CHARS, by_student, open_conversation};
use crate::pages::SITE_CSS;
use crate::state::AppState;
use crate::store::conversations::ReadRecord;
use crate::teachers::{Need, allows};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/classes/{id}/conversations", get(list))
        .route(
            "/admin/classes/{id}/conversations/{session_id}/{conversation_id}",
            get(open_one),
        )
        .route("/admin/conversation-reads", get(reads))
}

/// Whether `t` may read class `id`'s conversations: the administrator any class's, a
/// teacher only a class they teach (owner or co-teacher); to anyone else it does not exist.
async fn may_read(state: &AppState, t: &Signed, id: &str) -> Result<(), AdminError> {
    let exists =
        state.classes.current().get(id).is_some() || state.store.class(id).await?.is_some();
    let allowed = match t.teacher_id() {
        None => exists,
        Some(tid) => state
            .store
            .member_role(id, tid)
            .await?
            .is_some_and(|r| allows(r, Need::Conversations)),
    };
    if allowed {
        Ok(())
    } else {
        Err(AdminError::NoClass)
    }
}

/// The pages' sentences in one language.
struct Words {
    tag: &'static str,
    /// `?lang=` to keep in links.
    query: &'static str,
    dashboard: &'static str,
    conversations: &'static str,
    intro: &'static str,
    search: &'static str,
    search_button: &'static str,
    none: &'static str,
    no_match: &'static str,
    anonymous: &'static str,
    session: &'static str,
    exchanges: &'static str,
    last: &'static str,
    open: &'static str,
    student: &'static str,
    assistant: &'static str,
    unreadable: &'static str,
    cut: &'static str,
    kept_flagged: &'static str,
    kept_context: &'static str,
    logged: &'static str,
    reads: &'static str,
    reads_intro: &'static str,
    when: &'static str,
    reader: &'static str,
    whose: &'static str,
    class: &'static str,
    address: &'static str,
    no_reads: &'static str,
    too_long: &'static str,
    other_lang: (&'static str, &'static str),
}

const EN: Words = Words {
    tag: "en",
    query: "",
    dashboard: "classchat dashboard",
    conversations: "Conversations",
    intro: "What this class's conversation visibility kept, by student, most recent first. Opening a conversation is recorded in the access log.",
    search: "Search the text",
    search_button: "Search",
    none: "No conversations are stored for this class.",
    no_match: "No stored conversation holds that text.",
    anonymous: "(no name given)",
    session: "Session",
    exchanges: "Exchanges",
    last: "Last message",
    open: "Open",
    student: "Student",
    assistant: "Assistant",
    unreadable: "This message cannot be opened: it was sealed under an AUTH_SECRET that is no longer configured.",
    cut: "The reply did not finish.",
    kept_flagged: "Kept because it was flagged for safety.",
    kept_context: "Kept as context around a flagged message.",
    logged: "Your opening of this conversation was recorded in the access log.",
    reads: "Conversation access log",
    reads_intro: "Every opening of a stored conversation: who read whose, when, and from where. Newest first.",
    when: "When",
    reader: "Reader",
    whose: "Whose conversation",
    class: "Class",
    address: "Address",
    no_reads: "Nobody has opened a stored conversation yet.",
    too_long: "The search text is too long (at most 200 characters).",
    other_lang: ("?lang=zh-TW", "中文"),
};

const ZH_TW: Words = Words {
    tag: "zh-TW",
    query: "?lang=zh-TW",
    dashboard: "classchat 管理面板",
    conversations: "對話紀錄",
    intro: "依這個班級的對話可見設定所保存的內容，依學生排列，最新的在前。開啟對話會記錄在存取紀錄中。",
    search: "搜尋文字",
    search_button: "搜尋",
    none: "這個班級沒有保存任何對話。",
    no_match: "沒有保存的對話包含這段文字。",
    anonymous: "（未填名字）",
    session: "登入工作階段",
    exchanges: "問答數",
    last: "最後訊息",
    open: "開啟",
    student: "學生",
    assistant: "助理",
    unreadable: "無法開啟這則訊息：它是用已不再設定的 AUTH_SECRET 加密的。",
    cut: "這則回覆沒有完成。",
    kept_flagged: "因被標示為安全疑慮而保存。",
    kept_context: "作為被標示訊息的前後文而保存。",
    logged: "你開啟這段對話的紀錄已寫入存取紀錄。",
    reads: "對話存取紀錄",
    reads_intro: "每一次開啟保存的對話：誰讀了誰的對話、何時、從哪裡。最新的在前。",
    when: "時間",
    reader: "讀取者",
    whose: "誰的對話",
    class: "班級",
    address: "位址",
    no_reads: "還沒有人開啟過保存的對話。",
    too_long: "搜尋文字太長（最多 200 個字）。",
    other_lang: ("?lang=en", "English"),
};

/// `?lang=zh-TW` or `?lang=en`, else the browser's first language.
fn words(q: &HashMap<String, String>, headers: &HeaderMap) -> &'static Words {
    let pick = q.get("lang").map(String::as_str).or_else(|| {
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
    });
    match pick {
        Some(l) if l.trim().to_ascii_lowercase().starts_with("zh") => &ZH_TW,
        _ => &EN,
    }
}

fn document(w: &Words, title: &str, body: impl IntoView) -> String {
    let title = format!("{title} · classchat");
    view! {
        <!DOCTYPE html>
        <html lang=w.tag>
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="robots" content="noindex"/>
                <meta name="referrer" content="same-origin"/>
                <title>{title}</title>
                <style>{SITE_CSS}</style>
            </head>
            <body class="admin">{body}</body>
        </html>
    }
    .to_html()
}

fn at(state: &AppState, ms: i64) -> String {
    let tz =
        jiff::tz::TimeZone::get(&state.settings.timezone_name).unwrap_or(jiff::tz::TimeZone::UTC);
    super::views::fmt_time(ms, &tz)
}

/// Path segments are ids the server made (UUIDs, class ids) or the widget's conversation
/// ids; escaped anyway, so none can break out of its segment.
fn seg(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn crumbs(w: &'static Words, class_id: Option<&str>) -> impl IntoView + use<> {
    let class = class_id.map(|id| {
        let href = format!("/admin/classes/{}", seg(id));
        view! { " › " <a href=href>{id.to_owned()}</a> }
    });
    let (other_q, other) = w.other_lang;
    view! {
        <p class="crumbs"><a href="/admin">{w.dashboard}</a>{class}
            " · " <a href=other_q lang=if w.tag == "en" { "zh-TW" } else { "en" }>{other}</a></p>
    }
}

async fn list(
    State(state): State<AppState>,
    t: Signed,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> AdminResult {
    let w = words(&q, &headers);
    may_read(&state, &t, &id).await?;
    let search = q
        .get("q")
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());
    let too_long = search
        .as_ref()
        .is_some_and(|s| s.chars().count() > MAX_SEARCH_CHARS);
    let students = if too_long {
        Vec::new()
    } else {
        by_student(
            &state.store,
            state.conversations.sealer(),
            &id,
            search.as_deref(),
        )
        .await
        .map_err(|e| {
            tracing::error!(target: "classchat::admin", class = %id, error = %e, "conversation list failed");
            AdminError::Db(sqlx::Error::Protocol("conversation list".into()))
        })?
    };
    let empty = match (too_long, &search) {
        (true, _) => Some(w.too_long),
        (false, Some(_)) if students.is_empty() => Some(w.no_match),
        (false, None) if students.is_empty() => Some(w.none),
        _ => None,
    };
    let (id_ref, state_ref) = (&id, &state);
    let rows = students
        .iter()
        .flat_map(|s| {
            let name = s
                .display_name
                .clone()
                .unwrap_or_else(|| w.anonymous.to_owned());
            s.conversations.iter().map(move |c| {
                let href = format!(
                    "/admin/classes/{}/conversations/{}/{}{}",
                    seg(id_ref),
                    seg(&c.session_id),
                    seg(&c.conversation_id),
                    w.query
                );
                let last = at(state_ref, c.last_ms);
                let label = format!("{} {} ({last})", w.open, name);
                view! {
                    <tr data-testid="admin-conversation-row">
                        <td>{name.clone()}</td>
                        <td><code>{c.session_id.chars().take(8).collect::<String>()}</code></td>
                        <td class="num">{c.exchanges}</td>
                        <td>{last}</td>
                        <td><a href=href aria-label=label>{w.open}</a></td>
                    </tr>
                }
            })
        })
        .collect_view();
    let value = search.unwrap_or_default();
    let body = view! {
        <main class="admin-main">
            {crumbs(w, Some(&id))}
            <h1>{w.conversations}</h1>
            <p>{w.intro}</p>
            <form method="get" class="inline" role="search">
                {(!w.query.is_empty()).then(|| view! { <input type="hidden" name="lang" value="zh-TW"/> })}
                <label for="conversation-search">{w.search}</label>" "
                <input id="conversation-search" type="search" name="q" value=value maxlength="200"/>" "
                <button type="submit">{w.search_button}</button>
            </form>
            {match empty {
                Some(text) => view! { <p data-testid="admin-conversations-empty">{text}</p> }.into_any(),
                None => view! {
                    <table>
                        <thead><tr>
                            <th scope="col">{w.student}</th>
                            <th scope="col">{w.session}</th>
                            <th scope="col" class="num">{w.exchanges}</th>
                            <th scope="col">{w.last}</th>
                            <th scope="col">{w.open}</th>
                        </tr></thead>
                        <tbody>{rows}</tbody>
                    </table>
                }.into_any(),
            }}
        </main>
    };
    Ok(html(StatusCode::OK, document(w, w.conversations, body)))
}

async fn open_one(
    State(state): State<AppState>,
    t: Signed,
    client: ClientAddr,
    Path((id, session_id, conversation_id)): Path<(String, String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> AdminResult {
    let w = words(&q, &headers);
    may_read(&state, &t, &id).await?;
    let sealer = state.conversations.sealer();
    let opened =
        open_conversation(&state.store, &sealer, &id, &session_id, &conversation_id).await?;
    if opened.is_empty() {
        return Err(AdminError::NoSession);
    }
    let name = opened.iter().find_map(|o| o.row.display_name.clone());
    // Logged before anything is shown.
    state
        .store
        .log_conversation_read(&ReadRecord {
            id: 0,
            at_ms: now_ms(),
            reader: t.actor.clone(),
            class_id: id.clone(),
            session_id: session_id.clone(),
            display_name: name.clone(),
            conversation_id: conversation_id.clone(),
            address: client.0.map(|ip| ip.to_string()),
        })
        .await?;
    let title = format!(
        "{} · {}",
        w.conversations,
        name.clone().unwrap_or_else(|| w.anonymous.to_owned())
    );
    let items = opened
        .into_iter()
        .map(|o| {
            let when = at(&state, o.row.at_ms);
            let note = match o.row.kept.as_str() {
                "flagged" => Some(w.kept_flagged),
                "context" => Some(w.kept_context),
                _ => None,
            };
            let text = match o.text {
                None => view! { <p class="flash warning">{w.unreadable}</p> }.into_any(),
                Some(t) => view! {
                    <p><strong>{w.student}": "</strong><span data-testid="admin-exchange-student">{t.student}</span></p>
                    <p><strong>{w.assistant}": "</strong><span>{t.reply}</span></p>
                    {(!t.completed).then(|| view! { <p class="meta">{w.cut}</p> })}
                }.into_any(),
            };
            view! {
                <li class="card" data-testid="admin-exchange">
                    <p class="meta"><time>{when}</time>{note.map(|n| view! { " · " {n} })}</p>
                    {text}
                </li>
            }
        })
        .collect_view();
    let body = view! {
        <main class="admin-main">
            {crumbs(w, Some(&id))}
            <h1>{title.clone()}</h1>
            <p class="flash" role="status">{w.logged}</p>
            <ol>{items}</ol>
        </main>
    };
    Ok(html(StatusCode::OK, document(w, &title, body)))
}

async fn reads(
    State(state): State<AppState>,
    _t: Operator,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> AdminResult {
    let w = words(&q, &headers);
    let rows = state.store.conversation_reads(None, 500).await?;
    let table = if rows.is_empty() {
        view! { <p>{w.no_reads}</p> }.into_any()
    } else {
        let rows = rows
            .into_iter()
            .map(|r| {
                let whose = format!(
                    "{} ({})",
                    r.display_name.unwrap_or_else(|| w.anonymous.to_owned()),
                    r.session_id.chars().take(8).collect::<String>()
                );
                view! {
                    <tr data-testid="admin-read-row">
                        <td>{at(&state, r.at_ms)}</td>
                        <td>{r.reader}</td>
                        <td>{whose}</td>
                        <td><code>{r.class_id}</code></td>
                        <td>{r.address.unwrap_or_default()}</td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <table>
                <thead><tr>
                    <th scope="col">{w.when}</th>
                    <th scope="col">{w.reader}</th>
                    <th scope="col">{w.whose}</th>
                    <th scope="col">{w.class}</th>
                    <th scope="col">{w.address}</th>
                </tr></thead>
                <tbody>{rows}</tbody>
            </table>
        }
        .into_any()
    };
    let body = view! {
        <main class="admin-main">
            {crumbs(w, None)}
            <h1>{w.reads}</h1>
            <p>{w.reads_intro}</p>
            {table}
        </main>
    };
    Ok(html(StatusCode::OK, document(w, w.reads, body)))
}
