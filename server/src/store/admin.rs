//! The dashboard sign-in's shared state: wrong-password counts over all addresses and
//! signed-out sessions. Both live in the database so they hold on every replica.

use super::{Store, with_pool};

/// A sign-in attempt counted against the limit over all addresses (see
/// [`Store::admin_login_reserve`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginAttempt {
    /// This attempt's row: release it with [`Store::admin_login_release`] unless it failed.
    pub id: i64,
    /// Attempts in the window, this one and any still being checked included.
    pub in_window: i64,
    /// When the oldest of them was made (Unix ms): the limit lifts a period after it.
    pub oldest_ms: i64,
}

#[derive(sqlx::FromRow)]
struct WindowCount {
    n: i64,
    oldest: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct Id {
    id: i64,
}

impl Store {
    /// Counts a dashboard sign-in attempt before its password is checked, so parallel
    /// attempts (on this replica or another) see each other, and prunes rows from before
    /// `since_ms`. Written first and counted after, two racing attempts can both be
    /// refused but never both slip past the limit.
    pub async fn admin_login_reserve(
        &self,
        now_ms: i64,
        since_ms: i64,
    ) -> sqlx::Result<LoginAttempt> {
        with_pool!(&self.db, pool => {
            sqlx::query("DELETE FROM admin_login_failures WHERE at_ms < $1")
                .bind(since_ms)
                .execute(pool)
                .await?;
            let row: Id =
                sqlx::query_as("INSERT INTO admin_login_failures (at_ms) VALUES ($1) RETURNING id")
                    .bind(now_ms)
                    .fetch_one(pool)
                    .await?;
            let count: WindowCount = sqlx::query_as(
                "SELECT COUNT(*) AS n, MIN(at_ms) AS oldest FROM admin_login_failures WHERE at_ms >= $1",
            )
            .bind(since_ms)
            .fetch_one(pool)
            .await?;
            Ok(LoginAttempt {
                id: row.id,
                in_window: count.n,
                oldest_ms: count.oldest.unwrap_or(now_ms),
            })
        })
    }

    /// Takes back an attempt that was not a wrong password (right, or refused unchecked).
    pub async fn admin_login_release(&self, id: i64) -> sqlx::Result<()> {
        with_pool!(&self.db, pool => {
            sqlx::query("DELETE FROM admin_login_failures WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await
                .map(|_| ())
        })
    }

    /// Ends a dashboard session everywhere: its nonce is refused until `expires_ms`, after
    /// which the cookie is dead anyway (and older rows are pruned here).
    pub async fn admin_session_revoke(
        &self,
        nonce: &str,
        expires_ms: i64,
        now_ms: i64,
    ) -> sqlx::Result<()> {
        with_pool!(&self.db, pool => {
            sqlx::query("DELETE FROM admin_revoked_sessions WHERE expires_ms < $1")
                .bind(now_ms)
                .execute(pool)
                .await?;
            sqlx::query(
                "INSERT INTO admin_revoked_sessions (nonce, expires_ms) VALUES ($1, $2)
                 ON CONFLICT (nonce) DO NOTHING",
            )
            .bind(nonce)
            .bind(expires_ms)
            .execute(pool)
            .await
            .map(|_| ())
        })
    }

    /// Whether the dashboard session with this nonce was signed out (on any replica).
    pub async fn admin_session_revoked(&self, nonce: &str) -> sqlx::Result<bool> {
        with_pool!(&self.db, pool => {
            let n: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM admin_revoked_sessions WHERE nonce = $1",
            )
            .bind(nonce)
            .fetch_one(pool)
            .await?;
            Ok(n > 0)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = dir.path().join("t.db").display().to_string();
        (Store::connect(&url).await.expect("store"), dir)
    }

    #[tokio::test]
    async fn attempts_count_in_the_window_and_release_and_prune() {
        let (s, _dir) = store().await;
        let a = s.admin_login_reserve(1_000, 0).await.unwrap();
        assert_eq!((a.in_window, a.oldest_ms), (1, 1_000));
        let b = s.admin_login_reserve(2_000, 0).await.unwrap();
        assert_eq!((b.in_window, b.oldest_ms), (2, 1_000));
        s.admin_login_release(b.id).await.unwrap();
        let c = s.admin_login_reserve(3_000, 0).await.unwrap();
        assert_eq!(c.in_window, 2, "a released attempt no longer counts");
        // A window starting after the first attempt prunes it.
        let d = s.admin_login_reserve(4_000, 1_500).await.unwrap();
        assert_eq!((d.in_window, d.oldest_ms), (2, 3_000));
        let e = s.admin_login_reserve(5_000, 0).await.unwrap();
        assert_eq!(e.in_window, 3, "the pruned row is gone for good");
    }

    #[tokio::test]
    async fn revoked_sessions_are_remembered_until_their_expiry() {
        let (s, _dir) = store().await;
        assert!(!s.admin_session_revoked("n1").await.unwrap());
        s.admin_session_revoke("n1", 10_000, 1_000).await.unwrap();
        s.admin_session_revoke("n1", 10_000, 1_000).await.unwrap();
        assert!(s.admin_session_revoked("n1").await.unwrap());
        assert!(!s.admin_session_revoked("n2").await.unwrap());
        s.admin_session_revoke("n2", 30_000, 20_000).await.unwrap();
        assert!(
            !s.admin_session_revoked("n1").await.unwrap(),
            "pruned once its cookie has expired"
        );
        assert!(s.admin_session_revoked("n2").await.unwrap());
    }
}
