//! The dashboard's queries and the records behind its actions. They read the rollup
//! tables, so their cost does not grow with the usage log.

use sqlx::Row;

use super::{HOUR_MS, Store};

/// A class's numbers over a window (see [`Store::class_stats`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClassStats {
    pub messages_today: u64,
    pub tokens_today: u64,
    pub messages_week: u64,
    pub tokens_week: u64,
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
    pub first_token_ms: Option<i64>,
    pub total_ms: i64,
    pub outcome: String,
    pub error_code: Option<String>,
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
        let rows = sqlx::query(
            "SELECT hour_ms, messages, tokens, errors FROM usage_hourly WHERE class_id = ? AND hour_ms >= ? ORDER BY hour_ms",
        )
        .bind(class_id)
        .bind(from - from.rem_euclid(HOUR_MS))
        .fetch_all(self.sqlite())
        .await?;
        let mut st = ClassStats {
            hourly: vec![0; hours],
            ..ClassStats::default()
        };
        for r in rows {
            let (hour, messages, tokens, errors): (i64, i64, i64, i64) =
                (r.get(0), r.get(1), r.get(2), r.get(3));
            if hour >= today_ms - today_ms.rem_euclid(HOUR_MS) {
                st.messages_today += u(messages);
                st.tokens_today += u(tokens);
            }
            if hour >= week_ms - week_ms.rem_euclid(HOUR_MS) {
                st.messages_week += u(messages);
                st.tokens_week += u(tokens);
                st.errors_week += u(errors);
            }
            if hour >= first_hour_ms {
                let i = ((hour - first_hour_ms) / HOUR_MS) as usize;
                if let Some(slot) = st.hourly.get_mut(i) {
                    *slot = slot.saturating_add(messages.clamp(0, u32::MAX as i64) as u32);
                }
            }
        }
        st.active_sessions = u(sqlx::query_scalar(
            "SELECT COUNT(*) FROM sessions s WHERE s.class_id = ? AND s.last_seen_ms >= ?
               AND NOT EXISTS (SELECT 1 FROM revoked_sessions r WHERE r.session_id = s.session_id)",
        )
        .bind(class_id)
        .bind(active_since_ms)
        .fetch_one(self.sqlite())
        .await?);
        Ok(st)
    }

    /// A class's students (sessions), most messages first.
    pub async fn class_students(
        &self,
        class_id: &str,
        limit: i64,
    ) -> sqlx::Result<Vec<(String, Option<String>, u64, u64, i64, bool)>> {
        let rows = sqlx::query(
            "SELECT u.session_id, u.display_name, u.messages, u.tokens, u.last_at_ms,
                    EXISTS (SELECT 1 FROM revoked_sessions r WHERE r.session_id = u.session_id)
             FROM usage_by_session u WHERE u.class_id = ? ORDER BY u.messages DESC, u.last_at_ms DESC LIMIT ?",
        )
        .bind(class_id)
        .bind(limit)
        .fetch_all(self.sqlite())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                (
                    r.get(0),
                    r.get(1),
                    u(r.get(2)),
                    u(r.get(3)),
                    r.get(4),
                    r.get::<bool, _>(5),
                )
            })
            .collect())
    }

    /// A class's most recent upstream errors.
    pub async fn class_errors(
        &self,
        class_id: &str,
        limit: i64,
    ) -> sqlx::Result<Vec<(i64, String, Option<String>, String)>> {
        let rows = sqlx::query(
            "SELECT at_ms, session_id, display_name, COALESCE(error_code, 'upstream_error') FROM usage_log
             WHERE class_id = ? AND outcome = 'upstream_error' ORDER BY at_ms DESC LIMIT ?",
        )
        .bind(class_id)
        .bind(limit)
        .fetch_all(self.sqlite())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect())
    }

    /// The class a session belongs to and when it started, if it ever signed in.
    pub async fn session_info(&self, session_id: &str) -> sqlx::Result<Option<(String, i64)>> {
        let row = sqlx::query("SELECT class_id, started_at_ms FROM sessions WHERE session_id = ?")
            .bind(session_id)
            .fetch_optional(self.sqlite())
            .await?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }

    pub async fn load_overrides(&self) -> sqlx::Result<Vec<OverrideRecord>> {
        let rows = sqlx::query("SELECT class_id, codes, enabled, daily_quota, updated_by, updated_ms FROM class_overrides")
            .fetch_all(self.sqlite())
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| OverrideRecord {
                class_id: r.get(0),
                codes: r
                    .get::<Option<String>, _>(1)
                    .and_then(|j| serde_json::from_str(&j).ok()),
                enabled: r.get(2),
                daily_quota: r
                    .get::<Option<i64>, _>(3)
                    .map(|q| q.clamp(0, u32::MAX as i64) as u32),
                updated_by: r.get(4),
                updated_ms: r.get(5),
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
        let (column, value): (&str, Option<String>) = match change {
            OverrideChange::Codes(c) => {
                ("codes", Some(serde_json::to_string(c).unwrap_or_default()))
            }
            OverrideChange::Enabled(e) => ("enabled", Some(i64::from(*e).to_string())),
            OverrideChange::DailyQuota(q) => ("daily_quota", Some(q.to_string())),
        };
        let mut tx = self.sqlite().begin().await?;
        // `column` is one of three literals above, never input.
        let sql = format!(
            "INSERT INTO class_overrides (class_id, {column}, updated_by, updated_ms) VALUES (?, ?, ?, ?)
             ON CONFLICT (class_id) DO UPDATE SET {column} = excluded.{column},
               updated_by = excluded.updated_by, updated_ms = excluded.updated_ms"
        );
        sqlx::query(&sql)
            .bind(class_id)
            .bind(value)
            .bind(actor)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        audit(
            &mut tx,
            now_ms,
            actor,
            action_name(change),
            Some(class_id),
            detail,
        )
        .await?;
        tx.commit().await
    }

    /// Drops the dashboard's changes to a class: the configuration applies again.
    pub async fn reset_class(&self, class_id: &str, actor: &str, now_ms: i64) -> sqlx::Result<()> {
        let mut tx = self.sqlite().begin().await?;
        sqlx::query("DELETE FROM class_overrides WHERE class_id = ?")
            .bind(class_id)
            .execute(&mut *tx)
            .await?;
        audit(
            &mut tx,
            now_ms,
            actor,
            "reset_class",
            Some(class_id),
            "back to the configured settings",
        )
        .await?;
        tx.commit().await
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
        let mut tx = self.sqlite().begin().await?;
        super::insert_revocation(
            &mut tx,
            session_id,
            class_id,
            expires_at,
            "admin",
            now_ms / 1000,
        )
        .await?;
        audit(
            &mut tx,
            now_ms,
            actor,
            "revoke_session",
            Some(class_id),
            &format!("session {session_id}"),
        )
        .await?;
        tx.commit().await
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
        let mut conn = self.sqlite().acquire().await?;
        audit(&mut conn, now_ms, actor, action, class_id, detail).await
    }

    pub async fn recent_audit(
        &self,
        class_id: Option<&str>,
        limit: i64,
    ) -> sqlx::Result<Vec<(i64, String, String, Option<String>, String)>> {
        let rows = sqlx::query(
            "SELECT at_ms, actor, action, class_id, detail FROM admin_audit
             WHERE (?1 IS NULL OR class_id = ?1) ORDER BY id DESC LIMIT ?2",
        )
        .bind(class_id)
        .bind(limit)
        .fetch_all(self.sqlite())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
            .collect())
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
        sqlx::query_as(
            "SELECT id, at_ms, class_id, session_id, display_name, conversation_id, model, prompt_tokens,
                    completion_tokens, first_token_ms, total_ms, outcome, error_code
             FROM usage_log WHERE at_ms >= ?1 AND at_ms < ?2 AND (?3 IS NULL OR class_id = ?3) AND id > ?4
             ORDER BY id LIMIT ?5",
        )
        .bind(from_ms)
        .bind(to_ms)
        .bind(class_id)
        .bind(after_id)
        .bind(limit)
        .fetch_all(self.sqlite())
        .await
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

async fn audit(
    conn: &mut sqlx::SqliteConnection,
    now_ms: i64,
    actor: &str,
    action: &str,
    class_id: Option<&str>,
    detail: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO admin_audit (at_ms, actor, action, class_id, detail) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(now_ms)
    .bind(actor)
    .bind(action)
    .bind(class_id)
    .bind(detail)
    .execute(conn)
    .await?;
    Ok(())
}
