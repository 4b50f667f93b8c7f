//! A fake Open WebUI, optionally behind a fake Cloudflare Access, that answers exactly as
//! `docs/open-webui.md` records the real ones do. It records every request it gets, so tests
//! can assert what classchat sent, and can be told to fail in each documented way.
//!
//! Control it in-process through [`FakeUpstream`], or over HTTP (`POST /__control` with a
//! [`Behavior`] as JSON, or `{"reply": …}`, `{"chunk_delay_ms": …}`, `{"chunks": …}`,
//! `{"first_delay_ms": …}`, `{"shapes": [ReplyShape…]}`;
//! `GET /__requests`, `GET /__stats`) when run as a binary.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// How the fake answers the next requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Behavior {
    /// Answer normally.
    Normal,
    /// Answer this status and body (e.g. 500, or 429 with a provider error).
    Status {
        status: u16,
        body: String,
        content_type: String,
    },
    /// A model provider error stream: `count` deltas, then `{"error": ...}` and `[DONE]`.
    ErrorMidStream { count: usize },
    /// `count` deltas, then the connection closes without a finish or `[DONE]`.
    CutMidStream { count: usize },
    /// A chunk that is not JSON after `count` deltas.
    MalformedChunk { count: usize },
    /// Wait this long before answering at all.
    SlowStart { delay_ms: u64 },
    /// Send the first delta, then fall silent for this long.
    Stall { after: usize, delay_ms: u64 },
    /// The model provider's quota refusal, as Open WebUI passes it on: 429 with
    /// `Retry-After: retry_after` and an OpenAI-style error body.
    QuotaRefusal { retry_after: u64 },
}

/// One kind of streamed reply in a mix (see [`FakeConfig::shapes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyShape {
    /// How many of every `sum of weights` replies take this shape.
    pub weight: u32,
    pub chunks: usize,
    pub first_delay_ms: u64,
    pub chunk_delay_ms: u64,
}

impl ReplyShape {
    /// `WEIGHT:CHUNKS:FIRST_DELAY_MS:CHUNK_DELAY_MS`, as `fake-upstream --shape` takes it.
    pub fn parse(text: &str) -> Option<Self> {
        let mut it = text.split(':').map(|p| p.trim().parse::<u64>().ok());
        let shape = Self {
            weight: u32::try_from(it.next()??).ok()?,
            chunks: usize::try_from(it.next()??).ok()?,
            first_delay_ms: it.next()??,
            chunk_delay_ms: it.next()??,
        };
        (it.next().is_none() && shape.weight > 0 && shape.chunks > 0).then_some(shape)
    }
}

/// The shape reply number `n` takes: weighted round robin, so every window of
/// `sum of weights` replies holds each shape exactly `weight` times.
pub fn pick_shape(shapes: &[ReplyShape], n: u64) -> Option<ReplyShape> {
    let total: u64 = shapes.iter().map(|s| u64::from(s.weight)).sum();
    if total == 0 {
        return None;
    }
    let mut at = n % total;
    for s in shapes {
        if at < u64::from(s.weight) {
            return Some(*s);
        }
        at -= u64::from(s.weight);
    }
    None
}

/// What the fake is configured with.
#[derive(Debug, Clone)]
pub struct FakeConfig {
    pub api_key: String,
    /// `Some((id, secret))`: Cloudflare Access sits in front and wants this service token.
    pub cf_access: Option<(String, String)>,
    /// How Access refuses a bad token: 302 (its default), 401 or 403.
    pub cf_refusal: u16,
    pub models: Vec<String>,
    /// Reply text; `None`: "You said: <last user message>".
    pub reply: Option<String>,
    /// Chunks the reply is split into, and the pause before each.
    pub chunks: usize,
    pub chunk_delay: Duration,
    /// The pause before a stream's first piece of text (a model thinking); `None`: `chunk_delay`.
    pub first_delay: Option<Duration>,
    /// When not empty, each streamed reply takes one of these shapes in turn, in proportion to
    /// their weights (a benchmark's mix of short and long answers); the reply is then
    /// `chunks` pieces of "word word ", whatever `reply` says.
    pub shapes: Vec<ReplyShape>,
    /// Keep every request for `requests()`; off for benchmarks, where the list would grow
    /// without bound behind a lock.
    pub record: bool,
    /// How a stream reports usage when the request asks for it (`stream_options.include_usage`).
    pub usage: UsageStyle,
    /// When set, a stream waits for this to be notified before its finish chunk: a test can
    /// see what reached the client while the upstream is provably still sending.
    pub hold_finish: Option<Arc<tokio::sync::Notify>>,
    /// Open WebUI with API keys switched off (`ENABLE_API_KEYS`): an `sk-` key gets 403.
    pub api_keys_disabled: bool,
    /// Seconds added to the `Date` header, to stand for a machine whose clock is off.
    pub date_offset_secs: i64,
    /// A Llama Guard style safety model the fake also serves, and how it answers.
    pub guard: Option<Guard>,
}

/// A safety model: requests naming `model` are answered as `answer` says, whatever the
/// other settings (the reply text, the behaviour) are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guard {
    pub model: String,
    pub answer: GuardAnswer,
}

/// How the safety model answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuardAnswer {
    /// A chat completion whose content is this text, as Llama Guard 3 writes it: `safe`, or
    /// `unsafe` and a line of category codes (`unsafe\nS11`).
    Says(String),
    /// Never answers (the request hangs until the caller gives up).
    Hangs,
    /// Open WebUI cannot reach the model's provider: 500 with its `detail`.
    Down,
}

/// The spellings of a stream's token counts that providers use (docs/open-webui.md).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UsageStyle {
    /// `usage.{prompt_tokens, completion_tokens, total_tokens}` (OpenAI and most others).
    #[default]
    OpenAi,
    /// `usage.{input_tokens, output_tokens}`.
    InputOutput,
    /// Ollama's `prompt_eval_count`/`eval_count`, as some Open WebUI releases pass them on
    /// inside `usage`.
    Ollama,
    /// A provider that never reports usage, asked or not.
    Never,
}

/// Prompt and completion tokens the fake reports.
pub const FAKE_USAGE: (u32, u32) = (11, 7);

impl UsageStyle {
    fn json(self) -> Option<Value> {
        let (p, c) = FAKE_USAGE;
        match self {
            Self::OpenAi => {
                Some(json!({"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}))
            }
            Self::InputOutput => Some(json!({"input_tokens": p, "output_tokens": c})),
            Self::Ollama => Some(
                json!({"response_token/s": 41.5, "prompt_eval_count": p, "eval_count": c, "total_duration": 1_000_000}),
            ),
            Self::Never => None,
        }
    }
}

impl Default for FakeConfig {
    fn default() -> Self {
        Self {
            api_key: "sk-0123456789abcdef0123456789abcdef".into(),
            cf_access: None,
            cf_refusal: 302,
            models: vec!["test-model".into()],
            reply: None,
            chunks: 5,
            chunk_delay: Duration::from_millis(5),
            first_delay: None,
            shapes: Vec::new(),
            record: true,
            usage: UsageStyle::OpenAi,
            hold_finish: None,
            api_keys_disabled: false,
            date_offset_secs: 0,
            guard: None,
        }
    }
}

/// One request the fake received.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Recorded {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Counters the tests read.
#[derive(Debug, Default, Serialize, Deserialize, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub streams_started: u64,
    pub streams_finished: u64,
    /// Streams whose reader went away before the fake finished writing.
    pub streams_dropped: u64,
}

#[derive(Debug)]
struct Shared {
    config: Mutex<FakeConfig>,
    behavior: Mutex<Behavior>,
    requests: Mutex<Vec<Recorded>>,
    started: AtomicU64,
    finished: AtomicU64,
    dropped: AtomicU64,
    /// Streamed replies that took a shape (see [`pick_shape`]).
    shaped: AtomicU64,
}

/// A running fake.
#[derive(Debug, Clone)]
pub struct FakeUpstream {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl FakeUpstream {
    /// Starts on `127.0.0.1:port` (0: any free port).
    pub async fn spawn_on(port: u16, config: FakeConfig) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            config: Mutex::new(config),
            behavior: Mutex::new(Behavior::Normal),
            requests: Mutex::new(Vec::new()),
            started: AtomicU64::new(0),
            finished: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            shaped: AtomicU64::new(0),
        });
        // A backlog as deep as classchat's and nginx's (tokio's bind asks for 1024): a
        // benchmark's burst of new connections must not overflow it, or dropped SYNs come
        // back a second later and the tail latency measures the fake.
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.set_reuseaddr(true)?;
        socket.bind(SocketAddr::from(([127, 0, 0, 1], port)))?;
        let listener = socket.listen(4096)?;
        let addr = listener.local_addr()?;
        let app = router(shared.clone());
        // SSE chunks are small writes: without TCP_NODELAY each waits for the previous one's
        // (delayed) acknowledgement, and every reader's first delta arrives ~40 ms late.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, shared })
    }

    pub async fn spawn(config: FakeConfig) -> Self {
        Self::spawn_on(0, config)
            .await
            .expect("bind a loopback port")
    }

    /// `http://127.0.0.1:PORT`, what OPEN_WEBUI_URL is set to.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_behavior(&self, b: Behavior) {
        *lock(&self.shared.behavior) = b;
    }

    pub fn configure(&self, f: impl FnOnce(&mut FakeConfig)) {
        f(&mut lock(&self.shared.config));
    }

    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.shared.requests).clone()
    }

    pub fn stats(&self) -> Stats {
        stats(&self.shared)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn stats(s: &Shared) -> Stats {
    Stats {
        streams_started: s.started.load(Ordering::SeqCst),
        streams_finished: s.finished.load(Ordering::SeqCst),
        streams_dropped: s.dropped.load(Ordering::SeqCst),
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/chat/completions", post(completions).get(web_app))
        .route("/api/models", get(models))
        .route("/__control", post(control))
        .route(
            "/__requests",
            get(
                |State(s): State<Arc<Shared>>| async move { axum::Json(lock(&s.requests).clone()) },
            ),
        )
        .route(
            "/__stats",
            get(|State(s): State<Arc<Shared>>| async move { axum::Json(stats(&s)) }),
        )
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            skew_date,
        ))
        .with_state(shared)
}

/// Writes the `Date` header itself when the fake's clock is set off (hyper adds the true
/// one only when a response has none).
async fn skew_date(
    State(s): State<Arc<Shared>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let offset = lock(&s.config).date_offset_secs;
    let mut resp = next.run(req).await;
    if offset != 0 {
        let (now, by) = (
            std::time::SystemTime::now(),
            Duration::from_secs(offset.unsigned_abs()),
        );
        let at = if offset > 0 { now + by } else { now - by };
        if let Ok(v) = HeaderValue::from_str(&httpdate(at)) {
            resp.headers_mut().insert(header::DATE, v);
        }
    }
    resp
}

/// An HTTP date (RFC 9110's IMF-fixdate).
fn httpdate(at: std::time::SystemTime) -> String {
    let secs = at
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
    let mon = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(month - 1) as usize];
    format!(
        "{weekday}, {day:02} {mon} {year} {:02}:{:02}:{:02} GMT",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Refuses as Access, then Open WebUI, would: `None` when the caller may pass.
fn refuse(config: &FakeConfig, headers: &HeaderMap) -> Option<Response> {
    if let Some((id, secret)) = &config.cf_access {
        let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
        if h("cf-access-client-id") != id || h("cf-access-client-secret") != secret {
            return Some(access_refusal(config.cf_refusal));
        }
    }
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if config.api_keys_disabled && auth.is_some_and(|v| v.starts_with("Bearer sk-")) {
        return Some(detail(
            StatusCode::FORBIDDEN,
            "Use of API key is not enabled in the environment.",
        ));
    }
    match auth {
        None => Some(detail(StatusCode::UNAUTHORIZED, "Not authenticated")),
        Some(v) if v == format!("Bearer {}", config.api_key) => None,
        Some(v) if v.starts_with("Bearer sk-") => Some(detail(
            StatusCode::UNAUTHORIZED,
            "Your session has expired or the token is invalid. Please sign in again.",
        )),
        Some(_) => Some(detail(StatusCode::UNAUTHORIZED, "401 Unauthorized")),
    }
}

/// `GET /api/models`: the models the key's user may use, as Open WebUI lists them.
async fn models(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let config = lock(&s.config).clone();
    if let Some(r) = refuse(&config, &headers) {
        return r;
    }
    let data: Vec<Value> = config
        .models
        .iter()
        .map(|m| json!({"id": m, "name": m, "object": "model", "owned_by": "openai"}))
        .collect();
    axum::Json(json!({ "data": data })).into_response()
}

async fn control(State(s): State<Arc<Shared>>, axum::Json(b): axum::Json<Value>) -> Response {
    // `{"reply": "..."}` sets the reply text; anything else is a Behavior.
    if let Some(reply) = b.get("reply") {
        lock(&s.config).reply = reply.as_str().map(str::to_owned);
        return StatusCode::NO_CONTENT.into_response();
    }
    if let Some(n) = b.get("chunk_delay_ms").and_then(Value::as_u64) {
        lock(&s.config).chunk_delay = Duration::from_millis(n);
        return StatusCode::NO_CONTENT.into_response();
    }
    if let Some(n) = b.get("chunks").and_then(Value::as_u64) {
        lock(&s.config).chunks = n as usize;
        return StatusCode::NO_CONTENT.into_response();
    }
    if let Some(n) = b.get("first_delay_ms") {
        lock(&s.config).first_delay = n.as_u64().map(Duration::from_millis);
        return StatusCode::NO_CONTENT.into_response();
    }
    if let Some(shapes) = b.get("shapes") {
        return match serde_json::from_value::<Vec<ReplyShape>>(shapes.clone()) {
            Ok(shapes) => {
                lock(&s.config).shapes = shapes;
                StatusCode::NO_CONTENT.into_response()
            }
            Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
        };
    }
    match serde_json::from_value::<Behavior>(b) {
        Ok(b) => {
            *lock(&s.behavior) = b;
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    }
}

async fn web_app() -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        "<!doctype html><title>Open WebUI</title>",
    )
        .into_response()
}

fn detail(status: StatusCode, text: &str) -> Response {
    (status, axum::Json(json!({ "detail": text }))).into_response()
}

fn access_refusal(code: u16) -> Response {
    let html = [(header::CONTENT_TYPE, "text/html")];
    match code {
        401 => (StatusCode::UNAUTHORIZED, html, "<html><body>Unauthorized</body></html>").into_response(),
        403 => {
            let mut r = (StatusCode::FORBIDDEN, html, "<html><body>Forbidden</body></html>").into_response();
            r.headers_mut().insert("cf-access-error", HeaderValue::from_static("service token invalid"));
            r.headers_mut().insert("cf-access-aud", HeaderValue::from_static("0123abcd"));
            r.headers_mut().insert("cf-access-domain", HeaderValue::from_static("chat.example.edu"));
            r
        }
        _ => (
            StatusCode::FOUND,
            [
                (header::LOCATION, "https://myschool.cloudflareaccess.com/cdn-cgi/access/login/chat.example.edu?kid=0123abcd&redirect_url=%2Fapi%2Fchat%2Fcompletions&meta=x"),
                (header::CONTENT_TYPE, "text/html"),
            ],
            "<html><body><a href=\"https://myschool.cloudflareaccess.com/\">Found</a></body></html>",
        )
            .into_response(),
    }
}

async fn completions(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let config = lock(&s.config).clone();
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    if config.record {
        lock(&s.requests).push(Recorded {
            path: "/api/chat/completions".into(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
                .collect(),
            body: parsed.clone().unwrap_or(Value::Null),
        });
    }

    if config.api_keys_disabled
        && let Some(r) = refuse(&config, &headers)
    {
        return r;
    }
    if let Some((id, secret)) = &config.cf_access {
        let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
        if h("cf-access-client-id") != id || h("cf-access-client-secret") != secret {
            return access_refusal(config.cf_refusal);
        }
    }
    match headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        None => return detail(StatusCode::UNAUTHORIZED, "Not authenticated"),
        Some(v) if v == format!("Bearer {}", config.api_key) => {}
        Some(v) if v.starts_with("Bearer sk-") => {
            return detail(
                StatusCode::UNAUTHORIZED,
                "Your session has expired or the token is invalid. Please sign in again.",
            );
        }
        Some(_) => return detail(StatusCode::UNAUTHORIZED, "401 Unauthorized"),
    }
    let Some(req) = parsed else {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(json!({"detail": [{"type": "json_invalid", "loc": ["body", 0], "msg": "JSON decode error"}]})),
        )
            .into_response();
    };
    if let Some(chat_id) = req.get("chat_id") {
        // A local or temporary chat with an `id` streams to Open WebUI's own websocket and
        // answers the caller `null`; any other id must name a saved chat, and none exists.
        let local = chat_id
            .as_str()
            .is_some_and(|c| c.starts_with("local:") || c.starts_with("temporary:"));
        let streaming = req.get("stream").and_then(Value::as_bool) == Some(true);
        if local && req.get("id").is_some() && streaming {
            return axum::Json(Value::Null).into_response();
        }
        return detail(
            StatusCode::NOT_FOUND,
            "We could not find what you're looking for :/",
        );
    }
    let model = req.get("model").and_then(Value::as_str).unwrap_or("");
    if let Some(g) = config.guard.as_ref().filter(|g| g.model == model) {
        return match &g.answer {
            GuardAnswer::Says(text) => axum::Json(json!({
                "id": "chatcmpl-guard", "object": "chat.completion", "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 200, "completion_tokens": 5, "total_tokens": 205},
            }))
            .into_response(),
            GuardAnswer::Hangs => futures::future::pending().await,
            GuardAnswer::Down => detail(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Open WebUI: Server Connection Error",
            ),
        };
    }
    if !config.models.iter().any(|m| m == model) {
        return detail(StatusCode::BAD_REQUEST, "Model not found");
    }
    let behavior = lock(&s.behavior).clone();
    if let Behavior::Status {
        status,
        body,
        content_type,
    } = &behavior
    {
        let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return (
            status,
            [(header::CONTENT_TYPE, content_type.clone())],
            body.clone(),
        )
            .into_response();
    }
    if let Behavior::QuotaRefusal { retry_after } = behavior {
        let body = json!({"error": {"message": "You exceeded your current quota.", "type": "insufficient_quota"}});
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, retry_after.to_string())],
            axum::Json(body),
        )
            .into_response();
    }
    if let Behavior::SlowStart { delay_ms } = behavior {
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    }
    let last_user = req
        .get("messages")
        .and_then(Value::as_array)
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_str())
        .unwrap_or("")
        .to_owned();
    let reply = config
        .reply
        .clone()
        .unwrap_or_else(|| format!("You said: {last_user}"));
    if req.get("stream").and_then(Value::as_bool) != Some(true) {
        let mut body = json!({
            "id": "chatcmpl-fake", "object": "chat.completion", "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
        });
        if let Some(u) = config.usage.json() {
            body["usage"] = u;
        }
        return axum::Json(body).into_response();
    }
    // A stream carries usage only when the caller asked (OpenAI-style providers).
    let asked = req
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        == Some(true);
    let usage = config.usage.json().filter(|_| asked);
    let mut config = config;
    let mut reply = reply;
    if let Some(shape) = pick_shape(&config.shapes, s.shaped.fetch_add(1, Ordering::Relaxed)) {
        config.chunks = shape.chunks;
        config.first_delay = Some(Duration::from_millis(shape.first_delay_ms));
        config.chunk_delay = Duration::from_millis(shape.chunk_delay_ms);
        reply = "word ".repeat(2 * shape.chunks);
    }
    stream_reply(s, config, behavior, model.to_owned(), reply, usage)
}

/// Splits `text` into `n` pieces of about equal length (on char boundaries).
pub fn split_reply(text: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let n = n.clamp(1, chars.len().max(1));
    let size = chars.len().div_ceil(n).max(1);
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

struct DropGuard {
    shared: Arc<Shared>,
    done: bool,
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        let counter = if self.done {
            &self.shared.finished
        } else {
            &self.shared.dropped
        };
        counter.fetch_add(1, Ordering::SeqCst);
    }
}

fn stream_reply(
    s: Arc<Shared>,
    config: FakeConfig,
    behavior: Behavior,
    model: String,
    reply: String,
    usage: Option<Value>,
) -> Response {
    s.started.fetch_add(1, Ordering::SeqCst);
    let chunk = |delta: Value, finish: Value| {
        json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": model,
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        .to_string()
    };
    let pieces = split_reply(&reply, config.chunks);
    // Each frame: (pause before it, bytes). `None` bytes: close the connection there.
    let mut frames: Vec<(Duration, Option<String>)> = vec![(
        Duration::ZERO,
        Some(chunk(
            json!({"role": "assistant", "content": ""}),
            Value::Null,
        )),
    )];
    // The finish frame's index: a held stream waits there.
    let mut hold_at = None;
    let cut_at = match behavior {
        Behavior::ErrorMidStream { count }
        | Behavior::CutMidStream { count }
        | Behavior::MalformedChunk { count } => Some(count),
        _ => None,
    };
    for (i, p) in pieces.iter().enumerate() {
        if cut_at == Some(i) {
            break;
        }
        let mut pause = match config.first_delay {
            Some(first) if i == 0 => first,
            _ => config.chunk_delay,
        };
        if let Behavior::Stall { after, delay_ms } = behavior
            && i == after
        {
            pause = Duration::from_millis(delay_ms);
        }
        frames.push((pause, Some(chunk(json!({"content": p}), Value::Null))));
    }
    match behavior {
        Behavior::ErrorMidStream { .. } => {
            frames.push((
                config.chunk_delay,
                Some(json!({"error": {"message": "model provider connection reset"}}).to_string()),
            ));
            frames.push((Duration::ZERO, Some("[DONE]".into())));
        }
        Behavior::CutMidStream { .. } => frames.push((config.chunk_delay, None)),
        Behavior::MalformedChunk { .. } => {
            frames.push((config.chunk_delay, Some("{this is not json".into())))
        }
        _ => {
            hold_at = Some(frames.len());
            frames.push((Duration::ZERO, Some(chunk(json!({}), json!("stop")))));
            if let Some(usage) = usage {
                frames.push((Duration::ZERO, Some(json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": model, "choices": [], "usage": usage}).to_string())));
            }
            frames.push((Duration::ZERO, Some("[DONE]".into())));
        }
    }
    let total = frames.len();
    let hold = config.hold_finish.clone().filter(|_| hold_at.is_some());
    let guard = DropGuard {
        shared: s,
        done: false,
    };
    let body = futures::stream::unfold(
        (frames.into_iter().enumerate(), guard),
        move |(mut it, mut guard)| {
            let gate = hold.clone();
            async move {
                let (i, (pause, data)) = it.next()?;
                if !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
                if let Some(gate) = gate
                    && Some(i) == hold_at
                {
                    gate.notified().await;
                }
                let data = match data {
                    Some(d) => d,
                    None => {
                        guard.done = true;
                        return Some((Err(std::io::Error::other("connection cut")), (it, guard)));
                    }
                };
                if i + 1 == total {
                    guard.done = true;
                }
                Some((
                    Ok::<_, std::io::Error>(Bytes::from(format!("data: {data}\n\n"))),
                    (it, guard),
                ))
            }
        },
    )
    .boxed();
    (
        [
            (header::CONTENT_TYPE, "text/event-stream; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_keeps_all_text() {
        let parts = split_reply("Hello, world!", 4);
        assert_eq!(parts.len(), 4);
        assert_eq!(parts.concat(), "Hello, world!");
        assert_eq!(split_reply("", 3), vec![] as Vec<String>);
    }

    #[test]
    fn shapes_parse_and_take_turns_by_weight() {
        let long = ReplyShape::parse("1:80:200:30").unwrap();
        assert_eq!(
            long,
            ReplyShape {
                weight: 1,
                chunks: 80,
                first_delay_ms: 200,
                chunk_delay_ms: 30
            }
        );
        for bad in ["", "1:2:3", "1:2:3:4:5", "0:2:3:4", "1:0:3:4", "a:2:3:4"] {
            assert_eq!(ReplyShape::parse(bad), None, "{bad:?}");
        }
        let short = ReplyShape::parse("3:8:50:20").unwrap();
        let picks: Vec<_> = (0..8)
            .map(|n| pick_shape(&[short, long], n).unwrap())
            .collect();
        assert_eq!(picks.iter().filter(|s| **s == long).count(), 2);
        assert_eq!(picks[3], long);
        assert_eq!(pick_shape(&[], 0), None);
    }

    #[tokio::test]
    async fn a_shaped_stream_has_the_shapes_chunks_after_its_first_delay() {
        let fake = FakeUpstream::spawn(FakeConfig {
            shapes: vec![ReplyShape::parse("1:7:120:1").unwrap()],
            record: false,
            ..FakeConfig::default()
        })
        .await;
        let started = std::time::Instant::now();
        let (status, _, body) = ask(&fake, chat(json!({"stream": true})), false).await;
        assert_eq!(status, StatusCode::OK);
        assert!(started.elapsed() >= Duration::from_millis(120));
        let pieces = body.matches("\"content\":\"word").count();
        assert_eq!(pieces, 7, "{body}");
    }

    #[tokio::test]
    async fn control_sets_the_number_of_chunks_and_nothing_else() {
        let fake = FakeUpstream::spawn(FakeConfig::default()).await;
        let before = lock(&fake.shared.config).clone();
        let answer = control(
            State(fake.shared.clone()),
            axum::Json(json!({"chunks": 2000})),
        )
        .await;
        assert_eq!(answer.status(), StatusCode::NO_CONTENT);
        let after = lock(&fake.shared.config).clone();
        assert_eq!(after.chunks, 2000);
        assert_eq!(after.chunk_delay, before.chunk_delay);
        assert_eq!(after.reply, before.reply);
        assert_eq!(*lock(&fake.shared.behavior), Behavior::Normal);
        assert_eq!(split_reply(&"x".repeat(20_000), after.chunks).len(), 2000);
    }

    /// The fake's answer to `body`, sent with the right key (and Access token when set).
    async fn ask(
        fake: &FakeUpstream,
        body: Value,
        access: bool,
    ) -> (StatusCode, HeaderMap, String) {
        let mut headers = HeaderMap::new();
        let key = lock(&fake.shared.config).api_key.clone();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {key}")).unwrap(),
        );
        if access {
            headers.insert("cf-access-client-id", HeaderValue::from_static("id.access"));
            headers.insert(
                "cf-access-client-secret",
                HeaderValue::from_static("secret"),
            );
        }
        let r = completions(
            State(fake.shared.clone()),
            headers,
            Bytes::from(body.to_string()),
        )
        .await;
        let (parts, body) = r.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        (
            parts.status,
            parts.headers,
            String::from_utf8(bytes.to_vec()).unwrap(),
        )
    }

    fn chat(extra: Value) -> Value {
        let mut b = json!({"model": "test-model", "messages": [{"role": "user", "content": "hi"}]});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    }

    #[tokio::test]
    async fn a_local_or_temporary_chat_id_with_an_id_answers_null_and_any_other_404() {
        let fake = FakeUpstream::spawn(FakeConfig::default()).await;
        for chat_id in ["local:abc", "temporary:abc"] {
            let (status, _, body) = ask(
                &fake,
                chat(json!({"stream": true, "chat_id": chat_id, "id": "m1"})),
                false,
            )
            .await;
            assert_eq!(
                (status, body.as_str()),
                (StatusCode::OK, "null"),
                "{chat_id}"
            );
            // Without an `id`, or not streaming, it is an unknown chat like any other.
            let (status, _, _) = ask(
                &fake,
                chat(json!({"stream": true, "chat_id": chat_id})),
                false,
            )
            .await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{chat_id} without id");
            let (status, _, _) = ask(
                &fake,
                chat(json!({"stream": false, "chat_id": chat_id, "id": "m1"})),
                false,
            )
            .await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{chat_id} not streaming");
        }
        for stream in [true, false] {
            let (status, _, body) = ask(
                &fake,
                chat(json!({"stream": stream, "chat_id": "external-widget-1", "id": "m1"})),
                false,
            )
            .await;
            assert_eq!(status, StatusCode::NOT_FOUND);
            assert!(
                body.contains("We could not find what you're looking for"),
                "{body}"
            );
        }
    }

    #[tokio::test]
    async fn a_stream_carries_usage_only_when_asked() {
        let fake = FakeUpstream::spawn(FakeConfig::default()).await;
        let (_, _, plain) = ask(&fake, chat(json!({"stream": true})), false).await;
        assert!(plain.ends_with("data: [DONE]\n\n"), "{plain}");
        assert!(!plain.contains("usage"), "{plain}");
        let (_, _, asked) = ask(
            &fake,
            chat(json!({"stream": true, "stream_options": {"include_usage": true}})),
            false,
        )
        .await;
        assert!(
            asked.contains(
                r#""usage":{"completion_tokens":7,"prompt_tokens":11,"total_tokens":18}"#
            ),
            "{asked}"
        );
        // Each spelling, when asked; none from a provider that never reports it.
        for (style, want) in [
            (UsageStyle::InputOutput, r#""input_tokens":11"#),
            (UsageStyle::Ollama, r#""prompt_eval_count":11"#),
        ] {
            fake.configure(|c| c.usage = style);
            let (_, _, s) = ask(
                &fake,
                chat(json!({"stream": true, "stream_options": {"include_usage": true}})),
                false,
            )
            .await;
            assert!(s.contains(want), "{style:?}: {s}");
        }
        fake.configure(|c| c.usage = UsageStyle::Never);
        let (_, _, s) = ask(
            &fake,
            chat(json!({"stream": true, "stream_options": {"include_usage": true}})),
            false,
        )
        .await;
        assert!(!s.contains("usage") && s.contains("[DONE]"), "{s}");
    }

    #[tokio::test]
    async fn access_refusals_are_the_three_documented_answers() {
        let fake = FakeUpstream::spawn(FakeConfig {
            cf_access: Some(("id.access".into(), "right".into())),
            ..FakeConfig::default()
        })
        .await;
        let (status, headers, _) = ask(&fake, chat(json!({})), true).await;
        assert_eq!(status, StatusCode::FOUND);
        assert!(
            headers[header::LOCATION]
                .to_str()
                .unwrap()
                .starts_with("https://myschool.cloudflareaccess.com/cdn-cgi/access/login/")
        );
        fake.configure(|c| c.cf_refusal = 401);
        assert_eq!(
            ask(&fake, chat(json!({})), true).await.0,
            StatusCode::UNAUTHORIZED
        );
        fake.configure(|c| c.cf_refusal = 403);
        let (status, headers, _) = ask(&fake, chat(json!({})), true).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(headers["cf-access-domain"], "chat.example.edu");
        assert!(headers.contains_key("cf-access-aud"));
        assert!(headers.contains_key("cf-access-error"));
    }
}
