//! Teachers, invitations, personal access tokens, classes made in the store, their members
//! and activities. Every change writes its audit line in the same transaction, so a change
//! is never without its line (nor a line without its change). Secrets arrive here only as
//! digests.

use super::{Store, with_pool};
use crate::config::access_windows::PeriodSpec;
use crate::teachers::Role;

/// Who made a change, from where, and when: the audit line's columns besides the action.
#[derive(Debug, Clone, Copy)]
pub struct Audit<'a> {
    pub actor: &'a str,
    /// The client's address, when there is one.
    pub address: Option<&'a str>,
    pub now_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TeacherRecord {
    pub id: String,
    pub email: String,
    pub name: String,
    /// 0/1.
    pub disabled: i64,
    /// 0/1: whether the invitation was accepted (a password is set).
    pub active: i64,
    pub created_ms: i64,
}

/// What signing in with a password needs.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TeacherLogin {
    pub id: String,
    pub email: String,
    pub password_hash: Option<String>,
    pub disabled: i64,
}

/// The owner of a token in force.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TokenOwner {
    pub id: String,
    /// `None`: an administrator's token.
    pub teacher_id: Option<String>,
    pub email: Option<String>,
    /// 0/1: the teacher is disabled (always 0 for an administrator's token).
    pub disabled: i64,
}

/// A token as lists show it: never the token, only its first characters.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TokenRecord {
    pub id: String,
    pub prefix: String,
    pub name: String,
    pub created_ms: i64,
    pub last_used_ms: Option<i64>,
}

/// How accepting an invitation went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// The teacher's password is set; the invitation is used up.
    Done {
        teacher_id: String,
    },
    Unknown,
    Used,
    Expired,
}

/// A class made in the store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClassRecord {
    pub id: String,
    pub title: String,
    pub greeting: Option<String>,
    pub system_prompt: Option<String>,
    pub starters: Vec<String>,
    pub model: Option<String>,
    /// An IANA time zone name.
    pub time_zone: Option<String>,
    pub messages_per_minute: Option<i64>,
    pub class_messages_per_minute: Option<i64>,
    pub daily_quota: Option<i64>,
    pub token_ttl_secs: Option<i64>,
    /// Who can read the class's conversations.
    pub visibility: classchat_shared::Visibility,
    /// Weekly access windows (checked by [`crate::config::access_windows`]); empty: none.
    pub windows: Vec<PeriodSpec>,
    /// The course's first and last days (YYYY-MM-DD, in the class's time zone).
    pub course_start: Option<String>,
    pub course_end: Option<String>,
    /// Days its conversations, usage rows and sessions are kept (0: until erased); `None`:
    /// the server's (`KEEP_*_DAYS`).
    pub keep_conversations_days: Option<i64>,
    pub keep_usage_days: Option<i64>,
    pub keep_sessions_days: Option<i64>,
    pub created_ms: i64,
    pub updated_ms: i64,
}

#[derive(sqlx::FromRow)]
struct ClassRow {
    id: String,
    title: String,
    greeting: Option<String>,
    system_prompt: Option<String>,
    starters: String,
    model: Option<String>,
    time_zone: Option<String>,
    messages_per_minute: Option<i64>,
    class_messages_per_minute: Option<i64>,
    daily_quota: Option<i64>,
    token_ttl_secs: Option<i64>,
    visibility: String,
    access_windows: String,
    course_start: Option<String>,
    course_end: Option<String>,
    keep_conversations_days: Option<i64>,
    keep_usage_days: Option<i64>,
    keep_sessions_days: Option<i64>,
    created_ms: i64,
    updated_ms: i64,
}

impl From<ClassRow> for ClassRecord {
    fn from(r: ClassRow) -> Self {
        let windows: Vec<PeriodSpec> = serde_json::from_str(&r.access_windows).unwrap_or_else(|e| {
            // Written only after being checked; a row changed by hand is reported and the
            // class stays open, as it was before windows existed.
            tracing::error!(class = %r.id, error = %e, "a class's access_windows column is not readable: ignored");
            Vec::new()
        });
        Self {
            id: r.id,
            title: r.title,
            greeting: r.greeting,
            system_prompt: r.system_prompt,
            starters: serde_json::from_str(&r.starters).unwrap_or_default(),
            model: r.model,
            time_zone: r.time_zone,
            messages_per_minute: r.messages_per_minute,
            class_messages_per_minute: r.class_messages_per_minute,
            daily_quota: r.daily_quota,
            token_ttl_secs: r.token_ttl_secs,
            // Only the three values are ever written; anything else reads as the default.
            visibility: classchat_shared::Visibility::parse(&r.visibility).unwrap_or_default(),
            windows,
            course_start: r.course_start,
            course_end: r.course_end,
            keep_conversations_days: r.keep_conversations_days,
            keep_usage_days: r.keep_usage_days,
            keep_sessions_days: r.keep_sessions_days,
            created_ms: r.created_ms,
            updated_ms: r.updated_ms,
        }
    }
}

const CLASS_COLUMNS: &str =
    "id, title, greeting, system_prompt, starters, model, time_zone, messages_per_minute,
     class_messages_per_minute, daily_quota, token_ttl_secs, access_windows, course_start, course_end,
     keep_conversations_days, keep_usage_days, keep_sessions_days, created_ms, updated_ms, visibility";

/// One of a class's activities. Its code is kept only as a keyed digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityRecord {
    pub id: String,
    pub class_id: String,
    pub title: String,
    pub greeting: Option<String>,
    pub system_prompt: Option<String>,
    /// `None`: the class's starters.
    pub starters: Option<Vec<String>>,
    pub model: Option<String>,
    pub code_digest: String,
    pub code_generation: i64,
    pub paused: bool,
    pub created_ms: i64,
    pub updated_ms: i64,
}

#[derive(sqlx::FromRow)]
struct ActivityRow {
    id: String,
    class_id: String,
    title: String,
    greeting: Option<String>,
    system_prompt: Option<String>,
    starters: Option<String>,
    model: Option<String>,
    code_digest: String,
    code_generation: i64,
    paused: i64,
    created_ms: i64,
    updated_ms: i64,
}

impl From<ActivityRow> for ActivityRecord {
    fn from(r: ActivityRow) -> Self {
        Self {
            id: r.id,
            class_id: r.class_id,
            title: r.title,
            greeting: r.greeting,
            system_prompt: r.system_prompt,
            starters: r.starters.and_then(|s| serde_json::from_str(&s).ok()),
            model: r.model,
            code_digest: r.code_digest,
            code_generation: r.code_generation,
            paused: r.paused != 0,
            created_ms: r.created_ms,
            updated_ms: r.updated_ms,
        }
    }
}

const ACTIVITY_COLUMNS: &str =
    "id, class_id, title, greeting, system_prompt, starters, model, code_digest,
     code_generation, paused, created_ms, updated_ms";

/// A class member as lists show it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MemberRecord {
    pub teacher_id: String,
    pub email: String,
    pub name: String,
    pub role: String,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditLine {
    pub id: i64,
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    pub class_id: Option<String>,
    pub detail: String,
    pub address: Option<String>,
}

/// A class's usage over a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct UsageTotals {
    pub messages: i64,
    pub tokens: i64,
    pub errors: i64,
}

/// One activity's share of a class's usage (`activity_id` `None`: the class's own code).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ActivityUsage {
    pub activity_id: Option<String>,
    pub messages: i64,
    pub tokens: i64,
    pub errors: i64,
}

/// The audit-line statement; the caller runs it inside the change's transaction.
pub(super) fn audit_line<'q, DB: sqlx::Database>(
    a: Audit<'q>,
    action: &'q str,
    class_id: Option<&'q str>,
    detail: String,
) -> sqlx::query::Query<'q, DB, DB::Arguments<'q>>
where
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    sqlx::query(
        "INSERT INTO admin_audit (at_ms, actor, action, class_id, detail, address)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(a.now_ms)
    .bind(a.actor)
    .bind(action)
    .bind(class_id)
    .bind(detail)
    .bind(a.address)
}

fn json(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

/// A statement with its arguments bound, on either backend.
type Statement<'q, DB> = sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>;

/// In one transaction on `$store`'s database: `$change`, then, if it touched a row,
/// `$line` (its audit line, see [`audit_line`]). Whether it touched one: when not, nothing
/// is written.
macro_rules! audited {
    ($store:expr, $change:expr, $line:expr $(,)?) => {
        with_pool!(&$store.db, pool => {
            let mut tx = pool.begin().await?;
            let touched = $change.execute(&mut *tx).await?.rows_affected() > 0;
            if touched {
                $line.execute(&mut *tx).await?;
                tx.commit().await?;
            }
            Ok::<bool, sqlx::Error>(touched)
        })
    };
}

/// Binds a class's settings, `title` to `keep_sessions_days` in [`CLASS_COLUMNS`]' order: the
/// same list for an insert and an update.
fn bind_class<'q, DB>(q: Statement<'q, DB>, c: &'q ClassRecord) -> Statement<'q, DB>
where
    DB: sqlx::Database,
    &'q String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q Option<String>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    q.bind(&c.title)
        .bind(&c.greeting)
        .bind(&c.system_prompt)
        .bind(json(&c.starters))
        .bind(&c.model)
        .bind(&c.time_zone)
        .bind(c.messages_per_minute)
        .bind(c.class_messages_per_minute)
        .bind(c.daily_quota)
        .bind(c.token_ttl_secs)
        .bind(windows_json(&c.windows))
        .bind(&c.course_start)
        .bind(&c.course_end)
        .bind(c.keep_conversations_days)
        .bind(c.keep_usage_days)
        .bind(c.keep_sessions_days)
}

fn windows_json(v: &[PeriodSpec]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

impl Store {
    /// A new teacher with a pending invitation. `false` when the email is taken.
    pub async fn invite_teacher(
        &self,
        id: &str,
        email: &str,
        name: &str,
        invitation_digest: &str,
        expires_ms: i64,
        a: Audit<'_>,
    ) -> sqlx::Result<bool> {
        with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let added = sqlx::query(
                "INSERT INTO teachers (id, email, name, password_hash, disabled, created_ms)
                 VALUES ($1, $2, $3, NULL, 0, $4) ON CONFLICT (email) DO NOTHING",
            )
            .bind(id)
            .bind(email)
            .bind(name)
            .bind(a.now_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if added == 0 {
                return Ok(false);
            }
            sqlx::query(
                "INSERT INTO invitations (digest, teacher_id, created_ms, expires_ms, used_ms)
                 VALUES ($1, $2, $3, $4, NULL)",
            )
            .bind(invitation_digest)
            .bind(id)
            .bind(a.now_ms)
            .bind(expires_ms)
            .execute(&mut *tx)
            .await?;
            audit_line(a, "invite_teacher", None, format!("teacher {id} ({email})"))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    pub async fn teachers(&self) -> sqlx::Result<Vec<TeacherRecord>> {
        with_pool!(&self.db, pool => {
            sqlx::query_as(
                "SELECT id, email, name, disabled,
                        CAST(CASE WHEN password_hash IS NULL THEN 0 ELSE 1 END AS BIGINT) AS active, created_ms
                 FROM teachers ORDER BY email",
            )
            .fetch_all(pool)
            .await
        })
    }

    pub async fn teacher(&self, id: &str) -> sqlx::Result<Option<TeacherRecord>> {
        with_pool!(&self.db, pool => {
            sqlx::query_as(
                "SELECT id, email, name, disabled,
                        CAST(CASE WHEN password_hash IS NULL THEN 0 ELSE 1 END AS BIGINT) AS active, created_ms
                 FROM teachers WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await
        })
    }

    /// Disables or enables a teacher; `false` if there is no such teacher. A disabled
    /// teacher's tokens stop at once: every token check reads this flag.
    pub async fn set_teacher_disabled(
        &self,
        id: &str,
        disabled: bool,
        a: Audit<'_>,
    ) -> sqlx::Result<bool> {
        let action = if disabled {
            "disable_teacher"
        } else {
            "enable_teacher"
        };
        audited!(
            self,
            sqlx::query("UPDATE teachers SET disabled = $1 WHERE id = $2")
                .bind(i64::from(disabled))
                .bind(id),
            audit_line(a, action, None, format!("teacher {id}")),
        )
    }

    /// Uses an invitation up and sets the teacher's password hash, if the invitation
    /// exists, is unused and has not expired. Two concurrent uses: one wins.
    pub async fn accept_invitation(
        &self,
        digest: &str,
        password_hash: &str,
        now_ms: i64,
        address: Option<&str>,
    ) -> sqlx::Result<Accepted> {
        #[derive(sqlx::FromRow)]
        struct Inv {
            teacher_id: String,
            expires_ms: i64,
            used_ms: Option<i64>,
            email: String,
        }
        with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let inv: Option<Inv> = sqlx::query_as(
                "SELECT i.teacher_id, i.expires_ms, i.used_ms, t.email FROM invitations i
                 JOIN teachers t ON t.id = i.teacher_id WHERE i.digest = $1",
            )
            .bind(digest)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(inv) = inv else { return Ok(Accepted::Unknown) };
            if inv.used_ms.is_some() {
                return Ok(Accepted::Used);
            }
            if inv.expires_ms <= now_ms {
                return Ok(Accepted::Expired);
            }
            let n = sqlx::query(
                "UPDATE invitations SET used_ms = $1 WHERE digest = $2 AND used_ms IS NULL",
            )
            .bind(now_ms)
            .bind(digest)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                return Ok(Accepted::Used);
            }
            sqlx::query("UPDATE teachers SET password_hash = $1 WHERE id = $2")
                .bind(password_hash)
                .bind(&inv.teacher_id)
                .execute(&mut *tx)
                .await?;
            let a = Audit { actor: &inv.email, address, now_ms };
            audit_line(a, "accept_invitation", None, format!("teacher {}", inv.teacher_id))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Accepted::Done { teacher_id: inv.teacher_id })
        })
    }

    pub async fn teacher_login(&self, email: &str) -> sqlx::Result<Option<TeacherLogin>> {
        with_pool!(&self.db, pool => {
            sqlx::query_as("SELECT id, email, password_hash, disabled FROM teachers WHERE email = $1")
                .bind(email)
                .fetch_optional(pool)
                .await
        })
    }

    /// Stores a new token by its digest (`teacher_id` `None`: an administrator's token).
    pub async fn create_token(
        &self,
        id: &str,
        digest: &str,
        prefix: &str,
        name: &str,
        teacher_id: Option<&str>,
        a: Audit<'_>,
    ) -> sqlx::Result<()> {
        audited!(
            self,
            sqlx::query(
                "INSERT INTO access_tokens (id, digest, prefix, name, teacher_id, created_ms, last_used_ms, revoked_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL)",
            )
            .bind(id)
            .bind(digest)
            .bind(prefix)
            .bind(name)
            .bind(teacher_id)
            .bind(a.now_ms),
            audit_line(a, "create_token", None, format!("token {id} ({name:?})")),
        )?;
        Ok(())
    }

    /// The owner of the token in force with this digest, noting its use (at most once a
    /// minute, so a busy script does not write on every call).
    pub async fn token_owner(&self, digest: &str, now_ms: i64) -> sqlx::Result<Option<TokenOwner>> {
        with_pool!(&self.db, pool => {
            let owner: Option<TokenOwner> = sqlx::query_as(
                "SELECT k.id, k.teacher_id, t.email, COALESCE(t.disabled, 0) AS disabled
                 FROM access_tokens k LEFT JOIN teachers t ON t.id = k.teacher_id
                 WHERE k.digest = $1 AND k.revoked_ms IS NULL",
            )
            .bind(digest)
            .fetch_optional(pool)
            .await?;
            if let Some(o) = &owner {
                sqlx::query(
                    "UPDATE access_tokens SET last_used_ms = $1
                     WHERE id = $2 AND (last_used_ms IS NULL OR last_used_ms < $3)",
                )
                .bind(now_ms)
                .bind(&o.id)
                .bind(now_ms - 60_000)
                .execute(pool)
                .await?;
            }
            Ok(owner)
        })
    }

    /// The tokens in force of a teacher (`None`: the administrator's).
    pub async fn tokens(&self, teacher_id: Option<&str>) -> sqlx::Result<Vec<TokenRecord>> {
        with_pool!(&self.db, pool => {
            sqlx::query_as(
                "SELECT id, prefix, name, created_ms, last_used_ms FROM access_tokens
                 WHERE revoked_ms IS NULL AND (teacher_id = $1 OR ($1 IS NULL AND teacher_id IS NULL))
                 ORDER BY created_ms, id",
            )
            .bind(teacher_id)
            .fetch_all(pool)
            .await
        })
    }

    /// Revokes a token of `teacher_id` (`None`: of the administrator); `false` if it has
    /// no such token in force.
    pub async fn revoke_token(
        &self,
        id: &str,
        teacher_id: Option<&str>,
        a: Audit<'_>,
    ) -> sqlx::Result<bool> {
        audited!(
            self,
            sqlx::query(
                "UPDATE access_tokens SET revoked_ms = $1 WHERE id = $2 AND revoked_ms IS NULL
                   AND (teacher_id = $3 OR ($3 IS NULL AND teacher_id IS NULL))",
            )
            .bind(a.now_ms)
            .bind(id)
            .bind(teacher_id),
            audit_line(a, "revoke_token", None, format!("token {id}")),
        )
    }

    /// A new class; `owner`, when given, becomes its owner.
    pub async fn create_class(
        &self,
        c: &ClassRecord,
        owner: Option<&str>,
        a: Audit<'_>,
    ) -> sqlx::Result<()> {
        with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let insert = format!(
                "INSERT INTO classes ({CLASS_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)"
            );
            bind_class(sqlx::query(&insert).bind(&c.id), c)
                .bind(c.created_ms)
                .bind(c.updated_ms)
                .bind(c.visibility.as_str())
                .execute(&mut *tx)
                .await?;
            if let Some(owner) = owner {
                sqlx::query(
                    "INSERT INTO class_members (class_id, teacher_id, role, added_ms) VALUES ($1, $2, 'owner', $3)",
                )
                .bind(&c.id)
                .bind(owner)
                .bind(a.now_ms)
                .execute(&mut *tx)
                .await?;
            }
            audit_line(a, "create_class", Some(&c.id), format!("title {:?}", c.title))
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        })
    }

    /// Writes a class's settings; `detail` names what changed (never a secret).
    pub async fn update_class(
        &self,
        c: &ClassRecord,
        detail: String,
        a: Audit<'_>,
    ) -> sqlx::Result<bool> {
        const UPDATE: &str =
            "UPDATE classes SET title = $2, greeting = $3, system_prompt = $4, starters = $5,
            model = $6, time_zone = $7, messages_per_minute = $8, class_messages_per_minute = $9,
            daily_quota = $10, token_ttl_secs = $11, access_windows = $12, course_start = $13,
            course_end = $14, keep_conversations_days = $15, keep_usage_days = $16,
            keep_sessions_days = $17, updated_ms = $18, visibility = $19 WHERE id = $1";
        audited!(
            self,
            bind_class(sqlx::query(UPDATE).bind(&c.id), c)
                .bind(a.now_ms)
                .bind(c.visibility.as_str()),
            audit_line(a, "update_class", Some(&c.id), detail),
        )
    }

    /// Deletes a class with its members and activities; `false` if there is none.
    pub async fn delete_class(&self, id: &str, a: Audit<'_>) -> sqlx::Result<bool> {
        with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let n = sqlx::query("DELETE FROM classes WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 0 {
                return Ok(false);
            }
            for sql in [
                "DELETE FROM class_members WHERE class_id = $1",
                "DELETE FROM activities WHERE class_id = $1",
            ] {
                sqlx::query(sql).bind(id).execute(&mut *tx).await?;
            }
            audit_line(a, "delete_class", Some(id), format!("class {id}"))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    pub async fn class(&self, id: &str) -> sqlx::Result<Option<ClassRecord>> {
        let row: Option<ClassRow> = with_pool!(&self.db, pool => {
            sqlx::query_as(&format!("SELECT {CLASS_COLUMNS} FROM classes WHERE id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await
        })?;
        Ok(row.map(Into::into))
    }

    /// The classes a teacher is a member of (`None`: every class, for the administrator).
    pub async fn classes_of(&self, teacher_id: Option<&str>) -> sqlx::Result<Vec<ClassRecord>> {
        let rows: Vec<ClassRow> = with_pool!(&self.db, pool => {
            sqlx::query_as(&format!(
                "SELECT {CLASS_COLUMNS} FROM classes c WHERE $1 IS NULL
                   OR EXISTS (SELECT 1 FROM class_members m WHERE m.class_id = c.id AND m.teacher_id = $1)
                 ORDER BY created_ms, id"
            ))
            .bind(teacher_id)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// A teacher's role in a class, if a member.
    pub async fn member_role(
        &self,
        class_id: &str,
        teacher_id: &str,
    ) -> sqlx::Result<Option<Role>> {
        let role: Option<String> = with_pool!(&self.db, pool => {
            sqlx::query_scalar("SELECT role FROM class_members WHERE class_id = $1 AND teacher_id = $2")
                .bind(class_id)
                .bind(teacher_id)
                .fetch_optional(pool)
                .await
        })?;
        Ok(role.as_deref().and_then(Role::parse))
    }

    pub async fn members(&self, class_id: &str) -> sqlx::Result<Vec<MemberRecord>> {
        with_pool!(&self.db, pool => {
            sqlx::query_as(
                "SELECT m.teacher_id, t.email, t.name, m.role FROM class_members m
                 JOIN teachers t ON t.id = m.teacher_id WHERE m.class_id = $1 ORDER BY t.email",
            )
            .bind(class_id)
            .fetch_all(pool)
            .await
        })
    }

    /// Adds a member or changes their role.
    pub async fn put_member(
        &self,
        class_id: &str,
        teacher_id: &str,
        role: Role,
        a: Audit<'_>,
    ) -> sqlx::Result<()> {
        audited!(
            self,
            sqlx::query(
                "INSERT INTO class_members (class_id, teacher_id, role, added_ms) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (class_id, teacher_id) DO UPDATE SET role = excluded.role",
            )
            .bind(class_id)
            .bind(teacher_id)
            .bind(role.as_str())
            .bind(a.now_ms),
            audit_line(a, "put_member", Some(class_id), format!("teacher {teacher_id} as {}", role.as_str())),
        )?;
        Ok(())
    }

    /// Removes a member; `false` if they were not one.
    pub async fn delete_member(
        &self,
        class_id: &str,
        teacher_id: &str,
        a: Audit<'_>,
    ) -> sqlx::Result<bool> {
        audited!(
            self,
            sqlx::query("DELETE FROM class_members WHERE class_id = $1 AND teacher_id = $2")
                .bind(class_id)
                .bind(teacher_id),
            audit_line(
                a,
                "delete_member",
                Some(class_id),
                format!("teacher {teacher_id}")
            ),
        )
    }

    pub async fn create_activity(&self, r: &ActivityRecord, a: Audit<'_>) -> sqlx::Result<()> {
        let insert = format!(
            "INSERT INTO activities ({ACTIVITY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        );
        audited!(
            self,
            sqlx::query(&insert)
                .bind(&r.id)
                .bind(&r.class_id)
                .bind(&r.title)
                .bind(&r.greeting)
                .bind(&r.system_prompt)
                .bind(r.starters.as_deref().map(json))
                .bind(&r.model)
                .bind(&r.code_digest)
                .bind(r.code_generation)
                .bind(i64::from(r.paused))
                .bind(r.created_ms)
                .bind(r.updated_ms),
            audit_line(
                a,
                "create_activity",
                Some(&r.class_id),
                format!("activity {} ({:?})", r.id, r.title)
            ),
        )?;
        Ok(())
    }

    /// Writes an activity's settings (not its code: see [`Store::rotate_activity_code`]).
    pub async fn update_activity(
        &self,
        r: &ActivityRecord,
        detail: String,
        a: Audit<'_>,
    ) -> sqlx::Result<bool> {
        audited!(
            self,
            sqlx::query(
                "UPDATE activities SET title = $2, greeting = $3, system_prompt = $4, starters = $5, model = $6,
                   paused = $7, updated_ms = $8 WHERE id = $1",
            )
            .bind(&r.id)
            .bind(&r.title)
            .bind(&r.greeting)
            .bind(&r.system_prompt)
            .bind(r.starters.as_deref().map(json))
            .bind(&r.model)
            .bind(i64::from(r.paused))
            .bind(a.now_ms),
            audit_line(a, "update_activity", Some(&r.class_id), detail),
        )
    }

    /// Gives an activity a new code (as its keyed digest) and moves its generation on, so
    /// tokens signed in with the old code stop; `false` if there is no such activity.
    pub async fn rotate_activity_code(
        &self,
        id: &str,
        class_id: &str,
        code_digest: &str,
        a: Audit<'_>,
    ) -> sqlx::Result<bool> {
        audited!(
            self,
            sqlx::query(
                "UPDATE activities SET code_digest = $2, code_generation = code_generation + 1, updated_ms = $3
                 WHERE id = $1",
            )
            .bind(id)
            .bind(code_digest)
            .bind(a.now_ms),
            audit_line(a, "rotate_activity_code", Some(class_id), format!("activity {id}")),
        )
    }

    pub async fn activity(&self, id: &str) -> sqlx::Result<Option<ActivityRecord>> {
        let row: Option<ActivityRow> = with_pool!(&self.db, pool => {
            sqlx::query_as(&format!("SELECT {ACTIVITY_COLUMNS} FROM activities WHERE id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await
        })?;
        Ok(row.map(Into::into))
    }

    /// A class's activities, oldest first.
    pub async fn activities_of(&self, class_id: &str) -> sqlx::Result<Vec<ActivityRecord>> {
        let rows: Vec<ActivityRow> = with_pool!(&self.db, pool => {
            sqlx::query_as(&format!(
                "SELECT {ACTIVITY_COLUMNS} FROM activities WHERE class_id = $1 ORDER BY created_ms, id"
            ))
            .bind(class_id)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Every class made in the store with its activities: what the class registry of
    /// every replica is built from.
    pub async fn stored_classes(&self) -> sqlx::Result<Vec<(ClassRecord, Vec<ActivityRecord>)>> {
        let (classes, activities): (Vec<ClassRow>, Vec<ActivityRow>) = with_pool!(&self.db, pool => {
            let classes = sqlx::query_as(&format!("SELECT {CLASS_COLUMNS} FROM classes ORDER BY created_ms, id"))
                .fetch_all(pool)
                .await?;
            let activities = sqlx::query_as(&format!(
                "SELECT {ACTIVITY_COLUMNS} FROM activities ORDER BY created_ms, id"
            ))
            .fetch_all(pool)
            .await?;
            (classes, activities)
        });
        let mut out: Vec<(ClassRecord, Vec<ActivityRecord>)> = classes
            .into_iter()
            .map(|c| (ClassRecord::from(c), Vec::new()))
            .collect();
        for a in activities {
            let a = ActivityRecord::from(a);
            if let Some((_, list)) = out.iter_mut().find(|(c, _)| c.id == a.class_id) {
                list.push(a);
            }
        }
        Ok(out)
    }

    /// A class's messages, tokens and upstream errors in `[from_ms, to_ms)` (whole hours).
    pub async fn class_usage(
        &self,
        class_id: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> sqlx::Result<UsageTotals> {
        with_pool!(&self.db, pool => {
            sqlx::query_as(
                "SELECT CAST(COALESCE(SUM(messages), 0) AS BIGINT) AS messages,
                        CAST(COALESCE(SUM(tokens), 0) AS BIGINT) AS tokens,
                        CAST(COALESCE(SUM(errors), 0) AS BIGINT) AS errors
                 FROM usage_hourly WHERE class_id = $1 AND hour_ms >= $2 AND hour_ms < $3",
            )
            .bind(class_id)
            .bind(from_ms)
            .bind(to_ms)
            .fetch_one(pool)
            .await
        })
    }

    /// A class's usage in `[from_ms, to_ms)` split by activity, from the usage log itself
    /// (the hourly rollup has no activity): the class's own code first, then by id.
    pub async fn class_usage_by_activity(
        &self,
        class_id: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> sqlx::Result<Vec<ActivityUsage>> {
        with_pool!(&self.db, pool => {
            sqlx::query_as(
                "SELECT activity_id, CAST(COUNT(*) AS BIGINT) AS messages,
                        CAST(COALESCE(SUM(COALESCE(prompt_tokens, 0) + COALESCE(completion_tokens, 0)), 0) AS BIGINT) AS tokens,
                        CAST(COALESCE(SUM(CASE WHEN outcome = 'upstream_error' THEN 1 ELSE 0 END), 0) AS BIGINT) AS errors
                 FROM usage_log WHERE class_id = $1 AND at_ms >= $2 AND at_ms < $3
                 GROUP BY activity_id ORDER BY activity_id IS NOT NULL, activity_id",
            )
            .bind(class_id)
            .bind(from_ms)
            .bind(to_ms)
            .fetch_all(pool)
            .await
        })
    }

    /// The last `limit` audit lines (of one class, when given), oldest first.
    pub async fn audit_lines(
        &self,
        class_id: Option<&str>,
        limit: i64,
    ) -> sqlx::Result<Vec<AuditLine>> {
        let mut lines: Vec<AuditLine> = with_pool!(&self.db, pool => {
            sqlx::query_as(
                "SELECT id, at_ms, actor, action, class_id, detail, address FROM admin_audit
                 WHERE ($1 IS NULL OR class_id = $1) ORDER BY id DESC LIMIT $2",
            )
            .bind(class_id)
            .bind(limit)
            .fetch_all(pool)
            .await
        })?;
        lines.reverse();
        Ok(lines)
    }
}
