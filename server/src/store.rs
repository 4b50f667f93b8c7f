//! Storage: every SQL statement classchat runs lives in this module.
//!
//! SQLite by default (one file, created and migrated on first start). A PostgreSQL
//! backend is meant to be an addition here with its own migrations folder; callers only
//! see [`Store`]'s methods.

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
        sqlx::query(
            "INSERT INTO revoked_sessions (session_id, class_id, revoked_at, expires_at, reason)
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (session_id) DO NOTHING",
        )
        .bind(session_id)
        .bind(class_id)
        .bind(now)
        .bind(expires_at)
        .bind(reason)
        .execute(&self.pool)
        .await?;
        Ok(())
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

    /// Writes a batch of usage rows in one transaction.
    pub async fn insert_usage(&self, rows: &[UsageRow]) -> sqlx::Result<()> {
        let mut tx = self.pool.begin().await?;
        for r in rows {
            sqlx::query(
                "INSERT INTO usage_log (at_ms, class_id, session_id, display_name, conversation_id, model,
                   prompt_tokens, completion_tokens, first_token_ms, total_ms, outcome, error_code)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(r.at_ms)
            .bind(&r.class_id)
            .bind(&r.session_id)
            .bind(&r.display_name)
            .bind(&r.conversation_id)
            .bind(&r.model)
            .bind(r.prompt_tokens)
            .bind(r.completion_tokens)
            .bind(r.first_token_ms)
            .bind(r.total_ms)
            .bind(r.outcome.as_str())
            .bind(r.error_code)
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

    /// Usage rows, newest last (for tests and the dashboard).
    pub async fn usage_rows(&self, limit: i64) -> sqlx::Result<Vec<UsageRecord>> {
        sqlx::query_as(
            "SELECT class_id, session_id, display_name, conversation_id, model, prompt_tokens,
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

/// A usage row as read back.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UsageRecord {
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

impl Store {
    /// A trivial query: is the database answering?
    pub async fn ping(&self) -> sqlx::Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
    }
}
