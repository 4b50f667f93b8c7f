//! Leased slices of the shared message budgets (PostgreSQL): this replica's side.
//!
//! A message spends one event from each of its budgets (the session's rate, the class's
//! ceiling, the class-day quota). When this replica holds a live slice of every one it
//! spends them here, in memory, with no statement. When one is missing, the message takes a
//! slice of each missing budget in one statement ([`Store::take_leases`]), sized to the
//! messages waiting here for it plus what this replica spent of it in the last
//! [`RECENT`] (capped, see [`Shape`]). Takes of one budget are single-flight: the messages
//! that miss while a take is under way wait for it and spend its slice.
//!
//! A slice is spent only during the first half of its lease (`BUDGET_LEASE`), counted from
//! before its take was sent, so the database's clock never ends a lease still being spent.
//! A take hands the budget's finished slice back with what it did not spend; the returner
//! ([`Leases::run`]) gives back the others every eighth of a lease, in one statement, and
//! [`Leases::close`] everything at shutdown. The database takes back a slice nobody
//! returned once its lease ends. Bounds: see [`crate::limits`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::basics::lock;
use crate::config::Gcra;
use crate::store::{Admission, Leased, QuotaAsk, RateAsk, Returned, Store};

/// The window over which a budget's recent demand here is counted: a take asks for about
/// this long's worth of messages on top of those waiting.
pub const RECENT: Duration = Duration::from_millis(100);

/// A slice is at most 1/`SLICE_OF` of its budget (and at least one event).
pub const SLICE_OF: u32 = 32;
/// Beyond the messages waiting, a take asks for more only while more than 1/`RESERVE_OF`
/// of the budget would remain: near the end of a budget, every replica's slices are exactly
/// the messages it has in hand, so none sits unspent on one replica while another refuses.
pub const RESERVE_OF: u32 = 8;

/// How a budget of `count` events is cut into slices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// The largest slice: `max(1, count / SLICE_OF)`.
    pub largest: u32,
    /// Room kept back from speculative slices: `count / RESERVE_OF`.
    pub reserve: u32,
}

impl Shape {
    pub fn of(count: u32) -> Self {
        Self {
            largest: (count / SLICE_OF).max(1),
            reserve: count / RESERVE_OF,
        }
    }
}

/// One budget a message needs.
#[derive(Debug, Clone)]
pub enum Need<'a> {
    Rate {
        key: &'a str,
        gcra: Gcra,
    },
    Quota {
        class_id: &'a str,
        day: jiff::civil::Date,
        quota: u32,
    },
}

impl Need<'_> {
    /// This replica's name for the budget (rates: their database key).
    fn local_key(&self) -> String {
        match self {
            Need::Rate { key, .. } => (*key).to_owned(),
            Need::Quota { class_id, .. } => format!("q:{class_id}"),
        }
    }

    fn shape(&self) -> Shape {
        match self {
            Need::Rate { gcra, .. } => Shape::of(
                (gcra.period.as_nanos() / gcra.interval.as_nanos().max(1)).min(u32::MAX as u128)
                    as u32,
            ),
            Need::Quota { quota, .. } => Shape::of(*quota),
        }
    }

    fn day(&self) -> Option<jiff::civil::Date> {
        match self {
            Need::Rate { .. } => None,
            Need::Quota { day, .. } => Some(*day),
        }
    }
}

/// What a message that was admitted may tell its student, per budget (as needed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Left {
    /// A rate: how far its budget runs ahead of the clock (see [`crate::limiter::left`]).
    Fill(Duration),
    /// A quota: the class's messages today as far as this replica knows.
    Used(u32),
}

/// Why a message could not be admitted from leases.
#[derive(Debug)]
pub enum Refused {
    /// The database refused: budget `i` (as needed) has no room, or the quota is spent.
    Budget(Admission),
    /// The database did not answer.
    Database(sqlx::Error),
}

/// A slice held here.
#[derive(Debug)]
struct Slice {
    /// This replica's name for it (a message that reserved an event finds it by this).
    local: u64,
    /// 0: a slice of one, spent by the message that took it (nothing to return).
    lease_id: i64,
    left: u32,
    /// Spent only before this, so it is returned well before the database takes it back.
    use_until: Instant,
    /// A quota's day.
    day: Option<jiff::civil::Date>,
}

/// This replica's state of one budget.
#[derive(Debug, Default)]
struct Pool {
    slices: Vec<Slice>,
    /// Messages waiting to take a slice of this budget.
    waiting: u32,
    /// Single flight: held while a take of this budget is under way.
    take: Arc<tokio::sync::Mutex<()>>,
    /// Spent here in the current and the previous [`RECENT`] window.
    window: Option<Instant>,
    this_window: u32,
    last_window: u32,
    /// From the last grant: a rate's fill (and when), a quota's count for the day.
    fill: Option<(Duration, Instant)>,
    used: u32,
}

impl Pool {
    fn live(&self, now: Instant, day: Option<jiff::civil::Date>) -> Option<usize> {
        self.slices
            .iter()
            .enumerate()
            .filter(|(_, s)| s.left > 0 && s.use_until > now && s.day == day)
            .min_by_key(|(_, s)| s.use_until)
            .map(|(i, _)| i)
    }

    fn unspent(&self) -> u32 {
        self.slices.iter().map(|s| s.left).sum()
    }

    fn count_spent(&mut self, now: Instant) {
        match self.window {
            Some(start) if now.duration_since(start) < RECENT => {}
            Some(start) => {
                self.last_window = if now.duration_since(start) < RECENT * 2 {
                    self.this_window
                } else {
                    0
                };
                self.this_window = 0;
                self.window = Some(now);
            }
            None => self.window = Some(now),
        }
        self.this_window += 1;
    }

    /// Spends one event of slice `i`.
    fn spend(&mut self, i: usize, now: Instant) {
        self.slices[i].left -= 1;
        self.count_spent(now);
    }

    fn left(&self, need: &Need<'_>, now: Instant) -> Left {
        match need {
            Need::Rate { gcra, .. } => {
                let fill = self.fill.map_or(Duration::ZERO, |(f, at)| {
                    f.saturating_sub(gcra.interval * self.unspent())
                        .saturating_sub(now.duration_since(at))
                });
                Left::Fill(fill)
            }
            Need::Quota { .. } => Left::Used(self.used.saturating_sub(self.unspent())),
        }
    }

    fn idle(&self, now: Instant) -> bool {
        self.slices.is_empty()
            && self.waiting == 0
            && Arc::strong_count(&self.take) == 1
            && self
                .window
                .is_none_or(|w| now.duration_since(w) > RECENT * 2)
    }
}

/// Messages waiting to take slices of `keys`; no longer, once dropped.
struct Waiting<'a> {
    leases: &'a Leases,
    keys: Vec<String>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut pools = lock(&self.leases.pools);
        for key in &self.keys {
            if let Some(p) = pools.get_mut(key) {
                p.waiting = p.waiting.saturating_sub(1);
            }
        }
    }
}

/// The slices this replica holds, and the database they come from.
#[derive(Debug)]
pub struct Leases {
    store: Store,
    /// How long until the database takes an unreturned slice back.
    lease: Duration,
    pools: Mutex<HashMap<String, Pool>>,
    next_local: std::sync::atomic::AtomicU64,
    stop: CancellationToken,
}

impl Leases {
    pub fn new(store: Store, lease: Duration) -> Self {
        Self {
            store,
            lease,
            pools: Mutex::default(),
            next_local: Default::default(),
            stop: CancellationToken::new(),
        }
    }

    /// Spends one event of every budget in `needs` from the slices held here, if every one
    /// has a live slice; `None` (and nothing spent) otherwise.
    fn spend_local(&self, needs: &[Need<'_>], keys: &[String]) -> Option<Vec<Left>> {
        let now = Instant::now();
        let mut pools = lock(&self.pools);
        let mut at = Vec::with_capacity(needs.len());
        for (need, key) in needs.iter().zip(keys) {
            at.push(pools.get(key)?.live(now, need.day())?);
        }
        Some(
            needs
                .iter()
                .zip(keys)
                .zip(at)
                .map(|((need, key), i)| {
                    let pool = pools.get_mut(key).expect("checked above");
                    pool.spend(i, now);
                    pool.left(need, now)
                })
                .collect(),
        )
    }

    /// Admits one message against `needs`: from slices held here when it can, else takes
    /// what is missing in one statement. `Ok` says what is left of each budget.
    pub async fn admit(&self, needs: &[Need<'_>]) -> Result<Vec<Left>, Refused> {
        let keys: Vec<String> = needs.iter().map(Need::local_key).collect();
        if let Some(left) = self.spend_local(needs, &keys) {
            return Ok(left);
        }
        // Some budget lacks a slice. Takes are single flight per budget: hold every budget's
        // take (in key order, so two messages never wait on each other), so no other take
        // of any of them runs meanwhile and this replica never has two slices of a budget
        // out; then look again. Those lacking a slice now count this message as waiting.
        let mut order: Vec<usize> = (0..needs.len()).collect();
        order.sort_by(|a, b| keys[*a].cmp(&keys[*b]));
        let (takes, missing) = {
            let now = Instant::now();
            let mut pools = lock(&self.pools);
            let mut takes = Vec::with_capacity(order.len());
            let mut missing = Vec::new();
            for &i in &order {
                let pool = pools.entry(keys[i].clone()).or_default();
                if pool.live(now, needs[i].day()).is_none() {
                    pool.waiting += 1;
                    missing.push(keys[i].clone());
                }
                takes.push(pool.take.clone());
            }
            (takes, missing)
        };
        // Counted as waiting until this message is done, however it ends (a student who
        // leaves drops it mid-take); no longer waiting before the takes are let go.
        let mut guards = Vec::with_capacity(takes.len());
        let _waiting = Waiting {
            leases: self,
            keys: missing,
        };
        for m in takes {
            guards.push(m.lock_owned().await);
        }
        self.take_missing(needs, &keys).await
    }

    /// With the takes of the missing budgets held: spends what is held here, and takes a
    /// slice of each budget still missing; all or none.
    async fn take_missing(
        &self,
        needs: &[Need<'_>],
        keys: &[String],
    ) -> Result<Vec<Left>, Refused> {
        // Reserve one event of each budget that has a live slice now; take the others.
        let mut held: Vec<Option<u64>> = Vec::with_capacity(needs.len());
        let mut rates = Vec::new();
        let mut quota = None;
        // This budget's finished slices go back with the take: never more than one slice of
        // a budget unreturned here, whatever the returner's pace.
        let mut returns: Vec<(String, Slice)> = Vec::new();
        {
            let now = Instant::now();
            let mut pools = lock(&self.pools);
            for (need, key) in needs.iter().zip(keys) {
                let pool = pools.entry(key.clone()).or_default();
                match pool.live(now, need.day()) {
                    Some(i) => {
                        pool.slices[i].left -= 1;
                        held.push(Some(pool.slices[i].local));
                    }
                    None => {
                        held.push(None);
                        let day = need.day();
                        let (done, live): (Vec<Slice>, Vec<Slice>) =
                            std::mem::take(&mut pool.slices)
                                .into_iter()
                                .partition(|s| s.lease_id != 0 && s.day == day);
                        pool.slices = live;
                        returns.extend(done.into_iter().map(|s| (key.clone(), s)));
                        let shape = need.shape();
                        let need_now = pool.waiting.max(1);
                        let want = need_now
                            .saturating_add(pool.last_window.max(pool.this_window))
                            .min(shape.largest)
                            .max(need_now.min(shape.largest));
                        match need {
                            Need::Rate { key, gcra } => rates.push(RateAsk {
                                key,
                                gcra: *gcra,
                                need: need_now.min(shape.largest),
                                want,
                                reserve: shape.reserve,
                            }),
                            Need::Quota {
                                class_id,
                                day,
                                quota: q,
                            } => {
                                quota = Some(QuotaAsk {
                                    class_id,
                                    day: *day,
                                    quota: *q,
                                    need: need_now.min(shape.largest),
                                    want,
                                    reserve: shape.reserve,
                                })
                            }
                        }
                    }
                }
            }
        }
        let all_held = held.iter().all(Option::is_some);
        let sent = Instant::now();
        let answer = if all_held {
            Ok(Ok(Leased {
                rates: Vec::new(),
                quota: None,
            }))
        } else {
            self.store
                .take_leases(
                    &rates,
                    quota.as_ref(),
                    self.lease,
                    &returns
                        .iter()
                        .map(|(_, s)| (s.lease_id, s.left))
                        .collect::<Vec<_>>(),
                )
                .await
        };
        let now = Instant::now();
        let mut pools = lock(&self.pools);
        let leased = match answer {
            Ok(Ok(leased)) => leased,
            refused => {
                if refused.is_err() {
                    // The statement failed, so nothing was returned: the returner tries again.
                    for (key, slice) in returns {
                        pools.entry(key).or_default().slices.push(slice);
                    }
                }
                // Nothing taken: what was reserved here goes back to its slice.
                // (A slice returned meanwhile keeps it spent: never more than granted.)
                for (key, h) in keys.iter().zip(&held) {
                    if let (Some(local), Some(pool)) = (h, pools.get_mut(key))
                        && let Some(s) = pool.slices.iter_mut().find(|s| s.local == *local)
                    {
                        s.left += 1;
                    }
                }
                return Err(match refused {
                    Ok(Err(Admission::Wait(i, wait))) => {
                        // `i` counts the rate budgets asked for; name it among all needed.
                        let asked: Vec<usize> = (0..needs.len())
                            .filter(|&j| held[j].is_none() && matches!(needs[j], Need::Rate { .. }))
                            .collect();
                        Refused::Budget(Admission::Wait(asked.get(i).copied().unwrap_or(0), wait))
                    }
                    Ok(Err(Admission::Quota)) => Refused::Budget(Admission::Quota),
                    Err(e) => Refused::Database(e),
                    Ok(Ok(_)) => unreachable!("matched above"),
                });
            }
        };
        // A slice is spent during the first half of its lease, counted from before the
        // statement was sent, so the database's clock has not ended it yet.
        let use_until = sent + self.lease / 2;
        let mut rates = leased.rates.into_iter();
        let mut quota = leased.quota;
        let mut left = Vec::with_capacity(needs.len());
        for ((need, key), h) in needs.iter().zip(keys).zip(&held) {
            let pool = pools.entry(key.clone()).or_default();
            if h.is_none() {
                let grant = match need {
                    Need::Rate { .. } => {
                        let (g, fill) = rates.next().expect("a grant per rate asked");
                        pool.fill = Some((fill, sent));
                        g
                    }
                    Need::Quota { .. } => {
                        let (g, used) = quota.take().expect("the quota's grant");
                        pool.used = used;
                        g
                    }
                };
                if grant.granted > 1 {
                    pool.slices.push(Slice {
                        local: self
                            .next_local
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                        lease_id: grant.lease_id,
                        left: grant.granted - 1,
                        use_until,
                        day: need.day(),
                    });
                }
            }
            pool.count_spent(now);
            left.push(pool.left(need, now));
        }
        Ok(left)
    }

    /// Takes out of the pools every slice that is finished (spent, or past its use) or,
    /// with `all`, every slice: what is to be returned.
    fn finished(&self, all: bool) -> Vec<Returned> {
        let now = Instant::now();
        let mut pools = lock(&self.pools);
        let mut out = Vec::new();
        for (key, pool) in pools.iter_mut() {
            pool.slices.retain(|s| {
                let done = all || s.left == 0 || s.use_until <= now;
                if done && s.lease_id != 0 {
                    out.push(Returned {
                        lease_id: s.lease_id,
                        key: match s.day {
                            Some(_) => key.strip_prefix("q:").unwrap_or(key).to_owned(),
                            None => key.clone(),
                        },
                        day: s.day.map(|d| d.to_string()),
                        unused: s.left,
                    });
                }
                !done
            });
        }
        pools.retain(|_, p| !p.idle(now));
        out
    }

    async fn give_back(&self, back: Vec<Returned>) {
        if back.is_empty() {
            return;
        }
        if let Err(e) = self.store.return_leases(&back).await {
            // The database takes them back itself when their leases end.
            tracing::warn!(error = %e, leases = back.len(), "budget leases: cannot return; the database takes them back when they expire");
        }
    }

    /// Returns finished slices every few moments, until [`Leases::close`].
    pub async fn run(self: Arc<Self>) {
        let every = (self.lease / 8).max(Duration::from_millis(20));
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let back = self.finished(false);
            self.give_back(back).await;
        }
    }

    /// Stops the returner and returns every slice held (graceful shutdown).
    pub async fn close(&self) {
        self.stop.cancel();
        let back = self.finished(true);
        self.give_back(back).await;
    }

    /// Events held here, unspent, over all budgets (tests and logs).
    pub fn unspent(&self) -> u32 {
        lock(&self.pools).values().map(Pool::unspent).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_are_a_thirty_second_of_a_budget_and_an_eighth_is_kept_back() {
        assert_eq!(
            Shape::of(3),
            Shape {
                largest: 1,
                reserve: 0
            }
        );
        assert_eq!(
            Shape::of(320),
            Shape {
                largest: 10,
                reserve: 40
            }
        );
        assert_eq!(Shape::of(1_000_000).largest, 31_250);
    }

    #[test]
    fn recent_demand_counts_the_previous_window_only_if_it_just_ended() {
        let mut p = Pool::default();
        let t0 = Instant::now();
        for _ in 0..5 {
            p.count_spent(t0);
        }
        p.count_spent(t0 + RECENT + Duration::from_millis(1));
        assert_eq!((p.last_window, p.this_window), (5, 1));
        p.count_spent(t0 + RECENT * 5);
        assert_eq!(
            (p.last_window, p.this_window),
            (0, 1),
            "an idle gap forgets"
        );
    }
}
