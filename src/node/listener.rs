//! Accepting connections: TCP with TCP_NODELAY, then the TLS handshake on its own task (bounded
//! by a timeout, so a slow or silent client holds up nobody), handing finished connections to
//! the gRPC server or the page.

use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;

/// Longest a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections waiting for the server to take them.
const QUEUE: usize = 256;

/// Accepts on `listener` and completes TLS handshakes with `config` until `stop` turns true;
/// finished connections arrive on the returned receiver.
pub(crate) fn tls_acceptor(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
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
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => {
                        let _ = tx.send((tls, addr)).await;
                    }
                    Ok(Err(e)) => {
                        tracing::info!(remote = %addr.ip(), error = %e, "TLS handshake refused")
                    }
                    Err(_) => tracing::info!(remote = %addr.ip(), "TLS handshake timed out"),
                }
            });
        }
    });
    rx
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

/// A TLS connection as the gRPC server sees it: the stream plus what the handshake proved.
///
/// Writes are encrypted into the TLS session's buffer and reach the socket only on a flush (or
/// when [`WRITE_HIGH_WATER`] bytes wait): HTTP/2 writes a unary response's frames in two or
/// three writes, each of which was its own `writev` through `tokio_rustls`. A flush with data
/// waiting yields to the runtime once first, so responses that complete meanwhile on the same
/// connection share the `writev` (a profile of the Issue load showed 1.5 `writev` per call, a
/// seventh of the node's CPU, as a loopback send runs the receiver's network stack too).
pub(crate) struct TlsConn {
    stream: TlsStream<TcpStream>,
    /// Plaintext bytes accepted since the last flush to the socket.
    unflushed: usize,
    /// The flush has yielded once for these bytes.
    yielded: bool,
}

/// Plaintext bytes that may wait for a flush before a write pushes them to the socket itself.
const WRITE_HIGH_WATER: usize = 64 * 1024;

impl TlsConn {
    /// Wraps a connection whose handshake finished.
    pub(crate) fn new(stream: TlsStream<TcpStream>) -> TlsConn {
        TlsConn {
            stream,
            unflushed: 0,
            yielded: false,
        }
    }

    /// Sends the session's pending TLS records; `Pending` (with the socket's waker set) while
    /// the socket cannot take them all.
    fn poll_send_tls(&mut self, cx: &mut std::task::Context<'_>) -> Poll<std::io::Result<()>> {
        let (tcp, session) = self.stream.get_mut();
        while session.wants_write() {
            let mut socket = SocketWriter { tcp, cx };
            match session.write_tls(&mut socket) {
                Ok(0) => return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into())),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Poll::Pending,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        self.unflushed = 0;
        Poll::Ready(Ok(()))
    }

    /// Encrypts what the session takes of `bufs` (all of it unless its buffer is full).
    fn poll_encrypt(
        &mut self,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        use std::io::Write;
        let len: usize = bufs.iter().map(|b| b.len()).sum();
        if len == 0 {
            return Poll::Ready(Ok(0));
        }
        if self.unflushed >= WRITE_HIGH_WATER {
            std::task::ready!(self.poll_send_tls(cx))?;
        }
        loop {
            let n = self.stream.get_mut().1.writer().write_vectored(bufs)?;
            if n > 0 {
                self.unflushed += n;
                return Poll::Ready(Ok(n));
            }
            // The session's buffer is full: the socket must take some first.
            std::task::ready!(self.poll_send_tls(cx))?;
        }
    }
}

/// The socket as a `std::io::Write` for rustls: `WouldBlock` where the socket is not ready.
struct SocketWriter<'a, 'b> {
    tcp: &'a mut TcpStream,
    cx: &'a mut std::task::Context<'b>,
}

impl std::io::Write for SocketWriter<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        use tokio::io::AsyncWrite;
        match std::pin::Pin::new(&mut *self.tcp).poll_write(self.cx, buf) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(std::io::ErrorKind::WouldBlock.into()),
        }
    }

    fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
        use tokio::io::AsyncWrite;
        match std::pin::Pin::new(&mut *self.tcp).poll_write_vectored(self.cx, bufs) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(std::io::ErrorKind::WouldBlock.into()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

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
        let (tcp, session) = self.stream.get_ref();
        TlsConnInfo {
            remote: tcp.peer_addr().ok(),
            certs: session
                .peer_certificates()
                .map(|c| Arc::new(c.iter().map(|c| c.clone().into_owned()).collect())),
        }
    }
}

impl tokio::io::AsyncRead for TlsConn {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for TlsConn {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.get_mut()
            .poll_encrypt(cx, &[std::io::IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        self.get_mut().poll_encrypt(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.unflushed > 0 && !this.yielded {
            // Once per flush: let the runtime run what else is ready (other calls' responses on
            // this connection) before the system call.
            this.yielded = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        std::task::ready!(this.poll_send_tls(cx))?;
        this.yielded = false;
        std::pin::Pin::new(&mut this.stream).poll_flush(cx)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_send_tls(cx))?;
        std::pin::Pin::new(&mut this.stream).poll_shutdown(cx)
    }
}
