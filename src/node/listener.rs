//! Accepting connections: TCP with TCP_NODELAY, then the TLS handshake on its own task (bounded
//! by a timeout, so a slow or silent client holds up nobody), handing finished connections to
//! the gRPC server or the page.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;

/// Log lines a second about refused TLS handshakes and plain-text clients.
pub(crate) const HANDSHAKE_LINES_PER_SEC: u32 = 10;

/// Longest a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections waiting for the server to take them.
const QUEUE: usize = 256;

/// Accepts on `listener` and completes TLS handshakes with `config` until `stop` turns true;
/// finished connections arrive on the returned receiver.
pub(crate) fn tls_acceptor(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    lines: Arc<super::lines::LineBudget>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::sync::mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)> {
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
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            let lines = lines.clone();
            tokio::spawn(async move {
                // Anyone can cause these lines: within a budget a second.
                let say = |what: &str, error: Option<&dyn std::fmt::Display>| {
                    match lines.take(crate::unix_now()) {
                        super::lines::Line::Write => match error {
                            Some(e) => tracing::info!(remote = %addr.ip(), error = %e, "{what}"),
                            None => tracing::info!(remote = %addr.ip(), "{what}"),
                        },
                        super::lines::Line::Notice => tracing::info!(
                            "more than {} TLS handshakes refused or plain-text clients this second: the rest are not logged one by one",
                            lines.per_sec()
                        ),
                        super::lines::Line::Quiet => {}
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
                        let _ = tx.send((tls, addr)).await;
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
/// [`USE_TLS`], an HTTP/1 client (a browser at http://) a 400 saying to open https://; otherwise the
/// connection is closed. Without this, such a client saw only an HTTP/2 protocol error or a
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
    pub(crate) rx: tokio::sync::mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    pub(crate) local: SocketAddr,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(c) => c,
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
pub(crate) type TlsConn = crate::tls::stream::Coalesced<TlsStream<TcpStream>>;

/// What every call on a TLS connection can read from its request extensions.
#[derive(Debug, Clone)]
pub(crate) struct TlsConnInfo {
    /// The remote address.
    pub(crate) remote: Option<SocketAddr>,
    /// The client's certificate chain, when it presented one (a peer node).
    pub(crate) certs: Option<Arc<Vec<rustls::pki_types::CertificateDer<'static>>>>,
}

impl tonic::transport::server::Connected for TlsConn {
    type ConnectInfo = TlsConnInfo;

    fn connect_info(&self) -> TlsConnInfo {
        let (tcp, session) = self.get_ref().get_ref();
        TlsConnInfo {
            remote: tcp.peer_addr().ok(),
            certs: session
                .peer_certificates()
                .map(|c| Arc::new(c.iter().map(|c| c.clone().into_owned()).collect())),
        }
    }
}
