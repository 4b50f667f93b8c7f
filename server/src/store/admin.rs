//! The dashboard sign-in's shared state: wrong passwords (by account, address key and known
//! browser), each account's last sign-ins, and signed-out sessions. All of it lives in the
//! database so it holds on every replica.

use super::{Store, with_pool};

/// Who a sign-in attempt comes from and is for.
#[derive(Debug, Clone, Copy)]
pub struct LoginSource<'a> {
    /// The account tried (the one password's account is `admin`).
    pub account: &'a str,
    /// The client's address key, as student sign-in counts it (IPv4, or the IPv6 /64).
    pub address: &'a str,
    /// A browser that signed in to this account before: its device cookie's nonce.
    pub device: Option<&'a str>,
}

/// From when (Unix ms) each budget counts, and before when rows are pruned.
#[derive(Debug, Clone, Copy)]
pub struct LoginWindows {
    pub address_since_ms: i64,
    pub account_since_ms: i64,
    pub device_since_ms: i64,
    pub keep_since_ms: i64,
}

/// Attempts in one budget's window, this one and any still being checked included.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InWindow {
    pub n: i64,
    /// When the oldest of them was made (Unix ms): the budget lifts a period after it.
    pub oldest_ms: i64,
}

/// A sign-in attempt counted before its password is checked (see
/// [`Store::admin_login_reserve`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginAttempt {
    /// This attempt's row: release it with [`Store::admin_login_release`] unless it failed.
    pub id: i64,
    /// From browsers not known to the account, from this address key.
    pub address: InWindow,
    /// From browsers not known to the account, on this account.
    pub account: InWindow,
    /// From this known browser (zero when the attempt has none).
    pub device: InWindow,
}

/// Wrong passwords on an account since its previous sign-in, for the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailedSince {
    pub count: i64,
    /// The last of them (Unix ms).
    pub last_ms: Option<i64>,
    /// The previous sign-in (Unix ms); `None` before there was one.
    pub since_ms: Option<i64>,
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

#[derive(sqlx::FromRow)]
struct Visits {
    previous_ms: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct Failed {
    n: i64,
    last: Option<i64>,
}

impl Store {
    /// Counts a dashboard sign-in attempt before its password is checked, so parallel
    /// attempts (on this replica or another) see each other, and prunes rows older than
    /// `keep_since_ms`. Written first and counted after, two racing attempts can both be
    /// refused but never both slip past a limit.
    pub async fn admin_login_reserve(
        &self,
        from: &LoginSource<'_>,
        now_ms: i64,
        w: &LoginWindows,
    ) -> sqlx::Result<LoginAttempt> {
        let device = from.device.unwrap_or("");
        with_pool!(&self.db, pool => {
            sqlx::query("DELETE FROM admin_login_failures WHERE at_ms < $1")
                .bind(w.keep_since_ms)
                .execute(pool)
                .await?;
            let row: Id = sqlx::query_as(
                "INSERT INTO admin_login_failures (at_ms, account, address, device)
                 VALUES ($1, $2, $3, $4) RETURNING id",
            )
            .bind(now_ms)
            .bind(from.account)
            .bind(from.address)
            .bind(device)
            .fetch_one(pool)
            .await?;
            let count = |sql: &'static str, key: String, since: i64| async move {
                let c: WindowCount = sqlx::query_as(sql)
                    .bind(key)
                    .bind(since)
                    .fetch_one(pool)
                    .await?;
                Ok::<_, sqlx::Error>(InWindow {
                    n: c.n,
                    oldest_ms: c.oldest.unwrap_or(now_ms),
                })
            };
            let address = count(
                "SELECT COUNT(*) AS n, MIN(at_ms) AS oldest FROM admin_login_failures
                 WHERE address = $1 AND device = '' AND at_ms >= $2",
                from.address.to_owned(),
                w.address_since_ms,
            )
            .await?;
            let account = count(
                "SELECT COUNT(*) AS n, MIN(at_ms) AS oldest FROM admin_login_failures
                 WHERE account = $1 AND device = '' AND at_ms >= $2",
                from.account.to_owned(),
                w.account_since_ms,
            )
            .await?;
            let device = match from.device {
                Some(d) => count(
                    "SELECT COUNT(*) AS n, MIN(at_ms) AS oldest FROM admin_login_failures
                     WHERE device = $1 AND at_ms >= $2",
                    d.to_owned(),
                    w.device_since_ms,
                )
                .await?,
                None => InWindow::default(),
            };
            Ok(LoginAttempt {
                id: row.id,
                address,
                account,
                device,
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

    /// Notes a successful sign-in to `account`: the one before becomes "your last visit".
    pub async fn admin_signed_in(&self, account: &str, now_ms: i64) -> sqlx::Result<()> {
        with_pool!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO admin_sign_ins (account, last_ms, previous_ms) VALUES ($1, $2, NULL)
                 ON CONFLICT (account) DO UPDATE
                 SET previous_ms = admin_sign_ins.last_ms, last_ms = excluded.last_ms",
            )
            .bind(account)
            .bind(now_ms)
            .execute(pool)
            .await
            .map(|_| ())
        })
    }

    /// Wrong passwords tried on `account` since its previous sign-in (all of them kept, up
    /// to 30 days, when there was none).
    pub async fn admin_failed_since_last_visit(&self, account: &str) -> sqlx::Result<FailedSince> {
        with_pool!(&self.db, pool => {
            let v: Option<Visits> =
                sqlx::query_as("SELECT previous_ms FROM admin_sign_ins WHERE account = $1")
                    .bind(account)
                    .fetch_optional(pool)
                    .await?;
            let since_ms = v.and_then(|v| v.previous_ms);
            let f: Failed = sqlx::query_as(
                "SELECT COUNT(*) AS n, MAX(at_ms) AS last FROM admin_login_failures
                 WHERE account = $1 AND at_ms >= $2",
            )
            .bind(account)
            .bind(since_ms.unwrap_or(i64::MIN))
            .fetch_one(pool)
            .await?;
            Ok(FailedSince {
                count: f.n,
                last_ms: f.last,
                since_ms,
            })
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

    fn from<'a>(address: &'a str, device: Option<&'a str>) -> LoginSource<'a> {
        LoginSource {
            account: "admin",
            address,
            device,
        }
    }

    fn since(ms: i64) -> LoginWindows {
        LoginWindows {
            address_since_ms: ms,
            account_since_ms: ms,
            device_since_ms: ms,
            keep_since_ms: 0,
        }
    }

    #[tokio::test]
    async fn attempts_count_per_address_account_and_device_and_release_and_prune() {
        let (s, _dir) = store().await;
        let a = s
            .admin_login_reserve(&from("10.0.0.1", None), 1_000, &since(0))
            .await
            .unwrap();
        assert_eq!((a.account.n, a.account.oldest_ms), (1, 1_000));
        assert_eq!((a.address.n, a.device.n), (1, 0));
        let b = s
            .admin_login_reserve(&from("10.0.0.2", None), 2_000, &since(0))
            .await
            .unwrap();
        assert_eq!((b.account.n, b.account.oldest_ms), (2, 1_000));
        assert_eq!(b.address.n, 1, "another address key");
        // A known browser counts on its own, not against the account or its address.
        let d = s
            .admin_login_reserve(&from("10.0.0.1", Some("dev-1")), 2_500, &since(0))
            .await
            .unwrap();
        assert_eq!((d.device.n, d.account.n, d.address.n), (1, 2, 1));
        s.admin_login_release(b.id).await.unwrap();
        let c = s
            .admin_login_reserve(&from("10.0.0.1", None), 3_000, &since(0))
            .await
            .unwrap();
        assert_eq!(c.account.n, 2, "a released attempt no longer counts");
        assert_eq!(c.address.n, 2);
        // A window starting after the first attempt leaves it out of the count...
        let e = s
            .admin_login_reserve(&from("10.0.0.1", None), 4_000, &since(1_500))
            .await
            .unwrap();
        assert_eq!((e.account.n, e.account.oldest_ms), (2, 3_000));
        // ...and rows older than what is kept are pruned for good.
        let w = LoginWindows {
            keep_since_ms: 1_500,
            ..since(0)
        };
        let f = s
            .admin_login_reserve(&from("10.0.0.1", None), 5_000, &w)
            .await
            .unwrap();
        assert_eq!(f.account.n, 3, "the pruned row is gone: {f:?}");
    }

    #[tokio::test]
    async fn failures_since_the_previous_sign_in_are_counted() {
        let (s, _dir) = store().await;
        let none = s.admin_failed_since_last_visit("admin").await.unwrap();
        assert_eq!((none.count, none.since_ms), (0, None));
        s.admin_signed_in("admin", 1_000).await.unwrap();
        for at in [2_000, 3_000] {
            s.admin_login_reserve(&from("10.0.0.9", None), at, &since(0))
                .await
                .unwrap();
        }
        s.admin_signed_in("admin", 4_000).await.unwrap();
        let f = s.admin_failed_since_last_visit("admin").await.unwrap();
        assert_eq!(
            (f.count, f.last_ms, f.since_ms),
            (2, Some(3_000), Some(1_000))
        );
        s.admin_signed_in("admin", 5_000).await.unwrap();
        let f = s.admin_failed_since_last_visit("admin").await.unwrap();
        assert_eq!(
            (f.count, f.since_ms),
            (0, Some(4_000)),
            "seen on the last visit"
        );
        let other = s.admin_failed_since_last_visit("teacher-2").await.unwrap();
        assert_eq!(other.count, 0);
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
