//! Rate limits: the generic cell rate algorithm (GCRA) per key, in memory.
//!
//! GCRA keeps one instant per key (the "theoretical arrival time" of the next event), so
//! a budget costs one map entry, refills smoothly, and allows a burst of up to `count`.
//! Several keys can be decided together ([`MemoryGcra::admit`]): either every one of them
//! has room and all are counted, or none is, so a refused chat message does not also
//! spend the class's budget. [`crate::limits`] puts the product's limits on top, and on
//! PostgreSQL runs the same algorithm in the database so replicas share one budget.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::basics::lock;
use crate::config::{Gcra, Rate};

/// Events a budget still has room for when it runs `fill` ahead of the clock, and the
/// whole seconds until it is whole again (rounded up, so a student never waits in vain).
pub fn left(g: Gcra, fill: Duration) -> (u32, u64) {
    let room = g.period.saturating_sub(fill);
    let n = room.as_nanos() / g.interval.as_nanos().max(1);
    (n.min(u128::from(u32::MAX)) as u32, retry_secs(fill))
}

/// Keys whose budget is whole again are dropped when the map reaches this size.
const PRUNE_AT: usize = 10_000;

/// Many keyed GCRA budgets in one map (each call says which rate a key has).
#[derive(Debug, Default)]
pub struct MemoryGcra {
    tat: Mutex<HashMap<String, Instant>>,
}

impl MemoryGcra {
    /// Decides every `(key, rate)` together: `Err((index, wait))` names the first budget
    /// without room and counts nothing; otherwise, when `count`, each key spends one event.
    pub fn admit(&self, checks: &[(&str, Gcra)], count: bool) -> Result<(), (usize, Duration)> {
        let spend = if count { checks.len() } else { 0 };
        self.admit_at(checks, spend, Instant::now()).map(drop)
    }

    /// Decides every `(key, rate)` together and spends one event from each of the first
    /// `spend` of them (the rest are only checked); `Err((index, wait))` counts nothing.
    /// Deciding and counting under one lock is what stops a burst of parallel attempts
    /// from all passing a check that none of them has counted yet.
    pub fn spend(&self, checks: &[(&str, Gcra)], spend: usize) -> Result<(), (usize, Duration)> {
        self.admit_at(checks, spend, Instant::now()).map(drop)
    }

    /// As [`MemoryGcra::admit`] with `count`, and says per key how far its budget now runs
    /// ahead of the clock (see [`left`]).
    pub fn admit_counted(
        &self,
        checks: &[(&str, Gcra)],
    ) -> Result<Vec<Duration>, (usize, Duration)> {
        self.admit_at(checks, checks.len(), Instant::now())
    }

    fn admit_at(
        &self,
        checks: &[(&str, Gcra)],
        spend: usize,
        now: Instant,
    ) -> Result<Vec<Duration>, (usize, Duration)> {
        let mut map = lock(&self.tat);
        for (i, (key, g)) in checks.iter().enumerate() {
            let tat = map.get(*key).copied().unwrap_or(now).max(now);
            let next = tat + g.interval;
            if next.duration_since(now) > g.period {
                return Err((i, next.duration_since(now) - g.period));
            }
        }
        let mut fill = Vec::with_capacity(checks.len());
        if spend > 0 {
            if map.len() >= PRUNE_AT {
                map.retain(|_, t| *t > now);
            }
            for (key, g) in &checks[..spend.min(checks.len())] {
                let tat = map.get(*key).copied().unwrap_or(now).max(now) + g.interval;
                map.insert((*key).to_owned(), tat);
                fill.push(tat - now);
            }
        }
        Ok(fill)
    }

    /// Gives one event back (never more than a whole budget).
    pub fn refund(&self, key: &str, g: Gcra) {
        self.refund_by(key, g.interval);
    }

    /// Gives `time` worth of events back (a budget never becomes more than whole).
    pub fn refund_by(&self, key: &str, time: Duration) {
        let now = Instant::now();
        let mut map = lock(&self.tat);
        if let Some(t) = map.get_mut(key) {
            *t = t.checked_sub(time).unwrap_or(now).max(now);
        }
    }

    /// Drops the keys that carry no information any more.
    pub fn prune(&self) -> usize {
        let now = Instant::now();
        let mut map = lock(&self.tat);
        let before = map.len();
        map.retain(|_, t| *t > now);
        before - map.len()
    }

    pub fn len(&self) -> usize {
        lock(&self.tat).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A single GCRA budget per key (the dashboard's password limiter uses it).
#[derive(Debug)]
pub struct MemoryLimiter {
    gcra: Gcra,
    map: MemoryGcra,
}

impl MemoryLimiter {
    pub fn new(rate: Rate) -> Self {
        Self {
            gcra: Gcra::new(rate),
            map: MemoryGcra::default(),
        }
    }

    /// `Err(wait)` if one more event would exceed the limit; nothing is counted.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        self.map.admit(&[(key, self.gcra)], false).map_err(|e| e.1)
    }

    /// Counts one event; `Err(wait)` (and nothing counted) if that would exceed the limit.
    pub fn hit(&self, key: &str) -> Result<(), Duration> {
        self.map.admit(&[(key, self.gcra)], true).map_err(|e| e.1)
    }
}

/// Whole seconds to tell a client to wait, never 0.
pub fn retry_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(count: u32, secs: u64) -> Gcra {
        Gcra::new(Rate {
            count,
            period: Duration::from_secs(secs),
        })
    }

    #[test]
    fn allows_the_burst_then_refuses_with_a_wait() {
        let m = MemoryGcra::default();
        let now = Instant::now();
        for _ in 0..3 {
            assert!(m.admit_at(&[("a", g(3, 60))], 1, now).is_ok());
        }
        let (i, wait) = m.admit_at(&[("a", g(3, 60))], 1, now).unwrap_err();
        assert_eq!((i, wait), (0, Duration::from_secs(20)));
        assert!(
            m.admit_at(&[("b", g(3, 60))], 1, now).is_ok(),
            "keys are independent"
        );
        assert!(
            m.admit_at(&[("a", g(3, 60))], 0, now + Duration::from_secs(20))
                .is_ok(),
            "budget refills"
        );
    }

    #[test]
    fn what_is_left_counts_down_with_each_event_and_refills() {
        let m = MemoryGcra::default();
        let now = Instant::now();
        let five = g(5, 60);
        let seen: Vec<(u32, u64)> = (0..5)
            .map(|_| left(five, m.admit_at(&[("a", five)], 1, now).unwrap()[0]))
            .collect();
        assert_eq!(seen, vec![(4, 12), (3, 24), (2, 36), (1, 48), (0, 60)]);
        // 13 s later the budget has room for one more, then for two.
        let later = m.admit_at(&[("a", five)], 1, now + Duration::from_secs(13));
        assert_eq!(left(five, later.unwrap()[0]), (0, 59));
        assert_eq!(left(five, Duration::from_millis(35_500)), (2, 36));
    }

    #[test]
    fn a_refusal_by_one_key_counts_none() {
        let m = MemoryGcra::default();
        let now = Instant::now();
        assert!(m.admit_at(&[("class", g(1, 60))], 1, now).is_ok());
        let err = m
            .admit_at(&[("session", g(5, 60)), ("class", g(1, 60))], 2, now)
            .unwrap_err();
        assert_eq!(err.0, 1, "the class budget refused");
        // The session's budget was not spent by the refused message: five still fit.
        for _ in 0..5 {
            assert!(m.admit_at(&[("session", g(5, 60))], 1, now).is_ok());
        }
        assert!(m.admit_at(&[("session", g(5, 60))], 1, now).is_err());
    }

    #[test]
    fn check_does_not_count_and_refund_gives_one_back() {
        let m = MemoryGcra::default();
        let now = Instant::now();
        assert!(m.admit_at(&[("a", g(1, 60))], 0, now).is_ok());
        assert!(m.admit_at(&[("a", g(1, 60))], 1, now).is_ok());
        assert!(m.admit_at(&[("a", g(1, 60))], 0, now).is_err());
        m.refund("a", g(1, 60));
        assert!(m.admit(&[("a", g(1, 60))], false).is_ok());
    }

    #[test]
    fn spending_some_keys_only_checks_the_others() {
        let m = MemoryGcra::default();
        let now = Instant::now();
        let (spent, checked) = (g(2, 60), g(1, 60));
        for _ in 0..2 {
            assert!(m.admit_at(&[("f", spent), ("s", checked)], 1, now).is_ok());
        }
        // The checked key was never spent; the spent one is empty now.
        assert_eq!(
            m.admit_at(&[("f", spent), ("s", checked)], 1, now)
                .unwrap_err()
                .0,
            0
        );
        assert!(m.admit_at(&[("s", checked)], 1, now).is_ok());
        assert_eq!(
            m.admit_at(&[("x", spent), ("s", checked)], 1, now)
                .unwrap_err()
                .0,
            1
        );
        m.refund_by("f", Duration::from_secs(60));
        assert!(
            m.admit(&[("f", spent)], false).is_ok(),
            "a whole budget back"
        );
    }

    #[test]
    fn pruning_drops_only_whole_budgets() {
        let m = MemoryGcra::default();
        m.admit(&[("busy", g(1, 3600))], true).unwrap();
        m.tat
            .lock()
            .unwrap()
            .insert("stale".into(), Instant::now() - Duration::from_secs(1));
        assert_eq!(m.prune(), 1);
        assert_eq!(m.len(), 1);
    }
}
