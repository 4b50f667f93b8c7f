//! Calling Open WebUI: one pooled client, the secret headers, and turning every way a
//! call can fail into one [`UpstreamFailure`] with a student message and a teacher log line.

use std::pin::Pin;
use std::time::Duration;

use axum::http::header::{self, HeaderMap, HeaderValue};
use bytes::Bytes;
use classchat_shared::{ChatMessage, ErrorCode};
use futures::{Stream, StreamExt};
use secrecy::ExposeSecret;
use serde::Serialize;

use crate::config::{OpenWebUi, OutboundProxy, Timeouts, UpstreamSettings};
use crate::error::AppError;

use super::{demo, http1};

/// The upstream body, as it arrives.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, UpstreamFailure>> + Send>>;

/// What classchat sends: `{model, messages, stream}`, plus `stream_options` on a stream; no
/// `chat_id` (see docs/open-webui.md).
#[derive(Debug, Clone, Serialize)]
pub struct UpstreamRequest {
    pub model: String,
    pub messages: Vec<ChatMessage>,
    pub stream: bool,
    /// Set on every stream: OpenAI-style providers send a stream's token counts only when
    /// asked, and Open WebUI asks for the caller only when the model's "usage" capability is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
}

/// `stream_options` of an OpenAI chat request.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct StreamOptions {
    pub include_usage: bool,
}

impl UpstreamRequest {
    /// The request for these messages; a stream asks for usage.
    pub fn new(model: String, messages: Vec<ChatMessage>, stream: bool) -> Self {
        Self {
            model,
            messages,
            stream,
            stream_options: stream.then_some(StreamOptions {
                include_usage: true,
            }),
        }
    }
}

/// A call that failed: the code for the student, a sentence for the student, and a
/// line for the teacher's log. None of them carries a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamFailure {
    pub code: ErrorCode,
    pub student: &'static str,
    pub log: String,
    pub retry_after: Option<u64>,
}

impl std::fmt::Display for UpstreamFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.log)
    }
}

impl std::error::Error for UpstreamFailure {}

impl From<UpstreamFailure> for AppError {
    fn from(f: UpstreamFailure) -> Self {
        match (f.code, f.retry_after) {
            (ErrorCode::RateLimited, Some(s)) => {
                AppError::limit_hit(classchat_shared::LimitKind::Upstream, s, f.student)
            }
            (code, _) => AppError::Upstream {
                code,
                message: f.student.to_owned(),
            },
        }
    }
}

pub(crate) const UNAVAILABLE: &str =
    "The assistant cannot be reached right now. Please try again in a minute.";
pub(crate) const TIMEOUT: &str = "The assistant took too long to answer. Please try again.";
pub(crate) const MISCONFIGURED: &str =
    "The assistant is not set up correctly on the server. Please tell your teacher.";
pub(crate) const FAILED: &str = "The assistant ran into a problem. Please try again.";
pub(crate) const BUSY: &str = "The assistant is busy. Please wait a moment and try again.";
pub(crate) const CUT: &str = "The reply was cut off. Please try again.";
pub(crate) const NO_ANSWER: &str =
    "The assistant closed the connection without answering. Please try again.";

fn failure(code: ErrorCode, student: &'static str, log: impl Into<String>) -> UpstreamFailure {
    UpstreamFailure {
        code,
        student,
        log: log.into(),
        retry_after: None,
    }
}

pub(crate) fn timeout_failure(what: &str, after: Duration) -> UpstreamFailure {
    failure(
        ErrorCode::UpstreamTimeout,
        TIMEOUT,
        format!("Open WebUI timed out: {what} after {}s", after.as_secs()),
    )
}

pub(crate) fn cut_failure(why: impl Into<String>) -> UpstreamFailure {
    failure(ErrorCode::UpstreamError, CUT, why)
}

/// Where replies come from: Open WebUI or the demo responder.
#[derive(Debug)]
pub struct Upstream {
    target: Target,
    timeouts: Timeouts,
}

#[derive(Debug)]
enum Target {
    Demo,
    /// The URL and the secret headers are in the client, written once.
    OpenWebUi(http1::Client),
}

/// The upstream answered 2xx: its body, not yet read.
pub struct UpstreamResponse {
    pub body: ByteStream,
}

impl Upstream {
    pub fn new(
        settings: &UpstreamSettings,
        timeouts: Timeouts,
        proxy: &OutboundProxy,
    ) -> anyhow::Result<Self> {
        let target = match settings {
            UpstreamSettings::Demo => Target::Demo,
            UpstreamSettings::OpenWebUi(o) => Target::OpenWebUi(http1::Client::new(
                &url::Url::parse(&o.completions_url)?,
                &fixed_headers(o)?,
                timeouts.connect,
                proxy.intercept(&o.completions_url),
            )?),
        };
        Ok(Self { target, timeouts })
    }

    pub fn is_demo(&self) -> bool {
        matches!(self.target, Target::Demo)
    }

    pub fn idle_timeout(&self) -> Duration {
        self.timeouts.idle
    }

    /// Sends the request and waits for the status line; errors are classified here.
    /// Redirects are not followed: Cloudflare Access answers a bad service token with one to
    /// its login page, and following it would turn a clear refusal into a confusing HTML 200.
    pub async fn send(&self, req: &UpstreamRequest) -> Result<UpstreamResponse, UpstreamFailure> {
        let client = match &self.target {
            Target::Demo => {
                let prompt = req
                    .messages
                    .last()
                    .map(|m| m.content.as_str())
                    .unwrap_or("");
                let body = if req.stream {
                    demo::stream(prompt)
                } else {
                    futures::stream::once(std::future::ready(Ok(demo::completion(prompt)))).boxed()
                };
                return Ok(UpstreamResponse { body });
            }
            Target::OpenWebUi(client) => client,
        };
        // Sized for a typical request up front, rather than grown by doubling from 128 bytes.
        let mut body = Vec::with_capacity(1024);
        serde_json::to_writer(&mut body, req).map_err(|e| {
            failure(
                ErrorCode::Internal,
                FAILED,
                format!("could not encode the request: {e}"),
            )
        })?;
        let accept = if req.stream {
            "text/event-stream"
        } else {
            "application/json"
        };
        let call = client.post(accept, body);
        let resp = match tokio::time::timeout(self.timeouts.first_byte, call).await {
            Err(_) => return Err(timeout_failure("no answer", self.timeouts.first_byte)),
            Ok(Err(e)) => return Err(classify_transport(&e)),
            Ok(Ok(r)) => r,
        };
        let status = resp.status;
        if (200..300).contains(&status) {
            let body = resp
                .body
                .into_stream()
                .map(|r| r.map_err(|e| cut_failure(format!("Open WebUI's reply broke off: {e}"))))
                .boxed();
            return Ok(UpstreamResponse { body });
        }
        let body = tokio::time::timeout(Duration::from_secs(5), resp.body.read_limited(64 * 1024))
            .await
            .unwrap_or_default();
        Err(classify_status(status, &resp.headers, &body, &req.model))
    }
}

/// The headers every request carries: the secrets, the type and who is asking.
fn fixed_headers(o: &OpenWebUi) -> anyhow::Result<HeaderMap> {
    let mut h = secret_headers(o)?;
    h.insert(
        header::USER_AGENT,
        HeaderValue::from_static(concat!("classchat/", env!("CARGO_PKG_VERSION"))),
    );
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(h)
}

/// The API key and the Access service token as headers marked sensitive (kept out of
/// `Debug` and HTTP/2 tables); the relay and `classchat check` send the same ones.
pub(crate) fn secret_headers(o: &OpenWebUi) -> anyhow::Result<HeaderMap> {
    let mut h = HeaderMap::new();
    let mut put = |name: &'static str, var: &str, value: &str| -> anyhow::Result<()> {
        let mut v = HeaderValue::from_str(value)
            .map_err(|_| anyhow::anyhow!("{var} has characters not allowed in a header"))?;
        v.set_sensitive(true);
        h.insert(name, v);
        Ok(())
    };
    if let Some(key) = &o.api_key {
        let bearer = format!("Bearer {}", key.expose_secret().trim());
        put("authorization", "OPEN_WEBUI_API_KEY", &bearer)?;
    }
    if let Some((id, secret)) = &o.cf_access {
        put(
            "cf-access-client-id",
            "CF_ACCESS_CLIENT_ID",
            id.expose_secret().trim(),
        )?;
        let secret = secret.expose_secret();
        put(
            "cf-access-client-secret",
            "CF_ACCESS_CLIENT_SECRET",
            secret.trim(),
        )?;
    }
    Ok(h)
}

fn classify_transport(e: &http1::Error) -> UpstreamFailure {
    // The errors name the host at most, never a header, so no secret is in them.
    match e {
        http1::Error::ConnectTimeout(_) => failure(
            ErrorCode::UpstreamTimeout,
            TIMEOUT,
            format!("Open WebUI timed out while connecting: {e}"),
        ),
        http1::Error::Connect(_) | http1::Error::Tls(_) => failure(
            ErrorCode::UpstreamUnavailable,
            UNAVAILABLE,
            format!(
                "cannot connect to Open WebUI (down, wrong OPEN_WEBUI_URL, or DNS failure): {e}"
            ),
        ),
        // The proxy's URL is not in the error: it may carry credentials.
        http1::Error::Proxy(_) => failure(
            ErrorCode::UpstreamUnavailable,
            UNAVAILABLE,
            format!(
                "cannot reach Open WebUI through the outbound proxy (HTTPS_PROXY/HTTP_PROXY, NO_PROXY): {e}"
            ),
        ),
        http1::Error::ProxyAuth => failure(ErrorCode::UpstreamError, MISCONFIGURED, PROXY_AUTH),
        http1::Error::Closed => failure(
            ErrorCode::UpstreamUnavailable,
            NO_ANSWER,
            "Open WebUI closed the connection without answering; the request was not sent again (it may have run)",
        ),
        _ => failure(
            ErrorCode::UpstreamUnavailable,
            UNAVAILABLE,
            format!("request to Open WebUI failed: {e}"),
        ),
    }
}

fn is_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"))
}

/// Open WebUI's `{"detail": "..."}`, or the provider's `{"error": {"message": "..."}}`.
fn detail(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let d = v
        .get("detail")
        .or_else(|| v.get("error").and_then(|e| e.get("message")))?;
    Some(match d {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    })
    .map(|s| s.chars().take(300).collect())
}

const PROXY_AUTH: &str = "the outbound proxy refused classchat's credentials (407): check the user:password in HTTPS_PROXY/HTTP_PROXY";

const CF_REJECTED: &str = "Cloudflare Access rejected the service token: check CF_ACCESS_CLIENT_ID/SECRET and the application's Service Auth policy";

/// Maps a non-2xx answer to a failure, following what docs/open-webui.md records.
pub fn classify_status(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    model: &str,
) -> UpstreamFailure {
    let cf_login = headers
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|l| l.contains("cloudflareaccess.com") || l.contains("/cdn-cgi/access/"));
    let cf_header = headers.keys().any(|k| k.as_str().starts_with("cf-access-"));
    let d = detail(body);
    match status {
        300..=399 if cf_login => failure(
            ErrorCode::UpstreamError,
            MISCONFIGURED,
            format!("{CF_REJECTED} (302 to the Access login page)"),
        ),
        300..=399 => failure(
            ErrorCode::UpstreamError,
            MISCONFIGURED,
            format!(
                "Open WebUI answered a {status} redirect: check OPEN_WEBUI_URL (http vs https, path)"
            ),
        ),
        // Only an `http` upstream reached through HTTP_PROXY can see the proxy's own 407.
        407 => failure(ErrorCode::UpstreamError, MISCONFIGURED, PROXY_AUTH),
        401 | 403 if is_html(headers) || cf_header => failure(
            ErrorCode::UpstreamError,
            MISCONFIGURED,
            format!("{CF_REJECTED} ({status} from Access)"),
        ),
        401 | 403 => failure(
            ErrorCode::UpstreamError,
            MISCONFIGURED,
            format!(
                "the server's Open WebUI API key was rejected ({status}: {}); check OPEN_WEBUI_API_KEY and that API keys are enabled in Open WebUI",
                d.as_deref().unwrap_or("no detail")
            ),
        ),
        400 if d
            .as_deref()
            .is_some_and(|d| d.to_lowercase().contains("model not found")) =>
        {
            failure(
                ErrorCode::UpstreamError,
                MISCONFIGURED,
                format!(
                    "Open WebUI does not know the model {model:?}: check OPEN_WEBUI_MODEL or the class's model"
                ),
            )
        }
        404 => failure(
            ErrorCode::UpstreamError,
            MISCONFIGURED,
            format!(
                "Open WebUI answered 404 for /api/chat/completions: check OPEN_WEBUI_URL ({})",
                d.as_deref().unwrap_or("no detail")
            ),
        ),
        429 => {
            let retry = headers
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(20);
            UpstreamFailure {
                code: ErrorCode::RateLimited,
                student: BUSY,
                log: format!(
                    "Open WebUI's model provider is rate limiting (429): {}",
                    d.as_deref().unwrap_or("no detail")
                ),
                retry_after: Some(retry.clamp(1, 3600)),
            }
        }
        502 | 503 => failure(
            ErrorCode::UpstreamUnavailable,
            UNAVAILABLE,
            format!(
                "Open WebUI or the tunnel in front of it is unavailable ({status}): {}",
                d.unwrap_or_else(
                    || String::from_utf8_lossy(&body[..body.len().min(100)]).into_owned()
                )
            ),
        ),
        504 => failure(
            ErrorCode::UpstreamTimeout,
            TIMEOUT,
            "Open WebUI's gateway timed out (504)",
        ),
        _ => failure(
            ErrorCode::UpstreamError,
            FAILED,
            format!(
                "Open WebUI answered {status}: {}",
                d.as_deref().unwrap_or("no detail")
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hm(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn cloudflare_access_refusals_are_told_apart_from_open_webui_ones() {
        let redirect = hm(&[(
            "location",
            "https://team.cloudflareaccess.com/cdn-cgi/access/login/chat.example?kid=abc",
        )]);
        let f = classify_status(302, &redirect, b"<html>", "m");
        assert!(
            f.log
                .starts_with("Cloudflare Access rejected the service token"),
            "{}",
            f.log
        );
        let html = hm(&[("content-type", "text/html")]);
        assert!(
            classify_status(403, &html, b"<html>", "m")
                .log
                .starts_with("Cloudflare Access")
        );
        assert!(
            classify_status(401, &html, b"<html>", "m")
                .log
                .starts_with("Cloudflare Access")
        );
        let json = hm(&[("content-type", "application/json")]);
        let f = classify_status(401, &json, br#"{"detail":"401 Unauthorized"}"#, "m");
        assert!(
            f.log
                .starts_with("the server's Open WebUI API key was rejected"),
            "{}",
            f.log
        );
        assert_eq!(f.code, ErrorCode::UpstreamError);
    }

    #[test]
    fn other_statuses_map_to_their_codes() {
        let json = hm(&[("content-type", "application/json")]);
        let f = classify_status(400, &json, br#"{"detail":"Model not found"}"#, "tcm");
        assert!(f.log.contains("does not know the model \"tcm\""));
        assert_eq!(
            classify_status(500, &json, b"{}", "m").code,
            ErrorCode::UpstreamError
        );
        assert_eq!(
            classify_status(502, &hm(&[]), b"error code: 502", "m").code,
            ErrorCode::UpstreamUnavailable
        );
        assert_eq!(
            classify_status(504, &json, b"", "m").code,
            ErrorCode::UpstreamTimeout
        );
        let f = classify_status(429, &hm(&[("retry-after", "7")]), b"{}", "m");
        assert_eq!((f.code, f.retry_after), (ErrorCode::RateLimited, Some(7)));
    }
}
