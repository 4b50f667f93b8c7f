//! The HTTP/1.1 client for the one upstream classchat talks to, on the path that carries the
//! Open WebUI key and the service token.
//!
//! Framing, chunking and keep-alive are hyper's (`hyper::client::conn::http1`), not ours.
//! What is ours is only where the connection runs: not in a task of its own behind reqwest's
//! pool (that cost 35 kB per open stream and a cross-task hand-off per request) but polled by
//! the request's own task, together with the answer's body, and parked in a small idle list
//! between requests. Plain TCP or TLS (rustls, Mozilla's roots, ALPN `http/1.1`), directly or
//! through an outbound proxy: a CONNECT tunnel (hyper-util's) for `https`, absolute-form
//! requests for `http`, as curl and reqwest do.
//!
//! A request is sent at most once. It is sent again on another connection only when hyper
//! hands it back unsent (the kept-alive connection was found closed before a byte of it was
//! written); once written, a connection that closes without an answer is [`Error::Closed`],
//! since Open WebUI may be running (and billing) the completion already.
//!
//! Measured against the hand-written framing it replaced (release builds, `scripts/bench` with
//! the old build as `CLASSCHAT_BIN_B`, 2026-11-30, README "Performance"): 28.8 against 18.4 kB
//! per open stream. Relay CPU per non-stream request (c16/c64) was 52/49 against 42/38 µs;
//! with the relay's own per-request work trimmed since (one timer per reply, no copy of a
//! one-piece answer, no second poll of a returned connection) it was 63/61 against 60/61 µs
//! in one run (+5 %/0 %) and 63/67 against 52/56 in the next (+21 %/+20 %), on a machine
//! other builds kept at a load average of 6 to 11. Per 20-chunk stream: 456 against 477 µs,
//! then 460 against 435 (2.0× and 2.6× nginx). By perf, hyper's client (its dispatch, the
//! body channel, the answer's header map) is about 2.5 % of the relay's CPU per request.

use std::fmt;
use std::future::{Future, poll_fn};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, Method, Request, Uri, header};
use bytes::{Bytes, BytesMut};
use futures::{FutureExt, Stream};
use http_body::Body as _;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1::{Builder, Connection, SendRequest};
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::proxy::matcher::Intercept;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// What a connection reads into at a time; SSE frames are far smaller.
const READ_SIZE: usize = 4096;
/// Idle connections kept at most.
const MAX_IDLE: usize = 512;
/// How long an idle connection is kept (the server usually closes it sooner; see `checkout`).
const IDLE_FOR: Duration = Duration::from_secs(60);

/// What went wrong before an answer's head arrived.
#[derive(Debug)]
pub enum Error {
    /// Name lookup or TCP connect failed.
    Connect(io::Error),
    ConnectTimeout(Duration),
    /// The outbound proxy could not be reached or refused the tunnel.
    Proxy(String),
    /// The outbound proxy wants (other) credentials: 407.
    ProxyAuth,
    Tls(io::Error),
    /// The request was written and the server closed the connection without answering.
    Closed,
    /// Any other failure of the exchange (hyper's words, with their causes).
    Http(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Connect(e) => write!(f, "connect: {e}"),
            Error::ConnectTimeout(d) => write!(f, "no connection after {}s", d.as_secs()),
            Error::Proxy(e) => write!(f, "proxy: {e}"),
            Error::ProxyAuth => f.write_str("the proxy asks for credentials (407)"),
            Error::Tls(e) => write!(f, "TLS handshake: {e}"),
            Error::Closed => {
                f.write_str("the connection was closed after the request, without an answer")
            }
            Error::Http(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for Error {}

/// An error and its causes on one line ("error reading a body: unexpected EOF").
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A client for one URL; cheap to clone (the idle connections are shared).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    /// Where the TCP connection goes: the upstream, or the proxy.
    host: String,
    port: u16,
    /// `https` through a proxy: the tunnel, made per connection.
    tunnel: Option<Tunnel<TcpConnector>>,
    /// `http` through a proxy: `host`/`port` are the proxy's.
    forward: bool,
    /// The upstream's own address, for CONNECT.
    dest: Uri,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    /// Origin-form, or absolute-form through an `http` proxy.
    target: Uri,
    /// Host and the fixed headers, secrets included (marked sensitive): never printed.
    headers: HeaderMap,
    connect_timeout: Duration,
    builder: Builder,
    idle: Mutex<Vec<Idle>>,
}

struct Idle {
    conn: Conn,
    since: Instant,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("http1::Client")
            .field("host", &self.inner.host)
            .field("port", &self.inner.port)
            .field("tls", &self.inner.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client that posts to `url` with `headers` on every request, trusting Mozilla's
    /// roots for `https`, through `proxy` when one applies to `url`.
    pub fn new(
        url: &url::Url,
        headers: &HeaderMap,
        connect_timeout: Duration,
        proxy: Option<Intercept>,
    ) -> anyhow::Result<Self> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        Self::with_roots(url, headers, connect_timeout, proxy, roots)
    }

    /// As [`Client::new`], trusting `roots` instead (tests bring their own authority).
    pub fn with_roots(
        url: &url::Url,
        headers: &HeaderMap,
        connect_timeout: Duration,
        proxy: Option<Intercept>,
        roots: rustls::RootCertStore,
    ) -> anyhow::Result<Self> {
        let host = match url.host() {
            Some(url::Host::Domain(d)) => d.to_owned(),
            Some(url::Host::Ipv4(a)) => a.to_string(),
            Some(url::Host::Ipv6(a)) => a.to_string(),
            None => anyhow::bail!("the URL has no host"),
        };
        let port = url
            .port_or_known_default()
            .ok_or_else(|| anyhow::anyhow!("the URL has no port"))?;
        let https = match url.scheme() {
            "http" => false,
            "https" => true,
            other => anyhow::bail!("unsupported scheme {other}"),
        };
        let tls = if https {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let mut config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()?
                .with_root_certificates(roots)
                .with_no_client_auth();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            let name = ServerName::try_from(host.clone())?;
            Some((TlsConnector::from(Arc::new(config)), name))
        } else {
            None
        };
        let authority = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_owned(),
        };
        let mut path = url.path().to_owned();
        if let Some(q) = url.query() {
            path.push('?');
            path.push_str(q);
        }
        let dest: Uri = format!("{}://{authority}/", url.scheme()).parse()?;
        let mut fixed = HeaderMap::with_capacity(headers.len() + 3);
        fixed.insert(header::HOST, HeaderValue::from_str(&authority)?);
        fixed.extend(headers.clone());

        let mut target: Uri = path.parse()?;
        let (mut conn_host, mut conn_port, mut tunnel, mut forward) = (host, port, None, false);
        if let Some(p) = proxy {
            let (ph, pp) = proxy_address(p.uri())?;
            if https {
                // CONNECT, then TLS with the upstream itself: the proxy sees only the host.
                let mut t = Tunnel::new(p.uri().clone(), TcpConnector);
                if let Some(auth) = p.basic_auth() {
                    t = t.with_auth(auth.clone());
                }
                tunnel = Some(t);
            } else {
                // An `http` upstream is asked for through the proxy in absolute form, as
                // curl and reqwest do (proxies commonly refuse CONNECT to ports but 443).
                target = format!("http://{authority}{path}").parse()?;
                if let Some(auth) = p.basic_auth() {
                    fixed.insert(header::PROXY_AUTHORIZATION, auth.clone());
                }
                (conn_host, conn_port, forward) = (ph, pp, true);
            }
        }
        let mut builder = Builder::new();
        builder.read_buf_exact_size(Some(READ_SIZE));
        Ok(Self {
            inner: Arc::new(Inner {
                host: conn_host,
                port: conn_port,
                tunnel,
                forward,
                dest,
                tls,
                target,
                headers: fixed,
                connect_timeout,
                builder,
                idle: Mutex::new(Vec::new()),
            }),
        })
    }

    /// Sends `body` and waits for the answer's head. The request goes to the most recently
    /// used idle connection that is still open, else to a new one. It is offered to another
    /// connection only when hyper gives it back unsent; see the module doc.
    pub async fn post(&self, accept: &'static str, body: Vec<u8>) -> Result<Response, Error> {
        let mut req = self.inner.request(accept, body);
        while let Some(conn) = self.inner.checkout() {
            match exchange(conn, req, &self.inner).await {
                Ok(r) => return Ok(r),
                Err(Failed::NotSent(back)) => req = *back,
                Err(Failed::Error(e)) => return Err(e),
            }
        }
        let conn = self.inner.connect().await?;
        match exchange(conn, req, &self.inner).await {
            Ok(r) => Ok(r),
            Err(Failed::NotSent(_)) => Err(Error::Http(
                "the new connection closed before the request was sent".into(),
            )),
            Err(Failed::Error(e)) => Err(e),
        }
    }

    /// Idle connections held now.
    #[cfg(test)]
    fn idle_connections(&self) -> usize {
        lock(&self.inner.idle).len()
    }
}

/// The proxy's host and port (credentials are already out of the URI).
fn proxy_address(uri: &Uri) -> anyhow::Result<(String, u16)> {
    let host = uri
        .host()
        .ok_or_else(|| anyhow::anyhow!("the proxy URL has no host"))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
        Some("https") => 443,
        _ => 80,
    });
    Ok((host, port))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

type Req = Request<Full<Bytes>>;

impl Inner {
    fn request(&self, accept: &'static str, body: Vec<u8>) -> Req {
        let mut req = Request::new(Full::new(Bytes::from(body)));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = self.target.clone();
        let headers = req.headers_mut();
        headers.clone_from(&self.headers);
        headers.insert(header::ACCEPT, HeaderValue::from_static(accept));
        req
    }

    /// The most recently used idle connection that is still open and ready.
    fn checkout(&self) -> Option<Conn> {
        loop {
            let idle = lock(&self.idle).pop()?;
            let mut conn = idle.conn;
            if idle.since.elapsed() < IDLE_FOR && conn.poll_idle() {
                return Some(conn);
            }
        }
    }

    fn put_back(&self, mut conn: Conn) {
        // The connection was polled just now, as the body ended: when hyper already wants the
        // next request, another poll would only cost a read that finds nothing
        // (`checkout` polls again anyway).
        if !conn.send.is_ready() && !conn.poll_idle() {
            return;
        }
        let mut idle = lock(&self.idle);
        if idle.len() < MAX_IDLE {
            idle.push(Idle {
                conn,
                since: Instant::now(),
            });
        }
    }

    async fn connect(&self) -> Result<Conn, Error> {
        let open = async {
            let tcp = match &self.tunnel {
                None => tcp_connect(&self.host, self.port).await.map_err(|e| {
                    if self.forward {
                        Error::Proxy(format!("connect: {e}"))
                    } else {
                        Error::Connect(e)
                    }
                })?,
                Some(tunnel) => {
                    let mut tunnel = tunnel.clone();
                    tower::Service::call(&mut tunnel, self.dest.clone())
                        .await
                        .map_err(|e| {
                            // hyper-util's error type is private; its text says which it is.
                            let text = chain(&e);
                            if text.contains("proxy authorization required") {
                                Error::ProxyAuth
                            } else {
                                Error::Proxy(text)
                            }
                        })?
                        .into_inner()
                }
            };
            let io = match &self.tls {
                None => Io::Plain(tcp),
                Some((connector, name)) => Io::Tls(Box::new(
                    connector
                        .connect(name.clone(), tcp)
                        .await
                        .map_err(Error::Tls)?,
                )),
            };
            let (send, conn) = self
                .builder
                .handshake(TokioIo::new(io))
                .await
                .map_err(|e| Error::Http(chain(&e)))?;
            Ok(Conn { send, conn })
        };
        tokio::time::timeout(self.connect_timeout, open)
            .await
            .map_err(|_| Error::ConnectTimeout(self.connect_timeout))?
    }
}

async fn tcp_connect(host: &str, port: u16) -> io::Result<TcpStream> {
    let tcp = TcpStream::connect((host, port)).await?;
    tcp.set_nodelay(true)?;
    Ok(tcp)
}

/// Opens the TCP connection to the proxy for hyper-util's CONNECT [`Tunnel`].
#[derive(Debug, Clone, Copy)]
struct TcpConnector;

impl tower::Service<Uri> for TcpConnector {
    type Response = TokioIo<TcpStream>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, proxy: Uri) -> Self::Future {
        Box::pin(async move {
            let (host, port) = proxy_address(&proxy).map_err(io::Error::other)?;
            tcp_connect(&host, port).await.map(TokioIo::new)
        })
    }
}

/// One connection: hyper's two halves, both owned by whoever uses it now.
struct Conn {
    send: SendRequest<Full<Bytes>>,
    /// Reads and writes the socket; makes progress only while polled (by the request's task).
    conn: Connection<TokioIo<Io>, Full<Bytes>>,
}

impl Conn {
    /// Lets the connection notice a close (or an unasked answer) while idle; whether it can
    /// take a request now. A connection that is over is dropped by the caller.
    fn poll_idle(&mut self) -> bool {
        match (&mut self.conn).now_or_never() {
            Some(_) => false,
            None => self.send.is_ready(),
        }
    }
}

enum Failed {
    /// hyper gave the request back without writing any of it.
    NotSent(Box<Req>),
    Error(Error),
}

/// Sends `req` on `conn`, polling the connection in this task until the answer's head.
async fn exchange(mut conn: Conn, req: Req, client: &Arc<Inner>) -> Result<Response, Failed> {
    let mut answer = std::pin::pin!(conn.send.try_send_request(req));
    let mut over = false;
    let head = poll_fn(|cx| {
        if !over && Pin::new(&mut conn.conn).poll(cx).is_ready() {
            over = true;
        }
        answer.as_mut().poll(cx)
    })
    .await;
    match head {
        Ok(resp) => {
            let (parts, body) = resp.into_parts();
            Ok(Response {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body: Body {
                    open: Some(Open {
                        body,
                        conn,
                        over,
                        client: client.clone(),
                    }),
                },
            })
        }
        Err(mut e) => match e.take_message() {
            Some(req) => Err(Failed::NotSent(Box::new(req))),
            None if e.error().is_incomplete_message() => Err(Failed::Error(Error::Closed)),
            None => Err(Failed::Error(Error::Http(chain(e.error())))),
        },
    }
}

/// An answer whose head has arrived; its body is read on demand.
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Body,
}

/// The body of an answer. Read to its end, its connection goes back to the idle list;
/// dropped before that, the connection is closed.
pub struct Body {
    open: Option<Open>,
}

struct Open {
    body: Incoming,
    conn: Conn,
    /// The connection future has finished (closed): not polled again, not kept.
    over: bool,
    client: Arc<Inner>,
}

impl Body {
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<Bytes>>> {
        let Some(open) = self.open.as_mut() else {
            return Poll::Ready(Ok(None));
        };
        if !open.over && Pin::new(&mut open.conn.conn).poll(cx).is_ready() {
            open.over = true;
        }
        loop {
            match Pin::new(&mut open.body).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) if !data.is_empty() => return Poll::Ready(Ok(Some(data))),
                    _ => continue,
                },
                Poll::Ready(Some(Err(e))) => {
                    self.open = None;
                    return Poll::Ready(Err(io::Error::other(chain(&e))));
                }
                Poll::Ready(None) => {
                    let open = self.open.take().expect("checked above");
                    if !open.over {
                        open.client.put_back(open.conn);
                    }
                    return Poll::Ready(Ok(None));
                }
            }
        }
    }

    /// The next piece of the body, or `None` at its end.
    pub async fn chunk(&mut self) -> io::Result<Option<Bytes>> {
        poll_fn(|cx| self.poll_chunk(cx)).await
    }

    /// The body as a stream of pieces.
    pub fn into_stream(self) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
        let mut body = self;
        futures::stream::poll_fn(move |cx| body.poll_chunk(cx).map(Result::transpose))
    }

    /// Reads up to `limit` bytes of the body (an error page, say), then stops.
    pub async fn read_limited(mut self, limit: usize) -> Bytes {
        let mut out = BytesMut::new();
        while out.len() < limit {
            match self.chunk().await {
                Ok(Some(b)) => out.extend_from_slice(&b[..b.len().min(limit - out.len())]),
                _ => break,
            }
        }
        out.freeze()
    }
}

/// The socket, plain or TLS.
enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Io::Tls(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Io::Plain(s) => s.is_write_vectored(),
            Io::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    async fn read_request(s: &mut (impl AsyncRead + Unpin)) -> Option<Vec<u8>> {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&got[..end]).to_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .map_or(0, |v| v.trim().parse().unwrap());
                if got.len() >= end + 4 + len {
                    return Some(got);
                }
            }
            let n = s.read(&mut buf).await.ok()?;
            if n == 0 {
                return None;
            }
            got.extend_from_slice(&buf[..n]);
        }
    }

    async fn text(body: Body) -> io::Result<String> {
        let mut s = std::pin::pin!(body.into_stream());
        let mut out = String::new();
        while let Some(piece) = futures::StreamExt::next(&mut s).await {
            out.push_str(std::str::from_utf8(&piece?).unwrap());
        }
        Ok(out)
    }

    async fn post_error(c: &Client) -> Error {
        match c.post("application/json", b"{}".to_vec()).await {
            Ok(r) => panic!("expected an error, got {}", r.status),
            Err(e) => e,
        }
    }

    const CHUNKED: &[u8] =
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";

    #[tokio::test]
    async fn a_body_cut_short_is_an_error_and_its_connection_is_not_kept() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = url::Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            read_request(&mut s).await;
            s.write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n")
                .await
                .unwrap();
        });
        let c = Client::new(&url, &HeaderMap::new(), Duration::from_secs(5), None).unwrap();
        let r = c.post("application/json", b"{}".to_vec()).await.unwrap();
        assert!(text(r.body).await.is_err());
        assert_eq!(c.idle_connections(), 0);
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_connect_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = url::Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        drop(listener);
        let c = Client::new(&url, &HeaderMap::new(), Duration::from_secs(5), None).unwrap();
        let err = post_error(&c).await;
        assert!(matches!(err, Error::Connect(_)), "{err:?}");
    }

    /// A TLS upstream for `localhost` signed by a throwaway authority: its acceptor, the
    /// authority's roots, and how many requests it read.
    async fn tls_upstream() -> (u16, rustls::RootCertStore, Arc<AtomicUsize>) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&leaf_key, &issuer)
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server_config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(AtomicUsize::new(0));
        let count = requests.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (acceptor, count) = (acceptor.clone(), count.clone());
                tokio::spawn(async move {
                    let Ok(mut s) = acceptor.accept(tcp).await else {
                        return;
                    };
                    while read_request(&mut s).await.is_some() {
                        count.fetch_add(1, Ordering::SeqCst);
                        s.write_all(CHUNKED).await.unwrap();
                        s.flush().await.unwrap();
                    }
                });
            }
        });
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.der().clone()).unwrap();
        (port, roots, requests)
    }

    /// A CONNECT-only proxy: counts tunnels and remembers their request heads.
    async fn connect_proxy() -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut c, _)) = listener.accept().await else {
                    return;
                };
                let log = log.clone();
                tokio::spawn(async move {
                    let head = String::from_utf8(read_request(&mut c).await.unwrap()).unwrap();
                    log.lock().unwrap().push(head.clone());
                    let target = head
                        .split(' ')
                        .nth(1)
                        .unwrap()
                        .replace("localhost", "127.0.0.1");
                    assert!(head.starts_with("CONNECT "), "{head}");
                    let mut up = tokio::net::TcpStream::connect(target).await.unwrap();
                    c.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                        .await
                        .unwrap();
                    let _ = tokio::io::copy_bidirectional(&mut c, &mut up).await;
                });
            }
        });
        (url, seen)
    }

    #[tokio::test]
    async fn https_upstreams_are_verified_and_reached_through_a_connect_tunnel() {
        let (port, roots, requests) = tls_upstream().await;
        let url =
            url::Url::parse(&format!("https://localhost:{port}/api/chat/completions")).unwrap();

        // Directly, with the test authority: two requests, one kept-alive connection.
        let c = Client::with_roots(
            &url,
            &HeaderMap::new(),
            Duration::from_secs(5),
            None,
            roots.clone(),
        )
        .unwrap();
        for _ in 0..2 {
            let r = c.post("application/json", b"{}".to_vec()).await.unwrap();
            assert_eq!(text(r.body).await.unwrap(), "abcde");
        }
        assert_eq!(c.idle_connections(), 1, "the TLS connection is kept alive");

        // Through HTTPS_PROXY (with credentials): a CONNECT tunnel, TLS with the upstream.
        let (proxy, seen) = connect_proxy().await;
        let proxies = crate::config::OutboundProxy {
            https: Some(proxy.replace("http://", "http://bob:tunnel-pw@").into()),
            http: None,
            no_proxy: "example.org".into(),
        };
        let intercept = proxies.intercept(url.as_str());
        assert!(intercept.is_some());
        let c = Client::with_roots(
            &url,
            &HeaderMap::new(),
            Duration::from_secs(5),
            intercept,
            roots,
        )
        .unwrap();
        for _ in 0..2 {
            let r = c.post("application/json", b"{}".to_vec()).await.unwrap();
            assert_eq!(text(r.body).await.unwrap(), "abcde");
        }
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 1, "one tunnel, kept alive: {seen:?}");
        assert!(seen[0].starts_with(&format!("CONNECT localhost:{port} HTTP/1.1\r\n")));
        assert!(
            seen[0].to_ascii_lowercase().contains(
                "proxy-authorization: basic ym9iOnR1bm5lbC1wdw==\r\n"
                    .to_ascii_lowercase()
                    .as_str()
            ),
            "{}",
            seen[0]
        );
        assert_eq!(requests.load(Ordering::SeqCst), 4);

        // NO_PROXY naming the host: no proxy at all.
        let direct = crate::config::OutboundProxy {
            no_proxy: "example.org, localhost".into(),
            ..proxies
        };
        assert!(direct.intercept(url.as_str()).is_none());

        // Mozilla's roots do not include the test authority: the handshake is refused.
        let c = Client::new(&url, &HeaderMap::new(), Duration::from_secs(5), None).unwrap();
        let err = post_error(&c).await;
        assert!(matches!(err, Error::Tls(_)), "{err:?}");
    }
}
