//! Rate limits: generic cell rate algorithm (GCRA) per key, in memory.
//!
//! Behind the [`Limiter`] trait so a shared store (Redis, PostgreSQL) can stand in when
//! several replicas must share one budget.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::Rate;

/// A limit keyed by whatever the caller counts (an address, a class, a session).
pub trait Limiter: Send + Sync + std::fmt::Debug {
    /// `Err(wait)` if one more event would exceed the limit; nothing is counted.
    fn check(&self, key: &str) -> Result<(), Duration>;
    /// Counts one event; `Err(wait)` (and nothing counted) if that would exceed the limit.
    fn hit(&self, key: &str) -> Result<(), Duration>;
}

/// In-memory GCRA: `count` events per `period`, with bursts up to `count`.
#[derive(Debug)]
pub struct MemoryLimiter {
    interval: Duration,
    period: Duration,
    /// Per key, the "theoretical arrival time" of the next event.
    tat: Mutex<HashMap<String, Instant>>,
}

impl MemoryLimiter {
    pub fn new(rate: Rate) -> Self {
        Self {
            interval: rate.period / rate.count,
            period: rate.period,
            tat: Mutex::new(HashMap::new()),
        }
    }

    fn decide(&self, key: &str, count: bool, now: Instant) -> Result<(), Duration> {
        let mut map = self.tat.lock().unwrap_or_else(|p| p.into_inner());
        let tat = map.get(key).copied().unwrap_or(now).max(now);
        let next = tat + self.interval;
        if next.duration_since(now) > self.period {
            return Err(next.duration_since(now) - self.period);
        }
        if count {
            if map.len() >= 10_000 {
                // Keys whose budget is whole again carry no information: drop them.
                map.retain(|_, t| *t > now);
            }
            map.insert(key.to_owned(), next);
        }
        Ok(())
    }
}

impl Limiter for MemoryLimiter {
    fn check(&self, key: &str) -> Result<(), Duration> {
        self.decide(key, false, Instant::now())
    }

    fn hit(&self, key: &str) -> Result<(), Duration> {
        self.decide(key, true, Instant::now())
    }
}

/// Whole seconds to tell a client to wait, never 0.
pub fn retry_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_the_burst_then_refuses_with_a_wait() {
        let l = MemoryLimiter::new(Rate {
            count: 3,
            period: Duration::from_secs(60),
        });
        let now = Instant::now();
        for _ in 0..3 {
            assert!(l.decide("a", true, now).is_ok());
        }
        let wait = l.decide("a", true, now).unwrap_err();
        assert_eq!(wait, Duration::from_secs(20));
        assert!(l.decide("b", true, now).is_ok(), "keys are independent");
        assert!(
            l.decide("a", false, now + Duration::from_secs(20)).is_ok(),
            "budget refills"
        );
    }

    #[test]
    fn check_does_not_count() {
        let l = MemoryLimiter::new(Rate {
            count: 1,
            period: Duration::from_secs(60),
        });
        let now = Instant::now();
        assert!(l.decide("a", false, now).is_ok());
        assert!(l.decide("a", false, now).is_ok());
        assert!(l.decide("a", true, now).is_ok());
        assert!(l.decide("a", false, now).is_err());
    }
}
