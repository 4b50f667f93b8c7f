//! The HTML of a class's students known by identity: personal codes (the paste form, the
//! list with revoke and re-issue), the allowance per student, who is close to it or over
//! it, and the new codes as cards to print. Renders only: the rules are the handlers'.

use leptos::prelude::*;

use super::i18n::Lang;
use super::personal_codes::Card;
use super::teach_views::{TeachCtx, bar, csrf_field, notice, path_segment};
use super::views::document_in;
use crate::store::allowances::AllowanceRecord;
use crate::store::personal_codes::PersonalCodeRecord;

/// A path segment, escaped.
pub(super) fn segment(s: &str) -> String {
    path_segment(s)
}

/// What was wrong with a form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Problem {
    NoNames,
    TooMany,
    /// The name on this line (1-based) is too long.
    TooLong(usize),
    /// This allowance field is not a whole number from 0 to 100,000.
    Allowance(&'static str),
}

/// A student close to (80 % or more) or over the allowance.
#[derive(Debug, Clone)]
pub(crate) struct WatchRow {
    /// The student's key (`code:…`, `lti:…`), which the reset form sends.
    pub(crate) student: String,
    /// The personal code's name; `None` for an LMS student.
    pub(crate) name: Option<String>,
    pub(crate) day: i64,
    pub(crate) week: i64,
    pub(crate) over: bool,
}

#[derive(Debug, Clone)]
pub(super) struct StudentsPage {
    pub(super) class_id: String,
    pub(super) class_title: String,
    pub(super) can_edit: bool,
    pub(super) allowance: AllowanceRecord,
    pub(super) codes: Vec<PersonalCodeRecord>,
    pub(super) watch: Vec<WatchRow>,
    pub(super) problem: Option<Problem>,
    /// The names as pasted, shown again with a problem.
    pub(super) names: String,
    pub(super) done: String,
    pub(super) time_zone: String,
}

fn problem_text(lang: Lang, p: Problem) -> (String, &'static str) {
    match p {
        Problem::NoNames => (
            lang.t(
                "Names: paste at least one name, one per line.",
                "姓名：請貼上至少一個姓名，每行一個。",
            )
            .to_owned(),
            "#names",
        ),
        Problem::TooMany => (
            match lang {
                Lang::En => format!(
                    "Names: at most {} at a time.",
                    crate::personal_codes::MAX_NAMES
                ),
                Lang::ZhTw => format!("姓名：一次最多 {} 個。", crate::personal_codes::MAX_NAMES),
            },
            "#names",
        ),
        Problem::TooLong(line) => (
            match lang {
                Lang::En => format!("Names: the name on line {line} is longer than 64 characters."),
                Lang::ZhTw => format!("姓名：第 {line} 行的姓名超過 64 個字元。"),
            },
            "#names",
        ),
        Problem::Allowance(field) => (
            lang.t(
                "Allowance: a whole number from 0 (no limit) to 100,000.",
                "訊息額度：請輸入 0（不限）到 100,000 的整數。",
            )
            .to_owned(),
            if field == "per_week" {
                "#per-week"
            } else {
                "#per-day"
            },
        ),
    }
}

/// `GET /admin/classes/{id}/students`.
pub(super) fn students_page(ctx: &TeachCtx, p: &StudentsPage) -> String {
    let lang = ctx.lang;
    let base = format!("/admin/classes/{}", segment(&p.class_id));
    let here = format!("{base}/students");
    let title = lang.t("Personal codes and allowances", "個人代碼與訊息額度");
    let tz = jiff::tz::TimeZone::get(&p.time_zone).unwrap_or(jiff::tz::TimeZone::UTC);
    let when = move |ms: i64| super::views::fmt_time(ms, &tz);
    let done = match p.done.as_str() {
        "allowance" => Some(lang.t(
            "Allowance saved: it counts from the next message.",
            "已儲存訊息額度：從下一則訊息開始計算。",
        )),
        "reset" => Some(lang.t(
            "Allowance reset: the student can send again.",
            "已重設訊息額度：學生可以再傳訊息。",
        )),
        "revoked" => Some(lang.t(
            "Code revoked: it no longer signs in, and its sessions ended.",
            "已撤銷代碼：無法再登入，使用中的登入已結束。",
        )),
        _ => None,
    };
    let problem = p.problem.map(|pr| {
        let (text, href) = problem_text(lang, pr);
        view! {
            <div class="error error-summary" role="alert" aria-labelledby="error-summary-title" tabindex="-1" data-testid="error-summary">
                <h2 id="error-summary-title">{lang.t("There is a problem", "有問題需要修正")}</h2>
                <ul><li><a href=href>{text}</a></li></ul>
            </div>
        }
    });
    let names_invalid = matches!(
        p.problem,
        Some(Problem::NoNames | Problem::TooMany | Problem::TooLong(_))
    )
    .then_some("true");
    let num = |n: i64| if n > 0 { n.to_string() } else { String::new() };
    let allowance_form = p.can_edit.then(|| {
        view! {
            <form method="post" action=format!("{here}/allowance") class="card" data-testid="allowance-form">
                {csrf_field(&ctx.csrf)}
                <fieldset>
                    <legend>{lang.t("Allowance per student", "每位學生的訊息額度")}</legend>
                    <div class="field">
                        <label for="per-day">{lang.t("Messages per day (blank or 0: no limit)", "每日訊息數（空白或 0：不限）")}</label>
                        <input id="per-day" name="per_day" type="text" inputmode="numeric" value=num(p.allowance.per_day) autocomplete="off"/>
                    </div>
                    <div class="field">
                        <label for="per-week">{lang.t("Messages per week, from Monday (blank or 0: no limit)", "每週訊息數，自星期一起算（空白或 0：不限）")}</label>
                        <input id="per-week" name="per_week" type="text" inputmode="numeric" value=num(p.allowance.per_week) autocomplete="off"/>
                    </div>
                </fieldset>
                <button type="submit" class="primary" data-testid="allowance-submit">{lang.t("Save the allowance", "儲存訊息額度")}</button>
            </form>
        }
    });
    let watch_rows = p
        .watch
        .iter()
        .map(|w| {
            let name = w.name.clone().unwrap_or_else(|| {
                format!("{} {}", lang.t("LMS student", "LMS 學生"), w.student.chars().skip(4).take(8).collect::<String>())
            });
            let status = if w.over { lang.t("Over the limit", "已超過額度") } else { lang.t("Close to the limit", "接近額度") };
            let reset = p.can_edit.then(|| {
                let aria = format!("{} {}", lang.t("Reset the allowance of", "重設訊息額度："), name);
                view! {
                    <form method="post" action=format!("{here}/reset") class="inline">
                        {csrf_field(&ctx.csrf)}
                        <input type="hidden" name="student" value=w.student.clone()/>
                        <button type="submit" class="secondary small" aria-label=aria data-testid="student-reset">{lang.t("Reset", "重設")}</button>
                    </form>
                }
            });
            view! {
                <tr data-testid="watch-row">
                    <th scope="row" class="name">{name.clone()}</th>
                    <td class="num">{w.day}</td>
                    <td class="num">{w.week}</td>
                    <td>{status}</td>
                    <td>{reset}</td>
                </tr>
            }
        })
        .collect_view();
    let watch = if p.watch.is_empty() {
        view! { <p class="empty" data-testid="watch-empty">{lang.t("Nobody is close to the allowance.", "目前沒有學生接近訊息額度。")}</p> }.into_any()
    } else {
        view! {
            <div class="table-wrap">
                <table class="data stack" data-testid="watch">
                    <thead><tr>
                        <th scope="col">{lang.t("Student", "學生")}</th>
                        <th scope="col">{lang.t("Today", "今天")}</th>
                        <th scope="col">{lang.t("This week", "本週")}</th>
                        <th scope="col">{lang.t("Status", "狀態")}</th>
                        <th scope="col">{lang.t("Actions", "動作")}</th>
                    </tr></thead>
                    <tbody>{watch_rows}</tbody>
                </table>
            </div>
        }
        .into_any()
    };
    let paste = p.can_edit.then(|| {
        view! {
            <form method="post" action=here.clone() class="card" data-testid="names-form">
                {csrf_field(&ctx.csrf)}
                <fieldset>
                    <legend>{lang.t("Make personal codes", "產生個人代碼")}</legend>
                    <div class="field">
                        <label for="names">{lang.t("Students' names, one per line", "學生姓名，每行一個")}</label>
                        <p class="hint" id="names-hint">{lang.t("Paste a column from your class list. Each student gets a code; signing in with it shows this name to you, and the student types no name.", "從班級名單貼上一欄。每位學生會得到一個代碼；以代碼登入時您會看到這個姓名，學生不必輸入姓名。")}</p>
                        <textarea id="names" name="names" rows="8" aria-describedby="names-hint" aria-invalid=names_invalid data-testid="names">{p.names.clone()}</textarea>
                    </div>
                </fieldset>
                <button type="submit" class="primary" data-testid="names-submit">{lang.t("Make the codes", "產生代碼")}</button>
            </form>
        }
    });
    let code_rows = p
        .codes
        .iter()
        .map(|c| {
            let status = if c.revoked_ms.is_some() { lang.t("Revoked", "已撤銷") } else { lang.t("In force", "有效") };
            let actions = p.can_edit.then(|| {
                let at = format!("/admin/personal-codes/{}", segment(&c.id));
                let revoke = c.revoked_ms.is_none().then(|| {
                    let aria = format!("{} {}", lang.t("Revoke the code of", "撤銷代碼："), c.name);
                    view! {
                        <form method="post" action=format!("{at}/revoke") class="inline">
                            {csrf_field(&ctx.csrf)}
                            <button type="submit" class="secondary small" aria-label=aria data-testid="code-revoke">{lang.t("Revoke", "撤銷")}</button>
                        </form>
                    }
                });
                let aria = format!("{} {}", lang.t("New code for", "重新發給代碼："), c.name);
                view! {
                    {revoke}
                    <form method="post" action=format!("{at}/reissue") class="inline">
                        {csrf_field(&ctx.csrf)}
                        <button type="submit" class="secondary small" aria-label=aria data-testid="code-reissue">{lang.t("New code", "重新發給")}</button>
                    </form>
                }
            });
            view! {
                <tr data-testid="code-row">
                    <th scope="row" class="name">{c.name.clone()}</th>
                    <td>{when(c.issued_ms)}</td>
                    <td>{status}</td>
                    <td>{actions}</td>
                </tr>
            }
        })
        .collect_view();
    let codes = if p.codes.is_empty() {
        view! { <p class="empty">{lang.t("No personal codes yet.", "尚未產生個人代碼。")}</p> }
            .into_any()
    } else {
        view! {
            <div class="table-wrap">
                <table class="data stack" data-testid="codes">
                    <thead><tr>
                        <th scope="col">{lang.t("Student", "學生")}</th>
                        <th scope="col">{lang.t("Code made", "代碼產生時間")}</th>
                        <th scope="col">{lang.t("Status", "狀態")}</th>
                        <th scope="col">{lang.t("Actions", "動作")}</th>
                    </tr></thead>
                    <tbody>{code_rows}</tbody>
                </table>
            </div>
        }
        .into_any()
    };
    let body = view! {
        {bar(ctx, &here)}
        <main class="admin-main" id="main">
            <p class="crumbs"><a href=format!("{base}/settings")>{format!("← {}", p.class_title)}</a></p>
            <h1>{title}</h1>
            {notice(done)}
            {problem}
            <section aria-labelledby="allowance-heading">
                <h2 id="allowance-heading">{lang.t("Allowances that follow the student", "跟著學生的訊息額度")}</h2>
                <p data-testid="allowance-scope">{lang.t("For students who sign in with a personal code or from your LMS, the allowance counts every message they send, on every device and in every session, by day and by week in the class's time zone. Students who sign in with a class or activity code are not known by name: their limits stay per sign-in.", "以個人代碼或從 LMS 登入的學生，額度會計算他們在所有裝置、所有登入中傳送的每則訊息，依班級時區按日及按週計算。以班級或活動代碼登入的學生無法辨識身分：他們的限制仍以每次登入計算。")}</p>
                {allowance_form}
                <h3>{lang.t("Close to or over the allowance", "接近或超過額度的學生")}</h3>
                {watch}
            </section>
            <section aria-labelledby="codes-heading">
                <h2 id="codes-heading">{lang.t("Personal codes", "個人代碼")}</h2>
                <p>{lang.t("Only a digest of each code is kept: a lost code cannot be shown again, only replaced with a new one.", "伺服器只保存每個代碼的摘要：遺失的代碼無法再顯示，只能重新發給新的代碼。")}</p>
                {paste}
                {codes}
            </section>
        </main>
    };
    document_in(title, body, lang.tag())
}

/// The new codes, once, as cards to cut out: each with the student's name, the code and
/// the chat's address. The print stylesheet leaves only the cards on paper.
pub(super) fn cards_page(
    ctx: &TeachCtx,
    class_id: &str,
    class: &str,
    embed: &str,
    cards: &[Card],
) -> String {
    let lang = ctx.lang;
    let back = format!("/admin/classes/{}/students", segment(class_id));
    let title = lang.t("New personal codes", "新的個人代碼");
    let items = cards
        .iter()
        .map(|c| {
            view! {
                <li class="code-card" data-testid="code-card">
                    <p class="card-class">{class.to_string()}</p>
                    <p class="card-name" data-testid="card-name">{c.name.clone()}</p>
                    <p class="card-code"><code data-testid="card-code">{c.code.clone()}</code></p>
                    <p class="card-url">{lang.t("Open ", "請開啟 ")}<span class="url">{embed.to_string()}</span>{lang.t(" and sign in with this code.", " 並以此代碼登入。")}</p>
                </li>
            }
        })
        .collect_view();
    let body = view! {
        {bar(ctx, &back)}
        <main class="admin-main" id="main">
            <p class="crumbs no-print"><a href=back.clone()>{format!("← {class}")}</a></p>
            <h1 class="no-print">{title}</h1>
            <p class="no-print" role="status">{lang.t("These codes are shown only this once: print them now (the page prints as cards) or copy them. A lost code can be replaced from the class's list.", "這些代碼只會顯示這一次：請立即列印（頁面會印成卡片）或複製。遺失的代碼可以從班級名單重新發給。")}</p>
            <ul class="code-cards" data-testid="code-cards">{items}</ul>
            <p class="no-print"><a href=back>{lang.t("Back to personal codes", "回到個人代碼")}</a></p>
        </main>
    };
    document_in(title, body, lang.tag())
}
