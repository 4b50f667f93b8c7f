//! Allowances that follow the student (migration 0016): a class's per-student limits, and
//! each known student's messages per local day and week, one row per student and period
//! shared by every session, device and replica.

use super::teachers::{Audit, audit_line};
use super::{Store, with_pool};

/// A class's allowance per known student; 0: no such limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct AllowanceRecord {
    pub per_day: i64,
    pub per_week: i64,
}

/// One counted period and its limit (> 0).
#[derive(Debug, Clone)]
pub struct Period<'a> {
    pub key: &'a str,
    pub limit: i64,
}

/// What admitting one message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Counted {
    /// Counted: each period's messages now, in the order given.
    Admitted(Vec<i64>),
    /// The period at this index was full: nothing was counted.
    Full(usize),
}

/// One student's use of the current day and week.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StudentUse {
    pub student: String,
    pub day: i64,
    pub week: i64,
}

impl Store {
    /// A class's allowance, if one is set.
    pub async fn student_allowance(&self, class_id: &str) -> sqlx::Result<Option<AllowanceRecord>> {
        with_pool!(&self.db, pool => {
            sqlx::query_as(
                "SELECT per_day, per_week FROM student_allowances WHERE class_id = $1",
            )
            .bind(class_id)
            .fetch_optional(pool)
            .await
        })
    }

    /// Sets a class's allowance (with its audit line).
    pub async fn set_student_allowance(
        &self,
        class_id: &str,
        a: AllowanceRecord,
        audit: Audit<'_>,
    ) -> sqlx::Result<()> {
        with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO student_allowances (class_id, per_day, per_week, updated_by, updated_ms)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (class_id) DO UPDATE SET per_day = $2, per_week = $3,
                     updated_by = $4, updated_ms = $5",
            )
            .bind(class_id)
            .bind(a.per_day)
            .bind(a.per_week)
            .bind(audit.actor)
            .bind(audit.now_ms)
            .execute(&mut *tx)
            .await?;
            audit_line(
                audit,
                "student_allowance_set",
                Some(class_id),
                format!("per day {}, per week {}", a.per_day, a.per_week),
            )
            .execute(&mut *tx)
            .await?;
            tx.commit().await
        })
    }

    /// Counts one message of `student` in each period, all or none: a period already at
    /// its limit refuses the message and nothing is counted. Each row is locked by its
    /// update until the transaction ends, so replicas admitting the same student at once
    /// are serialised and none overshoots.
    pub async fn count_student_message(
        &self,
        class_id: &str,
        student: &str,
        periods: &[Period<'_>],
    ) -> sqlx::Result<Counted> {
        with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let mut now = Vec::with_capacity(periods.len());
            for (i, p) in periods.iter().enumerate() {
                let n: Option<i64> = sqlx::query_scalar(
                    "INSERT INTO student_usage (class_id, student, period, messages)
                     VALUES ($1, $2, $3, 1)
                     ON CONFLICT (class_id, student, period) DO UPDATE
                         SET messages = student_usage.messages + 1
                         WHERE student_usage.messages < $4
                     RETURNING messages",
                )
                .bind(class_id)
                .bind(student)
                .bind(p.key)
                .bind(p.limit)
                .fetch_optional(&mut *tx)
                .await?;
                match n {
                    Some(n) => now.push(n),
                    None => {
                        tx.rollback().await?;
                        return Ok(Counted::Full(i));
                    }
                }
            }
            // A period's first message: the student's rows of past periods go (once per
            // student and period, so the table holds about two rows per student).
            if let (true, Some(first), Some(last)) = (now.contains(&1), periods.first(), periods.last()) {
                sqlx::query(
                    "DELETE FROM student_usage
                     WHERE class_id = $1 AND student = $2 AND period NOT IN ($3, $4)",
                )
                .bind(class_id)
                .bind(student)
                .bind(first.key)
                .bind(last.key)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(Counted::Admitted(now))
        })
    }

    /// Gives back one counted message (the message was then refused by another limit).
    pub async fn uncount_student_message(
        &self,
        class_id: &str,
        student: &str,
        periods: &[&str],
    ) -> sqlx::Result<()> {
        with_pool!(&self.db, pool => {
            for p in periods {
                sqlx::query(
                    "UPDATE student_usage SET messages = messages - 1
                     WHERE class_id = $1 AND student = $2 AND period = $3 AND messages > 0",
                )
                .bind(class_id)
                .bind(student)
                .bind(*p)
                .execute(pool)
                .await?;
            }
            Ok(())
        })
    }

    /// Every counted student's messages in the periods `day` and `week`.
    pub async fn student_uses(
        &self,
        class_id: &str,
        day: &str,
        week: &str,
    ) -> sqlx::Result<Vec<StudentUse>> {
        with_pool!(&self.db, pool => {
            sqlx::query_as(
                "SELECT student,
                     CAST(SUM(CASE WHEN period = $2 THEN messages ELSE 0 END) AS BIGINT) AS day,
                     CAST(SUM(CASE WHEN period = $3 THEN messages ELSE 0 END) AS BIGINT) AS week
                 FROM student_usage WHERE class_id = $1 AND period IN ($2, $3)
                 GROUP BY student ORDER BY student",
            )
            .bind(class_id)
            .bind(day)
            .bind(week)
            .fetch_all(pool)
            .await
        })
    }

    /// Starts one student's allowance afresh (with its audit line). `false`: the student
    /// had nothing counted.
    pub async fn reset_student(
        &self,
        class_id: &str,
        student: &str,
        audit: Audit<'_>,
    ) -> sqlx::Result<bool> {
        with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let gone = sqlx::query("DELETE FROM student_usage WHERE class_id = $1 AND student = $2")
                .bind(class_id)
                .bind(student)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if gone == 0 {
                return Ok(false);
            }
            audit_line(
                audit,
                "student_allowance_reset",
                Some(class_id),
                format!("student {student}"),
            )
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(true)
        })
    }
}
