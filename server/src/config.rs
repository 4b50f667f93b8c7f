//! Configuration from flags, the environment and a `.env` file, checked once at start-up.
//!
//! [`Config`] is what clap reads (every field also an environment variable, so `--help`
//! documents both); [`Settings`] is the checked result the server runs on. Every check
//! fails with one [`ConfigError`] line naming the variable, and never prints a secret.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use ipnet::IpNet;
use secrecy::{ExposeSecret, SecretString};

use crate::basics::parse_duration;
use classes_file::{ClassDefaults, ClassList, ClassesError};

/// The classes from ACCESS_CODE or CLASSES_FILE, and their codes' digests.
pub mod access_windows;
pub mod classes_file;
/// The safety model, help resources and where alerts go.
pub mod safety;

/// The server's settings as flags and environment variables (`classchat --help` lists
/// them, see [`crate::cli::Cli`]).
#[derive(Debug, Clone, Parser)]
#[command(name = "classchat")]
pub struct Config {
    /// Demo mode: a throw-away signing secret, the access code `demo-code`, and, when no
    /// OPEN_WEBUI_URL is set, a built-in responder. Never use for a real class.
    #[arg(long, env = "DEMO", default_value_t = false)]
    pub demo: bool,

    /// Address and port to listen on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8080")]
    pub listen_addr: String,

    /// Most connections open at once; beyond it a client is answered 503 with Retry-After and
    /// the connection closed. Each open stream also holds a connection to Open WebUI, so
    /// keep `ulimit -n` above twice this figure.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 16384)]
    pub max_connections: u32,

    /// How connections are served: `shared` (one multi-threaded runtime, the default) or
    /// `per-core` (one single-threaded runtime per core, each accepting on its own
    /// SO_REUSEPORT listener; see docs/performance.md for what it changes).
    #[arg(long, env = "RUNTIME", default_value = "shared")]
    pub runtime: String,

    /// Time a client has to send a request's header; also how long an idle keep-alive
    /// connection stays open.
    #[arg(long, env = "REQUEST_HEADER_TIMEOUT", default_value = "30s")]
    pub request_header_timeout: String,

    /// Time a client has to send a whole request body, counted from its header; a body
    /// still arriving then is answered 408.
    #[arg(long, env = "REQUEST_BODY_TIMEOUT", default_value = "30s")]
    pub request_body_timeout: String,

    /// The URL students' browsers reach this server at (shown in the embed snippet).
    /// Default: http://LISTEN_ADDR.
    #[arg(long, env = "PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Origins (scheme://host[:port], comma-separated) whose pages may embed the widget
    /// (CORS for the script tag; frame-ancestors for the /embed iframe).
    /// Default: any origin, with a warning at start-up.
    #[arg(long, env = "ALLOWED_ORIGINS")]
    pub allowed_origins: Option<String>,

    /// Where usage and revocations are stored: a SQLite file (sqlite://path, created on
    /// first start) or PostgreSQL (postgres://user:password@host:5432/db, for replicas;
    /// TLS per `sslmode` in the URL, e.g. ?sslmode=verify-full).
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://classchat.db")]
    pub database_url: String,

    /// With PostgreSQL: how often each replica reads revocations and class settings again,
    /// healing any change notification it missed (changes normally arrive at once).
    #[arg(long, env = "RESYNC_INTERVAL", default_value = "30s")]
    pub resync_interval: String,

    /// With PostgreSQL: how long a replica holds a slice of a message budget (a lease)
    /// before the database takes back what it did not return; a replica that dies gives its
    /// unspent slices back within this time.
    #[arg(long, env = "BUDGET_LEASE", default_value = "2s")]
    pub budget_lease: String,

    /// Secret that signs widget tokens: at least 32 characters (`openssl rand -base64 48`).
    #[arg(long, env = "AUTH_SECRET", hide_env_values = true)]
    pub auth_secret: Option<SecretString>,

    /// The previous AUTH_SECRET, still accepted for verifying tokens while you rotate.
    #[arg(long, env = "AUTH_SECRET_PREVIOUS", hide_env_values = true)]
    pub auth_secret_previous: Option<SecretString>,

    /// Class access code(s), comma-separated: one class per code (alias: CODE).
    #[arg(long, env = "ACCESS_CODE", hide_env_values = true)]
    pub access_code: Option<SecretString>,

    /// A TOML file of classes (id, title, codes, model, system_prompt, greeting, limits).
    /// Use instead of ACCESS_CODE.
    #[arg(long, env = "CLASSES_FILE")]
    pub classes_file: Option<PathBuf>,

    /// Title shown in the widget for classes from ACCESS_CODE.
    #[arg(long, env = "CLASS_TITLE", default_value = "Class assistant")]
    pub class_title: String,

    /// System prompt for classes from ACCESS_CODE.
    #[arg(long, env = "SYSTEM_PROMPT")]
    pub system_prompt: Option<String>,

    /// First assistant line for classes from ACCESS_CODE.
    #[arg(long, env = "GREETING")]
    pub greeting: Option<String>,

    /// Suggested first messages for classes from ACCESS_CODE, separated by `|` (at most 4,
    /// each up to 200 characters), shown on an empty chat. Default: none.
    #[arg(long, env = "STARTERS")]
    pub starters: Option<String>,

    /// How long a widget token lives before the widget refreshes it.
    #[arg(long, env = "TOKEN_TTL", default_value = "60m")]
    pub token_ttl: String,

    /// How long a sign-in lasts at most, refreshes included.
    #[arg(long, env = "SESSION_MAX_AGE", default_value = "12h")]
    pub session_max_age: String,

    /// Open WebUI's base URL (e.g. https://chat.example.edu), reached through HTTPS_PROXY or
    /// HTTP_PROXY when one is set and NO_PROXY does not name its host. Unset: demo responder.
    #[arg(long, env = "OPEN_WEBUI_URL")]
    pub open_webui_url: Option<String>,

    /// Outbound proxy for https:// calls (Open WebUI, Cloudflare Access keys), e.g.
    /// http://proxy.school.example:3128 or http://user:pass@proxy:3128; CONNECT tunnel.
    /// https_proxy is read when this is unset. Default: none.
    #[arg(long, env = "HTTPS_PROXY", hide_env_values = true)]
    pub https_proxy: Option<SecretString>,

    /// Outbound proxy for http:// calls (requests in absolute form). http_proxy is read when
    /// this is unset. Default: none.
    #[arg(long, env = "HTTP_PROXY", hide_env_values = true)]
    pub http_proxy: Option<SecretString>,

    /// Hosts reached without the proxy: comma list of names (example.org also matches its
    /// subdomains, as does .example.org), IP addresses, CIDRs (10.0.0.0/8), or * for all.
    /// no_proxy is read when this is unset. Default: none.
    #[arg(long, env = "NO_PROXY")]
    pub no_proxy: Option<String>,

    /// Lower-case https_proxy (curl's spelling), used when HTTPS_PROXY is unset.
    #[arg(long, env = "https_proxy", hide = true, hide_env_values = true)]
    pub https_proxy_lower: Option<SecretString>,

    /// Lower-case http_proxy, used when HTTP_PROXY is unset.
    #[arg(long, env = "http_proxy", hide = true, hide_env_values = true)]
    pub http_proxy_lower: Option<SecretString>,

    /// Lower-case no_proxy, used when NO_PROXY is unset.
    #[arg(long, env = "no_proxy", hide = true)]
    pub no_proxy_lower: Option<String>,

    /// Open WebUI API key (Settings > Account > API keys). Never sent to a browser.
    #[arg(long, env = "OPEN_WEBUI_API_KEY", hide_env_values = true)]
    pub open_webui_api_key: Option<SecretString>,

    /// Model id in Open WebUI for classes that do not name their own.
    #[arg(long, env = "OPEN_WEBUI_MODEL")]
    pub open_webui_model: Option<String>,

    /// Cloudflare Access service token id (`<hex>.access`), when Open WebUI is behind Access.
    #[arg(long, env = "CF_ACCESS_CLIENT_ID", hide_env_values = true)]
    pub cf_access_client_id: Option<SecretString>,

    /// Cloudflare Access service token secret (set together with CF_ACCESS_CLIENT_ID).
    #[arg(long, env = "CF_ACCESS_CLIENT_SECRET", hide_env_values = true)]
    pub cf_access_client_secret: Option<SecretString>,

    /// IANA time zone for the date and time the assistant is told (e.g. Asia/Taipei).
    #[arg(long, env = "TIMEZONE", default_value = "UTC")]
    pub timezone: String,

    /// Header that carries the client address behind a proxy: cf-connecting-ip,
    /// x-forwarded-for or x-real-ip, believed only from TRUSTED_PROXIES. Unset: the socket
    /// address (headers are not trusted).
    #[arg(long, env = "CLIENT_IP_HEADER")]
    pub client_ip_header: Option<String>,

    /// Proxies whose CLIENT_IP_HEADER is believed: CIDRs or addresses, comma-separated;
    /// `cloudflare` stands for Cloudflare's published ranges, `loopback` for 127.0.0.0/8 and
    /// ::1. A header from any other peer is ignored. Default with CLIENT_IP_HEADER: loopback.
    #[arg(long, env = "TRUSTED_PROXIES")]
    pub trusted_proxies: Option<String>,

    /// Wrong access codes allowed per client address (an IPv6 client per /64), as
    /// COUNT/PERIOD: the burst a classroom behind one address may mistype.
    #[arg(long, env = "LOGIN_FAILURES_PER_ADDRESS", default_value = "15/15m")]
    pub login_failures_per_address: String,

    /// Wrong access codes allowed per client address per day, on top of the above; each
    /// successful sign-in from the address gives one back. 0: no daily limit.
    #[arg(
        long,
        env = "LOGIN_FAILURES_PER_ADDRESS_PER_DAY",
        default_value_t = 100
    )]
    pub login_failures_per_address_per_day: u32,

    /// Wrong access codes allowed per IPv6 /56, on top of the per-/64 limit, as COUNT/PERIOD:
    /// one person can hold a whole routed prefix (256 /64s in a /56).
    #[arg(long, env = "LOGIN_FAILURES_PER_IPV6_56", default_value = "30/15m")]
    pub login_failures_per_ipv6_56: String,

    /// Wrong access codes allowed per IPv6 /48 (65,536 /64s; a free tunnel broker hands one
    /// out), as COUNT/PERIOD. A school whose classrooms sit in many /64s of one /48 shares it.
    #[arg(long, env = "LOGIN_FAILURES_PER_IPV6_48", default_value = "60/15m")]
    pub login_failures_per_ipv6_48: String,

    /// Successful sign-ins allowed per client address, as COUNT/PERIOD (a school behind one
    /// NAT address signs in together, so the burst is large).
    #[arg(long, env = "SIGN_INS_PER_ADDRESS", default_value = "300/5m")]
    pub sign_ins_per_address: String,

    /// Chat messages a student may send per minute (classes may override). 0: no limit.
    #[arg(long, env = "MESSAGES_PER_MINUTE", default_value_t = 10)]
    pub messages_per_minute: u32,

    /// Chat messages a whole class may send per minute, however many sessions it has
    /// (sized for a class of 40; classes may override). 0: no limit.
    #[arg(long, env = "CLASS_MESSAGES_PER_MINUTE", default_value_t = 60)]
    pub class_messages_per_minute: u32,

    /// Chat messages a class may send per day in TIMEZONE (classes may override). 0: no limit.
    #[arg(long, env = "DAILY_MESSAGE_QUOTA", default_value_t = 0)]
    pub daily_message_quota: u32,

    /// Days a stored conversation (visibility `flagged` or `full`) is kept (classes may
    /// override). 0: kept until erased.
    #[arg(long, env = "KEEP_CONVERSATIONS_DAYS", default_value_t = 30)]
    pub keep_conversations_days: u32,

    /// Days a usage row (who sent a message, when, tokens) is kept (classes may override); the
    /// hourly class totals stay. 0: kept until erased.
    #[arg(long, env = "KEEP_USAGE_DAYS", default_value_t = 365)]
    pub keep_usage_days: u32,

    /// Days a sign-in (its session and the name typed) is kept after it was last used
    /// (classes may override). 0: kept until erased.
    #[arg(long, env = "KEEP_SESSIONS_DAYS", default_value_t = 365)]
    pub keep_sessions_days: u32,

    /// Time allowed to connect to Open WebUI.
    #[arg(long, env = "UPSTREAM_CONNECT_TIMEOUT", default_value = "10s")]
    pub upstream_connect_timeout: String,

    /// Time allowed for Open WebUI to start answering.
    #[arg(long, env = "UPSTREAM_FIRST_BYTE_TIMEOUT", default_value = "120s")]
    pub upstream_first_byte_timeout: String,

    /// Longest silence allowed between two chunks of a streamed reply.
    #[arg(long, env = "UPSTREAM_IDLE_TIMEOUT", default_value = "60s")]
    pub upstream_idle_timeout: String,

    /// Longest a reply may run once Open WebUI starts sending it (streamed or not); a
    /// stream still going then ends with an error event.
    #[arg(long, env = "STREAM_MAX_DURATION", default_value = "10m")]
    pub stream_max_duration: String,

    /// On SIGTERM/ctrl-c, how long open replies may finish before they are cut.
    #[arg(long, env = "SHUTDOWN_GRACE", default_value = "20s")]
    pub shutdown_grace: String,

    /// Password for the teacher dashboard at /admin (at least 12 characters).
    #[arg(long, env = "ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<SecretString>,

    /// The dashboard password as an argon2 hash instead (make one with --hash-password).
    #[arg(long, env = "ADMIN_PASSWORD_HASH", hide_env_values = true)]
    pub admin_password_hash: Option<String>,

    /// Wrong dashboard passwords allowed per account from browsers that have not signed in
    /// to it before (on top of LOGIN_FAILURES_PER_ADDRESS), as COUNT/PERIOD; beyond it such
    /// browsers wait, while one that signed in before keeps its own budget. Counted in the
    /// database, so the limit holds across replicas.
    #[arg(long, env = "ADMIN_LOGIN_FAILURES", default_value = "20/60m")]
    pub admin_login_failures: String,

    /// Cloudflare Access team domain (e.g. myschool.cloudflareaccess.com): the dashboard
    /// then trusts Access's signed Cf-Access-Jwt-Assertion header instead of a password.
    #[arg(long, env = "CF_ACCESS_TEAM_DOMAIN")]
    pub cf_access_team_domain: Option<String>,

    /// The Access application's AUD tag (64 hex characters).
    #[arg(long, env = "CF_ACCESS_AUD")]
    pub cf_access_aud: Option<String>,

    /// Emails (comma-separated) allowed into the dashboard through Cloudflare Access.
    #[arg(long, env = "ADMIN_EMAILS")]
    pub admin_emails: Option<String>,

    /// Where Access's signing keys are fetched (default: https://TEAM_DOMAIN/cdn-cgi/access/certs).
    #[arg(long, env = "CF_ACCESS_CERTS_URL", hide = true)]
    pub cf_access_certs_url: Option<String>,

    /// Read a password from standard input, print its ADMIN_PASSWORD_HASH, and exit.
    #[arg(long)]
    pub hash_password: bool,

    /// Log format: text or json.
    #[arg(long, env = "LOG_FORMAT", default_value = "text")]
    pub log_format: String,

    #[command(flatten)]
    pub safety: safety::SafetyConfig,
}

/// One bad setting: the variable's name and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {problem}")]
pub struct ConfigError {
    pub var: &'static str,
    pub problem: String,
}

fn bad(var: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        problem: problem.into(),
    }
}

/// Which header, if any, names the real client behind a proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientIpSource {
    Socket,
    CfConnectingIp,
    XForwardedFor,
    XRealIp,
}

/// Cloudflare's published proxy ranges (https://www.cloudflare.com/ips/), as of 2026-11-30,
/// written down from memory without fetching the list: check it against the page when
/// deploying behind Cloudflare's proxy, and list the ranges yourself if they have changed.
pub const CLOUDFLARE_RANGES: &[&str] = &[
    "173.245.48.0/20",
    "103.21.244.0/22",
    "103.22.200.0/22",
    "103.31.4.0/22",
    "141.101.64.0/18",
    "108.162.192.0/18",
    "190.93.240.0/20",
    "188.114.96.0/20",
    "197.234.240.0/22",
    "198.41.128.0/17",
    "162.158.0.0/15",
    "104.16.0.0/13",
    "104.24.0.0/14",
    "172.64.0.0/13",
    "131.0.72.0/22",
    "2400:cb00::/32",
    "2606:4700::/32",
    "2803:f800::/32",
    "2405:b500::/32",
    "2405:8100::/32",
    "2a06:98c0::/29",
    "2c0f:f248::/32",
];

/// What TRUSTED_PROXIES is when CLIENT_IP_HEADER is set alone: a proxy on the same host
/// (nginx, cloudflared), the common case, and never a remote client.
pub const LOOPBACK_RANGES: &[&str] = &["127.0.0.0/8", "::1/128"];

/// Parses TRUSTED_PROXIES: CIDRs or single addresses, comma-separated; `cloudflare` stands for
/// [`CLOUDFLARE_RANGES`] and `loopback` for [`LOOPBACK_RANGES`]. The error names the bad entry.
pub fn parse_trusted_proxies(list: &str) -> Result<Vec<IpNet>, String> {
    let mut out = Vec::new();
    for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        match item.to_ascii_lowercase().as_str() {
            "cloudflare" => out.extend(CLOUDFLARE_RANGES.iter().map(|r| net(r))),
            "loopback" => out.extend(LOOPBACK_RANGES.iter().map(|r| net(r))),
            _ => out.push(
                item.parse::<IpNet>()
                    .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        format!(
                            "{item:?} is not a CIDR (e.g. 10.0.0.0/8), an address, `cloudflare` or `loopback`"
                        )
                    })?
                    .trunc(),
            ),
        }
    }
    if out.is_empty() {
        return Err("lists no proxy".into());
    }
    Ok(out)
}

fn net(s: &str) -> IpNet {
    s.parse().expect("the built-in ranges are valid CIDRs")
}

/// "COUNT per PERIOD".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub period: Duration,
}

/// One event per `interval`, bursts up to `period / interval` events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gcra {
    pub interval: Duration,
    pub period: Duration,
}

impl Gcra {
    pub fn new(rate: Rate) -> Self {
        Self {
            interval: rate.period / rate.count,
            period: rate.period,
        }
    }

    /// `count` events per minute.
    pub fn per_minute(count: u32) -> Self {
        Self::new(Rate {
            count,
            period: Duration::from_secs(60),
        })
    }
}

/// Where replies come from.
#[derive(Debug, Clone)]
pub enum UpstreamSettings {
    /// The built-in demo responder (no OPEN_WEBUI_URL).
    Demo,
    OpenWebUi(OpenWebUi),
}

/// Everything needed to call Open WebUI.
#[derive(Debug, Clone)]
pub struct OpenWebUi {
    /// `{OPEN_WEBUI_URL}/api/chat/completions`
    pub completions_url: String,
    pub api_key: Option<SecretString>,
    pub cf_access: Option<(SecretString, SecretString)>,
}

/// HTTPS_PROXY, HTTP_PROXY and NO_PROXY, checked. `Debug` shows no proxy URL (they may
/// carry credentials).
#[derive(Debug, Clone, Default)]
pub struct OutboundProxy {
    pub https: Option<SecretString>,
    pub http: Option<SecretString>,
    pub no_proxy: String,
}

impl OutboundProxy {
    /// The proxy to use for `url`, if any: reqwest's and curl's rules, from these settings
    /// only (never from the process environment at request time).
    pub fn intercept(&self, url: &str) -> Option<hyper_util::client::proxy::matcher::Intercept> {
        let uri: axum::http::Uri = url.parse().ok()?;
        let mut m =
            hyper_util::client::proxy::matcher::Matcher::builder().no(self.no_proxy.as_str());
        if let Some(p) = &self.https {
            m = m.https(p.expose_secret());
        }
        if let Some(p) = &self.http {
            m = m.http(p.expose_secret());
        }
        m.build().intercept(&uri)
    }

    /// The same rules for a reqwest client (the Cloudflare Access key fetch).
    pub fn apply(&self, b: reqwest::ClientBuilder) -> reqwest::Result<reqwest::ClientBuilder> {
        let mut b = b.no_proxy();
        let no = || reqwest::NoProxy::from_string(&self.no_proxy);
        if let Some(p) = &self.https {
            b = b.proxy(reqwest::Proxy::https(p.expose_secret())?.no_proxy(no()));
        }
        if let Some(p) = &self.http {
            b = b.proxy(reqwest::Proxy::http(p.expose_secret())?.no_proxy(no()));
        }
        Ok(b)
    }
}

/// A proxy URL: `http://[user:password@]host[:port]`. Errors never show the credentials.
fn proxy_url(var: &'static str, value: &SecretString) -> Result<Option<SecretString>, ConfigError> {
    let v = value.expose_secret().trim();
    if v.is_empty() {
        return Ok(None);
    }
    // `proxy:3128` means http://proxy:3128, as in curl and reqwest.
    let v = &if v.contains("://") {
        v.to_owned()
    } else {
        format!("http://{v}")
    };
    let shown = crate::basics::redact_url(v);
    let url = url::Url::parse(v).map_err(|_| {
        bad(
            var,
            format!("{shown:?} is not a URL (use e.g. http://proxy.example:3128)"),
        )
    })?;
    if url.scheme() != "http" {
        return Err(bad(
            var,
            format!(
                "{shown:?}: only http:// proxies are supported (the tunnel to https sites is still encrypted end to end)"
            ),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) || !matches!(url.path(), "" | "/") {
        return Err(bad(var, format!("{shown:?} must be http://host[:port]")));
    }
    Ok(Some(SecretString::from(v.to_owned())))
}

/// How the dashboard knows its teacher.
#[derive(Debug, Clone)]
pub enum AdminSettings {
    /// No admin configured: /admin explains how to turn it on.
    Off,
    Password(PasswordCheck),
    CfAccess {
        team_domain: String,
        aud: String,
        certs_url: String,
        emails: Vec<String>,
    },
}

/// The dashboard password, plain or as an argon2 PHC string.
#[derive(Debug, Clone)]
pub enum PasswordCheck {
    Plain(SecretString),
    Argon2(String),
}

/// Upstream time limits.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub first_byte: Duration,
    pub idle: Duration,
    /// STREAM_MAX_DURATION: a whole reply, from its first byte.
    pub reply_max: Duration,
}

/// `RUNTIME`: how the server's tasks are spread over threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RuntimeShape {
    /// One multi-threaded tokio runtime: any worker may serve any connection.
    #[default]
    Shared,
    /// One current-thread runtime per core, each accepting on its own `SO_REUSEPORT`
    /// listener, so a connection's reads, writes and wake-ups stay on one thread. The state
    /// (database pool, budgets, caches) is still one per process, and so are the background
    /// tasks, which run on the first runtime.
    PerCore,
}

impl RuntimeShape {
    /// `RUNTIME`'s value; main reads it before the rest of the settings, to pick the runtime
    /// the server is built on.
    pub fn parse(value: &str) -> Result<Self, ConfigError> {
        match value.trim() {
            "" | "shared" => Ok(Self::Shared),
            "per-core" => Ok(Self::PerCore),
            other => Err(bad(
                "RUNTIME",
                format!("{other:?} is not shared or per-core"),
            )),
        }
    }
}

/// The checked configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub demo: bool,
    pub listen_addr: SocketAddr,
    pub max_connections: usize,
    pub runtime: RuntimeShape,
    pub request_header_timeout: Duration,
    pub request_body_timeout: Duration,
    /// PUBLIC_URL; `None`: derived from the bound address at start-up.
    pub public_url: Option<String>,
    /// `None`: any origin.
    pub allowed_origins: Option<Vec<String>>,
    pub database_url: String,
    pub resync_interval: Duration,
    /// BUDGET_LEASE (see [`crate::limits`]).
    pub budget_lease: Duration,
    pub auth_secret: SecretString,
    pub auth_secret_previous: Option<SecretString>,
    pub classes: ClassList,
    pub token_ttl: Duration,
    pub session_max_age: Duration,
    pub upstream: UpstreamSettings,
    /// HTTPS_PROXY, HTTP_PROXY, NO_PROXY (or their lower-case spellings).
    pub proxy: OutboundProxy,
    pub default_model: Option<String>,
    pub timezone: jiff::tz::TimeZone,
    pub timezone_name: String,
    pub client_ip: ClientIpSource,
    /// Peers whose client-address header is believed (empty with [`ClientIpSource::Socket`]).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub login_failures_per_address: Rate,
    /// 0: no daily limit.
    pub login_failures_per_address_per_day: u32,
    /// Wrong codes per IPv6 /56 and per /48, on top of the per-/64 budget.
    pub login_failures_per_ipv6_56: Rate,
    pub login_failures_per_ipv6_48: Rate,
    pub sign_ins_per_address: Rate,
    /// Wrong dashboard passwords per account from unknown browsers (ADMIN_LOGIN_FAILURES).
    pub admin_login_failures: Rate,
    pub messages_per_minute: u32,
    pub class_messages_per_minute: u32,
    pub daily_message_quota: u32,
    /// How long stored conversations, usage rows and sessions are kept, unless a class says.
    pub retention: classes_file::Retention,
    pub timeouts: Timeouts,
    pub shutdown_grace: Duration,
    pub log_json: bool,
    pub admin: AdminSettings,
    pub safety: safety::SafetySettings,
}

/// The access code demo mode uses.
pub const DEMO_ACCESS_CODE: &str = "demo-code";

fn duration(var: &'static str, value: &str, min: Duration) -> Result<Duration, ConfigError> {
    let d = parse_duration(value).ok_or_else(|| {
        bad(
            var,
            format!("{value:?} is not a duration (use e.g. 90s, 60m, 12h, 7d)"),
        )
    })?;
    if d < min {
        return Err(bad(var, format!("must be at least {}s", min.as_secs())));
    }
    Ok(d)
}

fn rate(var: &'static str, value: &str) -> Result<Rate, ConfigError> {
    let err = || bad(var, format!("{value:?} is not COUNT/PERIOD (e.g. 10/15m)"));
    let (count, period) = value.split_once('/').ok_or_else(err)?;
    let count: u32 = count.trim().parse().map_err(|_| err())?;
    let period = parse_duration(period).ok_or_else(err)?;
    if count == 0 || period.is_zero() {
        return Err(bad(var, "COUNT and PERIOD must be above zero"));
    }
    Ok(Rate { count, period })
}

fn http_url(var: &'static str, value: &str) -> Result<String, ConfigError> {
    let v = value.trim().trim_end_matches('/');
    // A URL may carry `user:password@`: an error shows it without.
    let shown = crate::basics::redact_url(v);
    let rest = v
        .strip_prefix("http://")
        .or_else(|| v.strip_prefix("https://"))
        .ok_or_else(|| {
            bad(
                var,
                format!("{shown:?} must start with http:// or https://"),
            )
        })?;
    if rest.is_empty() || rest.contains(char::is_whitespace) {
        return Err(bad(var, format!("{shown:?} is not a URL")));
    }
    Ok(v.to_owned())
}

fn present(s: &Option<SecretString>) -> Option<&SecretString> {
    s.as_ref().filter(|s| !s.expose_secret().trim().is_empty())
}

impl Config {
    /// HTTPS_PROXY, HTTP_PROXY and NO_PROXY (or their lower-case spellings), checked: the
    /// server's settings and `classchat init`'s probe read them the same way.
    pub fn outbound_proxy(&self) -> Result<OutboundProxy, ConfigError> {
        let pick = |upper: &Option<SecretString>, lower: &Option<SecretString>| {
            present(upper).or(present(lower)).cloned()
        };
        let https = pick(&self.https_proxy, &self.https_proxy_lower);
        let http = pick(&self.http_proxy, &self.http_proxy_lower);
        Ok(OutboundProxy {
            https: match &https {
                Some(v) => proxy_url("HTTPS_PROXY", v)?,
                None => None,
            },
            http: match &http {
                Some(v) => proxy_url("HTTP_PROXY", v)?,
                None => None,
            },
            no_proxy: self
                .no_proxy
                .clone()
                .or_else(|| self.no_proxy_lower.clone())
                .unwrap_or_default(),
        })
    }

    /// Checks everything; the first problem found is returned.
    pub fn into_settings(self) -> Result<Settings, ConfigError> {
        let listen_addr: SocketAddr = self.listen_addr.trim().parse().map_err(|_| {
            bad(
                "LISTEN_ADDR",
                format!(
                    "{:?} is not an address:port (e.g. 127.0.0.1:8080)",
                    self.listen_addr
                ),
            )
        })?;
        if self.max_connections == 0 {
            return Err(bad("MAX_CONNECTIONS", "must be at least 1"));
        }
        let request_header_timeout = duration(
            "REQUEST_HEADER_TIMEOUT",
            &self.request_header_timeout,
            Duration::from_secs(1),
        )?;
        let request_body_timeout = duration(
            "REQUEST_BODY_TIMEOUT",
            &self.request_body_timeout,
            Duration::from_secs(1),
        )?;
        let public_url = match &self.public_url {
            Some(u) if !u.trim().is_empty() => Some(http_url("PUBLIC_URL", u)?),
            _ => None,
        };
        let allowed_origins = match self.allowed_origins.as_deref().map(str::trim) {
            None | Some("") | Some("*") => None,
            Some(list) => {
                let mut out = Vec::new();
                for o in list.split(',').map(str::trim).filter(|o| !o.is_empty()) {
                    let o = http_url("ALLOWED_ORIGINS", o)?;
                    if o.matches('/').count() > 2 {
                        return Err(bad(
                            "ALLOWED_ORIGINS",
                            format!("{o:?} is not an origin (scheme://host[:port], no path)"),
                        ));
                    }
                    out.push(o);
                }
                Some(out)
            }
        };

        let auth_secret = match (present(&self.auth_secret), self.demo) {
            (Some(s), _) => s.clone(),
            (None, true) => SecretString::from(crate::basics::random_secret()),
            (None, false) => {
                return Err(bad(
                    "AUTH_SECRET",
                    "is not set: give at least 32 random characters (openssl rand -base64 48), or run with --demo",
                ));
            }
        };
        if auth_secret.expose_secret().chars().count() < 32 {
            return Err(bad("AUTH_SECRET", "must be at least 32 characters"));
        }
        let auth_secret_previous = present(&self.auth_secret_previous).cloned();
        if let Some(p) = &auth_secret_previous
            && p.expose_secret().chars().count() < 32
        {
            return Err(bad(
                "AUTH_SECRET_PREVIOUS",
                "must be at least 32 characters",
            ));
        }

        let token_ttl = duration("TOKEN_TTL", &self.token_ttl, Duration::from_secs(60))?;
        let session_max_age = duration(
            "SESSION_MAX_AGE",
            &self.session_max_age,
            Duration::from_secs(60),
        )?;
        if session_max_age < token_ttl {
            return Err(bad("SESSION_MAX_AGE", "must not be shorter than TOKEN_TTL"));
        }

        let access_code = present(&self.access_code).cloned().or_else(|| {
            std::env::var("CODE")
                .ok()
                .filter(|c| !c.trim().is_empty())
                .map(SecretString::from)
        });
        let starters = match self.starters.as_deref().map(str::trim) {
            None | Some("") => Vec::new(),
            Some(list) => {
                let given: Vec<String> = list.split('|').map(str::to_owned).collect();
                classes_file::check_starters(&given).map_err(|p| bad("STARTERS", p))?
            }
        };
        let timezone_name = self.timezone.trim().to_owned();
        let timezone = jiff::tz::TimeZone::get(&timezone_name).map_err(|_| {
            bad(
                "TIMEZONE",
                format!("{timezone_name:?} is not an IANA time zone (e.g. Asia/Taipei)"),
            )
        })?;
        let default_model = self
            .open_webui_model
            .clone()
            .filter(|m| !m.trim().is_empty());
        let class_defaults = ClassDefaults {
            model: default_model.clone(),
            token_ttl,
            messages_per_minute: self.messages_per_minute,
            class_messages_per_minute: self.class_messages_per_minute,
            daily_message_quota: self.daily_message_quota,
            time_zone: timezone.clone(),
        };
        let classes = match (&self.classes_file, access_code, self.demo) {
            (Some(_), Some(_), _) => {
                return Err(bad(
                    "CLASSES_FILE",
                    "set either CLASSES_FILE or ACCESS_CODE, not both",
                ));
            }
            (Some(path), None, _) => {
                ClassList::from_file(path, &class_defaults).map_err(|e| match e {
                    ClassesError::File(p) => bad("CLASSES_FILE", p),
                    ClassesError::Code(p) => bad("CLASSES_FILE", p),
                })?
            }
            (None, Some(codes), _) => ClassList::from_codes(
                codes.expose_secret(),
                &self.class_title,
                self.system_prompt.clone(),
                self.greeting.clone(),
                starters.clone(),
                &class_defaults,
            )
            .map_err(|e| match e {
                ClassesError::File(p) | ClassesError::Code(p) => bad("ACCESS_CODE", p),
            })?,
            (None, None, true) => ClassList::from_codes(
                DEMO_ACCESS_CODE,
                "classchat demo",
                self.system_prompt.clone(),
                Some(self.greeting.clone().unwrap_or_else(|| {
                    "Hi! This is a classchat demo. Ask me anything.".to_owned()
                })),
                starters,
                &class_defaults,
            )
            .map_err(|e| bad("ACCESS_CODE", e.to_string()))?,
            (None, None, false) => {
                return Err(bad(
                    "ACCESS_CODE",
                    "no classes: set ACCESS_CODE (or CODE) or CLASSES_FILE, or run with --demo",
                ));
            }
        };

        let cf_access = match (
            present(&self.cf_access_client_id),
            present(&self.cf_access_client_secret),
        ) {
            (Some(id), Some(secret)) => Some((id.clone(), secret.clone())),
            (None, None) => None,
            (Some(_), None) => {
                return Err(bad(
                    "CF_ACCESS_CLIENT_SECRET",
                    "is not set but CF_ACCESS_CLIENT_ID is: set both or neither",
                ));
            }
            (None, Some(_)) => {
                return Err(bad(
                    "CF_ACCESS_CLIENT_ID",
                    "is not set but CF_ACCESS_CLIENT_SECRET is: set both or neither",
                ));
            }
        };
        let upstream = match self.open_webui_url.as_deref().map(str::trim) {
            None | Some("") => UpstreamSettings::Demo,
            Some(url) => {
                let base = http_url("OPEN_WEBUI_URL", url)?;
                let api_key = present(&self.open_webui_api_key).cloned();
                if api_key.is_none() {
                    return Err(bad(
                        "OPEN_WEBUI_API_KEY",
                        "is not set but OPEN_WEBUI_URL is",
                    ));
                }
                if default_model.is_none() && classes.iter().any(|c| c.model.is_none()) {
                    return Err(bad(
                        "OPEN_WEBUI_MODEL",
                        "is not set and not every class names its own model",
                    ));
                }
                UpstreamSettings::OpenWebUi(OpenWebUi {
                    completions_url: format!("{base}/api/chat/completions"),
                    api_key,
                    cf_access,
                })
            }
        };

        let proxy = self.outbound_proxy()?;

        let client_ip = match self
            .client_ip_header
            .as_deref()
            .map(|h| h.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("") | Some("none") => ClientIpSource::Socket,
            Some("cf-connecting-ip") => ClientIpSource::CfConnectingIp,
            Some("x-forwarded-for") => ClientIpSource::XForwardedFor,
            Some("x-real-ip") => ClientIpSource::XRealIp,
            Some(other) => {
                return Err(bad(
                    "CLIENT_IP_HEADER",
                    format!(
                        "{other:?} is not one of cf-connecting-ip, x-forwarded-for, x-real-ip, none"
                    ),
                ));
            }
        };

        let trusted = self
            .trusted_proxies
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let trusted_proxies = match (client_ip, trusted) {
            (ClientIpSource::Socket, None) => Vec::new(),
            (ClientIpSource::Socket, Some(_)) => {
                return Err(bad(
                    "TRUSTED_PROXIES",
                    "is set but CLIENT_IP_HEADER is not: name the header the proxies set",
                ));
            }
            (_, None) => {
                parse_trusted_proxies("loopback").map_err(|p| bad("TRUSTED_PROXIES", p))?
            }
            (_, Some(list)) => {
                parse_trusted_proxies(list).map_err(|p| bad("TRUSTED_PROXIES", p))?
            }
        };

        let timeouts = Timeouts {
            connect: duration(
                "UPSTREAM_CONNECT_TIMEOUT",
                &self.upstream_connect_timeout,
                Duration::from_secs(1),
            )?,
            first_byte: duration(
                "UPSTREAM_FIRST_BYTE_TIMEOUT",
                &self.upstream_first_byte_timeout,
                Duration::from_secs(1),
            )?,
            idle: duration(
                "UPSTREAM_IDLE_TIMEOUT",
                &self.upstream_idle_timeout,
                Duration::from_secs(1),
            )?,
            reply_max: duration(
                "STREAM_MAX_DURATION",
                &self.stream_max_duration,
                Duration::from_secs(1),
            )?,
        };
        let shutdown_grace = duration("SHUTDOWN_GRACE", &self.shutdown_grace, Duration::ZERO)?;
        let log_json = match self.log_format.trim() {
            "text" => false,
            "json" => true,
            other => return Err(bad("LOG_FORMAT", format!("{other:?} is not text or json"))),
        };

        let runtime = RuntimeShape::parse(&self.runtime)?;
        let admin = self.admin_settings()?;
        let safety = self.safety.into_settings(&timezone_name)?;
        Ok(Settings {
            admin,
            safety,
            demo: self.demo,
            listen_addr,
            max_connections: self.max_connections as usize,
            runtime,
            request_header_timeout,
            request_body_timeout,
            public_url,
            allowed_origins,
            database_url: self.database_url.trim().to_owned(),
            auth_secret,
            auth_secret_previous,
            classes,
            token_ttl,
            session_max_age,
            upstream,
            proxy,
            default_model,
            timezone,
            timezone_name,
            client_ip,
            trusted_proxies,
            login_failures_per_address: rate(
                "LOGIN_FAILURES_PER_ADDRESS",
                &self.login_failures_per_address,
            )?,
            login_failures_per_address_per_day: self.login_failures_per_address_per_day,
            login_failures_per_ipv6_56: rate(
                "LOGIN_FAILURES_PER_IPV6_56",
                &self.login_failures_per_ipv6_56,
            )?,
            login_failures_per_ipv6_48: rate(
                "LOGIN_FAILURES_PER_IPV6_48",
                &self.login_failures_per_ipv6_48,
            )?,
            sign_ins_per_address: rate("SIGN_INS_PER_ADDRESS", &self.sign_ins_per_address)?,
            admin_login_failures: rate("ADMIN_LOGIN_FAILURES", &self.admin_login_failures)?,
            messages_per_minute: self.messages_per_minute,
            class_messages_per_minute: self.class_messages_per_minute,
            daily_message_quota: self.daily_message_quota,
            retention: classes_file::Retention {
                conversations_days: self.keep_conversations_days,
                usage_days: self.keep_usage_days,
                sessions_days: self.keep_sessions_days,
            },
            timeouts,
            shutdown_grace,
            resync_interval: duration(
                "RESYNC_INTERVAL",
                &self.resync_interval,
                Duration::from_secs(1),
            )?,
            budget_lease: duration("BUDGET_LEASE", &self.budget_lease, Duration::from_secs(1))?,
            log_json,
        })
    }
}

impl Config {
    fn admin_settings(&self) -> Result<AdminSettings, ConfigError> {
        let password = present(&self.admin_password).cloned();
        let hash = self
            .admin_password_hash
            .as_deref()
            .map(str::trim)
            .filter(|h| !h.is_empty());
        let team = self
            .cf_access_team_domain
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let check = match (password, hash) {
            (Some(_), Some(_)) => {
                return Err(bad(
                    "ADMIN_PASSWORD_HASH",
                    "set either ADMIN_PASSWORD or ADMIN_PASSWORD_HASH, not both",
                ));
            }
            (Some(p), None) => {
                if p.expose_secret().chars().count() < 12 {
                    return Err(bad("ADMIN_PASSWORD", "must be at least 12 characters"));
                }
                Some(PasswordCheck::Plain(p))
            }
            (None, Some(h)) => {
                if argon2::PasswordHash::new(h).is_err() {
                    return Err(bad(
                        "ADMIN_PASSWORD_HASH",
                        "is not an argon2 hash (make one with: classchat --hash-password)",
                    ));
                }
                Some(PasswordCheck::Argon2(h.to_owned()))
            }
            (None, None) => None,
        };
        match (check, team) {
            (Some(_), Some(_)) => Err(bad(
                "CF_ACCESS_TEAM_DOMAIN",
                "set either a dashboard password or Cloudflare Access for the dashboard, not both",
            )),
            (Some(c), None) => Ok(AdminSettings::Password(c)),
            (None, None) => Ok(AdminSettings::Off),
            (None, Some(team)) => {
                let team = team
                    .trim_start_matches("https://")
                    .trim_end_matches('/')
                    .to_ascii_lowercase();
                if team.is_empty() || team.contains('/') || !team.contains('.') {
                    return Err(bad(
                        "CF_ACCESS_TEAM_DOMAIN",
                        format!("{team:?} is not a domain like myschool.cloudflareaccess.com"),
                    ));
                }
                let aud = self
                    .cf_access_aud
                    .as_deref()
                    .map(str::trim)
                    .unwrap_or("")
                    .to_ascii_lowercase();
                if aud.len() != 64 || !aud.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(bad(
                        "CF_ACCESS_AUD",
                        "must be the application's AUD tag: 64 hex characters",
                    ));
                }
                let emails: Vec<String> = self
                    .admin_emails
                    .as_deref()
                    .unwrap_or("")
                    .split(',')
                    .map(|e| e.trim().to_ascii_lowercase())
                    .filter(|e| !e.is_empty())
                    .collect();
                // Emails are compared after ASCII lower-casing only: Unicode case folding
                // would let a look-alike address (a Kelvin sign for a `k`) match.
                if let Some(e) = emails.iter().find(|e| !e.is_ascii()) {
                    return Err(bad(
                        "ADMIN_EMAILS",
                        format!(
                            "{e:?} has a non-ASCII character: give addresses in plain ASCII (punycode for international domains)"
                        ),
                    ));
                }
                if emails.is_empty() || emails.iter().any(|e| !e.contains('@')) {
                    return Err(bad(
                        "ADMIN_EMAILS",
                        "list the email addresses allowed into the dashboard, comma-separated",
                    ));
                }
                let certs_url = match self
                    .cf_access_certs_url
                    .as_deref()
                    .map(str::trim)
                    .filter(|u| !u.is_empty())
                {
                    Some(u) => http_url("CF_ACCESS_CERTS_URL", u)?,
                    None => format!("https://{team}/cdn-cgi/access/certs"),
                };
                Ok(AdminSettings::CfAccess {
                    team_domain: team,
                    aud,
                    certs_url,
                    emails,
                })
            }
        }
    }
}

impl Settings {
    /// What a class without its own value takes (see [`ClassDefaults`]).
    pub fn class_defaults(&self) -> ClassDefaults {
        ClassDefaults {
            model: self.default_model.clone(),
            token_ttl: self.token_ttl,
            messages_per_minute: self.messages_per_minute,
            class_messages_per_minute: self.class_messages_per_minute,
            daily_message_quota: self.daily_message_quota,
            time_zone: self.timezone.clone(),
        }
    }

    /// Resolves the configured classes again from the global values as they stand now
    /// (see [`ClassDefaults`]). [`Config::into_settings`] resolves them once; whoever
    /// changes a global value afterwards, as tests that configure settings in code do,
    /// still gets classes that follow it, because the server calls this when it starts.
    pub fn resolve_classes(&mut self) {
        let defaults = self.class_defaults();
        self.classes.resolve(&defaults);
    }

    /// Settings for tests and benchmarks: demo classes, an in-memory style SQLite file
    /// the caller picks, port 0.
    pub fn for_tests(args: &[&str]) -> Result<Self, ConfigError> {
        let mut argv = vec!["classchat"];
        argv.extend_from_slice(args);
        Config::try_parse_from(argv)
            .map_err(|e| bad("ARGS", e.to_string()))?
            .into_settings()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_errors_never_show_credentials() {
        for bad_url in [
            "htps://teacher:hunter2-secret@chat.example.edu",
            "https://teacher:hunter2-secret@chat example.edu",
        ] {
            let e = http_url("OPEN_WEBUI_URL", bad_url).unwrap_err().to_string();
            assert!(e.starts_with("OPEN_WEBUI_URL"), "{e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
    }

    #[test]
    fn proxy_settings_are_checked_and_never_show_credentials() {
        let settings = |args: &[&str]| {
            let mut all = vec![
                "--auth-secret",
                "0123456789abcdef0123456789abcdef",
                "--access-code",
                "abcdef-1",
            ];
            all.extend_from_slice(args);
            Settings::for_tests(&all)
        };
        for (flag, var) in [
            ("--https-proxy", "HTTPS_PROXY"),
            ("--http-proxy", "HTTP_PROXY"),
        ] {
            for bad_url in [
                "socks5://u:hunter2-secret@proxy:1080",
                "http://u:hunter2-secret@proxy:3128/some/path",
                "http://u:hunter2-secret@:3128",
            ] {
                let e = settings(&[flag, bad_url]).unwrap_err().to_string();
                assert!(e.starts_with(var), "{e}");
                assert!(!e.contains("hunter2"), "{e}");
            }
        }
        // The lower-case spelling is read when the upper-case one is unset; no scheme is http.
        let s = settings(&[
            "--https-proxy-lower",
            "proxy.school.example:3128",
            "--no-proxy",
            "chat.example.edu",
        ])
        .unwrap();
        assert_eq!(
            s.proxy.https.as_ref().unwrap().expose_secret(),
            "http://proxy.school.example:3128"
        );
        assert!(s.proxy.intercept("https://open.example.org/api").is_some());
        assert!(s.proxy.intercept("https://chat.example.edu/api").is_none());
        assert!(
            s.proxy
                .intercept("https://a.chat.example.edu/api")
                .is_none()
        );
        assert!(
            s.proxy.intercept("http://open.example.org/api").is_none(),
            "no HTTP_PROXY"
        );
        let s = settings(&[
            "--https-proxy",
            "http://upper:3128",
            "--https-proxy-lower",
            "http://lower:3128",
        ])
        .unwrap();
        assert_eq!(
            s.proxy.https.as_ref().unwrap().expose_secret(),
            "http://upper:3128"
        );
        assert!(
            !format!("{:?}", s.proxy).contains("upper:3128"),
            "Debug hides the URL"
        );
        let s = settings(&[]).unwrap();
        assert!(s.proxy.intercept("https://open.example.org/api").is_none());
    }

    #[test]
    fn rates_parse_and_refuse_zero() {
        assert_eq!(
            rate("X", "10/15m").unwrap(),
            Rate {
                count: 10,
                period: Duration::from_secs(900)
            }
        );
        assert!(rate("X", "0/1m").is_err());
        assert!(rate("X", "ten").is_err());
    }

    #[test]
    fn admin_emails_must_be_ascii_and_are_ascii_lower_cased() {
        let cf = |emails: &str| {
            Settings::for_tests(&[
                "--demo",
                "--cf-access-team-domain",
                "myschool.cloudflareaccess.com",
                "--cf-access-aud",
                &"a".repeat(64),
                "--admin-emails",
                emails,
            ])
        };
        match cf(" Kim@School.example ,b@school.example").unwrap().admin {
            AdminSettings::CfAccess { emails, .. } => {
                assert_eq!(emails, ["kim@school.example", "b@school.example"]);
            }
            other => panic!("{other:?}"),
        }
        // A Kelvin sign lower-cases to `k` under Unicode rules; it must not become "kim".
        let err = cf("\u{212A}im@school.example").unwrap_err();
        assert_eq!(err.var, "ADMIN_EMAILS");
        assert!(err.problem.contains("non-ASCII"), "{err}");
        assert_eq!(cf("zoë@school.example").unwrap_err().var, "ADMIN_EMAILS");
    }

    #[test]
    fn admin_login_failures_is_a_rate() {
        let s = Settings::for_tests(&["--demo"]).unwrap();
        assert_eq!(
            s.admin_login_failures,
            Rate {
                count: 20,
                period: Duration::from_secs(3600)
            }
        );
        let err = Settings::for_tests(&["--demo", "--admin-login-failures", "lots"]).unwrap_err();
        assert_eq!(err.var, "ADMIN_LOGIN_FAILURES");
        let err = Settings::for_tests(&["--demo", "--admin-login-failures", "0/1h"]).unwrap_err();
        assert_eq!(err.var, "ADMIN_LOGIN_FAILURES");
    }
}
