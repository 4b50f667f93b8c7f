//! Plain HTTP/1.1 on loopback with as little in the way as possible: every worker owns one
//! keep-alive connection (hyper's low-level `conn::http1`, no pool, no locks), like `wrk`.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// The sending half of one connection.
pub(crate) type Sender = SendRequest<Full<Bytes>>;

/// Where requests go: `http://host:port/path` (plain HTTP only).
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) authority: String,
    pub(crate) path: Uri,
}

impl Target {
    pub(crate) fn parse(url: &str) -> Result<Self> {
        let rest = url
            .strip_prefix("http://")
            .with_context(|| format!("{url}: only http:// URLs are supported"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, "/"),
        };
        if authority.is_empty() {
            bail!("{url}: no host");
        }
        Ok(Self {
            authority: authority.to_owned(),
            path: path.parse().with_context(|| format!("{url}: bad path"))?,
        })
    }
}

/// One request, sent again and again.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    pub(crate) target: Target,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
}

impl Template {
    /// `headers` are `Name: value` strings.
    pub(crate) fn new(url: &str, method: &str, headers: &[String], body: &str) -> Result<Self> {
        let target = Target::parse(url)?;
        let method: Method = method
            .parse()
            .with_context(|| format!("bad method {method}"))?;
        let mut map = HeaderMap::new();
        map.insert(header::HOST, HeaderValue::from_str(&target.authority)?);
        if !body.is_empty() {
            map.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        for h in headers {
            let (name, value) = h
                .split_once(':')
                .with_context(|| format!("header {h:?} is not `Name: value`"))?;
            map.insert(
                HeaderName::from_bytes(name.trim().as_bytes())?,
                HeaderValue::from_str(value.trim())?,
            );
        }
        Ok(Self {
            target,
            method,
            headers: map,
            body: Bytes::copy_from_slice(body.as_bytes()),
        })
    }

    pub(crate) fn bearer(&mut self, token: &str) -> Result<()> {
        self.headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}"))?,
        );
        Ok(())
    }

    pub(crate) fn request(&self) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(self.body.clone()));
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.target.path.clone();
        *req.headers_mut() = self.headers.clone();
        req
    }
}

/// Opens one keep-alive connection; its driver runs as its own task.
pub(crate) async fn connect(target: &Target) -> Result<Sender> {
    let tcp = TcpStream::connect(&target.authority)
        .await
        .with_context(|| format!("connect {}", target.authority))?;
    tcp.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Sends one request on a fresh connection and reads the whole answer (bounded by `limit`).
pub(crate) async fn once(
    template: &Template,
    limit: Duration,
) -> Result<(hyper::StatusCode, Bytes)> {
    tokio::time::timeout(limit, async {
        let mut sender = connect(&template.target).await?;
        let resp = sender.send_request(template.request()).await?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, body))
    })
    .await
    .with_context(|| format!("no answer within {limit:?}"))?
}

/// Signs in at classchat's `POST /api/v1/session` and returns the widget token.
pub(crate) async fn login(url: &str, access_code: &str) -> Result<String> {
    let body = serde_json::json!({ "access_code": access_code }).to_string();
    let t = Template::new(url, "POST", &[], &body)?;
    let (status, body) = once(&t, Duration::from_secs(10)).await?;
    if !status.is_success() {
        bail!(
            "sign-in at {url} answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    let v: serde_json::Value = serde_json::from_slice(&body).context("sign-in answer")?;
    v["token"]
        .as_str()
        .map(str::to_owned)
        .context("sign-in answer has no token")
}

/// Whether `needle` occurs in `hay`.
pub(crate) fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_authority_and_path() {
        let t = Target::parse("http://127.0.0.1:8080/api/v1/chat").unwrap();
        assert_eq!(t.authority, "127.0.0.1:8080");
        assert_eq!(t.path, "/api/v1/chat");
        assert_eq!(Target::parse("http://h:1").unwrap().path, "/");
        assert!(Target::parse("https://h/").is_err());
    }

    #[test]
    fn templates_carry_host_type_and_extra_headers() {
        let mut t = Template::new("http://h:1/x", "POST", &["X-A: b".into()], "{}").unwrap();
        t.bearer("tok").unwrap();
        let r = t.request();
        assert_eq!(r.headers()["host"], "h:1");
        assert_eq!(r.headers()["content-type"], "application/json");
        assert_eq!(r.headers()["x-a"], "b");
        assert_eq!(r.headers()["authorization"], "Bearer tok");
    }
}
