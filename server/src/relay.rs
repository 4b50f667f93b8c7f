//! `POST /api/v1/chat`: a signed-in student's messages to Open WebUI and the reply back,
//! streamed chunk by chunk.
//!
//! The stream is one straight chain from the upstream body to the response body (no
//! task or channel in between), so there is backpressure, and a student who goes away
//! drops the upstream request with it.

pub mod demo;
pub mod http1;
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

use crate::auth::AuthSession;
use crate::error::{AppError, AppJson, Result};
use crate::limiter::retry_secs;
use crate::limits::{Budget, Message, Refusal};
use crate::state::AppState;
use crate::store::{Outcome, UsageRow};
use crate::usage::UsageRecorder;
use upstream::{UpstreamFailure, UpstreamRequest, cut_failure, timeout_failure};

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/api/v1/chat", post(create_chat))
}

/// The time-context line the assistant gets ("what day is it?" is a common question).
pub fn time_context(now: jiff::Zoned) -> String {
    format!(
        "The current local date is {} and the current time is {}.",
        now.strftime("%Y-%m-%d"),
        now.strftime("%H:%M:%S")
    )
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

    let now = jiff::Zoned::now().with_time_zone(state.settings.timezone.clone());
    let quota = class
        .daily_message_quota
        .unwrap_or(state.settings.daily_message_quota);
    let message = Message {
        session_id: &session.claims.sub,
        session_per_minute: class
            .messages_per_minute
            .unwrap_or(state.settings.messages_per_minute),
        class_id: &class.id,
        class_per_minute: class
            .class_messages_per_minute
            .unwrap_or(state.settings.class_messages_per_minute),
        day: now.date(),
        quota,
        day_ends_in: seconds_to_midnight(&now),
    };
    let left = match state.limits.admit_message(&message).await {
        Ok(left) => (!left.is_empty()).then_some(left),
        Err(Refusal::TooFast { budget, wait }) => {
            let secs = retry_secs(wait);
            if budget == Budget::Class {
                tracing::warn!(class = %class.id, "class message ceiling reached");
            }
            return Err(AppError::limit_hit(
                if budget == Budget::Class {
                    LimitKind::ClassMinute
                } else {
                    LimitKind::Minute
                },
                secs,
                if budget == Budget::Class {
                    format!(
                        "Your class is sending more messages than its limit allows. Please wait {secs} seconds."
                    )
                } else {
                    format!("You are sending messages too quickly. Please wait {secs} seconds.")
                },
            ));
        }
        Err(Refusal::Quota) => {
            let secs = message.day_ends_in;
            tracing::warn!(class = %class.id, quota, "daily message quota reached");
            return Err(AppError::limit_hit(
                LimitKind::Day,
                secs,
                "Your class has used today's messages. Please try again tomorrow.",
            ));
        }
        Err(Refusal::Unavailable) => return Err(AppError::Unavailable),
    };

    let model = class
        .model
        .clone()
        .or_else(|| state.settings.default_model.clone())
        .unwrap_or_else(|| "demo".to_owned());
    let stream = req.stream;
    let up_req = UpstreamRequest::new(
        model.clone(),
        upstream_messages(class.system_prompt.as_deref(), now, req.messages),
        stream,
    );
    let mut recorder = UsageRecorder::new(
        state.usage.clone(),
        UsageRow {
            at_ms: jiff::Timestamp::now().as_millisecond(),
            class_id: class.id.clone(),
            session_id: session.claims.sub.clone(),
            display_name: session.claims.name.clone(),
            conversation_id: req.conversation_id,
            model: Some(model),
            prompt_tokens: None,
            completion_tokens: None,
            tokens_estimated: false,
            first_token_ms: None,
            total_ms: 0,
            outcome: Outcome::Interrupted,
            error_code: None,
        },
    );

    let resp = match state.upstream.send(&up_req).await {
        Ok(r) => {
            recorder.accepted(
                up_req
                    .messages
                    .iter()
                    .map(|m| m.content.chars().count())
                    .sum(),
            );
            r
        }
        Err(f) => {
            log_failure(&f, &session);
            recorder.failed(f.code);
            return Err(f.into());
        }
    };

    let limits = ReplyLimits {
        idle: state.upstream.idle_timeout(),
        deadline: tokio::time::Instant::now() + state.settings.timeouts.reply_max,
        max: state.settings.timeouts.reply_max,
    };
    if !stream {
        return collect_reply(resp.body, limits, recorder, &session, left).await;
    }
    let events = relay_events(
        resp.body,
        limits,
        recorder,
        state.shutdown.clone(),
        session,
        left,
    );
    let sse = events.map(|e| Ok::<_, Infallible>(sse_event(&e)));
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

/// A comment line this often while the upstream is silent, so proxies and browsers keep
/// an idle stream open (the widget treats a longer silence as a buffering proxy).
pub const HEARTBEAT: Duration = Duration::from_secs(15);

/// A delta's `{"text": …}`, as [`ChatEvent::data`] writes it, but borrowed.
#[derive(serde::Serialize)]
struct DeltaRef<'a> {
    text: &'a str,
}

/// One SSE event. A delta (nearly every event) has its JSON written straight into the
/// event's buffer: no copy of the text and no intermediate string.
fn sse_event(e: &ChatEvent) -> Event {
    let event = Event::default().event(e.name());
    match e {
        ChatEvent::Delta { text } => match event.json_data(DeltaRef { text }) {
            Ok(ev) => ev,
            Err(_) => Event::default().event(e.name()).data(e.data()),
        },
        _ => event.data(e.data()),
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

async fn collect_reply(
    body: upstream::ByteStream,
    limits: ReplyLimits,
    mut recorder: UsageRecorder,
    session: &AuthSession,
    left: Option<LimitsLeft>,
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
/// [`MAX_REPLY_BYTES`].
async fn read_reply(
    mut body: upstream::ByteStream,
    limits: ReplyLimits,
) -> Result<Vec<u8>, UpstreamFailure> {
    let mut buf = Vec::new();
    loop {
        let next = tokio::select! {
            _ = tokio::time::sleep_until(limits.deadline) => return Err(over_time(limits.max)),
            n = tokio::time::timeout(limits.idle, body.next()) => n,
        };
        match next {
            Err(_) => return Err(timeout_failure("silence between chunks", limits.idle)),
            Ok(None) => return Ok(buf),
            Ok(Some(Err(f))) => return Err(f),
            Ok(Some(Ok(b))) if buf.len() + b.len() > MAX_REPLY_BYTES => {
                return Err(too_long(format!(
                    "Open WebUI's answer is over {} kB: cut",
                    MAX_REPLY_BYTES / 1024
                )));
            }
            Ok(Some(Ok(b))) => buf.extend_from_slice(&b),
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
    limits: ReplyLimits,
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
    recorder: UsageRecorder,
    /// Made once per reply, not once per chunk (each is a waiter registered under a lock).
    shutdown: std::pin::Pin<Box<tokio_util::sync::WaitForCancellationFutureOwned>>,
    session: AuthSession,
    usage: Option<Usage>,
    /// What is left of the student's limits, for the `done` event.
    left: Option<LimitsLeft>,
    finished_reason: bool,
    over: bool,
}

impl Relay {
    fn fail(&mut self, f: UpstreamFailure) -> ChatEvent {
        log_failure(&f, &self.session);
        self.recorder.failed(f.code);
        self.over = true;
        ChatEvent::Error {
            code: f.code,
            message: f.student.to_owned(),
        }
    }

    fn done(&mut self) -> ChatEvent {
        self.recorder.usage(self.usage);
        self.recorder.completed();
        self.over = true;
        ChatEvent::Done {
            usage: self.usage,
            limits: self.left,
        }
    }

    async fn next_event(&mut self) -> Option<ChatEvent> {
        if self.over {
            return None;
        }
        loop {
            let next = tokio::select! {
                biased;
                _ = &mut self.shutdown => {
                    let f = UpstreamFailure {
                        code: ErrorCode::UpstreamUnavailable,
                        student: "The server is restarting. Please send your message again in a moment.",
                        log: "reply cut: the server is shutting down".into(),
                        retry_after: None,
                    };
                    return Some(self.fail(f));
                }
                _ = &mut self.deadline => return Some(self.fail(over_time(self.limits.max))),
                n = tokio::time::timeout(self.limits.idle, self.events.next()) => n,
            };
            let ev = match next {
                Err(_) => {
                    let f = timeout_failure("silence between chunks", self.limits.idle);
                    return Some(self.fail(f));
                }
                Ok(None) if self.finished_reason => return Some(self.done()),
                Ok(None) => {
                    return Some(self.fail(cut_failure(
                        "Open WebUI's stream ended before the reply was finished",
                    )));
                }
                Ok(Some(Err(eventsource_stream::EventStreamError::Transport(f)))) => {
                    return Some(self.fail(f));
                }
                Ok(Some(Err(e))) => {
                    return Some(self.fail(cut_failure(format!(
                        "Open WebUI's stream is not valid SSE: {e}"
                    ))));
                }
                Ok(Some(Ok(ev))) => ev,
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
                return Some(ChatEvent::Delta { text });
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
) -> impl Stream<Item = ChatEvent> + Send {
    let relay = Relay {
        events: Box::pin(body.eventsource()),
        limits,
        deadline: Box::pin(tokio::time::sleep_until(limits.deadline)),
        recorder,
        shutdown: Box::pin(shutdown.cancelled_owned()),
        session,
        usage: None,
        left,
        finished_reason: false,
        over: false,
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
