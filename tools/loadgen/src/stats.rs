//! Latencies kept exactly (microseconds, a bounded number of them), and the error tally.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

/// At most this many samples are kept per run (40 MB); later ones are counted, not kept.
const MAX_SAMPLES: usize = 10_000_000;

/// Recorded latencies in microseconds.
#[derive(Debug, Default)]
pub(crate) struct Latencies {
    us: Vec<u32>,
    dropped: u64,
}

impl Latencies {
    pub(crate) fn push(&mut self, d: Duration) {
        if self.us.len() < MAX_SAMPLES {
            self.us
                .push(u32::try_from(d.as_micros()).unwrap_or(u32::MAX));
        } else {
            self.dropped += 1;
        }
    }

    pub(crate) fn merge(&mut self, other: Latencies) {
        self.dropped += other.dropped;
        for &v in &other.us {
            if self.us.len() < MAX_SAMPLES {
                self.us.push(v);
            } else {
                self.dropped += 1;
            }
        }
    }

    /// `{count, mean_us, p50_us, p90_us, p99_us, max_us}` (nearest-rank percentiles).
    pub(crate) fn summary(&mut self) -> Value {
        self.us.sort_unstable();
        let n = self.us.len();
        let pct = |p: f64| -> u32 {
            if n == 0 {
                return 0;
            }
            let rank = ((p / 100.0) * n as f64).ceil() as usize;
            self.us[rank.clamp(1, n) - 1]
        };
        let mean = if n == 0 {
            0.0
        } else {
            self.us.iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64
        };
        json!({
            "count": n,
            "mean_us": mean.round(),
            "p50_us": pct(50.0),
            "p90_us": pct(90.0),
            "p99_us": pct(99.0),
            "max_us": self.us.last().copied().unwrap_or(0),
            "not_kept": self.dropped,
        })
    }
}

/// Errors by kind, with the first message of each kind.
#[derive(Debug, Default)]
pub(crate) struct Errors {
    by_kind: BTreeMap<&'static str, (u64, String)>,
}

impl Errors {
    pub(crate) fn add(&mut self, kind: &'static str, message: impl FnOnce() -> String) {
        self.by_kind
            .entry(kind)
            .and_modify(|e| e.0 += 1)
            .or_insert_with(|| (1, message()));
    }

    pub(crate) fn merge(&mut self, other: Errors) {
        for (kind, (n, msg)) in other.by_kind {
            self.by_kind
                .entry(kind)
                .and_modify(|e| e.0 += n)
                .or_insert((n, msg));
        }
    }

    pub(crate) fn total(&self) -> u64 {
        self.by_kind.values().map(|e| e.0).sum()
    }

    /// `{kind: {count, first}}`.
    pub(crate) fn to_json(&self) -> Value {
        Value::Object(
            self.by_kind
                .iter()
                .map(|(k, (n, m))| ((*k).to_owned(), json!({"count": n, "first": m})))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut l = Latencies::default();
        for us in 1..=100 {
            l.push(Duration::from_micros(us));
        }
        let s = l.summary();
        assert_eq!(s["p50_us"], 50);
        assert_eq!(s["p99_us"], 99);
        assert_eq!(s["max_us"], 100);
        assert_eq!(Latencies::default().summary()["p99_us"], 0);
    }

    #[test]
    fn errors_count_by_kind_and_keep_the_first_message() {
        let mut e = Errors::default();
        e.add("status", || "500".into());
        e.add("status", || "502".into());
        e.add("io", || "reset".into());
        assert_eq!(e.total(), 3);
        assert_eq!(e.to_json()["status"]["first"], "500");
    }
}
