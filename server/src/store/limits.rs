//! Shared budgets on PostgreSQL: thin calls of the functions in
//! `migrations/postgres/0003_shared_limits.sql`, `0006_limits_left.sql`,
//! `0007_sign_in_attempts.sql` and `0015_budget_leases.sql`, each one round trip. On SQLite
//! the budgets live in memory ([`crate::limits`]) and these are never called.

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

#[derive(Debug, sqlx::FromRow)]
struct Decision {
    refused: i32,
    wait_ms: i64,
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

/// A slice of a rate budget to lease: at least `need` events when that much room is left,
/// up to `want` while more than `reserve` would remain, and at least one.
#[derive(Debug, Clone)]
pub struct RateAsk<'a> {
    pub key: &'a str,
    pub gcra: Gcra,
    pub need: u32,
    pub want: u32,
    pub reserve: u32,
}

/// A slice of a class's daily quota to lease, sized as [`RateAsk`].
#[derive(Debug, Clone)]
pub struct QuotaAsk<'a> {
    pub class_id: &'a str,
    pub day: jiff::civil::Date,
    pub quota: u32,
    pub need: u32,
    pub want: u32,
    pub reserve: u32,
}

/// One granted slice: `granted` events (the first spent by the message that asked), and the
/// lease to return the rest through (0: a slice of one, nothing to return).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub granted: u32,
    pub lease_id: i64,
}

/// What [`Store::take_leases`] granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leased {
    /// Per rate budget (as asked): the grant, and how far the budget runs ahead of the
    /// clock after it.
    pub rates: Vec<(Grant, Duration)>,
    /// The quota's grant and the class's count for the day after it.
    pub quota: Option<(Grant, u32)>,
}

/// A lease given back: `unused` of its events were not spent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Returned {
    pub lease_id: i64,
    /// The rate budget's key, or the class id of a quota.
    pub key: String,
    /// The quota's day; `None` for a rate.
    pub day: Option<String>,
    pub unused: u32,
}

#[derive(Debug, sqlx::FromRow)]
struct LeaseDecision {
    refused: i32,
    wait_ms: i64,
    granted: Option<Vec<i64>>,
    fill_ms: Option<Vec<i64>>,
    lease_ids: Option<Vec<i64>>,
    quota_granted: Option<i64>,
    quota_lease: Option<i64>,
    used: Option<i64>,
}

fn count(n: i64) -> u32 {
    n.clamp(0, i64::from(u32::MAX)) as u32
}

impl Store {
    /// Leases a slice of each rate budget and, if given, of the quota, all or none, in one
    /// statement, which first takes back `returns` (this replica's finished leases of these
    /// budgets: id and what was not spent) and the slices of these budgets whose replica
    /// never returned them. `lease` is how long until the database takes an unreturned slice back.
    pub async fn take_leases(
        &self,
        rates: &[RateAsk<'_>],
        quota: Option<&QuotaAsk<'_>>,
        lease: Duration,
        returns: &[(i64, u32)],
    ) -> sqlx::Result<Result<Leased, Admission>> {
        let big = |f: fn(&RateAsk<'_>) -> u32| -> Vec<i64> {
            rates.iter().map(|r| i64::from(f(r))).collect()
        };
        let d: LeaseDecision = sqlx::query_as(
            "SELECT refused, wait_ms, granted, fill_ms, lease_ids, quota_granted, quota_lease, used \
             FROM classchat_lease($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(rates.iter().map(|r| r.key.to_owned()).collect::<Vec<_>>())
        .bind(
            rates
                .iter()
                .map(|r| r.gcra.interval.as_micros().clamp(1, i64::MAX as u128) as i64)
                .collect::<Vec<_>>(),
        )
        .bind(rates.iter().map(|r| ms(r.gcra.period)).collect::<Vec<_>>())
        .bind(big(|r| r.need))
        .bind(big(|r| r.want))
        .bind(big(|r| r.reserve))
        .bind(quota.map(|q| q.class_id))
        .bind(quota.map(|q| q.day.to_string()))
        .bind(quota.map(|q| i64::from(q.quota)))
        .bind(quota.map(|q| i64::from(q.need)))
        .bind(quota.map(|q| i64::from(q.want)))
        .bind(quota.map(|q| i64::from(q.reserve)))
        .bind(ms(lease))
        .bind(returns.iter().map(|r| r.0).collect::<Vec<_>>())
        .bind(returns.iter().map(|r| i64::from(r.1)).collect::<Vec<_>>())
        .fetch_one(self.pg()?)
        .await?;
        Ok(match d.refused {
            0 => {
                let granted = d.granted.unwrap_or_default();
                let fills = d.fill_ms.unwrap_or_default();
                let ids = d.lease_ids.unwrap_or_default();
                Ok(Leased {
                    rates: granted
                        .iter()
                        .zip(&fills)
                        .zip(&ids)
                        .map(|((g, f), id)| {
                            (
                                Grant {
                                    granted: count(*g),
                                    lease_id: *id,
                                },
                                Duration::from_millis(count(*f).into()),
                            )
                        })
                        .collect(),
                    quota: d.quota_granted.map(|g| {
                        (
                            Grant {
                                granted: count(g),
                                lease_id: d.quota_lease.unwrap_or(0),
                            },
                            count(d.used.unwrap_or(0)),
                        )
                    }),
                })
            }
            -1 => Err(Admission::Quota),
            i => Err(Admission::Wait(
                i as usize - 1,
                Duration::from_millis(d.wait_ms.max(0) as u64),
            )),
        })
    }

    /// Gives leases back with what they did not spend, in one statement (which also gives
    /// back a few leases anywhere that expired unreturned: a dead replica's).
    pub async fn return_leases(&self, leases: &[Returned]) -> sqlx::Result<()> {
        sqlx::query("SELECT classchat_return_leases($1, $2, $3, $4)")
            .bind(leases.iter().map(|l| l.lease_id).collect::<Vec<_>>())
            .bind(leases.iter().map(|l| l.key.clone()).collect::<Vec<_>>())
            .bind(leases.iter().map(|l| l.day.clone()).collect::<Vec<_>>())
            .bind(
                leases
                    .iter()
                    .map(|l| i64::from(l.unused))
                    .collect::<Vec<_>>(),
            )
            .execute(self.pg()?)
            .await?;
        Ok(())
    }
}
