//! `POST /api/v1/chat`: a signed-in student's messages to Open WebUI and the reply back,
//! streamed chunk by chunk.
//!
//! A stream answers at once (status, headers and a comment), before Open WebUI does: a
//! model that takes a minute to load must not leave a reverse proxy waiting for the first
//! byte past its read timeout (nginx's is 60 s). While Open WebUI is silent a heartbeat
//! comment goes out every [`HEARTBEAT`]; a refusal that comes first is the stream's `error`
//! event. A `stream: false` request still answers only when the whole reply is there.
//!
//! The stream is one straight chain from the upstream body to the response body (no
//! task or channel in between), so there is backpressure, and a student who goes away
//! drops the upstream request with it.
//!
//! In a class whose visibility is `flagged` or `full`, the safety check ([`crate::alerts`])
//! runs as a task beside the reply; when its phrase lists flag the message, the help
//! resources go out as a `help` event just before `done` (or `error`).

pub mod demo;
pub mod http1;
pub mod models;
pub mod sse;
pub mod upstream;

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use classchat_shared::{
    ChatEvent, ChatMessage, ChatRequest, ChatResponse, ErrorCode, LimitKind, LimitsLeft, Role,
    Usage,
};
use eventsource_stream::Eventsource;
use futures::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;

use crate::alerts::{Alerts, HelpReceiver, Turn};
use crate::auth::AuthSession;
use crate::error::{AppJson, Result};
use crate::limits::{Budget, Message, Refusal};
use crate::state::AppState;
use crate::usage::UsageRecorder;
use upstream::{UpstreamFailure, UpstreamRequest, cut_failure, timeout_failure};

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/api/v1/chat", post(create_chat))
}

/// The time-context line the assistant gets ("what day is it?" is a common question).
pub fn time_context(now: jiff::Zoned) -> String {
    // One pass over one format: this runs for every message.
    now.strftime("The current local date is %Y-%m-%d and the current time is %H:%M:%S.")
        .to_string()
}

/// The server's system messages, then the student's messages.
fn upstream_messages(
    system_prompt: Option<&str>,
    now: jiff::Zoned,
    student: Vec<ChatMessage>,
) -> Vec<ChatMessage> {
    let mut out = Vec::with_capacity(student.len() + 2);
    if let Some(p) = system_prompt {
        out.push(ChatMessage {
            role: Role::System,
            content: p.to_owned(),
        });
    }
    out.push(ChatMessage {
        role: Role::System,
        content: time_context(now),
    });
    out.extend(student);
    out
}

async fn create_chat(
    State(state): State<AppState>,
    session: AuthSession,
    AppJson(req): AppJson<ChatRequest>,
) -> Result<Response> {
    classchat_shared::validate_request(&req)?;
    let class = &session.class;

    let now = jiff::Zoned::now().with_time_zone(class.time_zone.clone());
    let quota = class.daily_message_quota;
    let message = Message {
        session_id: &session.claims.sub,
        session_per_minute: class.messages_per_minute,
        class_id: &class.id,
        class_per_minute: class.class_messages_per_minute,
        day: now.date(),
        quota,
        day_ends_in: seconds_to_midnight(&now),
    };
    // A student known by identity spends their own allowance first (see `allowances`).
    let student =
        crate::allowances::admit_session(&state.store, &session.claims, &class.id, &now).await?;
    let left = match state.limits.admit_message(&message).await {
        Ok(left) => crate::allowances::merge(&student, (!left.is_empty()).then_some(left)),
        Err(refusal) => {
            crate::allowances::give_back(student, &state.store).await;
            match refusal {
                Refusal::TooFast {
                    budget: Budget::Class,
                    ..
                } => tracing::warn!(class = %class.id, "class message ceiling reached"),
                Refusal::Quota => {
                    tracing::warn!(class = %class.id, quota, "daily message quota reached")
                }
                _ => {}
            }
            return Err(refusal.message_error(message.day_ends_in));
        }
    };

    // The class's visibility now decides whether this exchange's text is kept.
    let tap = req
        .messages
        .last()
        .filter(|m| m.role == Role::User)
        .and_then(|m| {
            state.conversations.tap(
                class.visibility,
                &class.id,
                class.activity.as_ref().map(|a| a.id.as_str()),
                &session.claims.sub,
                session.claims.name.as_deref(),
                &req.conversation_id,
                &m.content,
            )
        });
    // Beside the reply, never in its way: the check is a task of its own.
    let help = safety_checked(class).then(|| {
        Alerts::check(
            &state,
            Turn::new(
                &class.id,
                &session.claims.sub,
                &req.conversation_id,
                &req.messages,
            )
            .with_exchange(tap.as_ref().map(crate::conversations::Tap::key)),
        )
    });

    let model = class.model.clone().unwrap_or_else(|| "demo".to_owned());
    let stream = req.stream;
    let up_req = UpstreamRequest::new(
        model.clone(),
        upstream_messages(class.system_prompt.as_deref(), now, req.messages),
        stream,
    );
    let mut recorder = session
        .usage_recorder(&state.usage, req.conversation_id, model)
        .with_tap(tap);

    if !stream {
        let resp = match state.upstream.send(&up_req).await {
            Ok(r) => {
                recorder.accepted(prompt_chars(&up_req));
                r
            }
            Err(f) => {
                log_failure(&f, &session);
                recorder.failed(f.code);
                return Err(f.into());
            }
        };
        let limits = reply_limits(&state);
        return collect_reply(resp.body, limits, recorder, &session, left, help).await;
    }
    let opened = futures::stream::once(std::future::ready(
        Event::default().comment("waiting for the assistant"),
    ));
    let events = opened.chain(
        futures::stream::once(start_relay(state, up_req, recorder, session, left, help)).flatten(),
    );
    let sse = events.map(Ok::<_, Infallible>);
    let mut resp = Sse::new(sse)
        .keep_alive(KeepAlive::new().interval(HEARTBEAT))
        .into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-transform"),
    );
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(resp)
}

/// A comment line this often while the upstream is silent (before its first byte too), so
/// proxies and browsers keep an idle stream open: nginx's default `proxy_read_timeout` is
/// 60 s. The widget treats a longer silence as a buffering proxy.
pub const HEARTBEAT: Duration = Duration::from_secs(15);

fn prompt_chars(req: &UpstreamRequest) -> usize {
    req.messages.iter().map(|m| m.content.chars().count()).sum()
}

/// Whether a class's student messages go through the safety check ([`crate::alerts`]):
/// in classes whose visibility is `flagged` or `full`, the ones whose students are told.
fn safety_checked(class: &crate::classes::Class) -> bool {
    class.visibility != classchat_shared::Visibility::Off
}

/// Longest the end of a reply waits for the safety check's answer on help. The check is a
/// phrase match and one read of the class's help, done long before a reply ends; the
/// bound only keeps a stalled database from holding the `done` event.
const HELP_WAIT: Duration = Duration::from_secs(2);

/// The safety check's help text, when it flagged the message.
async fn help_text(help: Option<HelpReceiver>) -> Option<String> {
    match tokio::time::timeout(HELP_WAIT, help?).await {
        Ok(Ok(text)) => text,
        _ => None,
    }
}

/// The `help` event, when the safety check flagged the message.
async fn help_event(help: Option<HelpReceiver>) -> Option<Event> {
    help_text(help)
        .await
        .map(|text| sse_event(&ChatEvent::Help { text }))
}

/// The limits on one reply, counted from when Open WebUI began it.
fn reply_limits(state: &AppState) -> ReplyLimits {
    ReplyLimits {
        idle: state.upstream.idle_timeout(),
        deadline: tokio::time::Instant::now() + state.settings.timeouts.reply_max,
        max: state.settings.timeouts.reply_max,
    }
}

/// Inside the stream already answered: sends the request, then relays the reply; a refusal
/// (or a restart while waiting) is the one `error` event.
async fn start_relay(
    state: AppState,
    up_req: UpstreamRequest,
    mut recorder: UsageRecorder,
    session: AuthSession,
    left: Option<LimitsLeft>,
    help: Option<HelpReceiver>,
) -> std::pin::Pin<Box<dyn Stream<Item = Event> + Send>> {
    let shutdown = state.shutdown.clone();
    let sent = tokio::select! {
        biased;
        _ = shutdown.cancelled() => Err(restarting()),
        r = state.upstream.send(&up_req) => r,
    };
    match sent {
        Ok(resp) => {
            recorder.accepted(prompt_chars(&up_req));
            Box::pin(relay_events(
                resp.body,
                reply_limits(&state),
                recorder,
                shutdown,
                session,
                left,
                help,
            ))
        }
        Err(f) => {
            log_failure(&f, &session);
            recorder.failed(f.code);
            let error = error_event(&f);
            Box::pin(
                futures::stream::once(help_event(help))
                    .filter_map(std::future::ready)
                    .chain(futures::stream::once(std::future::ready(error))),
            )
        }
    }
}

fn restarting() -> UpstreamFailure {
    UpstreamFailure {
        code: ErrorCode::UpstreamUnavailable,
        student: "The server is restarting. Please send your message again in a moment.",
        log: "reply cut: the server is shutting down".into(),
        retry_after: None,
    }
}

/// The `error` event for a failure: what its HTTP error body would carry.
fn error_event(f: &UpstreamFailure) -> Event {
    let limited = f.code == ErrorCode::RateLimited && f.retry_after.is_some();
    sse_event(&ChatEvent::Error {
        code: f.code,
        message: f.student.to_owned(),
        retry_after: f.retry_after.filter(|_| limited),
        limit: limited.then_some(LimitKind::Upstream),
    })
}

/// A delta's `{"text": …}`, as [`ChatEvent::data`] writes it, but borrowed.
#[derive(serde::Serialize)]
struct DeltaRef<'a> {
    text: &'a str,
}

/// One SSE event.
fn sse_event(e: &ChatEvent) -> Event {
    match e {
        ChatEvent::Delta { text } => delta_event(text),
        _ => Event::default().event(e.name()).data(e.data()),
    }
}

/// A delta (nearly every event), its JSON written straight into the event's buffer from
/// the text as the upstream chunk carried it: no copy of the text and no intermediate string.
fn delta_event(text: &str) -> Event {
    let event = Event::default().event("delta");
    match event.json_data(DeltaRef { text }) {
        Ok(ev) => ev,
        Err(_) => sse_event(&ChatEvent::Delta { text: text.into() }),
    }
}

fn seconds_to_midnight(now: &jiff::Zoned) -> u64 {
    now.tomorrow()
        .ok()
        .and_then(|t| t.start_of_day().ok())
        .and_then(|m| now.until(&m).ok())
        .map(|span| span.total(jiff::Unit::Second).unwrap_or(3600.0).max(1.0) as u64)
        .unwrap_or(3600)
}

fn log_failure(f: &UpstreamFailure, session: &AuthSession) {
    tracing::error!(
        target: "classchat::relay",
        class = %session.claims.cls,
        session = %session.claims.sub,
        code = f.code.as_str(),
        "{}",
        f.log
    );
}

/// Most bytes a `stream: false` answer may have. A real completion is a few kB; this bounds
/// what an upstream gone wrong can make the server hold per request.
pub const MAX_REPLY_BYTES: usize = 1024 * 1024;

const TOO_LONG: &str =
    "The reply went on too long and was stopped. Please ask for a shorter answer.";

/// Limits on reading one reply from Open WebUI.
#[derive(Debug, Clone, Copy)]
struct ReplyLimits {
    /// UPSTREAM_IDLE_TIMEOUT: between two chunks.
    idle: Duration,
    /// STREAM_MAX_DURATION after the reply began.
    deadline: tokio::time::Instant,
    max: Duration,
}

fn too_long(what: String) -> UpstreamFailure {
    UpstreamFailure {
        code: ErrorCode::UpstreamError,
        student: TOO_LONG,
        log: what,
        retry_after: None,
    }
}

fn over_time(max: Duration) -> UpstreamFailure {
    too_long(format!(
        "reply cut: it ran longer than STREAM_MAX_DURATION ({}s)",
        max.as_secs()
    ))
}

/// The idle timeout and STREAM_MAX_DURATION of one reply on a single timer, set to the sooner
/// of the two. A chunk only notes its time; the timer is moved on when it fires early. So a
/// reply registers a timer about once per idle period, not twice per chunk (each
/// registration and each cancellation takes the timer wheel's lock).
struct ReplyTimer {
    limits: ReplyLimits,
    /// When the last chunk came (or the reply began).
    last: tokio::time::Instant,
    sleep: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl ReplyTimer {
    fn new(limits: ReplyLimits) -> Self {
        let now = tokio::time::Instant::now();
        Self {
            limits,
            last: now,
            sleep: Box::pin(tokio::time::sleep_until(
                (now + limits.idle).min(limits.deadline),
            )),
        }
    }

    /// A chunk came: the idle timeout counts from now.
    fn chunk(&mut self) {
        self.last = tokio::time::Instant::now();
    }

    /// Resolves once a limit is passed, with what to tell. Cancel-safe: its state is `self`.
    async fn expired(&mut self) -> UpstreamFailure {
        loop {
            self.sleep.as_mut().await;
            let now = tokio::time::Instant::now();
            if now >= self.limits.deadline {
                return over_time(self.limits.max);
            }
            let idle_end = self.last + self.limits.idle;
            if now >= idle_end {
                return timeout_failure("silence between chunks", self.limits.idle);
            }
            self.sleep
                .as_mut()
                .reset(idle_end.min(self.limits.deadline));
        }
    }
}

async fn collect_reply(
    body: upstream::ByteStream,
    limits: ReplyLimits,
    mut recorder: UsageRecorder,
    session: &AuthSession,
    left: Option<LimitsLeft>,
    help: Option<HelpReceiver>,
) -> Result<Response> {
    let buf = match read_reply(body, limits).await {
        Ok(buf) => buf,
        Err(f) => {
            log_failure(&f, session);
            recorder.failed(f.code);
            return Err(f.into());
        }
    };
    match sse::parse_completion(&buf) {
        Ok((reply, usage)) => {
            recorder.first_token();
            recorder.reply_text(&reply);
            recorder.usage(usage);
            recorder.completed();
            Ok(AppJson(ChatResponse {
                reply,
                usage,
                limits: left,
                help: help_text(help).await,
            })
            .into_response())
        }
        Err(why) => {
            let f = cut_failure(format!("Open WebUI's answer was not usable: {why}"));
            log_failure(&f, session);
            recorder.failed(f.code);
            Err(f.into())
        }
    }
}

/// A whole `stream: false` answer, within the idle timeout, STREAM_MAX_DURATION and
/// [`MAX_REPLY_BYTES`]. An answer that came in one piece (the usual case) is kept as it is,
/// not copied.
async fn read_reply(
    mut body: upstream::ByteStream,
    limits: ReplyLimits,
) -> Result<bytes::Bytes, UpstreamFailure> {
    let mut first: Option<bytes::Bytes> = None;
    let mut buf = bytes::BytesMut::new();
    let mut timer = ReplyTimer::new(limits);
    loop {
        let next = tokio::select! {
            biased;
            n = body.next() => n,
            f = timer.expired() => return Err(f),
        };
        timer.chunk();
        let held = first.as_ref().map_or(0, bytes::Bytes::len) + buf.len();
        match next {
            None if buf.is_empty() => return Ok(first.unwrap_or_default()),
            None => return Ok(buf.freeze()),
            Some(Err(f)) => return Err(f),
            Some(Ok(b)) if held + b.len() > MAX_REPLY_BYTES => {
                return Err(too_long(format!(
                    "Open WebUI's answer is over {} kB: cut",
                    MAX_REPLY_BYTES / 1024
                )));
            }
            Some(Ok(b)) if held == 0 => first = Some(b),
            Some(Ok(b)) => {
                if let Some(f) = first.take() {
                    buf.reserve(f.len() + b.len());
                    buf.extend_from_slice(&f);
                }
                buf.extend_from_slice(&b);
            }
        }
    }
}

struct Relay {
    events: std::pin::Pin<
        Box<
            dyn Stream<
                    Item = Result<
                        eventsource_stream::Event,
                        eventsource_stream::EventStreamError<UpstreamFailure>,
                    >,
                > + Send,
        >,
    >,
    timer: ReplyTimer,
    recorder: UsageRecorder,
    /// Made once per reply, not once per chunk (each is a waiter registered under a lock).
    shutdown: std::pin::Pin<Box<tokio_util::sync::WaitForCancellationFutureOwned>>,
    session: AuthSession,
    usage: Option<Usage>,
    /// What is left of the student's limits, for the `done` event.
    left: Option<LimitsLeft>,
    finished_reason: bool,
    over: bool,
    /// The safety check's answer on help, awaited once the reply is over.
    help: Option<HelpReceiver>,
    /// The last event, held back while the `help` event goes first.
    tail: Option<Event>,
}

impl Relay {
    fn fail(&mut self, f: UpstreamFailure) -> Event {
        log_failure(&f, &self.session);
        self.recorder.failed(f.code);
        self.over = true;
        error_event(&f)
    }

    fn done(&mut self) -> Event {
        self.recorder.usage(self.usage);
        self.recorder.completed();
        self.over = true;
        sse_event(&ChatEvent::Done {
            usage: self.usage,
            limits: self.left,
        })
    }

    /// The next event; when the reply is over (`done` or `error`), the help resources go
    /// out just before it if the message was flagged.
    async fn next_event(&mut self) -> Option<Event> {
        if let Some(last) = self.tail.take() {
            return Some(last);
        }
        let ev = self.next_relayed().await?;
        if self.over
            && let Some(help) = help_event(self.help.take()).await
        {
            self.tail = Some(ev);
            return Some(help);
        }
        Some(ev)
    }

    async fn next_relayed(&mut self) -> Option<Event> {
        if self.over {
            return None;
        }
        loop {
            let next = tokio::select! {
                biased;
                _ = &mut self.shutdown => return Some(self.fail(restarting())),
                f = self.timer.expired() => return Some(self.fail(f)),
                n = self.events.next() => n,
            };
            self.timer.chunk();
            let ev = match next {
                None if self.finished_reason => return Some(self.done()),
                None => {
                    return Some(self.fail(cut_failure(
                        "Open WebUI's stream ended before the reply was finished",
                    )));
                }
                Some(Err(eventsource_stream::EventStreamError::Transport(f))) => {
                    return Some(self.fail(f));
                }
                Some(Err(e)) => {
                    return Some(self.fail(cut_failure(format!(
                        "Open WebUI's stream is not valid SSE: {e}"
                    ))));
                }
                Some(Ok(ev)) => ev,
            };
            let data = ev.data.trim();
            if data == "[DONE]" {
                return Some(self.done());
            }
            if data.is_empty() {
                continue;
            }
            let chunk = match sse::parse_chunk(data) {
                Ok(c) => c,
                Err(e) => {
                    return Some(self.fail(cut_failure(format!(
                        "Open WebUI sent a chunk that is not JSON: {e}"
                    ))));
                }
            };
            if chunk.usage.is_some() {
                self.usage = chunk.usage;
            }
            self.finished_reason |= chunk.finished;
            if let Some(msg) = chunk.error {
                return Some(self.fail(cut_failure(format!(
                    "Open WebUI's stream ended with an error: {msg}"
                ))));
            }
            if let Some(text) = chunk.text {
                self.recorder.first_token();
                self.recorder.reply_text(&text);
                return Some(delta_event(&text));
            }
        }
    }
}

fn relay_events(
    body: upstream::ByteStream,
    limits: ReplyLimits,
    recorder: UsageRecorder,
    shutdown: CancellationToken,
    session: AuthSession,
    left: Option<LimitsLeft>,
    help: Option<HelpReceiver>,
) -> impl Stream<Item = Event> + Send {
    let relay = Relay {
        events: Box::pin(body.eventsource()),
        timer: ReplyTimer::new(limits),
        recorder,
        shutdown: Box::pin(shutdown.cancelled_owned()),
        session,
        usage: None,
        left,
        finished_reason: false,
        over: false,
        help,
        tail: None,
    };
    futures::stream::unfold(relay, |mut r| async move {
        r.next_event().await.map(|e| (e, r))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delta_is_written_as_chat_event_data_writes_it() {
        for text in ["Hel", "a \"quote\"\nand é ✓", "</script>\u{0}"] {
            let direct = serde_json::to_string(&DeltaRef { text }).unwrap();
            let e = ChatEvent::Delta { text: text.into() };
            assert_eq!(direct, e.data());
            assert_eq!(ChatEvent::parse("delta", &direct).unwrap(), e);
        }
    }

    fn limits(idle_ms: u64, max_ms: u64) -> ReplyLimits {
        let max = Duration::from_millis(max_ms);
        ReplyLimits {
            idle: Duration::from_millis(idle_ms),
            deadline: tokio::time::Instant::now() + max,
            max,
        }
    }

    /// A body of `pieces`, each `gap` after the one before.
    fn paced(pieces: &[&'static str], gap: Duration) -> upstream::ByteStream {
        futures::stream::iter(pieces.to_vec())
            .then(move |p| async move {
                tokio::time::sleep(gap).await;
                Ok(bytes::Bytes::from_static(p.as_bytes()))
            })
            .boxed()
    }

    /// `start` to now, in whole milliseconds (the paused clock moves timer by timer).
    fn ms_since(start: tokio::time::Instant) -> u128 {
        start.elapsed().as_millis()
    }

    #[tokio::test(start_paused = true)]
    async fn a_reply_whose_pieces_keep_coming_outlives_the_idle_timeout() {
        // Five pieces 600 ms apart: 3 s in all, past a 1 s idle timeout no gap reaches.
        let start = tokio::time::Instant::now();
        let pieces = ["{\"a\":", "1", ",\"b\"", ":2", "}"];
        let got = read_reply(
            paced(&pieces, Duration::from_millis(600)),
            limits(1000, 10_000),
        )
        .await
        .unwrap();
        assert_eq!(&got[..], b"{\"a\":1,\"b\":2}");
        assert_eq!(ms_since(start), 3000);
        // One piece is handed on as it came.
        let got = read_reply(
            paced(&["whole"], Duration::from_millis(10)),
            limits(1000, 10_000),
        )
        .await
        .unwrap();
        assert_eq!(&got[..], b"whole");
    }

    #[tokio::test(start_paused = true)]
    async fn a_reply_is_cut_by_silence_and_by_its_deadline_at_the_right_moment() {
        // One piece, then silence: the idle timeout, counted from that piece.
        let start = tokio::time::Instant::now();
        let silent = paced(&["{"], Duration::from_millis(300))
            .chain(futures::stream::pending())
            .boxed();
        let f = read_reply(silent, limits(1000, 10_000)).await.unwrap_err();
        assert!(
            f.log.contains("silence between chunks after 1s"),
            "{}",
            f.log
        );
        assert_eq!(ms_since(start), 1300);
        // Pieces 600 ms apart never fall silent for 1 s: the 2 s deadline cuts them.
        let start = tokio::time::Instant::now();
        let steady = paced(&["x"; 10], Duration::from_millis(600));
        let f = read_reply(steady, limits(1000, 2000)).await.unwrap_err();
        assert!(f.log.contains("STREAM_MAX_DURATION (2s)"), "{}", f.log);
        assert_eq!(ms_since(start), 2000);
    }

    #[test]
    fn time_context_uses_the_zone() {
        let t: jiff::Timestamp = "2026-11-23T17:05:09Z".parse().unwrap();
        let taipei = t.to_zoned(jiff::tz::TimeZone::get("Asia/Taipei").unwrap());
        assert_eq!(
            time_context(taipei),
            "The current local date is 2026-11-24 and the current time is 01:05:09."
        );
    }

    #[test]
    fn system_messages_come_first_in_order() {
        let now = jiff::Timestamp::UNIX_EPOCH.to_zoned(jiff::tz::TimeZone::UTC);
        let m = upstream_messages(Some("Be kind."), now, vec![ChatMessage::user("hi")]);
        assert_eq!(m.len(), 3);
        assert_eq!(
            (m[0].role, m[0].content.as_str()),
            (Role::System, "Be kind.")
        );
        assert!(
            m[1].content
                .starts_with("The current local date is 1970-01-01")
        );
        assert_eq!(m[2], ChatMessage::user("hi"));
    }
}
