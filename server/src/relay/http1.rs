//! The HTTP/1.1 client for the one upstream classchat talks to, on the path that carries the
//! Open WebUI key and the service token.
//!
//! Why hand-written framing and not hyper's (`hyper::client::conn::http1`, used here for a
//! while): measured in one `scripts/bench` run each way (release
//! builds, quiet machine, 2026-11-30, target/bench/20261130T211037Z.json and
//! 20261130T211250Z.json), hyper's client cost 61/59 µs of relay CPU per non-stream request
//! at c16/c64 against this framing's 52/50 (+17 %/+18 %; +12 %/+18 % with message budgets
//! off), 452 against 394 µs per 20-chunk stream, and 28.9 against 18.4 kB per open stream.
//! After the change, quiet machine: this framing 47/43 µs against hyper's 59/52, 359 against
//! 390 µs per stream, 18.4 against 28.8 kB (20261130T213211Z); and 44/43 µs against the
//! client before hyper (commit 70ea879) at 45/45 (20261130T213520Z).
//! The issue's bar was at most +10 % CPU and 32 kB, so the audited parts are used where they
//! are cheap: heads are parsed by `httparse`, TLS is rustls (Mozilla's roots, ALPN
//! `http/1.1`), proxy matching (`NO_PROXY`) and the CONNECT tunnel are hyper-util's. What is
//! ours is the framing: one `POST` with a fixed set of headers and a `Content-Length` body,
//! answers framed by `Content-Length`, chunked transfer coding (extensions and trailers
//! skipped) or the end of the connection, keep-alive in a small idle list. The request's own
//! task writes and reads the socket; an idle connection is a socket and a small buffer.
//! Through an outbound proxy: a CONNECT tunnel for `https`, absolute-form requests for
//! `http`, as curl and reqwest do.
//!
//! A request is sent at most once. It goes to another connection only when not one byte of
//! it was written (a kept-alive connection the server had closed refused the first write);
//! once any byte is written, a connection that closes without an answer is
//! [`Error::Closed`], since Open WebUI may be running (and billing) the completion already.
//! Over TLS, tokio-rustls reports a failed socket write as an error for the whole call even
//! when some records went out before it; the error means the request's last record did not,
//! so the server cannot hold the complete request and sending it elsewhere stays safe.
//! Before reuse an idle connection is checked for a close (or unasked data) and dropped, so
//! a server's keep-alive close is normally noticed before the write.
//!
//! Where framing could be read two ways, the answer is refused or its connection is not
//! reused, so no byte the server sent can be taken for the next request's answer: both
//! `Transfer-Encoding` and `Content-Length` (read as chunked, then closed), a sign in a
//! length or chunk size (`+5` parses as 5 in Rust, not in every proxy), bytes past the
//! answer in the buffer or still inside TLS, more than [`MAX_INTERIM`] `1xx` heads, or a
//! `101`. The head parser and the body decoders are property-tested with random and
//! malformed input (`fuzz` in the tests; `scripts/test` runs more cases with a fixed seed).

use std::fmt;
use std::future::{Future, poll_fn};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderName, HeaderValue, Uri, header};
use bytes::{Buf, Bytes, BytesMut};
use futures::Stream;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::proxy::matcher::Intercept;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::basics::{error_chain, lock};

/// A response head larger than this is refused (Cloudflare's own limit is 32 KB).
const MAX_HEAD: usize = 64 * 1024;
/// What a connection reads into at a time; SSE frames are far smaller.
const READ_SIZE: usize = 4096;
/// An idle connection's buffer above this size is replaced by a fresh small one.
const KEEP_BUF: usize = 16 * 1024;
/// Idle connections kept at most.
const MAX_IDLE: usize = 512;
/// How long an idle connection is kept (the server usually closes it sooner; see `checkout`).
const IDLE_FOR: Duration = Duration::from_secs(60);
const MAX_HEADERS: usize = 100;
/// Interim (`1xx`) heads skipped before an answer at most: a server that sends them without
/// end would otherwise hold the request until its timeout.
const MAX_INTERIM: usize = 8;

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
    /// Any other failure of the exchange: the socket's error, or a malformed answer.
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

fn malformed(why: impl fmt::Display) -> Error {
    Error::Http(format!("malformed answer: {why}"))
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
    /// Request line (origin-form, or absolute-form through an `http` proxy), Host and the
    /// fixed headers, secrets included: never printed.
    head: Vec<u8>,
    connect_timeout: Duration,
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
        let mut fixed = HeaderMap::with_capacity(headers.len() + 2);
        fixed.insert(header::HOST, HeaderValue::from_str(&authority)?);
        fixed.extend(headers.clone());

        // Checked as a URI so that nothing odd reaches the request line.
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
        let mut head = format!("POST {target} HTTP/1.1\r\n").into_bytes();
        for (name, value) in &fixed {
            head.extend_from_slice(name.as_str().as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(value.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        Ok(Self {
            inner: Arc::new(Inner {
                host: conn_host,
                port: conn_port,
                tunnel,
                forward,
                dest,
                tls,
                head,
                connect_timeout,
                idle: Mutex::new(Vec::new()),
            }),
        })
    }

    /// Sends `body` and waits for the answer's head. The request goes to the most recently
    /// used idle connection that is still open, else to a new one. It is offered to another
    /// connection only when not one byte of it was written; see the module doc.
    pub async fn post(&self, accept: &'static str, body: Vec<u8>) -> Result<Response, Error> {
        let msg = self.inner.message(accept, &body);
        while let Some(mut conn) = self.inner.checkout() {
            match exchange(&mut conn, &msg).await {
                Ok(head) => return Ok(Response::new(head, conn, &self.inner)),
                Err(Failed::NotSent(_)) => {}
                Err(Failed::Error(e)) => return Err(e),
            }
        }
        let mut conn = self.inner.connect().await?;
        match exchange(&mut conn, &msg).await {
            Ok(head) => Ok(Response::new(head, conn, &self.inner)),
            Err(Failed::NotSent(e)) => Err(Error::Http(format!(
                "the new connection failed before the request was sent: {e}"
            ))),
            Err(Failed::Error(e)) => Err(e),
        }
    }

    /// Idle connections held now.
    #[cfg(test)]
    fn idle_connections(&self) -> usize {
        lock(&self.inner.idle).len()
    }
}

/// The warning for an `http://` upstream that is not on this machine: the API key and the
/// service token cross the network in clear text. Names the host only (a URL may carry
/// credentials). `None` for `https://`, loopback addresses and `localhost`.
pub fn clear_text_warning(url: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    if url.scheme() != "http" {
        return None;
    }
    let local = match url.host()? {
        url::Host::Ipv4(a) => a.is_loopback(),
        url::Host::Ipv6(a) => {
            a.is_loopback() || a.to_ipv4_mapped().is_some_and(|v| v.is_loopback())
        }
        // RFC 6761: localhost and its subdomains never leave the machine.
        url::Host::Domain(d) => d == "localhost" || d.ends_with(".localhost"),
    };
    (!local).then(|| {
        format!(
            "OPEN_WEBUI_URL is http:// to {}, which is not this machine: the API key and the \
             Cloudflare Access service token travel unencrypted on every request; use \
             https://, unless the network between the two is yours alone (such as a compose \
             network on one host)",
            url.host_str().unwrap_or_default()
        )
    })
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

impl Inner {
    fn message(&self, accept: &str, body: &[u8]) -> Vec<u8> {
        let mut msg = Vec::with_capacity(self.head.len() + 128 + body.len());
        msg.extend_from_slice(&self.head);
        msg.extend_from_slice(b"accept: ");
        msg.extend_from_slice(accept.as_bytes());
        msg.extend_from_slice(b"\r\ncontent-length: ");
        msg.extend_from_slice(body.len().to_string().as_bytes());
        msg.extend_from_slice(b"\r\n\r\n");
        msg.extend_from_slice(body);
        msg
    }

    /// The most recently used idle connection that is still open.
    fn checkout(&self) -> Option<Conn> {
        loop {
            let idle = lock(&self.idle).pop()?;
            if idle.since.elapsed() < IDLE_FOR && !idle.conn.io.closed_by_peer() {
                return Some(idle.conn);
            }
        }
    }

    fn put_back(&self, mut conn: Conn) {
        if conn.buf.capacity() > KEEP_BUF {
            conn.buf = BytesMut::with_capacity(READ_SIZE);
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
                            let text = error_chain(&e);
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
            Ok(Conn {
                io,
                buf: BytesMut::with_capacity(READ_SIZE),
            })
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

/// One connection: the socket and what was read from it and not yet handed out.
struct Conn {
    io: Io,
    buf: BytesMut,
}

impl Conn {
    /// Reads more; keeps the buffer small unless a long head needs more.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.buf.capacity() - self.buf.len() < READ_SIZE / 4 {
            self.buf.reserve(READ_SIZE);
        }
        tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut self.buf)
    }

    /// Writes all of `msg`; on failure, also how much of it was written.
    async fn send(&mut self, msg: &[u8]) -> Result<(), (usize, io::Error)> {
        let mut sent = 0;
        while sent < msg.len() {
            match self.io.write(&msg[sent..]).await {
                Ok(0) => return Err((sent, io::ErrorKind::WriteZero.into())),
                Ok(n) => sent += n,
                Err(e) => return Err((sent, e)),
            }
        }
        self.io.flush().await.map_err(|e| (sent, e))
    }
}

/// An answer's status line and headers.
#[derive(Debug)]
struct Head {
    status: u16,
    headers: HeaderMap,
    framing: Framing,
    keep_alive: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(u64),
    Chunked,
    Eof,
}

enum Failed {
    /// Not one byte of the request was written: it may go to another connection.
    NotSent(io::Error),
    Error(Error),
}

/// Writes the request and reads the answer's head (skipping `1xx` heads).
async fn exchange(conn: &mut Conn, msg: &[u8]) -> Result<Head, Failed> {
    match conn.send(msg).await {
        Ok(()) => {}
        Err((0, e)) => return Err(Failed::NotSent(e)),
        Err((_, e)) if gone(&e) => return Err(Failed::Error(Error::Closed)),
        Err((_, e)) => return Err(Failed::Error(Error::Http(e.to_string()))),
    }
    read_head(conn).await.map_err(Failed::Error)
}

async fn read_head(conn: &mut Conn) -> Result<Head, Error> {
    let mut interim = 0;
    loop {
        if !conn.buf.is_empty() {
            match parse_head(&conn.buf)? {
                Some((n, head)) => {
                    conn.buf.advance(n);
                    if head.status == 101 {
                        // Never asked for: what follows is not HTTP/1.1.
                        return Err(malformed("101 Switching Protocols"));
                    }
                    if (100..200).contains(&head.status) {
                        interim += 1;
                        if interim > MAX_INTERIM {
                            return Err(malformed(format_args!(
                                "more than {MAX_INTERIM} interim (1xx) heads"
                            )));
                        }
                        continue;
                    }
                    return Ok(head);
                }
                None if conn.buf.len() > MAX_HEAD => {
                    return Err(malformed(format_args!(
                        "response head over {MAX_HEAD} bytes"
                    )));
                }
                None => {}
            }
        }
        let before = conn.buf.len();
        match poll_fn(|cx| conn.poll_fill(cx)).await {
            Ok(0) if before == 0 => return Err(Error::Closed),
            Ok(0) => return Err(malformed("the response head was cut off")),
            Ok(_) => {}
            Err(e) if before == 0 && gone(&e) => return Err(Error::Closed),
            Err(e) => return Err(Error::Http(e.to_string())),
        }
    }
}

fn gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::UnexpectedEof
    )
}

/// Parses a complete head at the start of `buf`: its length and what it says.
///
/// Framing follows RFC 9112 §6.3. An answer with both `Transfer-Encoding` and
/// `Content-Length` is read by its transfer coding and its connection is closed after it:
/// the two disagreeing is how responses are smuggled, and whatever follows it on the
/// connection cannot be trusted to start the next answer.
fn parse_head(buf: &[u8]) -> Result<Option<(usize, Head)>, Error> {
    let mut raw = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut raw);
    let n = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(malformed(e)),
    };
    let status = resp.code.unwrap_or(0);
    if !(100..=999).contains(&status) {
        return Err(malformed(format_args!("status {status}")));
    }
    let mut headers = HeaderMap::with_capacity(resp.headers.len());
    let mut length = None;
    let mut coded = false;
    let mut chunked = false;
    let mut close = resp.version != Some(1);
    for h in resp.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| malformed(format_args!("bad header name {:?}", h.name)))?;
        let value = HeaderValue::from_bytes(h.value)
            .map_err(|_| malformed(format_args!("bad value for header {name}")))?;
        if name == header::CONTENT_LENGTH {
            let v = decimal(h.value.trim_ascii()).ok_or_else(|| malformed("bad content-length"))?;
            if length.is_some_and(|l| l != v) {
                return Err(malformed("conflicting content-length headers"));
            }
            length = Some(v);
        } else if name == header::TRANSFER_ENCODING {
            // The last coding decides; only chunked is ever sent to us (we ask for no gzip).
            coded = true;
            chunked = h
                .value
                .rsplit(|b| *b == b',')
                .next()
                .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if name == header::CONNECTION {
            close |= h
                .value
                .split(|b| *b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"));
        }
        headers.append(name, value);
    }
    if coded && length.is_some() {
        close = true;
    }
    let framing = if status == 204 || status == 304 || (100..200).contains(&status) {
        Framing::Length(0)
    } else if chunked {
        Framing::Chunked
    } else if coded {
        // A coding other than chunked last: the body ends with the connection.
        Framing::Eof
    } else if let Some(l) = length {
        Framing::Length(l)
    } else {
        Framing::Eof
    };
    Ok(Some((
        n,
        Head {
            status,
            headers,
            framing,
            keep_alive: !close && framing != Framing::Eof,
        },
    )))
}

/// `1*DIGIT` as a number. `str::parse` would also take a leading `+`, which no sender
/// writes and which another parser on the way may read differently.
fn decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// `1*HEXDIG` as a number (at most 15 digits, so it fits); no sign, no spaces.
fn hex(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 15 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
}

/// An answer whose head has arrived; its body is read on demand.
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Body,
}

impl Response {
    fn new(head: Head, conn: Conn, inner: &Arc<Inner>) -> Self {
        let state = match head.framing {
            Framing::Length(l) => Decode::Length(l),
            Framing::Chunked => Decode::ChunkSize,
            Framing::Eof => Decode::Eof,
        };
        Self {
            status: head.status,
            headers: head.headers,
            body: Body {
                open: Some(Open {
                    conn,
                    state,
                    keep_alive: head.keep_alive,
                    client: inner.clone(),
                }),
            },
        }
    }
}

/// The body of an answer. Read to its end, its connection goes back to the idle list;
/// dropped before that, the connection is closed.
pub struct Body {
    open: Option<Open>,
}

struct Open {
    conn: Conn,
    state: Decode,
    keep_alive: bool,
    client: Arc<Inner>,
}

#[derive(Debug, Clone, Copy)]
enum Decode {
    Length(u64),
    Eof,
    ChunkSize,
    ChunkData(u64),
    ChunkEnd,
    Trailers,
}

enum Step {
    Data(Bytes),
    More,
    End,
}

impl Body {
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<Bytes>>> {
        loop {
            let Some(open) = self.open.as_mut() else {
                return Poll::Ready(Ok(None));
            };
            let step = match decode(&mut open.state, &mut open.conn.buf) {
                Ok(s) => s,
                Err(e) => {
                    self.open = None;
                    return Poll::Ready(Err(e));
                }
            };
            match step {
                Step::Data(b) => return Poll::Ready(Ok(Some(b))),
                Step::End => {
                    let mut open = self.open.take().expect("checked above");
                    // Anything already read past the answer, here or decrypted inside TLS,
                    // is something the server sent unasked: it would pass for the next
                    // request's answer, so the connection goes.
                    if open.keep_alive
                        && open.conn.buf.is_empty()
                        && !open.conn.io.unread_plaintext()
                    {
                        open.client.put_back(open.conn);
                    }
                    return Poll::Ready(Ok(None));
                }
                Step::More => match ready!(open.conn.poll_fill(cx)) {
                    Ok(0) if matches!(open.state, Decode::Eof) => {
                        self.open = None;
                        return Poll::Ready(Ok(None));
                    }
                    Ok(0) => {
                        self.open = None;
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the connection closed before the body ended",
                        )));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        self.open = None;
                        return Poll::Ready(Err(e));
                    }
                },
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

fn bad(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.to_owned())
}

/// One decoding step over what has been read so far.
fn decode(state: &mut Decode, buf: &mut BytesMut) -> io::Result<Step> {
    loop {
        match *state {
            Decode::Length(0) => return Ok(Step::End),
            Decode::Length(rem) | Decode::ChunkData(rem) => {
                if buf.is_empty() {
                    return Ok(Step::More);
                }
                let n = rem.min(buf.len() as u64);
                let left = rem - n;
                *state = match *state {
                    Decode::Length(_) => Decode::Length(left),
                    _ if left == 0 => Decode::ChunkEnd,
                    _ => Decode::ChunkData(left),
                };
                return Ok(Step::Data(buf.split_to(n as usize).freeze()));
            }
            Decode::Eof => {
                if buf.is_empty() {
                    return Ok(Step::More);
                }
                return Ok(Step::Data(buf.split().freeze()));
            }
            Decode::ChunkSize => {
                let Some(end) = find_crlf(buf) else {
                    if buf.len() > 1024 {
                        return Err(bad("chunk size line too long"));
                    }
                    return Ok(Step::More);
                };
                let line = &buf[..end];
                // chunk-size [ BWS ";" extension ]: spaces or tabs may end the digits only.
                let digits = line.split(|b| *b == b';').next().unwrap_or_default();
                let last = digits
                    .iter()
                    .rposition(|b| *b != b' ' && *b != b'\t')
                    .map_or(0, |i| i + 1);
                let size = hex(&digits[..last]).ok_or_else(|| bad("bad chunk size"))?;
                buf.advance(end + 2);
                *state = if size == 0 {
                    Decode::Trailers
                } else {
                    Decode::ChunkData(size)
                };
            }
            Decode::ChunkEnd => {
                if buf.len() < 2 {
                    return Ok(Step::More);
                }
                if &buf[..2] != b"\r\n" {
                    return Err(bad("chunk not followed by CRLF"));
                }
                buf.advance(2);
                *state = Decode::ChunkSize;
            }
            Decode::Trailers => {
                let Some(end) = find_crlf(buf) else {
                    if buf.len() > MAX_HEAD {
                        return Err(bad("trailers too long"));
                    }
                    return Ok(Step::More);
                };
                buf.advance(end + 2);
                if end == 0 {
                    *state = Decode::Length(0);
                    return Ok(Step::End);
                }
            }
        }
    }
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\r\n")
}

/// The socket, plain or TLS.
enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Io {
    /// Whether TLS holds decrypted bytes not yet read (or the server's close_notify).
    /// Nothing reads an idle connection, so what is found here at the end of an answer
    /// is all there will be until the next request.
    fn unread_plaintext(&mut self) -> bool {
        match self {
            Io::Plain(_) => false,
            Io::Tls(s) => s.get_mut().1.process_new_packets().map_or(true, |st| {
                st.plaintext_bytes_to_read() > 0 || st.peer_has_closed()
            }),
        }
    }

    /// Whether the idle socket has been closed (or, unasked, spoken) by the server. A TLS
    /// record read raw here spoils the connection, but one that speaks now is dropped anyway.
    fn closed_by_peer(&self) -> bool {
        let tcp = match self {
            Io::Plain(s) => s,
            Io::Tls(s) => s.get_ref().0,
        };
        !matches!(tcp.try_read(&mut [0u8; 1]), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }
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

    /// A TLS upstream for `localhost` signed by a throwaway authority: its port, the
    /// authority's roots, and how many requests it read.
    async fn tls_upstream() -> (u16, rustls::RootCertStore, Arc<AtomicUsize>) {
        let (acceptor, roots) = tls_for_localhost();
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
        (port, roots, requests)
    }

    /// A TLS acceptor for `localhost` signed by a throwaway authority, and that authority.
    fn tls_for_localhost() -> (tokio_rustls::TlsAcceptor, rustls::RootCertStore) {
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
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.der().clone()).unwrap();
        (acceptor, roots)
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

    fn decode_all(framing: Decode, wire: &[&[u8]]) -> io::Result<(Vec<u8>, bool)> {
        let mut state = framing;
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut pieces = wire.iter();
        loop {
            match decode(&mut state, &mut buf)? {
                Step::Data(b) => out.extend_from_slice(&b),
                Step::End => return Ok((out, buf.is_empty())),
                Step::More => match pieces.next() {
                    Some(p) => buf.extend_from_slice(p),
                    None => return Ok((out, false)),
                },
            }
        }
    }

    #[test]
    fn chunked_bodies_decode_across_any_split() {
        let wire = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nx-trailer: 1\r\n\r\n";
        for cut in 0..wire.len() {
            let (out, clean) =
                decode_all(Decode::ChunkSize, &[&wire[..cut], &wire[cut..]]).unwrap();
            assert_eq!(out, b"hello world", "split at {cut}");
            assert!(clean, "split at {cut}");
        }
        let bytewise: Vec<&[u8]> = wire.chunks(1).collect();
        assert_eq!(
            decode_all(Decode::ChunkSize, &bytewise).unwrap().0,
            b"hello world"
        );
    }

    #[test]
    fn broken_chunking_is_an_error_not_data() {
        assert!(decode_all(Decode::ChunkSize, &[b"zz\r\nhello\r\n"]).is_err());
        assert!(decode_all(Decode::ChunkSize, &[b"5\r\nhelloXX0\r\n\r\n"]).is_err());
        assert!(decode_all(Decode::ChunkSize, &[&[b'1'; 2000]]).is_err());
    }

    #[test]
    fn length_bodies_stop_at_their_length() {
        let (out, clean) = decode_all(Decode::Length(5), &[b"hel", b"lo"]).unwrap();
        assert_eq!((out.as_slice(), clean), (&b"hello"[..], true));
        // Bytes past the end stay for the next answer, so the connection is not reused.
        let (out, clean) = decode_all(Decode::Length(2), &[b"hello"]).unwrap();
        assert_eq!((out.as_slice(), clean), (&b"he"[..], false));
    }

    #[test]
    fn heads_say_how_the_body_is_framed_and_whether_to_keep_the_connection() {
        let (n, h) = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nbody")
            .unwrap()
            .unwrap();
        assert_eq!(
            (n, h.status, h.framing, h.keep_alive),
            (39, 200, Framing::Length(12), true)
        );
        let (_, h) = parse_head(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!((h.framing, h.keep_alive), (Framing::Chunked, false));
        let (_, h) = parse_head(b"HTTP/1.1 502 Bad Gateway\r\nServer: cloudflare\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(
            (h.status, h.framing, h.keep_alive),
            (502, Framing::Eof, false)
        );
        assert_eq!(h.headers["server"], "cloudflare");
        let (_, h) = parse_head(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!h.keep_alive, "HTTP/1.0 closes unless told otherwise");
        assert!(
            parse_head(b"HTTP/1.1 200 OK\r\nContent-Le")
                .unwrap()
                .is_none()
        );
        assert!(
            parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
                .is_err()
        );
        assert!(parse_head(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
    }

    /// A scripted server: for each accepted connection, answers each request (read up to
    /// its blank line and body) with the next canned answer; `None` closes the connection
    /// there, an empty answer closes it after reading the request. Counts connections and
    /// requests read.
    async fn script(
        answers: Vec<Vec<Option<&'static [u8]>>>,
    ) -> (url::Url, Arc<AtomicUsize>, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = url::Url::parse(&format!(
            "http://{}/api/chat/completions",
            listener.local_addr().unwrap()
        ))
        .unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let (count, reqs) = (accepted.clone(), requests.clone());
        tokio::spawn(async move {
            for conn in answers {
                let (mut s, _) = listener.accept().await.unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                let reqs = reqs.clone();
                tokio::spawn(async move {
                    for answer in conn {
                        let Some(a) = answer else { return };
                        if read_request(&mut s).await.is_none() {
                            return;
                        }
                        reqs.fetch_add(1, Ordering::SeqCst);
                        if a.is_empty() {
                            return;
                        }
                        s.write_all(a).await.unwrap();
                    }
                    // Linger so the client sees a live socket until it closes it.
                    let _ = s.read(&mut [0u8; 1]).await;
                });
            }
        });
        (url, accepted, requests)
    }

    fn client(url: &url::Url) -> Client {
        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_static("Bearer sk-test"));
        Client::new(url, &h, Duration::from_secs(5), None).unwrap()
    }

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";

    #[tokio::test]
    async fn a_finished_answer_returns_its_connection_for_the_next_request() {
        let (url, accepted, _) = script(vec![vec![Some(OK), Some(CHUNKED), Some(OK)]]).await;
        let c = client(&url);
        for want in ["ok", "abcde", "ok"] {
            let r = c.post("application/json", b"{}".to_vec()).await.unwrap();
            assert_eq!(r.status, 200);
            assert_eq!(text(r.body).await.unwrap(), want);
            assert_eq!(c.idle_connections(), 1);
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_while_idle_is_not_used() {
        // The first connection answers once and then closes, as uvicorn does after its
        // keep-alive timeout; the second request must go to a new connection.
        let (url, accepted, requests) =
            script(vec![vec![Some(OK), None], vec![Some(CHUNKED)]]).await;
        let c = client(&url);
        let r = c.post("application/json", b"{}".to_vec()).await.unwrap();
        assert_eq!(text(r.body).await.unwrap(), "ok");
        // Wait until the close has arrived (the idle check sees it).
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let closed = lock(&c.inner.idle)
                .first()
                .is_some_and(|i| i.conn.io.closed_by_peer());
            if closed {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the server's close never arrived"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let r = c.post("application/json", b"{}".to_vec()).await.unwrap();
        assert_eq!(text(r.body).await.unwrap(), "abcde");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        assert_eq!(requests.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_written_request_the_server_closes_on_is_sent_exactly_once() {
        // The race the idle check cannot see: the kept connection takes the request (the
        // write succeeds) and the server closes it without answering. The request may be
        // running upstream: it is an error, not a second send on another connection.
        let (url, accepted, requests) =
            script(vec![vec![Some(OK), Some(b"")], vec![Some(CHUNKED)]]).await;
        let c = client(&url);
        let r = c.post("application/json", b"{}".to_vec()).await.unwrap();
        assert_eq!(text(r.body).await.unwrap(), "ok");
        let err = post_error(&c).await;
        assert!(matches!(err, Error::Closed), "{err:?}");
        assert_eq!(accepted.load(Ordering::SeqCst), 1, "no second connection");
        assert_eq!(requests.load(Ordering::SeqCst), 2, "each request read once");
        assert_eq!(c.idle_connections(), 0);

        // A new connection that closes without answering is an error too.
        let (url, _, requests) = script(vec![vec![Some(b"")]]).await;
        let err = post_error(&client(&url)).await;
        assert!(matches!(err, Error::Closed), "{err:?}");
        assert_eq!(requests.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_request_not_one_byte_of_which_was_written_may_go_elsewhere() {
        // The server resets the connection; once the reset has arrived, the first write
        // fails with nothing written.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            s.set_zero_linger().unwrap();
            drop(s);
        });
        let tcp = TcpStream::connect(addr).await.unwrap();
        server.await.unwrap();
        let mut conn = Conn {
            io: Io::Plain(tcp),
            buf: BytesMut::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !conn.io.closed_by_peer() {
            assert!(Instant::now() < deadline, "the reset never arrived");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        match exchange(&mut conn, b"POST / HTTP/1.1\r\n\r\n").await {
            Err(Failed::NotSent(_)) => {}
            Err(Failed::Error(e)) => panic!("expected NotSent, got {e:?}"),
            Ok(h) => panic!("expected NotSent, got {}", h.status),
        }
    }

    #[tokio::test]
    async fn an_oversized_or_cut_off_head_is_refused() {
        let big: &'static [u8] = Box::leak(
            format!(
                "HTTP/1.1 200 OK\r\nx-big: {}\r\n",
                "a".repeat(MAX_HEAD + 10)
            )
            .into_bytes()
            .into_boxed_slice(),
        );
        let (url, _, _) = script(vec![vec![Some(big)]]).await;
        let err = post_error(&client(&url)).await;
        assert!(
            matches!(&err, Error::Http(t) if t.contains("response head over")),
            "{err:?}"
        );
        let (url, _, _) = script(vec![vec![Some(b"HTTP/1.1 200 OK\r\ncontent-le"), None]]).await;
        let err = post_error(&client(&url)).await;
        assert!(
            matches!(&err, Error::Http(t) if t.contains("cut off")),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn the_request_carries_the_fixed_headers_its_accept_and_the_body() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let got = read_request(&mut s).await.unwrap();
            s.write_all(OK).await.unwrap();
            String::from_utf8(got).unwrap()
        });
        let url = url::Url::parse(&format!("http://{addr}/api/chat/completions?x=1")).unwrap();
        let r = client(&url)
            .post("text/event-stream", br#"{"a":1}"#.to_vec())
            .await
            .unwrap();
        assert_eq!(text(r.body).await.unwrap(), "ok");
        let got = server.await.unwrap();
        assert!(
            got.starts_with("POST /api/chat/completions?x=1 HTTP/1.1\r\n"),
            "{got}"
        );
        for line in [
            &format!("host: {addr}\r\n")[..],
            "authorization: Bearer sk-test\r\n",
            "accept: text/event-stream\r\n",
            "content-length: 7\r\n\r\n{\"a\":1}",
        ] {
            assert!(got.contains(line), "{line:?} not in {got:?}");
        }
        assert!(!got.contains("proxy-authorization"), "{got}");
    }

    #[tokio::test]
    async fn plain_http_through_a_proxy_is_asked_in_absolute_form_with_its_credentials() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let got = read_request(&mut s).await.unwrap();
            s.write_all(OK).await.unwrap();
            String::from_utf8(got).unwrap()
        });
        let url = url::Url::parse("http://upstream.test:8080/api/chat/completions").unwrap();
        let proxies = crate::config::OutboundProxy {
            https: None,
            http: Some(format!("http://bob:fwd-pw@{proxy}").into()),
            no_proxy: String::new(),
        };
        let intercept = proxies.intercept(url.as_str());
        assert!(intercept.is_some());
        let c = Client::new(&url, &HeaderMap::new(), Duration::from_secs(5), intercept).unwrap();
        let r = c.post("application/json", b"{}".to_vec()).await.unwrap();
        assert_eq!(text(r.body).await.unwrap(), "ok");
        let got = server.await.unwrap();
        assert!(
            got.starts_with("POST http://upstream.test:8080/api/chat/completions HTTP/1.1\r\n"),
            "{got}"
        );
        assert!(got.contains("host: upstream.test:8080\r\n"), "{got}");
        assert!(
            got.contains("proxy-authorization: Basic Ym9iOmZ3ZC1wdw==\r\n"),
            "{got}"
        );
    }

    /// `s`, leaked: a canned answer made at run time for [`script`].
    fn leak(s: String) -> &'static [u8] {
        Box::leak(s.into_bytes().into_boxed_slice())
    }

    #[test]
    fn signs_in_lengths_and_chunk_sizes_are_refused() {
        for cl in ["+5", "-5", "5 5", "0x5", "", "5,5", "99999999999999999999"] {
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {cl}\r\n\r\n");
            assert!(
                parse_head(head.as_bytes()).is_err(),
                "content-length {cl:?}"
            );
        }
        let (_, h) = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length:  007 \r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.framing, Framing::Length(7));

        for size in ["+5", "-5", " 5", "0x5", "5 x", "", ";ext"] {
            let wire = format!("{size}\r\nhello\r\n0\r\n\r\n");
            assert!(
                decode_all(Decode::ChunkSize, &[wire.as_bytes()]).is_err(),
                "chunk size {size:?}"
            );
        }
        for size in ["5", "05", "5 ", "5\t;a=b", "5 ; a = \"b\""] {
            let wire = format!("{size}\r\nhello\r\n0\r\n\r\n");
            let (out, clean) = decode_all(Decode::ChunkSize, &[wire.as_bytes()]).unwrap();
            assert_eq!((out.as_slice(), clean), (&b"hello"[..], true), "{size:?}");
        }
    }

    #[test]
    fn a_transfer_coding_beside_a_length_wins_and_closes_the_connection() {
        let (_, h) = parse_head(
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!((h.framing, h.keep_alive), (Framing::Chunked, false));
        // The same the other way round, and with a coding that is not chunked last: the
        // body then ends with the connection.
        let (_, h) = parse_head(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!((h.framing, h.keep_alive), (Framing::Chunked, false));
        let (_, h) =
            parse_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 3\r\n\r\n")
                .unwrap()
                .unwrap();
        assert_eq!((h.framing, h.keep_alive), (Framing::Eof, false));
        // Chunked alone keeps it.
        let (_, h) = parse_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!((h.framing, h.keep_alive), (Framing::Chunked, true));
        assert!(parse_head(b"HTTP/1.1 099 Odd\r\n\r\n").is_err());
    }

    #[tokio::test]
    async fn an_answer_with_both_framings_is_read_chunked_and_its_connection_closed() {
        const BOTH: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let (url, accepted, _) = script(vec![vec![Some(BOTH), Some(OK)], vec![Some(OK)]]).await;
        let c = client(&url);
        let r = c.post("application/json", b"{}".to_vec()).await.unwrap();
        assert_eq!(text(r.body).await.unwrap(), "abcde");
        assert_eq!(c.idle_connections(), 0, "not kept");
        let r = c.post("application/json", b"{}".to_vec()).await.unwrap();
        assert_eq!(text(r.body).await.unwrap(), "ok");
        assert_eq!(accepted.load(Ordering::SeqCst), 2, "a new connection");
    }

    #[tokio::test]
    async fn interim_heads_are_skipped_up_to_a_bound_and_a_101_is_refused() {
        let interim = |n: usize| {
            let mut a = "HTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\n".repeat(n);
            a.push_str(std::str::from_utf8(OK).unwrap());
            leak(a)
        };
        let (url, _, _) = script(vec![vec![Some(interim(MAX_INTERIM))]]).await;
        let r = client(&url)
            .post("application/json", b"{}".to_vec())
            .await
            .unwrap();
        assert_eq!(
            (r.status, text(r.body).await.unwrap().as_str()),
            (200, "ok")
        );

        let (url, _, _) = script(vec![vec![Some(interim(MAX_INTERIM + 1))]]).await;
        let err = post_error(&client(&url)).await;
        assert!(
            matches!(&err, Error::Http(t) if t.contains("interim (1xx) heads")),
            "{err:?}"
        );

        let (url, _, _) = script(vec![vec![Some(
            b"HTTP/1.1 101 Switching Protocols\r\nupgrade: h2c\r\n\r\n".as_slice(),
        )]])
        .await;
        // Taken for an interim head, a 101 would leave the request waiting for ever.
        let err = tokio::time::timeout(Duration::from_secs(10), post_error(&client(&url)))
            .await
            .expect("a 101 is an answer, not a wait");
        assert!(
            matches!(&err, Error::Http(t) if t.contains("101")),
            "{err:?}"
        );
    }

    /// A TLS server on 127.0.0.1 (as `localhost`): `first` for the first request (written in
    /// one TLS record), `then` for every later one on any connection. Counts connections.
    async fn tls_script(
        first: &'static [u8],
        then: &'static [u8],
    ) -> (url::Url, rustls::RootCertStore, Arc<AtomicUsize>) {
        let (acceptor, roots) = tls_for_localhost();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let n = count.fetch_add(1, Ordering::SeqCst);
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut s) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut answer = if n == 0 { first } else { then };
                    while read_request(&mut s).await.is_some() {
                        s.write_all(answer).await.unwrap();
                        s.flush().await.unwrap();
                        answer = then;
                    }
                });
            }
        });
        let url =
            url::Url::parse(&format!("https://localhost:{port}/api/chat/completions")).unwrap();
        (url, roots, accepted)
    }

    #[tokio::test]
    async fn bytes_decrypted_but_unread_inside_tls_are_seen() {
        let (url, roots, _) = tls_script(b"hello", b"").await;
        let c = Client::with_roots(&url, &HeaderMap::new(), Duration::from_secs(5), None, roots)
            .unwrap();
        let Ok(mut conn) = c.inner.connect().await else {
            panic!("no TLS connection")
        };
        assert!(
            !conn.io.unread_plaintext(),
            "a fresh connection holds nothing"
        );
        conn.send(b"POST / HTTP/1.1\r\n\r\n").await.unwrap();
        // One record carries all five bytes; reading one leaves four inside rustls.
        let mut one = [0u8; 1];
        tokio::io::AsyncReadExt::read_exact(&mut conn.io, &mut one)
            .await
            .unwrap();
        assert_eq!(&one, b"h");
        assert!(conn.io.unread_plaintext(), "four bytes wait inside TLS");
    }

    #[tokio::test]
    async fn an_answer_followed_by_unasked_bytes_inside_tls_does_not_keep_its_connection() {
        // The first answer fills the client's first read exactly ([`READ_SIZE`]) and an
        // unasked second answer follows it in the same TLS record: at the first answer's end
        // the buffer is empty and the rest waits, decrypted, inside rustls. Kept, the
        // connection would hand that rest to the next request as its answer.
        let head_len = "HTTP/1.1 200 OK\r\ncontent-length: 0000\r\n\r\n".len();
        let body = "a".repeat(READ_SIZE - head_len);
        let mut first = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {:04}\r\n\r\n{body}",
            body.len()
        );
        assert_eq!(first.len(), READ_SIZE);
        first.push_str("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nstale");
        let (url, roots, accepted) = tls_script(leak(first), OK).await;
        let c = Client::with_roots(&url, &HeaderMap::new(), Duration::from_secs(5), None, roots)
            .unwrap();
        let r = c.post("application/json", b"{}".to_vec()).await.unwrap();
        assert_eq!(text(r.body).await.unwrap(), body);
        assert_eq!(c.idle_connections(), 0, "the connection is not kept");
        let r = c.post("application/json", b"{}".to_vec()).await.unwrap();
        assert_eq!(
            text(r.body).await.unwrap(),
            "ok",
            "the next answer is its own"
        );
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn plain_http_to_another_machine_is_warned_about_by_host_only() {
        for url in [
            "https://chat.example.edu",
            "http://127.0.0.1:8080",
            "http://127.3.4.5/",
            "http://[::1]:3000",
            "http://[::ffff:127.0.0.1]/",
            "http://localhost:8080",
            "http://webui.localhost",
            "not a url",
        ] {
            assert_eq!(clear_text_warning(url), None, "{url}");
        }
        for (url, host) in [
            (
                "http://chat.example.edu/api/chat/completions",
                "chat.example.edu",
            ),
            ("http://open-webui:8080", "open-webui"),
            ("http://10.0.0.5", "10.0.0.5"),
            ("http://[2001:db8::1]:80", "[2001:db8::1]"),
            ("http://bob:pw-in-url@lan.example/", "lan.example"),
        ] {
            let w = clear_text_warning(url).unwrap_or_else(|| panic!("no warning for {url}"));
            assert!(w.contains(&format!("http:// to {host},")), "{w}");
            assert!(!w.contains("pw-in-url") && !w.contains("bob"), "{w}");
        }
    }

    /// Property tests (fuzz targets) for the head parser and the body decoders: random and
    /// malformed input, cut at random points. Reproducible: a fixed seed and a fixed number
    /// of cases, 256 unless `CLASSCHAT_FUZZ_CASES` says (`scripts/test` runs more). A
    /// failure prints the shrunk input; the same seed finds it again.
    mod fuzz {
        use proptest::prelude::*;
        use proptest::test_runner::{Config, RngSeed};

        use super::*;

        const SEED: u64 = 0x636c_6173_7363_6861;

        fn config() -> Config {
            Config {
                cases: std::env::var("CLASSCHAT_FUZZ_CASES")
                    .ok()
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(256),
                rng_seed: RngSeed::Fixed(SEED),
                failure_persistence: None,
                ..Config::default()
            }
        }

        /// Feeds `wire` to the decoder in pieces cut at `cuts` (any numbers; taken modulo the
        /// length). Returns what it produced, whether it reached the end, what was left in
        /// the buffer, and how many steps it took.
        fn run(state: Decode, wire: &[u8], cuts: &[usize]) -> io::Result<Decoded> {
            let mut at: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
            at.push(wire.len());
            at.sort_unstable();
            let mut pieces = Vec::new();
            let mut from = 0;
            for to in at {
                pieces.push(&wire[from..to]);
                from = to;
            }
            let mut state = state;
            let mut buf = BytesMut::new();
            let mut d = Decoded::default();
            let mut pieces = pieces.into_iter();
            loop {
                d.steps += 1;
                match decode(&mut state, &mut buf)? {
                    Step::Data(b) => {
                        assert!(!b.is_empty(), "an empty piece of data");
                        d.out.extend_from_slice(&b);
                    }
                    Step::End => {
                        d.ended = true;
                        break;
                    }
                    Step::More => match pieces.next() {
                        Some(p) => {
                            buf.extend_from_slice(p);
                            d.fed += p.len();
                        }
                        None => break,
                    },
                }
            }
            d.left = buf.to_vec();
            Ok(d)
        }

        #[derive(Debug, Default)]
        struct Decoded {
            out: Vec<u8>,
            ended: bool,
            left: Vec<u8>,
            /// Bytes handed to the decoder.
            fed: usize,
            steps: usize,
        }

        /// `data` in chunked coding: chunks of the given sizes (the last takes the rest),
        /// each size in upper or lower case with optional leading zeros and extension,
        /// then the last chunk with optional trailers.
        fn chunked(
            data: &[u8],
            sizes: &[usize],
            style: &[(bool, u8, bool)],
            trailers: &[String],
        ) -> Vec<u8> {
            let mut wire = Vec::new();
            let mut rest = data;
            let mut i = 0;
            while !rest.is_empty() {
                let n = sizes
                    .get(i)
                    .copied()
                    .unwrap_or(rest.len())
                    .clamp(1, rest.len());
                let (upper, zeros, ext) = style.get(i).copied().unwrap_or_default();
                let digits = if upper {
                    format!("{n:X}")
                } else {
                    format!("{n:x}")
                };
                wire.extend(std::iter::repeat_n(b'0', usize::from(zeros % 4)));
                wire.extend_from_slice(digits.as_bytes());
                if ext {
                    wire.extend_from_slice(b" ; name=\"va;lue\"");
                }
                wire.extend_from_slice(b"\r\n");
                wire.extend_from_slice(&rest[..n]);
                wire.extend_from_slice(b"\r\n");
                rest = &rest[n..];
                i += 1;
            }
            wire.extend_from_slice(b"0\r\n");
            for t in trailers {
                wire.extend_from_slice(t.as_bytes());
                wire.extend_from_slice(b"\r\n");
            }
            wire.extend_from_slice(b"\r\n");
            wire
        }

        /// A well-formed head: what it is on the wire, and what parsing it must find.
        fn head_strategy() -> impl Strategy<Value = (Vec<u8>, u16, Framing, bool)> {
            (
                prop_oneof![
                    Just(200u16),
                    Just(201),
                    Just(204),
                    Just(304),
                    Just(404),
                    Just(502),
                    100u16..=599
                ],
                proptest::collection::vec(("x-[a-z0-9-]{1,12}", "[!-~]([ -~]{0,20}[!-~])?"), 0..8),
                0u8..4,
                0u64..100_000,
                any::<bool>(),
                any::<bool>(),
                any::<bool>(),
            )
                .prop_map(|(status, extra, framing, length, close, http10, shout)| {
                    let mut head = format!("HTTP/1.{} {status} Whatever\r\n", u8::from(!http10));
                    for (k, v) in &extra {
                        head.push_str(&format!("{k}: {v}\r\n"));
                    }
                    let (cl, te) = if shout {
                        ("CONTENT-LENGTH", "Transfer-Encoding")
                    } else {
                        ("content-length", "transfer-encoding")
                    };
                    match framing {
                        0 => head.push_str(&format!("{cl}: {length}\r\n")),
                        1 => head.push_str(&format!("{te}: chunked\r\n")),
                        2 => head.push_str(&format!("{cl}: {length}\r\n{te}: chunked\r\n")),
                        _ => {}
                    }
                    if close {
                        head.push_str("Connection: keep-alive, close\r\n");
                    }
                    head.push_str("\r\n");
                    let want = if status == 204 || status == 304 || status < 200 {
                        Framing::Length(0)
                    } else {
                        match framing {
                            0 => Framing::Length(length),
                            1 | 2 => Framing::Chunked,
                            _ => Framing::Eof,
                        }
                    };
                    let keep = !close && !http10 && framing != 2 && want != Framing::Eof;
                    (head.into_bytes(), status, want, keep)
                })
        }

        proptest! {
            #![proptest_config(config())]

            #[test]
            fn the_head_parser_takes_any_bytes_without_panicking(
                prefix in prop_oneof![Just(&b""[..]), Just(&b"HTTP/1.1 "[..]), Just(&b"HTTP/1.1 200 OK\r\n"[..])],
                bytes in proptest::collection::vec(any::<u8>(), 0..600),
            ) {
                let mut wire = prefix.to_vec();
                wire.extend_from_slice(&bytes);
                if let Ok(Some((n, h))) = parse_head(&wire) {
                    prop_assert!(n <= wire.len());
                    prop_assert!((100..=999).contains(&h.status));
                    prop_assert!(h.framing != Framing::Eof || !h.keep_alive);
                }
            }

            #[test]
            fn well_formed_heads_parse_to_what_they_say_wherever_they_are_cut(
                (head, status, framing, keep) in head_strategy(),
                body in proptest::collection::vec(any::<u8>(), 0..64),
            ) {
                let mut wire = head.clone();
                wire.extend_from_slice(&body);
                let Ok(Some((n, h))) = parse_head(&wire) else {
                    return Err(TestCaseError::fail(format!("not parsed: {:?}", String::from_utf8_lossy(&head))));
                };
                prop_assert_eq!(n, head.len());
                prop_assert_eq!((h.status, h.framing, h.keep_alive), (status, framing, keep));
                for cut in 0..head.len() {
                    prop_assert!(
                        matches!(parse_head(&wire[..cut]), Ok(None)),
                        "a head cut at {} is not simply incomplete", cut
                    );
                }
            }

            #[test]
            fn content_length_is_digits_and_nothing_else(
                value in prop_oneof![
                    "[+-]?[0-9]{1,21}",
                    " {0,2}[0-9]{1,6} {0,2}",
                    "[-+0-9a-f x.,]{0,24}",
                ],
            ) {
                let wire = format!("HTTP/1.1 200 OK\r\nContent-Length: {value}\r\n\r\n");
                let trimmed = value.trim_matches(' ');
                let want = (!trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| trimmed.parse::<u64>().ok())
                    .flatten();
                match (parse_head(wire.as_bytes()), want) {
                    (Ok(Some((_, h))), Some(v)) => prop_assert_eq!(h.framing, Framing::Length(v)),
                    (Err(_), None) => {}
                    (got, want) => return Err(TestCaseError::fail(format!(
                        "{value:?}: got {:?}, want {want:?}", got.map(|g| g.map(|(_, h)| h.framing))
                    ))),
                }
            }

            #[test]
            fn a_chunk_size_is_hex_digits_and_nothing_else(
                line in prop_oneof![
                    "[+-]?[0-9a-fA-F]{1,17}[ \t]{0,2}(;[a-z=]{0,5})?",
                    "[ \t]{0,2}[0-9a-f]{1,4}",
                    "[-+0-9a-fA-FxX \t;=]{0,20}",
                ],
            ) {
                let wire = format!("{line}\r\n");
                let digits = line.split(';').next().unwrap_or_default().trim_end_matches([' ', '\t']);
                let valid = !digits.is_empty()
                    && digits.len() <= 15
                    && digits.bytes().all(|b| b.is_ascii_hexdigit());
                let got = run(Decode::ChunkSize, wire.as_bytes(), &[]);
                prop_assert_eq!(got.is_ok(), valid, "{:?}", line);
            }

            #[test]
            fn chunked_data_round_trips_wherever_it_is_cut(
                data in proptest::collection::vec(any::<u8>(), 0..3000),
                sizes in proptest::collection::vec(1usize..700, 0..12),
                style in proptest::collection::vec(any::<(bool, u8, bool)>(), 0..12),
                trailers in proptest::collection::vec("x-[a-z]{1,8}: [ -~]{0,16}", 0..3),
                next in proptest::collection::vec(any::<u8>(), 0..40),
                cuts in proptest::collection::vec(any::<usize>(), 0..16),
            ) {
                let mut wire = chunked(&data, &sizes, &style, &trailers);
                let end = wire.len();
                wire.extend_from_slice(&next);
                let d = run(Decode::ChunkSize, &wire, &cuts).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert!(d.ended);
                prop_assert_eq!(&d.out, &data);
                // It took the body to its last byte and not one more: what follows stays
                // for the next answer.
                prop_assert_eq!(d.fed - d.left.len(), end);
                prop_assert_eq!(&d.left[..], &wire[end..d.fed]);
            }

            #[test]
            fn length_and_eof_bodies_are_the_same_wherever_they_are_cut(
                data in proptest::collection::vec(any::<u8>(), 0..3000),
                length in any::<usize>(),
                cuts in proptest::collection::vec(any::<usize>(), 0..16),
            ) {
                let length = length % (data.len() + 1);
                let d = run(Decode::Length(length as u64), &data, &cuts).unwrap();
                prop_assert!(d.ended);
                prop_assert_eq!(&d.out[..], &data[..length]);
                let d = run(Decode::Eof, &data, &cuts).unwrap();
                prop_assert!(!d.ended, "only the connection's end ends it");
                prop_assert_eq!(d.out, data);
            }

            #[test]
            fn malformed_chunked_input_is_an_error_never_a_panic_or_a_hang(
                data in proptest::collection::vec(any::<u8>(), 1..600),
                sizes in proptest::collection::vec(1usize..200, 0..6),
                edits in proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..6),
                cuts in proptest::collection::vec(any::<usize>(), 0..8),
            ) {
                let mut wire = chunked(&data, &sizes, &[], &[]);
                for (at, byte, how) in edits {
                    let at = at % (wire.len() + 1);
                    match how {
                        0 if at < wire.len() => wire[at] = byte,
                        1 => wire.insert(at, byte),
                        _ if at < wire.len() => { wire.remove(at); }
                        _ => {}
                    }
                }
                // Each step hands out at least one byte, takes a piece or ends.
                if let Ok(d) = run(Decode::ChunkSize, &wire, &cuts) {
                    prop_assert!(d.steps <= wire.len() + cuts.len() + 3, "{} steps", d.steps);
                    prop_assert!(d.out.len() <= wire.len());
                }
            }

            #[test]
            fn a_signed_spaced_or_prefixed_chunk_size_is_always_an_error(
                data in proptest::collection::vec(any::<u8>(), 1..400),
                which in any::<usize>(),
                bad in prop_oneof![Just("+"), Just("-"), Just(" "), Just("0x"), Just("\t")],
                cuts in proptest::collection::vec(any::<usize>(), 0..8),
            ) {
                let sizes = [64, 64, 64];
                let wire = chunked(&data, &sizes, &[], &[]);
                // The start of every size line: the first, and each after a chunk's CRLF.
                let mut starts = vec![0];
                let mut at = 0;
                while let Some(end) = find_crlf(&wire[at..]) {
                    let line = &wire[at..at + end];
                    let size = hex(line).unwrap_or(0) as usize;
                    if size == 0 {
                        break;
                    }
                    at += end + 2 + size + 2;
                    starts.push(at);
                }
                let start = starts[which % starts.len()];
                let mut broken = wire[..start].to_vec();
                broken.extend_from_slice(bad.as_bytes());
                broken.extend_from_slice(&wire[start..]);
                prop_assert!(run(Decode::ChunkSize, &broken, &cuts).is_err());
            }
        }
    }
}
