//! Stored conversations: sealed exchanges of classes whose visibility keeps them, and the
//! log of who opened which (see `crate::conversations` for what is kept and when).

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
