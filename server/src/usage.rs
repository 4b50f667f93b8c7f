//! The usage log: one row per chat request, written off the request path in batches.
//!
//! A batch is up to [`BATCH`] rows (and the sign-ins queued with them), written once a lone
//! row has waited [`LINGER`], in one transaction of a few multi-row statements whatever its
//! size (the log, then one upsert per rollup and one update of the sessions' last-seen
//! times, each covering the whole batch): on PostgreSQL a busy replica costs the database a
//! handful of statements every 100 ms, not a statement per message. A graceful shutdown
//! ([`UsageLog::close`]) writes everything queued first. A crash loses what was queued and
//! not yet written: at most the last [`LINGER`] of rows, plus those held while the database
//! was away (see [`MAX_HELD`]).

use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::store::{Outcome, SessionRow, Store, UsageRow};

enum Msg {
    Row(Box<UsageRow>),
    Session(Box<SessionRow>),
    /// Everything sent before this is written, then the writer stops.
    Close,
}

/// Where handlers send rows; cheap to clone.
#[derive(Debug, Clone)]
pub struct UsageLog {
    tx: mpsc::Sender<Msg>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Msg")
    }
}

/// Rows written per transaction at most.
const BATCH: usize = 256;
/// How long a lone row may wait for company.
const LINGER: Duration = Duration::from_millis(100);

impl UsageLog {
    /// Starts the writer task.
    pub fn spawn(store: Store) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(16_384);
        (Self { tx }, tokio::spawn(write_loop(store, rx)))
    }

    /// Queues a row; never waits. A full queue (the database is far behind) drops the row
    /// with a warning rather than slowing students down.
    pub fn record(&self, row: UsageRow) {
        if self.tx.try_send(Msg::Row(Box::new(row))).is_err() {
            tracing::warn!("usage log queue full or closed: one usage row dropped");
        }
    }

    /// Queues a new sign-in (written with the next batch).
    pub fn session(&self, row: SessionRow) {
        if self.tx.try_send(Msg::Session(Box::new(row))).is_err() {
            tracing::warn!("usage log queue full or closed: one sign-in not recorded");
        }
    }

    /// Flushes what was queued and stops the writer.
    pub async fn close(&self) {
        let _ = self.tx.send(Msg::Close).await;
    }
}

/// Rows held in memory while the database is away. Past this, new rows are dropped and
/// counted (a 16-byte-ish row each way, this is tens of MB at most).
const MAX_HELD: usize = 100_000;
/// Longest wait between two tries to reach an absent database.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What the writer holds: rows not yet written, and the state of an outage.
#[derive(Default)]
struct Held {
    rows: Vec<UsageRow>,
    sessions: Vec<SessionRow>,
    /// Rows (and sign-ins) dropped because `MAX_HELD` were already held.
    dropped: u64,
    /// Set while the database refuses writes: when to try again, and the wait after that.
    retry: Option<(tokio::time::Instant, Duration)>,
}

impl Held {
    fn is_empty(&self) -> bool {
        self.rows.is_empty() && self.sessions.is_empty()
    }

    /// Takes one message; true when it says to stop.
    fn take(&mut self, msg: Option<Msg>) -> bool {
        let full = self.rows.len() + self.sessions.len() >= MAX_HELD;
        match msg {
            Some(Msg::Row(_) | Msg::Session(_)) if full => {
                self.dropped += 1;
                if self.dropped == 1 || self.dropped.is_multiple_of(10_000) {
                    tracing::warn!(
                        dropped = self.dropped,
                        held = MAX_HELD,
                        "usage log: the database is away and {MAX_HELD} rows are held; new rows are dropped"
                    );
                }
                false
            }
            Some(Msg::Row(r)) => {
                self.rows.push(*r);
                false
            }
            Some(Msg::Session(s)) => {
                self.sessions.push(*s);
                false
            }
            Some(Msg::Close) | None => true,
        }
    }

    fn due(&self) -> bool {
        self.retry
            .is_none_or(|(at, _)| tokio::time::Instant::now() >= at)
    }

    /// Writes what is held, a batch at a time; on failure keeps it and backs off.
    async fn flush(&mut self, store: &Store) {
        while !self.is_empty() {
            let rows = self.rows.len().min(BATCH);
            let sessions = self.sessions.len().min(BATCH);
            match store
                .insert_usage(&self.rows[..rows], &self.sessions[..sessions])
                .await
            {
                Ok(()) => {
                    self.rows.drain(..rows);
                    self.sessions.drain(..sessions);
                }
                Err(e) => {
                    let wait = match self.retry {
                        None => {
                            tracing::error!(error = %e, held = self.rows.len(), "usage log: cannot write; holding rows until the database is back");
                            Duration::from_millis(500)
                        }
                        Some((_, wait)) => (wait * 2).min(MAX_BACKOFF),
                    };
                    self.retry = Some((tokio::time::Instant::now() + wait, wait));
                    return;
                }
            }
        }
        if self.retry.take().is_some() || self.dropped > 0 {
            if self.dropped > 0 {
                tracing::warn!(
                    dropped = self.dropped,
                    "usage log: the database is back; rows beyond the held ones were dropped"
                );
            } else {
                tracing::info!("usage log: the database is back; every held row is written");
            }
            self.dropped = 0;
        }
    }
}

async fn write_loop(store: Store, mut rx: mpsc::Receiver<Msg>) {
    let mut held = Held::default();
    let mut closing = false;
    while !closing {
        let before = held.rows.len() + held.sessions.len();
        // Wait for the next message; while rows are held, no longer than their retry time.
        match held.retry {
            Some((at, _)) => {
                if let Ok(msg) = tokio::time::timeout_at(at, rx.recv()).await {
                    closing = held.take(msg);
                }
            }
            None => closing = held.take(rx.recv().await),
        }
        let deadline = tokio::time::Instant::now() + LINGER;
        while !closing && held.rows.len() + held.sessions.len() < before + BATCH {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(msg) => closing = held.take(msg),
                Err(_) => break,
            }
        }
        if !held.is_empty() && (held.due() || closing) {
            held.flush(&store).await;
        }
    }
    if !held.is_empty() {
        tracing::error!(
            rows = held.rows.len(),
            sign_ins = held.sessions.len(),
            "usage log: stopping with rows the database never took; they are lost"
        );
    }
}

/// Collects one chat request's row and sends it when dropped, so a reply that ends in
/// any way (done, failed, student gone, server stopping) is logged exactly once.
#[derive(Debug)]
pub struct UsageRecorder {
    log: UsageLog,
    started: Instant,
    row: UsageRow,
    /// Characters sent and received, for [`estimate_tokens`]; `None` until Open WebUI
    /// accepted the request (a refused one used no tokens, so gets no estimate).
    chars: Option<(usize, usize)>,
    /// The exchange's text, in a class whose visibility keeps it (see
    /// [`crate::conversations`]); finished with the row.
    tap: Option<crate::conversations::Tap>,
}

/// Characters per token in the estimate: the usual figure for English text with OpenAI's
/// tokenizers. Rough for other languages (Chinese runs nearer one token per character), so
/// estimated figures are marked as such everywhere they are shown.
const CHARS_PER_TOKEN: usize = 4;

/// The estimate recorded when the upstream reports no usage: characters / 4, rounded up.
pub fn estimate_tokens(chars: usize) -> u32 {
    chars
        .div_ceil(CHARS_PER_TOKEN)
        .try_into()
        .unwrap_or(u32::MAX)
}

impl UsageRecorder {
    /// Starts the row of one chat request; it counts as interrupted until told otherwise.
    /// Built from the student's session (see `AuthSession::usage_recorder`).
    pub fn new(
        log: UsageLog,
        class_id: String,
        activity_id: Option<String>,
        session_id: String,
        display_name: Option<String>,
        conversation_id: String,
        model: String,
    ) -> Self {
        Self {
            log,
            started: Instant::now(),
            row: UsageRow {
                at_ms: jiff::Timestamp::now().as_millisecond(),
                class_id,
                activity_id,
                session_id,
                display_name,
                conversation_id,
                model: Some(model),
                prompt_tokens: None,
                completion_tokens: None,
                tokens_estimated: false,
                first_token_ms: None,
                total_ms: 0,
                outcome: Outcome::Interrupted,
                error_code: None,
            },
            chars: None,
            tap: None,
        }
    }

    /// Hands the reply's text to `tap` too (a class whose visibility is not `off`).
    pub fn with_tap(mut self, tap: Option<crate::conversations::Tap>) -> Self {
        self.tap = tap;
        self
    }

    /// Open WebUI took the request, whose messages had `prompt_chars` characters.
    pub fn accepted(&mut self, prompt_chars: usize) {
        self.chars = Some((prompt_chars, 0));
    }

    /// Reply text arrived (counted for the estimate).
    pub fn reply_text(&mut self, text: &str) {
        if let Some((_, reply)) = &mut self.chars {
            *reply += text.chars().count();
        }
        if let Some(tap) = &mut self.tap {
            tap.reply_text(text);
        }
    }

    /// Notes the first token's arrival (once).
    pub fn first_token(&mut self) {
        let ms = self.started.elapsed().as_millis().min(u32::MAX as u128) as u32;
        let row = &mut self.row;
        if row.first_token_ms.is_none() {
            row.first_token_ms = Some(ms);
        }
    }

    pub fn usage(&mut self, usage: Option<classchat_shared::Usage>) {
        if let Some(u) = usage {
            let row = &mut self.row;
            row.prompt_tokens = u.prompt_tokens;
            row.completion_tokens = u.completion_tokens;
        }
    }

    pub fn completed(&mut self) {
        self.row.outcome = Outcome::Completed;
    }

    pub fn failed(&mut self, code: classchat_shared::ErrorCode) {
        let row = &mut self.row;
        row.outcome = Outcome::UpstreamError;
        row.error_code = Some(code.as_str());
    }
}

impl Drop for UsageRecorder {
    fn drop(&mut self) {
        let mut row = std::mem::take(&mut self.row);
        if let Some((prompt, reply)) = self.chars
            && row.prompt_tokens.is_none()
            && row.completion_tokens.is_none()
        {
            row.prompt_tokens = Some(estimate_tokens(prompt));
            row.completion_tokens = Some(estimate_tokens(reply));
            row.tokens_estimated = true;
        }
        row.total_ms = self.started.elapsed().as_millis().min(u32::MAX as u128) as u32;
        if let Some(tap) = self.tap.take() {
            tap.finish(row.outcome == Outcome::Completed);
        }
        self.log.record(row);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estimate_rounds_up() {
        assert_eq!(estimate_tokens(0), 0);
        assert_eq!(estimate_tokens(1), 1);
        assert_eq!(estimate_tokens(8), 2);
        assert_eq!(estimate_tokens(9), 3);
    }
}
