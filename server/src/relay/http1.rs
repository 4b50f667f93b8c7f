//! A small HTTP/1.1 client for the one upstream classchat talks to.
//!
//! Why not reqwest (hyper's pooled client): every pooled hyper connection is a task of its
//! own, fed through a channel whose first block is about 9 KB, with 8 KB head buffers each
//! way. With ten thousand slow streams open that was a third of the relay's memory, and
//! handing each request to the connection's task and back cost CPU on every chat. Here the
//! request's own task writes and reads the socket, and an idle connection is a socket and a
//! small buffer in a list. It speaks only what the relay needs: `POST`, a fixed set of
//! headers, and answers framed by `Content-Length`, chunked transfer coding or the end of
//! the connection, over plain TCP or TLS (rustls, Mozilla's roots, ALPN `http/1.1`).

use std::fmt;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use bytes::{Buf, Bytes, BytesMut};
use futures::Stream;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// A response head larger than this is refused (Cloudflare's own limit is 32 KB).
const MAX_HEAD: usize = 64 * 1024;
/// What a connection reads into; SSE frames are far smaller.
const READ_SIZE: usize = 4096;
/// An idle connection's buffer above this size is replaced by a fresh small one.
const KEEP_BUF: usize = 16 * 1024;
/// Idle connections kept at most.
const MAX_IDLE: usize = 512;
/// How long an idle connection is kept (the server usually closes it sooner; see `checkout`).
const IDLE_FOR: Duration = Duration::from_secs(60);
const MAX_HEADERS: usize = 100;

/// What went wrong before an answer's head arrived.
#[derive(Debug)]
pub enum Error {
    /// Name lookup or TCP connect failed.
    Connect(io::Error),
    ConnectTimeout(Duration),
    Tls(io::Error),
    /// Writing the request or reading the answer failed.
    Io(io::Error),
    /// The server closed the connection without answering.
    Closed,
    /// The answer was not HTTP/1.x as we know it.
    Protocol(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Connect(e) => write!(f, "connect: {e}"),
            Error::ConnectTimeout(d) => write!(f, "no connection after {}s", d.as_secs()),
            Error::Tls(e) => write!(f, "TLS handshake: {e}"),
            Error::Io(e) => write!(f, "{e}"),
            Error::Closed => f.write_str("the connection was closed before an answer came"),
            Error::Protocol(why) => write!(f, "malformed answer: {why}"),
        }
    }
}

impl std::error::Error for Error {}

/// A client for one URL; cheap to clone (the idle connections are shared).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    host: String,
    port: u16,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    /// Request line and fixed headers, secrets included: never printed.
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
    /// roots for `https`.
    pub fn new(
        url: &url::Url,
        headers: &HeaderMap,
        connect_timeout: Duration,
    ) -> anyhow::Result<Self> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        Self::with_roots(url, headers, connect_timeout, roots)
    }

    /// As [`Client::new`], trusting `roots` instead (tests bring their own authority).
    pub fn with_roots(
        url: &url::Url,
        headers: &HeaderMap,
        connect_timeout: Duration,
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
        let tls = match url.scheme() {
            "http" => None,
            "https" => {
                let provider = Arc::new(rustls::crypto::ring::default_provider());
                let mut config = rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()?
                    .with_root_certificates(roots)
                    .with_no_client_auth();
                config.alpn_protocols = vec![b"http/1.1".to_vec()];
                let name = ServerName::try_from(host.clone())?;
                Some((TlsConnector::from(Arc::new(config)), name))
            }
            other => anyhow::bail!("unsupported scheme {other}"),
        };
        let mut target = url.path().to_owned();
        if let Some(q) = url.query() {
            target.push('?');
            target.push_str(q);
        }
        let mut head = format!("POST {target} HTTP/1.1\r\nhost: ").into_bytes();
        head.extend_from_slice(url.host_str().unwrap_or_default().as_bytes());
        if let Some(p) = url.port() {
            head.extend_from_slice(format!(":{p}").as_bytes());
        }
        head.extend_from_slice(b"\r\n");
        for (name, value) in headers {
            head.extend_from_slice(name.as_str().as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(value.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        Ok(Self {
            inner: Arc::new(Inner {
                host,
                port,
                tls,
                head,
                connect_timeout,
                idle: Mutex::new(Vec::new()),
            }),
        })
    }

    /// Sends `body` and waits for the answer's head. When a kept-alive connection turns out
    /// closed before any answer came (the server's keep-alive timeout raced the request),
    /// the request is sent once more on a new connection, as browsers and hyper do.
    pub async fn post(&self, accept: &str, body: &[u8]) -> Result<Response, Error> {
        let msg = self.inner.message(accept, body);
        if let Some(mut conn) = self.inner.checkout() {
            match exchange(&mut conn, &msg).await {
                Ok(head) => return Ok(Response::new(head, conn, &self.inner)),
                Err(Error::Closed) => {}
                Err(e) => return Err(e),
            }
        }
        let mut conn = self.inner.connect().await?;
        let head = exchange(&mut conn, &msg).await?;
        Ok(Response::new(head, conn, &self.inner))
    }

    /// Idle connections held now.
    #[cfg(test)]
    fn idle_connections(&self) -> usize {
        lock(&self.inner.idle).len()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
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
            let tcp = TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(Error::Connect)?;
            tcp.set_nodelay(true).map_err(Error::Connect)?;
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

enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Io {
    async fn read_buf(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            Io::Plain(s) => s.read_buf(buf).await,
            Io::Tls(s) => s.read_buf(buf).await,
        }
    }

    async fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Io::Plain(s) => s.write_all(data).await,
            Io::Tls(s) => {
                s.write_all(data).await?;
                s.flush().await
            }
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

struct Conn {
    io: Io,
    /// Bytes read and not yet handed out.
    buf: BytesMut,
}

impl Conn {
    /// Reads more; keeps the buffer small unless a long head needs more.
    async fn fill(&mut self) -> io::Result<usize> {
        if self.buf.capacity() - self.buf.len() < READ_SIZE / 4 {
            self.buf.reserve(READ_SIZE);
        }
        self.io.read_buf(&mut self.buf).await
    }
}

/// An answer's status line and headers.
#[derive(Debug)]
pub struct Head {
    pub status: u16,
    pub headers: HeaderMap,
    framing: Framing,
    keep_alive: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(u64),
    Chunked,
    Eof,
}

/// Writes the request and reads the answer's head (skipping `1xx` heads).
async fn exchange(conn: &mut Conn, msg: &[u8]) -> Result<Head, Error> {
    if let Err(e) = conn.io.write_all(msg).await {
        return Err(if gone(&e) {
            Error::Closed
        } else {
            Error::Io(e)
        });
    }
    loop {
        if !conn.buf.is_empty() {
            match parse_head(&conn.buf)? {
                Some((n, head)) => {
                    conn.buf.advance(n);
                    if (100..200).contains(&head.status) {
                        continue;
                    }
                    return Ok(head);
                }
                None if conn.buf.len() > MAX_HEAD => {
                    return Err(Error::Protocol(format!(
                        "response head over {MAX_HEAD} bytes"
                    )));
                }
                None => {}
            }
        }
        let before = conn.buf.len();
        match conn.fill().await {
            Ok(0) if before == 0 => return Err(Error::Closed),
            Ok(0) => return Err(Error::Protocol("the response head was cut off".into())),
            Ok(_) => {}
            Err(e) if before == 0 && gone(&e) => return Err(Error::Closed),
            Err(e) => return Err(Error::Io(e)),
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
fn parse_head(buf: &[u8]) -> Result<Option<(usize, Head)>, Error> {
    let mut raw = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut raw);
    let n = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(Error::Protocol(e.to_string())),
    };
    let status = resp.code.unwrap_or(0);
    let mut headers = HeaderMap::with_capacity(resp.headers.len());
    let mut length = None;
    let mut chunked = false;
    let mut close = resp.version != Some(1);
    for h in resp.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| Error::Protocol(format!("bad header name {:?}", h.name)))?;
        let value = HeaderValue::from_bytes(h.value)
            .map_err(|_| Error::Protocol(format!("bad value for header {name}")))?;
        if name == axum::http::header::CONTENT_LENGTH {
            let v = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or_else(|| Error::Protocol("bad content-length".into()))?;
            if length.is_some_and(|l| l != v) {
                return Err(Error::Protocol("conflicting content-length headers".into()));
            }
            length = Some(v);
        } else if name == axum::http::header::TRANSFER_ENCODING {
            // The last coding decides; only chunked is ever sent to us (we ask for no gzip).
            chunked = h
                .value
                .rsplit(|b| *b == b',')
                .next()
                .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if name == axum::http::header::CONNECTION {
            close |= h
                .value
                .split(|b| *b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"));
        }
        headers.append(name, value);
    }
    let framing = if status == 204 || status == 304 || (100..200).contains(&status) {
        Framing::Length(0)
    } else if chunked {
        Framing::Chunked
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

/// An answer whose head has arrived; its body is read on demand.
pub struct Response {
    pub head: Head,
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
            body: Body {
                open: Some(Open {
                    conn,
                    state,
                    keep_alive: head.keep_alive,
                    client: inner.clone(),
                }),
            },
            head,
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
    /// The next piece of the body, or `None` at its end.
    pub async fn chunk(&mut self) -> io::Result<Option<Bytes>> {
        loop {
            let Some(open) = self.open.as_mut() else {
                return Ok(None);
            };
            let step = match decode(&mut open.state, &mut open.conn.buf) {
                Ok(s) => s,
                Err(e) => {
                    self.open = None;
                    return Err(e);
                }
            };
            match step {
                Step::Data(b) => return Ok(Some(b)),
                Step::End => {
                    let open = self.open.take().expect("checked above");
                    if open.keep_alive && open.conn.buf.is_empty() {
                        open.client.put_back(open.conn);
                    }
                    return Ok(None);
                }
                Step::More => match open.conn.fill().await {
                    Ok(0) if matches!(open.state, Decode::Eof) => {
                        self.open = None;
                        return Ok(None);
                    }
                    Ok(0) => {
                        self.open = None;
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the connection closed before the body ended",
                        ));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        self.open = None;
                        return Err(e);
                    }
                },
            }
        }
    }

    /// The body as a stream of pieces.
    pub fn into_stream(self) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
        futures::stream::unfold(self, |mut body| async move {
            body.chunk().await.transpose().map(|item| (item, body))
        })
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
                let digits = line.split(|b| *b == b';').next().unwrap_or_default();
                let size = std::str::from_utf8(digits)
                    .ok()
                    .map(str::trim)
                    .filter(|d| !d.is_empty() && d.len() <= 15)
                    .and_then(|d| u64::from_str_radix(d, 16).ok())
                    .ok_or_else(|| bad("bad chunk size"))?;
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::AsyncWriteExt;

    use super::*;

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
    /// there, an empty answer closes it after reading the request.
    async fn script(answers: Vec<Vec<Option<&'static [u8]>>>) -> (url::Url, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = url::Url::parse(&format!(
            "http://{}/api/chat/completions",
            listener.local_addr().unwrap()
        ))
        .unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            for conn in answers {
                let (mut s, _) = listener.accept().await.unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    for answer in conn {
                        let Some(a) = answer else { return };
                        read_request(&mut s).await;
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
        (url, accepted)
    }

    async fn read_request(s: &mut (impl tokio::io::AsyncRead + Unpin)) -> Vec<u8> {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = s.read(&mut buf).await.unwrap();
            got.extend_from_slice(&buf[..n]);
            if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&got[..end]).to_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .map_or(0, |v| v.trim().parse().unwrap());
                if got.len() >= end + 4 + len || n == 0 {
                    return got;
                }
            }
            if n == 0 {
                return got;
            }
        }
    }

    fn client(url: &url::Url) -> Client {
        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_static("Bearer sk-test"));
        Client::new(url, &h, Duration::from_secs(5)).unwrap()
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
        match c.post("application/json", b"{}").await {
            Ok(r) => panic!("expected an error, got {}", r.head.status),
            Err(e) => e,
        }
    }

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
    const CHUNKED: &[u8] =
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";

    #[tokio::test]
    async fn a_finished_answer_returns_its_connection_for_the_next_request() {
        let (url, accepted) = script(vec![vec![Some(OK), Some(CHUNKED), Some(OK)]]).await;
        let c = client(&url);
        for want in ["ok", "abcde", "ok"] {
            let r = c.post("application/json", b"{}").await.unwrap();
            assert_eq!(r.head.status, 200);
            assert_eq!(text(r.body).await.unwrap(), want);
            assert_eq!(c.idle_connections(), 1);
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_while_idle_is_replaced_not_reported() {
        // The first connection answers once and then closes, as uvicorn does after its
        // keep-alive timeout; the second request must still succeed.
        let (url, accepted) = script(vec![vec![Some(OK), None], vec![Some(CHUNKED)]]).await;
        let c = client(&url);
        let r = c.post("application/json", b"{}").await.unwrap();
        assert_eq!(text(r.body).await.unwrap(), "ok");
        tokio::time::sleep(Duration::from_millis(50)).await;
        let r = c.post("application/json", b"{}").await.unwrap();
        assert_eq!(text(r.body).await.unwrap(), "abcde");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_kept_connection_closed_as_the_request_arrives_is_retried_once() {
        // The race the idle check cannot see: the server closes just as the request lands.
        let (url, accepted) = script(vec![vec![Some(OK), Some(b"")], vec![Some(CHUNKED)]]).await;
        let c = client(&url);
        let r = c.post("application/json", b"{}").await.unwrap();
        assert_eq!(text(r.body).await.unwrap(), "ok");
        let r = c.post("application/json", b"{}").await.unwrap();
        assert_eq!(text(r.body).await.unwrap(), "abcde");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);

        // A new connection that closes without answering is an error, not a retry loop.
        let (url, _) = script(vec![vec![Some(b"")]]).await;
        let err = post_error(&client(&url)).await;
        assert!(matches!(err, Error::Closed), "{err:?}");
    }

    #[tokio::test]
    async fn a_body_cut_short_is_an_error_and_its_connection_is_not_kept() {
        let cut: &[u8] = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n";
        let (url, _) = script(vec![vec![Some(cut), None]]).await;
        let c = client(&url);
        let r = c.post("application/json", b"{}").await.unwrap();
        let err = text(r.body).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(c.idle_connections(), 0);
    }

    #[tokio::test]
    async fn the_request_carries_the_fixed_headers_its_accept_and_the_body() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let got = read_request(&mut s).await;
            s.write_all(OK).await.unwrap();
            String::from_utf8(got).unwrap()
        });
        let url = url::Url::parse(&format!("http://{addr}/api/chat/completions?x=1")).unwrap();
        let r = client(&url)
            .post("text/event-stream", br#"{"a":1}"#)
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
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_connect_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = url::Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        drop(listener);
        let err = post_error(&client(&url)).await;
        assert!(matches!(err, Error::Connect(_)), "{err:?}");
    }

    #[tokio::test]
    async fn https_upstreams_are_verified_and_spoken_to_over_tls() {
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
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut s) = acceptor.accept(tcp).await else {
                        return;
                    };
                    for _ in 0..2 {
                        read_request(&mut s).await;
                        s.write_all(CHUNKED).await.unwrap();
                        s.flush().await.unwrap();
                    }
                    let _ = s.read(&mut [0u8; 1]).await;
                });
            }
        });
        let url =
            url::Url::parse(&format!("https://localhost:{port}/api/chat/completions")).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.der().clone()).unwrap();
        let c = Client::with_roots(&url, &HeaderMap::new(), Duration::from_secs(5), roots).unwrap();
        for _ in 0..2 {
            let r = c.post("application/json", b"{}").await.unwrap();
            assert_eq!(text(r.body).await.unwrap(), "abcde");
        }
        assert_eq!(c.idle_connections(), 1, "the TLS connection is kept alive");

        // Mozilla's roots do not include the test authority: the handshake is refused.
        let err = post_error(&client(&url)).await;
        assert!(matches!(err, Error::Tls(_)), "{err:?}");
    }
}
