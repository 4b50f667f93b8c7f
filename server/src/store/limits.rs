//! Shared budgets on PostgreSQL: thin calls of the functions in
//! `migrations/postgres/0003_shared_limits.sql`, `0006_limits_left.sql` and
//! `0007_sign_in_attempts.sql`, each one round trip. On SQLite the
//! budgets live in memory ([`crate::limits`]) and these are never called.

use std::time::Duration;

use super::{Db, Store};
use crate::config::Gcra;

/// Why the database refused a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Budget `i` (as passed) has no room for `wait`.
    Wait(usize, Duration),
    /// The class's daily quota is spent.
    Quota,
}

/// What is left after an admitted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    /// Per budget (as passed): how far it now runs ahead of the clock.
    pub fill: Vec<Duration>,
    /// The class's messages today, this one included (with a quota).
    pub used: Option<u32>,
}

#[derive(Debug, sqlx::FromRow)]
struct Decision {
    refused: i32,
    wait_ms: i64,
}

#[derive(Debug, sqlx::FromRow)]
struct MessageDecision {
    refused: i32,
    wait_ms: i64,
    fill_ms: Option<Vec<i64>>,
    used: Option<i64>,
}

fn ms(d: Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

fn columns(budgets: &[(&str, Gcra)]) -> (Vec<String>, Vec<i64>, Vec<i64>) {
    (
        budgets.iter().map(|(k, _)| (*k).to_owned()).collect(),
        budgets.iter().map(|(_, g)| ms(g.interval)).collect(),
        budgets.iter().map(|(_, g)| ms(g.period)).collect(),
    )
}

fn sqlite_has_no_shared_budgets() -> sqlx::Error {
    sqlx::Error::Protocol("shared budgets exist only on PostgreSQL".into())
}

impl Store {
    fn pg(&self) -> sqlx::Result<&sqlx::PgPool> {
        match &self.db {
            Db::Postgres(p) => Ok(p),
            Db::Sqlite(_) => Err(sqlite_has_no_shared_budgets()),
        }
    }

    /// Spends one event from each of the first `spend` budgets and checks the others have
    /// room, all in one statement: `Err((index, wait))` names the first budget without room,
    /// and then nothing is spent.
    pub async fn gcra_attempt(
        &self,
        budgets: &[(&str, Gcra)],
        spend: usize,
    ) -> sqlx::Result<Result<(), (usize, Duration)>> {
        let (keys, intervals, periods) = columns(budgets);
        let d: Decision =
            sqlx::query_as("SELECT refused, wait_ms FROM classchat_attempt($1, $2, $3, $4)")
                .bind(keys)
                .bind(intervals)
                .bind(periods)
                .bind(i32::try_from(spend).unwrap_or(i32::MAX))
                .fetch_one(self.pg()?)
                .await?;
        Ok(match d.refused {
            0 => Ok(()),
            i => Err((
                i as usize - 1,
                Duration::from_millis(d.wait_ms.max(0) as u64),
            )),
        })
    }

    /// One message: the rate budgets and, if given, the class's quota for the day, all
    /// decided and spent in one statement, which also says what is left.
    pub async fn admit_message(
        &self,
        budgets: &[(&str, Gcra)],
        quota: Option<(&str, jiff::civil::Date, u32)>,
    ) -> sqlx::Result<Result<Admitted, Admission>> {
        let (keys, intervals, periods) = columns(budgets);
        let d: MessageDecision = sqlx::query_as(
            "SELECT refused, wait_ms, fill_ms, used FROM classchat_admit($1, $2, $3, TRUE, $4, $5, $6)",
        )
        .bind(keys)
        .bind(intervals)
        .bind(periods)
        .bind(quota.map(|q| q.0))
        .bind(quota.map(|q| q.1.to_string()))
        .bind(quota.map(|q| i64::from(q.2)))
        .fetch_one(self.pg()?)
        .await?;
        Ok(match (d.refused, d.wait_ms) {
            (0, -1) => Err(Admission::Quota),
            (0, _) => Ok(Admitted {
                fill: d
                    .fill_ms
                    .unwrap_or_default()
                    .into_iter()
                    .map(|f| Duration::from_millis(f.max(0) as u64))
                    .collect(),
                used: d.used.map(|u| u.clamp(0, i64::from(u32::MAX)) as u32),
            }),
            (i, w) => Err(Admission::Wait(
                i as usize - 1,
                Duration::from_millis(w.max(0) as u64),
            )),
        })
    }

    /// A right code: gives `refunds` back (each key that much time, never past whole) and,
    /// with `sign_in`, spends one event from it if it has room (`Err(wait)` if not; the
    /// refunds are made either way: a right code is no guess).
    pub async fn gcra_right_code(
        &self,
        sign_in: Option<(&str, Gcra)>,
        refunds: &[(&str, Duration)],
    ) -> sqlx::Result<Result<(), Duration>> {
        let wait: i64 = sqlx::query_scalar("SELECT classchat_right_code($1, $2, $3, $4, $5)")
            .bind(sign_in.map(|s| s.0))
            .bind(sign_in.map(|s| ms(s.1.interval)))
            .bind(sign_in.map(|s| ms(s.1.period)))
            .bind(refunds.iter().map(|r| r.0.to_owned()).collect::<Vec<_>>())
            .bind(refunds.iter().map(|r| ms(r.1)).collect::<Vec<_>>())
            .fetch_one(self.pg()?)
            .await?;
        Ok(if wait > 0 {
            Err(Duration::from_millis(wait as u64))
        } else {
            Ok(())
        })
    }
}
