//! A teacher's classes in the dashboard: the list ("My classes"), creating a class, its
//! page (settings, activities, members, embed snippets), and its audit log. Who may do
//! what is `teachers::allows` (as for the admin API); what a field may hold is
//! `teachers::class_fields`. This module reads the forms, checks the CSRF token, asks the
//! store, and hands plain data to `teach_views`, which renders it.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::i18n::{Lang, PageLang};
use super::one_time::{self, ACTIVITY_CODE};
use super::teach_views::{self as tv, TeachCtx};
use super::{AdminError, CsrfForm, Signed, Who, csrf_ok, html};
use crate::basics::now_ms;
use crate::classes::generate_code;
use crate::client_addr::ClientAddr;
use crate::state::AppState;
use crate::store::teachers::{ActivityRecord, Audit, ClassRecord};
use crate::sync::classes_changed;
use crate::teachers::class_fields::{
    self as fields, FieldProblem, MAX_GREETING, MAX_MODEL, MAX_PROMPT, MAX_TITLE, MemberRefusal,
    check_member_change,
};
use crate::teachers::{Need, Role, allows, new_id, normalize_email};

/// The models a class's picker offers: those the server's key can use, from the same
/// cached list as the admin API (`None`: not known now, and the field is free text).
async fn offered_models(state: &AppState) -> Option<Vec<String>> {
    let list = state.models.get().await.ok()?;
    Some(list.iter().map(|m| m.id.clone()).collect())
}

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/classes", get(list).post(create))
        .route("/admin/classes/new", get(new_form))
        .route("/admin/classes/{id}/settings", get(class_page).post(save))
        .route("/admin/classes/{id}/delete", post(delete))
        .route("/admin/classes/{id}/activities", post(add_activity))
        .route("/admin/classes/{id}/members", post(add_member))
        .route(
            "/admin/classes/{id}/members/{teacher_id}/role",
            post(set_role),
        )
        .route(
            "/admin/classes/{id}/members/{teacher_id}/remove",
            post(remove_member),
        )
        .route("/admin/classes/{id}/audit", get(audit))
        .route("/admin/activities/{id}", post(save_activity))
        .route("/admin/activities/{id}/pause", post(pause))
        .route("/admin/activities/{id}/resume", post(resume))
        .route("/admin/activities/{id}/rotate", post(rotate))
        .route("/admin/activities/{id}/code", get(code_page))
}

/// Why a class page or action did not do what it asked.
#[derive(Debug)]
pub(super) enum TeachError {
    /// No such class or activity, or not one the teacher is a member of.
    NotFound,
    /// The teacher's role in the class does not allow it.
    Forbidden(Role),
    /// The class comes from the classes file (or ACCESS_CODE): changed there, not here.
    FromFile,
    FormExpired,
    Member(MemberRefusal),
    NoSuchTeacher,
    /// The secret was shown already, expired, or was made for another session.
    Gone,
    Db(sqlx::Error),
}

impl From<sqlx::Error> for TeachError {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(e)
    }
}

impl From<AdminError> for TeachError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::Db(e) => Self::Db(e),
            _ => Self::FormExpired,
        }
    }
}

impl TeachError {
    pub(super) fn page(self, lang: Lang) -> Response {
        let (status, title, text) = match self {
            Self::Db(e) => return AdminError::Db(e).into_response(),
            Self::NotFound => (
                StatusCode::NOT_FOUND,
                lang.t("No such class", "找不到這個班級"),
                lang.t(
                    "There is no class or activity with that id among your classes.",
                    "在您的班級中找不到這個代號的班級或活動。",
                ),
            ),
            Self::Forbidden(role) => (
                StatusCode::FORBIDDEN,
                lang.t("Not allowed", "沒有權限"),
                match role {
                    Role::Assistant => lang.t(
                        "Assistants can read a class but change nothing.",
                        "助教可以檢視班級，但不能變更任何設定。",
                    ),
                    _ => lang.t(
                        "Only the class's owners (and the administrator) may do this.",
                        "只有班級擁有者（及管理員）可以這麼做。",
                    ),
                },
            ),
            Self::FromFile => (
                StatusCode::CONFLICT,
                lang.t("Set in the classes file", "設定於班級設定檔"),
                lang.t(
                    "This class is set in the classes file (or ACCESS_CODE): change it there and restart classchat.",
                    "這個班級設定於班級設定檔（或 ACCESS_CODE）：請在該處修改並重新啟動 classchat。",
                ),
            ),
            Self::FormExpired => (
                StatusCode::FORBIDDEN,
                lang.t("This form has expired", "這個表單已過期"),
                lang.t(
                    "The form was missing its security token or it was out of date. Go back, reload the page and try again.",
                    "表單缺少安全權杖或已過期。請返回上一頁、重新載入後再試一次。",
                ),
            ),
            Self::Member(MemberRefusal::OwnRole) => (
                StatusCode::BAD_REQUEST,
                lang.t("Not your own role", "不能變更自己的角色"),
                lang.t(
                    "You cannot lower your own role; ask another owner or the administrator.",
                    "您不能降低自己的角色；請請另一位擁有者或管理員協助。",
                ),
            ),
            Self::Member(MemberRefusal::RemoveSelf) => (
                StatusCode::BAD_REQUEST,
                lang.t("Not yourself", "不能移除自己"),
                lang.t(
                    "You cannot remove yourself; ask another owner or the administrator.",
                    "您不能移除自己；請請另一位擁有者或管理員協助。",
                ),
            ),
            Self::NoSuchTeacher => (
                StatusCode::BAD_REQUEST,
                lang.t("No such teacher", "找不到這位教師"),
                lang.t(
                    "No teacher has that email address. The administrator invites teachers first (Teachers page).",
                    "沒有教師使用這個電子郵件地址。請先由管理員邀請教師（「教師」頁面）。",
                ),
            ),
            Self::Gone => (
                StatusCode::NOT_FOUND,
                lang.t("Already shown", "已經顯示過"),
                lang.t(
                    "A new code is shown once, for a few minutes, to whoever made it. Rotate the code again to see a new one.",
                    "新代碼只會向產生者顯示一次，且只保留幾分鐘。請再次更換代碼以取得新的代碼。",
                ),
            ),
        };
        html(status, tv::message_page(lang, title, text))
    }
}

pub(super) type TeachResult<T = Response> = Result<T, TeachError>;

/// The answer, or the error's page in the page's language.
pub(super) fn answer(lang: Lang, r: TeachResult) -> Response {
    r.unwrap_or_else(|e| e.page(lang))
}

/// The page frame's data for the signed-in person.
pub(super) fn teach_ctx(state: &AppState, t: &Signed, lang: Lang) -> TeachCtx {
    TeachCtx {
        lang,
        actor: t.actor.clone(),
        csrf: state.admin.keys.csrf(&t.binding),
        is_admin: t.who == Who::Administrator,
        timezone: state.settings.timezone_name.clone(),
    }
}

/// An HTML answer that also remembers a language chosen by link.
pub(super) fn page_with_lang(l: PageLang, status: StatusCode, body: String) -> Response {
    let mut r = html(status, body);
    if l.chosen {
        r.headers_mut().append(header::SET_COOKIE, l.lang.cookie());
    }
    r
}

pub(super) fn check_csrf(state: &AppState, t: &Signed, token: &str) -> TeachResult<()> {
    if csrf_ok(state, &t.binding, token) {
        Ok(())
    } else {
        Err(TeachError::FormExpired)
    }
}

/// A class made in the store and the signed-in person's role in it (`None`: the
/// administrator).
pub(super) struct Access {
    pub(crate) class: ClassRecord,
    pub(crate) role: Option<Role>,
}

impl Access {
    pub(super) fn may(&self, need: Need) -> bool {
        self.role.is_none_or(|r| allows(r, need))
    }

    pub(super) fn require(&self, need: Need) -> TeachResult<()> {
        match self.role {
            Some(r) if !allows(r, need) => Err(TeachError::Forbidden(r)),
            _ => Ok(()),
        }
    }
}

/// The class `id` as `t` may see it: a class of the file is the administrator's (and
/// read-only here); a class the teacher is not a member of does not exist for them.
pub(super) async fn access(state: &AppState, t: &Signed, id: &str) -> TeachResult<Access> {
    let class = state.store.class(id).await?;
    let Some(class) = class else {
        return if state.classes.is_configured(id) && t.who == Who::Administrator {
            Err(TeachError::FromFile)
        } else {
            Err(TeachError::NotFound)
        };
    };
    let role = match t.teacher_id() {
        None => None,
        Some(tid) => Some(
            state
                .store
                .member_role(id, tid)
                .await?
                .ok_or(TeachError::NotFound)?,
        ),
    };
    Ok(Access { class, role })
}

/// An activity and the signed-in person's access to its class.
async fn activity_access(
    state: &AppState,
    t: &Signed,
    id: &str,
) -> TeachResult<(ActivityRecord, Access)> {
    let a = state
        .store
        .activity(id)
        .await?
        .ok_or(TeachError::NotFound)?;
    let access = access(state, t, &a.class_id).await?;
    Ok((a, access))
}

pub(super) fn audit_of<'a>(t: &'a Signed, client: &'a Option<String>) -> Audit<'a> {
    Audit {
        actor: &t.actor,
        address: client.as_deref(),
        now_ms: now_ms(),
    }
}

pub(super) fn address(client: &ClientAddr) -> Option<String> {
    client.0.map(|ip| ip.to_string())
}

/// A class's settings as the form sends them: text as typed, starters one per line.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub(super) struct ClassFields {
    pub(crate) csrf: String,
    pub(crate) title: String,
    pub(crate) greeting: String,
    pub(crate) system_prompt: String,
    pub(crate) starters: String,
    pub(crate) model: String,
    pub(crate) time_zone: String,
    pub(crate) messages_per_minute: String,
    pub(crate) class_messages_per_minute: String,
    pub(crate) daily_quota: String,
    pub(crate) token_ttl_secs: String,
    /// `off`, `flagged` or `full` (owners and the administrator only).
    pub(crate) visibility: String,
    /// Days kept (blank: the server's; 0: until erased); owners and the administrator only.
    pub(crate) keep_conversations_days: String,
    pub(crate) keep_usage_days: String,
    pub(crate) keep_sessions_days: String,
}

impl ClassFields {
    /// The form filled with a class's settings (blank: the server's setting).
    pub(crate) fn of(c: &ClassRecord) -> Self {
        let n = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
        Self {
            csrf: String::new(),
            title: c.title.clone(),
            greeting: c.greeting.clone().unwrap_or_default(),
            system_prompt: c.system_prompt.clone().unwrap_or_default(),
            starters: c.starters.join("\n"),
            model: c.model.clone().unwrap_or_default(),
            time_zone: c.time_zone.clone().unwrap_or_default(),
            messages_per_minute: n(c.messages_per_minute),
            class_messages_per_minute: n(c.class_messages_per_minute),
            daily_quota: n(c.daily_quota),
            token_ttl_secs: n(c.token_ttl_secs),
            visibility: c.visibility.as_str().to_owned(),
            keep_conversations_days: n(c.keep_conversations_days),
            keep_usage_days: n(c.keep_usage_days),
            keep_sessions_days: n(c.keep_sessions_days),
        }
    }

    /// `base` with this form's settings, or every problem found.
    fn apply(&self, mut c: ClassRecord) -> Result<ClassRecord, Vec<FieldProblem>> {
        let mut problems = Vec::new();
        let mut take = |r: Result<(), FieldProblem>| {
            if let Err(p) = r {
                problems.push(p);
            }
        };
        take(
            fields::text("title", &self.title, MAX_TITLE, true)
                .map(|v| c.title = v.unwrap_or_default()),
        );
        take(fields::text("greeting", &self.greeting, MAX_GREETING, false).map(|v| c.greeting = v));
        take(
            fields::text("system_prompt", &self.system_prompt, MAX_PROMPT, false)
                .map(|v| c.system_prompt = v),
        );
        take(fields::starters("starters", &self.starters).map(|v| c.starters = v));
        take(fields::text("model", &self.model, MAX_MODEL, false).map(|v| c.model = v));
        take(fields::time_zone("time_zone", &self.time_zone).map(|v| c.time_zone = v));
        take(
            fields::rate("messages_per_minute", &self.messages_per_minute, 1)
                .map(|v| c.messages_per_minute = v),
        );
        take(
            fields::rate(
                "class_messages_per_minute",
                &self.class_messages_per_minute,
                1,
            )
            .map(|v| c.class_messages_per_minute = v),
        );
        take(fields::rate("daily_quota", &self.daily_quota, 0).map(|v| c.daily_quota = v));
        take(
            fields::token_ttl("token_ttl_secs", &self.token_ttl_secs).map(|v| c.token_ttl_secs = v),
        );
        take(fields::visibility("visibility", &self.visibility).map(|v| {
            if let Some(v) = v {
                c.visibility = v;
            }
        }));
        take(
            fields::keep_days("keep_conversations_days", &self.keep_conversations_days)
                .map(|v| c.keep_conversations_days = v),
        );
        take(
            fields::keep_days("keep_usage_days", &self.keep_usage_days)
                .map(|v| c.keep_usage_days = v),
        );
        take(
            fields::keep_days("keep_sessions_days", &self.keep_sessions_days)
                .map(|v| c.keep_sessions_days = v),
        );
        if problems.is_empty() {
            Ok(c)
        } else {
            Err(problems)
        }
    }
}

/// How long a class keeps what its students write: decided by whoever decides whether it is
/// kept (the owner and the administrator).
fn retention_of(c: &ClassRecord) -> [Option<i64>; 3] {
    [
        c.keep_conversations_days,
        c.keep_usage_days,
        c.keep_sessions_days,
    ]
}

/// What changed between two versions of a class, by field name (never the values: a
/// prompt may be long, and the audit log is for who and when).
fn changed(old: &ClassRecord, new: &ClassRecord) -> String {
    let pairs = [
        ("title", old.title != new.title),
        ("greeting", old.greeting != new.greeting),
        ("system_prompt", old.system_prompt != new.system_prompt),
        ("starters", old.starters != new.starters),
        ("model", old.model != new.model),
        ("time_zone", old.time_zone != new.time_zone),
        (
            "messages_per_minute",
            old.messages_per_minute != new.messages_per_minute,
        ),
        (
            "class_messages_per_minute",
            old.class_messages_per_minute != new.class_messages_per_minute,
        ),
        ("daily_quota", old.daily_quota != new.daily_quota),
        ("token_ttl_secs", old.token_ttl_secs != new.token_ttl_secs),
        ("visibility", old.visibility != new.visibility),
        (
            "keep_conversations_days",
            old.keep_conversations_days != new.keep_conversations_days,
        ),
        (
            "keep_usage_days",
            old.keep_usage_days != new.keep_usage_days,
        ),
        (
            "keep_sessions_days",
            old.keep_sessions_days != new.keep_sessions_days,
        ),
    ];
    let names: Vec<&str> = pairs.iter().filter(|(_, c)| *c).map(|(n, _)| *n).collect();
    if names.is_empty() {
        "nothing".into()
    } else {
        names.join(", ")
    }
}

/// An activity as the form sends it; blank fields take the class's.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub(super) struct ActivityFields {
    pub(crate) csrf: String,
    pub(crate) title: String,
    pub(crate) greeting: String,
    pub(crate) system_prompt: String,
    pub(crate) starters: String,
    pub(crate) model: String,
}

impl ActivityFields {
    fn apply(&self, mut a: ActivityRecord) -> Result<ActivityRecord, Vec<FieldProblem>> {
        let mut problems = Vec::new();
        let mut take = |r: Result<(), FieldProblem>| {
            if let Err(p) = r {
                problems.push(p);
            }
        };
        take(
            fields::text("title", &self.title, MAX_TITLE, true)
                .map(|v| a.title = v.unwrap_or_default()),
        );
        take(fields::text("greeting", &self.greeting, MAX_GREETING, false).map(|v| a.greeting = v));
        take(
            fields::text("system_prompt", &self.system_prompt, MAX_PROMPT, false)
                .map(|v| a.system_prompt = v),
        );
        take(
            fields::starters("starters", &self.starters)
                .map(|v| a.starters = (!v.is_empty()).then_some(v)),
        );
        take(fields::text("model", &self.model, MAX_MODEL, false).map(|v| a.model = v));
        if problems.is_empty() {
            Ok(a)
        } else {
            Err(problems)
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct MemberFields {
    csrf: String,
    email: String,
    role: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RoleFields {
    csrf: String,
    role: String,
}

/// What the class page's query may say: which action was just done.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct DoneQuery {
    done: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct TicketQuery {
    ticket: String,
}

/// A fresh code no class or activity uses, and its stored (digest) form.
fn fresh_code(state: &AppState) -> (String, String) {
    loop {
        let code = generate_code();
        if state.classes.current().find_by_code(&code).is_none() {
            let stored = state.classes.code_keys().store(&code);
            return (code, stored);
        }
    }
}

/// `GET /admin/classes`: the classes the teacher is a member of, with their role; for
/// the administrator every class, those of the classes file marked as such.
async fn list(State(state): State<AppState>, t: Signed, l: PageLang) -> Response {
    let r = async {
        let mut rows = Vec::new();
        for c in state.store.classes_of(t.teacher_id()).await? {
            let role = match t.teacher_id() {
                Some(tid) => state.store.member_role(&c.id, tid).await?,
                None => None,
            };
            let activities = state.store.activities_of(&c.id).await?.len();
            rows.push(tv::ClassRow {
                id: c.id,
                title: c.title,
                role,
                from_file: false,
                activities,
            });
        }
        if t.who == Who::Administrator {
            let current = state.classes.current();
            for c in current
                .iter()
                .filter(|c| state.classes.is_configured(&c.id))
            {
                rows.push(tv::ClassRow {
                    id: c.id.clone(),
                    title: c.title.clone(),
                    role: None,
                    from_file: true,
                    activities: 0,
                });
            }
        }
        let ctx = teach_ctx(&state, &t, l.lang);
        Ok(page_with_lang(
            l,
            StatusCode::OK,
            tv::classes_page(&ctx, &rows),
        ))
    }
    .await;
    answer(l.lang, r)
}

/// `GET /admin/classes/new`: the form for a new class.
async fn new_form(State(state): State<AppState>, t: Signed, l: PageLang) -> Response {
    let ctx = teach_ctx(&state, &t, l.lang);
    let models = offered_models(&state).await;
    page_with_lang(
        l,
        StatusCode::OK,
        tv::new_class_page(&ctx, &ClassFields::default(), &[], models.as_deref()),
    )
}

/// `POST /admin/classes`: makes the class; a teacher who makes one is its owner.
async fn create(
    State(state): State<AppState>,
    t: Signed,
    l: PageLang,
    client: ClientAddr,
    axum::Form(form): axum::Form<ClassFields>,
) -> Response {
    let r = async {
        check_csrf(&state, &t, &form.csrf)?;
        let now = now_ms();
        let mut id = new_id('c');
        while state.classes.current().get(&id).is_some() {
            id = new_id('c');
        }
        let base = ClassRecord {
            id,
            created_ms: now,
            updated_ms: now,
            ..ClassRecord::default()
        };
        let c = match form.apply(base) {
            Ok(c) => c,
            Err(problems) => {
                let ctx = teach_ctx(&state, &t, l.lang);
                let models = offered_models(&state).await;
                return Ok(html(
                    StatusCode::BAD_REQUEST,
                    tv::new_class_page(&ctx, &form, &problems, models.as_deref()),
                ));
            }
        };
        let addr = address(&client);
        state
            .store
            .create_class(&c, t.teacher_id(), audit_of(&t, &addr))
            .await?;
        classes_changed(&state).await;
        tracing::info!(target: "classchat::admin", actor = %t.actor, class = %c.id, action = "create_class", "class created");
        Ok(Redirect::to(&format!("/admin/classes/{}/settings?done=created", c.id)).into_response())
    }
    .await;
    answer(l.lang, r)
}

/// Everything the class page shows, for `access`.
async fn class_view(
    state: &AppState,
    access: &Access,
    form: Option<(&ClassFields, &[FieldProblem])>,
    done: &str,
) -> TeachResult<tv::ClassPage> {
    let c = &access.class;
    let activities = state.store.activities_of(&c.id).await?;
    let members = state.store.members(&c.id).await?;
    let resolved = state.classes.resolve(c);
    let week_ago = now_ms() - 7 * 86_400_000;
    let usage = state
        .store
        .class_usage(&c.id, week_ago, now_ms() + 1)
        .await?;
    let by_activity = state
        .store
        // To the end of time: `now_ms` is a coarse clock, and a row of this very second
        // may carry a later millisecond.
        .class_usage_by_activity(&c.id, week_ago, i64::MAX)
        .await?;
    let usage_by_activity = by_activity
        .into_iter()
        .map(|u| {
            let title = u.activity_id.map(|id| {
                activities
                    .iter()
                    .find(|a| a.id == id)
                    .map_or(id, |a| a.title.clone())
            });
            (title, u.messages, u.tokens, u.errors)
        })
        .collect();
    let url = state.public_url.trim_end_matches('/').to_owned();
    Ok(tv::ClassPage {
        id: c.id.clone(),
        title: c.title.clone(),
        role: access.role,
        can_edit: access.may(Need::Edit),
        can_members: access.may(Need::Members),
        can_audit: access.may(Need::Audit),
        can_delete: access.may(Need::Delete),
        fields: form
            .map(|(f, _)| f.clone())
            .unwrap_or_else(|| ClassFields::of(c)),
        problems: form.map(|(_, p)| p.to_vec()).unwrap_or_default(),
        models: offered_models(state).await,
        defaults: tv::Defaults {
            model: resolved.model.clone().unwrap_or_default(),
            time_zone: resolved.time_zone.iana_name().unwrap_or("UTC").to_owned(),
            messages_per_minute: resolved.messages_per_minute,
            class_messages_per_minute: resolved.class_messages_per_minute,
            daily_quota: resolved.daily_message_quota,
            token_ttl_secs: resolved.token_ttl.as_secs(),
            keep: state.settings.retention,
        },
        activities: activities
            .into_iter()
            .map(|a| tv::ActivityRow {
                embed: crate::pages::embed_snippet(&url),
                iframe: crate::pages::iframe_snippet(&url, &format!("{} · {}", c.title, a.title)),
                id: a.id,
                title: a.title,
                greeting: a.greeting.unwrap_or_default(),
                system_prompt: a.system_prompt.unwrap_or_default(),
                starters: a.starters.map(|s| s.join("\n")).unwrap_or_default(),
                model: a.model.unwrap_or_default(),
                paused: a.paused,
            })
            .collect(),
        members: members
            .into_iter()
            .map(|m| tv::MemberRow {
                role: Role::parse(&m.role),
                teacher_id: m.teacher_id,
                email: m.email,
                name: m.name,
            })
            .collect(),
        usage_week: (usage.messages, usage.tokens, usage.errors),
        usage_by_activity,
        done: done.to_owned(),
    })
}

/// `GET /admin/classes/{id}/settings`: the class page. A class of the classes file shows
/// its settings read-only (to the administrator, who alone sees it).
async fn class_page(
    State(state): State<AppState>,
    t: Signed,
    l: PageLang,
    Path(id): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Response {
    let r = async {
        let ctx = teach_ctx(&state, &t, l.lang);
        match access(&state, &t, &id).await {
            Ok(a) => {
                let p = class_view(&state, &a, None, &q.done).await?;
                Ok(page_with_lang(l, StatusCode::OK, tv::class_page(&ctx, &p)))
            }
            Err(TeachError::FromFile) => {
                let current = state.classes.current();
                let c = current.get(&id).ok_or(TeachError::NotFound)?;
                let p = tv::FileClass {
                    id: c.id.clone(),
                    title: c.title.clone(),
                    greeting: c.greeting.clone().unwrap_or_default(),
                    system_prompt: c.system_prompt.clone().unwrap_or_default(),
                    starters: c.starters.clone(),
                    model: c.model.clone().unwrap_or_default(),
                    time_zone: c.time_zone.iana_name().unwrap_or("UTC").to_owned(),
                    messages_per_minute: c.messages_per_minute,
                    class_messages_per_minute: c.class_messages_per_minute,
                    daily_quota: c.daily_message_quota,
                    token_ttl_secs: c.token_ttl.as_secs(),
                };
                Ok(page_with_lang(
                    l,
                    StatusCode::OK,
                    tv::file_class_page(&ctx, &p),
                ))
            }
            Err(e) => Err(e),
        }
    }
    .await;
    answer(l.lang, r)
}

/// `POST /admin/classes/{id}/settings`: saves the settings, live for the next sign-in and
/// message on every replica.
async fn save(
    State(state): State<AppState>,
    t: Signed,
    l: PageLang,
    client: ClientAddr,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<ClassFields>,
) -> Response {
    let r = async {
        check_csrf(&state, &t, &form.csrf)?;
        let a = access(&state, &t, &id).await?;
        a.require(Need::Edit)?;
        let c = match form.apply(a.class.clone()) {
            Ok(c) => c,
            Err(problems) => {
                let ctx = teach_ctx(&state, &t, l.lang);
                let p = class_view(&state, &a, Some((&form, &problems)), "").await?;
                return Ok(html(StatusCode::BAD_REQUEST, tv::class_page(&ctx, &p)));
            }
        };
        if c.visibility != a.class.visibility || retention_of(&c) != retention_of(&a.class) {
            a.require(Need::Visibility)?;
        }
        let detail = format!("changed {}", changed(&a.class, &c));
        let addr = address(&client);
        if !state
            .store
            .update_class(&c, detail, audit_of(&t, &addr))
            .await?
        {
            return Err(TeachError::NotFound);
        }
        classes_changed(&state).await;
        Ok(Redirect::to(&format!("/admin/classes/{id}/settings?done=saved")).into_response())
    }
    .await;
    answer(l.lang, r)
}

/// `POST /admin/classes/{id}/delete`: owners and the administrator only.
async fn delete(
    State(state): State<AppState>,
    t: Signed,
    l: PageLang,
    client: ClientAddr,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Response {
    let r = async {
        check_csrf(&state, &t, &form.csrf)?;
        let a = access(&state, &t, &id).await?;
        a.require(Need::Delete)?;
        let addr = address(&client);
        if !state.store.delete_class(&id, audit_of(&t, &addr)).await? {
            return Err(TeachError::NotFound);
        }
        classes_changed(&state).await;
        Ok(Redirect::to("/admin/classes").into_response())
    }
    .await;
    answer(l.lang, r)
}

/// `POST /admin/classes/{id}/activities`: a new activity with its own code, shown once on
/// the page this redirects to.
async fn add_activity(
    State(state): State<AppState>,
    t: Signed,
    l: PageLang,
    client: ClientAddr,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<ActivityFields>,
) -> Response {
    let r = async {
        check_csrf(&state, &t, &form.csrf)?;
        let a = access(&state, &t, &id).await?;
        a.require(Need::Edit)?;
        let now = now_ms();
        let (code, code_digest) = fresh_code(&state);
        let base = ActivityRecord {
            id: new_id('a'),
            class_id: id.clone(),
            title: String::new(),
            greeting: None,
            system_prompt: None,
            starters: None,
            model: None,
            code_digest,
            code_generation: 0,
            paused: false,
            created_ms: now,
            updated_ms: now,
        };
        let r = match form.apply(base) {
            Ok(r) => r,
            Err(problems) => {
                let ctx = teach_ctx(&state, &t, l.lang);
                let p = class_view(&state, &a, None, "").await?;
                return Ok(html(
                    StatusCode::BAD_REQUEST,
                    tv::class_page_with_activity_problems(&ctx, &p, &form, &problems),
                ));
            }
        };
        let addr = address(&client);
        state.store.create_activity(&r, audit_of(&t, &addr)).await?;
        classes_changed(&state).await;
        let ticket = one_time::put(&state, &t.binding, ACTIVITY_CODE, &r.id, &code).await?;
        Ok(
            Redirect::to(&format!("/admin/activities/{}/code?ticket={ticket}", r.id))
                .into_response(),
        )
    }
    .await;
    answer(l.lang, r)
}

/// `POST /admin/activities/{id}`: saves an activity's title, prompt, greeting, starters
/// and model.
async fn save_activity(
    State(state): State<AppState>,
    t: Signed,
    l: PageLang,
    client: ClientAddr,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<ActivityFields>,
) -> Response {
    let r = async {
        check_csrf(&state, &t, &form.csrf)?;
        let (old, a) = activity_access(&state, &t, &id).await?;
        a.require(Need::Edit)?;
        let new = match form.apply(old.clone()) {
            Ok(r) => r,
            Err(problems) => {
                let ctx = teach_ctx(&state, &t, l.lang);
                let p = class_view(&state, &a, None, "").await?;
                return Ok(html(
                    StatusCode::BAD_REQUEST,
                    tv::class_page_with_activity_problems(&ctx, &p, &form, &problems),
                ));
            }
        };
        let what: Vec<&str> = [
            ("title", old.title != new.title),
            ("greeting", old.greeting != new.greeting),
            ("system_prompt", old.system_prompt != new.system_prompt),
            ("starters", old.starters != new.starters),
            ("model", old.model != new.model),
        ]
        .iter()
        .filter(|(_, c)| *c)
        .map(|(n, _)| *n)
        .collect();
        let what = if what.is_empty() {
            "nothing".to_owned()
        } else {
            what.join(", ")
        };
        let addr = address(&client);
        if !state
            .store
            .update_activity(
                &new,
                format!("activity {id}: changed {what}"),
                audit_of(&t, &addr),
            )
            .await?
        {
            return Err(TeachError::NotFound);
        }
        classes_changed(&state).await;
        Ok(Redirect::to(&format!(
            "/admin/classes/{}/settings?done=activity",
            new.class_id
        ))
        .into_response())
    }
    .await;
    answer(l.lang, r)
}

async fn set_paused(
    state: &AppState,
    t: &Signed,
    client: &ClientAddr,
    id: &str,
    csrf: &str,
    paused: bool,
) -> TeachResult {
    check_csrf(state, t, csrf)?;
    let (mut r, a) = activity_access(state, t, id).await?;
    a.require(Need::Edit)?;
    r.paused = paused;
    let what = if paused { "paused" } else { "resumed" };
    let addr = address(client);
    if !state
        .store
        .update_activity(&r, format!("activity {id}: {what}"), audit_of(t, &addr))
        .await?
    {
        return Err(TeachError::NotFound);
    }
    classes_changed(state).await;
    Ok(Redirect::to(&format!(
        "/admin/classes/{}/settings?done={what}",
        r.class_id
    ))
    .into_response())
}

/// `POST /admin/activities/{id}/pause`: its sign-ins and chats are refused; the class's
/// other activities carry on.
async fn pause(
    State(state): State<AppState>,
    t: Signed,
    l: PageLang,
    client: ClientAddr,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Response {
    answer(
        l.lang,
        set_paused(&state, &t, &client, &id, &form.csrf, true).await,
    )
}

async fn resume(
    State(state): State<AppState>,
    t: Signed,
    l: PageLang,
    client: ClientAddr,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Response {
    answer(
        l.lang,
        set_paused(&state, &t, &client, &id, &form.csrf, false).await,
    )
}

/// `POST /admin/activities/{id}/rotate`: a new code; the old one and every session signed
/// in with it stop at once. The code is shown once, on the page this redirects to, which
/// any replica can serve.
async fn rotate(
    State(state): State<AppState>,
    t: Signed,
    l: PageLang,
    client: ClientAddr,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Response {
    let r = async {
        check_csrf(&state, &t, &form.csrf)?;
        let (act, a) = activity_access(&state, &t, &id).await?;
        a.require(Need::Edit)?;
        let (code, digest) = fresh_code(&state);
        let addr = address(&client);
        if !state
            .store
            .rotate_activity_code(&act.id, &act.class_id, &digest, audit_of(&t, &addr))
            .await?
        {
            return Err(TeachError::NotFound);
        }
        classes_changed(&state).await;
        let ticket = one_time::put(&state, &t.binding, ACTIVITY_CODE, &id, &code).await?;
        Ok(Redirect::to(&format!("/admin/activities/{id}/code?ticket={ticket}")).into_response())
    }
    .await;
    answer(l.lang, r)
}

/// `GET /admin/activities/{id}/code?ticket=…`: the activity's new code, once.
async fn code_page(
    State(state): State<AppState>,
    t: Signed,
    l: PageLang,
    Path(id): Path<String>,
    Query(q): Query<TicketQuery>,
) -> Response {
    let r = async {
        let (act, a) = activity_access(&state, &t, &id).await?;
        a.require(Need::Edit)?;
        let code = one_time::take(&state, &q.ticket, &t.binding, ACTIVITY_CODE, &id)
            .await?
            .ok_or(TeachError::Gone)?;
        let ctx = teach_ctx(&state, &t, l.lang);
        Ok(page_with_lang(
            l,
            StatusCode::OK,
            tv::code_page(&ctx, &a.class.id, &a.class.title, &act.title, &code),
        ))
    }
    .await;
    answer(l.lang, r)
}

/// `POST /admin/classes/{id}/members`: adds a teacher (by email) with a role.
async fn add_member(
    State(state): State<AppState>,
    t: Signed,
    l: PageLang,
    client: ClientAddr,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<MemberFields>,
) -> Response {
    let r = async {
        check_csrf(&state, &t, &form.csrf)?;
        let a = access(&state, &t, &id).await?;
        a.require(Need::Members)?;
        let role = Role::parse(&form.role).ok_or(TeachError::NoSuchTeacher)?;
        let email = normalize_email(&form.email).map_err(|_| TeachError::NoSuchTeacher)?;
        let teacher = state
            .store
            .teacher_login(&email)
            .await?
            .ok_or(TeachError::NoSuchTeacher)?;
        check_member_change(t.teacher_id(), &teacher.id, Some(role)).map_err(TeachError::Member)?;
        let addr = address(&client);
        state
            .store
            .put_member(&id, &teacher.id, role, audit_of(&t, &addr))
            .await?;
        Ok(Redirect::to(&format!("/admin/classes/{id}/settings?done=member")).into_response())
    }
    .await;
    answer(l.lang, r)
}

/// `POST /admin/classes/{id}/members/{teacher_id}/role`: changes a member's role.
async fn set_role(
    State(state): State<AppState>,
    t: Signed,
    l: PageLang,
    client: ClientAddr,
    Path((id, teacher_id)): Path<(String, String)>,
    axum::Form(form): axum::Form<RoleFields>,
) -> Response {
    let r = async {
        check_csrf(&state, &t, &form.csrf)?;
        let a = access(&state, &t, &id).await?;
        a.require(Need::Members)?;
        let role = Role::parse(&form.role).ok_or(TeachError::NotFound)?;
        if state.store.member_role(&id, &teacher_id).await?.is_none() {
            return Err(TeachError::NotFound);
        }
        check_member_change(t.teacher_id(), &teacher_id, Some(role)).map_err(TeachError::Member)?;
        let addr = address(&client);
        state
            .store
            .put_member(&id, &teacher_id, role, audit_of(&t, &addr))
            .await?;
        Ok(Redirect::to(&format!("/admin/classes/{id}/settings?done=member")).into_response())
    }
    .await;
    answer(l.lang, r)
}

/// `POST /admin/classes/{id}/members/{teacher_id}/remove`.
async fn remove_member(
    State(state): State<AppState>,
    t: Signed,
    l: PageLang,
    client: ClientAddr,
    Path((id, teacher_id)): Path<(String, String)>,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Response {
    let r = async {
        check_csrf(&state, &t, &form.csrf)?;
        let a = access(&state, &t, &id).await?;
        a.require(Need::Members)?;
        check_member_change(t.teacher_id(), &teacher_id, None).map_err(TeachError::Member)?;
        let addr = address(&client);
        if !state
            .store
            .delete_member(&id, &teacher_id, audit_of(&t, &addr))
            .await?
        {
            return Err(TeachError::NotFound);
        }
        Ok(Redirect::to(&format!("/admin/classes/{id}/settings?done=member")).into_response())
    }
    .await;
    answer(l.lang, r)
}

/// `GET /admin/classes/{id}/audit`: the class's audit log (owners and the administrator).
async fn audit(
    State(state): State<AppState>,
    t: Signed,
    l: PageLang,
    Path(id): Path<String>,
) -> Response {
    let r = async {
        let a = access(&state, &t, &id).await?;
        a.require(Need::Audit)?;
        let lines = state.store.audit_lines(Some(&id), 500).await?;
        let ctx = teach_ctx(&state, &t, l.lang);
        Ok(page_with_lang(
            l,
            StatusCode::OK,
            tv::audit_page(&ctx, &a.class.id, &a.class.title, &lines),
        ))
    }
    .await;
    answer(l.lang, r)
}
