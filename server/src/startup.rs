//! Building the application from [`Settings`] and running it until a shutdown signal.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::auth::token::{TokenKeys, now_secs};
use crate::classes::{ClassRegistry, CodeKeys, is_stored_form};
use crate::config::Settings;
use crate::error::AppError;
use crate::limits::Limits;
use crate::relay::upstream::Upstream;
use crate::state::{AppState, RevokedSessions};
use crate::store::Store;
use crate::usage::{DailyCounter, UsageLog};

/// A bound, ready-to-run server.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    state: AppState,
    usage_task: JoinHandle<()>,
    /// Housekeeping and, on PostgreSQL, the replicas' change listener.
    sync_task: JoinHandle<()>,
}

impl Application {
    /// Binds the listener, opens and migrates the database, and builds the state.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        // Leptos renders pages on an executor of its own choosing; ours is tokio.
        let _ = any_spawner::Executor::init_tokio();
        let listener = TcpListener::bind(settings.listen_addr)
            .await
            .with_context(|| format!("LISTEN_ADDR: cannot listen on {}", settings.listen_addr))?;
        let store = Store::connect(&settings.database_url).await?;
        let revoked = RevokedSessions::new(
            store.live_revocations(now_secs()).await?,
            settings.session_max_age,
        );
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
        store_codes_as_digests(&store, &code_keys).await?;
        let classes = ClassRegistry::new(
            &settings.classes,
            code_keys,
            store.load_overrides().await?,
            store.class_generations().await?,
        )
        .map_err(|e| {
            anyhow::anyhow!("the dashboard's class changes conflict with the configuration: {e}")
        })?;
        let upstream = Upstream::new(&settings.upstream, settings.timeouts)?;
        let (usage, usage_task) = UsageLog::spawn(store.clone());
        let bound = listener.local_addr()?;
        let public_url = settings
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{bound}"));
        let admin = crate::admin::Admin::new(&settings, &public_url)?;
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
            usage,
            admin: Arc::new(admin),
            shutdown: CancellationToken::new(),
        };
        let sync_task = crate::sync::spawn(state.clone());
        Ok(Self {
            listener,
            state,
            usage_task,
            sync_task,
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
            sync_task,
        } = self;
        let grace = state.settings.shutdown_grace;
        let stopping = CancellationToken::new();
        let app = router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
        // Streamed replies are many small writes: without TCP_NODELAY, Nagle's algorithm holds
        // each frame back until the previous one is acknowledged.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let serve =
            axum::serve(listener, app).with_graceful_shutdown(stopping.clone().cancelled_owned());
        let mut server = tokio::spawn(async move { serve.await });
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
        state.usage.close().await;
        let _ = usage_task.await;
        state.store.close().await;
        tracing::info!("stopped");
        result
    }
}

/// Older versions kept the codes the dashboard set in plain text: rewrite them as keyed
/// digests, so the database holds nothing a student could type.
async fn store_codes_as_digests(store: &Store, keys: &CodeKeys) -> anyhow::Result<()> {
    for o in store.load_overrides().await? {
        let Some(codes) = o.codes.filter(|c| c.iter().any(|c| !is_stored_form(c))) else {
            continue;
        };
        let stored = codes
            .iter()
            .map(|c| {
                if is_stored_form(c) {
                    c.clone()
                } else {
                    keys.store(c)
                }
            })
            .collect();
        store
            .change_class(
                &o.class_id,
                &crate::store::dashboard::OverrideChange::Codes(stored),
                "classchat",
                now_secs() * 1000,
                "codes stored as keyed digests",
            )
            .await?;
        tracing::info!(class = %o.class_id, "the dashboard's codes for this class are now stored as keyed digests");
    }
    Ok(())
}

/// Every route, with CORS and the body limit. Tests drive it with `oneshot`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(crate::auth::router())
        .merge(crate::relay::router())
        .merge(crate::assets::router())
        .merge(crate::pages::router())
        .merge(crate::admin::router())
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .fallback(|| async { AppError::NotFound })
        .layer(DefaultBodyLimit::max(
            classchat_shared::limits::MAX_BODY_BYTES,
        ))
        .layer(cors(&state.settings))
        .with_state(state)
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
        .expose_headers([header::RETRY_AFTER, HeaderName::from_static("x-request-id")])
        .max_age(Duration::from_secs(600))
}
