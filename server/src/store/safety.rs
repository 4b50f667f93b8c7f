//! Safety flags, each class's safety contacts and help resources, and the alert outbox.
//!
//! A flag and the notifications it needs are written in one transaction, so nobody is told
//! about a flag that is not stored, and no stored flag goes untold. The outbox is durable:
//! a notification pending when the server stops is sent after it starts again. Replicas
//! claim rows (PostgreSQL: `FOR UPDATE SKIP LOCKED`) with a lease, so each is sent by one.

use super::teachers::{Audit, audit_line};
use super::{Db, Store, with_pool};

/// A flag to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFlag {
    pub id: String,
    pub class_id: String,
    pub session_id: String,
    pub conversation_id: String,
    pub category: String,
    pub source: String,
    /// The phrase list entry's id or the model's category codes: never message text.
    pub detail: String,
    /// The exchange, sealed; `None` when it could not be sealed (it is then not kept).
    pub exchange: Option<String>,
    pub created_ms: i64,
}

/// A notification to send for a new flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNotification {
    pub id: String,
    /// `email` or `webhook`.
    pub channel: &'static str,
    /// The email address, or `webhook`.
    pub recipient: String,
}

/// A stored flag as the Alerts lists show it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FlagRecord {
    pub id: String,
    pub class_id: String,
    pub session_id: String,
    pub conversation_id: String,
    pub category: String,
    pub source: String,
    pub detail: String,
    pub exchange: Option<String>,
    pub created_ms: i64,
    pub dismissed_ms: Option<i64>,
    pub dismissed_by: Option<String>,
    /// The student's name as the usage log last knew it, if any.
    pub display_name: Option<String>,
    /// Notifications of this flag not sent yet.
    pub pending: i64,
    /// Notifications of this flag sent.
    pub sent: i64,
}

/// One notification claimed for sending.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OutboxJob {
    pub id: String,
    pub flag_id: String,
    pub channel: String,
    pub recipient: String,
    pub attempts: i64,
}

/// A safety contact of a class.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ContactRecord {
    pub teacher_id: String,
    pub email: String,
    pub name: String,
}

const FLAG_COLUMNS: &str =
    "f.id, f.class_id, f.session_id, f.conversation_id, f.category, f.source,
    f.detail, f.exchange, f.created_ms, f.dismissed_ms, f.dismissed_by,
    (SELECT s.display_name FROM sessions s WHERE s.session_id = f.session_id) AS display_name,
    (SELECT COUNT(*) FROM alert_outbox o WHERE o.flag_id = f.id AND o.sent_ms IS NULL) AS pending,
    (SELECT COUNT(*) FROM alert_outbox o WHERE o.flag_id = f.id AND o.sent_ms IS NOT NULL) AS sent";

/// Claims due notifications: the one statement that differs between the backends (kept
/// here, beside its only caller). PostgreSQL skips rows another replica is claiming at
/// this moment; SQLite has one writer at a time anyway.
const CLAIM_SQLITE: &str = "UPDATE alert_outbox SET claimed_until_ms = $1
     WHERE id IN (SELECT id FROM alert_outbox
                  WHERE sent_ms IS NULL AND next_at_ms <= $2
                    AND (claimed_until_ms IS NULL OR claimed_until_ms < $2)
                  ORDER BY next_at_ms LIMIT $3)
     RETURNING id, flag_id, channel, recipient, attempts";
const CLAIM_POSTGRES: &str = "UPDATE alert_outbox SET claimed_until_ms = $1
     WHERE id IN (SELECT id FROM alert_outbox
                  WHERE sent_ms IS NULL AND next_at_ms <= $2
                    AND (claimed_until_ms IS NULL OR claimed_until_ms < $2)
                  ORDER BY next_at_ms LIMIT $3 FOR UPDATE SKIP LOCKED)
     RETURNING id, flag_id, channel, recipient, attempts";

impl Store {
    /// Stores a flag and its notifications together.
    pub async fn insert_flag(
        &self,
        f: &NewFlag,
        notifications: &[NewNotification],
    ) -> sqlx::Result<()> {
        with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO safety_flags (id, class_id, session_id, conversation_id, category, source, detail, exchange, created_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(&f.id)
            .bind(&f.class_id)
            .bind(&f.session_id)
            .bind(&f.conversation_id)
            .bind(&f.category)
            .bind(&f.source)
            .bind(&f.detail)
            .bind(&f.exchange)
            .bind(f.created_ms)
            .execute(&mut *tx)
            .await?;
            for n in notifications {
                sqlx::query(
                    "INSERT INTO alert_outbox (id, flag_id, channel, recipient, attempts, next_at_ms, created_ms)
                     VALUES ($1, $2, $3, $4, 0, $5, $5)",
                )
                .bind(&n.id)
                .bind(&f.id)
                .bind(n.channel)
                .bind(&n.recipient)
                .bind(f.created_ms)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await
        })
    }

    /// The newest `limit` flags of the given classes (`None`: of every class); `open`:
    /// only open ones (`Some(true)`), only dismissed ones (`Some(false)`), or both.
    pub async fn flags(
        &self,
        classes: Option<&[String]>,
        open: Option<bool>,
        limit: i64,
    ) -> sqlx::Result<Vec<FlagRecord>> {
        if classes.is_some_and(<[String]>::is_empty) {
            return Ok(Vec::new());
        }
        with_pool!(&self.db, pool => {
            let mut q = sqlx::QueryBuilder::new(format!("SELECT {FLAG_COLUMNS} FROM safety_flags f WHERE 1 = 1 "));
            if let Some(ids) = classes {
                q.push("AND f.class_id IN (");
                let mut sep = q.separated(", ");
                for id in ids {
                    sep.push_bind(id.clone());
                }
                q.push(") ");
            }
            if let Some(open) = open {
                q.push(if open {
                    "AND f.dismissed_ms IS NULL "
                } else {
                    "AND f.dismissed_ms IS NOT NULL "
                });
            }
            q.push("ORDER BY f.created_ms DESC, f.id LIMIT ");
            q.push_bind(limit);
            q.build_query_as().fetch_all(pool).await
        })
    }

    /// One flag.
    pub async fn flag(&self, id: &str) -> sqlx::Result<Option<FlagRecord>> {
        with_pool!(&self.db, pool => {
            sqlx::query_as(&format!("SELECT {FLAG_COLUMNS} FROM safety_flags f WHERE f.id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await
        })
    }

    /// Marks a flag dismissed by `by` (it stays listed). `false` when it was dismissed
    /// already or does not exist.
    pub async fn dismiss_flag(&self, id: &str, by: &str, a: Audit<'_>) -> sqlx::Result<bool> {
        with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let class_id: Option<String> = sqlx::query_scalar(
                "UPDATE safety_flags SET dismissed_ms = $1, dismissed_by = $2
                 WHERE id = $3 AND dismissed_ms IS NULL RETURNING class_id",
            )
            .bind(a.now_ms)
            .bind(by)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(class_id) = class_id else {
                return Ok(false);
            };
            audit_line(a, "dismiss_alert", Some(&class_id), format!("flag {id}"))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Writes who opened a flag's exchange (the access log the administrator reads).
    pub async fn log_flag_opened(
        &self,
        id: &str,
        class_id: &str,
        a: Audit<'_>,
    ) -> sqlx::Result<()> {
        with_pool!(&self.db, pool => {
            audit_line(a, "open_alert", Some(class_id), format!("flag {id}"))
                .execute(pool)
                .await
                .map(|_| ())
        })
    }

    /// The teachers told about a class's flags.
    pub async fn safety_contacts(&self, class_id: &str) -> sqlx::Result<Vec<ContactRecord>> {
        with_pool!(&self.db, pool => {
            sqlx::query_as(
                "SELECT c.teacher_id, t.email, t.name FROM safety_contacts c
                 JOIN teachers t ON t.id = c.teacher_id
                 WHERE c.class_id = $1 AND t.disabled = 0 ORDER BY t.email",
            )
            .bind(class_id)
            .fetch_all(pool)
            .await
        })
    }

    /// Replaces a class's safety contacts; the caller checked they are its members.
    pub async fn set_safety_contacts(
        &self,
        class_id: &str,
        teacher_ids: &[String],
        a: Audit<'_>,
    ) -> sqlx::Result<()> {
        with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM safety_contacts WHERE class_id = $1")
                .bind(class_id)
                .execute(&mut *tx)
                .await?;
            for t in teacher_ids {
                sqlx::query(
                    "INSERT INTO safety_contacts (class_id, teacher_id, added_ms) VALUES ($1, $2, $3)
                     ON CONFLICT (class_id, teacher_id) DO NOTHING",
                )
                .bind(class_id)
                .bind(t)
                .bind(a.now_ms)
                .execute(&mut *tx)
                .await?;
            }
            audit_line(a, "set_safety_contacts", Some(class_id), format!("teachers {}", teacher_ids.join(", ")))
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        })
    }

    /// The classes a teacher is a safety contact of (and still a member of).
    pub async fn contact_classes(&self, teacher_id: &str) -> sqlx::Result<Vec<String>> {
        with_pool!(&self.db, pool => {
            sqlx::query_scalar(
                "SELECT c.class_id FROM safety_contacts c
                 JOIN class_members m ON m.class_id = c.class_id AND m.teacher_id = c.teacher_id
                 WHERE c.teacher_id = $1 ORDER BY c.class_id",
            )
            .bind(teacher_id)
            .fetch_all(pool)
            .await
        })
    }

    /// A class's own help resources, if it has them.
    pub async fn class_help(&self, class_id: &str) -> sqlx::Result<Option<String>> {
        with_pool!(&self.db, pool => {
            sqlx::query_scalar("SELECT help FROM safety_help WHERE class_id = $1")
                .bind(class_id)
                .fetch_optional(pool)
                .await
        })
    }

    /// Sets (`Some`) or clears (`None`: the server's again) a class's help resources.
    pub async fn set_class_help(
        &self,
        class_id: &str,
        help: Option<&str>,
        a: Audit<'_>,
    ) -> sqlx::Result<()> {
        with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            match help {
                Some(h) => sqlx::query(
                    "INSERT INTO safety_help (class_id, help, updated_ms) VALUES ($1, $2, $3)
                     ON CONFLICT (class_id) DO UPDATE SET help = excluded.help, updated_ms = excluded.updated_ms",
                )
                .bind(class_id)
                .bind(h)
                .bind(a.now_ms)
                .execute(&mut *tx)
                .await?,
                None => sqlx::query("DELETE FROM safety_help WHERE class_id = $1")
                    .bind(class_id)
                    .execute(&mut *tx)
                    .await?,
            };
            audit_line(a, "set_safety_help", Some(class_id), if help.is_some() { "set" } else { "cleared" }.to_owned())
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        })
    }

    /// Claims up to `limit` due notifications until `lease_until_ms`.
    pub async fn claim_notifications(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: i64,
    ) -> sqlx::Result<Vec<OutboxJob>> {
        match &self.db {
            Db::Sqlite(pool) => {
                sqlx::query_as(CLAIM_SQLITE)
                    .bind(lease_until_ms)
                    .bind(now_ms)
                    .bind(limit)
                    .fetch_all(pool)
                    .await
            }
            Db::Postgres(pool) => {
                sqlx::query_as(CLAIM_POSTGRES)
                    .bind(lease_until_ms)
                    .bind(now_ms)
                    .bind(limit)
                    .fetch_all(pool)
                    .await
            }
        }
    }

    /// A claimed notification went out.
    pub async fn notification_sent(&self, id: &str, now_ms: i64) -> sqlx::Result<()> {
        with_pool!(&self.db, pool => {
            sqlx::query(
                "UPDATE alert_outbox SET sent_ms = $1, attempts = attempts + 1, claimed_until_ms = NULL, last_error = NULL
                 WHERE id = $2",
            )
            .bind(now_ms)
            .bind(id)
            .execute(pool)
            .await
            .map(|_| ())
        })
    }

    /// A claimed notification failed: tried again at `next_at_ms`. `error` names the cause
    /// without any secret.
    pub async fn notification_failed(
        &self,
        id: &str,
        next_at_ms: i64,
        error: &str,
    ) -> sqlx::Result<()> {
        with_pool!(&self.db, pool => {
            sqlx::query(
                "UPDATE alert_outbox SET attempts = attempts + 1, next_at_ms = $1, claimed_until_ms = NULL, last_error = $2
                 WHERE id = $3",
            )
            .bind(next_at_ms)
            .bind(error)
            .bind(id)
            .execute(pool)
            .await
            .map(|_| ())
        })
    }

    /// When the next pending notification is due (a claimed one: when its lease ends).
    pub async fn next_notification_at(&self) -> sqlx::Result<Option<i64>> {
        with_pool!(&self.db, pool => {
            sqlx::query_scalar(
                "SELECT MIN(CASE WHEN claimed_until_ms IS NOT NULL AND claimed_until_ms > next_at_ms
                                 THEN claimed_until_ms ELSE next_at_ms END)
                 FROM alert_outbox WHERE sent_ms IS NULL",
            )
            .fetch_one(pool)
            .await
        })
    }

    /// A flag's notifications: (channel, recipient, attempts, sent_ms, last_error).
    pub async fn notifications_of(
        &self,
        flag_id: &str,
    ) -> sqlx::Result<Vec<(String, String, i64, Option<i64>, Option<String>)>> {
        with_pool!(&self.db, pool => {
            sqlx::query_as(
                "SELECT channel, recipient, attempts, sent_ms, last_error FROM alert_outbox
                 WHERE flag_id = $1 ORDER BY channel, recipient",
            )
            .bind(flag_id)
            .fetch_all(pool)
            .await
        })
    }
}
