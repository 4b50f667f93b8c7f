//! `classchat check`: every check a teacher needs before students arrive, each failure
//! explained in one sentence with its fix. The same checks run in the background at
//! start-up (one log line each) and fill the dashboard's Health panel.
//!
//! Checks run in order and a failure skips the checks that depend on it (no point asking
//! for models when Open WebUI cannot be reached), so the first failure is the one to fix.
//! No sentence ever carries a secret: the checks name variables, never their values.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::header::{self, HeaderMap};
use serde_json::{Value, json};

use crate::basics::error_chain;
use crate::config::{Config, OpenWebUi, OutboundProxy, Settings, UpstreamSettings};
use crate::health::{CheckResult, Outcome};
use crate::relay::upstream::classify_status;

/// How far this machine's clock may be from Open WebUI's before tokens and logs go wrong.
const MAX_SKEW_SECS: i64 = 60;
/// The longest the test completion may take (the configured first-byte limit, capped).
const COMPLETION_LIMIT: Duration = Duration::from_secs(60);

pub const CONFIG: &str = "configuration";
pub const REACHABLE: &str = "Open WebUI reachable";
pub const ACCESS: &str = "Cloudflare Access";
pub const API_KEY: &str = "API key";
pub const MODELS: &str = "class models";
pub const COMPLETION: &str = "test completion";
pub const PUBLIC_URL: &str = "PUBLIC_URL";
pub const CLOCK: &str = "clock";

/// `classchat check`: prints one line per check; exit status 0 only when none failed.
pub async fn command(config: Config) -> std::process::ExitCode {
    let settings = match config.into_settings() {
        Ok(s) => s,
        Err(e) => {
            let r = CheckResult::fail(
                CONFIG,
                format!(
                    "{e}: fix it in .env or the environment (classchat --help describes every variable)"
                ),
            );
            println!("{}", r.line());
            return std::process::ExitCode::from(1);
        }
    };
    println!(
        "{}",
        CheckResult::pass(CONFIG, "every setting is valid").line()
    );
    // A warning, not a failure: the set-up works, but its secrets are readable on the way.
    if let UpstreamSettings::OpenWebUi(o) = &settings.upstream
        && let Some(warning) = crate::relay::http1::clear_text_warning(&o.completions_url)
    {
        println!("warn  {CONFIG}: {warning}");
    }
    let public_url = settings
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", settings.listen_addr));
    let mut results = run(&settings, &public_url).await;
    // Run before the server, as a teacher does after `init`: PUBLIC_URL cannot answer yet.
    // LISTEN_ADDR still free means classchat is not running here, so say so instead of failing.
    if let Some(r) = results
        .iter_mut()
        .find(|r| r.name == PUBLIC_URL && r.outcome == Outcome::Fail)
        && std::net::TcpListener::bind(settings.listen_addr).is_ok()
    {
        let mut why = format!(
            "classchat is not running here yet (nothing listens on {}): start it and run `classchat check` again to test {public_url}",
            settings.listen_addr
        );
        if let Some(note) = reach_note(public_url.as_str()).await {
            why.push_str("; ");
            why.push_str(&note);
        }
        *r = CheckResult::skip(PUBLIC_URL, why);
    }
    for r in &results {
        println!("{}", r.line());
    }
    println!("classchat check: {}", summary(&results));
    if results.iter().any(|r| r.outcome == Outcome::Fail) {
        std::process::ExitCode::from(1)
    } else {
        std::process::ExitCode::SUCCESS
    }
}

/// The last line: "all good" only when every check passed; otherwise what to read again.
pub fn summary(results: &[CheckResult]) -> String {
    let count = |o: Outcome| results.iter().filter(|r| r.outcome == o).count();
    let (passed, warned, failed, skipped) = (
        count(Outcome::Pass),
        count(Outcome::Warn),
        count(Outcome::Fail),
        count(Outcome::Skip),
    );
    if failed > 0 {
        return format!(
            "{failed} failed, {warned} to look at (warn), {skipped} skipped, {passed} passed: fix the first failure and run it again"
        );
    }
    if warned == 0 && skipped == 0 {
        return "all good".to_owned();
    }
    format!(
        "no failures, but not all good: {warned} to look at (warn), {skipped} skipped, {passed} passed; read the warn and skip lines above"
    )
}

/// Runs the checks in the background once the server is up: one log line each, results
/// kept for the dashboard. Never stops the server, whatever it finds.
pub fn spawn_startup(state: crate::state::AppState) {
    tokio::spawn(async move {
        let results = run(&state.settings, &state.public_url).await;
        for r in &results {
            match r.outcome {
                Outcome::Fail => tracing::warn!(check = r.name, "check failed: {}", r.detail),
                Outcome::Warn => {
                    tracing::warn!(check = r.name, "check: look at this: {}", r.detail)
                }
                _ => tracing::info!(check = r.name, "check {}", r.line()),
            }
        }
        state.health.set(results);
    });
}

/// Every check after the configuration's, in order.
pub async fn run(settings: &Settings, public_url: &str) -> Vec<CheckResult> {
    let mut out = Vec::new();
    match &settings.upstream {
        UpstreamSettings::Demo => {
            let why = "no OPEN_WEBUI_URL: the built-in demo responder answers (set OPEN_WEBUI_URL for a real assistant)";
            for name in [REACHABLE, ACCESS, API_KEY, MODELS, COMPLETION, CLOCK] {
                out.push(CheckResult::skip(name, why));
            }
            out.push(public_url_check(public_url).await);
        }
        UpstreamSettings::OpenWebUi(o) => {
            let mut up = upstream_checks(settings, o).await;
            let clock = up.pop();
            out.extend(up);
            out.push(public_url_check(public_url).await);
            out.extend(clock);
        }
    }
    out
}

/// The checks that talk to Open WebUI; the clock's comes last.
async fn upstream_checks(settings: &Settings, o: &OpenWebUi) -> Vec<CheckResult> {
    let base = o
        .completions_url
        .trim_end_matches("/api/chat/completions")
        .to_owned();
    let connect = settings.timeouts.connect;
    let mut out = vec![reachable(&base, connect, &settings.proxy).await];
    let skip_rest = |out: &mut Vec<CheckResult>, from: usize, why: &str| {
        for name in [REACHABLE, ACCESS, API_KEY, MODELS, COMPLETION, CLOCK]
            .into_iter()
            .skip(from)
        {
            out.push(CheckResult::skip(name, format!("skipped: {why}")));
        }
    };
    if out[0].outcome == Outcome::Fail {
        skip_rest(&mut out, 1, "Open WebUI cannot be reached");
        return out;
    }
    let http = match client(o, connect, &settings.proxy) {
        Ok(c) => c,
        Err(e) => {
            out.push(CheckResult::fail(
                ACCESS,
                format!("cannot prepare the request headers ({e}): remove stray characters from the secret"),
            ));
            skip_rest(&mut out, 2, "the request headers are invalid");
            return out;
        }
    };
    let models_url = format!("{base}/api/models");
    let resp = match http.get(&models_url).send().await {
        Ok(r) => r,
        Err(e) => {
            out.push(CheckResult::fail(
                ACCESS,
                format!(
                    "GET /api/models got no answer ({}): Open WebUI or the proxy in front of it dropped the request",
                    error_chain(&e)
                ),
            ));
            skip_rest(&mut out, 2, "Open WebUI did not answer");
            return out;
        }
    };
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let clock = clock_check(&headers);
    let body = resp.bytes().await.unwrap_or_default();
    let refused_by_access = !(200..300).contains(&status)
        && classify_status(status, &headers, &body, "")
            .log
            .starts_with("Cloudflare Access");

    // Cloudflare Access.
    if refused_by_access {
        out.push(CheckResult::fail(
            ACCESS,
            access_sentence(status, o.cf_access.is_some()),
        ));
        skip_rest(&mut out, 2, "Cloudflare Access refused the request");
        out.pop();
        out.push(clock);
        return out;
    }
    out.push(CheckResult::pass(
        ACCESS,
        if o.cf_access.is_some() {
            "the service token passes (or no Access is in front)"
        } else {
            "no Cloudflare Access in front, no service token needed"
        },
    ));

    // The API key.
    let key = key_check(o, status, &headers, &body);
    let key_ok = key.outcome == Outcome::Pass;
    out.push(key);
    if !key_ok {
        skip_rest(&mut out, 3, "the API key was not accepted");
        out.pop();
        out.push(clock);
        return out;
    }
    let available = model_ids(&body).unwrap_or_default();

    // Every class's model.
    let (models, usable) = models_check(settings, &available);
    out.push(models);

    // A streamed test completion.
    out.push(match usable {
        Some(model) => completion_check(&http, &o.completions_url, &model, settings).await,
        None => CheckResult::skip(COMPLETION, "skipped: no class has a model this key can use"),
    });
    out.push(clock);
    out
}

/// DNS, then TCP, then (for https) TLS: the first that fails is named.
pub(crate) async fn reachable(base: &str, timeout: Duration, proxy: &OutboundProxy) -> CheckResult {
    let Ok(url) = url::Url::parse(base) else {
        return CheckResult::fail(
            REACHABLE,
            "OPEN_WEBUI_URL is not a URL: write it as https://chat.example.edu",
        );
    };
    // Where the network allows the internet only through the proxy, a direct connection
    // would fail for no fault of the set-up; the requests below go through the proxy.
    if proxy.intercept(base).is_some() {
        return CheckResult::skip(
            REACHABLE,
            "reached through the outbound proxy (HTTPS_PROXY/HTTP_PROXY): the checks below test the way through it",
        );
    }
    let host = url.host_str().unwrap_or_default().to_owned();
    let port = url.port_or_known_default().unwrap_or(80);
    let addrs: Vec<std::net::SocketAddr> = match tokio::time::timeout(
        timeout,
        tokio::net::lookup_host((host.as_str(), port)),
    )
    .await
    {
        Err(_) => {
            return CheckResult::fail(
                REACHABLE,
                format!(
                    "DNS: looking up {host} took over {}s: check this machine's DNS server",
                    timeout.as_secs()
                ),
            );
        }
        Ok(Err(e)) => {
            return CheckResult::fail(
                REACHABLE,
                format!(
                    "DNS: cannot resolve {host} ({e}): check the host name in OPEN_WEBUI_URL, or this machine's DNS"
                ),
            );
        }
        Ok(Ok(a)) => a.collect(),
    };
    let Some(addr) = addrs.first().copied() else {
        return CheckResult::fail(
            REACHABLE,
            format!("DNS: {host} has no address: check the host name in OPEN_WEBUI_URL"),
        );
    };
    let tcp = match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
        Err(_) => {
            return CheckResult::fail(
                REACHABLE,
                format!(
                    "TCP: {host}:{port} did not answer within {}s: a firewall drops the connection, or the address is wrong",
                    timeout.as_secs()
                ),
            );
        }
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            return CheckResult::fail(
                REACHABLE,
                format!(
                    "TCP: {host}:{port} refused the connection: Open WebUI (or its tunnel) is not running there; start it or fix the port in OPEN_WEBUI_URL"
                ),
            );
        }
        Ok(Err(e)) => {
            return CheckResult::fail(
                REACHABLE,
                format!(
                    "TCP: cannot connect to {host}:{port} ({e}): check OPEN_WEBUI_URL and this machine's network"
                ),
            );
        }
        Ok(Ok(s)) => s,
    };
    if url.scheme() != "https" {
        return CheckResult::pass(
            REACHABLE,
            format!("{host}:{port} accepts connections (plain HTTP)"),
        );
    }
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = match rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
    {
        Ok(b) => b.with_root_certificates(roots).with_no_client_auth(),
        Err(e) => return CheckResult::fail(REACHABLE, format!("TLS: cannot set up TLS ({e})")),
    };
    let Ok(name) = rustls::pki_types::ServerName::try_from(host.clone()) else {
        return CheckResult::fail(
            REACHABLE,
            format!("TLS: {host} is not a valid server name for TLS"),
        );
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    match tokio::time::timeout(timeout, connector.connect(name, tcp)).await {
        Err(_) => CheckResult::fail(
            REACHABLE,
            format!(
                "TLS: the handshake with {host}:{port} did not finish within {}s: is it really HTTPS on that port?",
                timeout.as_secs()
            ),
        ),
        Ok(Err(e)) => CheckResult::fail(
            REACHABLE,
            format!(
                "TLS: the handshake with {host}:{port} failed ({e}): the certificate must be valid for {host} and publicly trusted; use the URL the certificate is for, or http:// if that port speaks plain HTTP"
            ),
        ),
        Ok(Ok(_)) => CheckResult::pass(
            REACHABLE,
            format!("{host}:{port} accepts connections (TLS verified)"),
        ),
    }
}

/// What `GET /api/models` said, for `classchat init`'s questions.
pub(crate) enum ModelsProbe {
    Models(Vec<String>),
    Access(String),
    Key(String),
    Other(String),
}

/// Asks for the models the key can use, telling Access's refusals from the key's.
pub(crate) async fn models_probe(
    o: &OpenWebUi,
    connect: Duration,
    proxy: &OutboundProxy,
) -> ModelsProbe {
    let http = match client(o, connect, proxy) {
        Ok(c) => c,
        Err(e) => return ModelsProbe::Other(e.to_string()),
    };
    let base = o.completions_url.trim_end_matches("/api/chat/completions");
    let resp = match http.get(format!("{base}/api/models")).send().await {
        Ok(r) => r,
        Err(e) => {
            return ModelsProbe::Other(format!(
                "GET /api/models got no answer ({})",
                error_chain(&e)
            ));
        }
    };
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.bytes().await.unwrap_or_default();
    if !(200..300).contains(&status)
        && classify_status(status, &headers, &body, "")
            .log
            .starts_with("Cloudflare Access")
    {
        return ModelsProbe::Access(access_sentence(status, o.cf_access.is_some()));
    }
    let key = key_check(o, status, &headers, &body);
    match (key.outcome, model_ids(&body)) {
        (Outcome::Pass, Some(m)) => ModelsProbe::Models(m),
        _ if matches!(status, 401 | 403) => ModelsProbe::Key(key.detail),
        _ => ModelsProbe::Other(key.detail),
    }
}

/// A client with the secret headers and the relay's proxy rules, never following redirects
/// (Access's 302 is an answer).
fn client(
    o: &OpenWebUi,
    connect: Duration,
    proxy: &OutboundProxy,
) -> anyhow::Result<reqwest::Client> {
    let h = crate::relay::upstream::secret_headers(o)?;
    Ok(proxy
        .apply(reqwest::Client::builder())?
        .user_agent(concat!("classchat-check/", env!("CARGO_PKG_VERSION")))
        .default_headers(h)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(connect)
        .timeout(COMPLETION_LIMIT)
        .build()?)
}

/// What to change when Access refuses, by how it refused (docs/open-webui.md).
fn access_sentence(status: u16, token_set: bool) -> String {
    if !token_set {
        return format!(
            "Open WebUI is behind Cloudflare Access ({status}) and no service token is set: create one (Zero Trust > Access > Service Auth), add a policy with action Service Auth that includes it, and set CF_ACCESS_CLIENT_ID and CF_ACCESS_CLIENT_SECRET"
        );
    }
    match status {
        401 => "Cloudflare Access refused the service token (401, the application's \"401 Response for Service Auth policies\" is on): check CF_ACCESS_CLIENT_ID and CF_ACCESS_CLIENT_SECRET, and that the token has not expired or been revoked".into(),
        403 => "Cloudflare Access denied the service token (403): the token is valid but no policy lets it in; give the Access application a policy with action Service Auth that includes this token".into(),
        _ => format!(
            "Cloudflare Access sent the request to its login page ({status}): the service token was not accepted; check CF_ACCESS_CLIENT_ID and CF_ACCESS_CLIENT_SECRET, and that the application has a Service Auth policy that includes the token"
        ),
    }
}

fn detail(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    v.get("detail")
        .and_then(Value::as_str)
        .map(|d| d.chars().take(200).collect())
}

/// The answer to `GET /api/models` says whether the key is accepted.
fn key_check(o: &OpenWebUi, status: u16, headers: &HeaderMap, body: &[u8]) -> CheckResult {
    if o.api_key.is_none() {
        return CheckResult::fail(
            API_KEY,
            "OPEN_WEBUI_API_KEY is not set: create a key in Open WebUI (Settings > Account > API keys) and set it",
        );
    }
    let d = detail(body);
    match status {
        200..=299 if model_ids(body).is_some() => {
            CheckResult::pass(API_KEY, "Open WebUI accepts the key")
        }
        200..=299 => CheckResult::fail(
            API_KEY,
            "GET /api/models did not answer with Open WebUI's model list: OPEN_WEBUI_URL must be the address Open WebUI opens at, without /api or any other path",
        ),
        403 if d.as_deref().is_some_and(|d| d.contains("not enabled")) => CheckResult::fail(
            API_KEY,
            "API keys are switched off in Open WebUI (403): an admin turns them on in Admin Panel > Settings > General > Enable API Keys",
        ),
        401 | 403 => CheckResult::fail(
            API_KEY,
            format!(
                "Open WebUI refused the API key ({status}: {}): check OPEN_WEBUI_API_KEY, or make a new key in Settings > Account > API keys (and check API keys are enabled in Admin Panel > Settings > General)",
                d.as_deref().unwrap_or("no detail")
            ),
        ),
        _ => CheckResult::fail(
            API_KEY,
            format!(
                "GET /api/models: {}",
                classify_status(status, headers, body, "").log
            ),
        ),
    }
}

/// `{"data": [{"id": …}, …]}`: the models the key's user may use, read as the server's
/// cached list reads them ([`crate::relay::models::parse`]).
fn model_ids(body: &[u8]) -> Option<Vec<String>> {
    Some(
        crate::relay::models::parse(body)?
            .into_iter()
            .map(|m| m.id)
            .collect(),
    )
}

/// Every class's model must be one the key can use; returns a usable one for the test.
fn models_check(settings: &Settings, available: &[String]) -> (CheckResult, Option<String>) {
    let mut missing: Vec<(String, Vec<String>)> = Vec::new();
    let mut unset: Vec<String> = Vec::new();
    let mut usable = None;
    for class in settings.classes.iter() {
        let Some(model) = class.model.clone() else {
            unset.push(class.id.clone());
            continue;
        };
        if available.contains(&model) {
            usable.get_or_insert(model);
        } else if let Some(m) = missing.iter_mut().find(|(m, _)| *m == model) {
            m.1.push(class.id.clone());
        } else {
            missing.push((model, vec![class.id.clone()]));
        }
    }
    let some: Vec<&str> = available.iter().take(8).map(String::as_str).collect();
    let choices = if some.is_empty() {
        "this key can use no model at all".to_owned()
    } else {
        format!("this key can use: {}", some.join(", "))
    };
    let result = if let Some((model, classes)) = missing.first() {
        CheckResult::fail(
            MODELS,
            format!(
                "the model {model:?} (class {}) is not one this key can use ({choices}): set OPEN_WEBUI_MODEL or the class's model to one of them, or give the key's user access to it in Workspace > Models",
                classes.join(", ")
            ),
        )
    } else if !unset.is_empty() {
        CheckResult::fail(
            MODELS,
            format!(
                "class {} names no model and OPEN_WEBUI_MODEL is not set: set it ({choices})",
                unset.join(", ")
            ),
        )
    } else {
        CheckResult::pass(
            MODELS,
            format!("every class's model is available ({choices})"),
        )
    };
    (result, usable)
}

/// Asks for one word, streamed, and waits for the first piece of text.
async fn completion_check(
    http: &reqwest::Client,
    url: &str,
    model: &str,
    settings: &Settings,
) -> CheckResult {
    let started = Instant::now();
    let limit = settings.timeouts.first_byte.min(COMPLETION_LIMIT);
    let body = json!({
        "model": model,
        "messages": [{"role": "user", "content": "Reply with the single word: ok"}],
        "stream": true,
    });
    let call = async {
        let resp = http
            .post(url)
            .header(header::ACCEPT, "text/event-stream")
            .json(&body)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "the request failed ({}): Open WebUI or the proxy in front of it dropped it",
                    error_chain(&e)
                )
            })?;
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            let headers = resp.headers().clone();
            let body = resp.bytes().await.unwrap_or_default();
            return Err(classify_status(status, &headers, &body, model).log);
        }
        let mut events = eventsource_stream::Eventsource::eventsource(resp.bytes_stream());
        while let Some(ev) = events.next().await {
            let ev = ev.map_err(|e| format!("the stream broke off ({e}): a proxy in front of Open WebUI may buffer or cut streams"))?;
            if ev.data.trim() == "[DONE]" {
                break;
            }
            let Ok(v) = serde_json::from_str::<Value>(&ev.data) else {
                continue;
            };
            if let Some(msg) = v.get("error").and_then(|e| e.get("message").or(Some(e))) {
                return Err(format!(
                    "the model provider answered an error ({}): check the model's connection in Open WebUI (Admin Panel > Settings > Connections)",
                    msg.to_string().chars().take(200).collect::<String>()
                ));
            }
            if let Some(text) = v
                .pointer("/choices/0/delta/content")
                .and_then(Value::as_str)
                && !text.trim().is_empty()
            {
                return Ok(text.trim().chars().take(40).collect::<String>());
            }
        }
        Err(
            "the stream ended without any text: check the model works in Open WebUI's own chat"
                .to_owned(),
        )
    };
    match tokio::time::timeout(limit, call).await {
        Err(_) => CheckResult::fail(
            COMPLETION,
            format!(
                "model {model:?} sent no text within {}s: check the model works in Open WebUI's own chat",
                limit.as_secs()
            ),
        ),
        Ok(Err(why)) => CheckResult::fail(COMPLETION, format!("model {model:?}: {why}")),
        Ok(Ok(text)) => CheckResult::pass(
            COMPLETION,
            format!(
                "model {model:?} streamed {text:?} after {} ms",
                started.elapsed().as_millis()
            ),
        ),
    }
}

/// The address students' browsers use must answer and serve the widget.
async fn public_url_check(public_url: &str) -> CheckResult {
    let url = format!("{}/widget.js", public_url.trim_end_matches('/'));
    let http = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(15))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            return CheckResult::fail(PUBLIC_URL, format!("cannot make an HTTP client ({e})"));
        }
    };
    match http.get(&url).send().await {
        Err(e) => CheckResult::fail(
            PUBLIC_URL,
            format!(
                "{public_url} does not answer ({}): start classchat (and its tunnel), or set PUBLIC_URL to the address students' browsers reach it at",
                error_chain(&e)
            ),
        ),
        Ok(r) if r.status().is_redirection() => CheckResult::fail(
            PUBLIC_URL,
            format!(
                "{url} answers a redirect ({}): something in front of classchat (Cloudflare Access?) sends students elsewhere; let classchat's host name through without a login",
                r.status().as_u16()
            ),
        ),
        Ok(r) if !r.status().is_success() => CheckResult::fail(
            PUBLIC_URL,
            format!(
                "{url} answers {}: PUBLIC_URL points at something other than this classchat, or this binary was built without the widget",
                r.status().as_u16()
            ),
        ),
        Ok(_) => match reach_note(public_url).await {
            Some(note) => CheckResult::warn(
                PUBLIC_URL,
                format!("{public_url} serves /widget.js, but {note}"),
            ),
            None => CheckResult::pass(PUBLIC_URL, format!("{public_url} serves /widget.js")),
        },
    }
}

/// Who can reach an address, as far as this machine can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reach {
    /// Loopback (or unspecified): only a browser on this machine.
    ThisMachine,
    /// Private, link-local, shared (CGNAT) or unique-local: only the local network.
    LocalNetwork,
    Anyone,
}

/// What kind of address `ip` is for a student's browser.
pub(crate) fn reach_of(ip: std::net::IpAddr) -> Reach {
    use std::net::IpAddr;
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) if v4.is_loopback() || v4.is_unspecified() => Reach::ThisMachine,
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            // 100.64.0.0/10 is carrier-grade NAT: not reachable from outside either.
            if v4.is_private() || v4.is_link_local() || (a == 100 && (64..128).contains(&b)) {
                Reach::LocalNetwork
            } else {
                Reach::Anyone
            }
        }
        IpAddr::V6(v6) if v6.is_loopback() || v6.is_unspecified() => Reach::ThisMachine,
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            // fc00::/7 unique local, fe80::/10 link-local.
            if (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80 {
                Reach::LocalNetwork
            } else {
                Reach::Anyone
            }
        }
    }
}

/// A plain sentence when `PUBLIC_URL`'s host is one students' browsers cannot reach from
/// everywhere: a loopback address (the snippet works only on this machine) or a private
/// one (only inside the school's network). Names are looked up from this machine; a name
/// that does not resolve here says nothing (the request above already told).
pub(crate) async fn reach_note(public_url: &str) -> Option<String> {
    let url = url::Url::parse(public_url).ok()?;
    let host = url.host()?;
    let (name, reach) = match host {
        url::Host::Ipv4(ip) => (ip.to_string(), reach_of(ip.into())),
        url::Host::Ipv6(ip) => (ip.to_string(), reach_of(ip.into())),
        url::Host::Domain(d) => {
            let lower = d.to_ascii_lowercase();
            let reach = if lower == "localhost" || lower.ends_with(".localhost") {
                Reach::ThisMachine
            } else {
                let port = url.port_or_known_default().unwrap_or(80);
                let addrs: Vec<std::net::SocketAddr> = tokio::time::timeout(
                    Duration::from_secs(5),
                    tokio::net::lookup_host((lower.as_str(), port)),
                )
                .await
                .ok()?
                .ok()?
                .collect();
                let reaches: Vec<Reach> = addrs.iter().map(|a| reach_of(a.ip())).collect();
                if reaches.is_empty() {
                    return None;
                } else if reaches.iter().all(|r| *r == Reach::ThisMachine) {
                    Reach::ThisMachine
                } else if reaches.iter().all(|r| *r != Reach::Anyone) {
                    Reach::LocalNetwork
                } else {
                    Reach::Anyone
                }
            };
            (d.to_owned(), reach)
        }
    };
    match reach {
        Reach::ThisMachine => Some(format!(
            "{name} is a loopback address: students' browsers cannot reach it, and the snippet works only in a browser on this machine; set PUBLIC_URL to the address students reach classchat at (e.g. https://classchat.school.edu, through a reverse proxy or a tunnel)"
        )),
        Reach::LocalNetwork => Some(format!(
            "{name} is a private address: only browsers inside the school's network reach it (not students at home); if they must, set PUBLIC_URL to a public address (a reverse proxy or a tunnel)"
        )),
        Reach::Anyone => None,
    }
}

/// Compares this machine's clock with the upstream's `Date` header.
fn clock_check(headers: &HeaderMap) -> CheckResult {
    let Some(date) = headers.get(header::DATE).and_then(|v| v.to_str().ok()) else {
        return CheckResult::skip(CLOCK, "Open WebUI sent no Date header to compare with");
    };
    let Ok(theirs) = jiff::fmt::rfc2822::parse(date) else {
        return CheckResult::skip(
            CLOCK,
            format!("Open WebUI's Date header {date:?} is not a date"),
        );
    };
    let skew = jiff::Timestamp::now().as_second() - theirs.timestamp().as_second();
    if skew.abs() <= MAX_SKEW_SECS {
        CheckResult::pass(CLOCK, format!("within {}s of Open WebUI's", skew.abs()))
    } else {
        CheckResult::fail(
            CLOCK,
            format!(
                "this machine's clock is {}s {} Open WebUI's: turn on time synchronisation (timedatectl set-ntp true) on whichever is wrong",
                skew.abs(),
                if skew > 0 { "ahead of" } else { "behind" }
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn http_dates_parse_and_skew_is_signed() {
        let mut h = HeaderMap::new();
        let now = jiff::Timestamp::now();
        let fmt = |t: jiff::Timestamp| {
            jiff::fmt::rfc2822::DateTimePrinter::new()
                .timestamp_to_rfc9110_string(&t)
                .unwrap()
        };
        h.insert(header::DATE, HeaderValue::from_str(&fmt(now)).unwrap());
        assert_eq!(clock_check(&h).outcome, Outcome::Pass);
        let behind = now - jiff::SignedDuration::from_secs(300);
        h.insert(header::DATE, HeaderValue::from_str(&fmt(behind)).unwrap());
        let r = clock_check(&h);
        assert_eq!(r.outcome, Outcome::Fail);
        assert!(r.detail.contains("ahead of"), "{}", r.detail);
    }

    #[test]
    fn addresses_are_told_apart_by_who_can_reach_them() {
        for (ip, want) in [
            ("127.0.0.1", Reach::ThisMachine),
            ("127.3.4.5", Reach::ThisMachine),
            ("0.0.0.0", Reach::ThisMachine),
            ("::1", Reach::ThisMachine),
            ("::ffff:127.0.0.1", Reach::ThisMachine),
            ("10.1.2.3", Reach::LocalNetwork),
            ("172.16.0.9", Reach::LocalNetwork),
            ("192.168.1.20", Reach::LocalNetwork),
            ("169.254.1.1", Reach::LocalNetwork),
            ("100.100.1.1", Reach::LocalNetwork),
            ("fd12:3456::1", Reach::LocalNetwork),
            ("fe80::1", Reach::LocalNetwork),
            ("203.0.113.7", Reach::Anyone),
            ("172.32.0.1", Reach::Anyone),
            ("2001:db8::1", Reach::Anyone),
        ] {
            assert_eq!(reach_of(ip.parse().unwrap()), want, "{ip}");
        }
    }

    #[tokio::test]
    async fn loopback_and_private_public_urls_are_named_plainly() {
        let n = reach_note("http://127.0.0.1:8080").await.unwrap();
        assert!(n.contains("students' browsers cannot reach it"), "{n}");
        assert!(n.contains("only in a browser on this machine"), "{n}");
        let n = reach_note("http://localhost:8080").await.unwrap();
        assert!(n.contains("localhost is a loopback address"), "{n}");
        let n = reach_note("http://192.168.1.20").await.unwrap();
        assert!(
            n.contains("only browsers inside the school's network"),
            "{n}"
        );
        assert_eq!(reach_note("https://203.0.113.7").await, None);
    }

    #[test]
    fn the_summary_says_all_good_only_when_every_check_passed() {
        let pass = CheckResult::pass(CLOCK, "x");
        assert_eq!(summary(std::slice::from_ref(&pass)), "all good");
        let s = summary(&[pass.clone(), CheckResult::skip(REACHABLE, "y")]);
        assert!(
            s.starts_with("no failures, but not all good") && s.contains("1 skipped"),
            "{s}"
        );
        let s = summary(&[pass.clone(), CheckResult::warn(PUBLIC_URL, "y")]);
        assert!(
            s.contains("1 to look at (warn)") && !s.contains("all good."),
            "{s}"
        );
        let s = summary(&[pass, CheckResult::fail(PUBLIC_URL, "y")]);
        assert!(s.starts_with("1 failed"), "{s}");
    }

    #[test]
    fn access_refusals_name_the_setting_to_change() {
        assert!(access_sentence(302, true).contains("login page"));
        assert!(access_sentence(401, true).contains("401 Response for Service Auth"));
        assert!(access_sentence(403, true).contains("no policy lets it in"));
        assert!(access_sentence(302, false).contains("no service token is set"));
    }
}
