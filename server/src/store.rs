//! Storage: every SQL statement classchat runs lives in this module.
//!
//! SQLite by default (one file, created and migrated on first start). A PostgreSQL
//! backend is meant to be an addition here with its own migrations folder; callers only
//! see [`Store`]'s methods.

pub mod dashboard;

pub use dashboard::UsageRecord;

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

/// A handle on the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
}

/// One usage-log row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageRow {
    pub at_ms: i64,
    pub class_id: String,
    pub session_id: String,
    pub display_name: Option<String>,
    pub conversation_id: String,
    pub model: Option<String>,
    pub prompt_tokens: Option<u32>,
    pub completion_tokens: Option<u32>,
    pub first_token_ms: Option<u32>,
    pub total_ms: u32,
    pub outcome: Outcome,
    pub error_code: Option<&'static str>,
}

/// A new sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub session_id: String,
    pub class_id: String,
    pub display_name: Option<String>,
    pub started_at_ms: i64,
}

/// A batch's messages, tokens, last time and display name for one session.
type SessionTotals<'a> = (i64, i64, i64, Option<&'a str>);

/// Rows per multi-row INSERT (12 columns × 64 stays far below SQLite's parameter limit).
const ROWS_PER_STATEMENT: usize = 64;

/// One hour in milliseconds: the rollups' bucket.
pub const HOUR_MS: i64 = 3_600_000;

/// How a chat request ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    /// The student went away (or stopped the reply) before it finished.
    #[default]
    Interrupted,
    UpstreamError,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Interrupted => "interrupted",
            Self::UpstreamError => "upstream_error",
        }
    }
}

impl Store {
    /// Opens (creating if needed) and migrates the database.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let url = if url.starts_with("sqlite:") {
            url.to_owned()
        } else {
            format!("sqlite://{url}")
        };
        let opts = SqliteConnectOptions::from_str(&url)
            .with_context(|| {
                format!("DATABASE_URL {url:?} is not a SQLite URL (sqlite://path/to/file.db)")
            })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await
            .with_context(|| format!("cannot open the database {url}"))?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .context("cannot migrate the database")?;
        Ok(Self { pool })
    }

    /// Records that a session may no longer be used.
    pub async fn revoke_session(
        &self,
        session_id: &str,
        class_id: &str,
        expires_at: i64,
        reason: &str,
        now: i64,
    ) -> sqlx::Result<()> {
        let mut conn = self.pool.acquire().await?;
        insert_revocation(&mut conn, session_id, class_id, expires_at, reason, now).await
    }

    /// Session ids revoked and not yet past their end; drops the ones that are.
    pub async fn live_revocations(&self, now: i64) -> sqlx::Result<Vec<String>> {
        sqlx::query("DELETE FROM revoked_sessions WHERE expires_at < ?")
            .bind(now)
            .execute(&self.pool)
            .await?;
        sqlx::query_scalar("SELECT session_id FROM revoked_sessions")
            .fetch_all(&self.pool)
            .await
    }

    /// Writes a batch of usage rows and new sessions in one transaction, keeping the
    /// dashboard's rollups in step.
    pub async fn insert_usage(
        &self,
        rows: &[UsageRow],
        sessions: &[SessionRow],
    ) -> sqlx::Result<()> {
        let mut tx = self.pool.begin().await?;
        // Multi-row statements: each statement is a round trip to SQLite's worker thread,
        // which dominated the writer's cost when it was one statement per row.
        for chunk in sessions.chunks(ROWS_PER_STATEMENT) {
            let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT INTO sessions (session_id, class_id, display_name, started_at_ms, last_seen_ms) ",
            );
            q.push_values(chunk, |mut b, s| {
                b.push_bind(&s.session_id)
                    .push_bind(&s.class_id)
                    .push_bind(&s.display_name)
                    .push_bind(s.started_at_ms)
                    .push_bind(s.started_at_ms);
            });
            q.push(" ON CONFLICT (session_id) DO NOTHING");
            q.build().execute(&mut *tx).await?;
        }
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT INTO usage_log (at_ms, class_id, session_id, display_name, conversation_id, model,
                   prompt_tokens, completion_tokens, first_token_ms, total_ms, outcome, error_code) ",
            );
            q.push_values(chunk, |mut b, r| {
                b.push_bind(r.at_ms)
                    .push_bind(&r.class_id)
                    .push_bind(&r.session_id)
                    .push_bind(&r.display_name)
                    .push_bind(&r.conversation_id)
                    .push_bind(&r.model)
                    .push_bind(r.prompt_tokens)
                    .push_bind(r.completion_tokens)
                    .push_bind(r.first_token_ms)
                    .push_bind(r.total_ms)
                    .push_bind(r.outcome.as_str())
                    .push_bind(r.error_code);
            });
            q.build().execute(&mut *tx).await?;
        }
        let mut hourly: std::collections::HashMap<(&str, i64), (i64, i64, i64)> =
            Default::default();
        let mut per_session: std::collections::HashMap<(&str, &str), SessionTotals<'_>> =
            Default::default();
        for r in rows {
            let tokens = i64::from(r.prompt_tokens.unwrap_or(0))
                + i64::from(r.completion_tokens.unwrap_or(0));
            let error = i64::from(r.outcome == Outcome::UpstreamError);
            let h = hourly
                .entry((r.class_id.as_str(), r.at_ms - r.at_ms.rem_euclid(HOUR_MS)))
                .or_default();
            *h = (h.0 + 1, h.1 + tokens, h.2 + error);
            let p = per_session
                .entry((r.class_id.as_str(), r.session_id.as_str()))
                .or_insert((0, 0, r.at_ms, None));
            *p = (
                p.0 + 1,
                p.1 + tokens,
                p.2.max(r.at_ms),
                r.display_name.as_deref().or(p.3),
            );
        }
        // One upsert per (class, hour) and per session, not per row: a busy batch of a
        // few hundred rows touches a handful of rollup rows.
        for ((class_id, hour_ms), (messages, tokens, errors)) in hourly {
            sqlx::query(
                "INSERT INTO usage_hourly (class_id, hour_ms, messages, tokens, errors) VALUES (?, ?, ?, ?, ?)
                 ON CONFLICT (class_id, hour_ms) DO UPDATE SET messages = messages + excluded.messages,
                   tokens = tokens + excluded.tokens, errors = errors + excluded.errors",
            )
            .bind(class_id)
            .bind(hour_ms)
            .bind(messages)
            .bind(tokens)
            .bind(errors)
            .execute(&mut *tx)
            .await?;
        }
        for ((class_id, session_id), (messages, tokens, last_at_ms, display_name)) in per_session {
            sqlx::query(
                "INSERT INTO usage_by_session (class_id, session_id, display_name, messages, tokens, last_at_ms)
                 VALUES (?, ?, ?, ?, ?, ?)
                 ON CONFLICT (class_id, session_id) DO UPDATE SET messages = messages + excluded.messages,
                   tokens = tokens + excluded.tokens, last_at_ms = MAX(last_at_ms, excluded.last_at_ms),
                   display_name = COALESCE(excluded.display_name, display_name)",
            )
            .bind(class_id)
            .bind(session_id)
            .bind(display_name)
            .bind(messages)
            .bind(tokens)
            .bind(last_at_ms)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE sessions SET last_seen_ms = MAX(last_seen_ms, ?) WHERE session_id = ?",
            )
            .bind(last_at_ms)
            .bind(session_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    }

    /// Chat requests per class since a moment (for the daily quota after a restart).
    pub async fn messages_since(&self, since_ms: i64) -> sqlx::Result<Vec<(String, i64)>> {
        sqlx::query_as(
            "SELECT class_id, COUNT(*) FROM usage_log WHERE at_ms >= ? GROUP BY class_id",
        )
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await
    }

    /// The latest usage rows, oldest first (tests read the log through it).
    pub async fn usage_rows(&self, limit: i64) -> sqlx::Result<Vec<UsageRecord>> {
        sqlx::query_as(
            "SELECT id, at_ms, class_id, session_id, display_name, conversation_id, model, prompt_tokens,
                    completion_tokens, first_token_ms, total_ms, outcome, error_code
             FROM usage_log ORDER BY id DESC LIMIT ?",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map(|mut v: Vec<UsageRecord>| {
            v.reverse();
            v
        })
    }

    /// Waits for outstanding writes and closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

impl Store {
    /// A trivial query: is the database answering?
    pub async fn ping(&self) -> sqlx::Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
    }
}

/// The one statement that revokes a session (sign-out, or a teacher's order inside a
/// transaction with its audit line).
async fn insert_revocation(
    conn: &mut sqlx::SqliteConnection,
    session_id: &str,
    class_id: &str,
    expires_at: i64,
    reason: &str,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO revoked_sessions (session_id, class_id, revoked_at, expires_at, reason)
         VALUES (?, ?, ?, ?, ?) ON CONFLICT (session_id) DO NOTHING",
    )
    .bind(session_id)
    .bind(class_id)
    .bind(now)
    .bind(expires_at)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(())
}
