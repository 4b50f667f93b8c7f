//! What keeps replicas in step: change notifications (PostgreSQL's LISTEN/NOTIFY), the
//! full reads a resync uses, and housekeeping that one replica at a time runs.

use super::{Db, Store, with_pool};

/// The channel every replica listens on.
const CHANNEL: &str = "classchat";

/// Housekeeping's advisory lock key (any fixed number; "cc" in ASCII, twice).
pub(super) const HOUSEKEEPING_LOCK: i64 = 0x6363_6363;

/// How long (seconds) a revocation is kept after its session's end. A session's last token
/// expires at that end but still verifies for the token leeway after it
/// (`auth::token::LEEWAY_SECS`, which must not exceed this); a revocation forgotten at the
/// end itself left that token usable until the leeway was over. The margin covers replicas
/// whose clocks disagree.
pub const REVOCATION_KEPT_AFTER_END: i64 = 300;

#[derive(Debug, sqlx::FromRow)]
pub struct Revocation {
    pub session_id: String,
    /// Unix seconds: the session's end.
    pub expires_at: i64,
}

impl Store {
    /// Tells the other replicas something changed (`revoked <session id>`, `classes`).
    /// A no-op on SQLite (one process). Best effort: a lost notification is healed by the
    /// next periodic resync.
    pub async fn notify(&self, event: &str) {
        if let Db::Postgres(pool) = &self.db {
            let r = sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(event)
                .execute(pool)
                .await;
            if let Err(e) = r {
                tracing::warn!(error = %e, "could not notify the other replicas; they catch up at their next resync");
            }
        }
    }

    /// Every revocation still in force at `now` (Unix seconds): those of sessions that
    /// ended less than [`REVOCATION_KEPT_AFTER_END`] ago too.
    pub async fn revocations(&self, now: i64) -> sqlx::Result<Vec<Revocation>> {
        with_pool!(&self.db, pool => {
            sqlx::query_as(
                "SELECT session_id, expires_at FROM revoked_sessions WHERE expires_at >= $1",
            )
            .bind(now - REVOCATION_KEPT_AFTER_END)
            .fetch_all(pool)
            .await
        })
    }

    /// Deletes what can no longer matter: revocations of sessions that ended more than
    /// [`REVOCATION_KEPT_AFTER_END`] before `now`, and on
    /// PostgreSQL whole budgets and past quota days. On PostgreSQL only the replica that
    /// gets the advisory lock does it (the others skip this round); returns whether it ran.
    pub async fn housekeeping(&self, now: i64, today: jiff::civil::Date) -> sqlx::Result<bool> {
        match &self.db {
            Db::Sqlite(pool) => {
                sqlx::query("DELETE FROM revoked_sessions WHERE expires_at < $1")
                    .bind(now - REVOCATION_KEPT_AFTER_END)
                    .execute(pool)
                    .await?;
                Ok(true)
            }
            Db::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let mine: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
                    .bind(HOUSEKEEPING_LOCK)
                    .fetch_one(&mut *tx)
                    .await?;
                if !mine {
                    return Ok(false);
                }
                sqlx::query("DELETE FROM revoked_sessions WHERE expires_at < $1")
                    .bind(now - REVOCATION_KEPT_AFTER_END)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM rate_budgets WHERE tat_ms < classchat_now_ms()")
                    .execute(&mut *tx)
                    .await?;
                // Keep yesterday: classes in time zones behind the database's still use it.
                let before = today.yesterday().unwrap_or(today).to_string();
                sqlx::query("DELETE FROM daily_messages WHERE day < $1")
                    .bind(before)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(true)
            }
        }
    }

    /// A listener for [`CHANNEL`] on PostgreSQL; `None` on SQLite.
    pub async fn listener(&self) -> sqlx::Result<Option<sqlx::postgres::PgListener>> {
        match &self.db {
            Db::Sqlite(_) => Ok(None),
            Db::Postgres(pool) => {
                let mut l = sqlx::postgres::PgListener::connect_with(pool).await?;
                l.listen(CHANNEL).await?;
                Ok(Some(l))
            }
        }
    }
}
