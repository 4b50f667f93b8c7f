//! What every handler shares.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::auth::token::TokenKeys;
use crate::classes::ClassRegistry;
use crate::config::{Rate, Settings};
use crate::limiter::{Limiter, MemoryLimiter};
use crate::relay::upstream::Upstream;
use crate::store::Store;
use crate::usage::{DailyCounter, UsageLog};

/// Cheap to clone: everything inside is shared.
#[derive(Debug, Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    /// PUBLIC_URL, or `http://<bound address>`.
    pub public_url: Arc<str>,
    pub store: Store,
    /// The classes in force (configuration plus dashboard changes).
    pub classes: Arc<ClassRegistry>,
    pub keys: Arc<TokenKeys>,
    pub revoked: Arc<RevokedSessions>,
    pub login_by_addr: Arc<dyn Limiter>,
    pub login_by_class: Arc<dyn Limiter>,
    /// Per-session message limiters, one per distinct messages-per-minute setting.
    pub chat_limiters: Arc<HashMap<u32, MemoryLimiter>>,
    pub daily: Arc<DailyCounter>,
    pub upstream: Arc<Upstream>,
    pub usage: UsageLog,
    /// The teacher dashboard's configuration and keys.
    pub admin: Arc<crate::admin::Admin>,
    /// Cancelled when the shutdown grace period is over: open replies end with an error.
    pub shutdown: CancellationToken,
}

impl AppState {
    pub fn chat_limiter(&self, per_minute: u32) -> Option<&MemoryLimiter> {
        self.chat_limiters.get(&per_minute)
    }
}

/// Revoked session ids, mirrored from the database so checking a token needs no query.
#[derive(Debug, Default)]
pub struct RevokedSessions(RwLock<HashSet<String>>);

impl RevokedSessions {
    pub fn new(ids: Vec<String>) -> Self {
        Self(RwLock::new(ids.into_iter().collect()))
    }

    pub fn contains(&self, id: &str) -> bool {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(id)
    }

    pub fn insert(&self, id: String) {
        self.0.write().unwrap_or_else(|p| p.into_inner()).insert(id);
    }
}

/// One limiter per distinct per-minute setting (0 means no limit, so none is made).
pub fn chat_limiters(settings: &Settings) -> HashMap<u32, MemoryLimiter> {
    let mut rates: Vec<u32> = settings
        .classes
        .iter()
        .filter_map(|c| c.messages_per_minute)
        .collect();
    rates.push(settings.messages_per_minute);
    rates
        .into_iter()
        .filter(|n| *n > 0)
        .map(|n| {
            (
                n,
                MemoryLimiter::new(Rate {
                    count: n,
                    period: Duration::from_secs(60),
                }),
            )
        })
        .collect()
}
