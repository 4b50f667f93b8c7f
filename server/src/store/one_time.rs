//! Secrets the dashboard shows once, after a redirect (see migration 0013): stored sealed,
//! looked up by the digest of the ticket the redirect carries, deleted when taken. Any
//! replica can take what another put.

use super::{Store, with_pool};

/// One sealed secret waiting to be shown.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SealedSecret {
    pub kind: String,
    pub subject: String,
    pub sealed: String,
}

impl Store {
    /// Keeps a sealed secret until `expires_ms`; expired ones are dropped on the way.
    #[allow(clippy::too_many_arguments)]
    pub async fn put_one_time(
        &self,
        ticket_digest: &str,
        binding: &str,
        kind: &str,
        subject: &str,
        sealed: &str,
        expires_ms: i64,
        now_ms: i64,
    ) -> sqlx::Result<()> {
        with_pool!(&self.db, pool => {
            sqlx::query("DELETE FROM one_time_secrets WHERE expires_ms <= $1")
                .bind(now_ms)
                .execute(pool)
                .await?;
            sqlx::query(
                "INSERT INTO one_time_secrets (ticket_digest, binding, kind, subject, sealed, expires_ms)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(ticket_digest)
            .bind(binding)
            .bind(kind)
            .bind(subject)
            .bind(sealed)
            .bind(expires_ms)
            .execute(pool)
            .await
            .map(|_| ())
        })
    }

    /// Takes (and deletes) the secret behind a ticket, if it is there, in date and was made
    /// for `binding`. Two concurrent takes: one gets it.
    pub async fn take_one_time(
        &self,
        ticket_digest: &str,
        binding: &str,
        now_ms: i64,
    ) -> sqlx::Result<Option<SealedSecret>> {
        with_pool!(&self.db, pool => {
            sqlx::query_as(
                "DELETE FROM one_time_secrets
                 WHERE ticket_digest = $1 AND binding = $2 AND expires_ms > $3
                 RETURNING kind, subject, sealed",
            )
            .bind(ticket_digest)
            .bind(binding)
            .bind(now_ms)
            .fetch_optional(pool)
            .await
        })
    }
}
