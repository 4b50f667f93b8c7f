//! What the benchmark reads about the processes under test: resident memory
//! (`/proc/PID/status`) and CPU time (`/proc/PID/stat`).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{Value, json};

/// Linux reports utime/stime in USER_HZ, which is 100 on every architecture Linux
/// supports in practice (the kernel scales to it for /proc).
const TICKS_PER_SEC: f64 = 100.0;

/// Processes named by role, `name=PID`; several PIDs may share a name (nginx's master
/// and worker) and are summed.
#[derive(Debug, Clone, Default)]
pub(crate) struct Pids(BTreeMap<String, Vec<u32>>);

impl Pids {
    pub(crate) fn parse(specs: &[String]) -> Result<Self> {
        let mut map: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        for s in specs {
            let (name, pid) = s
                .split_once('=')
                .with_context(|| format!("--pid {s:?} is not NAME=PID"))?;
            let pid = pid
                .parse()
                .with_context(|| format!("--pid {s:?}: bad PID"))?;
            map.entry(name.to_owned()).or_default().push(pid);
        }
        Ok(Self(map))
    }

    /// Sum of a `/proc/PID/status` field in kB (`VmRSS`, `VmHWM`) for each name.
    pub(crate) fn status_kb(&self, field: &str) -> BTreeMap<String, u64> {
        self.0
            .iter()
            .map(|(name, pids)| {
                let sum = pids.iter().filter_map(|&p| status_kb(p, field)).sum();
                (name.clone(), sum)
            })
            .collect()
    }

    /// CPU ticks so far for each name, plus `loadgen` (this process).
    fn ticks(&self) -> BTreeMap<String, u64> {
        let mut m: BTreeMap<String, u64> = self
            .0
            .iter()
            .map(|(name, pids)| {
                let sum = pids.iter().filter_map(|&p| cpu_ticks(&p.to_string())).sum();
                (name.clone(), sum)
            })
            .collect();
        m.insert("loadgen".into(), cpu_ticks("self").unwrap_or(0));
        m
    }

    pub(crate) fn cpu_meter(&self) -> CpuMeter {
        CpuMeter {
            pids: self.clone(),
            start: self.ticks(),
        }
    }
}

/// CPU used by each named process between `cpu_meter()` and `finish`.
#[derive(Debug)]
pub(crate) struct CpuMeter {
    pids: Pids,
    start: BTreeMap<String, u64>,
}

impl CpuMeter {
    /// `{name: {cpu_s, cores}}` over `elapsed`.
    pub(crate) fn finish(&self, elapsed: Duration) -> Value {
        let end = self.pids.ticks();
        Value::Object(
            end.iter()
                .map(|(name, &t)| {
                    let ticks = t.saturating_sub(self.start.get(name).copied().unwrap_or(0));
                    let secs = ticks as f64 / TICKS_PER_SEC;
                    (
                        name.clone(),
                        json!({
                            "cpu_s": secs,
                            "cores": round2(secs / elapsed.as_secs_f64().max(1e-9)),
                        }),
                    )
                })
                .collect(),
        )
    }
}

/// Adds `us_per_req` (CPU microseconds per successful request) to each entry of `cpu`.
pub(crate) fn per_request(cpu: &mut Value, requests: u64) {
    if let Value::Object(m) = cpu {
        for v in m.values_mut() {
            let s = v["cpu_s"].as_f64().unwrap_or(0.0);
            v["us_per_req"] = if requests == 0 {
                Value::Null
            } else {
                json!((s * 1e6 / requests as f64).round())
            };
        }
    }
}

pub(crate) fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// utime + stime of `/proc/<which>/stat` (`which` is a PID or `self`).
fn cpu_ticks(which: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{which}/stat")).ok()?;
    parse_stat_ticks(&text)
}

fn parse_stat_ticks(stat: &str) -> Option<u64> {
    // The command name is in parentheses and may hold spaces: count fields after it.
    // After ")" come field 3 (state) onwards; utime is field 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_ticks_skip_a_command_name_with_spaces() {
        let stat = "42 (a b) S 1 42 42 0 -1 4194560 100 0 0 0 7 5 0 0 20 0 1 0 1 1 1";
        assert_eq!(parse_stat_ticks(stat), Some(12));
    }

    #[test]
    fn this_process_has_a_resident_size() {
        let pids = Pids::parse(&[format!("me={}", std::process::id())]).unwrap();
        assert!(pids.status_kb("VmRSS")["me"] > 0);
        assert!(Pids::parse(&["nope".into()]).is_err());
    }
}
