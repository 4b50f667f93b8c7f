//! The dashboard's queries and the records behind its actions. They read the rollup
//! tables, so their cost does not grow with the usage log.

use super::{Store, with_pool};
use crate::basics::HOUR_MS;

/// A class's numbers over a window (see [`Store::class_stats`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClassStats {
    pub messages_today: u64,
    pub tokens_today: u64,
    /// Of today's messages, those whose tokens are estimates (the upstream reported none).
    pub estimated_today: u64,
    pub messages_week: u64,
    pub tokens_week: u64,
    pub estimated_week: u64,
    pub errors_week: u64,
    pub active_sessions: u64,
    /// Messages per hour from `first_hour_ms`, `hours` values.
    pub hourly: Vec<u32>,
}

/// Dashboard changes to a class, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverrideRecord {
    pub class_id: String,
    pub codes: Option<Vec<String>>,
    pub enabled: Option<bool>,
    pub daily_quota: Option<u32>,
    pub updated_by: String,
    pub updated_ms: i64,
}

/// A change to one field of a class's overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OverrideChange {
    Codes(Vec<String>),
    Enabled(bool),
    DailyQuota(u32),
}

/// A usage-log row as read back: one CSV export line, or what a test checks.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UsageRecord {
    pub id: i64,
    pub at_ms: i64,
    pub class_id: String,
    pub session_id: String,
    pub display_name: Option<String>,
    pub conversation_id: String,
    pub model: Option<String>,
    pub prompt_tokens: Option<i64>,
    pub completion_tokens: Option<i64>,
    /// 0/1: the token counts are classchat's estimate.
    pub tokens_estimated: i64,
    pub first_token_ms: Option<i64>,
    pub total_ms: i64,
    pub outcome: String,
    pub error_code: Option<String>,
    /// The activity the row was made in; `None`: the class's own code.
    pub activity_id: Option<String>,
}

/// One student (session) in a class's table.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StudentRecord {
    pub session_id: String,
    pub display_name: Option<String>,
    #[sqlx(try_from = "i64")]
    pub messages: u64,
    #[sqlx(try_from = "i64")]
    pub tokens: u64,
    /// Messages whose tokens are estimates.
    #[sqlx(try_from = "i64")]
    pub estimated: u64,
    pub last_at_ms: i64,
    /// 0/1: whether the session is revoked.
    pub revoked: i64,
}

/// One upstream error in a class's table.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ErrorRecord {
    pub at_ms: i64,
    pub session_id: String,
    pub display_name: Option<String>,
    pub error_code: String,
}

/// One line of the dashboard's audit log.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditRecord {
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    pub class_id: Option<String>,
    pub detail: String,
}

/// The class a session belongs to and when it started.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionInfo {
    pub class_id: String,
    pub started_at_ms: i64,
}

/// One `usage_hourly` row.
#[derive(sqlx::FromRow)]
struct HourRow {
    hour_ms: i64,
    messages: i64,
    tokens: i64,
    errors: i64,
    estimated: i64,
}

/// A `class_overrides` row as stored (`enabled` 0/1, `codes` JSON).
#[derive(sqlx::FromRow)]
struct OverrideRow {
    class_id: String,
    codes: Option<String>,
    enabled: Option<i64>,
    daily_quota: Option<i64>,
    updated_by: String,
    updated_ms: i64,
}

fn u(v: i64) -> u64 {
    v.max(0) as u64
}

impl Store {
    /// Numbers for one class: today and this week (from the given local-midnight
    /// instants), active sessions since `active_since_ms`, and an hourly series.
    pub async fn class_stats(
        &self,
        class_id: &str,
        today_ms: i64,
        week_ms: i64,
        first_hour_ms: i64,
        hours: usize,
        active_since_ms: i64,
    ) -> sqlx::Result<ClassStats> {
        let from = week_ms.min(first_hour_ms);
        let (rows, active): (Vec<HourRow>, i64) = with_pool!(&self.db, pool => {
            let rows = sqlx::query_as(
                "SELECT hour_ms, messages, tokens, errors, estimated FROM usage_hourly
                 WHERE class_id = $1 AND hour_ms >= $2 ORDER BY hour_ms",
            )
            .bind(class_id)
            .bind(from - from.rem_euclid(HOUR_MS))
            .fetch_all(pool)
            .await?;
            let active = sqlx::query_scalar(
                "SELECT COUNT(*) FROM sessions s WHERE s.class_id = $1 AND s.last_seen_ms >= $2
                   AND NOT EXISTS (SELECT 1 FROM revoked_sessions r WHERE r.session_id = s.session_id)",
            )
            .bind(class_id)
            .bind(active_since_ms)
            .fetch_one(pool)
            .await?;
            (rows, active)
        });
        let mut st = ClassStats {
            hourly: vec![0; hours],
            active_sessions: u(active),
            ..ClassStats::default()
        };
        for r in rows {
            let hour = r.hour_ms;
            if hour >= today_ms - today_ms.rem_euclid(HOUR_MS) {
                st.messages_today += u(r.messages);
                st.tokens_today += u(r.tokens);
                st.estimated_today += u(r.estimated);
            }
            if hour >= week_ms - week_ms.rem_euclid(HOUR_MS) {
                st.messages_week += u(r.messages);
                st.tokens_week += u(r.tokens);
                st.estimated_week += u(r.estimated);
                st.errors_week += u(r.errors);
            }
            if hour >= first_hour_ms {
                let i = ((hour - first_hour_ms) / HOUR_MS) as usize;
                if let Some(slot) = st.hourly.get_mut(i) {
                    *slot = slot.saturating_add(r.messages.clamp(0, u32::MAX as i64) as u32);
                }
            }
        }
        Ok(st)
    }

    /// A class's students (sessions), most messages first.
    pub async fn class_students(
        &self,
        class_id: &str,
        limit: i64,
    ) -> sqlx::Result<Vec<StudentRecord>> {
        with_pool!(&self.db, pool => {
            sqlx::query_as(
                "SELECT u.session_id, u.display_name, u.messages, u.tokens, u.estimated, u.last_at_ms,
                        CAST(CASE WHEN EXISTS (SELECT 1 FROM revoked_sessions r WHERE r.session_id = u.session_id)
                                  THEN 1 ELSE 0 END AS BIGINT) AS revoked
                 FROM usage_by_session u WHERE u.class_id = $1
                 ORDER BY u.messages DESC, u.last_at_ms DESC LIMIT $2",
            )
            .bind(class_id)
            .bind(limit)
            .fetch_all(pool)
            .await
        })
    }

    /// A class's most recent upstream errors.
    pub async fn class_errors(&self, class_id: &str, limit: i64) -> sqlx::Result<Vec<ErrorRecord>> {
        with_pool!(&self.db, pool => {
            sqlx::query_as(
                "SELECT at_ms, session_id, display_name, COALESCE(error_code, 'upstream_error') AS error_code
                 FROM usage_log WHERE class_id = $1 AND outcome = 'upstream_error' ORDER BY at_ms DESC LIMIT $2",
            )
            .bind(class_id)
            .bind(limit)
            .fetch_all(pool)
            .await
        })
    }

    /// The class a session belongs to and when it started, if it ever signed in.
    pub async fn session_info(&self, session_id: &str) -> sqlx::Result<Option<SessionInfo>> {
        with_pool!(&self.db, pool => {
            sqlx::query_as("SELECT class_id, started_at_ms FROM sessions WHERE session_id = $1")
                .bind(session_id)
                .fetch_optional(pool)
                .await
        })
    }

    pub async fn load_overrides(&self) -> sqlx::Result<Vec<OverrideRecord>> {
        let rows: Vec<OverrideRow> = with_pool!(&self.db, pool => {
            sqlx::query_as(
                "SELECT class_id, codes, enabled, daily_quota, updated_by, updated_ms FROM class_overrides",
            )
            .fetch_all(pool)
            .await
        })?;
        Ok(rows
            .into_iter()
            .map(|r| OverrideRecord {
                class_id: r.class_id,
                codes: r.codes.and_then(|j| serde_json::from_str(&j).ok()),
                enabled: r.enabled.map(|e| e != 0),
                daily_quota: r.daily_quota.map(|q| q.clamp(0, u32::MAX as i64) as u32),
                updated_by: r.updated_by,
                updated_ms: r.updated_ms,
            })
            .collect())
    }

    /// Records one change to a class and its audit line together.
    pub async fn change_class(
        &self,
        class_id: &str,
        change: &OverrideChange,
        actor: &str,
        now_ms: i64,
        detail: &str,
    ) -> sqlx::Result<()> {
        let column = match change {
            OverrideChange::Codes(_) => "codes",
            OverrideChange::Enabled(_) => "enabled",
            OverrideChange::DailyQuota(_) => "daily_quota",
        };
        // `column` is one of three literals above, never input.
        let sql = format!(
            "INSERT INTO class_overrides (class_id, {column}, updated_by, updated_ms) VALUES ($1, $2, $3, $4)
             ON CONFLICT (class_id) DO UPDATE SET {column} = excluded.{column},
               updated_by = excluded.updated_by, updated_ms = excluded.updated_ms"
        );
        with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let q = sqlx::query(&sql).bind(class_id);
            // Each column gets its own type: PostgreSQL does not turn text into a number.
            let q = match change {
                OverrideChange::Codes(c) => q.bind(serde_json::to_string(c).unwrap_or_default()),
                OverrideChange::Enabled(e) => q.bind(i64::from(*e)),
                OverrideChange::DailyQuota(n) => q.bind(i64::from(*n)),
            };
            q.bind(actor).bind(now_ms).execute(&mut *tx).await?;
            audit(now_ms, actor, action_name(change), Some(class_id), detail)
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        })
    }

    /// Drops the dashboard's changes to a class: the configuration applies again.
    pub async fn reset_class(&self, class_id: &str, actor: &str, now_ms: i64) -> sqlx::Result<()> {
        with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM class_overrides WHERE class_id = $1")
                .bind(class_id)
                .execute(&mut *tx)
                .await?;
            audit(
                now_ms,
                actor,
                "reset_class",
                Some(class_id),
                "back to the configured settings",
            )
            .execute(&mut *tx)
            .await?;
            tx.commit().await
        })
    }

    /// Revokes a session on a teacher's order, with its audit line.
    pub async fn admin_revoke(
        &self,
        session_id: &str,
        class_id: &str,
        expires_at: i64,
        actor: &str,
        now_ms: i64,
    ) -> sqlx::Result<()> {
        let detail = format!("session {session_id}");
        with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            super::insert_revocation(session_id, class_id, expires_at, "admin", now_ms / 1000)
                .execute(&mut *tx)
                .await?;
            audit(now_ms, actor, "revoke_session", Some(class_id), &detail)
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        })
    }

    /// Records an action that changes nothing stored (sign-in, export).
    pub async fn record_audit(
        &self,
        now_ms: i64,
        actor: &str,
        action: &str,
        class_id: Option<&str>,
        detail: &str,
    ) -> sqlx::Result<()> {
        with_pool!(&self.db, pool => {
            audit(now_ms, actor, action, class_id, detail)
                .execute(pool)
                .await
                .map(|_| ())
        })
    }

    pub async fn recent_audit(
        &self,
        class_id: Option<&str>,
        limit: i64,
    ) -> sqlx::Result<Vec<AuditRecord>> {
        with_pool!(&self.db, pool => {
            sqlx::query_as(
                "SELECT at_ms, actor, action, class_id, detail FROM admin_audit
                 WHERE ($1 IS NULL OR class_id = $1) ORDER BY id DESC LIMIT $2",
            )
            .bind(class_id)
            .bind(limit)
            .fetch_all(pool)
            .await
        })
    }

    /// Usage rows in `[from_ms, to_ms)` after `after_id`, oldest first: the export reads
    /// the range page by page, so a year's log never sits in memory at once.
    pub async fn export_page(
        &self,
        from_ms: i64,
        to_ms: i64,
        class_id: Option<&str>,
        after_id: i64,
        limit: i64,
    ) -> sqlx::Result<Vec<UsageRecord>> {
        with_pool!(&self.db, pool => {
            sqlx::query_as(
                "SELECT id, at_ms, class_id, session_id, display_name, conversation_id, model, prompt_tokens,
                        completion_tokens, tokens_estimated, first_token_ms, total_ms, outcome, error_code,
                        activity_id
                 FROM usage_log WHERE at_ms >= $1 AND at_ms < $2 AND ($3 IS NULL OR class_id = $3) AND id > $4
                 ORDER BY id LIMIT $5",
            )
            .bind(from_ms)
            .bind(to_ms)
            .bind(class_id)
            .bind(after_id)
            .bind(limit)
            .fetch_all(pool)
            .await
        })
    }
}

fn action_name(change: &OverrideChange) -> &'static str {
    match change {
        OverrideChange::Codes(_) => "rotate_code",
        OverrideChange::Enabled(true) => "enable_class",
        OverrideChange::Enabled(false) => "disable_class",
        OverrideChange::DailyQuota(_) => "set_quota",
    }
}

/// The audit-line statement; the caller runs it on its pool or transaction.
fn audit<'q, DB: sqlx::Database>(
    now_ms: i64,
    actor: &'q str,
    action: &'q str,
    class_id: Option<&'q str>,
    detail: &'q str,
) -> sqlx::query::Query<'q, DB, DB::Arguments<'q>>
where
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    sqlx::query(
        "INSERT INTO admin_audit (at_ms, actor, action, class_id, detail) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(now_ms)
    .bind(actor)
    .bind(action)
    .bind(class_id)
    .bind(detail)
}
