//! Accepting connections: TCP with TCP_NODELAY, a place under the connection limits (node-wide
//! and per remote address, [`ConnGate`]), then the TLS handshake on its own task (bounded by a
//! timeout, so a slow or silent client holds up nobody), handing finished connections to the
//! gRPC server, the page or the metrics endpoint. A connection with no call in flight for
//! `limits.idle_timeout_secs` (since it was accepted or its last call ended) is closed
//! ([`Guarded`]): that bounds idle connections and requests whose headers never finish alike.

use crate::lock::Locked;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;

/// Log lines a second about refused TLS handshakes and plain-text clients.
pub(crate) const HANDSHAKE_LINES_PER_SEC: u32 = 10;

/// Longest a TLS handshake may take.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// File descriptors kept out of the connection limit: the database, log, key files, outgoing
/// connections to peers.
const RESERVED_FILES: u64 = 256;

/// The soft limit on open files of this process (RLIMIT_NOFILE), from /proc/self/limits;
/// `None` where it cannot be read.
pub(crate) fn open_files_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// The node-wide connection limit: `configured`, lowered to stay [`RESERVED_FILES`] under the
/// open-files limit (so the node never reaches "Too many open files").
pub(crate) fn connection_limit(configured: usize) -> usize {
    match open_files_limit() {
        Some(files) => {
            let room = usize::try_from(files.saturating_sub(RESERVED_FILES)).unwrap_or(usize::MAX);
            if room < configured {
                tracing::warn!(
                    configured,
                    open_files = files,
                    lowered_to = room.max(1),
                    "limits.max_connections is above what the open-files limit (ulimit -n) allows: lowered"
                );
            }
            configured.min(room).max(1)
        }
        None => configured,
    }
}

/// Connections open, node-wide and per remote address, under their limits; shared by every
/// TLS listener of the node.
#[derive(Debug)]
pub(crate) struct ConnGate {
    max: usize,
    per_address: usize,
    /// (all, per address). A std mutex: held for a map update only.
    open: std::sync::Mutex<(usize, std::collections::HashMap<std::net::IpAddr, usize>)>,
}

/// A connection's place in [`ConnGate`]; given back when dropped (the connection closed).
#[derive(Debug)]
pub(crate) struct ConnSlot {
    gate: Arc<ConnGate>,
    address: std::net::IpAddr,
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        let mut open = self.gate.open.locked();
        open.0 = open.0.saturating_sub(1);
        if let Some(n) = open.1.get_mut(&self.address) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.1.remove(&self.address);
            }
        }
    }
}

impl ConnGate {
    /// A gate of `max` connections, `per_address` from one IP address.
    pub(crate) fn new(max: usize, per_address: usize) -> ConnGate {
        ConnGate {
            max,
            per_address,
            open: std::sync::Mutex::default(),
        }
    }

    /// Takes a place for a connection from `address`.
    ///
    /// # Errors
    /// Why not: the message of the refusal.
    pub(crate) fn enter(self: &Arc<Self>, address: std::net::IpAddr) -> Result<ConnSlot, String> {
        let mut open = self.open.locked();
        if open.0 >= self.max {
            return Err(format!(
                "the node has {} connections open, its limit (limits.max_connections)",
                self.max
            ));
        }
        let mine = open.1.entry(address).or_insert(0);
        if *mine >= self.per_address {
            return Err(format!(
                "address {address} has {} connections open, its limit (limits.max_connections_per_address)",
                self.per_address
            ));
        }
        *mine += 1;
        open.0 += 1;
        Ok(ConnSlot {
            gate: self.clone(),
            address,
        })
    }
}

/// Calls in flight on one connection, and when the last one ended.
#[derive(Debug)]
pub(crate) struct Activity {
    in_flight: std::sync::atomic::AtomicUsize,
    /// When the connection was accepted or its last call ended.
    last: std::sync::Mutex<tokio::time::Instant>,
}

impl Activity {
    fn new() -> Arc<Activity> {
        Arc::new(Activity {
            in_flight: std::sync::atomic::AtomicUsize::new(0),
            last: std::sync::Mutex::new(tokio::time::Instant::now()),
        })
    }

    /// When the connection turns idle-closable, or `None` while a call is in flight.
    fn idle_since(&self) -> Option<tokio::time::Instant> {
        if self.in_flight.load(std::sync::atomic::Ordering::Acquire) > 0 {
            return None;
        }
        Some(*self.last.locked())
    }
}

/// A call in flight on a connection ([`Activity`]); ended when dropped.
pub(crate) struct CallGuard(Arc<Activity>);

impl CallGuard {
    /// Counts a call on the connection of `activity` until the guard drops.
    pub(crate) fn new(activity: Arc<Activity>) -> CallGuard {
        activity
            .in_flight
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        CallGuard(activity)
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        *self.0.last.locked() = tokio::time::Instant::now();
        self.0
            .in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// A connection holding its place under the limits, closed (reads end with TimedOut) once it
/// has had no call in flight for the idle timeout.
pub(crate) struct Guarded<S> {
    stream: S,
    _slot: ConnSlot,
    activity: Arc<Activity>,
    idle: Duration,
    timer: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl<S> Guarded<S> {
    /// The wrapped stream.
    pub(crate) fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The connection's calls, for the request handlers to count theirs.
    pub(crate) fn activity(&self) -> Arc<Activity> {
        self.activity.clone()
    }
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Guarded<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::future::Future as _;
        use std::task::Poll;
        let this = &mut *self;
        if let Poll::Ready(r) = std::pin::Pin::new(&mut this.stream).poll_read(cx, buf) {
            return Poll::Ready(r);
        }
        loop {
            if this.timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let now = tokio::time::Instant::now();
            let until = match this.activity.idle_since() {
                None => now + this.idle,
                Some(since) if since + this.idle <= now => {
                    return Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "no call for limits.idle_timeout_secs: connection closed",
                    )));
                }
                Some(since) => since + this.idle,
            };
            this.timer.as_mut().reset(until);
        }
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Guarded<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// A TLS connection accepted under the limits; [`Accepted::guard`] wraps it (or what is built
/// on it) in [`Guarded`].
pub(crate) struct Accepted {
    pub(crate) tls: TlsStream<TcpStream>,
    pub(crate) remote: SocketAddr,
    slot: ConnSlot,
    idle: Duration,
}

impl Accepted {
    /// `stream` (this connection's TLS stream, or a wrapper of it) holding the connection's
    /// place, with the idle timeout.
    pub(crate) fn guard<S>(slot: ConnSlot, idle: Duration, stream: S) -> Guarded<S> {
        let activity = Activity::new();
        Guarded {
            stream,
            _slot: slot,
            activity,
            idle,
            timer: Box::pin(tokio::time::sleep(idle)),
        }
    }

    /// The TLS stream, guarded.
    pub(crate) fn guarded(self) -> (Guarded<TlsStream<TcpStream>>, SocketAddr) {
        (Accepted::guard(self.slot, self.idle, self.tls), self.remote)
    }

    /// The TLS stream wrapped by `wrap`, guarded.
    pub(crate) fn guarded_with<S>(
        self,
        wrap: impl FnOnce(TlsStream<TcpStream>) -> S,
    ) -> Guarded<S> {
        Accepted::guard(self.slot, self.idle, wrap(self.tls))
    }
}

/// Connections waiting for the server to take them.
const QUEUE: usize = 256;

/// Accepts on `listener` and completes TLS handshakes with `config` until `stop` turns true;
/// finished connections arrive on the returned receiver.
pub(crate) fn tls_acceptor(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    state: Arc<super::NodeState>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::sync::mpsc::Receiver<Accepted> {
    let lines = state.handshake_lines.clone();
    let idle = Duration::from_secs(state.guards.limits.idle_timeout_secs);
    let port = listener
        .local_addr()
        .map(|a| format!("(connection to port {})", a.port()))
        .unwrap_or_else(|_| "(connection)".into());
    let (tx, rx) = tokio::sync::mpsc::channel(QUEUE);
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let (tcp, addr) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(c) => c,
                    Err(e) => {
                        // Out of file descriptors and the like: wait a moment, keep serving.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = stop.changed() => return,
            };
            let slot = match state.guards.connections.enter(addr.ip()) {
                Ok(slot) => slot,
                Err(message) => {
                    // Closed at once (the socket drops); counted like a refused call.
                    let denied = super::auth::Denied {
                        status: tonic::Status::resource_exhausted(message),
                        who: "anonymous".into(),
                    };
                    state.record_denial(&port, &denied, Some(addr));
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            let lines = lines.clone();
            tokio::spawn(async move {
                // Anyone can cause these lines: within a budget a second.
                let say = |what: &str, error: Option<&dyn std::fmt::Display>| {
                    match lines.take(crate::unix_now().secs()) {
                        super::log_budget::Line::Write => match error {
                            Some(e) => tracing::info!(remote = %addr.ip(), error = %e, "{what}"),
                            None => tracing::info!(remote = %addr.ip(), "{what}"),
                        },
                        super::log_budget::Line::Notice => tracing::info!(
                            "more than {} TLS handshakes refused or plain-text clients this second: the rest are not logged one by one",
                            lines.per_sec()
                        ),
                        super::log_budget::Line::Quiet => {}
                    }
                };
                // A TLS client's first record is a handshake (0x16). Anything else is a client
                // speaking plain text to this TLS port: told so in its own protocol.
                let mut first = [0u8; 1];
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, tcp.peek(&mut first)).await {
                    Ok(Ok(1..)) if first[0] != TLS_HANDSHAKE_RECORD => {
                        say("plain-text client on the TLS port: told to use TLS", None);
                        answer_plain_text(tcp).await;
                        return;
                    }
                    Ok(Ok(_)) => {}
                    Ok(Err(_)) => return,
                    Err(_) => {
                        say("TLS handshake timed out", None);
                        return;
                    }
                }
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => {
                        let _ = tx
                            .send(Accepted {
                                tls,
                                remote: addr,
                                slot,
                                idle,
                            })
                            .await;
                    }
                    Ok(Err(e)) => say("TLS handshake refused", Some(&e)),
                    Err(_) => say("TLS handshake timed out", None),
                }
            });
        }
    });
    rx
}

/// The first byte of a TLS handshake record (RFC 8446 section 5.1, ContentType handshake(22)).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// What a client that speaks plain text to a TLS port is told.
pub(crate) const USE_TLS: &str =
    "this node serves TLS: call it at its https:// URL, pinning its certificate (--tls-cert)";

/// The HTTP/2 connection preface of a plain-text client (RFC 9113 section 3.4), e.g. a gRPC
/// client given an http:// URL.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Answers a client that spoke plain text to the TLS port, then closes (within the handshake
/// timeout): a gRPC client (HTTP/2 preface) gets every call ended with INVALID_ARGUMENT and
/// [`USE_TLS`], an HTTP/1 client (a browser at http://) a 400 saying to open https://; otherwise
/// the connection is closed. Without this, such a client saw only an HTTP/2 protocol error or a
/// cancelled call (and a browser at http:// an empty answer).
async fn answer_plain_text(tcp: TcpStream) {
    use tokio::io::AsyncWriteExt;
    let mut head = [0u8; 24];
    let n = match tokio::time::timeout(HANDSHAKE_TIMEOUT, tcp.peek(&mut head)).await {
        Ok(Ok(n)) => n,
        _ => return,
    };
    let head = &head[..n];
    if head.len() >= 3 && H2_PREFACE.starts_with(head) {
        let service = hyper::service::service_fn(|_request| async {
            http::Response::builder()
                .header("content-type", "application/grpc")
                .header(
                    "grpc-status",
                    (tonic::Code::InvalidArgument as i32).to_string(),
                )
                .header("grpc-message", USE_TLS)
                .body(axum::body::Body::empty())
        });
        let connection =
            hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                .serve_connection(hyper_util::rt::TokioIo::new(tcp), service);
        let _ = tokio::time::timeout(HANDSHAKE_TIMEOUT, connection).await;
    } else if head.len() >= 3 && head[..3].iter().all(u8::is_ascii_uppercase) {
        // An HTTP/1 request line starts with its method (GET, POST, ...).
        let body = "this node serves TLS: open its https:// address (same host and port)\n";
        let answer = format!(
            "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let mut tcp = tcp;
        let _ = tokio::time::timeout(HANDSHAKE_TIMEOUT, tcp.write_all(answer.as_bytes())).await;
        let _ = tcp.shutdown().await;
    }
}

/// The checkpoint page's listener over TLS, for `axum::serve`.
pub(crate) struct TlsListener {
    pub(crate) rx: tokio::sync::mpsc::Receiver<Accepted>,
    pub(crate) local: SocketAddr,
}

impl axum::serve::Listener for TlsListener {
    type Io = Guarded<TlsStream<TcpStream>>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(c) => c.guarded(),
            // The acceptor stopped: the node is shutting down; graceful shutdown ends serve.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// A TLS connection as the gRPC server sees it: the stream, with writes sent on flush
/// ([`crate::tls::stream::Coalesced`]), plus what the handshake proved.
pub(crate) type TlsConn = Guarded<crate::tls::stream::Coalesced<TlsStream<TcpStream>>>;

/// What every call on a TLS connection can read from its request extensions.
#[derive(Debug, Clone)]
pub(crate) struct TlsConnInfo {
    /// The remote address.
    pub(crate) remote: Option<SocketAddr>,
    /// The client's certificate chain, when it presented one (a peer node).
    pub(crate) certs: Option<Arc<Vec<rustls::pki_types::CertificateDer<'static>>>>,
    /// The connection's calls (each call counts itself, for the idle timeout).
    pub(crate) activity: Option<Arc<Activity>>,
}

impl tonic::transport::server::Connected for TlsConn {
    type ConnectInfo = TlsConnInfo;

    fn connect_info(&self) -> TlsConnInfo {
        let (tcp, session) = self.get_ref().get_ref().get_ref();
        TlsConnInfo {
            activity: Some(self.activity()),
            remote: tcp.peer_addr().ok(),
            certs: session
                .peer_certificates()
                .map(|c| Arc::new(c.iter().map(|c| c.clone().into_owned()).collect())),
        }
    }
}
