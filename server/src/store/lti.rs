//! LTI 1.3: registered platforms and their deployments, logins in flight, course bindings,
//! the LMS users and instructors seen (by digest only), and classchat's own signing keys.

use super::teachers::{Audit, audit_line};
use super::{Store, with_pool};

/// A registered platform (LMS), with the deployments that may launch classchat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformRecord {
    pub id: String,
    pub issuer: String,
    pub client_id: String,
    pub auth_url: String,
    pub jwks_url: String,
    pub token_url: Option<String>,
    pub created_ms: i64,
    pub deployments: Vec<String>,
}

#[derive(sqlx::FromRow)]
struct PlatformRow {
    id: String,
    issuer: String,
    client_id: String,
    auth_url: String,
    jwks_url: String,
    token_url: Option<String>,
    created_ms: i64,
}

#[derive(sqlx::FromRow)]
struct DeploymentRow {
    platform_id: String,
    deployment_id: String,
}

/// A login waiting for its launch.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StateRow {
    pub state_digest: String,
    pub nonce: String,
    pub platform_id: String,
    pub target_link_uri: String,
    pub deployment_id: Option<String>,
    pub expires_ms: i64,
}

/// One of classchat's signing keys, as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ToolKeyRow {
    pub kid: String,
    /// base64url(nonce ‖ ChaCha20-Poly1305 ciphertext of the PKCS#8 private key).
    pub sealed: String,
    /// The public key as a JWK (JSON).
    pub public_jwk: String,
    /// 1: the key that signs; NULL: an older one.
    pub current: Option<i64>,
    pub created_ms: i64,
}

const PLATFORM_COLUMNS: &str = "id, issuer, client_id, auth_url, jwks_url, token_url, created_ms";

impl Store {
    /// Registers a platform with its deployments. `false`: (issuer, client_id) is taken.
    pub async fn lti_create_platform(
        &self,
        p: &PlatformRecord,
        a: Audit<'_>,
    ) -> sqlx::Result<bool> {
        with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let done = sqlx::query(&format!(
                "INSERT INTO lti_platforms ({PLATFORM_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (issuer, client_id) DO NOTHING"
            ))
            .bind(&p.id)
            .bind(&p.issuer)
            .bind(&p.client_id)
            .bind(&p.auth_url)
            .bind(&p.jwks_url)
            .bind(&p.token_url)
            .bind(p.created_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if done == 0 {
                return Ok(false);
            }
            for d in &p.deployments {
                sqlx::query(
                    "INSERT INTO lti_deployments (platform_id, deployment_id) VALUES ($1, $2)
                     ON CONFLICT (platform_id, deployment_id) DO NOTHING",
                )
                .bind(&p.id)
                .bind(d)
                .execute(&mut *tx)
                .await?;
            }
            audit_line(a, "lti_register_platform", None, format!(
                "platform {} issuer {:?} client_id {:?}, {} deployment(s)",
                p.id, p.issuer, p.client_id, p.deployments.len()
            ))
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Replaces a platform's deployments. `false`: no such platform.
    pub async fn lti_set_deployments(
        &self,
        platform_id: &str,
        deployments: &[String],
        a: Audit<'_>,
    ) -> sqlx::Result<bool> {
        with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let exists: Option<String> = sqlx::query_scalar("SELECT id FROM lti_platforms WHERE id = $1")
                .bind(platform_id)
                .fetch_optional(&mut *tx)
                .await?;
            if exists.is_none() {
                return Ok(false);
            }
            sqlx::query("DELETE FROM lti_deployments WHERE platform_id = $1")
                .bind(platform_id)
                .execute(&mut *tx)
                .await?;
            for d in deployments {
                sqlx::query(
                    "INSERT INTO lti_deployments (platform_id, deployment_id) VALUES ($1, $2)
                     ON CONFLICT (platform_id, deployment_id) DO NOTHING",
                )
                .bind(platform_id)
                .bind(d)
                .execute(&mut *tx)
                .await?;
            }
            audit_line(a, "lti_set_deployments", None, format!(
                "platform {platform_id}: {} deployment(s)", deployments.len()
            ))
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Removes a platform, its deployments and its course bindings. `false`: no such platform.
    pub async fn lti_delete_platform(&self, platform_id: &str, a: Audit<'_>) -> sqlx::Result<bool> {
        with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let gone = sqlx::query("DELETE FROM lti_platforms WHERE id = $1")
                .bind(platform_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if gone == 0 {
                return Ok(false);
            }
            for table in ["lti_deployments", "lti_bindings", "lti_states", "lti_users"] {
                // `table` is one of the constants above, never input.
                sqlx::query(&format!("DELETE FROM {table} WHERE platform_id = $1"))
                    .bind(platform_id)
                    .execute(&mut *tx)
                    .await?;
            }
            audit_line(a, "lti_delete_platform", None, format!("platform {platform_id}"))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Every registered platform with its deployments, oldest first.
    pub async fn lti_platforms(&self) -> sqlx::Result<Vec<PlatformRecord>> {
        let (rows, deps): (Vec<PlatformRow>, Vec<DeploymentRow>) = with_pool!(&self.db, pool => {
            let rows = sqlx::query_as(&format!(
                "SELECT {PLATFORM_COLUMNS} FROM lti_platforms ORDER BY created_ms, id"
            ))
            .fetch_all(pool)
            .await?;
            let deps = sqlx::query_as(
                "SELECT platform_id, deployment_id FROM lti_deployments ORDER BY deployment_id",
            )
            .fetch_all(pool)
            .await?;
            (rows, deps)
        });
        Ok(rows
            .into_iter()
            .map(|r| PlatformRecord {
                deployments: deps
                    .iter()
                    .filter(|d| d.platform_id == r.id)
                    .map(|d| d.deployment_id.clone())
                    .collect(),
                id: r.id,
                issuer: r.issuer,
                client_id: r.client_id,
                auth_url: r.auth_url,
                jwks_url: r.jwks_url,
                token_url: r.token_url,
                created_ms: r.created_ms,
            })
            .collect())
    }

    /// Whether `deployment_id` may launch through `platform_id`.
    pub async fn lti_deployment_registered(
        &self,
        platform_id: &str,
        deployment_id: &str,
    ) -> sqlx::Result<bool> {
        let found: Option<String> = with_pool!(&self.db, pool => {
            sqlx::query_scalar(
                "SELECT deployment_id FROM lti_deployments WHERE platform_id = $1 AND deployment_id = $2",
            )
            .bind(platform_id)
            .bind(deployment_id)
            .fetch_optional(pool)
            .await
        })?;
        Ok(found.is_some())
    }

    /// Remembers a login until its launch (or its expiry); forgets expired ones.
    pub async fn lti_put_state(&self, s: &StateRow, now_ms: i64) -> sqlx::Result<()> {
        with_pool!(&self.db, pool => {
            sqlx::query("DELETE FROM lti_states WHERE expires_ms < $1")
                .bind(now_ms)
                .execute(pool)
                .await?;
            sqlx::query(
                "INSERT INTO lti_states (state_digest, nonce, platform_id, target_link_uri, deployment_id, expires_ms)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&s.state_digest)
            .bind(&s.nonce)
            .bind(&s.platform_id)
            .bind(&s.target_link_uri)
            .bind(&s.deployment_id)
            .bind(s.expires_ms)
            .execute(pool)
            .await
            .map(|_| ())
        })
    }

    /// Takes a login for its launch, atomically: a second take of the same state (a replay,
    /// on any replica) finds nothing. An expired login is taken and refused as `None`.
    pub async fn lti_take_state(
        &self,
        state_digest: &str,
        now_ms: i64,
    ) -> sqlx::Result<Option<StateRow>> {
        let row: Option<StateRow> = with_pool!(&self.db, pool => {
            sqlx::query_as(
                "DELETE FROM lti_states WHERE state_digest = $1
                 RETURNING state_digest, nonce, platform_id, target_link_uri, deployment_id, expires_ms",
            )
            .bind(state_digest)
            .fetch_optional(pool)
            .await
        })?;
        Ok(row.filter(|r| r.expires_ms >= now_ms))
    }

    /// The class a course is bound to.
    pub async fn lti_binding(
        &self,
        platform_id: &str,
        deployment_id: &str,
        context_id: &str,
    ) -> sqlx::Result<Option<String>> {
        with_pool!(&self.db, pool => {
            sqlx::query_scalar(
                "SELECT class_id FROM lti_bindings
                 WHERE platform_id = $1 AND deployment_id = $2 AND context_id = $3",
            )
            .bind(platform_id)
            .bind(deployment_id)
            .bind(context_id)
            .fetch_optional(pool)
            .await
        })
    }

    /// Binds a course to a class (replacing an earlier binding) and records the instructor
    /// who chose it, with its audit line.
    #[allow(clippy::too_many_arguments)]
    pub async fn lti_bind(
        &self,
        platform_id: &str,
        deployment_id: &str,
        context_id: &str,
        class_id: &str,
        instructor_digest: &str,
        a: Audit<'_>,
    ) -> sqlx::Result<()> {
        with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO lti_bindings (platform_id, deployment_id, context_id, class_id, created_ms)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (platform_id, deployment_id, context_id) DO UPDATE SET
                   class_id = excluded.class_id, created_ms = excluded.created_ms",
            )
            .bind(platform_id)
            .bind(deployment_id)
            .bind(context_id)
            .bind(class_id)
            .bind(a.now_ms)
            .execute(&mut *tx)
            .await?;
            upsert_instructor(class_id, instructor_digest, a.now_ms)
                .execute(&mut *tx)
                .await?;
            audit_line(a, "lti_bind", Some(class_id), format!(
                "platform {platform_id} deployment {deployment_id:?}: a course bound by Deep Linking"
            ))
            .execute(&mut *tx)
            .await?;
            tx.commit().await
        })
    }

    /// Notes an LMS user's launch (first and last time).
    pub async fn lti_seen_user(
        &self,
        user_digest: &str,
        platform_id: &str,
        now_ms: i64,
    ) -> sqlx::Result<()> {
        with_pool!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO lti_users (user_digest, platform_id, first_ms, last_ms) VALUES ($1, $2, $3, $3)
                 ON CONFLICT (user_digest) DO UPDATE SET last_ms = excluded.last_ms",
            )
            .bind(user_digest)
            .bind(platform_id)
            .bind(now_ms)
            .execute(pool)
            .await
            .map(|_| ())
        })
    }

    /// Notes an instructor's launch into a bound class.
    pub async fn lti_seen_instructor(
        &self,
        class_id: &str,
        user_digest: &str,
        now_ms: i64,
    ) -> sqlx::Result<()> {
        with_pool!(&self.db, pool => {
            upsert_instructor(class_id, user_digest, now_ms)
                .execute(pool)
                .await
                .map(|_| ())
        })
    }

    /// The classes an LMS instructor has taught through LTI (Deep Linking's choices).
    pub async fn lti_instructor_classes(&self, user_digest: &str) -> sqlx::Result<Vec<String>> {
        with_pool!(&self.db, pool => {
            sqlx::query_scalar(
                "SELECT class_id FROM lti_instructors WHERE user_digest = $1 ORDER BY last_ms DESC",
            )
            .bind(user_digest)
            .fetch_all(pool)
            .await
        })
    }

    /// Rows counted per LTI table, for tests and the admin page: platforms, bindings,
    /// users, instructors.
    pub async fn lti_counts(&self) -> sqlx::Result<(i64, i64, i64, i64)> {
        with_pool!(&self.db, pool => {
            let mut n = [0i64; 4];
            for (i, table) in ["lti_platforms", "lti_bindings", "lti_users", "lti_instructors"].iter().enumerate() {
                // `table` is one of the constants above, never input.
                n[i] = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
                    .fetch_one(pool)
                    .await?;
            }
            Ok((n[0], n[1], n[2], n[3]))
        })
    }

    /// classchat's signing keys: the current one first, then the others newest first.
    pub async fn lti_tool_keys(&self) -> sqlx::Result<Vec<ToolKeyRow>> {
        with_pool!(&self.db, pool => {
            sqlx::query_as(
                "SELECT kid, sealed, public_jwk, current, created_ms FROM lti_tool_keys
                 ORDER BY CASE WHEN current IS NULL THEN 1 ELSE 0 END, created_ms DESC",
            )
            .fetch_all(pool)
            .await
        })
    }

    /// Stores a new signing key. `replace`: it becomes the current key and the old current
    /// one is kept as an older key (rotation); otherwise it is stored only when there is no
    /// current key yet (first use; a replica that lost the race stores nothing).
    pub async fn lti_add_tool_key(&self, k: &ToolKeyRow, replace: bool) -> sqlx::Result<()> {
        with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            if replace {
                sqlx::query("UPDATE lti_tool_keys SET current = NULL WHERE current = 1")
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(
                "INSERT INTO lti_tool_keys (kid, sealed, public_jwk, current, created_ms)
                 VALUES ($1, $2, $3, 1, $4) ON CONFLICT DO NOTHING",
            )
            .bind(&k.kid)
            .bind(&k.sealed)
            .bind(&k.public_jwk)
            .bind(k.created_ms)
            .execute(&mut *tx)
            .await?;
            tx.commit().await
        })
    }
}

/// What an instructor's launch made of them: their teacher account and whether it is
/// enabled (an administrator may have disabled it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstructorMember {
    pub teacher_id: String,
    pub enabled: bool,
}

impl Store {
    /// Makes an LMS instructor a member of `class_id` with `role`: their teacher account
    /// (made now, keyed by `user_digest`, if this is their first launch, with `new_id`,
    /// `placeholder_email` and `name`) joins the class unless already a member (a role an
    /// administrator or owner gave is kept), and `lti_instructors` points at the account.
    /// Replicas racing on a first launch agree on one account (the digest's row decides).
    #[allow(clippy::too_many_arguments)]
    pub async fn lti_instructor_member(
        &self,
        class_id: &str,
        user_digest: &str,
        new_id: &str,
        placeholder_email: &str,
        name: &str,
        role: &str,
        a: Audit<'_>,
    ) -> sqlx::Result<InstructorMember> {
        with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO lti_teachers (user_digest, teacher_id, created_ms) VALUES ($1, $2, $3)
                 ON CONFLICT (user_digest) DO NOTHING",
            )
            .bind(user_digest)
            .bind(new_id)
            .bind(a.now_ms)
            .execute(&mut *tx)
            .await?;
            let teacher_id: String =
                sqlx::query_scalar("SELECT teacher_id FROM lti_teachers WHERE user_digest = $1")
                    .bind(user_digest)
                    .fetch_one(&mut *tx)
                    .await?;
            if teacher_id == new_id {
                sqlx::query(
                    "INSERT INTO teachers (id, email, name, password_hash, disabled, created_ms)
                     VALUES ($1, $2, $3, NULL, 0, $4)",
                )
                .bind(new_id)
                .bind(placeholder_email)
                .bind(name)
                .bind(a.now_ms)
                .execute(&mut *tx)
                .await?;
                audit_line(a, "lti_teacher_account", None, format!(
                    "teacher {new_id} made for an LMS instructor"
                ))
                .execute(&mut *tx)
                .await?;
            }
            let joined = sqlx::query(
                "INSERT INTO class_members (class_id, teacher_id, role, added_ms) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (class_id, teacher_id) DO NOTHING",
            )
            .bind(class_id)
            .bind(&teacher_id)
            .bind(role)
            .bind(a.now_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if joined > 0 {
                audit_line(a, "put_member", Some(class_id), format!(
                    "teacher {teacher_id} as {role} (LTI launch)"
                ))
                .execute(&mut *tx)
                .await?;
            }
            upsert_instructor(class_id, user_digest, a.now_ms)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "UPDATE lti_instructors SET teacher_id = $1 WHERE class_id = $2 AND user_digest = $3",
            )
            .bind(&teacher_id)
            .bind(class_id)
            .bind(user_digest)
            .execute(&mut *tx)
            .await?;
            let disabled: i64 = sqlx::query_scalar("SELECT disabled FROM teachers WHERE id = $1")
                .bind(&teacher_id)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(InstructorMember { teacher_id, enabled: disabled == 0 })
        })
    }

    /// Stores a single-use ticket (by digest) until `expires_ms`; forgets expired ones.
    pub async fn lti_put_ticket(
        &self,
        digest: &str,
        kind: &str,
        subject: &str,
        expires_ms: i64,
        now_ms: i64,
    ) -> sqlx::Result<()> {
        with_pool!(&self.db, pool => {
            sqlx::query("DELETE FROM lti_tickets WHERE expires_ms < $1")
                .bind(now_ms)
                .execute(pool)
                .await?;
            sqlx::query(
                "INSERT INTO lti_tickets (digest, kind, subject, expires_ms) VALUES ($1, $2, $3, $4)",
            )
            .bind(digest)
            .bind(kind)
            .bind(subject)
            .bind(expires_ms)
            .execute(pool)
            .await
            .map(|_| ())
        })
    }

    /// Takes a ticket of `kind`, atomically (a second take on any replica finds nothing);
    /// its subject if it was there and in date.
    pub async fn lti_take_ticket(
        &self,
        digest: &str,
        kind: &str,
        now_ms: i64,
    ) -> sqlx::Result<Option<String>> {
        let row: Option<(String, i64)> = with_pool!(&self.db, pool => {
            sqlx::query_as(
                "DELETE FROM lti_tickets WHERE digest = $1 AND kind = $2 RETURNING subject, expires_ms",
            )
            .bind(digest)
            .bind(kind)
            .fetch_optional(pool)
            .await
        })?;
        Ok(row.filter(|(_, exp)| *exp >= now_ms).map(|(s, _)| s))
    }

    /// Whether a ticket of `kind` is waiting (not taking it): the registration page checks
    /// before it talks to the platform, and takes it only once the platform said yes.
    pub async fn lti_ticket_waiting(
        &self,
        digest: &str,
        kind: &str,
        now_ms: i64,
    ) -> sqlx::Result<bool> {
        let n: Option<i64> = with_pool!(&self.db, pool => {
            sqlx::query_scalar(
                "SELECT expires_ms FROM lti_tickets WHERE digest = $1 AND kind = $2",
            )
            .bind(digest)
            .bind(kind)
            .fetch_optional(pool)
            .await
        })?;
        Ok(n.is_some_and(|exp| exp >= now_ms))
    }
}

fn upsert_instructor<'q, DB: sqlx::Database>(
    class_id: &'q str,
    user_digest: &'q str,
    now_ms: i64,
) -> sqlx::query::Query<'q, DB, DB::Arguments<'q>>
where
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    sqlx::query(
        "INSERT INTO lti_instructors (class_id, user_digest, teacher_id, last_ms) VALUES ($1, $2, NULL, $3)
         ON CONFLICT (class_id, user_digest) DO UPDATE SET last_ms = excluded.last_ms",
    )
    .bind(class_id)
    .bind(user_digest)
    .bind(now_ms)
}
