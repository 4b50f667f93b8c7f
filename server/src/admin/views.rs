//! The dashboard's HTML: whole documents rendered with Leptos on the server, no client
//! code. Every action is a plain form (POST ones carry the CSRF token), tables scroll or
//! stack on a phone, and everything a student typed (display names) or the configuration
//! holds (class titles) reaches the page through Leptos text and attribute nodes, so it is
//! escaped. Times are shown in the configured zone (UTC when the name is unknown).

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use leptos::prelude::*;

use super::i18n::Lang;
use super::model::*;
use crate::basics::HOUR_MS;
use crate::pages::SITE_CSS;

/// `GET /admin`: every class with today's and this week's usage and a 7-day chart.
pub fn overview_page(ctx: &PageCtx, o: &Overview) -> String {
    let lang = ctx.lang;
    let tz = zone(&ctx.timezone);
    let count = o.classes.len();
    let intro = match lang {
        Lang::En => format!(
            "{count} {} · today and this week in {} · as of {}. Active sessions: signed in or chatted in the last hour.",
            if count == 1 { "class" } else { "classes" },
            ctx.timezone,
            fmt_time(o.now_ms, &tz),
        ),
        Lang::ZhTw => format!(
            "共 {count} 個班級 · 今天與本週依 {} 時區計算 · 截至 {}。使用中的工作階段：過去一小時內曾登入或對話。",
            ctx.timezone,
            fmt_time(o.now_ms, &tz),
        ),
    };
    let cards = o
        .classes
        .iter()
        .map(|s| class_card(lang, s, o.first_hour_ms, &tz))
        .collect_view();
    let empty = o.classes.is_empty().then(|| {
        view! {
            <p class="empty">
                {lang.t(
                    "No classes are configured. Set ACCESS_CODE or a classes file and restart classchat.",
                    "尚未設定任何班級。請設定 ACCESS_CODE 或班級設定檔，然後重新啟動 classchat。",
                )}
            </p>
        }
    });
    let body = view! {
        {admin_bar(ctx, "/admin")}
        <main class="admin-main">
            {flash(ctx)}
            <h1>{lang.t("Classes", "班級")}</h1>
            <p class="meta">{intro}</p>
            {empty}
            <div class="class-list">{cards}</div>
            {export_form(lang, today(o.now_ms, &tz), None)}
        </main>
    };
    document_in(lang.t("Dashboard", "管理後台"), body, lang.tag())
}

/// `GET /admin/classes/{id}`: one class's usage, students, errors, actions and history.
pub fn class_page(ctx: &PageCtx, p: &ClassPage) -> String {
    let lang = ctx.lang;
    let tz = zone(&ctx.timezone);
    let s = &p.summary;
    let (first_hour_ms, now_ms) = (p.first_hour_ms, p.now_ms);
    let new_code = p.new_code.clone().map(|code| {
        view! {
            <section class="new-code" role="alert" data-testid="admin-new-code">
                <h2>{lang.t("New access code", "新的存取代碼")}</h2>
                <p class="code-line"><code class="code">{code}</code></p>
                <p>
                    {lang.t(
                        "Share it with your students; it is shown only once. Every student of this class \
                         was signed out and must enter this code at their next message.",
                        "請分享給學生；這個代碼只會顯示這一次。這個班級的每位學生都已登出，\
                         傳送下一則訊息時必須輸入這個代碼。",
                    )}
                </p>
            </section>
        }
    });
    let times_in = match lang {
        Lang::En => format!("Times are in {}.", ctx.timezone),
        Lang::ZhTw => format!("時間以 {} 時區顯示。", ctx.timezone),
    };
    let body = view! {
        {admin_bar(ctx, &class_href(&s.id))}
        <main class="admin-main">
            <p class="crumbs"><a href="/admin">{lang.t("← All classes", "← 所有班級")}</a></p>
            {flash(ctx)}
            {new_code}
            <header class="page-head">
                <h1>{s.title.clone()}</h1>
                <code class="class-id">{s.id.clone()}</code>
                {status_badge(lang, s.enabled)}
            </header>
            {settings_lines(lang, s, &tz)}
            {stats(lang, s)}
            {chart(lang, &s.hourly, first_hour_ms, &tz)}
            {actions(ctx, s)}
            {students_table(ctx, &s.id, &p.students, &tz)}
            {errors_table(lang, &p.errors, &tz)}
            {audit_table(lang, &p.audit, &tz)}
            {export_form(lang, today(now_ms, &tz), Some(&s.id))}
            <p class="meta">{times_in}</p>
        </main>
    };
    document_in(&s.title, body, lang.tag())
}

/// `GET /admin/login` (and the answer to a failed `POST /admin/login`): the
/// administrator's password alone, or a teacher's email and password.
pub(crate) fn login_page(error: Option<&str>, csrf: &str, lang: Lang) -> String {
    let error = error.map(|e| {
        view! { <p class="error" role="alert" data-testid="admin-login-error">{e.to_string()}</p> }
    });
    let (other, other_name) = lang.other();
    let switch = format!("/admin/login?lang={}", other.tag());
    let body = view! {
        <main class="admin-main narrow">
            <p class="meta"><a href=switch lang=other.tag() data-testid="admin-lang-switch">{other_name}</a></p>
            <h1>{lang.t("classchat dashboard", "classchat 管理後台")}</h1>
            {error}
            <form method="post" action="/admin/login" class="card login">
                {csrf_field(csrf)}
                <label for="admin-email">{lang.t("Email address (teachers)", "電子郵件地址（教師）")}</label>
                <p class="meta" id="admin-email-hint">
                    {lang.t(
                        "Leave it empty to sign in with the administrator's password.",
                        "以管理員密碼登入時請留空。",
                    )}
                </p>
                <input
                    id="admin-email"
                    type="email"
                    name="email"
                    autocomplete="username"
                    aria-describedby="admin-email-hint"
                    data-testid="admin-login-email"
                />
                <label for="admin-password">{lang.t("Password", "密碼")}</label>
                <input
                    id="admin-password"
                    type="password"
                    name="password"
                    autocomplete="current-password"
                    required=true
                    autofocus=true
                    data-testid="admin-login-password"
                />
                <button type="submit" class="primary" data-testid="admin-login-submit">{lang.t("Sign in", "登入")}</button>
            </form>
        </main>
    };
    document_in(lang.t("Sign in", "登入"), body, lang.tag())
}

/// Error and info pages: "admin is off" (with how to turn it on), 401/403 from Cloudflare
/// Access, not found. A blank line in `text` starts a new paragraph.
pub fn message_page(title: &str, text: &str) -> String {
    message_page_in(Lang::En, title, text)
}

/// [`message_page`] in the page's language (`title` and `text` are already in it).
pub(crate) fn message_page_in(lang: Lang, title: &str, text: &str) -> String {
    let paragraphs = text
        .split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| view! { <p class="message-text">{p.to_string()}</p> })
        .collect_view();
    let body = view! {
        <main class="admin-main narrow">
            <p class="crumbs">{lang.t("classchat dashboard", "classchat 管理後台")}</p>
            <h1>{title.to_string()}</h1>
            {paragraphs}
            <p class="meta"><a href="/admin">{lang.t("Dashboard", "管理後台")}</a>" · "<a href="/">"classchat"</a></p>
        </main>
    };
    document_in(title, body, lang.tag())
}

/// The whole document around a page's body, in the page's language (`lang` is its tag).
pub(crate) fn document_in(title: &str, body: impl IntoView, lang: &'static str) -> String {
    document_full(title, body, "same-origin", lang)
}

/// An English [`document_in`] with another referrer policy: a page whose URL carries a
/// secret (an invitation link) sends `no-referrer`.
pub(crate) fn document_with_referrer(
    title: &str,
    body: impl IntoView,
    referrer: &'static str,
) -> String {
    document_full(title, body, referrer, "en")
}

/// The whole document: its title, body, referrer policy and language.
pub(crate) fn document_full(
    title: &str,
    body: impl IntoView,
    referrer: &'static str,
    lang: &'static str,
) -> String {
    let title = format!("{title} · classchat");
    view! {
        <!DOCTYPE html>
        <html lang=lang>
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="robots" content="noindex"/>
                <meta name="referrer" content=referrer/>
                <title>{title}</title>
                <style>{SITE_CSS}</style>
            </head>
            <body class="admin">{body}</body>
        </html>
    }
    .to_html()
}

/// The bar on top: home, the teachers' pages, the language switch (back to `here`, the
/// page's path, in the other language), who is signed in, sign out.
fn admin_bar(ctx: &PageCtx, here: &str) -> impl IntoView + use<> {
    let lang = ctx.lang;
    let (other, other_name) = lang.other();
    let switch = format!("{here}?lang={}", other.tag());
    let actor = ctx.actor.clone();
    let csrf = csrf_field(&ctx.csrf);
    view! {
        <header class="admin-bar">
            <a class="brand" href="/admin">{lang.t("classchat dashboard", "classchat 管理後台")}</a>
            <nav aria-label=lang.t("Dashboard", "管理後台")>
                <a href="/admin/classes" data-testid="nav-classes">{lang.t("Classes", "班級")}</a>
                <a href="/admin/teachers" data-testid="nav-teachers">{lang.t("Teachers", "教師")}</a>
                <a href=switch lang=other.tag() data-testid="admin-lang-switch">{other_name}</a>
            </nav>
            <span class="actor" title=lang.t("Signed in as", "登入身分")>{actor}</span>
            <form method="post" action="/admin/logout" class="inline">
                {csrf}
                <button type="submit" class="secondary small">{lang.t("Sign out", "登出")}</button>
            </form>
        </header>
    }
}

fn flash(ctx: &PageCtx) -> impl IntoView + use<> {
    ctx.flash.clone().map(|f| {
        view! { <p class="flash" role="status" data-testid="admin-flash">{f}</p> }
    })
}

fn csrf_field(csrf: &str) -> impl IntoView + use<> {
    let csrf = csrf.to_string();
    view! { <input type="hidden" name="csrf" value=csrf/> }
}

fn status_badge(lang: Lang, enabled: bool) -> impl IntoView {
    if enabled {
        view! { <span class="badge on" data-testid="admin-status">{lang.t("enabled", "已啟用")}</span> }
    } else {
        view! { <span class="badge off" data-testid="admin-status">{lang.t("disabled", "已停用")}</span> }
    }
}

fn class_card(
    lang: Lang,
    s: &ClassSummary,
    first_hour_ms: i64,
    tz: &TimeZone,
) -> impl IntoView + use<> {
    let href = class_href(&s.id);
    let more = match lang {
        Lang::En => format!("Students, errors and actions for {} →", s.title),
        Lang::ZhTw => format!("{} 的學生、錯誤與動作 →", s.title),
    };
    let card_class = if s.enabled {
        "card class-card"
    } else {
        "card class-card is-disabled"
    };
    view! {
        <article class=card_class data-testid="admin-class-row" data-class-id=s.id.clone()>
            <header class="card-head">
                <h2><a href=href.clone()>{s.title.clone()}</a></h2>
                <code class="class-id">{s.id.clone()}</code>
                {status_badge(lang, s.enabled)}
            </header>
            {settings_lines(lang, s, tz)}
            {stats(lang, s)}
            {chart(lang, &s.hourly, first_hour_ms, tz)}
            <p class="more"><a href=href>{more}</a></p>
        </article>
    }
}

/// The quota line and, when the dashboard overrides the configuration, who did it.
fn settings_lines(lang: Lang, s: &ClassSummary, tz: &TimeZone) -> impl IntoView + use<> {
    let quota = match (lang, s.daily_quota) {
        (_, 0) => lang
            .t("No daily message quota.", "沒有每日訊息配額。")
            .to_string(),
        (Lang::En, q) => format!(
            "Daily quota: {} messages for the whole class.",
            fmt_count(u64::from(q))
        ),
        (Lang::ZhTw, q) => format!("每日配額：全班 {} 則訊息。", fmt_count(u64::from(q))),
    };
    let note = s.overridden.as_ref().map(|o| {
        let (by, at, fields) = (&o.by, fmt_time(o.at_ms, tz), fields_text(lang, &o.fields));
        let text = match lang {
            Lang::En => format!(
                "Settings changed in the dashboard by {by} at {at} ({fields}); they take precedence over the configuration file."
            ),
            Lang::ZhTw => format!(
                "設定已由 {by} 於 {at} 在管理後台變更（{fields}）；優先於設定檔中的設定。"
            ),
        };
        view! { <p class="override" data-testid="admin-override">{text}</p> }
    });
    view! {
        <p class="quota" data-testid="admin-quota-line">{quota}</p>
        {note}
    }
}

fn stats(lang: Lang, s: &ClassSummary) -> impl IntoView + use<> {
    let rate_class = if s.error_rate_week >= 0.05 {
        "stat warn"
    } else {
        "stat"
    };
    view! {
        <dl class="stats">
            <div class="stat">
                <dt>{lang.t("Messages today", "今日訊息")}</dt>
                <dd data-testid="admin-messages-today" data-value=s.messages_today.to_string()>
                    {fmt_count(s.messages_today)}
                </dd>
            </div>
            <div class="stat">
                <dt>{lang.t("Tokens today", "今日 Token")}</dt>
                <dd
                    data-testid="admin-tokens-today"
                    data-value=s.tokens_today.to_string()
                    data-estimated=s.estimated_today.to_string()
                >
                    {tokens(lang, s.tokens_today, s.estimated_today)}
                </dd>
            </div>
            <div class="stat">
                <dt>{lang.t("Messages this week", "本週訊息")}</dt>
                <dd data-testid="admin-messages-week" data-value=s.messages_week.to_string()>
                    {fmt_count(s.messages_week)}
                </dd>
            </div>
            <div class="stat">
                <dt>{lang.t("Tokens this week", "本週 Token")}</dt>
                <dd
                    data-testid="admin-tokens-week"
                    data-value=s.tokens_week.to_string()
                    data-estimated=s.estimated_week.to_string()
                >
                    {tokens(lang, s.tokens_week, s.estimated_week)}
                </dd>
            </div>
            <div class="stat">
                <dt>{lang.t("Active sessions", "使用中的工作階段")}</dt>
                <dd data-testid="admin-active-sessions" data-value=s.active_sessions.to_string()>
                    {fmt_count(s.active_sessions)}
                </dd>
            </div>
            <div class=rate_class>
                <dt title=lang.t(
                    "Share of this week's chat requests that ended in an upstream error",
                    "本週對話請求中以上游錯誤結束的比例",
                )>
                    {lang.t("Error rate this week", "本週錯誤率")}
                </dt>
                <dd data-testid="admin-error-rate">{fmt_percent(s.error_rate_week)}</dd>
            </div>
        </dl>
    }
}

/// Messages per hour as an inline SVG bar chart (one bar per hour, oldest first, the first
/// starting at `first_hour_ms`), with the days labelled below it in HTML so the labels stay
/// readable however wide the chart is drawn.
fn chart(lang: Lang, hourly: &[u32], first_hour_ms: i64, tz: &TimeZone) -> impl IntoView + use<> {
    let n = hourly.len();
    let total: u64 = hourly.iter().map(|&v| u64::from(v)).sum();
    let (peak_at, peak) =
        hourly.iter().copied().enumerate().fold(
            (0, 0),
            |best, (i, v)| if v > best.1 { (i, v) } else { best },
        );
    let hour_at = |i: usize| {
        Timestamp::from_millisecond(first_hour_ms.saturating_add(i as i64 * HOUR_MS))
            .ok()
            .map(|t| t.to_zoned(tz.clone()))
    };
    let summary = match (lang, total) {
        (_, 0) => lang
            .t(
                "Messages per hour over the last 7 days: none yet.",
                "過去 7 天每小時的訊息數：尚無訊息。",
            )
            .to_string(),
        (Lang::En, _) => {
            let when = hour_at(peak_at)
                .map(|z| format!(" ({})", fmt_hour(lang, &z)))
                .unwrap_or_default();
            format!(
                "Messages per hour over the last 7 days: {} in total, at most {} in one hour{when}.",
                fmt_count(total),
                fmt_count(u64::from(peak)),
            )
        }
        (Lang::ZhTw, _) => {
            let when = hour_at(peak_at)
                .map(|z| format!("（{}）", fmt_hour(lang, &z)))
                .unwrap_or_default();
            format!(
                "過去 7 天每小時的訊息數：共 {} 則，單一小時最多 {} 則{when}。",
                fmt_count(total),
                fmt_count(u64::from(peak)),
            )
        }
    };
    let width = n.max(1) as f64;
    let view_box = format!("0 0 {} 100", n.max(1));

    // Day boundaries (in the configured zone): a line where the date changes, and a label
    // in the middle of each day wide enough to hold one.
    let dates: Vec<Option<Date>> = (0..n).map(|i| hour_at(i).map(|z| z.date())).collect();
    let mut starts: Vec<usize> = (0..n)
        .filter(|&i| i == 0 || dates[i] != dates[i - 1])
        .collect();
    starts.push(n);
    let lines = starts
        .iter()
        .filter(|&&i| i > 0 && i < n)
        .map(|&i| {
            let x = fmt_num(i as f64);
            view! {
                <line class="day-line" x1=x.clone() x2=x y1="0" y2="100" vector-effect="non-scaling-stroke"/>
            }
        })
        .collect_view();
    let labels = starts
        .windows(2)
        .filter(|w| w[1] - w[0] >= 8)
        .filter_map(|w| {
            let date = dates[w[0]]?;
            let left = (w[0] + w[1]) as f64 / 2.0 / width * 100.0;
            let style = format!("left: {left:.2}%");
            // The weekday is dropped on a phone, where the days are too narrow for it.
            let (weekday, day) = match lang {
                Lang::En => (date.strftime("%a").to_string(), format!(" {}", date.day())),
                Lang::ZhTw => (
                    weekday_zh(date.weekday()).to_string(),
                    format!(" {}/{}", date.month(), date.day()),
                ),
            };
            Some(view! { <span style=style><span class="wd">{weekday}</span>{day}</span> })
        })
        .collect_view();

    let bars = hourly
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let h = if peak == 0 {
                0.0
            } else {
                // A single message stays visible next to a busy hour.
                (f64::from(v) / f64::from(peak) * 100.0).max(if v > 0 { 2.0 } else { 0.0 })
            };
            let tip = (v > 0).then(|| {
                let when = hour_at(i)
                    .map(|z| fmt_hour(lang, &z))
                    .unwrap_or_default();
                let tip = match lang {
                    Lang::En => {
                        let what = if v == 1 { "message" } else { "messages" };
                        format!("{when}: {v} {what}")
                    }
                    Lang::ZhTw => format!("{when}：{v} 則訊息"),
                };
                view! { <title>{tip}</title> }
            });
            view! {
                <rect x=fmt_num(i as f64 + 0.12) y=fmt_num(100.0 - h) width="0.76" height=fmt_num(h)>
                    {tip}
                </rect>
            }
        })
        .collect_view();

    let empty = (total == 0).then(|| {
        view! {
            <p class="chart-empty">
                {lang.t("No messages in the last 7 days.", "過去 7 天沒有訊息。")}
            </p>
        }
    });
    view! {
        <figure class="chart" data-testid="admin-chart" data-total=total.to_string()>
            <div class="chart-plot">
                <svg
                    viewBox=view_box
                    preserveAspectRatio="none"
                    role="img"
                    aria-label=summary.clone()
                    xmlns="http://www.w3.org/2000/svg"
                >
                    <title>{summary.clone()}</title>
                    {lines}
                    <g class="bars">{bars}</g>
                </svg>
                {empty}
            </div>
            <div class="chart-days" aria-hidden="true">{labels}</div>
            <figcaption>{summary}</figcaption>
        </figure>
    }
}

fn actions(ctx: &PageCtx, s: &ClassSummary) -> impl IntoView + use<> {
    let lang = ctx.lang;
    let base = class_href(&s.id);
    let toggle = if s.enabled {
        view! {
            <form method="post" action=format!("{base}/disable") class="action">
                {csrf_field(&ctx.csrf)}
                <button type="submit" class="danger" data-testid="admin-disable">{lang.t("Disable the class", "停用班級")}</button>
                <p class="hint">
                    {lang.t(
                        "Nobody can sign in or chat in this class until you enable it again; \
                         students who are signed in are stopped at their next message.",
                        "在您重新啟用之前，沒有人能在這個班級登入或對話；\
                         已登入的學生會在傳送下一則訊息時被擋下。",
                    )}
                </p>
            </form>
        }
        .into_any()
    } else {
        view! {
            <form method="post" action=format!("{base}/enable") class="action">
                {csrf_field(&ctx.csrf)}
                <button type="submit" class="primary" data-testid="admin-enable">{lang.t("Enable the class", "啟用班級")}</button>
                <p class="hint">
                    {lang.t(
                        "Students can sign in and chat again with the class's current code.",
                        "學生可以用班級目前的存取代碼再次登入與對話。",
                    )}
                </p>
            </form>
        }
        .into_any()
    };
    let reset = s.overridden.as_ref().map(|o| {
        let fields = fields_text(lang, &o.fields);
        let hint = match lang {
            Lang::En => format!(
                "Drops what the dashboard changed ({fields}): the class's settings come from the configuration file again."
            ),
            Lang::ZhTw => format!("捨棄管理後台所做的變更（{fields}）：班級的設定改回以設定檔為準。"),
        };
        view! {
            <form method="post" action=format!("{base}/reset") class="action">
                {csrf_field(&ctx.csrf)}
                <button type="submit" class="secondary" data-testid="admin-reset">
                    {lang.t("Use the configuration file again", "改回使用設定檔")}
                </button>
                <p class="hint">{hint}</p>
            </form>
        }
    });
    view! {
        <section class="actions" aria-labelledby="actions-heading">
            <h2 id="actions-heading">{lang.t("Actions", "動作")}</h2>
            <div class="action-grid">
                <form method="post" action=format!("{base}/rotate") class="action">
                    {csrf_field(&ctx.csrf)}
                    <button type="submit" class="danger" data-testid="admin-rotate">{lang.t("Rotate the access code", "更換存取代碼")}</button>
                    <p class="hint">
                        {lang.t(
                            "Makes a new random code and signs every student of this class out: \
                             every student must enter the new code.",
                            "產生新的隨機代碼，並讓這個班級的每位學生登出：\
                             每位學生都必須輸入新的代碼。",
                        )}
                    </p>
                </form>
                {toggle}
                <form method="post" action=format!("{base}/quota") class="action">
                    {csrf_field(&ctx.csrf)}
                    <label for="quota">{lang.t("Daily message quota", "每日訊息配額")}</label>
                    <div class="field-row">
                        <input
                            id="quota"
                            type="number"
                            name="quota"
                            min="0"
                            step="1"
                            inputmode="numeric"
                            required=true
                            value=s.daily_quota.to_string()
                            data-testid="admin-quota"
                        />
                        <button type="submit" class="primary">{lang.t("Save", "儲存")}</button>
                    </div>
                    <p class="hint">
                        {lang.t(
                            "Messages per day for the whole class; 0 means no quota.",
                            "全班每天可傳送的訊息數；0 表示不限。",
                        )}
                    </p>
                </form>
                {reset}
            </div>
        </section>
    }
}

/// A section's table: column heads (`true`: a number, right-aligned) over the rows, or the
/// `empty` sentence when there are none. One markup for every table, so they stack alike on
/// narrow screens.
fn data_table(
    columns: &[(&'static str, bool)],
    rows: Vec<AnyView>,
    empty: &'static str,
) -> AnyView {
    if rows.is_empty() {
        return view! { <p class="empty">{empty}</p> }.into_any();
    }
    let heads = columns
        .iter()
        .map(
            |&(name, numeric)| view! { <th scope="col" class=numeric.then_some("num")>{name}</th> },
        )
        .collect_view();
    view! {
        <div class="table-wrap">
            <table class="data stack">
                <thead>
                    <tr>{heads}</tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
    .into_any()
}

fn students_table(
    ctx: &PageCtx,
    class_id: &str,
    rows: &[StudentRow],
    tz: &TimeZone,
) -> impl IntoView + use<> {
    let lang = ctx.lang;
    let rows = rows
        .iter()
        .map(|r| student_row(ctx, class_id, r, tz).into_any())
        .collect();
    let content = data_table(
        &[
            (lang.t("Student", "學生"), false),
            (lang.t("Messages", "訊息"), true),
            (lang.t("Tokens", "Token"), true),
            (lang.t("Last activity", "最後活動"), false),
            (lang.t("Session", "工作階段"), false),
        ],
        rows,
        lang.t("No student has signed in yet.", "還沒有學生登入。"),
    );
    view! {
        <section aria-labelledby="students-heading">
            <h2 id="students-heading">{lang.t("Students", "學生")}</h2>
            <p class="meta">
                {lang.t(
                    "All time, most messages first. Students without a display name are shown by the start of their session id.",
                    "全部期間，依訊息數由多到少排列。沒有顯示名稱的學生以工作階段編號的開頭表示。",
                )}
            </p>
            {content}
        </section>
    }
}

fn student_row(
    ctx: &PageCtx,
    class_id: &str,
    r: &StudentRow,
    tz: &TimeZone,
) -> impl IntoView + use<> {
    let lang = ctx.lang;
    let (name, short_id) = student_name(lang, r.display_name.as_deref(), &r.session_id);
    let session = if r.revoked {
        view! { <span class="badge off" data-testid="admin-revoked">{lang.t("revoked", "已撤銷")}</span> }.into_any()
    } else {
        let action = format!("/admin/sessions/{}/revoke", path_segment(&r.session_id));
        let label = match lang {
            Lang::En => format!("Revoke the session of {name}"),
            Lang::ZhTw => format!("撤銷 {name} 的工作階段"),
        };
        view! {
            <form method="post" action=action class="inline">
                {csrf_field(&ctx.csrf)}
                <input type="hidden" name="class_id" value=class_id.to_string()/>
                <button
                    type="submit"
                    class="danger-outline small"
                    data-testid="admin-revoke"
                    aria-label=label
                    title=lang.t(
                        "Signs this student out: they must enter the access code again.",
                        "讓這位學生登出：必須重新輸入存取代碼。",
                    )
                >
                    {lang.t("Revoke", "撤銷")}
                </button>
            </form>
        }
        .into_any()
    };
    let row_class = if r.revoked { "revoked" } else { "" };
    view! {
        <tr data-testid="admin-student-row" data-session-id=r.session_id.clone() class=row_class>
            <td data-label=lang.t("Student", "學生")>
                <span class="name">{name}</span>
                {short_id.map(|s| view! { <span class="sid">{s}</span> })}
            </td>
            <td data-label=lang.t("Messages", "訊息") class="num">{fmt_count(r.messages)}</td>
            <td data-label=lang.t("Tokens", "Token") class="num" data-estimated=r.estimated.to_string()>
                {tokens(lang, r.tokens, r.estimated)}
            </td>
            <td data-label=lang.t("Last activity", "最後活動")>{time_tag(r.last_at_ms, tz)}</td>
            <td data-label=lang.t("Session", "工作階段")>{session}</td>
        </tr>
    }
}

fn errors_table(lang: Lang, rows: &[ErrorRow], tz: &TimeZone) -> impl IntoView + use<> {
    let (time, student, error) = (
        lang.t("Time", "時間"),
        lang.t("Student", "學生"),
        lang.t("Error", "錯誤"),
    );
    let rows = rows
        .iter()
        .map(|r| {
            let (name, short_id) = student_name(lang, r.display_name.as_deref(), &r.session_id);
            view! {
                <tr>
                    <td data-label=time>{time_tag(r.at_ms, tz)}</td>
                    <td data-label=student>
                        <span class="name">{name}</span>
                        {short_id.map(|s| view! { <span class="sid">{s}</span> })}
                    </td>
                    <td data-label=error><code>{r.error_code.clone()}</code></td>
                </tr>
            }
            .into_any()
        })
        .collect();
    let content = data_table(
        &[(time, false), (student, false), (error, false)],
        rows,
        lang.t("No upstream errors recently.", "最近沒有上游錯誤。"),
    );
    view! {
        <section aria-labelledby="errors-heading">
            <h2 id="errors-heading">{lang.t("Recent upstream errors", "最近的上游錯誤")}</h2>
            {content}
        </section>
    }
}

fn audit_table(lang: Lang, rows: &[AuditRow], tz: &TimeZone) -> impl IntoView + use<> {
    let (time, who, action, detail) = (
        lang.t("Time", "時間"),
        lang.t("Who", "人員"),
        lang.t("Action", "動作"),
        lang.t("Detail", "細節"),
    );
    let rows = rows
        .iter()
        .map(|r| {
            view! {
                <tr>
                    <td data-label=time>{time_tag(r.at_ms, tz)}</td>
                    <td data-label=who>{r.actor.clone()}</td>
                    <td data-label=action>{r.action.clone()}</td>
                    <td data-label=detail>{r.detail.clone()}</td>
                </tr>
            }
            .into_any()
        })
        .collect();
    let content = data_table(
        &[
            (time, false),
            (who, false),
            (action, false),
            (detail, false),
        ],
        rows,
        lang.t("No dashboard actions yet.", "管理後台還沒有任何動作紀錄。"),
    );
    view! {
        <section aria-labelledby="audit-heading">
            <h2 id="audit-heading">{lang.t("Recent actions", "最近的動作")}</h2>
            {content}
        </section>
    }
}

/// The CSV export: a GET form, the last 7 days by default.
fn export_form(lang: Lang, today: Option<Date>, class_id: Option<&str>) -> impl IntoView + use<> {
    let to = today.map(|d| d.to_string()).unwrap_or_default();
    let from = today
        .and_then(|d| d.checked_sub(jiff::Span::new().days(7)).ok())
        .map(|d| d.to_string())
        .unwrap_or_default();
    let (legend, class_field) = match class_id {
        Some(id) => (
            lang.t(
                "Export this class's usage as CSV",
                "將這個班級的使用量匯出為 CSV",
            ),
            Some(view! { <input type="hidden" name="class" value=id.to_string()/> }),
        ),
        None => (
            lang.t(
                "Export usage as CSV (all classes)",
                "將使用量匯出為 CSV（所有班級）",
            ),
            None,
        ),
    };
    view! {
        <form method="get" action="/admin/export.csv" class="export card">
            <fieldset>
                <legend>{legend}</legend>
                {class_field}
                <label>{lang.t("From ", "從 ")} <input type="date" name="from" value=from required=true/></label>
                <label>{lang.t("To ", "到 ")} <input type="date" name="to" value=to required=true/></label>
                <button type="submit" class="secondary" data-testid="admin-export">{lang.t("Download CSV", "下載 CSV")}</button>
            </fieldset>
        </form>
    }
}

fn time_tag(ms: i64, tz: &TimeZone) -> impl IntoView + use<> {
    let iso = Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_default();
    view! { <time datetime=iso>{fmt_time(ms, tz)}</time> }
}

/// A student's name and, to tell same-named students apart, the start of the session id
/// (anonymous students get "anonymous · <id>" as their name instead).
fn student_name(
    lang: Lang,
    display_name: Option<&str>,
    session_id: &str,
) -> (String, Option<String>) {
    let short: String = session_id.chars().take(8).collect();
    match display_name.map(str::trim) {
        Some(name) if !name.is_empty() => (name.to_string(), Some(short)),
        _ => (format!("{} · {short}", lang.t("anonymous", "匿名")), None),
    }
}

fn class_href(id: &str) -> String {
    format!("/admin/classes/{}", path_segment(id))
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What the dashboard overrode ("codes", "enabled", "daily quota"), for a sentence.
fn fields_text(lang: Lang, fields: &[String]) -> String {
    if fields.is_empty() {
        return lang.t("settings", "設定").to_string();
    }
    let names = fields.iter().map(|f| {
        let f = f.replace('_', " ");
        match (lang, f.as_str()) {
            (Lang::ZhTw, "codes") => "存取代碼".to_string(),
            (Lang::ZhTw, "enabled") => "啟用狀態".to_string(),
            (Lang::ZhTw, "daily quota") => "每日配額".to_string(),
            _ => f,
        }
    });
    names.collect::<Vec<_>>().join(lang.t(", ", "、"))
}

/// The named zone, or UTC when the name is unknown.
fn zone(name: &str) -> TimeZone {
    TimeZone::get(name).unwrap_or(TimeZone::UTC)
}

fn today(now_ms: i64, tz: &TimeZone) -> Option<Date> {
    Timestamp::from_millisecond(now_ms)
        .ok()
        .map(|t| t.to_zoned(tz.clone()).date())
}

/// An hour of the chart: "Tue 4 Mar 14:00", or "3月4日（週二）14:00".
fn fmt_hour(lang: Lang, z: &jiff::Zoned) -> String {
    match lang {
        Lang::En => z.strftime("%a %-d %b %H:00").to_string(),
        Lang::ZhTw => format!(
            "{}月{}日（{}）{:02}:00",
            z.month(),
            z.day(),
            weekday_zh(z.weekday()),
            z.hour()
        ),
    }
}

fn weekday_zh(d: jiff::civil::Weekday) -> &'static str {
    use jiff::civil::Weekday::*;
    match d {
        Monday => "週一",
        Tuesday => "週二",
        Wednesday => "週三",
        Thursday => "週四",
        Friday => "週五",
        Saturday => "週六",
        Sunday => "週日",
    }
}

/// "2025-03-04 14:05" in the zone; "–" for a time out of range.
/// A moment as the dashboard shows it everywhere: `2026-12-07 16:30` in `tz`.
pub(crate) fn fmt_time(ms: i64, tz: &TimeZone) -> String {
    Timestamp::from_millisecond(ms)
        .map(|t| {
            t.to_zoned(tz.clone())
                .strftime("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_else(|_| "–".to_string())
}

/// A token total; "≈" and a title when `estimated` of its messages were counted by
/// classchat's estimate (characters / 4) because the upstream reported no usage.
fn tokens(lang: Lang, total: u64, estimated: u64) -> AnyView {
    if estimated == 0 {
        return fmt_count(total).into_any();
    }
    let title = match lang {
        Lang::En => format!(
            "Estimated in part: for {} {} the upstream reported no token counts, so classchat estimated them (characters / 4).",
            fmt_count(estimated),
            if estimated == 1 { "reply" } else { "replies" }
        ),
        Lang::ZhTw => format!(
            "部分為估計值：有 {} 則回覆上游未回報 Token 數，由 classchat 估算（字元數 / 4）。",
            fmt_count(estimated),
        ),
    };
    let shown = format!("≈{}", fmt_count(total));
    view! { <span class="estimated" title=title>{shown}</span> }.into_any()
}

/// 1234567 → "1,234,567".
fn fmt_count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A share (0.0..=1.0) as a percentage: "0%", "<0.1%", "2.5%", "12%".
fn fmt_percent(rate: f64) -> String {
    if !rate.is_finite() || rate <= 0.0 {
        return "0%".to_string();
    }
    let pct = (rate * 100.0).min(100.0);
    if pct < 0.1 {
        "<0.1%".to_string()
    } else if pct < 10.0 {
        format!("{pct:.1}%")
    } else {
        format!("{pct:.0}%")
    }
}

/// SVG coordinates: at most two decimals, no trailing zeros.
fn fmt_num(x: f64) -> String {
    let s = format!("{x:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSRF: &str = "csrf-token-0123456789";
    /// 2025-03-04 14:05:00 Asia/Taipei (06:05 UTC).
    const NOW_MS: i64 = 1_741_068_300_000;

    fn ctx() -> PageCtx {
        PageCtx {
            lang: Lang::En,
            actor: "teacher@example.edu".to_string(),
            csrf: CSRF.to_string(),
            flash: Some("Class disabled.".to_string()),
            timezone: "Asia/Taipei".to_string(),
        }
    }

    fn first_hour() -> i64 {
        NOW_MS.div_euclid(HOUR_MS) * HOUR_MS - (CHART_HOURS as i64 - 1) * HOUR_MS
    }

    fn summary(id: &str, hourly: Vec<u32>) -> ClassSummary {
        ClassSummary {
            id: id.to_string(),
            title: format!("Biology <b>{id}</b>"),
            enabled: true,
            daily_quota: 0,
            overridden: None,
            messages_today: 1234,
            tokens_today: 98_765,
            estimated_today: 0,
            messages_week: 4321,
            tokens_week: 1_234_567,
            estimated_week: 3,
            active_sessions: 7,
            error_rate_week: 0.025,
            hourly,
        }
    }

    fn busy_hours() -> Vec<u32> {
        (0..168)
            .map(|i| if i % 5 == 0 { i % 13 } else { 0 })
            .collect()
    }

    fn class_page_data() -> ClassPage {
        let mut s = summary("bio", busy_hours());
        s.daily_quota = 500;
        s.overridden = Some(OverrideInfo {
            by: "admin".to_string(),
            at_ms: NOW_MS - 3_600_000,
            fields: vec!["codes".to_string(), "daily_quota".to_string()],
        });
        ClassPage {
            summary: s,
            first_hour_ms: first_hour(),
            now_ms: NOW_MS,
            students: vec![
                StudentRow {
                    session_id: "0123456789abcdef".to_string(),
                    display_name: Some("<script>x</script>".to_string()),
                    messages: 40,
                    tokens: 12_000,
                    estimated: 2,
                    last_at_ms: NOW_MS - 60_000,
                    revoked: false,
                },
                StudentRow {
                    session_id: "fedcba9876543210".to_string(),
                    display_name: None,
                    messages: 3,
                    tokens: 900,
                    estimated: 0,
                    last_at_ms: NOW_MS - 7_200_000,
                    revoked: true,
                },
            ],
            errors: vec![ErrorRow {
                at_ms: NOW_MS - 120_000,
                session_id: "fedcba9876543210".to_string(),
                display_name: None,
                error_code: "upstream_timeout".to_string(),
            }],
            audit: vec![AuditRow {
                at_ms: NOW_MS - 3_600_000,
                actor: "admin".to_string(),
                action: "rotate_code".to_string(),
                class_id: Some("bio".to_string()),
                detail: "old code <revoked>".to_string(),
            }],
            new_code: Some("maple-river-42".to_string()),
        }
    }

    fn count(haystack: &str, needle: &str) -> usize {
        haystack.matches(needle).count()
    }

    /// Every POST form carries the CSRF token.
    fn assert_csrf_in_every_post_form(html: &str) {
        let forms = count(html, "<form method=\"post\"");
        assert!(forms > 0);
        let tokens = count(html, &format!("name=\"csrf\" value=\"{CSRF}\""));
        assert_eq!(forms, tokens, "{html}");
        for form in html.split("<form method=\"post\"").skip(1) {
            let form = &form[..form.find("</form>").expect("closed form")];
            assert!(form.contains(CSRF), "form without csrf: {form}");
        }
    }

    #[test]
    fn overview_shows_each_class_with_its_numbers_and_chart() {
        let mut quiet = summary("chem", vec![0; 168]);
        quiet.enabled = false;
        quiet.overridden = Some(OverrideInfo {
            by: "t@example.edu".to_string(),
            at_ms: NOW_MS,
            fields: vec!["enabled".to_string()],
        });
        let o = Overview {
            classes: vec![summary("bio", busy_hours()), quiet],
            first_hour_ms: first_hour(),
            now_ms: NOW_MS,
        };
        let html = overview_page(&ctx(), &o);
        assert!(html.starts_with("<!DOCTYPE html>"), "{}", &html[..40]);
        assert!(html.contains("<style>"));
        assert!(html.contains("data-testid=\"admin-class-row\" data-class-id=\"bio\""));
        assert!(html.contains("data-testid=\"admin-class-row\" data-class-id=\"chem\""));
        assert!(html.contains("href=\"/admin/classes/bio\""));
        assert!(html.contains("Biology &lt;b&gt;bio&lt;/b&gt;"));
        assert!(!html.contains("<b>bio</b>"));
        assert!(html.contains(">1,234</dd>"));
        assert!(html.contains("data-value=\"98765\""));
        assert!(html.contains("2.5%"));
        assert_eq!(count(&html, "data-testid=\"admin-chart\""), 2);
        assert_eq!(count(&html, "<rect "), 336);
        assert!(html.contains("disabled</span>"));
        assert!(html.contains(
            "Settings changed in the dashboard by t@example.edu at 2025-03-04 14:05 (enabled)"
        ));
        assert!(html.contains(
            "role=\"status\" data-testid=\"admin-flash\" class=\"flash\">Class disabled.</p>"
        ));
        assert!(html.contains("teacher@example.edu"));
        assert!(html.contains("action=\"/admin/logout\""));
        // The export form defaults to the last 7 days, in the configured zone.
        assert!(html.contains("name=\"from\" value=\"2025-02-25\""));
        assert!(html.contains("name=\"to\" value=\"2025-03-04\""));
        assert!(!html.contains("name=\"class\""));
        assert_csrf_in_every_post_form(&html);
    }

    #[test]
    fn chart_has_168_bars_labelled_days_and_a_total() {
        let hourly = busy_hours();
        let total: u32 = hourly.iter().sum();
        let html = chart(Lang::En, &hourly, first_hour(), &zone("Asia/Taipei")).to_html();
        assert_eq!(count(&html, "<rect "), 168);
        assert!(html.contains("viewBox=\"0 0 168 100\""));
        assert!(html.contains(&format!("{total} in total")));
        assert!(html.contains("aria-label=\"Messages per hour"));
        // The window spans 8 calendar days in Taipei: 7 boundaries, and the busy days labelled.
        assert_eq!(count(&html, "class=\"day-line\""), 7);
        assert!(
            html.contains("<span class=\"wd\">Tue</span> 4</span>"),
            "{html}"
        );
        assert!(
            html.contains("<span class=\"wd\">Wed</span> 26</span>"),
            "{html}"
        );
        assert!(!html.contains("NaN"));
    }

    #[test]
    fn chart_with_no_messages_still_draws_its_frame() {
        let html = chart(Lang::En, &[0; 168], first_hour(), &TimeZone::UTC).to_html();
        assert_eq!(count(&html, "<rect "), 168);
        assert!(html.contains("none yet"));
        assert!(html.contains("No messages in the last 7 days."));
        assert!(!html.contains("NaN") && !html.contains("inf"));
        let html = chart(Lang::En, &[], first_hour(), &TimeZone::UTC).to_html();
        assert_eq!(count(&html, "<rect "), 0);
    }

    #[test]
    fn class_page_shows_the_new_code_students_and_actions() {
        let html = class_page(&ctx(), &class_page_data());
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("data-testid=\"admin-new-code\""));
        assert!(html.contains("<code class=\"code\">maple-river-42</code>"));
        assert!(html.contains("shown only once"));
        // The student's name is text, never markup.
        assert!(html.contains("&lt;script&gt;x&lt;/script&gt;"));
        assert!(!html.contains("<script>x"));
        assert!(html.contains("anonymous · fedcba98"));
        assert!(html.contains("old code &lt;revoked&gt;"));
        assert_eq!(count(&html, "data-testid=\"admin-student-row\""), 2);
        // One revoke button (the other session is already revoked).
        assert_eq!(count(&html, "data-testid=\"admin-revoke\""), 1);
        assert_eq!(count(&html, "data-testid=\"admin-revoked\""), 1);
        assert!(html.contains("action=\"/admin/sessions/0123456789abcdef/revoke\""));
        assert!(html.contains("name=\"class_id\" value=\"bio\""));
        assert!(html.contains("action=\"/admin/classes/bio/rotate\""));
        assert!(html.contains("every student must enter the new code"));
        assert!(html.contains("data-testid=\"admin-disable\""));
        assert!(!html.contains("data-testid=\"admin-enable\""));
        assert!(html.contains("action=\"/admin/classes/bio/quota\""));
        assert!(html.contains("value=\"500\" data-testid=\"admin-quota\""));
        assert!(html.contains("action=\"/admin/classes/bio/reset\""));
        assert!(html.contains("(codes, daily quota)"));
        assert!(html.contains("upstream_timeout"));
        assert!(html.contains("rotate_code"));
        assert_eq!(count(&html, "<rect "), 168);
        // Students, errors and actions: 5 + 3 + 4 column heads, the two counts right-aligned.
        assert_eq!(count(&html, "<th scope=\"col\""), 12);
        assert_eq!(count(&html, "<th scope=\"col\" class=\"num\">"), 2);
        assert!(html.contains("<th scope=\"col\" class=\"num\">Messages</th>"));
        assert!(html.contains("name=\"class\" value=\"bio\""));
        assert!(html.contains("Times are in Asia/Taipei."));
        assert_csrf_in_every_post_form(&html);
    }

    #[test]
    fn estimated_token_figures_are_marked() {
        let html = class_page(&ctx(), &class_page_data());
        // This week's total and the first student's include estimates; today's and the
        // second student's do not.
        assert!(html.contains("title=\"Estimated in part: for 3 replies the upstream reported no token counts, so classchat estimated them (characters / 4).\" class=\"estimated\">≈1,234,567</span>"), "{html}");
        assert!(html.contains(">≈12,000</span>"), "{html}");
        assert!(html.contains("for 2 replies the upstream"));
        assert_eq!(count(&html, "≈"), 2);
        assert!(html.contains("98,765"));
    }

    #[test]
    fn class_page_without_a_new_code_or_overrides_is_quieter() {
        let mut p = class_page_data();
        p.new_code = None;
        p.summary.overridden = None;
        p.summary.enabled = false;
        p.summary.hourly = vec![0; 168];
        p.students.clear();
        p.errors.clear();
        p.audit.clear();
        let mut c = ctx();
        c.flash = None;
        let html = class_page(&c, &p);
        assert!(!html.contains("admin-new-code"));
        assert!(!html.contains("admin-flash"));
        assert!(!html.contains("/reset"));
        assert!(!html.contains("admin-override"));
        assert!(html.contains("data-testid=\"admin-enable\""));
        assert!(!html.contains("data-testid=\"admin-disable\""));
        assert!(html.contains("No student has signed in yet."));
        assert!(html.contains("No upstream errors recently."));
        assert!(html.contains("No dashboard actions yet."));
        assert_csrf_in_every_post_form(&html);
    }

    #[test]
    fn class_ids_and_session_ids_are_encoded_in_paths() {
        let mut p = class_page_data();
        p.summary.id = "bio 1/a\"b".to_string();
        p.students[0].session_id = "s/../x".to_string();
        let html = class_page(&ctx(), &p);
        assert!(html.contains("action=\"/admin/classes/bio%201%2Fa%22b/rotate\""));
        assert!(html.contains("action=\"/admin/sessions/s%2F..%2Fx/revoke\""));
    }

    #[test]
    fn login_page_has_the_form_and_escapes_the_error() {
        let html = login_page(Some("Wrong <password>."), CSRF, Lang::En);
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("action=\"/admin/login\""));
        assert!(html.contains("name=\"password\""));
        assert!(html.contains("data-testid=\"admin-login-password\""));
        assert!(html.contains("data-testid=\"admin-login-submit\""));
        assert!(html.contains(
            "data-testid=\"admin-login-error\" class=\"error\">Wrong &lt;password&gt;.</p>"
        ));
        assert_csrf_in_every_post_form(&html);
        let html = login_page(None, CSRF, Lang::En);
        assert!(!html.contains("admin-login-error"));
    }

    #[test]
    fn message_page_escapes_and_splits_paragraphs() {
        let html = message_page(
            "The dashboard is off",
            "Set ADMIN_PASSWORD <or> CF_ACCESS_TEAM_DOMAIN.\n\nThen restart classchat.",
        );
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("<h1>The dashboard is off</h1>"));
        assert!(html.contains("ADMIN_PASSWORD &lt;or&gt; CF_ACCESS_TEAM_DOMAIN."));
        assert_eq!(count(&html, "class=\"message-text\""), 2);
        assert!(html.contains("<title>The dashboard is off · classchat</title>"));
    }

    /// The `data-testid`s of a page, in order: the same in both languages.
    fn test_ids(html: &str) -> Vec<&str> {
        html.split("data-testid=\"")
            .skip(1)
            .map(|rest| &rest[..rest.find('"').expect("closed attribute")])
            .collect()
    }

    fn zh_ctx() -> PageCtx {
        PageCtx {
            lang: Lang::ZhTw,
            flash: Some("班級已啟用。".to_string()),
            ..ctx()
        }
    }

    fn overview_data() -> Overview {
        let mut quiet = summary("chem", vec![0; 168]);
        quiet.enabled = false;
        quiet.daily_quota = 1200;
        quiet.overridden = Some(OverrideInfo {
            by: "t@example.edu".to_string(),
            at_ms: NOW_MS,
            fields: vec!["enabled".to_string(), "daily quota".to_string()],
        });
        Overview {
            classes: vec![summary("bio", busy_hours()), quiet],
            first_hour_ms: first_hour(),
            now_ms: NOW_MS,
        }
    }

    #[test]
    fn overview_in_chinese_keeps_the_markup_and_links_back_to_english() {
        let o = overview_data();
        let en = overview_page(&ctx(), &o);
        let zh = overview_page(&zh_ctx(), &o);
        assert!(en.contains("<html lang=\"en\">"), "{}", &en[..80]);
        assert!(zh.contains("<html lang=\"zh-TW\">"), "{}", &zh[..80]);
        assert!(zh.contains("<title>管理後台 · classchat</title>"));
        assert!(zh.contains("<h1>班級</h1>") && en.contains("<h1>Classes</h1>"));
        assert!(
            zh.contains(
                "共 2 個班級 · 今天與本週依 Asia/Taipei 時區計算 · 截至 2025-03-04 14:05。"
            )
        );
        for words in [
            "classchat 管理後台",
            "今日訊息",
            "本週 Token",
            "使用中的工作階段",
            "本週錯誤率",
            "已停用</span>",
            "已啟用</span>",
            "沒有每日訊息配額。",
            "每日配額：全班 1,200 則訊息。",
            "設定已由 t@example.edu 於 2025-03-04 14:05 在管理後台變更（啟用狀態、每日配額）",
            "Biology &lt;b&gt;bio&lt;/b&gt; 的學生、錯誤與動作 →",
            "過去 7 天沒有訊息。",
            "<span class=\"wd\">週二</span> 3/4</span>",
            "將使用量匯出為 CSV（所有班級）",
            "下載 CSV",
            "登出",
        ] {
            assert!(zh.contains(words), "{words}: {zh}");
        }
        // Nothing of the English page is left but names, numbers and ids.
        for words in [
            "Messages today",
            "Sign out",
            "No daily message quota",
            "Export usage",
        ] {
            assert!(!zh.contains(words), "{words}");
        }
        // The switch leads to the same page in the other language.
        assert!(zh.contains(
            "<a href=\"/admin?lang=en\" lang=\"en\" data-testid=\"admin-lang-switch\">English</a>"
        ));
        assert!(en.contains(
            "<a href=\"/admin?lang=zh-TW\" lang=\"zh-TW\" data-testid=\"admin-lang-switch\">繁體中文</a>"
        ));
        assert_eq!(test_ids(&en), test_ids(&zh));
        assert_eq!(count(&zh, "<rect "), 336);
        assert!(!zh.contains("<b>bio</b>"));
        assert_csrf_in_every_post_form(&zh);
    }

    #[test]
    fn class_page_in_chinese_has_every_section_in_chinese() {
        let p = class_page_data();
        let en = class_page(&ctx(), &p);
        let zh = class_page(&zh_ctx(), &p);
        assert!(zh.contains("<html lang=\"zh-TW\">"));
        for words in [
            "← 所有班級",
            "<h2>新的存取代碼</h2>",
            "這個代碼只會顯示這一次",
            "每日配額：全班 500 則訊息。",
            "（存取代碼、每日配額）",
            "<h2 id=\"actions-heading\">動作</h2>",
            "更換存取代碼",
            "停用班級",
            "改回使用設定檔",
            "捨棄管理後台所做的變更（存取代碼、每日配額）",
            "<label for=\"quota\">每日訊息配額</label>",
            "<h2 id=\"students-heading\">學生</h2>",
            "<th scope=\"col\" class=\"num\">訊息</th>",
            "<td data-label=\"最後活動\">",
            "匿名 · fedcba98",
            "已撤銷</span>",
            "aria-label=\"撤銷 &lt;script&gt;x&lt;/script&gt; 的工作階段\"",
            "<h2 id=\"errors-heading\">最近的上游錯誤</h2>",
            "<h2 id=\"audit-heading\">最近的動作</h2>",
            "<th scope=\"col\" class=\"\">人員</th>",
            "將這個班級的使用量匯出為 CSV",
            "時間以 Asia/Taipei 時區顯示。",
            "過去 7 天每小時的訊息數：共 ",
            "部分為估計值：有 3 則回覆上游未回報 Token 數",
            "href=\"/admin/classes/bio?lang=en\"",
        ] {
            assert!(zh.contains(words), "{words}: {zh}");
        }
        // What students typed and what the server recorded stays as it is.
        assert!(zh.contains("&lt;script&gt;x&lt;/script&gt;") && !zh.contains("<script>x"));
        assert!(zh.contains("upstream_timeout") && zh.contains("rotate_code"));
        assert!(zh.contains("<code class=\"code\">maple-river-42</code>"));
        assert!(!zh.contains("Rotate the access code") && !zh.contains("anonymous"));
        assert_eq!(count(&zh, "<th scope=\"col\""), 12);
        assert_eq!(test_ids(&en), test_ids(&zh));
        assert!(en.contains("href=\"/admin/classes/bio?lang=zh-TW\""));
        assert_csrf_in_every_post_form(&zh);
    }

    #[test]
    fn the_chart_speaks_chinese_hours() {
        let html = chart(
            Lang::ZhTw,
            &busy_hours(),
            first_hour(),
            &zone("Asia/Taipei"),
        )
        .to_html();
        assert!(
            html.contains("<span class=\"wd\">週三</span> 2/26</span>"),
            "{html}"
        );
        // Hour 0 of the window (Tue 25 Feb 15:00 in Taipei) had no message; hour 5 had 5.
        assert!(
            html.contains("<title>2月25日（週二）20:00：5 則訊息</title>"),
            "{html}"
        );
        let html = chart(Lang::ZhTw, &[0; 168], first_hour(), &TimeZone::UTC).to_html();
        assert!(html.contains("過去 7 天每小時的訊息數：尚無訊息。"));
    }

    #[test]
    fn message_pages_come_in_either_language() {
        let html = message_page_in(Lang::ZhTw, "無法匯出", "結束日期超出範圍。");
        assert!(html.contains("<html lang=\"zh-TW\">"));
        assert!(html.contains("<h1>無法匯出</h1>"));
        assert!(html.contains(">管理後台</a>"));
        assert!(html.contains("<title>無法匯出 · classchat</title>"));
        let html = message_page("No such class", "There is no class with that id.");
        assert!(html.contains("<html lang=\"en\">") && html.contains(">Dashboard</a>"));
    }

    #[test]
    fn numbers_and_times_are_formatted_for_people() {
        assert_eq!(fmt_count(0), "0");
        assert_eq!(fmt_count(999), "999");
        assert_eq!(fmt_count(1000), "1,000");
        assert_eq!(fmt_count(1_234_567), "1,234,567");
        assert_eq!(fmt_percent(0.0), "0%");
        assert_eq!(fmt_percent(f64::NAN), "0%");
        assert_eq!(fmt_percent(0.0004), "<0.1%");
        assert_eq!(fmt_percent(0.025), "2.5%");
        assert_eq!(fmt_percent(0.5), "50%");
        assert_eq!(fmt_percent(3.0), "100%");
        assert_eq!(fmt_num(2.0), "2");
        assert_eq!(fmt_num(0.12), "0.12");
        assert_eq!(fmt_num(99.5), "99.5");
        assert_eq!(fmt_time(NOW_MS, &zone("Asia/Taipei")), "2025-03-04 14:05");
        // An unknown zone falls back to UTC.
        assert_eq!(fmt_time(NOW_MS, &zone("Mars/Olympus")), "2025-03-04 06:05");
        assert_eq!(
            student_name(Lang::En, Some("  "), "abcdefghijk").0,
            "anonymous · abcdefgh"
        );
        assert_eq!(
            student_name(Lang::En, Some("Mei"), "abcdefghijk"),
            ("Mei".to_string(), Some("abcdefgh".to_string()))
        );
    }
}
