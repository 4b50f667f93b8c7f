//! What the dashboard pages show: plain data, filled by `store` queries and rendered by
//! `views`. Times are Unix milliseconds; the views format them in the configured zone.

/// Who is signed in to the dashboard, the CSRF token their forms must carry, and the
/// page's language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageCtx {
    /// English or Traditional Chinese, as the teachers' pages pick it (`?lang=`, the
    /// remembered choice, `Accept-Language`).
    pub(crate) lang: super::i18n::Lang,
    /// An email (Cloudflare Access) or "admin" (password).
    pub actor: String,
    pub csrf: String,
    /// A one-line notice after an action ("Class disabled.").
    pub flash: Option<String>,
    /// IANA zone name, for formatting times.
    pub timezone: String,
}

/// Where a class's current settings come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverrideInfo {
    pub by: String,
    pub at_ms: i64,
    /// What the dashboard changed: e.g. ["codes", "enabled"].
    pub fields: Vec<String>,
}

/// One class on the overview.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassSummary {
    pub id: String,
    pub title: String,
    pub enabled: bool,
    /// 0: no daily quota.
    pub daily_quota: u32,
    /// Set when the dashboard overrides the configuration (the dashboard wins).
    pub overridden: Option<OverrideInfo>,
    pub messages_today: u64,
    pub tokens_today: u64,
    /// Messages (today, this week) whose token counts are estimates.
    pub estimated_today: u64,
    pub messages_week: u64,
    pub tokens_week: u64,
    pub estimated_week: u64,
    /// Sessions that signed in or chatted in the last hour.
    pub active_sessions: u64,
    /// Share of this week's requests that ended in an upstream error, 0.0..=1.0.
    pub error_rate_week: f64,
    /// Messages per hour for the last 7 days (168 values, oldest first); the first value is
    /// the hour starting at `Overview::first_hour_ms`.
    pub hourly: Vec<u32>,
}

/// Hours in the usage chart: the last 7 days, up to and including the current hour.
pub const CHART_HOURS: usize = 7 * 24;

#[derive(Debug, Clone, PartialEq)]
pub struct Overview {
    pub classes: Vec<ClassSummary>,
    pub first_hour_ms: i64,
    pub now_ms: i64,
}

/// One student (session) of a class, all time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StudentRow {
    pub session_id: String,
    /// `None`: anonymous (the view shows a short session id).
    pub display_name: Option<String>,
    pub messages: u64,
    pub tokens: u64,
    /// Messages whose token counts are estimates.
    pub estimated: u64,
    pub last_at_ms: i64,
    pub revoked: bool,
}

/// A recent failed chat request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorRow {
    pub at_ms: i64,
    pub session_id: String,
    pub display_name: Option<String>,
    pub error_code: String,
}

/// One recorded dashboard action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    pub class_id: Option<String>,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClassPage {
    pub summary: ClassSummary,
    /// The chart's first hour and the page's "now", from the same window as the summary.
    pub first_hour_ms: i64,
    pub now_ms: i64,
    /// Sorted by messages, most first.
    pub students: Vec<StudentRow>,
    pub errors: Vec<ErrorRow>,
    pub audit: Vec<AuditRow>,
    /// A freshly rotated code, shown once right after the rotation.
    pub new_code: Option<String>,
}
