//! The product's limits on sign-ins and messages, in one place.
//!
//! - **Wrong codes per address** (`LOGIN_FAILURES_PER_ADDRESS`, and a daily ceiling on top):
//!   a guesser is stopped after a burst, a classroom behind one NAT address that mistypes
//!   is not (the burst is its margin, and each right code gives one daily failure back).
//!   There is deliberately no budget over all addresses: one that wrong codes can fill
//!   lets an attacker lock every class out, which is worse than what it buys.
//! - **Sign-ins per address** (`SIGN_INS_PER_ADDRESS`): sessions are free to make, so a
//!   script could otherwise mint a session per message.
//! - **Messages per session, per class and per class-day**: the per-session rate stops a
//!   runaway tab; the class ceiling (`CLASS_MESSAGES_PER_MINUTE`) bounds what a code holder
//!   who scripts sign-ins can spend; the daily quota caps the day.
//!
//! On SQLite (one process) the budgets live in memory. On PostgreSQL they live in the
//! database, so every replica spends from one budget; a message costs one round trip
//! (all its budgets decided together by one statement). When the database does not
//! answer, messages fall back to this replica's memory (students keep chatting) and
//! sign-ins are refused with 503.

use std::time::Duration;

use crate::basics::lock;
use crate::config::Settings;
use classchat_shared::{Allowance, LimitsLeft};

use crate::limiter::{Gcra, MemoryGcra, left};
use crate::store::Store;
use crate::usage::DailyCounter;

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
    sign_ins: Gcra,
    /// This process's budgets: all of them on SQLite, the fallback on PostgreSQL.
    memory: MemoryGcra,
    daily: DailyCounter,
    /// Set on PostgreSQL: budgets are shared through the database.
    shared: Option<Store>,
    /// After a failed database call, until when not to try again: while the database is
    /// away every call would wait for a connection, and students should not.
    away_until: std::sync::Mutex<Option<std::time::Instant>>,
}

/// How long the database is left alone after a failed call.
const AWAY_FOR: Duration = Duration::from_secs(2);

impl Limits {
    pub fn new(settings: &Settings, store: &Store, daily: DailyCounter) -> Self {
        let day = Duration::from_secs(86_400);
        Self {
            failures: Gcra::new(settings.login_failures_per_address),
            failures_daily: (settings.login_failures_per_address_per_day > 0).then(|| {
                Gcra::new(crate::config::Rate {
                    count: settings.login_failures_per_address_per_day,
                    period: day,
                })
            }),
            sign_ins: Gcra::new(settings.sign_ins_per_address),
            memory: MemoryGcra::default(),
            daily,
            shared: store.is_postgres().then(|| store.clone()),
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

    fn address_budgets<'k>(&self, keys: &'k AddressKeys) -> Vec<(&'k str, Gcra, Budget)> {
        let mut v = vec![(
            keys.failures.as_str(),
            self.failures,
            Budget::AddressFailures,
        )];
        if let Some(d) = self.failures_daily {
            v.push((keys.failures_daily.as_str(), d, Budget::AddressFailures));
        }
        v.push((
            keys.sign_ins.as_str(),
            self.sign_ins,
            Budget::AddressSignIns,
        ));
        v
    }

    /// May this address try a code now? Counts nothing.
    pub async fn before_sign_in(&self, address: &str) -> Result<(), Refusal> {
        let keys = AddressKeys::new(address);
        let budgets = self.address_budgets(&keys);
        self.decide(&budgets).await
    }

    /// A wrong code from this address: counted against both failure budgets, even when
    /// they are already spent (the next attempt is refused either way).
    pub async fn wrong_code(&self, address: &str) -> Result<(), Refusal> {
        let keys = AddressKeys::new(address);
        let mut budgets = vec![(keys.failures.as_str(), self.failures)];
        if let Some(d) = self.failures_daily {
            budgets.push((keys.failures_daily.as_str(), d));
        }
        match self.shared() {
            Some(store) => self.call(store?.gcra_force(&budgets)).await,
            None => {
                for (k, g) in budgets {
                    self.memory.force(k, g);
                }
                Ok(())
            }
        }
    }

    /// A right code from this address: one sign-in counted, one daily failure given back
    /// (a school's real students pay back its typos; a guesser has no right codes).
    pub async fn signed_in(&self, address: &str) -> Result<(), Refusal> {
        let keys = AddressKeys::new(address);
        let refund = self
            .failures_daily
            .map(|g| (keys.failures_daily.as_str(), g));
        match self.shared() {
            Some(store) => self
                .call(store?.gcra_sign_in(&keys.sign_ins, self.sign_ins, refund))
                .await?
                .map_err(|wait| Refusal::TooFast {
                    budget: Budget::AddressSignIns,
                    wait,
                }),
            None => {
                self.memory
                    .admit(&[(keys.sign_ins.as_str(), self.sign_ins)], true)
                    .map_err(|(_, wait)| Refusal::TooFast {
                        budget: Budget::AddressSignIns,
                        wait,
                    })?;
                if let Some((k, g)) = refund {
                    self.memory.refund(k, g);
                }
                Ok(())
            }
        }
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
        if let Some(Ok(store)) = self.shared() {
            let quota = (m.quota > 0).then_some((m.class_id, m.day, m.quota));
            match self.call(store.admit_message(&plain, quota)).await {
                Ok(Ok(a)) => return Ok(limits_left(m, &budgets, &a.fill, a.used)),
                Ok(Err(crate::store::Admission::Quota)) => return Err(Refusal::Quota),
                Ok(Err(crate::store::Admission::Wait(i, wait))) => {
                    return Err(Refusal::TooFast {
                        budget: budgets[i].2,
                        wait,
                    });
                }
                // Students who are signed in keep chatting while the database is away,
                // within this replica's own budgets (below).
                Err(_) => {}
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

    /// Whether every budget has room now; counts nothing.
    async fn decide(&self, budgets: &[(&str, Gcra, Budget)]) -> Result<(), Refusal> {
        let plain: Vec<(&str, Gcra)> = budgets.iter().map(|(k, g, _)| (*k, *g)).collect();
        let outcome = match self.shared() {
            Some(store) => self.call(store?.gcra_admit(&plain, false)).await?,
            None => self.memory.admit(&plain, false),
        };
        outcome.map_err(|(i, wait)| Refusal::TooFast {
            budget: budgets[i].2,
            wait,
        })
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

/// The keys an address is counted under.
struct AddressKeys {
    failures: String,
    failures_daily: String,
    sign_ins: String,
}

impl AddressKeys {
    fn new(address: &str) -> Self {
        Self {
            failures: format!("f:{address}"),
            failures_daily: format!("fd:{address}"),
            sign_ins: format!("si:{address}"),
        }
    }
}
