//! Accepting connections: TCP with TCP_NODELAY, then the TLS handshake on its own task (bounded
//! by a timeout, so a slow or silent client holds up nobody), handing finished connections to
//! the gRPC server or the page.

use std::net::SocketAddr;
use std::sync::Arc;
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
