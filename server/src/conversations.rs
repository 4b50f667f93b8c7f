//! Stored conversations (issue 23): what a class's conversation visibility keeps, sealed,
//! written off the reply's path.
//!
//! - `off`: no [`Tap`] is made, so no message text is held or written anywhere.
//! - `full`: every exchange (the student's message and the reply, as far as it came) is
//!   sealed and written, in batches, when the reply ends in any way.
//! - `flagged`: nothing is written by itself. Finished exchanges wait a while in memory
//!   (at most [`RECENT_FOR`], [`RECENT_MAX`] in all) so that a safety check that flags one
//!   later can keep it: [`Recorder::keep_flagged`] writes the flagged exchange and the up
//!   to [`CONTEXT_BEFORE`] exchanges before it in the same conversation, and the next
//!   [`CONTEXT_AFTER`] ones as they finish. The memory is per replica: context held by
//!   another replica (no sticky sessions) is not kept.
//!
//! The visibility is the class's when the message is sent (the [`Tap`] is made then), so
//! a change never reaches messages sent before it.
//!
//! **For the safety check** (issue 23, items 3–4): `relay::create_chat` makes the exchange's
//! [`Tap`] (`None` in an `off` class) and hands it to the usage recorder with
//! `with_tap(tap)`. Take its key first, `let key = tap.as_ref().map(Tap::key);`, run the check
//! off the reply's path, and on a flag call `state.conversations.keep_flagged(&key)`; the
//! stored row's id is `key.exchange_id`, for the flag to name. It never waits, and works
//! whether the reply has finished or not.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use classchat_shared::Visibility;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::basics::lock;
use crate::sealed::{SealError, Sealer};
use crate::store::Store;
use crate::store::conversations::ExchangeRow;

/// The sealer's purpose label: conversations get a key of their own.
pub const PURPOSE: &str = "conversations";
/// How long a finished exchange of a `flagged` class waits in memory for a flag.
pub const RECENT_FOR: Duration = Duration::from_secs(15 * 60);
/// Most finished exchanges held in memory for flags, all classes together.
pub const RECENT_MAX: usize = 2_000;
/// Exchanges kept before a flagged one, from the same conversation.
pub const CONTEXT_BEFORE: usize = 2;
/// Exchanges kept after a flagged one, as they finish (within [`RECENT_FOR`]).
pub const CONTEXT_AFTER: u8 = 2;
/// Most characters of a reply kept; longer replies are cut and marked.
pub const MAX_REPLY_CHARS: usize = 16_000;

/// Identifies one exchange: what a safety check hands to [`Recorder::keep_flagged`], and
/// the id the stored row (and a flag) carry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExchangeKey {
    pub exchange_id: String,
    pub class_id: String,
    pub session_id: String,
    pub conversation_id: String,
}

/// One exchange as it is held before sealing. Its `Debug` shows no text.
#[derive(Clone)]
pub struct Exchange {
    pub key: ExchangeKey,
    pub activity_id: Option<String>,
    pub display_name: Option<String>,
    pub at_ms: i64,
    pub student: String,
    pub reply: String,
    /// Whether the reply finished (false: cut, failed, or the student left).
    pub completed: bool,
}

impl std::fmt::Debug for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exchange")
            .field("key", &self.key)
            .field("at_ms", &self.at_ms)
            .finish_non_exhaustive()
    }
}

/// What a sealed row opens to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExchangeText {
    pub student: String,
    pub reply: String,
    pub completed: bool,
}

/// The associated data a row's text is sealed with: it cannot be moved to another row.
fn context(id: &str, class_id: &str, session_id: &str, conversation_id: &str) -> String {
    format!("{id}\u{1f}{class_id}\u{1f}{session_id}\u{1f}{conversation_id}")
}

/// Opens a stored row's text (`Err` for a row sealed under a secret no longer configured,
/// or changed).
pub fn open(sealer: &Sealer, row: &ExchangeRow) -> Result<ExchangeText, SealError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&row.sealed)
        .map_err(|_| SealError::Malformed)?;
    let ctx = context(
        &row.id,
        &row.class_id,
        &row.session_id,
        &row.conversation_id,
    );
    let text = sealer.open_str(&bytes, &ctx)?;
    serde_json::from_str(&text).map_err(|_| SealError::Malformed)
}

/// An exchange sealed into the row it is stored as.
pub fn seal(sealer: &Sealer, ex: &Exchange, kept: &str) -> ExchangeRow {
    let k = &ex.key;
    let text = serde_json::to_string(&ExchangeText {
        student: ex.student.clone(),
        reply: ex.reply.clone(),
        completed: ex.completed,
    })
    .expect("strings serialise");
    let ctx = context(
        &k.exchange_id,
        &k.class_id,
        &k.session_id,
        &k.conversation_id,
    );
    ExchangeRow {
        id: k.exchange_id.clone(),
        class_id: k.class_id.clone(),
        activity_id: ex.activity_id.clone(),
        session_id: k.session_id.clone(),
        display_name: ex.display_name.clone(),
        conversation_id: k.conversation_id.clone(),
        at_ms: ex.at_ms,
        kept: kept.to_owned(),
        sealed: base64::engine::general_purpose::STANDARD.encode(sealer.seal_str(&text, &ctx)),
    }
}

enum Msg {
    Keep(Box<Exchange>, &'static str),
    Close,
}

/// In-memory state of `flagged` classes.
#[derive(Default)]
struct Recent {
    /// Finished exchanges not (yet) flagged, oldest first.
    done: VecDeque<(Instant, Exchange)>,
    /// Exchanges flagged before their reply finished: kept when it does.
    pending: HashMap<String, Instant>,
    /// Conversations after a flag: (class, session, conversation) → exchanges still to keep.
    following: HashMap<(String, String, String), (u8, Instant)>,
}

impl Recent {
    fn prune(&mut self, now: Instant) {
        while self
            .done
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > RECENT_FOR)
            || self.done.len() > RECENT_MAX
        {
            self.done.pop_front();
        }
        self.pending
            .retain(|_, t| now.duration_since(*t) <= RECENT_FOR);
        self.following
            .retain(|_, (n, t)| *n > 0 && now.duration_since(*t) <= RECENT_FOR);
    }
}

fn conversation_of(k: &ExchangeKey) -> (String, String, String) {
    (
        k.class_id.clone(),
        k.session_id.clone(),
        k.conversation_id.clone(),
    )
}

struct Inner {
    tx: mpsc::Sender<Msg>,
    sealer: Arc<Sealer>,
    recent: Mutex<Recent>,
}

/// Where exchanges go; cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("conversations::Recorder(..)")
    }
}

/// Exchanges written per transaction at most.
const BATCH: usize = 128;
/// How long a lone exchange may wait for company.
const LINGER: Duration = Duration::from_millis(100);
/// Exchanges held while the database is away; past this, new ones are dropped and logged.
const MAX_HELD: usize = 10_000;
const MAX_BACKOFF: Duration = Duration::from_secs(30);

impl Recorder {
    /// Starts the writer task; `sealer` seals under the conversations' key.
    pub fn spawn(store: Store, sealer: Arc<Sealer>) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(4_096);
        let task = tokio::spawn(write_loop(store, sealer.clone(), rx));
        (
            Self {
                inner: Arc::new(Inner {
                    tx,
                    sealer,
                    recent: Mutex::new(Recent::default()),
                }),
            },
            task,
        )
    }

    /// The sealer, to open stored rows with.
    pub fn sealer(&self) -> Arc<Sealer> {
        self.inner.sealer.clone()
    }

    /// The tap of one exchange in a class with `visibility`, or `None` for `off` (then no
    /// text is held at all). Made when the message is sent: the setting then decides.
    #[allow(clippy::too_many_arguments)]
    pub fn tap(
        &self,
        visibility: Visibility,
        class_id: &str,
        activity_id: Option<&str>,
        session_id: &str,
        display_name: Option<&str>,
        conversation_id: &str,
        student: &str,
    ) -> Option<Tap> {
        if visibility == Visibility::Off {
            return None;
        }
        Some(Tap {
            recorder: self.clone(),
            visibility,
            exchange: Some(Exchange {
                key: ExchangeKey {
                    exchange_id: uuid::Uuid::new_v4().to_string(),
                    class_id: class_id.to_owned(),
                    session_id: session_id.to_owned(),
                    conversation_id: conversation_id.to_owned(),
                },
                activity_id: activity_id.map(str::to_owned),
                display_name: display_name.map(str::to_owned),
                at_ms: jiff::Timestamp::now().as_millisecond(),
                student: student.to_owned(),
                reply: String::new(),
                completed: false,
            }),
        })
    }

    fn send(&self, ex: Exchange, kept: &'static str) {
        if self
            .inner
            .tx
            .try_send(Msg::Keep(Box::new(ex), kept))
            .is_err()
        {
            tracing::warn!("conversation queue full or closed: one exchange not stored");
        }
    }

    /// A finished exchange, from its [`Tap`].
    fn finished(&self, visibility: Visibility, ex: Exchange) {
        match visibility {
            Visibility::Off => {}
            Visibility::Full => self.send(ex, "full"),
            Visibility::Flagged => {
                let now = Instant::now();
                let mut recent = lock(&self.inner.recent);
                recent.prune(now);
                if recent.pending.remove(&ex.key.exchange_id).is_some() {
                    recent
                        .following
                        .insert(conversation_of(&ex.key), (CONTEXT_AFTER, now));
                    drop(recent);
                    self.send(ex, "flagged");
                    return;
                }
                if let Some((n, _)) = recent.following.get_mut(&conversation_of(&ex.key)) {
                    *n -= 1;
                    drop(recent);
                    self.send(ex, "context");
                    return;
                }
                recent.done.push_back((now, ex));
                recent.prune(now);
            }
        }
    }

    /// For the safety check: keeps a flagged exchange of a `flagged` class, with the up to
    /// [`CONTEXT_BEFORE`] exchanges before it in its conversation still held in memory and
    /// the next [`CONTEXT_AFTER`] as they finish. Never waits; may come before or after the
    /// reply finished. In a `full` class every exchange is kept anyway, so this does
    /// nothing there (the flag can name `key.exchange_id`, the stored row's id).
    pub fn keep_flagged(&self, key: &ExchangeKey) {
        let now = Instant::now();
        let mut recent = lock(&self.inner.recent);
        recent.prune(now);
        let conv = conversation_of(key);
        let mut keep: Vec<(Exchange, &'static str)> = Vec::new();
        let mut found = false;
        // Take the flagged exchange (if finished) and the ones before it, oldest first.
        let mut rest = VecDeque::with_capacity(recent.done.len());
        let mut before: Vec<Exchange> = Vec::new();
        for (t, ex) in recent.done.drain(..) {
            if ex.key.exchange_id == key.exchange_id {
                found = true;
                keep.push((ex, "flagged"));
            } else if conversation_of(&ex.key) == conv && !found {
                before.push(ex);
            } else {
                rest.push_back((t, ex));
            }
        }
        // Only the last CONTEXT_BEFORE before it; the others stay in memory.
        let cut = before.len().saturating_sub(CONTEXT_BEFORE);
        for ex in before.drain(..cut) {
            rest.push_back((now, ex));
        }
        keep.extend(before.into_iter().map(|e| (e, "context")));
        recent.done = rest;
        if found {
            recent.following.insert(conv, (CONTEXT_AFTER, now));
        } else {
            // Its reply is still coming (or it was never held: then this expires unused).
            recent.pending.insert(key.exchange_id.clone(), now);
        }
        drop(recent);
        for (ex, kept) in keep {
            self.send(ex, kept);
        }
    }

    /// Writes what was queued and stops the writer.
    pub async fn close(&self) {
        let _ = self.inner.tx.send(Msg::Close).await;
    }
}

/// One exchange being answered in a class that is not `off`: the reply's text is added as
/// it streams, and the exchange goes to the [`Recorder`] when the tap is finished or
/// dropped (the reply ended in any way).
pub struct Tap {
    recorder: Recorder,
    visibility: Visibility,
    exchange: Option<Exchange>,
}

impl std::fmt::Debug for Tap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tap(..)")
    }
}

impl Tap {
    /// This exchange's key, for a safety check.
    pub fn key(&self) -> ExchangeKey {
        self.exchange
            .as_ref()
            .map(|e| e.key.clone())
            .expect("a tap holds its exchange until it is finished")
    }

    /// Reply text arrived.
    pub fn reply_text(&mut self, text: &str) {
        if let Some(ex) = &mut self.exchange {
            let room = MAX_REPLY_CHARS.saturating_sub(ex.reply.chars().count());
            if room == 0 {
                return;
            }
            ex.reply.extend(text.chars().take(room));
            if text.chars().count() > room {
                ex.reply.push('…');
            }
        }
    }

    /// The reply ended; `completed` when it finished normally.
    pub fn finish(mut self, completed: bool) {
        if let Some(mut ex) = self.exchange.take() {
            ex.completed = completed;
            self.recorder.finished(self.visibility, ex);
        }
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        if let Some(ex) = self.exchange.take() {
            self.recorder.finished(self.visibility, ex);
        }
    }
}

/// Most conversations a list shows.
pub const LIST_LIMIT: i64 = 500;
/// Most exchanges a search opens and looks through (the class's newest).
pub const SEARCH_LIMIT: i64 = 5_000;
/// Longest search text, in characters.
pub const MAX_SEARCH_CHARS: usize = 200;

/// One student's stored conversations, the most recent first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StudentConversations {
    pub session_id: String,
    pub display_name: Option<String>,
    pub conversations: Vec<crate::store::conversations::ConversationSummary>,
}

/// A class's stored conversations by student (the most recently active student first),
/// or with `search`, only the conversations one of whose exchanges holds it (case
/// ignored) among the class's newest [`SEARCH_LIMIT`] exchanges. The search opens the
/// sealed text on a blocking thread; no text leaves this function.
pub async fn by_student(
    store: &Store,
    sealer: Arc<Sealer>,
    class_id: &str,
    search: Option<&str>,
) -> anyhow::Result<Vec<StudentConversations>> {
    let mut list = store.conversations_of(class_id, LIST_LIMIT).await?;
    if let Some(q) = search {
        let needle = q.to_lowercase();
        let rows = store.recent_exchanges(class_id, SEARCH_LIMIT).await?;
        let hits: std::collections::HashSet<(String, String)> =
            tokio::task::spawn_blocking(move || {
                rows.into_iter()
                    .filter(|r| {
                        open(&sealer, r).is_ok_and(|t| {
                            t.student.to_lowercase().contains(&needle)
                                || t.reply.to_lowercase().contains(&needle)
                        })
                    })
                    .map(|r| (r.session_id, r.conversation_id))
                    .collect()
            })
            .await?;
        list.retain(|c| hits.contains(&(c.session_id.clone(), c.conversation_id.clone())));
    }
    let mut out: Vec<StudentConversations> = Vec::new();
    for c in list {
        match out.iter_mut().find(|s| s.session_id == c.session_id) {
            Some(s) => {
                if s.display_name.is_none() {
                    s.display_name = c.display_name.clone();
                }
                s.conversations.push(c);
            }
            None => out.push(StudentConversations {
                session_id: c.session_id.clone(),
                display_name: c.display_name.clone(),
                conversations: vec![c],
            }),
        }
    }
    Ok(out)
}

/// One stored exchange, opened; `text` is `None` when it cannot be (sealed under an
/// AUTH_SECRET no longer configured).
#[derive(Debug, Clone)]
pub struct Opened {
    pub row: ExchangeRow,
    pub text: Option<ExchangeText>,
}

/// One conversation's exchanges, oldest first, opened. The caller logs the reading
/// ([`crate::store::Store::log_conversation_read`]) before showing them.
pub async fn open_conversation(
    store: &Store,
    sealer: &Sealer,
    class_id: &str,
    session_id: &str,
    conversation_id: &str,
) -> sqlx::Result<Vec<Opened>> {
    let rows = store
        .conversation_exchanges(class_id, session_id, conversation_id)
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let text = match open(sealer, &row) {
                Ok(t) => Some(t),
                Err(e) => {
                    tracing::warn!(class = %row.class_id, exchange = %row.id, "a stored exchange cannot be opened: {e}");
                    None
                }
            };
            Opened { row, text }
        })
        .collect())
}

async fn write_loop(store: Store, sealer: Arc<Sealer>, mut rx: mpsc::Receiver<Msg>) {
    let mut held: Vec<ExchangeRow> = Vec::new();
    let mut dropped = 0u64;
    let mut retry: Option<(tokio::time::Instant, Duration)> = None;
    let mut closing = false;
    let mut take = |msg: Option<Msg>, held: &mut Vec<ExchangeRow>| -> bool {
        match msg {
            Some(Msg::Keep(ex, kept)) => {
                if held.len() >= MAX_HELD {
                    dropped += 1;
                    if dropped == 1 || dropped.is_multiple_of(1_000) {
                        tracing::warn!(
                            dropped,
                            "conversations: the database is away and {MAX_HELD} exchanges are held; new ones are dropped"
                        );
                    }
                } else {
                    // Sealed here, off the reply's path.
                    held.push(seal(&sealer, &ex, kept));
                }
                false
            }
            Some(Msg::Close) | None => true,
        }
    };
    while !closing {
        match retry {
            Some((at, _)) => {
                if let Ok(msg) = tokio::time::timeout_at(at, rx.recv()).await {
                    closing = take(msg, &mut held);
                }
            }
            None => closing = take(rx.recv().await, &mut held),
        }
        let deadline = tokio::time::Instant::now() + LINGER;
        while !closing && held.len() < BATCH {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(msg) => closing = take(msg, &mut held),
                Err(_) => break,
            }
        }
        let due = retry.is_none_or(|(at, _)| tokio::time::Instant::now() >= at);
        while !held.is_empty() && (due || closing) {
            let n = held.len().min(BATCH);
            match store.insert_exchanges(&held[..n]).await {
                Ok(()) => {
                    held.drain(..n);
                    if retry.take().is_some() {
                        tracing::info!(
                            "conversations: the database is back; held exchanges written"
                        );
                    }
                }
                Err(e) => {
                    let wait = match retry {
                        None => {
                            tracing::error!(error = %e, held = held.len(), "conversations: cannot write; holding exchanges until the database is back");
                            Duration::from_millis(500)
                        }
                        Some((_, w)) => (w * 2).min(MAX_BACKOFF),
                    };
                    retry = Some((tokio::time::Instant::now() + wait, wait));
                    break;
                }
            }
            if closing && retry.is_some() {
                break;
            }
        }
    }
    if !held.is_empty() {
        tracing::error!(
            exchanges = held.len(),
            "conversations: stopping with exchanges the database never took; they are lost"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn sealer() -> Sealer {
        Sealer::new(PURPOSE, &SecretString::from("s".repeat(40)), None)
    }

    fn exchange(id: &str, conv: &str, student: &str) -> Exchange {
        Exchange {
            key: ExchangeKey {
                exchange_id: id.into(),
                class_id: "c".into(),
                session_id: "s".into(),
                conversation_id: conv.into(),
            },
            activity_id: None,
            display_name: Some("Mei".into()),
            at_ms: 1,
            student: student.into(),
            reply: "a reply".into(),
            completed: true,
        }
    }

    #[test]
    fn a_sealed_row_opens_only_as_itself() {
        let s = sealer();
        let row = seal(&s, &exchange("e1", "conv", "a private question"), "full");
        assert!(!row.sealed.contains("private"));
        let text = open(&s, &row).unwrap();
        assert_eq!(text.student, "a private question");
        assert_eq!(text.reply, "a reply");
        let mut moved = row.clone();
        moved.conversation_id = "other".into();
        assert_eq!(open(&s, &moved), Err(SealError::Tampered));
        assert!(!format!("{:?}", exchange("e", "c", "secret words")).contains("secret"));
    }

    /// A recorder whose writer never runs: what it sends stays in the channel to be read.
    fn recorder() -> (Recorder, mpsc::Receiver<Msg>) {
        let (tx, rx) = mpsc::channel(64);
        (
            Recorder {
                inner: Arc::new(Inner {
                    tx,
                    sealer: Arc::new(sealer()),
                    recent: Mutex::new(Recent::default()),
                }),
            },
            rx,
        )
    }

    fn sent(rx: &mut mpsc::Receiver<Msg>) -> Vec<(String, &'static str)> {
        let mut out = Vec::new();
        while let Ok(Msg::Keep(ex, kept)) = rx.try_recv() {
            out.push((ex.student.clone(), kept));
        }
        out
    }

    #[test]
    fn off_holds_nothing_and_full_sends_every_exchange() {
        let (r, mut rx) = recorder();
        assert!(
            r.tap(Visibility::Off, "c", None, "s", None, "conv", "hi")
                .is_none()
        );
        let mut t = r
            .tap(Visibility::Full, "c", None, "s", None, "conv", "hello")
            .unwrap();
        t.reply_text("Hi ");
        t.reply_text("there");
        t.finish(true);
        let dropped = r
            .tap(Visibility::Full, "c", None, "s", None, "conv", "cut short")
            .unwrap();
        drop(dropped);
        assert_eq!(
            sent(&mut rx),
            vec![("hello".into(), "full"), ("cut short".into(), "full")]
        );
    }

    #[test]
    fn a_flag_keeps_the_exchange_with_two_before_and_two_after_and_nothing_else() {
        let (r, mut rx) = recorder();
        let finish = |text: &str, conv: &str| {
            let t = r
                .tap(Visibility::Flagged, "c", None, "s", None, conv, text)
                .unwrap();
            let key = t.key();
            t.finish(true);
            key
        };
        finish("one", "conv");
        finish("elsewhere", "other");
        finish("two", "conv");
        finish("three", "conv");
        let flagged = finish("four", "conv");
        assert!(
            sent(&mut rx).is_empty(),
            "flagged mode writes nothing by itself"
        );
        r.keep_flagged(&flagged);
        let mut got = sent(&mut rx);
        got.sort();
        assert_eq!(
            got,
            vec![
                ("four".into(), "flagged"),
                ("three".into(), "context"),
                ("two".into(), "context")
            ]
        );
        finish("five", "conv");
        finish("not this", "other");
        finish("six", "conv");
        finish("seven", "conv");
        assert_eq!(
            sent(&mut rx),
            vec![("five".into(), "context"), ("six".into(), "context")]
        );
    }

    #[test]
    fn a_flag_that_comes_before_the_reply_ends_keeps_it_when_it_does() {
        let (r, mut rx) = recorder();
        let mut t = r
            .tap(Visibility::Flagged, "c", None, "s", None, "conv", "help")
            .unwrap();
        r.keep_flagged(&t.key());
        assert!(sent(&mut rx).is_empty());
        t.reply_text("I hear you.");
        t.finish(true);
        assert_eq!(sent(&mut rx), vec![("help".into(), "flagged")]);
    }

    #[test]
    fn a_long_reply_is_cut_and_marked() {
        let (r, _rx) = recorder();
        let mut t = r
            .tap(Visibility::Full, "c", None, "s", None, "conv", "q")
            .unwrap();
        t.reply_text(&"x".repeat(MAX_REPLY_CHARS + 10));
        t.reply_text("more");
        let reply = &t.exchange.as_ref().unwrap().reply;
        assert_eq!(reply.chars().count(), MAX_REPLY_CHARS + 1);
        assert!(reply.ends_with('…'));
    }
}
