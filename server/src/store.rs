//! Storage: every SQL statement classchat runs lives in this module.
//!
//! Two backends behind one [`Store`]: SQLite (the default: one file, created and migrated
//! on first start) and PostgreSQL (`DATABASE_URL=postgres://…`, for several replicas).
//! Each has its own migrations folder; every statement is written once, in SQL both accept
//! (`$1` placeholders, `ON CONFLICT`, `CASE` instead of `MAX(a, b)`/`GREATEST`, integers
//! as `BIGINT`/i64, no booleans), and [`with_pool!`] type-checks it against each driver.
//! The few statements that must differ live in `dialect`. Callers only see [`Store`]'s
//! methods.

pub mod admin;
pub mod allowances;
mod classes;
pub mod conversations;
pub mod copy;
pub mod dashboard;
mod dialect;
mod limits;
pub mod lti;
pub mod one_time;
pub mod personal_codes;
pub mod safety;
mod sync;
pub mod teachers;

pub use dashboard::UsageRecord;
pub use limits::{Admission, Grant, Leased, QuotaAsk, RateAsk, Returned};
pub use sync::{REVOCATION_KEPT_AFTER_END, Revocation};

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::ConnectOptions;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::basics::{HOUR_MS, redact_error, redact_url};

/// A handle on the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    db: Db,
}

/// The pool of whichever backend `DATABASE_URL` chose.
#[derive(Debug, Clone)]
pub(crate) enum Db {
    Sqlite(SqlitePool),
    Postgres(sqlx::PgPool),
}

/// Runs one body against whichever pool the store has: `with_pool!(&self.db, pool => …)`.
/// The body is compiled once per driver, so a statement either suits both or does not build.
macro_rules! with_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite($pool) => $body,
            $crate::store::Db::Postgres($pool) => $body,
        }
    };
}
// Path form, for the submodules (`use crate::store::with_pool;`).
#[allow(unused_imports)]
pub(crate) use with_pool;

/// One usage-log row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageRow {
    pub at_ms: i64,
    pub class_id: String,
    /// The activity whose code the session signed in with; `None`: the class's own code.
    pub activity_id: Option<String>,
    pub session_id: String,
    pub display_name: Option<String>,
    pub conversation_id: String,
    pub model: Option<String>,
    pub prompt_tokens: Option<u32>,
    pub completion_tokens: Option<u32>,
    /// The token counts are classchat's estimate: the upstream reported none.
    pub tokens_estimated: bool,
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

/// A batch's messages, tokens, rows with estimated tokens, last time and display name for
/// one session.
type SessionTotals<'a> = (i64, i64, i64, i64, Option<&'a str>);

/// Rows per multi-row INSERT (14 columns × 64 stays far below SQLite's parameter limit).
const ROWS_PER_STATEMENT: usize = 64;

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
    /// Opens and migrates the database `url` names: `sqlite://…` (or a bare path), or
    /// `postgres://…`/`postgresql://…` (TLS per `sslmode` in the URL, verified against
    /// Mozilla's roots). Errors show the URL without its password.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        Self::open(url, true).await
    }

    /// As [`Self::connect`], but a SQLite file must exist already (`migrate-db`'s source:
    /// a mistyped path is an error, not a new empty database).
    pub async fn connect_existing(url: &str) -> anyhow::Result<Self> {
        Self::open(url, false).await
    }

    async fn open(url: &str, create: bool) -> anyhow::Result<Self> {
        let shown = redact_url(url);
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let opts = sqlx::postgres::PgConnectOptions::from_str(url).map_err(|_| {
                anyhow::anyhow!("{shown:?} is not a PostgreSQL URL (postgres://user:password@host:port/database)")
            })?;
            let pool = match sqlx::postgres::PgPoolOptions::new()
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(3))
                .connect_with(opts.clone())
                .await
            {
                Ok(pool) => pool,
                Err(e) => {
                    // The pool retries a refused connection until its timeout and then
                    // says only that: one more attempt of our own gives the cause.
                    let cause = match e {
                        sqlx::Error::PoolTimedOut => match opts.connect().await {
                            Ok(_) => e.to_string(),
                            Err(direct) => direct.to_string(),
                        },
                        e => e.to_string(),
                    };
                    anyhow::bail!(
                        "cannot open the database {shown}: {}",
                        redact_error(&cause, url)
                    );
                }
            };
            // Replicas starting together: sqlx takes an advisory lock around the migrations.
            sqlx::migrate!("./migrations/postgres")
                .run(&pool)
                .await
                .map_err(|e| anyhow::anyhow!("cannot migrate the database {shown}: {e}"))?;
            return Ok(Self {
                db: Db::Postgres(pool),
            });
        }
        let url = if url.starts_with("sqlite:") {
            url.to_owned()
        } else {
            format!("sqlite://{url}")
        };
        let opts = SqliteConnectOptions::from_str(&url)
            .with_context(|| {
                format!("DATABASE_URL {shown:?} is not a SQLite URL (sqlite://path/to/file.db) or a PostgreSQL URL (postgres://…)")
            })?
            .create_if_missing(create)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            // Deleted rows (erased students, retention) are overwritten, not left in free
            // pages a copied file would still show.
            .pragma("secure_delete", "ON")
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await
            .with_context(|| format!("cannot open the database {shown}"))?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .context("cannot migrate the database")?;
        Ok(Self {
            db: Db::Sqlite(pool),
        })
    }

    /// Whether this is the PostgreSQL backend (shared by replicas).
    pub fn is_postgres(&self) -> bool {
        matches!(self.db, Db::Postgres(_))
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
        with_pool!(&self.db, pool => {
            insert_revocation(session_id, class_id, expires_at, reason, now)
                .execute(pool)
                .await
                .map(|_| ())
        })
    }

    /// Writes a batch of usage rows and new sessions in one transaction, keeping the
    /// dashboard's rollups in step.
    pub async fn insert_usage(
        &self,
        rows: &[UsageRow],
        sessions: &[SessionRow],
    ) -> sqlx::Result<()> {
        // Ordered maps: every replica upserts the rollup rows in key order, so two batches
        // touching the same class-hours lock them in the same order and cannot deadlock
        // (as they did in hash order, seen in the two-replica benchmark).
        let mut hourly: std::collections::BTreeMap<(&str, i64), (i64, i64, i64, i64)> =
            Default::default();
        let mut per_session: std::collections::BTreeMap<(&str, &str), SessionTotals<'_>> =
            Default::default();
        for r in rows {
            let tokens = i64::from(r.prompt_tokens.unwrap_or(0))
                + i64::from(r.completion_tokens.unwrap_or(0));
            let error = i64::from(r.outcome == Outcome::UpstreamError);
            let estimated = i64::from(r.tokens_estimated);
            let h = hourly
                .entry((r.class_id.as_str(), r.at_ms - r.at_ms.rem_euclid(HOUR_MS)))
                .or_default();
            *h = (h.0 + 1, h.1 + tokens, h.2 + error, h.3 + estimated);
            let p = per_session
                .entry((r.class_id.as_str(), r.session_id.as_str()))
                .or_insert((0, 0, 0, r.at_ms, None));
            *p = (
                p.0 + 1,
                p.1 + tokens,
                p.2 + estimated,
                p.3.max(r.at_ms),
                r.display_name.as_deref().or(p.4),
            );
        }
        with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            // Multi-row statements: each statement is a round trip (to SQLite's worker
            // thread, or to the PostgreSQL server), which dominated the writer's cost when
            // it was one statement per row.
            for chunk in sessions.chunks(ROWS_PER_STATEMENT) {
                let mut q = sqlx::QueryBuilder::new(
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
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO usage_log (at_ms, class_id, session_id, display_name, conversation_id, model,
                       prompt_tokens, completion_tokens, tokens_estimated, first_token_ms, total_ms, outcome, error_code,
                       activity_id) ",
                );
                q.push_values(chunk, |mut b, r| {
                    b.push_bind(r.at_ms)
                        .push_bind(&r.class_id)
                        .push_bind(&r.session_id)
                        .push_bind(&r.display_name)
                        .push_bind(&r.conversation_id)
                        .push_bind(&r.model)
                        .push_bind(r.prompt_tokens.map(i64::from))
                        .push_bind(r.completion_tokens.map(i64::from))
                        .push_bind(i64::from(r.tokens_estimated))
                        .push_bind(r.first_token_ms.map(i64::from))
                        .push_bind(i64::from(r.total_ms))
                        .push_bind(r.outcome.as_str())
                        .push_bind(r.error_code)
                        .push_bind(&r.activity_id);
                });
                q.build().execute(&mut *tx).await?;
            }
            // The rollups in multi-row upserts too: one row per (class, hour) and per session
            // of the batch (keys unique within a statement, as PostgreSQL's ON CONFLICT needs),
            // so a batch costs a few statements however many sessions it touches.
            let hourly: Vec<_> = hourly.into_iter().collect();
            for chunk in hourly.chunks(ROWS_PER_STATEMENT) {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO usage_hourly (class_id, hour_ms, messages, tokens, errors, estimated) ",
                );
                q.push_values(chunk, |mut b, ((class_id, hour_ms), (messages, tokens, errors, estimated))| {
                    b.push_bind(*class_id)
                        .push_bind(*hour_ms)
                        .push_bind(*messages)
                        .push_bind(*tokens)
                        .push_bind(*errors)
                        .push_bind(*estimated);
                });
                q.push(
                    " ON CONFLICT (class_id, hour_ms) DO UPDATE SET messages = usage_hourly.messages + excluded.messages,
                       tokens = usage_hourly.tokens + excluded.tokens, errors = usage_hourly.errors + excluded.errors,
                       estimated = usage_hourly.estimated + excluded.estimated",
                );
                q.build().execute(&mut *tx).await?;
            }
            let per_session: Vec<_> = per_session.into_iter().collect();
            for chunk in per_session.chunks(ROWS_PER_STATEMENT) {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO usage_by_session (class_id, session_id, display_name, messages, tokens, last_at_ms, estimated) ",
                );
                q.push_values(chunk, |mut b, ((class_id, session_id), (messages, tokens, estimated, last_at_ms, display_name))| {
                    b.push_bind(*class_id)
                        .push_bind(*session_id)
                        .push_bind(*display_name)
                        .push_bind(*messages)
                        .push_bind(*tokens)
                        .push_bind(*last_at_ms)
                        .push_bind(*estimated);
                });
                q.push(
                    " ON CONFLICT (class_id, session_id) DO UPDATE SET
                       messages = usage_by_session.messages + excluded.messages,
                       tokens = usage_by_session.tokens + excluded.tokens,
                       estimated = usage_by_session.estimated + excluded.estimated,
                       last_at_ms = CASE WHEN excluded.last_at_ms > usage_by_session.last_at_ms
                                         THEN excluded.last_at_ms ELSE usage_by_session.last_at_ms END,
                       display_name = COALESCE(excluded.display_name, usage_by_session.display_name)",
                );
                q.build().execute(&mut *tx).await?;
                // Each session's last_seen_ms moves forward (never back), for the sessions that
                // have a row: one UPDATE for the chunk, the new value picked by a CASE.
                let mut q = sqlx::QueryBuilder::new("UPDATE sessions SET last_seen_ms = ");
                let seen = |q: &mut sqlx::QueryBuilder<'_, _>| {
                    q.push("CASE session_id");
                    for ((_, session_id), (_, _, _, last_at_ms, _)) in chunk {
                        q.push(" WHEN ")
                            .push_bind((*session_id).to_owned())
                            .push(" THEN ")
                            .push_bind(*last_at_ms);
                    }
                    q.push(" END");
                };
                seen(&mut q);
                q.push(" WHERE session_id IN (");
                let mut ids = q.separated(", ");
                for ((_, session_id), _) in chunk {
                    ids.push_bind(*session_id);
                }
                q.push(") AND last_seen_ms < ");
                seen(&mut q);
                q.build().execute(&mut *tx).await?;
            }
            tx.commit().await
        })
    }

    /// Chat requests per class since a moment (for the daily quota after a restart).
    pub async fn messages_since(&self, since_ms: i64) -> sqlx::Result<Vec<(String, i64)>> {
        #[derive(sqlx::FromRow)]
        struct ClassCount {
            class_id: String,
            messages: i64,
        }
        let rows: Vec<ClassCount> = with_pool!(&self.db, pool => {
            sqlx::query_as(
                "SELECT class_id, COUNT(*) AS messages FROM usage_log WHERE at_ms >= $1 GROUP BY class_id",
            )
            .bind(since_ms)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows.into_iter().map(|r| (r.class_id, r.messages)).collect())
    }

    /// Waits for outstanding writes and closes the pool.
    pub async fn close(&self) {
        with_pool!(&self.db, pool => pool.close().await)
    }
}

impl Store {
    /// A trivial query: is the database answering?
    pub async fn ping(&self) -> sqlx::Result<()> {
        with_pool!(&self.db, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))
    }
}

/// The one statement that revokes a session (sign-out, or a teacher's order inside a
/// transaction with its audit line); the caller runs it on its pool or transaction.
fn insert_revocation<'q, DB: sqlx::Database>(
    session_id: &'q str,
    class_id: &'q str,
    expires_at: i64,
    reason: &'q str,
    now: i64,
) -> sqlx::query::Query<'q, DB, DB::Arguments<'q>>
where
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    sqlx::query(
        "INSERT INTO revoked_sessions (session_id, class_id, revoked_at, expires_at, reason)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (session_id) DO NOTHING",
    )
    .bind(session_id)
    .bind(class_id)
    .bind(now)
    .bind(expires_at)
    .bind(reason)
}
