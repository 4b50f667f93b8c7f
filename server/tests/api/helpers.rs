//! `spawn_app` and friends: every test gets its own server, database and fake upstream.

use std::cell::RefCell;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use classchat_fake_upstream::{FakeConfig, FakeUpstream};
use classchat_server::config::classes_file::ClassList;
use classchat_server::config::{
    AdminSettings, ClientIpSource, LOOPBACK_RANGES, OpenWebUi, PasswordCheck, Rate, Settings,
    UpstreamSettings,
};
use classchat_server::startup::Application;
use classchat_server::state::AppState;
use classchat_shared::{ApiError, ChatEvent, ErrorCode, SessionResponse};
use futures::StreamExt;
use ipnet::IpNet;
use serde_json::{Value, json};

pub(crate) const SECRET: &str = "test-secret-0123456789-0123456789-abcdef";
pub(crate) const API_KEY: &str = "sk-0123456789abcdef0123456789abcdef";
pub(crate) const CF_ID: &str = "0123456789abcdef0123456789abcdef.access";
pub(crate) const CF_SECRET: &str =
    "fedcba98765432100123456789abcdeffedcba98765432100123456789abcdef";
pub(crate) const CODE: &str = "Green-Leaf-42";

/// Every log line any test's server wrote, all tests together: for checks that no secret
/// ever lands in a log. A check that a line IS logged reads [`TestApp::logs`] instead, which
/// another test's line cannot satisfy.
pub(crate) fn captured_logs() -> String {
    String::from_utf8_lossy(&log_buffer().lock().unwrap()).into_owned()
}

type Capture = Arc<Mutex<Vec<u8>>>;

thread_local! {
    /// The capture of the test running on this thread, while it holds a server. libtest
    /// runs each test on its own thread and `#[tokio::test]` runs the test's servers on that
    /// thread too, so a line written here came from this test.
    static TEST_CAPTURE: RefCell<Weak<Mutex<Vec<u8>>>> = const { RefCell::new(Weak::new()) };
}

/// This test's capture: the one its earlier servers share, or a new one.
fn test_capture() -> Capture {
    TEST_CAPTURE.with(|t| {
        let mut t = t.borrow_mut();
        t.upgrade().unwrap_or_else(|| {
            let c = Capture::default();
            *t = Arc::downgrade(&c);
            c
        })
    })
}

fn log_buffer() -> &'static Capture {
    static BUF: OnceLock<Capture> = OnceLock::new();
    BUF.get_or_init(|| {
        let buf = Capture::default();
        let writer = buf.clone();
        let show = std::env::var("TEST_LOG").is_ok();
        let _ = tracing_subscriber::fmt()
            .with_env_filter("info")
            .with_ansi(false)
            .with_writer(move || LogWriter {
                buf: writer.clone(),
                // Looked up per event, on the thread that logs it.
                own: TEST_CAPTURE
                    .try_with(|t| t.borrow().upgrade())
                    .ok()
                    .flatten(),
                show,
            })
            .try_init();
        buf
    })
}

struct LogWriter {
    buf: Capture,
    own: Option<Capture>,
    show: bool,
}

impl Write for LogWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if self.show {
            let _ = std::io::stderr().write_all(b);
        }
        self.buf.lock().unwrap().extend_from_slice(b);
        if let Some(own) = &self.own {
            own.lock().unwrap().extend_from_slice(b);
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub(crate) struct TestApp {
    pub(crate) address: String,
    pub(crate) client: reqwest::Client,
    pub(crate) state: AppState,
    pub(crate) upstream: FakeUpstream,
    /// The SQLite file (unused on PostgreSQL; see `db_url`).
    pub(crate) db_path: std::path::PathBuf,
    /// What `--database-url` was: the SQLite file, or the test's PostgreSQL database.
    pub(crate) db_url: String,
    /// This test's log capture, and where it stood when this server started.
    log: Capture,
    log_from: usize,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _dir: Arc<tempfile::TempDir>,
}

/// A change to a test server's settings (see [`Opts::with`]).
pub(crate) type Configure = Arc<dyn Fn(&mut Settings) + Send + Sync>;

/// Options for [`spawn_app_with`]: the settings are configured in code, by closures that
/// change the typed [`Settings`] a test server starts from.
#[derive(Clone)]
pub(crate) struct Opts {
    /// Applied in order by [`spawn_app_with`] (add with [`Opts::with`]).
    pub(crate) configure: Vec<Configure>,
    pub(crate) fake: FakeConfig,
    /// Reuse this directory's database (for restart tests).
    pub(crate) dir: Option<Arc<tempfile::TempDir>>,
    pub(crate) with_upstream: bool,
}

impl Default for Opts {
    fn default() -> Self {
        Self {
            configure: Vec::new(),
            fake: FakeConfig::default(),
            dir: None,
            with_upstream: true,
        }
    }
}

impl Opts {
    /// Changes the settings after the test defaults (and after earlier `with`s): e.g.
    /// `Opts::default().with(|s| s.messages_per_minute = 3)`. Classes without a value of
    /// their own follow a global one changed here, since the server resolves them when it
    /// starts.
    pub(crate) fn with(mut self, f: impl Fn(&mut Settings) + Send + Sync + 'static) -> Self {
        self.configure.push(Arc::new(f));
        self
    }
}

pub(crate) async fn spawn_app() -> TestApp {
    spawn_app_with(Opts::default()).await
}

/// The app in front of a fake configured as given.
pub(crate) async fn spawn_app_with_fake(fake: FakeConfig) -> TestApp {
    spawn_app_with(Opts {
        fake,
        ..Opts::default()
    })
    .await
}

/// A server on a free loopback port, its own database (unless the test names one) and a
/// fake Open WebUI, with the settings every test starts from (the code [`CODE`], the
/// secret [`SECRET`], time zone Asia/Taipei) and then the test's own changes.
pub(crate) async fn spawn_app_with(opts: Opts) -> TestApp {
    log_buffer();
    let log = test_capture();
    let log_from = log.lock().unwrap().len();
    let upstream = FakeUpstream::spawn(opts.fake.clone()).await;
    let dir = opts
        .dir
        .clone()
        .unwrap_or_else(|| Arc::new(tempfile::tempdir().unwrap()));
    let db_path = dir.path().join("classchat.db");
    let sqlite = db_path.display().to_string();
    let url = upstream.url();
    let mut args = vec![
        "--listen-addr",
        "127.0.0.1:0",
        "--database-url",
        &sqlite,
        "--auth-secret",
        SECRET,
        "--timezone",
        "Asia/Taipei",
        "--shutdown-grace",
        "2s",
        "--access-code",
        CODE,
        "--open-webui-model",
        "test-model",
    ];
    if opts.with_upstream {
        args.extend(["--open-webui-url", &url, "--open-webui-api-key", API_KEY]);
    }
    let mut settings = Settings::for_tests(&args).expect("the test defaults are valid");
    for configure in &opts.configure {
        configure(&mut settings);
    }
    // A test that names its own database gets it; the others get the suite's backend.
    let own_database = settings.database_url != sqlite;
    if !own_database {
        settings.database_url = database_for(dir.path(), &db_path).await;
    }
    let db = settings.database_url.clone();
    let app = Application::build(settings)
        .await
        .expect("application builds");
    let address = format!("http://{}", app.local_addr());
    let state = app.state().clone();
    if !own_database {
        assert_eq!(
            state.store.is_postgres(),
            on_postgres(),
            "the chosen backend"
        );
    }
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
    }));
    TestApp {
        address,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        state,
        upstream,
        db_path,
        db_url: db,
        log,
        log_from,
        stop: Some(tx),
        server: Some(server),
        _dir: dir,
    }
}

/// Runs the server on this database (DATABASE_URL) instead of the suite's.
pub(crate) fn database(url: &str) -> impl Fn(&mut Settings) + Send + Sync + 'static {
    let url = url.to_owned();
    move |s| s.database_url = url.clone()
}

/// Believes `header` for the client's address from a proxy on loopback (CLIENT_IP_HEADER
/// without TRUSTED_PROXIES).
pub(crate) fn behind_loopback_proxy(s: &mut Settings, header: ClientIpSource) {
    s.client_ip = header;
    s.trusted_proxies = nets(LOOPBACK_RANGES);
}

/// `count` per `period`, for the rate settings.
pub(crate) fn rate(count: u32, period: Duration) -> Rate {
    Rate { count, period }
}

pub(crate) fn minutes(n: u64) -> Duration {
    Duration::from_secs(60 * n)
}

pub(crate) fn hours(n: u64) -> Duration {
    Duration::from_secs(3600 * n)
}

/// The dashboard behind a password (ADMIN_PASSWORD).
pub(crate) fn admin_password(password: &str) -> AdminSettings {
    AdminSettings::Password(PasswordCheck::Plain(password.into()))
}

/// The dashboard behind an argon2 hash (ADMIN_PASSWORD_HASH).
pub(crate) fn admin_password_hash(hash: &str) -> AdminSettings {
    AdminSettings::Password(PasswordCheck::Argon2(hash.to_owned()))
}

/// The Open WebUI settings of a test server (it has them unless `with_upstream` is off).
pub(crate) fn open_webui(s: &mut Settings) -> &mut OpenWebUi {
    match &mut s.upstream {
        UpstreamSettings::OpenWebUi(o) => o,
        UpstreamSettings::Demo => panic!("this test server has no Open WebUI"),
    }
}

/// Points the server at another Open WebUI (OPEN_WEBUI_URL), keeping the key.
pub(crate) fn open_webui_at(s: &mut Settings, base: &str) {
    open_webui(s).completions_url = format!("{base}/api/chat/completions");
}

/// Networks, as TRUSTED_PROXIES lists them.
pub(crate) fn nets(list: &[&str]) -> Vec<IpNet> {
    list.iter().map(|n| n.parse().expect("a CIDR")).collect()
}

/// Classes as ACCESS_CODE gives them (one per comma-separated code), with this title,
/// system prompt and starters.
pub(crate) fn code_classes(
    s: &Settings,
    codes: &str,
    title: &str,
    system_prompt: Option<&str>,
    starters: &[&str],
) -> ClassList {
    ClassList::from_codes(
        codes,
        title,
        system_prompt.map(str::to_owned),
        None,
        starters.iter().map(|t| t.to_string()).collect(),
        &s.class_defaults(),
    )
    .expect("valid codes")
}

/// Classes as ACCESS_CODE gives them, titled as by default.
pub(crate) fn access_codes(s: &Settings, codes: &str) -> ClassList {
    code_classes(s, codes, "Class assistant", None, &[])
}

/// A classes file (CLASSES_FILE) holding `toml`.
pub(crate) fn classes_file(toml: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(toml.as_bytes()).unwrap();
    f
}

/// The classes a classes file holding `toml` gives, as CLASSES_FILE reads them.
pub(crate) fn toml_classes(s: &Settings, toml: &str) -> ClassList {
    let f = classes_file(toml);
    ClassList::from_file(f.path(), &s.class_defaults()).expect("a valid classes file")
}

/// Which backend the suite runs on: `CLASSCHAT_TEST_DB=postgres` (a throwaway cluster per
/// test-binary run, a fresh database per test) or `sqlite` (the default: a file per test).
pub(crate) fn on_postgres() -> bool {
    static PG: OnceLock<bool> = OnceLock::new();
    *PG.get_or_init(|| match std::env::var("CLASSCHAT_TEST_DB").as_deref() {
        Ok("postgres") => true,
        Ok("sqlite") | Ok("") | Err(_) => false,
        Ok(other) => panic!("CLASSCHAT_TEST_DB={other:?}: use sqlite or postgres"),
    })
}

/// The `--database-url` for a test whose state lives in `dir`: the SQLite file in it, or on
/// PostgreSQL a database made for that dir on first use (its URL kept in the dir, so a
/// restart with `Opts::dir` finds the same database).
async fn database_for(dir: &std::path::Path, sqlite_file: &std::path::Path) -> String {
    if !on_postgres() {
        return sqlite_file.display().to_string();
    }
    let kept = dir.join("postgres-url");
    if let Ok(url) = std::fs::read_to_string(&kept) {
        return url;
    }
    let url = crate::pg_cluster::shared().create_database().await;
    std::fs::write(&kept, &url).unwrap();
    url
}

impl TestApp {
    pub(crate) fn dir(&self) -> Arc<tempfile::TempDir> {
        self._dir.clone()
    }

    /// The log lines this test wrote since this server started: this server's own, as long
    /// as the test stopped its earlier servers first and runs no other at the same time
    /// (lines from `spawn_blocking` threads and from multi-threaded tests' workers are only
    /// in [`captured_logs`]).
    pub(crate) fn logs(&self) -> String {
        String::from_utf8_lossy(&self.log.lock().unwrap()[self.log_from..]).into_owned()
    }

    /// Sends the shutdown signal and waits for the drain to finish.
    pub(crate) async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(s) = self.server.take() {
            s.await.unwrap().unwrap();
        }
    }

    /// The text of a page fetched with a (dashboard) cookie.
    pub(crate) async fn page_as(&self, path: &str, cookie: &str) -> String {
        self.client
            .get(format!("{}{path}", self.address))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// `GET` of a path on the app.
    pub(crate) async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .unwrap()
    }

    pub(crate) async fn post_session(&self, body: Value) -> reqwest::Response {
        self.client
            .post(format!("{}/api/v1/session", self.address))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// Signs in with the default code and returns the token.
    pub(crate) async fn sign_in(&self) -> SessionResponse {
        let r = self
            .post_session(json!({"access_code": CODE, "display_name": "Mei"}))
            .await;
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    pub(crate) async fn post_chat(&self, token: &str, body: Value) -> reqwest::Response {
        self.client
            .post(format!("{}/api/v1/chat", self.address))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub(crate) async fn refresh(&self, token: &str) -> reqwest::Response {
        self.client
            .post(format!("{}/api/v1/session/refresh", self.address))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub(crate) async fn logout(&self, token: &str) -> reqwest::Response {
        self.client
            .delete(format!("{}/api/v1/session", self.address))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// A message sent with `token` is refused: 401 with `code`.
    pub(crate) async fn chat_refused(&self, token: &str, code: ErrorCode) -> ApiError {
        let r = self.post_chat(token, chat_body("hi", false)).await;
        expect_error(r, 401, code).await
    }

    /// Signing in with `access_code` is refused: 401 with `code`.
    pub(crate) async fn sign_in_refused(&self, access_code: &str, code: ErrorCode) -> ApiError {
        let r = self
            .post_session(json!({ "access_code": access_code }))
            .await;
        expect_error(r, 401, code).await
    }

    /// Waits until the usage log holds `n` rows (it is written in batches, off the request path).
    pub(crate) async fn usage_rows(&self, n: usize) -> Vec<classchat_server::store::UsageRecord> {
        for _ in 0..100 {
            let rows = usage_log(&self.state.store).await;
            if rows.len() >= n {
                return rows;
            }
            tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        }
        panic!("usage log never reached {n} rows");
    }
}

/// The whole usage log, oldest first, read the way the dashboard's export reads it.
pub(crate) async fn usage_log(
    store: &classchat_server::store::Store,
) -> Vec<classchat_server::store::UsageRecord> {
    store
        .export_page(0, i64::MAX, None, 0, i64::MAX)
        .await
        .unwrap()
}

/// How long a test waits for something that should happen at once: generous, since two
/// cores may be busy with a build; a test that passes never waits this long.
pub(crate) const PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

/// Polls `cond` until it holds; panics naming `what` after [`PATIENCE`].
pub(crate) async fn wait_for<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !cond().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {PATIENCE:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A client whose connections come from `127.0.0.<n>`: a distinct client to the server's
/// per-address limits, with no header to trust. Redirects are not followed.
pub(crate) fn client_from(n: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, n]))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap()
}

pub(crate) fn chat_body(text: &str, stream: bool) -> Value {
    json!({"conversation_id": "conv-1", "messages": [{"role": "user", "content": text}], "stream": stream})
}

/// Reads a response's error body and checks its code and status.
pub(crate) async fn expect_error(r: reqwest::Response, status: u16, code: ErrorCode) -> ApiError {
    assert_eq!(r.status().as_u16(), status, "status");
    let body: ApiError = r
        .json()
        .await
        .expect("an error body in the contract's shape");
    assert_eq!(
        body.error.code, code,
        "code; message: {}",
        body.error.message
    );
    body
}

/// Every SSE event of a streamed reply, in order.
pub(crate) async fn read_events(r: reqwest::Response) -> Vec<ChatEvent> {
    use eventsource_stream::Eventsource;
    assert_eq!(r.status(), 200);
    let mut out = Vec::new();
    let mut s = r.bytes_stream().eventsource();
    while let Some(ev) = s.next().await {
        let ev = ev.expect("valid SSE");
        out.push(ChatEvent::parse(&ev.event, &ev.data).expect("a known event"));
    }
    out
}

pub(crate) fn reply_text(events: &[ChatEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            ChatEvent::Delta { text } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}
