//! Stored conversations: sealed exchanges of classes whose visibility keeps them, and the
//! log of who opened which (see `crate::conversations` for what is kept and when).

use super::teachers::{Audit, audit_line};
use super::{Store, with_pool};

/// One stored exchange; `sealed` is the base64 of [`crate::sealed::Sealer::seal`]'s output.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ExchangeRow {
    pub id: String,
    pub class_id: String,
    pub activity_id: Option<String>,
    pub session_id: String,
    pub display_name: Option<String>,
    pub conversation_id: String,
    pub at_ms: i64,
    /// `full`, `flagged` or `context`.
    pub kept: String,
    pub sealed: String,
}

/// One conversation of one student, for the list.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ConversationSummary {
    pub session_id: String,
    pub display_name: Option<String>,
    pub conversation_id: String,
    pub exchanges: i64,
    pub first_ms: i64,
    pub last_ms: i64,
}

/// One opening of a stored conversation.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ReadRecord {
    pub id: i64,
    pub at_ms: i64,
    pub reader: String,
    pub class_id: String,
    pub session_id: String,
    pub display_name: Option<String>,
    pub conversation_id: String,
    pub address: Option<String>,
}

const EXCHANGE_COLUMNS: &str = "id, class_id, activity_id, session_id, display_name, \
     conversation_id, at_ms, kept, sealed";

/// Rows per multi-row INSERT (9 columns × 64 stays far below either backend's limit).
const ROWS_PER_STATEMENT: usize = 64;

impl Store {
    /// Writes exchanges; one already there (same id) is left as it is.
    pub async fn insert_exchanges(&self, rows: &[ExchangeRow]) -> sqlx::Result<()> {
        with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                let mut q = sqlx::QueryBuilder::new(format!(
                    "INSERT INTO conversation_exchanges ({EXCHANGE_COLUMNS}) "
                ));
                q.push_values(chunk, |mut b, r| {
                    b.push_bind(&r.id)
                        .push_bind(&r.class_id)
                        .push_bind(&r.activity_id)
                        .push_bind(&r.session_id)
                        .push_bind(&r.display_name)
                        .push_bind(&r.conversation_id)
                        .push_bind(r.at_ms)
                        .push_bind(&r.kept)
                        .push_bind(&r.sealed);
                });
                q.push(" ON CONFLICT (id) DO NOTHING");
                q.build().execute(&mut *tx).await?;
            }
            tx.commit().await
        })
    }

    /// A class's stored conversations, the most recently active first, at most `limit`.
    pub async fn conversations_of(
        &self,
        class_id: &str,
        limit: i64,
    ) -> sqlx::Result<Vec<ConversationSummary>> {
        with_pool!(&self.db, pool => {
            sqlx::query_as(
                "SELECT session_id, MAX(display_name) AS display_name, conversation_id,
                        CAST(COUNT(*) AS BIGINT) AS exchanges,
                        CAST(MIN(at_ms) AS BIGINT) AS first_ms, CAST(MAX(at_ms) AS BIGINT) AS last_ms
                   FROM conversation_exchanges WHERE class_id = $1
                  GROUP BY session_id, conversation_id
                  ORDER BY last_ms DESC, conversation_id LIMIT $2",
            )
            .bind(class_id)
            .bind(limit)
            .fetch_all(pool)
            .await
        })
    }

    /// One conversation's exchanges, oldest first.
    pub async fn conversation_exchanges(
        &self,
        class_id: &str,
        session_id: &str,
        conversation_id: &str,
    ) -> sqlx::Result<Vec<ExchangeRow>> {
        with_pool!(&self.db, pool => {
            sqlx::query_as(&format!(
                "SELECT {EXCHANGE_COLUMNS} FROM conversation_exchanges
                  WHERE class_id = $1 AND session_id = $2 AND conversation_id = $3
                  ORDER BY at_ms, id"
            ))
            .bind(class_id)
            .bind(session_id)
            .bind(conversation_id)
            .fetch_all(pool)
            .await
        })
    }

    /// A class's newest `limit` exchanges, newest first (what a search looks through).
    pub async fn recent_exchanges(
        &self,
        class_id: &str,
        limit: i64,
    ) -> sqlx::Result<Vec<ExchangeRow>> {
        with_pool!(&self.db, pool => {
            sqlx::query_as(&format!(
                "SELECT {EXCHANGE_COLUMNS} FROM conversation_exchanges
                  WHERE class_id = $1 ORDER BY at_ms DESC, id LIMIT $2"
            ))
            .bind(class_id)
            .bind(limit)
            .fetch_all(pool)
            .await
        })
    }

    /// Records that `reader` opened a conversation.
    pub async fn log_conversation_read(&self, r: &ReadRecord) -> sqlx::Result<()> {
        with_pool!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO conversation_reads (at_ms, reader, class_id, session_id, display_name, conversation_id, address)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(r.at_ms)
            .bind(&r.reader)
            .bind(&r.class_id)
            .bind(&r.session_id)
            .bind(&r.display_name)
            .bind(&r.conversation_id)
            .bind(&r.address)
            .execute(pool)
            .await
            .map(|_| ())
        })
    }

    /// The newest `limit` openings, of one class or (`None`) of every class, newest first.
    pub async fn conversation_reads(
        &self,
        class_id: Option<&str>,
        limit: i64,
    ) -> sqlx::Result<Vec<ReadRecord>> {
        with_pool!(&self.db, pool => {
            sqlx::query_as(
                "SELECT id, at_ms, reader, class_id, session_id, display_name, conversation_id, address
                   FROM conversation_reads WHERE $1 IS NULL OR class_id = $1
                  ORDER BY id DESC LIMIT $2",
            )
            .bind(class_id)
            .bind(limit)
            .fetch_all(pool)
            .await
        })
    }
}

/// What retention deletes by age: its table, key column and time column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aged {
    /// Stored exchanges, by when the student sent them.
    Conversations,
    /// Usage rows, by when the message was sent (the hourly class totals stay).
    Usage,
    /// Sign-ins and their per-session totals, by when they were last used.
    Sessions,
}

impl Aged {
    /// (table, key, time) for each table the kind covers.
    fn tables(self) -> &'static [(&'static str, &'static str, &'static str)] {
        match self {
            Self::Conversations => &[("conversation_exchanges", "id", "at_ms")],
            Self::Usage => &[("usage_log", "id", "at_ms")],
            Self::Sessions => &[
                ("sessions", "session_id", "last_seen_ms"),
                ("usage_by_session", "session_id", "last_at_ms"),
            ],
        }
    }
}

/// Which classes a retention batch covers.
#[derive(Debug, Clone, Copy)]
pub enum Classes<'a> {
    One(&'a str),
    /// Every class but these (those have settings of their own).
    AllBut(&'a [String]),
}

/// What erasing one session or one class's names changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Erased {
    pub exchanges: u64,
    pub usage_rows: u64,
    pub sessions: u64,
}

/// One usage row of an export.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct UsageExport {
    pub at_ms: i64,
    pub conversation_id: String,
    pub model: Option<String>,
    pub prompt_tokens: Option<i64>,
    pub completion_tokens: Option<i64>,
    pub outcome: String,
}

/// A session as `sessions` holds it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct SessionExport {
    pub session_id: String,
    pub class_id: String,
    pub display_name: Option<String>,
    pub started_at_ms: i64,
    pub last_seen_ms: i64,
}

impl Store {
    /// One number from a read-only query, for tests that look at what the tables hold.
    #[doc(hidden)]
    pub async fn scalar_for_tests(&self, sql: &str) -> i64 {
        with_pool!(&self.db, pool => {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(pool)
                .await
                .expect("a test's count query")
        })
    }

    /// Text values from a read-only query, for tests.
    #[doc(hidden)]
    pub async fn scalar_list_for_tests(&self, sql: &str) -> Vec<String> {
        with_pool!(&self.db, pool => {
            sqlx::query_scalar::<_, String>(sql)
                .fetch_all(pool)
                .await
                .expect("a test's query")
        })
    }

    /// On SQLite, writes the write-ahead log back into the database file and empties it,
    /// so erased text is not left in the log either. Best effort (a reader may hold it).
    pub async fn flush_erased(&self) {
        if let super::Db::Sqlite(pool) = &self.db
            && let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(pool)
                .await
        {
            tracing::warn!(error = %e, "could not checkpoint the database after an erasure");
        }
    }

    /// Deletes at most `batch` rows of `kind` older than `before_ms` in `classes`; returns
    /// how many went (fewer than `batch`: nothing older is left). One short statement per
    /// table, so chat's writes wait for a batch at most.
    pub async fn delete_aged(
        &self,
        kind: Aged,
        classes: Classes<'_>,
        before_ms: i64,
        batch: i64,
    ) -> sqlx::Result<u64> {
        let mut n = 0;
        for (table, key, time) in kind.tables() {
            with_pool!(&self.db, pool => {
                let mut q = sqlx::QueryBuilder::new(format!(
                    "DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {table} WHERE {time} < "
                ));
                q.push_bind(before_ms);
                match classes {
                    Classes::One(c) => {
                        q.push(" AND class_id = ");
                        q.push_bind(c.to_owned());
                    }
                    Classes::AllBut(list) if !list.is_empty() => {
                        q.push(" AND class_id NOT IN (");
                        let mut sep = q.separated(", ");
                        for c in list {
                            sep.push_bind(c.clone());
                        }
                        q.push(")");
                    }
                    Classes::AllBut(_) => {}
                }
                q.push(" LIMIT ");
                q.push_bind(batch);
                q.push(")");
                n += q.build().execute(pool).await?.rows_affected();
            });
        }
        Ok(n)
    }

    /// Runs `f` holding housekeeping's advisory lock on PostgreSQL (so one replica at a
    /// time does it, and not while another replica's housekeeping runs); `None` when another
    /// replica holds it. On SQLite, simply runs `f`.
    pub async fn with_housekeeping_lock<T, F, Fut>(&self, f: F) -> sqlx::Result<Option<T>>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = sqlx::Result<T>>,
    {
        let super::Db::Postgres(pool) = &self.db else {
            return f().await.map(Some);
        };
        let mut conn = pool.acquire().await?;
        let mine: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(super::sync::HOUSEKEEPING_LOCK)
            .fetch_one(&mut *conn)
            .await?;
        if !mine {
            return Ok(None);
        }
        let out = f().await;
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(super::sync::HOUSEKEEPING_LOCK)
            .execute(&mut *conn)
            .await?;
        out.map(Some)
    }

    /// A session's sign-in row, if it is still held.
    pub async fn session_export(&self, session_id: &str) -> sqlx::Result<Option<SessionExport>> {
        with_pool!(&self.db, pool => {
            sqlx::query_as(
                "SELECT session_id, class_id, display_name, started_at_ms, last_seen_ms FROM sessions WHERE session_id = $1",
            )
            .bind(session_id)
            .fetch_optional(pool)
            .await
        })
    }

    /// A session's usage rows in a class, oldest first.
    pub async fn usage_export(
        &self,
        class_id: &str,
        session_id: &str,
    ) -> sqlx::Result<Vec<UsageExport>> {
        with_pool!(&self.db, pool => {
            sqlx::query_as(
                "SELECT at_ms, conversation_id, model, CAST(prompt_tokens AS BIGINT) AS prompt_tokens,
                        CAST(completion_tokens AS BIGINT) AS completion_tokens, outcome
                   FROM usage_log WHERE class_id = $1 AND session_id = $2 ORDER BY at_ms, id",
            )
            .bind(class_id)
            .bind(session_id)
            .fetch_all(pool)
            .await
        })
    }

    /// Erases one session of a class: its stored exchanges go; its usage rows (and per-session
    /// totals, and access-log lines) are kept under `anonymous` with no name, so the class's
    /// totals stay; its sign-in row goes. One transaction.
    pub async fn erase_session(
        &self,
        class_id: &str,
        session_id: &str,
        anonymous: &str,
        a: Audit<'_>,
    ) -> sqlx::Result<Erased> {
        with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let exchanges = sqlx::query(
                "DELETE FROM conversation_exchanges WHERE class_id = $1 AND session_id = $2",
            )
            .bind(class_id)
            .bind(session_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let usage_rows = sqlx::query(
                "UPDATE usage_log SET session_id = $3, display_name = NULL, conversation_id = 'erased'
                  WHERE class_id = $1 AND session_id = $2",
            )
            .bind(class_id)
            .bind(session_id)
            .bind(anonymous)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            for sql in [
                "UPDATE usage_by_session SET session_id = $3, display_name = NULL WHERE class_id = $1 AND session_id = $2",
                "UPDATE conversation_reads SET session_id = $3, display_name = NULL, conversation_id = 'erased'
                  WHERE class_id = $1 AND session_id = $2",
            ] {
                sqlx::query(sql)
                    .bind(class_id)
                    .bind(session_id)
                    .bind(anonymous)
                    .execute(&mut *tx)
                    .await?;
            }
            let sessions = sqlx::query("DELETE FROM sessions WHERE class_id = $1 AND session_id = $2")
                .bind(class_id)
                .bind(session_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            // Audited without the session's id or name: those are what was erased.
            audit_line(a, "erase_session", Some(class_id), format!(
                "erased one session: {exchanges} stored exchanges deleted, {usage_rows} usage rows kept without a name"
            ))
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(Erased { exchanges, usage_rows, sessions })
        })
    }

    /// What "end of term" would erase in a class: its stored exchanges, and the sessions and
    /// usage rows that carry a name.
    pub async fn end_of_term_preview(&self, class_id: &str) -> sqlx::Result<Erased> {
        with_pool!(&self.db, pool => {
            let count = |sql: &'static str| {
                sqlx::query_scalar::<_, i64>(sql).bind(class_id).fetch_one(pool)
            };
            Ok(Erased {
                exchanges: count("SELECT COUNT(*) FROM conversation_exchanges WHERE class_id = $1").await? as u64,
                usage_rows: count("SELECT COUNT(*) FROM usage_log WHERE class_id = $1 AND display_name IS NOT NULL").await? as u64,
                sessions: count("SELECT COUNT(*) FROM sessions WHERE class_id = $1 AND display_name IS NOT NULL").await? as u64,
            })
        })
    }

    /// "End of term": deletes a class's stored exchanges and every name its sessions, usage
    /// rows and access-log lines carry, in one transaction. Counts and totals stay.
    pub async fn end_of_term(&self, class_id: &str, a: Audit<'_>) -> sqlx::Result<Erased> {
        with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let exchanges = sqlx::query("DELETE FROM conversation_exchanges WHERE class_id = $1")
                .bind(class_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            let usage_rows = sqlx::query(
                "UPDATE usage_log SET display_name = NULL WHERE class_id = $1 AND display_name IS NOT NULL",
            )
            .bind(class_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let sessions = sqlx::query(
                "UPDATE sessions SET display_name = NULL WHERE class_id = $1 AND display_name IS NOT NULL",
            )
            .bind(class_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            for sql in [
                "UPDATE usage_by_session SET display_name = NULL WHERE class_id = $1",
                "UPDATE conversation_reads SET display_name = NULL WHERE class_id = $1",
            ] {
                sqlx::query(sql).bind(class_id).execute(&mut *tx).await?;
            }
            audit_line(a, "end_of_term", Some(class_id), format!(
                "end of term: {exchanges} stored exchanges deleted, names removed from {sessions} sessions and {usage_rows} usage rows"
            ))
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(Erased { exchanges, usage_rows, sessions })
        })
    }
}
