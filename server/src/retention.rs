//! Retention (issue 23): stored conversations, usage rows and sessions are deleted once
//! older than the days the class (classes file `keep_*_days`) or the server
//! (`KEEP_CONVERSATIONS_DAYS`, `KEEP_USAGE_DAYS`, `KEEP_SESSIONS_DAYS`) keeps them; 0 keeps
//! them until erased. Run by housekeeping, in batches of [`BATCH`] rows so chat's own
//! writes never wait long, on PostgreSQL by one replica at a time under housekeeping's
//! advisory lock. The hourly class totals are never deleted.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::classes::ClassList;
use crate::config::classes_file::Retention;
use crate::store::Store;
use crate::store::conversations::{Aged, Classes};

/// Rows deleted per statement.
pub const BATCH: i64 = 500;
/// A pause between batches, letting other writers in.
const BREATHE: Duration = Duration::from_millis(5);
const DAY_MS: i64 = 86_400_000;

/// Deletes what is past its time at `now_ms`; `None` when another replica holds the lock.
/// Returns how many rows went.
pub async fn run(
    store: &Store,
    classes: &ClassList,
    server: Retention,
    now_ms: i64,
) -> sqlx::Result<Option<u64>> {
    // Each class once (its activities share its id and its settings).
    let own: BTreeMap<String, crate::config::classes_file::KeepDays> = classes
        .classes
        .iter()
        .filter(|c| c.keep != Default::default())
        .map(|c| (c.id.clone(), c.keep))
        .collect();
    store
        .with_housekeeping_lock(|| async {
            let mut total = 0;
            for kind in [Aged::Conversations, Aged::Usage, Aged::Sessions] {
                let pick = |r: Retention| match kind {
                    Aged::Conversations => r.conversations_days,
                    Aged::Usage => r.usage_days,
                    Aged::Sessions => r.sessions_days,
                };
                let mut others = Vec::new();
                for (id, keep) in &own {
                    let days = pick(keep.over(server));
                    if days != pick(server) {
                        others.push(id.clone());
                        total += sweep(store, kind, Classes::One(id), days, now_ms).await?;
                    }
                }
                total += sweep(store, kind, Classes::AllBut(&others), pick(server), now_ms).await?;
            }
            Ok(total)
        })
        .await
}

async fn sweep(
    store: &Store,
    kind: Aged,
    classes: Classes<'_>,
    days: u32,
    now_ms: i64,
) -> sqlx::Result<u64> {
    if days == 0 {
        return Ok(0);
    }
    let before = now_ms - i64::from(days) * DAY_MS;
    let mut total = 0;
    loop {
        let n = store.delete_aged(kind, classes, before, BATCH).await?;
        total += n;
        if n < BATCH as u64 {
            return Ok(total);
        }
        tokio::time::sleep(BREATHE).await;
    }
}
