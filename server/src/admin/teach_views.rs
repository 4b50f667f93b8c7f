//! The HTML of the teachers' pages: my classes, a new class, a class's page (settings,
//! activities, members, embed snippets), a new code shown once, the audit log, and the
//! administrator's Teachers page. Plain forms (POST ones carry the CSRF token), every
//! field labelled, every error listed in a summary that links to its field, in English
//! or Traditional Chinese. Renders only: the rules are `teachers`' and the handlers'.

use leptos::prelude::*;

use super::classes::{ActivityFields, ClassFields};
use super::i18n::Lang;
use super::views::document_in;
use crate::store::teachers::{AuditLine, TeacherRecord};
use crate::teachers::Role;
use crate::teachers::class_fields::{FieldProblem, Problem};

/// Who is signed in, in which language, and the CSRF token their forms carry.
#[derive(Debug, Clone)]
pub(crate) struct TeachCtx {
    pub(crate) lang: Lang,
    pub(crate) actor: String,
    pub(crate) csrf: String,
    pub(crate) is_admin: bool,
    pub(crate) timezone: String,
}

/// One class on "My classes".
#[derive(Debug, Clone)]
pub(crate) struct ClassRow {
    pub(crate) id: String,
    pub(crate) title: String,
    /// `None`: the administrator (not a member).
    pub(crate) role: Option<Role>,
    /// Set in the classes file (or ACCESS_CODE).
    pub(crate) from_file: bool,
    pub(crate) activities: usize,
}

/// What a class takes where a field is blank.
#[derive(Debug, Clone)]
pub(crate) struct Defaults {
    pub(crate) model: String,
    pub(crate) time_zone: String,
    pub(crate) messages_per_minute: u32,
    pub(crate) class_messages_per_minute: u32,
    pub(crate) daily_quota: u32,
    pub(crate) token_ttl_secs: u64,
    /// The server's days to keep each kind of row (`KEEP_*_DAYS`).
    pub(crate) keep: crate::config::classes_file::Retention,
}

#[derive(Debug, Clone)]
pub(crate) struct ActivityRow {
    pub(crate) id: String,
    pub(crate) title: String,
    pub(crate) greeting: String,
    pub(crate) system_prompt: String,
    pub(crate) starters: String,
    pub(crate) model: String,
    pub(crate) paused: bool,
    pub(crate) embed: String,
    pub(crate) iframe: String,
}

#[derive(Debug, Clone)]
pub(crate) struct MemberRow {
    pub(crate) teacher_id: String,
    pub(crate) email: String,
    pub(crate) name: String,
    pub(crate) role: Option<Role>,
}

/// A class made in the store, as its page shows it.
#[derive(Debug, Clone)]
pub(crate) struct ClassPage {
    pub(crate) id: String,
    pub(crate) title: String,
    pub(crate) role: Option<Role>,
    pub(crate) can_edit: bool,
    pub(crate) can_members: bool,
    pub(crate) can_audit: bool,
    pub(crate) can_delete: bool,
    pub(crate) fields: ClassFields,
    pub(crate) problems: Vec<FieldProblem>,
    pub(crate) models: Option<Vec<String>>,
    pub(crate) defaults: Defaults,
    pub(crate) activities: Vec<ActivityRow>,
    pub(crate) members: Vec<MemberRow>,
    /// Messages, tokens and errors in the last 7 days.
    pub(crate) usage_week: (i64, i64, i64),
    /// The same week by activity: its title (`None`: the class's own code), messages,
    /// tokens, errors.
    pub(crate) usage_by_activity: Vec<(Option<String>, i64, i64, i64)>,
    /// The action just done (`saved`, `created`, …), for the notice.
    pub(crate) done: String,
}

/// A class of the classes file: read-only here.
#[derive(Debug, Clone)]
pub(crate) struct FileClass {
    pub(crate) id: String,
    pub(crate) title: String,
    pub(crate) greeting: String,
    pub(crate) system_prompt: String,
    pub(crate) starters: Vec<String>,
    pub(crate) model: String,
    pub(crate) time_zone: String,
    pub(crate) messages_per_minute: u32,
    pub(crate) class_messages_per_minute: u32,
    pub(crate) daily_quota: u32,
    pub(crate) token_ttl_secs: u64,
}

/// Why an invitation was not made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InviteProblem {
    NotAnEmail,
    NameTooLong,
    Taken,
}

pub(super) fn path_segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

fn role_name(lang: Lang, role: Role) -> &'static str {
    match role {
        Role::Owner => lang.t("Owner", "擁有者"),
        Role::CoTeacher => lang.t("Co-teacher", "協同教師"),
        Role::Assistant => lang.t("Assistant", "助教"),
    }
}

/// A field's label.
fn label(lang: Lang, field: &str) -> &'static str {
    match field {
        "title" => lang.t("Title", "名稱"),
        "greeting" => lang.t("Greeting", "歡迎詞"),
        "system_prompt" => lang.t("System prompt", "系統提示詞"),
        "starters" => lang.t(
            "Conversation starters (one per line)",
            "對話開場建議（每行一則）",
        ),
        "model" => lang.t("Model", "模型"),
        "time_zone" => lang.t("Time zone", "時區"),
        "messages_per_minute" => lang.t("Messages per minute, per student", "每位學生每分鐘訊息數"),
        "class_messages_per_minute" => {
            lang.t("Messages per minute, whole class", "全班每分鐘訊息數")
        }
        "daily_quota" => lang.t("Daily message quota (0: none)", "每日訊息配額（0：不限）"),
        "token_ttl_secs" => lang.t("Sign-in lifetime in seconds", "登入有效時間（秒）"),
        "email" => lang.t("Email address", "電子郵件地址"),
        "name" => lang.t("Name", "姓名"),
        "role" => lang.t("Role", "角色"),
        "visibility" => lang.t("Who can read conversations", "誰可以閱讀對話"),
        "keep_conversations_days" => lang.t(
            "Days stored conversations and safety flags are kept (0: until erased)",
            "保存對話與安全標示的天數（0：保留至刪除）",
        ),
        "keep_usage_days" => lang.t(
            "Days usage rows are kept (0: until erased)",
            "保存使用紀錄的天數（0：保留至刪除）",
        ),
        "keep_sessions_days" => lang.t(
            "Days sign-ins and the names students typed are kept (0: until erased)",
            "保存登入紀錄與學生輸入姓名的天數（0：保留至刪除）",
        ),
        _ => lang.t("Field", "欄位"),
    }
}

/// What is wrong with a field, in words.
pub(crate) fn problem_text(lang: Lang, p: &FieldProblem) -> String {
    let l = label(lang, p.field);
    match (&p.problem, lang) {
        (Problem::Empty, Lang::En) => format!("{l}: enter a value."),
        (Problem::Empty, Lang::ZhTw) => format!("{l}：請填寫。"),
        (Problem::TooLong(n), Lang::En) => format!("{l}: at most {n} characters."),
        (Problem::TooLong(n), Lang::ZhTw) => format!("{l}：最多 {n} 個字元。"),
        (Problem::NotANumber, Lang::En) => format!("{l}: enter a whole number."),
        (Problem::NotANumber, Lang::ZhTw) => format!("{l}：請輸入整數。"),
        (Problem::OutOfRange(a, b), Lang::En) => format!("{l}: between {a} and {b}."),
        (Problem::OutOfRange(a, b), Lang::ZhTw) => format!("{l}：須介於 {a} 與 {b} 之間。"),
        (Problem::UnknownTimeZone, Lang::En) => {
            format!("{l}: not a known time zone (use a name such as Asia/Taipei).")
        }
        (Problem::UnknownTimeZone, Lang::ZhTw) => {
            format!("{l}：不是已知的時區（請使用如 Asia/Taipei 的名稱）。")
        }
        (Problem::UnknownVisibility, Lang::En) => format!("{l}: choose one of the options."),
        (Problem::UnknownVisibility, Lang::ZhTw) => format!("{l}：請從選項中選擇。"),
        (Problem::Starters(s), Lang::En) => format!("{l}: {s}."),
        (Problem::Starters(s), Lang::ZhTw) => {
            format!("{l}：最多 6 則，每則不可空白或過長（{s}）。")
        }
    }
}

pub(super) fn csrf_field(csrf: &str) -> impl IntoView + use<> {
    let csrf = csrf.to_string();
    view! { <input type="hidden" name="csrf" value=csrf/> }
}

/// The bar on top: home, the language switch, who is signed in, sign out.
pub(super) fn bar(ctx: &TeachCtx, here: &str) -> impl IntoView + use<> {
    let lang = ctx.lang;
    let (other, other_name) = lang.other();
    let switch = format!("{here}?lang={}", other.tag());
    let admin_links = ctx.is_admin.then(|| {
        view! {
            <a href="/admin">{lang.t("Usage", "使用量")}</a>
            <a href="/admin/teachers" data-testid="nav-teachers">{lang.t("Teachers", "教師")}</a>
        }
    });
    view! {
        <header class="admin-bar">
            <a class="brand" href="/admin/classes">{lang.t("classchat dashboard", "classchat 管理後台")}</a>
            <nav aria-label=lang.t("Dashboard", "管理後台")>
                <a href="/admin/classes" data-testid="nav-classes">{lang.t("Classes", "班級")}</a>
                {admin_links}
                <a href="/admin/tokens" data-testid="nav-tokens">{lang.t("API tokens", "API 權杖")}</a>
                <a href=switch lang=other.tag() data-testid="admin-lang-switch">{other_name}</a>
            </nav>
            <span class="actor">{ctx.actor.clone()}</span>
            <form method="post" action="/admin/logout" class="inline">
                {csrf_field(&ctx.csrf)}
                <button type="submit" class="secondary small">{lang.t("Sign out", "登出")}</button>
            </form>
        </header>
    }
}

/// A notice after an action.
pub(super) fn notice(text: Option<&'static str>) -> impl IntoView + use<> {
    text.map(|t| view! { <p class="flash" role="status" data-testid="admin-flash">{t}</p> })
}

/// The error summary: what is wrong, each linking to its field.
fn error_summary(lang: Lang, problems: &[FieldProblem], prefix: &str) -> impl IntoView + use<> {
    (!problems.is_empty()).then(|| {
        let items = problems
            .iter()
            .map(|p| {
                let href = format!("#{prefix}{}", p.field);
                view! { <li><a href=href>{problem_text(lang, p)}</a></li> }
            })
            .collect_view();
        view! {
            <div class="error error-summary" role="alert" aria-labelledby="error-summary-title" tabindex="-1" data-testid="error-summary">
                <h2 id="error-summary-title">{lang.t("There is a problem", "有問題需要修正")}</h2>
                <ul>{items}</ul>
            </div>
        }
    })
}

/// One labelled field (`area`: a multi-line one), with its hint and its problem.
#[allow(clippy::too_many_arguments)]
fn field(
    lang: Lang,
    prefix: &str,
    name: &'static str,
    value: &str,
    hint: Option<String>,
    problems: &[FieldProblem],
    area: bool,
    required: bool,
) -> impl IntoView + use<> {
    let id = format!("{prefix}{name}");
    let hint_id = format!("{id}-hint");
    let err_id = format!("{id}-error");
    let problem = problems
        .iter()
        .find(|p| p.field == name)
        .map(|p| problem_text(lang, p));
    let invalid = problem.is_some();
    let described = [
        hint.is_some().then(|| hint_id.clone()),
        invalid.then(|| err_id.clone()),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ");
    let described = (!described.is_empty()).then_some(described);
    let hint = hint.map(|h| view! { <p class="hint" id=hint_id.clone()>{h}</p> });
    let problem = problem.map(|p| view! { <p class="error" id=err_id.clone()>{p}</p> });
    let value = value.to_string();
    let input = if area {
        view! {
            <textarea id=id.clone() name=name rows="4" aria-describedby=described aria-invalid=invalid.then_some("true") required=required>{value}</textarea>
        }
        .into_any()
    } else {
        view! {
            <input id=id.clone() name=name type="text" value=value aria-describedby=described aria-invalid=invalid.then_some("true") required=required/>
        }
        .into_any()
    };
    view! {
        <div class="field">
            <label for=id>{label(lang, name)}</label>
            {hint}
            {problem}
            {input}
        </div>
    }
}

/// The model: a picker over the models the key can use, or free text when that list is
/// not available.
fn model_field(
    lang: Lang,
    prefix: &str,
    value: &str,
    models: Option<&[String]>,
    default: &str,
    problems: &[FieldProblem],
) -> AnyView {
    let hint = match lang {
        Lang::En => format!("Blank: the server's model ({default})."),
        Lang::ZhTw => format!("留空：使用伺服器的模型（{default}）。"),
    };
    let Some(models) = models else {
        return field(
            lang,
            prefix,
            "model",
            value,
            Some(hint),
            problems,
            false,
            false,
        )
        .into_any();
    };
    let id = format!("{prefix}model");
    let mut list: Vec<String> = models.to_vec();
    if !value.is_empty() && !list.iter().any(|m| m == value) {
        list.insert(0, value.to_owned());
    }
    let options = list
        .into_iter()
        .map(|m| {
            let selected = m == value;
            view! { <option value=m.clone() selected=selected>{m.clone()}</option> }
        })
        .collect_view();
    let none_selected = value.is_empty();
    view! {
        <div class="field">
            <label for=id.clone()>{label(lang, "model")}</label>
            <select id=id name="model">
                <option value="" selected=none_selected>{hint}</option>
                {options}
            </select>
        </div>
    }
    .into_any()
}

/// Who can read the class's conversations: a choice of three, each saying what students
/// are told, since the widget shows them the same.
fn visibility_field(lang: Lang, prefix: &str, value: &str) -> impl IntoView + use<> {
    let id = format!("{prefix}visibility");
    let hint_id = format!("{id}-hint");
    let options = [
        (
            "off",
            lang.t(
                "Nobody: no message text is stored (students are told nothing)",
                "沒有人：不儲存任何訊息內容（不提示學生）",
            ),
        ),
        (
            "flagged",
            lang.t(
                "Teachers see conversations flagged for safety (students are told)",
                "老師可看到被標示為安全疑慮的對話（會告知學生）",
            ),
        ),
        (
            "full",
            lang.t(
                "Teachers can read every conversation (students are told)",
                "老師可閱讀所有對話（會告知學生）",
            ),
        ),
    ]
    .into_iter()
    .map(|(v, text)| {
        let selected = v == value || (value.is_empty() && v == "off");
        view! { <option value=v selected=selected>{text}</option> }
    })
    .collect_view();
    view! {
        <div class="field">
            <label for=id.clone()>{label(lang, "visibility")}</label>
            <p class="hint" id=hint_id.clone()>{lang.t("Applies to messages sent from now on. Only the class's owner can change it.", "只適用於之後傳送的訊息。只有班級擁有者可以變更。")}</p>
            <select id=id name="visibility" aria-describedby=hint_id>{options}</select>
        </div>
    }
}

/// Days the class keeps one kind of row; the hint says what blank means on this server.
fn keep_field(
    lang: Lang,
    p: &str,
    name: &'static str,
    value: &str,
    server: Option<u32>,
    problems: &[FieldProblem],
) -> impl IntoView + use<> {
    let hint = match (server, lang) {
        (Some(0), Lang::En) => {
            "Only the class's owner can change it. Blank: the server's setting (until erased)."
                .to_owned()
        }
        (Some(0), Lang::ZhTw) => {
            "只有班級擁有者可以變更。留空：伺服器的設定（保留至刪除）。".to_owned()
        }
        (Some(n), Lang::En) => {
            format!("Only the class's owner can change it. Blank: the server's setting ({n} days).")
        }
        (Some(n), Lang::ZhTw) => format!("只有班級擁有者可以變更。留空：伺服器的設定（{n} 天）。"),
        (None, Lang::En) => {
            "Only the class's owner can change it. Blank: the server's setting.".to_owned()
        }
        (None, Lang::ZhTw) => "只有班級擁有者可以變更。留空：伺服器的設定。".to_owned(),
    };
    field(lang, p, name, value, Some(hint), problems, false, false)
}

/// The class's settings form (new class, or the class page).
#[allow(clippy::too_many_arguments)]
fn class_form(
    ctx: &TeachCtx,
    action: String,
    f: &ClassFields,
    problems: &[FieldProblem],
    models: Option<&[String]>,
    defaults: Option<&Defaults>,
    submit: &'static str,
    editable: bool,
) -> impl IntoView + use<> {
    let lang = ctx.lang;
    let p = "class-";
    let d = |en: String, zh: String| Some(if lang == Lang::En { en } else { zh });
    let dm = defaults.map(|d| d.model.clone()).unwrap_or_default();
    let fields = view! {
        {field(lang, p, "title", &f.title, None, problems, false, true)}
        {field(lang, p, "greeting", &f.greeting, d("The first message students see. Blank: none.".into(), "學生看到的第一則訊息。留空：無。".into()), problems, true, false)}
        {field(lang, p, "system_prompt", &f.system_prompt, d("What the assistant is told before every conversation.".into(), "每段對話開始前給助理的指示。".into()), problems, true, false)}
        {field(lang, p, "starters", &f.starters, None, problems, true, false)}
        {model_field(lang, p, &f.model, models, &dm, problems)}
        {field(lang, p, "time_zone", &f.time_zone, defaults.and_then(|x| d(format!("An IANA name such as Asia/Taipei. Blank: {}.", x.time_zone), format!("IANA 時區名稱，例如 Asia/Taipei。留空：{}。", x.time_zone))), problems, false, false)}
        {field(lang, p, "messages_per_minute", &f.messages_per_minute, defaults.and_then(|x| d(format!("Blank: {}.", x.messages_per_minute), format!("留空：{}。", x.messages_per_minute))), problems, false, false)}
        {field(lang, p, "class_messages_per_minute", &f.class_messages_per_minute, defaults.and_then(|x| d(format!("Blank: {}.", x.class_messages_per_minute), format!("留空：{}。", x.class_messages_per_minute))), problems, false, false)}
        {field(lang, p, "daily_quota", &f.daily_quota, defaults.and_then(|x| d(format!("Blank: {}.", x.daily_quota), format!("留空：{}。", x.daily_quota))), problems, false, false)}
        {field(lang, p, "token_ttl_secs", &f.token_ttl_secs, defaults.and_then(|x| d(format!("How long a student stays signed in. Blank: {}.", x.token_ttl_secs), format!("學生保持登入的時間。留空：{}。", x.token_ttl_secs))), problems, false, false)}
        {visibility_field(lang, p, &f.visibility)}
        {keep_field(lang, p, "keep_conversations_days", &f.keep_conversations_days, defaults.map(|x| x.keep.conversations_days), problems)}
        {keep_field(lang, p, "keep_usage_days", &f.keep_usage_days, defaults.map(|x| x.keep.usage_days), problems)}
        {keep_field(lang, p, "keep_sessions_days", &f.keep_sessions_days, defaults.map(|x| x.keep.sessions_days), problems)}
    };
    view! {
        <form method="post" action=action class="card settings" data-testid="class-settings">
            {csrf_field(&ctx.csrf)}
            <fieldset disabled=!editable>
                <legend>{lang.t("Settings", "設定")}</legend>
                {fields}
            </fieldset>
            {editable.then(|| view! { <button type="submit" class="primary" data-testid="class-save">{lang.t(submit, match submit { "Create the class" => "建立班級", _ => "儲存" })}</button> })}
        </form>
    }
}

/// `GET /admin/classes`.
pub(crate) fn classes_page(ctx: &TeachCtx, rows: &[ClassRow]) -> String {
    let lang = ctx.lang;
    let items = rows
        .iter()
        .map(|r| {
            let href = format!("/admin/classes/{}/settings", path_segment(&r.id));
            let role = match (r.from_file, r.role) {
                (true, _) => lang
                    .t("Set in the classes file", "設定於班級設定檔")
                    .to_string(),
                (false, Some(role)) => role_name(lang, role).to_string(),
                (false, None) => lang.t("Administrator", "管理員").to_string(),
            };
            let count = match lang {
                Lang::En => format!("{} activities", r.activities),
                Lang::ZhTw => format!("{} 個活動", r.activities),
            };
            view! {
                <tr>
                    <th scope="row"><a href=href data-testid="class-link">{r.title.clone()}</a></th>
                    <td>{role}</td>
                    <td>{(!r.from_file).then_some(count)}</td>
                </tr>
            }
        })
        .collect_view();
    let table = if rows.is_empty() {
        view! { <p class="empty">{lang.t("You are not a member of any class yet. Create one, or ask a class's owner to add you.", "您尚未加入任何班級。請建立一個班級，或請班級擁有者將您加入。")}</p> }.into_any()
    } else {
        view! {
            <div class="table-wrap">
                <table class="data stack" data-testid="my-classes">
                    <thead><tr>
                        <th scope="col">{lang.t("Class", "班級")}</th>
                        <th scope="col">{lang.t("Your role", "您的角色")}</th>
                        <th scope="col">{lang.t("Activities", "活動")}</th>
                    </tr></thead>
                    <tbody>{items}</tbody>
                </table>
            </div>
        }
        .into_any()
    };
    let title = if ctx.is_admin {
        lang.t("Classes", "班級")
    } else {
        lang.t("My classes", "我的班級")
    };
    let body = view! {
        {bar(ctx, "/admin/classes")}
        <main class="admin-main" id="main">
            <h1>{title}</h1>
            <p><a href="/admin/classes/new" class="button primary" data-testid="new-class">{lang.t("Create a class", "建立班級")}</a></p>
            {table}
        </main>
    };
    document_in(title, body, lang.tag())
}

/// `GET /admin/classes/new` (and the form again with its problems).
pub(crate) fn new_class_page(
    ctx: &TeachCtx,
    f: &ClassFields,
    problems: &[FieldProblem],
    models: Option<&[String]>,
) -> String {
    let lang = ctx.lang;
    let title = lang.t("Create a class", "建立班級");
    let body = view! {
        {bar(ctx, "/admin/classes/new")}
        <main class="admin-main" id="main">
            <p class="crumbs"><a href="/admin/classes">{lang.t("← Classes", "← 班級")}</a></p>
            <h1>{title}</h1>
            {error_summary(lang, problems, "class-")}
            <p>{lang.t("Only the title is required; blank fields take the server's settings. You will be the class's owner.", "只有名稱為必填；留空的欄位使用伺服器的設定。您將成為這個班級的擁有者。")}</p>
            {class_form(ctx, "/admin/classes".into(), f, problems, models, None, "Create the class", true)}
        </main>
    };
    document_in(title, body, lang.tag())
}

fn done_text(lang: Lang, done: &str) -> Option<&'static str> {
    Some(match done {
        "created" => lang.t(
            "Class created. Add an activity to get an access code for students.",
            "班級已建立。新增一個活動，即可取得給學生的存取代碼。",
        ),
        "saved" => lang.t(
            "Settings saved: they apply to the next message.",
            "設定已儲存：下一則訊息起生效。",
        ),
        "activity" => lang.t("Activity saved.", "活動已儲存。"),
        "paused" => lang.t(
            "Activity paused: its students cannot sign in or chat.",
            "活動已暫停：學生無法登入或對話。",
        ),
        "resumed" => lang.t("Activity resumed.", "活動已恢復。"),
        "member" => lang.t("Members saved.", "成員已儲存。"),
        _ => return None,
    })
}

/// `GET /admin/classes/{id}/settings`.
pub(crate) fn class_page(ctx: &TeachCtx, p: &ClassPage) -> String {
    class_page_inner(ctx, p, None)
}

/// The class page with a rejected activity form's problems (the new-activity form keeps
/// what was typed).
pub(crate) fn class_page_with_activity_problems(
    ctx: &TeachCtx,
    p: &ClassPage,
    f: &ActivityFields,
    problems: &[FieldProblem],
) -> String {
    class_page_inner(ctx, p, Some((f, problems)))
}

fn activity_fields(
    lang: Lang,
    prefix: &str,
    f: &ActivityFields,
    problems: &[FieldProblem],
    models: Option<&[String]>,
) -> impl IntoView + use<> {
    let blank = Some(
        lang.t("Blank: the class's.", "留空：使用班級的設定。")
            .to_string(),
    );
    view! {
        {field(lang, prefix, "title", &f.title, None, problems, false, true)}
        {field(lang, prefix, "greeting", &f.greeting, blank.clone(), problems, true, false)}
        {field(lang, prefix, "system_prompt", &f.system_prompt, blank.clone(), problems, true, false)}
        {field(lang, prefix, "starters", &f.starters, blank.clone(), problems, true, false)}
        {model_field(lang, prefix, &f.model, models, lang.t("the class's", "班級的設定"), problems)}
    }
}

fn class_page_inner(
    ctx: &TeachCtx,
    p: &ClassPage,
    activity_problems: Option<(&ActivityFields, &[FieldProblem])>,
) -> String {
    let lang = ctx.lang;
    let base = format!("/admin/classes/{}", path_segment(&p.id));
    let models = p.models.as_deref();
    let role = match p.role {
        Some(r) => role_name(lang, r),
        None => lang.t("Administrator", "管理員"),
    };
    let role_line = match lang {
        Lang::En => format!("Your role: {role}."),
        Lang::ZhTw => format!("您的角色：{role}。"),
    };
    let (m, tk, e) = p.usage_week;
    let usage = match lang {
        Lang::En => format!("Last 7 days: {m} messages, {tk} tokens, {e} errors."),
        Lang::ZhTw => format!("過去 7 天：{m} 則訊息、{tk} 個 token、{e} 個錯誤。"),
    };
    let (new_act, new_problems) = match activity_problems {
        Some((f, pr)) => (f.clone(), pr.to_vec()),
        None => (ActivityFields::default(), Vec::new()),
    };
    let mut all_problems = p.problems.clone();
    all_problems.extend(new_problems.iter().cloned());
    let summary_prefix = if activity_problems.is_some() {
        "new-activity-"
    } else {
        "class-"
    };
    let activities = p
        .activities
        .iter()
        .map(|a| activity_section(ctx, a, p.can_edit, models))
        .collect_view();
    let add_activity = p.can_edit.then(|| {
        view! {
            <form method="post" action=format!("{base}/activities") class="card" data-testid="add-activity">
                {csrf_field(&ctx.csrf)}
                <fieldset>
                    <legend>{lang.t("Add an activity", "新增活動")}</legend>
                    {activity_fields(lang, "new-activity-", &new_act, &new_problems, models)}
                </fieldset>
                <button type="submit" class="primary" data-testid="add-activity-submit">{lang.t("Add the activity", "新增活動")}</button>
            </form>
        }
    });
    let members = members_section(ctx, &base, &p.members, p.can_members);
    let audit_link = p.can_audit.then(|| {
        view! { <p><a href=format!("{base}/audit") data-testid="audit-link">{lang.t("Audit log of this class", "這個班級的稽核紀錄")}</a></p> }
    });
    let students_link = view! { <p><a href=format!("{base}/students") data-testid="students-link">{lang.t("Personal codes and allowances", "個人代碼與訊息額度")}</a></p> };
    let usage_link = ctx.is_admin.then(|| {
        view! { <p><a href=base.clone()>{lang.t("Usage, students and codes (administrator)", "使用量、學生與代碼（管理員）")}</a></p> }
    });
    let delete = p.can_delete.then(|| {
        view! {
            <form method="post" action=format!("{base}/delete") class="card danger-zone">
                {csrf_field(&ctx.csrf)}
                <h2>{lang.t("Delete the class", "刪除班級")}</h2>
                <p class="hint">{lang.t("Deletes the class, its activities and members. Its students can no longer sign in. This cannot be undone.", "刪除班級及其活動與成員。學生將無法再登入。此動作無法復原。")}</p>
                <button type="submit" class="danger" data-testid="delete-class">{lang.t("Delete the class", "刪除班級")}</button>
            </form>
        }
    });
    let body = view! {
        {bar(ctx, &format!("{base}/settings"))}
        <main class="admin-main" id="main">
            <p class="crumbs"><a href="/admin/classes">{lang.t("← Classes", "← 班級")}</a></p>
            {notice(done_text(lang, &p.done))}
            {error_summary(lang, &all_problems, summary_prefix)}
            <h1>{p.title.clone()}</h1>
            <p class="meta"><code class="class-id">{p.id.clone()}</code>" · "{role_line}</p>
            <p>{usage}</p>
            {activity_usage(lang, &p.usage_by_activity)}
            {usage_link}
            <section aria-labelledby="settings-heading">
                <h2 id="settings-heading">{lang.t("Class settings", "班級設定")}</h2>
                {class_form(ctx, format!("{base}/settings"), &p.fields, &p.problems, models, Some(&p.defaults), "Save", p.can_edit)}
            </section>
            <section aria-labelledby="activities-heading">
                <h2 id="activities-heading">{lang.t("Activities", "活動")}</h2>
                <p class="hint">{lang.t("Each activity has its own access code; students sign in with it. All of them count in the class's limits.", "每個活動都有自己的存取代碼，學生以此登入。所有活動都計入班級的限制。")}</p>
                {activities}
                {add_activity}
            </section>
            {members}
            {students_link}
            {audit_link}
            {delete}
        </main>
    };
    document_in(&p.title, body, lang.tag())
}

fn activity_section(
    ctx: &TeachCtx,
    a: &ActivityRow,
    can_edit: bool,
    models: Option<&[String]>,
) -> impl IntoView + use<> {
    let lang = ctx.lang;
    let base = format!("/admin/activities/{}", path_segment(&a.id));
    let prefix = format!("act-{}-", a.id);
    let f = ActivityFields {
        csrf: String::new(),
        title: a.title.clone(),
        greeting: a.greeting.clone(),
        system_prompt: a.system_prompt.clone(),
        starters: a.starters.clone(),
        model: a.model.clone(),
    };
    let heading_id = format!("{prefix}heading");
    let heading_ref = heading_id.clone();
    let status = if a.paused {
        lang.t("Paused", "已暫停")
    } else {
        lang.t("Open", "開放中")
    };
    let controls = can_edit.then(|| {
        let (toggle_action, toggle_text) = if a.paused {
            (format!("{base}/resume"), lang.t("Resume", "恢復"))
        } else {
            (format!("{base}/pause"), lang.t("Pause", "暫停"))
        };
        view! {
            <form method="post" action=base.clone() class="card">
                {csrf_field(&ctx.csrf)}
                <fieldset>
                    <legend>{lang.t("Edit the activity", "編輯活動")}</legend>
                    {activity_fields(lang, &prefix, &f, &[], models)}
                </fieldset>
                <button type="submit" class="primary" data-testid="activity-save">{lang.t("Save the activity", "儲存活動")}</button>
            </form>
            <div class="action-grid">
                <form method="post" action=toggle_action class="action">
                    {csrf_field(&ctx.csrf)}
                    <button type="submit" class="secondary" data-testid="activity-toggle">{toggle_text}</button>
                </form>
                <form method="post" action=format!("{base}/rotate") class="action">
                    {csrf_field(&ctx.csrf)}
                    <button type="submit" class="danger" data-testid="activity-rotate">{lang.t("New access code", "更換存取代碼")}</button>
                    <p class="hint">{lang.t("The old code and every student signed in with it stop at once.", "舊代碼及以其登入的學生會立即失效。")}</p>
                </form>
            </div>
        }
    });
    let embed_id = format!("{prefix}embed");
    let iframe_id = format!("{prefix}iframe");
    view! {
        <section class="card activity" aria-labelledby=heading_ref data-testid="activity">
            <h3 id=heading_id>{a.title.clone()}" "<span class="badge">{status}</span></h3>
            <div class="field">
                <label for=embed_id.clone()>{lang.t("Embed snippet (paste into your page; students enter this activity's code)", "嵌入程式碼（貼到您的網頁；學生輸入這個活動的代碼）")}</label>
                <textarea id=embed_id readonly=true rows="3" data-testid="embed-snippet">{a.embed.clone()}</textarea>
            </div>
            <div class="field">
                <label for=iframe_id.clone()>{lang.t("Or as an iframe (for Canvas, Moodle, Google Sites)", "或以 iframe 嵌入（Canvas、Moodle、Google 協作平台）")}</label>
                <textarea id=iframe_id readonly=true rows="4" data-testid="iframe-snippet">{a.iframe.clone()}</textarea>
            </div>
            {controls}
        </section>
    }
}

fn members_section(
    ctx: &TeachCtx,
    base: &str,
    members: &[MemberRow],
    can_members: bool,
) -> impl IntoView + use<> {
    let lang = ctx.lang;
    let role_options = |selected: Option<Role>| {
        [Role::Owner, Role::CoTeacher, Role::Assistant]
            .into_iter()
            .map(|r| {
                let s = selected == Some(r);
                view! { <option value=r.as_str() selected=s>{role_name(lang, r)}</option> }
            })
            .collect_view()
    };
    let rows = members
        .iter()
        .map(|m| {
            let mbase = format!("{base}/members/{}", path_segment(&m.teacher_id));
            let role = m.role.map(|r| role_name(lang, r)).unwrap_or("");
            let select_id = format!("role-{}", m.teacher_id);
            let label_text = match lang {
                Lang::En => format!("Role of {}", m.email),
                Lang::ZhTw => format!("{} 的角色", m.email),
            };
            let remove_label = match lang {
                Lang::En => format!("Remove {}", m.email),
                Lang::ZhTw => format!("移除 {}", m.email),
            };
            let actions = can_members.then(|| {
                view! {
                    <form method="post" action=format!("{mbase}/role") class="inline">
                        {csrf_field(&ctx.csrf)}
                        <label for=select_id.clone() class="visually-hidden">{label_text}</label>
                        <select id=select_id name="role">{role_options(m.role)}</select>
                        <button type="submit" class="secondary small">{lang.t("Change role", "變更角色")}</button>
                    </form>
                    <form method="post" action=format!("{mbase}/remove") class="inline">
                        {csrf_field(&ctx.csrf)}
                        <button type="submit" class="danger small" aria-label=remove_label>{lang.t("Remove", "移除")}</button>
                    </form>
                }
            });
            view! {
                <tr>
                    <th scope="row">{m.email.clone()}</th>
                    <td>{m.name.clone()}</td>
                    <td>{role}</td>
                    <td>{actions}</td>
                </tr>
            }
        })
        .collect_view();
    let add = can_members.then(|| {
        view! {
            <form method="post" action=format!("{base}/members") class="card" data-testid="add-member">
                {csrf_field(&ctx.csrf)}
                <fieldset>
                    <legend>{lang.t("Add a teacher", "加入教師")}</legend>
                    <div class="field">
                        <label for="member-email">{label(lang, "email")}</label>
                        <p class="hint" id="member-email-hint">{lang.t("A teacher the administrator has invited.", "已由管理員邀請的教師。")}</p>
                        <input id="member-email" name="email" type="email" required=true aria-describedby="member-email-hint" autocomplete="off"/>
                    </div>
                    <div class="field">
                        <label for="member-role">{label(lang, "role")}</label>
                        <select id="member-role" name="role">{role_options(Some(Role::CoTeacher))}</select>
                    </div>
                </fieldset>
                <button type="submit" class="primary" data-testid="add-member-submit">{lang.t("Add", "加入")}</button>
            </form>
        }
    });
    view! {
        <section aria-labelledby="members-heading">
            <h2 id="members-heading">{lang.t("Members", "成員")}</h2>
            <p class="hint">{lang.t("Owners can do everything; co-teachers everything but deleting the class or changing members; assistants read only.", "擁有者可以做所有事；協同教師可以做刪除班級和管理成員以外的事；助教只能檢視。")}</p>
            <div class="table-wrap">
                <table class="data stack" data-testid="members">
                    <thead><tr>
                        <th scope="col">{label(lang, "email")}</th>
                        <th scope="col">{label(lang, "name")}</th>
                        <th scope="col">{label(lang, "role")}</th>
                        <th scope="col">{lang.t("Actions", "動作")}</th>
                    </tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
            {add}
        </section>
    }
}

/// A class of the classes file: its settings, read-only.
pub(crate) fn file_class_page(ctx: &TeachCtx, c: &FileClass) -> String {
    let lang = ctx.lang;
    let from_file = lang.t("set in the classes file", "設定於班級設定檔");
    let row = |name: &'static str, v: String| {
        view! {
            <tr>
                <th scope="row">{label(lang, name)}</th>
                <td>{v}</td>
                <td class="meta">{from_file}</td>
            </tr>
        }
    };
    let rows = view! {
        {row("title", c.title.clone())}
        {row("greeting", c.greeting.clone())}
        {row("system_prompt", c.system_prompt.clone())}
        {row("starters", c.starters.join(" · "))}
        {row("model", c.model.clone())}
        {row("time_zone", c.time_zone.clone())}
        {row("messages_per_minute", c.messages_per_minute.to_string())}
        {row("class_messages_per_minute", c.class_messages_per_minute.to_string())}
        {row("daily_quota", c.daily_quota.to_string())}
        {row("token_ttl_secs", c.token_ttl_secs.to_string())}
    };
    let usage = format!("/admin/classes/{}", path_segment(&c.id));
    let body = view! {
        {bar(ctx, &format!("{usage}/settings"))}
        <main class="admin-main" id="main">
            <p class="crumbs"><a href="/admin/classes">{lang.t("← Classes", "← 班級")}</a></p>
            <h1>{c.title.clone()}</h1>
            <p data-testid="from-file">{lang.t("This class is set in the classes file (or ACCESS_CODE): change it there and restart classchat. Its code, switch and quota can be changed on its usage page.", "這個班級設定於班級設定檔（或 ACCESS_CODE）：請在該處修改並重新啟動 classchat。代碼、開關與配額可在使用量頁面變更。")}</p>
            <p><a href=usage>{lang.t("Usage, students and codes", "使用量、學生與代碼")}</a></p>
            <div class="table-wrap">
                <table class="data stack">
                    <thead><tr>
                        <th scope="col">{lang.t("Setting", "設定")}</th>
                        <th scope="col">{lang.t("Value", "值")}</th>
                        <th scope="col">{lang.t("Where it is set", "設定位置")}</th>
                    </tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        </main>
    };
    document_in(&c.title, body, lang.tag())
}

/// The page that shows a new access code, once.
pub(crate) fn code_page(
    ctx: &TeachCtx,
    class_id: &str,
    class: &str,
    activity: &str,
    code: &str,
) -> String {
    let lang = ctx.lang;
    let back = format!("/admin/classes/{}/settings", path_segment(class_id));
    let title = lang.t("New access code", "新的存取代碼");
    let body = view! {
        {bar(ctx, &back)}
        <main class="admin-main narrow" id="main">
            <p class="crumbs"><a href=back.clone()>{format!("← {class}")}</a></p>
            <h1>{title}</h1>
            <section class="new-code" role="status" data-testid="admin-new-code">
                <h2>{activity.to_string()}</h2>
                <p class="code-line"><code class="code" data-testid="activity-code">{code.to_string()}</code></p>
                <p>{lang.t("Share it with your students: it is shown only this once. Students sign in with it in the widget.", "請分享給學生：這個代碼只會顯示這一次。學生在小工具中以此代碼登入。")}</p>
            </section>
            <p><a href=back>{lang.t("Back to the class", "回到班級")}</a></p>
        </main>
    };
    document_in(title, body, lang.tag())
}

/// `GET /admin/classes/{id}/audit`.
pub(crate) fn audit_page(
    ctx: &TeachCtx,
    class_id: &str,
    class: &str,
    lines: &[AuditLine],
) -> String {
    let lang = ctx.lang;
    let tz = jiff::tz::TimeZone::get(&ctx.timezone).unwrap_or(jiff::tz::TimeZone::UTC);
    let back = format!("/admin/classes/{}/settings", path_segment(class_id));
    let rows = lines
        .iter()
        .map(|l| {
            let when = jiff::Timestamp::from_millisecond(l.at_ms)
                .map(|t| {
                    t.to_zoned(tz.clone())
                        .strftime("%Y-%m-%d %H:%M:%S")
                        .to_string()
                })
                .unwrap_or_default();
            view! {
                <tr>
                    <td>{when}</td>
                    <td>{l.actor.clone()}</td>
                    <td>{l.action.clone()}</td>
                    <td>{l.detail.clone()}</td>
                    <td>{l.address.clone().unwrap_or_default()}</td>
                </tr>
            }
        })
        .collect_view();
    let title = match lang {
        Lang::En => format!("Audit log: {class}"),
        Lang::ZhTw => format!("稽核紀錄：{class}"),
    };
    let tz_line = match lang {
        Lang::En => format!("Newest first. Times are in {}.", ctx.timezone),
        Lang::ZhTw => format!("最新的在前。時間以 {} 顯示。", ctx.timezone),
    };
    let body = view! {
        {bar(ctx, &format!("/admin/classes/{}/audit", path_segment(class_id)))}
        <main class="admin-main" id="main">
            <p class="crumbs"><a href=back>{format!("← {class}")}</a></p>
            <h1>{title.clone()}</h1>
            <p class="meta">{tz_line}</p>
            <div class="table-wrap">
                <table class="data stack" data-testid="audit">
                    <thead><tr>
                        <th scope="col">{lang.t("When", "時間")}</th>
                        <th scope="col">{lang.t("Who", "人員")}</th>
                        <th scope="col">{lang.t("What", "動作")}</th>
                        <th scope="col">{lang.t("Details", "細節")}</th>
                        <th scope="col">{lang.t("From", "來源位址")}</th>
                    </tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        </main>
    };
    document_in(&title, body, lang.tag())
}

/// `GET /admin/teachers`: invite, list, disable (the administrator's).
pub(crate) fn teachers_page(
    ctx: &TeachCtx,
    teachers: &[TeacherRecord],
    invited: Option<(String, String)>,
    problem: Option<InviteProblem>,
    done: &str,
) -> String {
    let lang = ctx.lang;
    let title = lang.t("Teachers", "教師");
    let invited = invited.map(|(email, link)| {
        let intro = match lang {
            Lang::En => format!("Send this link to {email}. It is shown only this once, works once, and expires in 48 hours."),
            Lang::ZhTw => format!("請將這個連結寄給 {email}。連結只會顯示這一次、只能使用一次，並在 48 小時後失效。"),
        };
        view! {
            <section class="new-code" role="status" data-testid="invitation">
                <h2>{lang.t("Invitation link", "邀請連結")}</h2>
                <p>{intro}</p>
                <label for="invitation-link">{lang.t("Invitation link", "邀請連結")}</label>
                <textarea id="invitation-link" readonly=true rows="2" data-testid="invitation-link">{link}</textarea>
            </section>
        }
    });
    let problem = problem.map(|p| {
        let text = match p {
            InviteProblem::NotAnEmail => lang.t("Email address: enter an address such as name@school.edu.", "電子郵件地址：請輸入如 name@school.edu 的地址。"),
            InviteProblem::NameTooLong => lang.t("Name: at most 200 characters.", "姓名：最多 200 個字元。"),
            InviteProblem::Taken => lang.t("Email address: a teacher with this address exists already.", "電子郵件地址：已有教師使用這個地址。"),
        };
        let href = if p == InviteProblem::NameTooLong { "#invite-name" } else { "#invite-email" };
        view! {
            <div class="error error-summary" role="alert" aria-labelledby="error-summary-title" tabindex="-1" data-testid="error-summary">
                <h2 id="error-summary-title">{lang.t("There is a problem", "有問題需要修正")}</h2>
                <ul><li><a href=href>{text}</a></li></ul>
            </div>
        }
    });
    let done = match done {
        "disabled" => Some(lang.t(
            "Teacher disabled: every session and token of theirs has stopped.",
            "已停用教師：其所有登入與權杖已立即失效。",
        )),
        "enabled" => Some(lang.t("Teacher enabled.", "已啟用教師。")),
        _ => None,
    };
    let rows = teachers
        .iter()
        .map(|t| {
            let base = format!("/admin/teachers/{}", path_segment(&t.id));
            let status = match (t.disabled != 0, t.active != 0) {
                (true, _) => lang.t("Disabled", "已停用"),
                (false, true) => lang.t("Active", "使用中"),
                (false, false) => lang.t("Invited", "已邀請"),
            };
            let (action, text) = if t.disabled != 0 {
                (format!("{base}/enable"), lang.t("Enable", "啟用"))
            } else {
                (format!("{base}/disable"), lang.t("Disable", "停用"))
            };
            let aria = format!("{text} {}", t.email);
            view! {
                <tr>
                    <th scope="row">{t.email.clone()}</th>
                    <td>{t.name.clone()}</td>
                    <td>{status}</td>
                    <td>
                        <form method="post" action=action class="inline">
                            {csrf_field(&ctx.csrf)}
                            <button type="submit" class="secondary small" aria-label=aria data-testid="teacher-toggle">{text}</button>
                        </form>
                    </td>
                </tr>
            }
        })
        .collect_view();
    let body = view! {
        {bar(ctx, "/admin/teachers")}
        <main class="admin-main" id="main">
            <h1>{title}</h1>
            {notice(done)}
            {problem}
            {invited}
            <form method="post" action="/admin/teachers" class="card" data-testid="invite">
                {csrf_field(&ctx.csrf)}
                <fieldset>
                    <legend>{lang.t("Invite a teacher", "邀請教師")}</legend>
                    <div class="field">
                        <label for="invite-email">{label(lang, "email")}</label>
                        <input id="invite-email" name="email" type="email" required=true autocomplete="off"/>
                    </div>
                    <div class="field">
                        <label for="invite-name">{label(lang, "name")}</label>
                        <input id="invite-name" name="name" type="text" autocomplete="off"/>
                    </div>
                </fieldset>
                <button type="submit" class="primary" data-testid="invite-submit">{lang.t("Invite", "邀請")}</button>
            </form>
            <div class="table-wrap">
                <table class="data stack" data-testid="teachers">
                    <thead><tr>
                        <th scope="col">{label(lang, "email")}</th>
                        <th scope="col">{label(lang, "name")}</th>
                        <th scope="col">{lang.t("Status", "狀態")}</th>
                        <th scope="col">{lang.t("Actions", "動作")}</th>
                    </tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        </main>
    };
    document_in(title, body, lang.tag())
}

/// The week's usage split by activity, when any was used.
fn activity_usage(
    lang: Lang,
    rows: &[(Option<String>, i64, i64, i64)],
) -> Option<impl IntoView + use<>> {
    (!rows.is_empty()).then(|| {
        let rows = rows
            .iter()
            .map(|(title, m, tk, e)| {
                let title = title
                    .clone()
                    .unwrap_or_else(|| lang.t("The class's own code", "班級本身的存取碼").to_owned());
                view! {
                    <tr>
                        <th scope="row">{title}</th>
                        <td class="num">{*m}</td>
                        <td class="num">{*tk}</td>
                        <td class="num">{*e}</td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <div class="table-wrap">
                <table class="data" data-testid="activity-usage">
                    <caption>{lang.t("Last 7 days by activity", "過去 7 天各活動的使用量")}</caption>
                    <thead><tr>
                        <th scope="col">{lang.t("Activity", "活動")}</th>
                        <th scope="col" class="num">{lang.t("Messages", "訊息")}</th>
                        <th scope="col" class="num">{lang.t("Tokens", "Token")}</th>
                        <th scope="col" class="num">{lang.t("Errors", "錯誤")}</th>
                    </tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        }
    })
}

/// What is wrong with a new token's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenProblem {
    NoName,
    NameTooLong,
}

/// `GET /admin/tokens`: the signed-in person's personal access tokens for the admin API.
pub(crate) fn tokens_page(
    ctx: &TeachCtx,
    tokens: &[crate::store::teachers::TokenRecord],
    made: Option<String>,
    problem: Option<TokenProblem>,
    done: &str,
) -> String {
    let lang = ctx.lang;
    let title = lang.t("API tokens", "API 權杖");
    let tz = jiff::tz::TimeZone::get(&ctx.timezone).unwrap_or(jiff::tz::TimeZone::UTC);
    let when = move |ms: i64| super::views::fmt_time(ms, &tz);
    let made = made.map(|token| {
        view! {
            <section class="new-code" role="status" data-testid="new-token">
                <h2>{lang.t("Your new token", "您的新權杖")}</h2>
                <p>{lang.t("Copy it now: it is shown only this once. Send it as Authorization: Bearer <token> to /api/v1/admin/ (the OpenAPI description is at /api/v1/openapi.json).", "請立即複製：權杖只會顯示這一次。以 Authorization: Bearer <權杖> 傳送到 /api/v1/admin/（OpenAPI 說明在 /api/v1/openapi.json）。")}</p>
                <label for="new-token-value">{lang.t("Token", "權杖")}</label>
                <textarea id="new-token-value" readonly=true rows="2" data-testid="new-token-value">{token}</textarea>
            </section>
        }
    });
    let invalid = problem.is_some().then_some("true");
    let problem = problem.map(|p| {
        let text = match p {
            TokenProblem::NoName => lang.t("Name: say what the token is for.", "名稱：請說明權杖的用途。"),
            TokenProblem::NameTooLong => lang.t("Name: at most 100 characters.", "名稱：最多 100 個字元。"),
        };
        view! {
            <div class="error error-summary" role="alert" aria-labelledby="error-summary-title" tabindex="-1" data-testid="error-summary">
                <h2 id="error-summary-title">{lang.t("There is a problem", "有問題需要修正")}</h2>
                <ul><li><a href="#token-name">{text}</a></li></ul>
            </div>
        }
    });
    let done = (done == "revoked").then(|| {
        lang.t(
            "Token revoked: it stopped working at once.",
            "已撤銷權杖：立即失效。",
        )
    });
    let rows = tokens
        .iter()
        .map(|k| {
            let action = format!("/admin/tokens/{}/revoke", path_segment(&k.id));
            let aria = format!("{} {}", lang.t("Revoke", "撤銷"), k.name);
            let used = k.last_used_ms.map(&when).unwrap_or_else(|| lang.t("never", "從未").to_owned());
            view! {
                <tr>
                    <th scope="row">{k.name.clone()}</th>
                    <td><code>{format!("{}…", k.prefix)}</code></td>
                    <td>{when(k.created_ms)}</td>
                    <td>{used}</td>
                    <td>
                        <form method="post" action=action class="inline">
                            {csrf_field(&ctx.csrf)}
                            <button type="submit" class="secondary small" aria-label=aria data-testid="token-revoke">{lang.t("Revoke", "撤銷")}</button>
                        </form>
                    </td>
                </tr>
            }
        })
        .collect_view();
    let table = if tokens.is_empty() {
        view! { <p class="empty">{lang.t("You have no tokens.", "您目前沒有權杖。")}</p> }
            .into_any()
    } else {
        view! {
            <div class="table-wrap">
                <table class="data stack" data-testid="tokens">
                    <thead><tr>
                        <th scope="col">{lang.t("Name", "名稱")}</th>
                        <th scope="col">{lang.t("Starts with", "開頭")}</th>
                        <th scope="col">{lang.t("Made", "建立時間")}</th>
                        <th scope="col">{lang.t("Last used", "最後使用")}</th>
                        <th scope="col">{lang.t("Actions", "動作")}</th>
                    </tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        }
        .into_any()
    };
    let body = view! {
        {bar(ctx, "/admin/tokens")}
        <main class="admin-main" id="main">
            <h1>{title}</h1>
            <p>{lang.t("A token lets a script do through the admin API what you may do here, in your classes. Only a digest of it is kept.", "權杖讓程式透過管理 API 執行您在此可做的事（限您的班級）。伺服器只保存其摘要。")}</p>
            {notice(done)}
            {problem}
            {made}
            <form method="post" action="/admin/tokens" class="card" data-testid="token-form">
                {csrf_field(&ctx.csrf)}
                <fieldset>
                    <legend>{lang.t("Make a token", "建立權杖")}</legend>
                    <div class="field">
                        <label for="token-name">{lang.t("Name", "名稱")}</label>
                        <p class="hint" id="token-name-hint">{lang.t("What it is for, for example \"grade sync\".", "用途，例如「成績同步」。")}</p>
                        <input id="token-name" name="name" type="text" required=true maxlength="100" autocomplete="off" aria-describedby="token-name-hint" aria-invalid=invalid/>
                    </div>
                </fieldset>
                <button type="submit" class="primary" data-testid="token-submit">{lang.t("Make the token", "建立權杖")}</button>
            </form>
            {table}
        </main>
    };
    document_in(title, body, lang.tag())
}

/// An error or notice page in the page's language.
pub(crate) fn message_page(lang: Lang, title: &str, text: &str) -> String {
    let body = view! {
        <main class="admin-main narrow" id="main">
            <p class="crumbs">{lang.t("classchat dashboard", "classchat 管理後台")}</p>
            <h1>{title.to_string()}</h1>
            <p class="message-text">{text.to_string()}</p>
            <p class="meta"><a href="/admin/classes">{lang.t("Classes", "班級")}</a></p>
        </main>
    };
    document_in(title, body, lang.tag())
}
