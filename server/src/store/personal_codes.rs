//! Personal codes (migration 0016): one per student of a class, stored as keyed digests,
//! and the sessions signed in with each, so that revoking or re-issuing a code can end them.

use super::teachers::{Audit, audit_line};
use super::{Store, with_pool};

/// A personal code as the dashboard lists it: never the code, only who it is for.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PersonalCodeRecord {
    pub id: String,
    pub class_id: String,
    pub name: String,
    pub created_ms: i64,
    pub issued_ms: i64,
    pub revoked_ms: Option<i64>,
}

/// A new code: its id, the student's name and the code's stored (digest) form.
#[derive(Debug, Clone)]
pub struct NewPersonalCode {
    pub id: String,
    pub name: String,
    pub digest: String,
}

const COLUMNS: &str = "id, class_id, name, created_ms, issued_ms, revoked_ms";

impl Store {
    /// Stores a class's new personal codes and their audit line, in one transaction.
    pub async fn create_personal_codes(
        &self,
        class_id: &str,
        codes: &[NewPersonalCode],
        audit: Audit<'_>,
    ) -> sqlx::Result<()> {
        with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            for c in codes {
                sqlx::query(
                    "INSERT INTO personal_codes (id, class_id, name, code_digest, created_ms, issued_ms)
                     VALUES ($1, $2, $3, $4, $5, $5)",
                )
                .bind(&c.id)
                .bind(class_id)
                .bind(&c.name)
                .bind(&c.digest)
                .bind(audit.now_ms)
                .execute(&mut *tx)
                .await?;
            }
            audit_line(
                audit,
                "personal_codes_created",
                Some(class_id),
                format!("{} personal codes", codes.len()),
            )
            .execute(&mut *tx)
            .await?;
            tx.commit().await
        })
    }

    /// A class's personal codes, by name.
    pub async fn personal_codes(&self, class_id: &str) -> sqlx::Result<Vec<PersonalCodeRecord>> {
        with_pool!(&self.db, pool => {
            sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM personal_codes WHERE class_id = $1 ORDER BY name, id"
            ))
            .bind(class_id)
            .fetch_all(pool)
            .await
        })
    }

    /// One personal code by id.
    pub async fn personal_code(&self, id: &str) -> sqlx::Result<Option<PersonalCodeRecord>> {
        with_pool!(&self.db, pool => {
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM personal_codes WHERE id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await
        })
    }

    /// The code in force whose stored form is one of `digests` (a code's form under the
    /// current and the previous AUTH_SECRET).
    pub async fn find_personal_code(
        &self,
        digests: &[String],
    ) -> sqlx::Result<Option<PersonalCodeRecord>> {
        let (Some(first), last) = (digests.first(), digests.last()) else {
            return Ok(None);
        };
        let last = last.unwrap_or(first);
        with_pool!(&self.db, pool => {
            sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM personal_codes
                 WHERE code_digest IN ($1, $2) AND revoked_ms IS NULL"
            ))
            .bind(first)
            .bind(last)
            .fetch_optional(pool)
            .await
        })
    }

    /// Revokes a code in force (with its audit line). `false`: no such code in force.
    pub async fn revoke_personal_code(&self, id: &str, audit: Audit<'_>) -> sqlx::Result<bool> {
        with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let r = sqlx::query(
                "UPDATE personal_codes SET revoked_ms = $2 WHERE id = $1 AND revoked_ms IS NULL
                 RETURNING class_id",
            )
            .bind(id)
            .bind(audit.now_ms)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = r else { return Ok(false) };
            let class_id: String = sqlx::Row::try_get(&row, 0)?;
            audit_line(audit, "personal_code_revoked", Some(&class_id), format!("code {id}"))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Gives a code (revoked or not) a new digest, in force again (with its audit line).
    /// `false`: no such code.
    pub async fn reissue_personal_code(
        &self,
        id: &str,
        digest: &str,
        audit: Audit<'_>,
    ) -> sqlx::Result<bool> {
        with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let r = sqlx::query(
                "UPDATE personal_codes SET code_digest = $2, issued_ms = $3, revoked_ms = NULL
                 WHERE id = $1 RETURNING class_id",
            )
            .bind(id)
            .bind(digest)
            .bind(audit.now_ms)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = r else { return Ok(false) };
            let class_id: String = sqlx::Row::try_get(&row, 0)?;
            audit_line(audit, "personal_code_reissued", Some(&class_id), format!("code {id}"))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Remembers that `session_id` signed in with the code `code_id`, until `ends_at` (Unix
    /// seconds); sessions already over are dropped on the way.
    pub async fn record_personal_code_session(
        &self,
        session_id: &str,
        code_id: &str,
        class_id: &str,
        ends_at: i64,
        now: i64,
    ) -> sqlx::Result<()> {
        with_pool!(&self.db, pool => {
            sqlx::query("DELETE FROM personal_code_sessions WHERE ends_at < $1")
                .bind(now)
                .execute(pool)
                .await?;
            sqlx::query(
                "INSERT INTO personal_code_sessions (session_id, code_id, class_id, ends_at)
                 VALUES ($1, $2, $3, $4) ON CONFLICT (session_id) DO NOTHING",
            )
            .bind(session_id)
            .bind(code_id)
            .bind(class_id)
            .bind(ends_at)
            .execute(pool)
            .await
            .map(|_| ())
        })
    }

    /// The sessions signed in with `code_id` that have not ended: (session, class, end).
    pub async fn personal_code_sessions(
        &self,
        code_id: &str,
        now: i64,
    ) -> sqlx::Result<Vec<(String, String, i64)>> {
        with_pool!(&self.db, pool => {
            sqlx::query_as(
                "SELECT session_id, class_id, ends_at FROM personal_code_sessions
                 WHERE code_id = $1 AND ends_at >= $2",
            )
            .bind(code_id)
            .bind(now)
            .fetch_all(pool)
            .await
        })
    }
}
