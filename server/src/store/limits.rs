//! Shared budgets on PostgreSQL: thin calls of the functions in
//! `migrations/postgres/0003_shared_limits.sql`, each one round trip. On SQLite the
//! budgets live in memory ([`crate::limits`]) and these are never called.

use std::time::Duration;

use super::{Db, Store};
use crate::limiter::Gcra;

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

    /// Decides the budgets together and, with `count`, spends one event from each.
    pub async fn gcra_admit(
        &self,
        budgets: &[(&str, Gcra)],
        count: bool,
    ) -> sqlx::Result<Result<(), (usize, Duration)>> {
        let (keys, intervals, periods) = columns(budgets);
        let d: Decision = sqlx::query_as(
            "SELECT refused, wait_ms FROM classchat_admit($1, $2, $3, $4, NULL, NULL, NULL)",
        )
        .bind(keys)
        .bind(intervals)
        .bind(periods)
        .bind(count)
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

    /// Counts one event on each budget even if spent.
    pub async fn gcra_force(&self, budgets: &[(&str, Gcra)]) -> sqlx::Result<()> {
        let (keys, intervals, periods) = columns(budgets);
        sqlx::query("SELECT classchat_force($1, $2, $3)")
            .bind(keys)
            .bind(intervals)
            .bind(periods)
            .execute(self.pg()?)
            .await?;
        Ok(())
    }

    /// Spends one sign-in and gives one event back to `refund`.
    pub async fn gcra_sign_in(
        &self,
        key: &str,
        g: Gcra,
        refund: Option<(&str, Gcra)>,
    ) -> sqlx::Result<Result<(), Duration>> {
        let wait: i64 = sqlx::query_scalar("SELECT classchat_sign_in($1, $2, $3, $4, $5)")
            .bind(key)
            .bind(ms(g.interval))
            .bind(ms(g.period))
            .bind(refund.map(|r| r.0))
            .bind(refund.map(|r| ms(r.1.interval)))
            .fetch_one(self.pg()?)
            .await?;
        Ok(if wait > 0 {
            Err(Duration::from_millis(wait as u64))
        } else {
            Ok(())
        })
    }
}
