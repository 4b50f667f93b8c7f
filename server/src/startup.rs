//! Building the application from [`Settings`] and running it until a shutdown signal.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use classchat_shared::{ApiError, ErrorCode};
use http_body::{Body as _, Frame, SizeHint};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnRequest, DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::auth::token::TokenKeys;
use crate::basics::{now_ms, now_secs};
use crate::classes::{ClassRegistry, CodeKeys, is_stored_form};
use crate::config::{RuntimeShape, Settings};
use crate::error::{AppError, FailureReport};
use crate::limits::{DailyCounter, Limits};
use crate::relay::models::ModelList;
use crate::relay::upstream::Upstream;
use crate::state::{AppState, RevokedSessions};
use crate::store::Store;
use crate::usage::UsageLog;

/// A bound, ready-to-run server.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    state: AppState,
    usage_task: JoinHandle<()>,
    conversations_task: JoinHandle<()>,
    /// Housekeeping and, on PostgreSQL, the replicas' change listener.
    sync_task: JoinHandle<()>,
    /// The safety alerts' sender.
    alerts_task: JoinHandle<()>,
}

impl Application {
    /// Binds the listener, opens and migrates the database, and builds the state.
    pub async fn build(mut settings: Settings) -> anyhow::Result<Self> {
        settings.resolve_classes();
        // Leptos renders pages on an executor of its own choosing; ours is tokio.
        let _ = any_spawner::Executor::init_tokio();
        let reuse_port = settings.runtime == RuntimeShape::PerCore;
        let listener = bind(settings.listen_addr, reuse_port)
            .with_context(|| format!("LISTEN_ADDR: cannot listen on {}", settings.listen_addr))?;
        let store = Store::connect(&settings.database_url).await?;
        let revoked = RevokedSessions::new(store.revocations(now_secs()).await?);
        let daily = DailyCounter::default();
        let now = jiff::Zoned::now().with_time_zone(settings.timezone.clone());
        if let Ok(midnight) = now.start_of_day() {
            daily.seed(
                now.date(),
                store
                    .messages_since(midnight.timestamp().as_millisecond())
                    .await?,
            );
        }
        let code_keys = CodeKeys::new(
            &settings.auth_secret,
            settings.auth_secret_previous.as_ref(),
        );
        let overrides = store_codes_as_digests(&store, &code_keys).await?;
        let classes = ClassRegistry::new(
            &settings.classes,
            settings.class_defaults(),
            code_keys,
            overrides,
            store.class_generations().await?,
            store.stored_classes().await?,
        )
        .map_err(|e| {
            anyhow::anyhow!("the dashboard's class changes conflict with the configuration: {e}")
        })?;
        let upstream = Upstream::new(&settings.upstream, settings.timeouts, &settings.proxy)?;
        let models = ModelList::new(
            &settings.upstream,
            settings.timeouts.connect,
            &settings.proxy,
        )?;
        if let crate::config::UpstreamSettings::OpenWebUi(o) = &settings.upstream
            && let Some(warning) = crate::relay::http1::clear_text_warning(&o.completions_url)
        {
            tracing::warn!("{warning}");
        }
        let (usage, usage_task) = UsageLog::spawn(store.clone());
        let (conversations, conversations_task) = crate::conversations::Recorder::spawn(
            store.clone(),
            Arc::new(crate::sealed::Sealer::new(
                crate::conversations::PURPOSE,
                &settings.auth_secret,
                settings.auth_secret_previous.as_ref(),
            )),
        );
        let bound = listener.local_addr()?;
        let public_url = settings
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{bound}"));
        let admin = crate::admin::Admin::new(&settings, &public_url)?;
        let alerts = crate::alerts::Alerts::new(&settings)?;
        let lti = crate::lti::Lti::new(&settings)?;
        let state = AppState {
            public_url: public_url.into(),
            keys: Arc::new(TokenKeys::new(
                &settings.auth_secret,
                settings.auth_secret_previous.as_ref(),
            )),
            limits: Arc::new(Limits::new(&settings, &store, daily)),
            settings: Arc::new(settings),
            store,
            classes: Arc::new(classes),
            revoked: Arc::new(revoked),
            upstream: Arc::new(upstream),
            models: Arc::new(models),
            usage,
            conversations,
            admin: Arc::new(admin),
            shutdown: CancellationToken::new(),
            health: Default::default(),
            alerts: Arc::new(alerts),
            lti: Arc::new(lti),
        };
        let sync_task = crate::sync::spawn(state.clone());
        let alerts_task = crate::alerts::spawn_sender(state.clone());
        Ok(Self {
            listener,
            state,
            usage_task,
            conversations_task,
            sync_task,
            alerts_task,
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The shared state (tests read the store through it).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `signal` completes, then drains: open replies get SHUTDOWN_GRACE to
    /// finish, are then ended with an error event, and the usage log is flushed.
    pub async fn run_until_stopped(
        self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            listener,
            state,
            usage_task,
            conversations_task,
            sync_task,
            alerts_task,
        } = self;
        let grace = state.settings.shutdown_grace;
        let stopping = CancellationToken::new();
        let caps = Caps::new(state.settings.max_connections);
        let mut extra = None;
        if state.settings.runtime == RuntimeShape::PerCore {
            let runtimes = per_core_runtimes();
            let addr = listener.local_addr()?;
            extra = Some(ExtraRuntimes::start(
                runtimes - 1,
                addr,
                &state,
                &stopping,
                &caps,
            )?);
            tracing::info!(
                runtimes,
                "RUNTIME=per-core: one runtime and listener per core"
            );
        }
        let others: Vec<_> = extra
            .as_mut()
            .map(|e| std::mem::take(&mut e.served))
            .unwrap_or_default();
        let serve = serve(listener, state.clone(), stopping.clone(), caps);
        // This runtime's accept loop, then every other runtime's.
        let mut server = tokio::spawn(async move {
            let mut result = serve.await;
            for other in others {
                let r = other
                    .await
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a runtime thread ended")));
                result = result.and(r);
            }
            result
        });
        let served = tokio::select! {
            r = &mut server => Some(r),
            _ = signal => None,
        };
        let result = match served {
            Some(r) => r.context("server task")?.context("server"),
            None => {
                tracing::info!(
                    grace_secs = grace.as_secs(),
                    "shutting down: finishing open replies"
                );
                stopping.cancel();
                match tokio::time::timeout(grace, &mut server).await {
                    Ok(r) => r.context("server task")?.context("server"),
                    Err(_) => {
                        tracing::warn!("grace period over: ending the replies still open");
                        state.shutdown.cancel();
                        match tokio::time::timeout(Duration::from_secs(5), &mut server).await {
                            Ok(r) => r.context("server task")?.context("server"),
                            Err(_) => {
                                server.abort();
                                Ok(())
                            }
                        }
                    }
                }
            }
        };
        sync_task.abort();
        alerts_task.abort();
        state.limits.close().await;
        state.usage.close().await;
        let _ = usage_task.await;
        state.conversations.close().await;
        let _ = conversations_task.await;
        state.store.close().await;
        if let Some(extra) = extra {
            let _ = tokio::task::spawn_blocking(move || extra.finish()).await;
        }
        tracing::info!("stopped");
        result
    }
}

/// Older versions kept the codes the dashboard set in plain text: rewrite them as keyed
/// digests, so the database holds nothing a student could type. Returns the overrides as
/// they now stand.
async fn store_codes_as_digests(
    store: &Store,
    keys: &CodeKeys,
) -> anyhow::Result<Vec<crate::store::dashboard::OverrideRecord>> {
    let mut overrides = store.load_overrides().await?;
    for o in &mut overrides {
        let Some(codes) = o
            .codes
            .as_mut()
            .filter(|c| c.iter().any(|c| !is_stored_form(c)))
        else {
            continue;
        };
        *codes = codes.iter().map(|c| keys.stored_form(c)).collect();
        store
            .change_class(
                &o.class_id,
                &crate::store::dashboard::OverrideChange::Codes(codes.clone()),
                "classchat",
                now_ms(),
                "codes stored as keyed digests",
            )
            .await?;
        tracing::info!(class = %o.class_id, "the dashboard's codes for this class are now stored as keyed digests");
    }
    Ok(overrides)
}

/// The kernel's queue of connections not yet accepted. The usual default of 128 overflows
/// in a burst of a few hundred connections, and each one dropped waits a second for the
/// client's SYN retry. Linux caps it at net.core.somaxconn (4096 since 5.4).
const LISTEN_BACKLOG: u32 = 4096;

/// Over-cap connections being answered 503 at once; beyond this they are closed unanswered,
/// so a flood cannot make the refusals themselves unbounded.
const REFUSALS_AT_ONCE: usize = 256;

/// How long an over-cap connection may take to send the request it is refused.
const REFUSAL_HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// What an over-cap client is told to wait, in seconds.
const BUSY_RETRY_SECS: u64 = 5;

/// How often, at most, the connection cap's warning is logged.
const CAP_WARNING_EVERY: Duration = Duration::from_secs(10);

/// `reuse_port`: RUNTIME=per-core, where every runtime listens on the same address and the
/// kernel spreads new connections over them. Linux lets only the same user share the port.
fn bind(addr: SocketAddr, reuse_port: bool) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // As std's bind does: a restart can listen again while old connections sit in TIME_WAIT.
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    #[cfg(unix)]
    if reuse_port {
        socket.set_reuseport(true)?;
    }
    #[cfg(not(unix))]
    let _ = reuse_port;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// The connection caps, one per process whatever the number of runtimes: MAX_CONNECTIONS
/// holds for the server, not for each accept loop.
#[derive(Clone)]
struct Caps {
    slots: Arc<Semaphore>,
    refusals: Arc<Semaphore>,
}

impl Caps {
    fn new(max_connections: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(max_connections)),
            refusals: Arc::new(Semaphore::new(REFUSALS_AT_ONCE)),
        }
    }
}

/// How many runtimes RUNTIME=per-core runs: TOKIO_WORKER_THREADS when set (as the shared
/// runtime reads it), else one per core.
pub fn per_core_runtimes() -> usize {
    std::env::var("TOKIO_WORKER_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// The runtimes RUNTIME=per-core adds to the one the application was built on: each a
/// current-thread runtime on its own thread, with its own listener on `addr`.
struct ExtraRuntimes {
    /// One per runtime: its accept loop's result.
    served: Vec<tokio::sync::oneshot::Receiver<anyhow::Result<()>>>,
    /// Cancelled once the store is closed: only then may a runtime end, since the pooled
    /// database and upstream connections it opened are driven by its reactor.
    release: CancellationToken,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl ExtraRuntimes {
    /// Starts `count` runtimes; fails (after stopping those started) if one cannot listen.
    fn start(
        count: usize,
        addr: SocketAddr,
        state: &AppState,
        stopping: &CancellationToken,
        caps: &Caps,
    ) -> anyhow::Result<Self> {
        let mut extra = Self {
            served: Vec::new(),
            release: CancellationToken::new(),
            threads: Vec::new(),
        };
        for n in 1..=count {
            let (bound_tx, bound_rx) = std::sync::mpsc::channel::<std::io::Result<()>>();
            let (served_tx, served_rx) = tokio::sync::oneshot::channel();
            let (state, stop, caps, release) = (
                state.clone(),
                stopping.clone(),
                caps.clone(),
                extra.release.clone(),
            );
            let thread = std::thread::Builder::new()
                .name(format!("classchat-rt-{n}"))
                .spawn(move || {
                    let rt = match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(rt) => rt,
                        Err(e) => {
                            let _ = bound_tx.send(Err(e));
                            return;
                        }
                    };
                    rt.block_on(async move {
                        let listener = match bind(addr, true) {
                            Ok(l) => l,
                            Err(e) => {
                                let _ = bound_tx.send(Err(e));
                                return;
                            }
                        };
                        let _ = bound_tx.send(Ok(()));
                        let work = async move {
                            let _ = served_tx.send(serve(listener, state, stop, caps).await);
                            std::future::pending::<()>().await
                        };
                        // Released early (the grace period ran out), what is left is dropped.
                        tokio::select! {
                            () = work => {}
                            () = release.cancelled() => {}
                        }
                    });
                })
                .context("cannot start a runtime thread")?;
            extra.threads.push(thread);
            extra.served.push(served_rx);
            let bound = bound_rx
                .recv()
                .unwrap_or_else(|_| Err(std::io::Error::other("the runtime thread ended")));
            if let Err(e) = bound {
                stopping.cancel();
                extra.finish();
                return Err(e)
                    .with_context(|| format!("RUNTIME=per-core: cannot listen on {addr}"));
            }
        }
        Ok(extra)
    }

    /// Lets every runtime end and waits for its thread.
    fn finish(self) {
        self.release.cancel();
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// The accept loop: hyper's HTTP/1 with a header-read timeout (axum::serve has no timer, so
/// no timeout at all), a cap on open connections, and graceful shutdown once `stopping` is
/// cancelled: no new connections, idle ones closed, open replies allowed to finish.
async fn serve(
    listener: TcpListener,
    state: AppState,
    stopping: CancellationToken,
    caps: Caps,
) -> anyhow::Result<()> {
    let settings = state.settings.clone();
    let app = router(state);
    let graceful = GracefulShutdown::new();
    let Caps { slots, refusals } = caps;
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(settings.request_header_timeout)
        .keep_alive(true);
    let mut refusal_http = http1::Builder::new();
    refusal_http
        .timer(TokioTimer::new())
        .header_read_timeout(REFUSAL_HEADER_TIMEOUT.min(settings.request_header_timeout))
        .keep_alive(false);
    // The refusal goes through the same CORS policy, so the widget can read it.
    let busy = TowerToHyperService::new(
        tower::ServiceBuilder::new()
            .layer(cors(&settings))
            .service_fn(|_req: Request<hyper::body::Incoming>| async {
                Ok::<_, Infallible>(busy_response())
            }),
    );
    let mut refused_since_warning = 0u64;
    let mut last_warning: Option<Instant> = None;
    loop {
        let (tcp, remote) = tokio::select! {
            biased;
            _ = stopping.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    accept_failed(&e, &stopping).await;
                    continue;
                }
            },
        };
        // Streamed replies are many small writes: without TCP_NODELAY, Nagle's algorithm holds
        // each frame back until the previous one is acknowledged.
        let _ = tcp.set_nodelay(true);
        let io = TokioIo::new(tcp);
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            refused_since_warning += 1;
            if last_warning.is_none_or(|t| t.elapsed() >= CAP_WARNING_EVERY) {
                tracing::warn!(
                    max_connections = settings.max_connections,
                    refused = refused_since_warning,
                    "MAX_CONNECTIONS reached: new connections are answered 503"
                );
                refused_since_warning = 0;
                last_warning = Some(Instant::now());
            }
            let Ok(refusal) = refusals.clone().try_acquire_owned() else {
                continue; // dropping the socket closes it
            };
            let conn = graceful.watch(refusal_http.serve_connection(io, busy.clone()));
            tokio::spawn(async move {
                let _ = conn.await;
                drop(refusal);
            });
            continue;
        };
        let app = app.clone();
        // What axum's `into_make_service_with_connect_info` did: handlers read the peer.
        let service = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(remote));
            app.clone().oneshot(req.map(Body::new))
        });
        let conn = graceful.watch(http.serve_connection(io, service));
        tokio::spawn(async move {
            // Errors here are the client's (a reset, a header too slow): nothing to report.
            let _ = conn.await;
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// A failed accept: one client's trouble is skipped; anything else (out of descriptors) is
/// logged and retried after a pause, since accepting again at once would fail the same way.
async fn accept_failed(e: &std::io::Error, stopping: &CancellationToken) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "cannot accept connections (out of file descriptors? see ulimit -n)");
    tokio::select! {
        _ = stopping.cancelled() => {}
        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
    }
}

fn busy_response() -> Response {
    let body = ApiError::new(
        ErrorCode::UpstreamUnavailable,
        "The server is busy. Please try again in a few seconds.",
    )
    .with_retry_after(BUSY_RETRY_SECS);
    let mut r = (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(BUSY_RETRY_SECS));
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

/// Every route, with CORS and the body limits. Tests drive it with `oneshot`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(crate::auth::router())
        .merge(crate::relay::router())
        .merge(crate::assets::router())
        .merge(crate::embed::router())
        .merge(crate::pages::router())
        .merge(crate::admin::router())
        .merge(crate::api_admin::router())
        .merge(crate::invitation_page::router())
        .merge(crate::lti::router())
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .fallback(|| async { AppError::NotFound })
        .layer(DefaultBodyLimit::max(
            classchat_shared::limits::MAX_BODY_BYTES,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.settings.request_body_timeout,
            body_deadline,
        ))
        .layer(cors(&state.settings))
        .layer(axum::middleware::from_fn(log_failure))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                // The access log, off unless RUST_LOG asks for tower_http=debug.
                .on_request(DefaultOnRequest::new().level(Level::DEBUG))
                .on_response(DefaultOnResponse::new().level(Level::DEBUG))
                // Failures are logged once, by `log_failure`, with what went wrong.
                .on_failure(()),
        )
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

/// Every log line of a request carries its id, which the client gets back in
/// `x-request-id` (a proxy's own id is kept), so a teacher's report can be found in the log.
fn request_span(req: &Request) -> tracing::Span {
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!("request", id)
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The one log line for a failed request: a server fault at error level with its cause (from
/// the response's [`FailureReport`]), a refusal at debug (the module that refused has said
/// why, in its own words, where that matters). Query strings are left out: they can carry
/// what a student typed.
async fn log_failure(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let mut resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let report = resp.extensions_mut().remove::<FailureReport>();
    let code = report.as_ref().map_or("-", |r| r.code);
    let detail = report.as_ref().and_then(|r| r.detail.as_deref());
    if status.is_server_error() {
        tracing::error!(target: "classchat::request", %method, path, status = status.as_u16(), code, detail, "request failed");
    } else {
        tracing::debug!(target: "classchat::request", %method, path, status = status.as_u16(), code, "request refused");
    }
    resp
}

/// REQUEST_BODY_TIMEOUT: a body still arriving that long after its header is cut, and the
/// request answered 408. hyper only times the header; tower-http's body timeout restarts on
/// every chunk, so a byte a second would keep a connection forever.
async fn body_deadline(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    if req.body().is_end_stream() {
        return next.run(req).await;
    }
    let expired = Arc::new(AtomicBool::new(false));
    let req = req.map(|inner| {
        Body::new(DeadlineBody {
            inner,
            deadline: Instant::now() + limit,
            sleep: None,
            expired: expired.clone(),
        })
    });
    let resp = next.run(req).await;
    if !expired.load(Ordering::Relaxed) {
        return resp;
    }
    tracing::info!(
        limit_secs = limit.as_secs(),
        "request body arrived too slowly: answered 408"
    );
    let body = ApiError::new(
        ErrorCode::BadRequest,
        "The request arrived too slowly. Please try again.",
    );
    let mut r = (StatusCode::REQUEST_TIMEOUT, axum::Json(body)).into_response();
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

/// A request body that fails once its deadline passes (see [`body_deadline`]).
struct DeadlineBody {
    inner: Body,
    deadline: Instant,
    /// Made on the first wait, so a body that is already in costs no timer.
    sleep: Option<Pin<Box<Sleep>>>,
    expired: Arc<AtomicBool>,
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        let deadline = this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if sleep.as_mut().poll(cx).is_ready() {
            this.expired.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(axum::Error::new(
                "the request body did not arrive in time",
            ))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(e) => {
            tracing::error!(error = %e, "readiness check: database unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
        }
    }
}

fn cors(settings: &Settings) -> CorsLayer {
    let origin = match &settings.allowed_origins {
        None => AllowOrigin::any(),
        Some(list) => AllowOrigin::list(list.iter().filter_map(|o| HeaderValue::from_str(o).ok())),
    };
    CorsLayer::new()
        .allow_origin(origin)
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .expose_headers([header::RETRY_AFTER, REQUEST_ID])
        .max_age(Duration::from_secs(600))
}
