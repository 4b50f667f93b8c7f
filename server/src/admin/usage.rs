//! The administrator's usage pages: every class with today's and this week's numbers, a
//! class's students, errors and audit lines, the actions on a class's code, switch and
//! quota, revoking a session, and the CSV export.

use super::classes::page_with_lang;
use super::i18n::{Lang, PageLang};
use super::*;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/admin", get(overview))
        .route("/admin/classes/{id}", get(class_view))
        .route("/admin/classes/{id}/rotate", post(rotate))
        .route("/admin/classes/{id}/disable", post(disable))
        .route("/admin/classes/{id}/enable", post(enable))
        .route("/admin/classes/{id}/quota", post(set_quota))
        .route("/admin/classes/{id}/reset", post(reset))
        .route("/admin/classes/{id}/{action}", post(no_such_action))
        .route("/admin/sessions/{session_id}/revoke", post(revoke_session))
        .route("/admin/export.csv", get(export))
}

fn ctx(state: &AppState, t: &Operator, lang: Lang, flash: Option<String>) -> PageCtx {
    PageCtx {
        lang,
        actor: t.actor.clone(),
        csrf: state.admin.keys.csrf(&t.binding),
        flash,
        timezone: state.settings.timezone_name.clone(),
    }
}

/// The daily quota form.
#[derive(Debug, serde::Deserialize)]
struct QuotaForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    quota: String,
}

/// What a page's query may carry after an action: which one (`done`) or the ticket of a
/// secret to show once (`code`).
#[derive(Debug, Default, serde::Deserialize)]
struct PageQuery {
    done: Option<String>,
    code: Option<String>,
}

/// The CSV export's range and class.
#[derive(Debug, Default, serde::Deserialize)]
struct ExportQuery {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    class: String,
}

fn check_csrf(state: &AppState, t: &Operator, token: &str) -> AdminResult<()> {
    if csrf_ok(state, &t.binding, token) {
        Ok(())
    } else {
        Err(AdminError::FormExpired)
    }
}

/// Refuses a form with a bad CSRF token, then one for a class that does not exist.
fn check_class_form(state: &AppState, t: &Operator, id: &str, token: &str) -> AdminResult<()> {
    check_csrf(state, t, token)?;
    match state.classes.current().get(id) {
        Some(_) => Ok(()),
        None => Err(AdminError::NoClass),
    }
}

/// The instants the dashboard counts from, in the configured zone.
struct Window {
    now_ms: i64,
    today_ms: i64,
    week_ms: i64,
    first_hour_ms: i64,
}

fn window(state: &AppState) -> Window {
    let now = jiff::Zoned::now().with_time_zone(state.settings.timezone.clone());
    let now_ms = now.timestamp().as_millisecond();
    let today = now
        .start_of_day()
        .map(|d| d.timestamp().as_millisecond())
        .unwrap_or(now_ms);
    let week = now
        .start_of_day()
        .ok()
        .and_then(|d| d.checked_sub(jiff::Span::new().days(6)).ok())
        .map(|d| d.timestamp().as_millisecond())
        .unwrap_or(today);
    let hour = now_ms - now_ms.rem_euclid(HOUR_MS);
    Window {
        now_ms,
        today_ms: today,
        week_ms: week,
        first_hour_ms: hour - (CHART_HOURS as i64 - 1) * HOUR_MS,
    }
}

async fn summary(state: &AppState, class: &Class, w: &Window) -> AdminResult<ClassSummary> {
    let st: ClassStats = state
        .store
        .class_stats(
            &class.id,
            w.today_ms,
            w.week_ms,
            w.first_hour_ms,
            CHART_HOURS,
            w.now_ms - HOUR_MS,
        )
        .await?;
    let overridden = state.classes.override_of(&class.id).map(|o| {
        let mut fields = Vec::new();
        if o.codes.is_some() {
            fields.push("codes".to_owned());
        }
        if o.enabled.is_some() {
            fields.push("enabled".to_owned());
        }
        if o.daily_quota.is_some() {
            fields.push("daily quota".to_owned());
        }
        OverrideInfo {
            by: o.updated_by,
            at_ms: o.updated_ms,
            fields,
        }
    });
    Ok(ClassSummary {
        id: class.id.clone(),
        title: class.title.clone(),
        enabled: class.enabled,
        daily_quota: class.daily_message_quota,
        overridden,
        messages_today: st.messages_today,
        tokens_today: st.tokens_today,
        estimated_today: st.estimated_today,
        messages_week: st.messages_week,
        tokens_week: st.tokens_week,
        estimated_week: st.estimated_week,
        active_sessions: st.active_sessions,
        error_rate_week: if st.messages_week == 0 {
            0.0
        } else {
            st.errors_week as f64 / st.messages_week as f64
        },
        hourly: st.hourly,
    })
}

async fn overview(
    State(state): State<AppState>,
    t: Operator,
    l: PageLang,
    Query(q): Query<PageQuery>,
) -> AdminResult {
    let w = window(&state);
    let mut classes = Vec::new();
    for class in state.classes.current().iter() {
        classes.push(summary(&state, class, &w).await?);
    }
    let o = Overview {
        classes,
        first_hour_ms: w.first_hour_ms,
        now_ms: w.now_ms,
    };
    let page = views::overview_page(&ctx(&state, &t, l.lang, flash(l.lang, &q)), &o);
    let page = health::with_panel(page, &state.health, &state.settings.timezone_name, l.lang);
    let page = if matches!(state.admin.mode, Mode::Password(_)) {
        let failed = state
            .store
            .admin_failed_since_last_visit(ADMIN_ACCOUNT)
            .await?;
        failed_sign_ins::with_failed_sign_ins(page, &failed, &state.settings.timezone_name, l.lang)
    } else {
        page
    };
    Ok(page_with_lang(l, StatusCode::OK, page))
}

fn flash(lang: Lang, q: &PageQuery) -> Option<String> {
    let text = match q.done.as_deref()? {
        "disabled" => lang.t(
            "Class disabled: its students are signed out and cannot sign in.",
            "班級已停用：學生都已登出，且無法登入。",
        ),
        "enabled" => lang.t("Class enabled.", "班級已啟用。"),
        "quota" => lang.t("Daily quota saved.", "每日配額已儲存。"),
        "reset" => lang.t("Back to the configured settings.", "已改回設定檔中的設定。"),
        "revoked" => lang.t(
            "Session revoked: that student must enter the access code again.",
            "工作階段已撤銷：這位學生必須重新輸入存取代碼。",
        ),
        _ => return None,
    };
    Some(text.to_owned())
}

async fn class_page(
    state: &AppState,
    t: &Operator,
    l: PageLang,
    id: &str,
    flash: Option<String>,
    new_code: Option<String>,
) -> AdminResult {
    let classes = state.classes.current();
    let class = classes.get(id).ok_or(AdminError::NoClass)?;
    let w = window(state);
    let summary = summary(state, class, &w).await?;
    let store = &state.store;
    let students = store.class_students(id, 500).await?;
    let errors = store.class_errors(id, 20).await?;
    let audit = store.recent_audit(Some(id), 20).await?;
    let p = ClassPage {
        summary,
        first_hour_ms: w.first_hour_ms,
        now_ms: w.now_ms,
        students: students
            .into_iter()
            .map(
                |crate::store::dashboard::StudentRecord {
                     session_id,
                     display_name,
                     messages,
                     tokens,
                     estimated,
                     last_at_ms,
                     revoked,
                 }| StudentRow {
                    revoked: revoked != 0 || state.revoked.contains(&session_id),
                    session_id,
                    display_name,
                    messages,
                    tokens,
                    estimated,
                    last_at_ms,
                },
            )
            .collect(),
        errors: errors
            .into_iter()
            .map(
                |crate::store::dashboard::ErrorRecord {
                     at_ms,
                     session_id,
                     display_name,
                     error_code,
                 }| ErrorRow {
                    at_ms,
                    session_id,
                    display_name,
                    error_code,
                },
            )
            .collect(),
        audit: audit
            .into_iter()
            .map(
                |crate::store::dashboard::AuditRecord {
                     at_ms,
                     actor,
                     action,
                     class_id,
                     detail,
                 }| AuditRow {
                    at_ms,
                    actor,
                    action,
                    class_id,
                    detail,
                },
            )
            .collect(),
        new_code,
    };
    Ok(page_with_lang(
        l,
        StatusCode::OK,
        views::class_page(&ctx(state, t, l.lang, flash), &p),
    ))
}

async fn class_view(
    State(state): State<AppState>,
    t: Operator,
    l: PageLang,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> AdminResult {
    let new_code = match q.code.as_deref() {
        Some(ticket) => {
            one_time::take(&state, ticket, &t.binding, one_time::CLASS_CODE, &id).await?
        }
        None => None,
    };
    let flash = match new_code {
        Some(_) => Some(
            l.lang
                .t(
                    "New access code made: every student must enter it.",
                    "已產生新的存取代碼：每位學生都必須輸入。",
                )
                .to_owned(),
        ),
        None => flash(l.lang, &q),
    };
    class_page(&state, &t, l, &id, flash, new_code).await
}

/// Reloads one class's overrides from the store into the registry after a change.
async fn refresh_class(state: &AppState, id: &str) -> AdminResult<()> {
    let record = state
        .store
        .load_overrides()
        .await?
        .into_iter()
        .find(|o| o.class_id == id);
    let generation = state
        .store
        .class_generations()
        .await?
        .get(id)
        .copied()
        .unwrap_or(0);
    state.store.notify(crate::sync::CLASSES_EVENT).await;
    state.classes.set_override(id, record, generation).map_err(|e| {
        tracing::error!(target: "classchat::admin", class = id, error = %e, "dashboard change conflicts");
        AdminError::Conflict
    })
}

/// The dashboard form posted to one class's action: its id and fields.
type ClassForm = (Path<String>, axum::Form<CsrfForm>);

/// Records one change to a class, applies it, and sends the teacher back to the class.
async fn change(
    state: &AppState,
    t: &Operator,
    id: &str,
    change: OverrideChange,
    detail: &str,
    (action, done): (&str, &str),
) -> AdminResult {
    state
        .store
        .change_class(id, &change, &t.actor, now_ms(), detail)
        .await?;
    refresh_class(state, id).await?;
    tracing::info!(target: "classchat::admin", actor = %t.actor, class = %id, action = %action, "{detail}");
    Ok(Redirect::to(&format!("/admin/classes/{id}?done={done}")).into_response())
}

/// A new code for the class: every token of the old one ends.
async fn rotate(
    State(state): State<AppState>,
    t: Operator,
    (Path(id), axum::Form(form)): ClassForm,
) -> AdminResult {
    check_class_form(&state, &t, &id, &form.csrf)?;
    let code = generate_code();
    // The generation moves first: if the change then fails, old tokens merely end.
    state.store.bump_generation(&id).await?;
    let stored = state.classes.code_keys().store(&code);
    state
        .store
        .change_class(
            &id,
            &OverrideChange::Codes(vec![stored]),
            &t.actor,
            now_ms(),
            "new access code; old tokens revoked",
        )
        .await?;
    refresh_class(&state, &id).await?;
    tracing::info!(target: "classchat::admin", actor = %t.actor, class = %id, action = "rotate_code", "access code rotated");
    // Shown once, on the page this redirects to: the URL carries a one-time id, never the
    // code, and a reload cannot rotate again (post/redirect/get).
    let ticket = one_time::put(&state, &t.binding, one_time::CLASS_CODE, &id, &code).await?;
    Ok(Redirect::to(&format!("/admin/classes/{id}?code={ticket}")).into_response())
}

async fn disable(
    State(state): State<AppState>,
    t: Operator,
    (Path(id), axum::Form(form)): ClassForm,
) -> AdminResult {
    check_class_form(&state, &t, &id, &form.csrf)?;
    let c = OverrideChange::Enabled(false);
    change(
        &state,
        &t,
        &id,
        c,
        "class disabled",
        ("disable", "disabled"),
    )
    .await
}

async fn enable(
    State(state): State<AppState>,
    t: Operator,
    (Path(id), axum::Form(form)): ClassForm,
) -> AdminResult {
    check_class_form(&state, &t, &id, &form.csrf)?;
    let c = OverrideChange::Enabled(true);
    change(&state, &t, &id, c, "class enabled", ("enable", "enabled")).await
}

async fn set_quota(
    State(state): State<AppState>,
    t: Operator,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<QuotaForm>,
) -> AdminResult {
    check_class_form(&state, &t, &id, &form.csrf)?;
    let q = form
        .quota
        .trim()
        .parse::<u32>()
        .map_err(|_| AdminError::BadQuota)?;
    let detail = format!("daily quota set to {q}");
    change(
        &state,
        &t,
        &id,
        OverrideChange::DailyQuota(q),
        &detail,
        ("quota", "quota"),
    )
    .await
}

/// Drops the dashboard's changes to the class: the configuration applies again.
async fn reset(
    State(state): State<AppState>,
    t: Operator,
    (Path(id), axum::Form(form)): ClassForm,
) -> AdminResult {
    check_class_form(&state, &t, &id, &form.csrf)?;
    // Back to the configured codes is a code change too: tokens of the rotated code end,
    // and those from before the rotation must not come back.
    let had_codes = state
        .classes
        .override_of(&id)
        .is_some_and(|o| o.codes.is_some());
    if had_codes {
        state.store.bump_generation(&id).await?;
    }
    state.store.reset_class(&id, &t.actor, now_ms()).await?;
    refresh_class(&state, &id).await?;
    tracing::info!(target: "classchat::admin", actor = %t.actor, class = %id, action = "reset_class", "class back to configuration");
    Ok(Redirect::to(&format!("/admin/classes/{id}?done=reset")).into_response())
}

/// Any other action posted to a class: the same checks, then "no such action".
async fn no_such_action(
    State(state): State<AppState>,
    t: Operator,
    Path((id, _action)): Path<(String, String)>,
    axum::Form(form): axum::Form<CsrfForm>,
) -> AdminResult {
    check_class_form(&state, &t, &id, &form.csrf)?;
    Err(AdminError::NoAction)
}

async fn revoke_session(
    State(state): State<AppState>,
    t: Operator,
    Path(session_id): Path<String>,
    axum::Form(form): axum::Form<CsrfForm>,
) -> AdminResult {
    check_csrf(&state, &t, &form.csrf)?;
    let info = state
        .store
        .session_info(&session_id)
        .await?
        .ok_or(AdminError::NoSession)?;
    let class_id = info.class_id;
    let ends = info.started_at_ms / 1000 + state.settings.session_max_age.as_secs() as i64;
    state
        .store
        .admin_revoke(&session_id, &class_id, ends, &t.actor, now_ms())
        .await?;
    state.revoked.insert_until(session_id.clone(), ends);
    state
        .store
        .notify(&crate::sync::revoked_event(&session_id, ends))
        .await;
    tracing::info!(target: "classchat::admin", actor = %t.actor, class = %class_id, session = %session_id, action = "revoke_session", "session revoked");
    Ok(Redirect::to(&format!("/admin/classes/{class_id}?done=revoked")).into_response())
}

/// A CSV cell: defused when a spreadsheet would run it as a formula (display names are
/// student input), and quoted whenever it holds a character some locale's spreadsheet takes
/// as a delimiter (`,` `;` tab) or a quote or line break, so it stays one cell everywhere.
pub(crate) fn csv_cell(s: &str) -> String {
    // Spreadsheets skip leading spaces before looking for `=`; tab and CR start formulas
    // in some (OWASP's CSV injection list).
    let s = if s.starts_with(['\t', '\r']) || s.trim_start().starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', ';', '\t', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

fn local_midnight_ms(state: &AppState, date: &str) -> Option<(jiff::civil::Date, i64)> {
    let d: jiff::civil::Date = date.trim().parse().ok()?;
    let ms = d
        .to_zoned(state.settings.timezone.clone())
        .ok()?
        .timestamp()
        .as_millisecond();
    Some((d, ms))
}

async fn export(
    State(state): State<AppState>,
    t: Operator,
    l: PageLang,
    Query(q): Query<ExportQuery>,
) -> Response {
    let lang = l.lang;
    let bad = |text: &str| {
        let title = lang.t("Cannot export", "無法匯出");
        page_with_lang(
            l,
            StatusCode::BAD_REQUEST,
            views::message_page_in(lang, title, text),
        )
    };
    let (Some((from_d, from_ms)), Some((to_d, _))) = (
        local_midnight_ms(&state, &q.from),
        local_midnight_ms(&state, &q.to),
    ) else {
        return bad(lang.t(
            "Give both dates as YYYY-MM-DD.",
            "請以 YYYY-MM-DD 格式填寫兩個日期。",
        ));
    };
    if to_d < from_d || from_d.until(to_d).map(|s| s.get_days()).unwrap_or(0) > 400 {
        return bad(lang.t(
            "The range must run forwards and span at most 400 days.",
            "結束日期不可早於開始日期，且範圍最多 400 天。",
        ));
    }
    let Some(to_ms) = to_d
        .tomorrow()
        .ok()
        .and_then(|d| d.to_zoned(state.settings.timezone.clone()).ok())
        .map(|z| z.timestamp().as_millisecond())
    else {
        return bad(lang.t("That end date is out of range.", "結束日期超出範圍。"));
    };
    let class = Some(q.class).filter(|c| !c.is_empty());
    if let Some(c) = &class
        && state.classes.current().get(c).is_none()
    {
        return bad(lang.t("There is no class with that id.", "找不到這個編號的班級。"));
    }
    let _ = state
        .store
        .record_audit(
            now_ms(),
            &t.actor,
            "export_csv",
            class.as_deref(),
            &format!("{from_d} to {to_d}"),
        )
        .await;
    let tz = state.settings.timezone.clone();
    let store = state.store.clone();
    let header_row = "time,class_id,activity_id,session_id,display_name,conversation_id,model,prompt_tokens,completion_tokens,tokens_estimated,first_token_ms,total_ms,outcome,error_code\n";
    let pages = futures::stream::unfold(Some(0i64), move |after| {
        let (store, class, tz) = (store.clone(), class.clone(), tz.clone());
        async move {
            let after = after?;
            match store
                .export_page(from_ms, to_ms, class.as_deref(), after, 2000)
                .await
            {
                Ok(rows) if rows.is_empty() => None,
                Ok(rows) => {
                    let last = rows.last().map(|r| r.id);
                    let mut out = String::new();
                    for r in rows {
                        let time = jiff::Timestamp::from_millisecond(r.at_ms)
                            .map(|t| {
                                t.to_zoned(tz.clone())
                                    .strftime("%Y-%m-%dT%H:%M:%S%:z")
                                    .to_string()
                            })
                            .unwrap_or_default();
                        let opt = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
                        let cells = [
                            time,
                            csv_cell(&r.class_id),
                            csv_cell(r.activity_id.as_deref().unwrap_or("")),
                            csv_cell(&r.session_id),
                            csv_cell(r.display_name.as_deref().unwrap_or("")),
                            csv_cell(&r.conversation_id),
                            csv_cell(r.model.as_deref().unwrap_or("")),
                            opt(r.prompt_tokens),
                            opt(r.completion_tokens),
                            r.tokens_estimated.to_string(),
                            opt(r.first_token_ms),
                            r.total_ms.to_string(),
                            csv_cell(&r.outcome),
                            csv_cell(r.error_code.as_deref().unwrap_or("")),
                        ];
                        out.push_str(&cells.join(","));
                        out.push('\n');
                    }
                    Some((Ok::<_, std::io::Error>(bytes::Bytes::from(out)), last))
                }
                Err(e) => {
                    tracing::error!(target: "classchat::admin", error = %e, "export failed mid-way");
                    Some((Err(std::io::Error::other("export failed")), None))
                }
            }
        }
    });
    let body =
        futures::stream::once(async move { Ok(bytes::Bytes::from_static(header_row.as_bytes())) })
            .chain(pages);
    let filename = format!("attachment; filename=\"classchat-usage-{from_d}-to-{to_d}.csv\"");
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&filename).unwrap_or(HeaderValue::from_static("attachment")),
            ),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_defused() {
        assert_eq!(csv_cell("Mei"), "Mei");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("-1"), "'-1");
    }

    #[test]
    fn every_formula_start_is_defused_even_after_whitespace() {
        for (given, cell) in [
            ("=1+1", "'=1+1"),
            ("+1", "'+1"),
            ("-2", "'-2"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("  =1+1", "'  =1+1"),
            ("\u{a0}@x", "'\u{a0}@x"),
            ("\t=1", "\"'\t=1\""),
            ("\r=1", "\"'\r=1\""),
            ("\n=1", "\"'\n=1\""),
            ("\tplain", "\"'\tplain\""),
            ("a=b", "a=b"),
            ("Mei-Ling", "Mei-Ling"),
        ] {
            assert_eq!(csv_cell(given), cell, "{given:?}");
        }
    }

    #[test]
    fn cells_with_any_locales_delimiter_are_quoted() {
        for (given, cell) in [
            ("a;b", "\"a;b\""),
            ("a\tb", "\"a\tb\""),
            ("a,b", "\"a,b\""),
            ("a\nb", "\"a\nb\""),
            ("a\r\nb", "\"a\r\nb\""),
            ("\"", "\"\"\"\""),
            ("=x;y", "\"'=x;y\""),
            ("plain text", "plain text"),
        ] {
            assert_eq!(csv_cell(given), cell, "{given:?}");
        }
    }
}
