//! The product's limits on sign-ins and messages, in one place.
//!
//! - **Wrong codes per address** (`LOGIN_FAILURES_PER_ADDRESS`, and a daily ceiling on top):
//!   a guesser is stopped after a burst, a classroom behind one NAT address that mistypes
//!   is not (the burst is its margin, and each right code gives one daily failure back).
//!   An IPv6 client counts per /64, and also per /56 and /48 (`LOGIN_FAILURES_PER_IPV6_56`,
//!   `_48`): one person with a routed /48 holds 65,536 /64s. Every attempt is counted as a
//!   failure *before* its code is checked, in the same step that decides it may go ahead,
//!   and given back when the code is right: a burst of parallel guesses cannot all pass a
//!   check that none of them has counted yet.
//!   There is deliberately no budget over all addresses: one that wrong codes can fill
//!   lets an attacker lock every class out, which is worse than what it buys.
//! - **Sign-ins per address** (`SIGN_INS_PER_ADDRESS`): sessions are free to make, so a
//!   script could otherwise mint a session per message.
//! - **Messages per session, per class and per class-day**: the per-session rate stops a
//!   runaway tab; the class ceiling (`CLASS_MESSAGES_PER_MINUTE`) bounds what a code holder
//!   who scripts sign-ins can spend; the daily quota caps the day.
//!
//! On SQLite (one process) the budgets live in memory. On PostgreSQL they live in the
//! database, so every replica spends from one budget. Sign-ins and wrong codes cost one
//! statement each, decided before the code is checked (exact: a guesser's parallel burst is
//! evaluated at most to its budget, whichever replicas it reaches).
//!
//! **Messages spend leased slices** ([`leases`]): a replica takes a slice of each budget a
//! message needs (the session's rate, the class's ceiling, the class-day quota) in one
//! statement, spends it in memory, and returns what it did not spend; a message costs a
//! statement only when its replica's slice is empty. Batched counting (spend first, settle
//! later) was the other choice; it cannot refuse at the ceiling without asking first, so
//! every replica could overshoot by all it admitted since its last settlement. A slice is
//! granted by the same GCRA (or quota count) as a single message was, sized to the messages
//! waiting for it plus this replica's last 100 ms of demand, never more than 1/32 of the
//! budget (L = max(1, N/32)), and beyond the messages in hand only while more than 1/8
//! would remain: budgets under 64 a minute (the defaults: 10 per session, 60 per class)
//! still take a statement per message and stay exact. The bounds, for a budget of N:
//! - While every replica lives, every message admitted was granted by the database, so the
//!   GCRA holds for grants; a slice is spent within half a lease (`BUDGET_LEASE`, T) after
//!   its grant, so over any window W the count is at most the exact GCRA's for W + T/2
//!   (N + (W + T/2)·N/period), and a quota is never passed.
//! - A replica that dies (or cannot return a slice before its lease ends) has its unreturned
//!   slices given back when the lease ends, as recorded at the grant: what it spent of them
//!   after taking them is given back too. Takes of a budget are single flight and hand the
//!   finished slice back in the same statement, so a replica has at most one slice of a
//!   budget out: at most L − 1 more per budget per death (rates and the daily quota alike;
//!   for a quota of Q: at most Q + L − 1 a day per dead replica).
//! - A replica holds at most the slices it took for messages in hand, plus up to 100 ms of
//!   its demand while the budget has more than 1/8 left: a student elsewhere is refused for
//!   a slice held here for at most T/2, and never near the end of a budget.
//!
//! When the database does not answer, messages fall back to this replica's memory (students
//! keep chatting) and sign-ins are refused with 503. A class with a daily quota is the
//! exception: no replica can know what the others spend meanwhile, so its messages are
//! refused while the database is away (429 if the last count the database gave already
//! reached the quota, else 503) rather than each replica granting what is left, or a new
//! day, on its own.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ipnet::Ipv6Net;

use crate::basics::lock;
use crate::config::Settings;
use classchat_shared::{Allowance, LimitKind, LimitsLeft};

use crate::config::Gcra;
use crate::error::AppError;
use crate::limiter::{MemoryGcra, left, retry_secs};
use crate::store::Store;

pub mod leases;

use leases::{Leases, Need, Refused};

/// Which budget refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    AddressFailures,
    AddressSignIns,
    Session,
    Class,
}

/// Why a sign-in or a message may not go ahead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A rate: try again after `wait`.
    TooFast { budget: Budget, wait: Duration },
    /// The class's daily quota is spent.
    Quota,
    /// The shared budget could not be consulted (the database is down).
    Unavailable,
}

impl Refusal {
    /// A refused sign-in as the student reads it.
    pub fn sign_in_error(self) -> AppError {
        match self {
            Refusal::TooFast { budget, wait } => {
                let secs = retry_secs(wait);
                AppError::rate_limited(
                    secs,
                    if budget == Budget::AddressSignIns {
                        format!(
                            "Too many sign-ins from your network. Please wait {secs} seconds and try again."
                        )
                    } else {
                        format!("Too many wrong codes. Please wait {secs} seconds and try again.")
                    },
                )
            }
            Refusal::Quota | Refusal::Unavailable => AppError::Unavailable,
        }
    }

    /// A refused message as the student reads it; `day_ends_in` (seconds) is when a spent
    /// daily quota comes back.
    pub fn message_error(self, day_ends_in: u64) -> AppError {
        match self {
            Refusal::TooFast { budget, wait } => {
                let secs = retry_secs(wait);
                if budget == Budget::Class {
                    AppError::limit_hit(
                        LimitKind::ClassMinute,
                        secs,
                        format!(
                            "Your class is sending more messages than its limit allows. Please wait {secs} seconds."
                        ),
                    )
                } else {
                    AppError::limit_hit(
                        LimitKind::Minute,
                        secs,
                        format!(
                            "You are sending messages too quickly. Please wait {secs} seconds."
                        ),
                    )
                }
            }
            Refusal::Quota => AppError::limit_hit(
                LimitKind::Day,
                day_ends_in,
                "Your class has used today's messages. Please try again tomorrow.",
            ),
            Refusal::Unavailable => AppError::Unavailable,
        }
    }
}

/// One limited message: who sends it and the limits that apply.
#[derive(Debug, Clone)]
pub struct Message<'a> {
    pub session_id: &'a str,
    /// Messages per minute for the session; 0: none.
    pub session_per_minute: u32,
    pub class_id: &'a str,
    /// Messages per minute for the whole class; 0: none.
    pub class_per_minute: u32,
    /// The class's local day and its quota; quota 0: none.
    pub day: jiff::civil::Date,
    pub quota: u32,
    /// Seconds until the class's local midnight, when the quota is whole again.
    pub day_ends_in: u64,
}

/// The limits, and where their budgets live.
#[derive(Debug)]
pub struct Limits {
    failures: Gcra,
    /// Wrong codes per day per address, if limited.
    failures_daily: Option<Gcra>,
    /// Wrong codes per IPv6 /56 and per /48.
    failures_56: Gcra,
    failures_48: Gcra,
    sign_ins: Gcra,
    /// This process's budgets: all of them on SQLite, the fallback on PostgreSQL.
    memory: MemoryGcra,
    daily: DailyCounter,
    /// Set on PostgreSQL: budgets are shared through the database.
    shared: Option<Store>,
    /// On PostgreSQL: this replica's slices of the message budgets.
    leases: Option<Arc<Leases>>,
    /// After a failed database call, until when not to try again: while the database is
    /// away every call would wait for a connection, and students should not.
    away_until: std::sync::Mutex<Option<std::time::Instant>>,
}

/// How long the database is left alone after a failed call.
const AWAY_FOR: Duration = Duration::from_secs(2);

impl Limits {
    /// On PostgreSQL, starts the task that returns finished leases (see [`Limits::close`]):
    /// call it inside the runtime.
    pub fn new(settings: &Settings, store: &Store, daily: DailyCounter) -> Self {
        let day = Duration::from_secs(86_400);
        let leases = store.is_postgres().then(|| {
            let leases = Arc::new(Leases::new(store.clone(), settings.budget_lease));
            tokio::spawn(leases.clone().run());
            leases
        });
        Self {
            failures: Gcra::new(settings.login_failures_per_address),
            failures_daily: (settings.login_failures_per_address_per_day > 0).then(|| {
                Gcra::new(crate::config::Rate {
                    count: settings.login_failures_per_address_per_day,
                    period: day,
                })
            }),
            failures_56: Gcra::new(settings.login_failures_per_ipv6_56),
            failures_48: Gcra::new(settings.login_failures_per_ipv6_48),
            sign_ins: Gcra::new(settings.sign_ins_per_address),
            memory: MemoryGcra::default(),
            daily,
            shared: store.is_postgres().then(|| store.clone()),
            leases,
            away_until: std::sync::Mutex::new(None),
        }
    }

    /// The shared store, unless it failed a moment ago.
    fn shared(&self) -> Option<Result<&Store, Refusal>> {
        let store = self.shared.as_ref()?;
        let away = lock(&self.away_until);
        Some(match *away {
            Some(until) if std::time::Instant::now() < until => Err(Refusal::Unavailable),
            _ => Ok(store),
        })
    }

    /// Notes a failed database call.
    fn away(&self, e: &sqlx::Error) -> Refusal {
        let mut away = lock(&self.away_until);
        if away.is_none() {
            tracing::warn!(error = %e, "shared limits: the database is not answering");
        }
        *away = Some(std::time::Instant::now() + AWAY_FOR);
        Refusal::Unavailable
    }

    /// Notes a successful database call.
    fn back(&self) {
        let mut away = lock(&self.away_until);
        if away.take().is_some() {
            tracing::info!("shared limits: the database answers again");
        }
    }

    /// Runs one shared-budget call through the away/back bookkeeping.
    async fn call<T>(
        &self,
        f: impl std::future::Future<Output = sqlx::Result<T>>,
    ) -> Result<T, Refusal> {
        match f.await {
            Ok(v) => {
                self.back();
                Ok(v)
            }
            Err(e) => Err(self.away(&e)),
        }
    }

    /// The wrong-code budgets of an address (each refused as [`Budget::AddressFailures`]),
    /// and what a right code gives back to each: its own attempt, and on the daily budget
    /// one earlier failure too (a school's real students pay back its typos; a guesser has
    /// no right codes). The IPv6 prefixes get no such bonus: sign-ins from a /48's many /64s
    /// are not bounded together, so paying back there would unbound the prefix's budget.
    fn failure_budgets<'k>(&self, keys: &'k AddressKeys) -> Vec<(&'k str, Gcra, Duration)> {
        let mut v = vec![(
            keys.failures.as_str(),
            self.failures,
            self.failures.interval,
        )];
        if let Some(d) = self.failures_daily {
            v.push((keys.failures_daily.as_str(), d, d.interval * 2));
        }
        if let Some((k56, k48)) = &keys.prefixes {
            v.push((k56.as_str(), self.failures_56, self.failures_56.interval));
            v.push((k48.as_str(), self.failures_48, self.failures_48.interval));
        }
        v
    }

    /// Before a code is checked: counts the attempt as a wrong code on every failure budget
    /// of the address and checks the sign-in budget has room, in one step (one statement on
    /// PostgreSQL), all or nothing. A refused attempt is not evaluated and counts nothing.
    pub async fn attempt(&self, ip: Option<IpAddr>) -> Result<Attempt, Refusal> {
        let keys = AddressKeys::new(ip);
        self.spend_attempt(&keys).await?;
        Ok(Attempt { keys })
    }

    async fn spend_attempt(&self, keys: &AddressKeys) -> Result<(), Refusal> {
        let failures = self.failure_budgets(keys);
        let mut all: Vec<(&str, Gcra)> = failures.iter().map(|(k, g, _)| (*k, *g)).collect();
        all.push((keys.sign_ins.as_str(), self.sign_ins));
        let outcome = match self.shared() {
            Some(store) => self.call(store?.gcra_attempt(&all, failures.len())).await?,
            None => self.memory.spend(&all, failures.len()),
        };
        outcome.map_err(|(i, wait)| Refusal::TooFast {
            budget: if i < failures.len() {
                Budget::AddressFailures
            } else {
                Budget::AddressSignIns
            },
            wait,
        })
    }

    /// The attempt's code was right: the attempt is given back (see
    /// [`Limits::failure_budgets`]) and one sign-in is spent, if the sign-in budget has room.
    pub async fn signed_in(&self, attempt: Attempt) -> Result<(), Refusal> {
        self.right_code(&attempt, true).await
    }

    /// The attempt's code was right but its class is disabled: nothing was guessed, so the
    /// attempt is given back (no bonus) and no sign-in is spent.
    pub async fn not_a_guess(&self, attempt: Attempt) -> Result<(), Refusal> {
        self.right_code(&attempt, false).await
    }

    async fn right_code(&self, attempt: &Attempt, sign_in: bool) -> Result<(), Refusal> {
        let keys = &attempt.keys;
        let refunds: Vec<(&str, Duration)> = self
            .failure_budgets(keys)
            .into_iter()
            .map(|(k, g, back)| (k, if sign_in { back } else { g.interval }))
            .collect();
        let sign_in = sign_in.then_some((keys.sign_ins.as_str(), self.sign_ins));
        let outcome = match self.shared() {
            Some(store) => self.call(store?.gcra_right_code(sign_in, &refunds)).await?,
            None => {
                for (k, back) in &refunds {
                    self.memory.refund_by(k, *back);
                }
                match sign_in {
                    Some(si) => self.memory.admit(&[si], true).map_err(|(_, wait)| wait),
                    None => Ok(()),
                }
            }
        };
        outcome.map_err(|wait| Refusal::TooFast {
            budget: Budget::AddressSignIns,
            wait,
        })
    }

    /// Spends one message from the session's, the class's and the class-day's budgets,
    /// all or none, and says what is left of those that are set (the per-minute part is the
    /// tighter of the session's and the class's).
    pub async fn admit_message(&self, m: &Message<'_>) -> Result<LimitsLeft, Refusal> {
        let session_key = format!("s:{}", m.session_id);
        let class_key = format!("c:{}", m.class_id);
        let mut budgets = Vec::with_capacity(2);
        if m.session_per_minute > 0 {
            budgets.push((
                session_key.as_str(),
                Gcra::per_minute(m.session_per_minute),
                Budget::Session,
            ));
        }
        if m.class_per_minute > 0 {
            budgets.push((
                class_key.as_str(),
                Gcra::per_minute(m.class_per_minute),
                Budget::Class,
            ));
        }
        let plain: Vec<(&str, Gcra)> = budgets.iter().map(|(k, g, _)| (*k, *g)).collect();
        if let Some(shared) = self.shared() {
            if let (Ok(_), Some(leases)) = (shared, &self.leases) {
                let mut needs: Vec<Need<'_>> = plain
                    .iter()
                    .map(|(key, gcra)| Need::Rate { key, gcra: *gcra })
                    .collect();
                if m.quota > 0 {
                    needs.push(Need::Quota {
                        class_id: m.class_id,
                        day: m.day,
                        quota: m.quota,
                    });
                }
                match leases.admit(&needs).await {
                    Ok(lefts) => {
                        self.back();
                        let mut fill = Vec::with_capacity(budgets.len());
                        let mut used = None;
                        for l in lefts {
                            match l {
                                leases::Left::Fill(f) => fill.push(f),
                                leases::Left::Used(u) => used = Some(u),
                            }
                        }
                        if let Some(used) = used {
                            self.daily.observe(m.class_id, m.day, used);
                        }
                        return Ok(limits_left(m, &budgets, &fill, used));
                    }
                    Err(Refused::Budget(crate::store::Admission::Quota)) => {
                        self.back();
                        self.daily.observe(m.class_id, m.day, m.quota);
                        return Err(Refusal::Quota);
                    }
                    Err(Refused::Budget(crate::store::Admission::Wait(i, wait))) => {
                        self.back();
                        return Err(Refusal::TooFast {
                            budget: budgets[i].2,
                            wait,
                        });
                    }
                    // Students who are signed in keep chatting while the database is away,
                    // within this replica's own budgets (below).
                    Err(Refused::Database(e)) => {
                        self.away(&e);
                    }
                }
            }
            // The database is away. What the other replicas spend meanwhile is unknown, so a
            // quota is never granted from memory: a class whose last known count reached it
            // reads that its day is spent; any other quota'd class waits for the database.
            if m.quota > 0 {
                return Err(if self.daily.known(m.class_id, m.day) >= m.quota {
                    Refusal::Quota
                } else {
                    Refusal::Unavailable
                });
            }
        }
        let fill = self
            .memory
            .admit_counted(&plain)
            .map_err(|(i, wait)| Refusal::TooFast {
                budget: budgets[i].2,
                wait,
            })?;
        let Some(used) = self.daily.hit_counted(m.class_id, m.day, m.quota) else {
            // Give the rate budgets back: the message was not sent.
            for (k, g, _) in &budgets {
                self.memory.refund(k, *g);
            }
            return Err(Refusal::Quota);
        };
        Ok(limits_left(m, &budgets, &fill, Some(used)))
    }

    /// Returns every budget lease this replica holds (graceful shutdown; a replica that
    /// stops without it has its leases taken back by the database when they expire).
    pub async fn close(&self) {
        if let Some(leases) = &self.leases {
            leases.close().await;
        }
    }

    /// Events of leased budgets held by this replica, unspent.
    pub fn leased_unspent(&self) -> u32 {
        self.leases.as_ref().map_or(0, |l| l.unspent())
    }

    /// Drops in-memory budgets that are whole again.
    pub fn prune(&self) -> usize {
        self.memory.prune()
    }
}

/// What a student is told is left after `m` was admitted, from the same state that
/// admitted it: `fill[i]` is how far budget `i` runs ahead, `used` the class's messages today.
fn limits_left(
    m: &Message<'_>,
    budgets: &[(&str, Gcra, Budget)],
    fill: &[std::time::Duration],
    used: Option<u32>,
) -> LimitsLeft {
    let minute = budgets
        .iter()
        .zip(fill)
        .map(|((_, g, _), f)| {
            let (left, reset_secs) = left(*g, *f);
            Allowance { left, reset_secs }
        })
        .min_by_key(|a| (a.left, std::cmp::Reverse(a.reset_secs)));
    let day = match used {
        Some(used) if m.quota > 0 => Some(Allowance {
            left: m.quota.saturating_sub(used),
            reset_secs: m.day_ends_in,
        }),
        _ => None,
    };
    LimitsLeft { minute, day }
}

/// A sign-in attempt that went ahead (counted as a wrong code until its code proves right).
#[derive(Debug)]
#[must_use = "a right code gives its attempt back with `signed_in` or `not_a_guess`"]
pub struct Attempt {
    keys: AddressKeys,
}

/// The key an address counts under: an IPv4 address as itself, an IPv6 one by its /64 (one
/// host usually holds a whole /64 and can pick a new address in it for every request), an
/// IPv4-mapped IPv6 address as its IPv4 address.
pub fn address_key(ip: Option<IpAddr>) -> String {
    match ip.map(|ip| ip.to_canonical()) {
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => prefix(v6, 64),
        None => "unknown".to_owned(),
    }
}

fn prefix(v6: std::net::Ipv6Addr, len: u8) -> String {
    Ipv6Net::new(v6, len)
        .expect("64, 56 and 48 are valid IPv6 prefix lengths")
        .trunc()
        .to_string()
}

/// The keys an address is counted under.
#[derive(Debug)]
struct AddressKeys {
    failures: String,
    failures_daily: String,
    sign_ins: String,
    /// An IPv6 client's /56 and /48.
    prefixes: Option<(String, String)>,
}

impl AddressKeys {
    fn new(ip: Option<IpAddr>) -> Self {
        let address = address_key(ip);
        Self {
            failures: format!("f:{address}"),
            failures_daily: format!("fd:{address}"),
            sign_ins: format!("si:{address}"),
            prefixes: match ip.map(|ip| ip.to_canonical()) {
                Some(IpAddr::V6(v6)) => Some((
                    format!("f56:{}", prefix(v6, 56)),
                    format!("f48:{}", prefix(v6, 48)),
                )),
                _ => None,
            },
        }
    }
}

/// Messages per class per local day, counted in memory and seeded from the log at start.
/// On SQLite it is the count the quota is judged by; on PostgreSQL the database counts, and
/// this copy keeps the last count the database gave (what is known while it is away).
#[derive(Debug, Default)]
pub struct DailyCounter {
    counts: Mutex<HashMap<String, (jiff::civil::Date, u32)>>,
}

impl DailyCounter {
    pub fn seed(&self, today: jiff::civil::Date, rows: Vec<(String, i64)>) {
        let mut m = lock(&self.counts);
        for (class, n) in rows {
            m.insert(class, (today, n.clamp(0, u32::MAX as i64) as u32));
        }
    }

    /// The database said the class has sent `used` messages on `day`: never less than known.
    pub fn observe(&self, class: &str, day: jiff::civil::Date, used: u32) {
        let mut m = lock(&self.counts);
        let entry = m.entry(class.to_owned()).or_insert((day, 0));
        if entry.0 != day {
            *entry = (day, 0);
        }
        entry.1 = entry.1.max(used);
    }

    /// The class's messages on `day`, as far as this process knows.
    pub fn known(&self, class: &str, day: jiff::civil::Date) -> u32 {
        match lock(&self.counts).get(class) {
            Some((d, n)) if *d == day => *n,
            _ => 0,
        }
    }

    /// Counts one message if the class is under `quota` today (0: no quota), and says how
    /// many the class has sent today, this one included; `None`: the quota is spent.
    pub fn hit_counted(&self, class: &str, today: jiff::civil::Date, quota: u32) -> Option<u32> {
        let mut m = lock(&self.counts);
        let entry = m.entry(class.to_owned()).or_insert((today, 0));
        if entry.0 != today {
            *entry = (today, 0);
        }
        if quota > 0 && entry.1 >= quota {
            return None;
        }
        entry.1 += 1;
        Some(entry.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_student_reads_which_limit_and_when_to_come_back() {
        let wait = Duration::from_millis(1500);
        let said = |e: AppError| e.to_api_error().error.message;
        let too_fast = |budget| Refusal::TooFast { budget, wait };
        assert_eq!(
            said(too_fast(Budget::AddressSignIns).sign_in_error()),
            "Too many sign-ins from your network. Please wait 2 seconds and try again."
        );
        assert_eq!(
            said(too_fast(Budget::AddressFailures).sign_in_error()),
            "Too many wrong codes. Please wait 2 seconds and try again."
        );
        assert_eq!(
            said(too_fast(Budget::Class).message_error(60)),
            "Your class is sending more messages than its limit allows. Please wait 2 seconds."
        );
        assert_eq!(
            said(too_fast(Budget::Session).message_error(60)),
            "You are sending messages too quickly. Please wait 2 seconds."
        );
        assert!(matches!(
            Refusal::Quota.message_error(60),
            AppError::RateLimited {
                retry_after: 60,
                limit: Some(LimitKind::Day),
                ..
            }
        ));
        assert!(matches!(
            Refusal::Unavailable.sign_in_error(),
            AppError::Unavailable
        ));
    }

    #[test]
    fn the_known_count_only_grows_within_a_day() {
        let d = DailyCounter::default();
        let day = jiff::civil::date(2026, 12, 7);
        d.observe("c", day, 8);
        d.observe("c", day, 5);
        assert_eq!(d.known("c", day), 8, "an older answer does not lower it");
        assert_eq!(d.hit_counted("c", day, 10), Some(9));
        assert_eq!(d.known("c", day.tomorrow().unwrap()), 0);
        d.observe("c", day.tomorrow().unwrap(), 1);
        assert_eq!(d.known("c", day), 0, "a new day replaced the old one");
    }
}
