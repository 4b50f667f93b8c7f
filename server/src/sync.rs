//! Keeping this process's copies of shared facts fresh, and housekeeping.
//!
//! Tokens are checked against in-memory copies (revocations, classes with the dashboard's
//! changes), so a message needs no query. On PostgreSQL, several replicas hold such copies:
//! a change on one is announced with NOTIFY and applied by every replica as it arrives
//! (well under a second), and a full resync every `RESYNC_INTERVAL` (and after the
//! listening connection is lost) heals a missed notification. Housekeeping prunes the
//! in-memory sets on every replica and the database on one replica at a time.

use std::time::Duration;

use tokio::task::JoinHandle;

use crate::basics::now_secs;
use crate::state::AppState;

/// How often housekeeping runs.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(300);

/// A session was revoked: `revoked <session id> <end, Unix seconds>`.
pub fn revoked_event(session_id: &str, until: i64) -> String {
    format!("revoked {session_id} {until}")
}

/// A class's overrides or generation changed, or a class made in the store (or one of its
/// activities) was created, changed or deleted.
pub const CLASSES_EVENT: &str = "classes";

/// Starts housekeeping and, on PostgreSQL, the listener with its periodic resync.
pub fn spawn(state: AppState) -> JoinHandle<()> {
    tokio::spawn(async move {
        let housekeeping = housekeeping_loop(state.clone());
        if state.store.is_postgres() {
            tokio::join!(housekeeping, listen_loop(state));
        } else {
            housekeeping.await;
        }
    })
}

async fn housekeeping_loop(state: AppState) {
    let mut tick = tokio::time::interval(HOUSEKEEPING_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = now_secs();
        let revocations = state.revoked.prune(now);
        let budgets = state.limits.prune();
        let today = jiff::Zoned::now()
            .with_time_zone(state.settings.timezone.clone())
            .date();
        match state.store.housekeeping(now, today).await {
            Ok(ran) => tracing::debug!(revocations, budgets, database = ran, "housekeeping"),
            Err(e) => tracing::warn!(error = %e, "housekeeping: database unavailable"),
        }
        let classes = state.classes.current();
        let retention = state.settings.retention;
        match crate::retention::run(&state.store, &classes, retention, now * 1000).await {
            Ok(Some(n)) if n > 0 => {
                tracing::info!(rows = n, "retention: deleted rows past their time")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "retention: database unavailable"),
        }
    }
}

async fn listen_loop(state: AppState) {
    let every = state.settings.resync_interval;
    let mut backoff = Duration::from_millis(500);
    loop {
        let mut listener = match state.store.listener().await {
            Ok(Some(l)) => l,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for changes from other replicas; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        backoff = Duration::from_millis(500);
        // Whatever happened while not listening.
        resync(&state).await;
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tokio::select! {
                n = listener.try_recv() => match n {
                    Ok(Some(n)) => apply(&state, n.payload()).await,
                    // The connection was lost and made again: notifications may be lost.
                    Ok(None) => resync(&state).await,
                    Err(e) => {
                        tracing::warn!(error = %e, "lost the connection that listens for other replicas' changes");
                        break;
                    }
                },
                _ = tick.tick() => resync(&state).await,
            }
        }
    }
}

/// Applies one notification.
async fn apply(state: &AppState, event: &str) {
    let mut parts = event.split(' ');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("revoked"), Some(id), Some(until)) => {
            if let Ok(until) = until.parse() {
                state.revoked.insert_until(id.to_owned(), until);
            }
        }
        (Some(CLASSES_EVENT), None, None) => reload_classes(state).await,
        _ => tracing::debug!(event, "unknown change notification ignored"),
    }
}

/// Reads every shared fact again.
pub async fn resync(state: &AppState) {
    match state.store.revocations(now_secs()).await {
        Ok(list) => {
            for r in list {
                state.revoked.insert_until(r.session_id, r.expires_at);
            }
        }
        Err(e) => tracing::warn!(error = %e, "resync: cannot read revocations"),
    }
    reload_classes(state).await;
}

/// A class changed in the store on this replica: apply it here at once and tell the others.
pub async fn classes_changed(state: &AppState) {
    reload_classes(state).await;
    state.store.notify(CLASSES_EVENT).await;
}

async fn reload_classes(state: &AppState) {
    let _turn = state.classes.reload_turn().await;
    let loaded = async {
        Ok::<_, sqlx::Error>((
            state.store.load_overrides().await?,
            state.store.class_generations().await?,
            state.store.stored_classes().await?,
        ))
    };
    match loaded.await {
        Ok((overrides, generations, stored)) => {
            match state.classes.replace_all(overrides, generations, stored) {
                Ok(true) => tracing::info!("class settings changed on another replica: applied"),
                Ok(false) => {}
                Err(e) => tracing::error!(error = %e, "class settings from the database conflict"),
            }
        }
        Err(e) => tracing::warn!(error = %e, "resync: cannot read class settings"),
    }
}
