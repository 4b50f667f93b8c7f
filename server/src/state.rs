//! What every handler shares.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use tokio_util::sync::CancellationToken;

use crate::auth::token::TokenKeys;
use crate::basics::{read, write};
use crate::classes::ClassRegistry;
use crate::config::Settings;
use crate::limits::Limits;
use crate::relay::models::ModelList;
use crate::relay::upstream::Upstream;
use crate::store::Store;
use crate::usage::UsageLog;

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
    /// Sign-in and message budgets (shared through the database on PostgreSQL).
    pub limits: Arc<Limits>,
    pub upstream: Arc<Upstream>,
    /// The models the key can use, cached (the model picker and the API's checks).
    pub models: Arc<ModelList>,
    pub usage: UsageLog,
    /// Stored conversations (classes whose visibility is not `off`).
    pub conversations: crate::conversations::Recorder,
    /// The teacher dashboard's configuration and keys.
    pub admin: Arc<crate::admin::Admin>,
    /// Cancelled when the shutdown grace period is over: open replies end with an error.
    pub shutdown: CancellationToken,
    /// The latest start-up checks, for the dashboard's Health panel.
    pub health: Arc<crate::health::Health>,
    /// The safety check and the alert sender's parts.
    pub alerts: Arc<crate::alerts::Alerts>,
    /// LTI's derived keys and the platforms' key sets.
    pub lti: Arc<crate::lti::Lti>,
}

/// Revoked session ids with when each may be forgotten, mirrored from the database so
/// checking a token needs no query. Pruned while running ([`RevokedSessions::prune`]):
/// a revoked session's tokens cannot outlive its maximum age and the token leeway, and
/// revocations are kept [`crate::store::REVOCATION_KEPT_AFTER_END`] past that age.
#[derive(Debug, Default)]
pub struct RevokedSessions {
    /// Session id → the session's end (Unix seconds).
    ids: RwLock<HashMap<String, i64>>,
}

impl RevokedSessions {
    pub fn new(revoked: Vec<crate::store::Revocation>) -> Self {
        Self {
            ids: RwLock::new(
                revoked
                    .into_iter()
                    .map(|r| (r.session_id, r.expires_at))
                    .collect(),
            ),
        }
    }

    pub fn contains(&self, id: &str) -> bool {
        read(&self.ids).contains_key(id)
    }

    /// Adds a revocation whose session ends at `until` (Unix seconds).
    pub fn insert_until(&self, id: String, until: i64) {
        write(&self.ids).insert(id, until);
    }

    /// Forgets sessions that ended more than [`crate::store::REVOCATION_KEPT_AFTER_END`]
    /// before `now` (Unix seconds); returns how many.
    pub fn prune(&self, now: i64) -> usize {
        let mut ids = write(&self.ids);
        let before = ids.len();
        ids.retain(|_, until| *until >= now - crate::store::REVOCATION_KEPT_AFTER_END);
        before - ids.len()
    }

    pub fn len(&self) -> usize {
        read(&self.ids).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revocations_are_forgotten_once_their_sessions_are_over() {
        let now = crate::basics::now_secs();
        let r = RevokedSessions::new(vec![crate::store::Revocation {
            session_id: "old".into(),
            expires_at: now + 60,
        }]);
        r.insert_until("new".into(), now + 60);
        assert_eq!(r.prune(now), 0, "both still within a session's life");
        assert!(r.contains("old") && r.contains("new"));
        // Their last tokens still verify through the leeway after the end: kept past it.
        let leeway = crate::auth::token::LEEWAY_SECS as i64;
        assert_eq!(r.prune(now + 60 + leeway), 0);
        assert!(r.contains("old") && r.contains("new"));
        assert_eq!(
            r.prune(now + 61 + crate::store::REVOCATION_KEPT_AFTER_END),
            2
        );
        assert!(r.is_empty());
    }
}
