//! A TLS stream whose writes reach the socket on flush, shared by the node's server and its
//! client (peer sync, the CLI, the bench).
//!
//! HTTP/2 writes a unary call's frames in two or three writes (headers and data, then
//! trailers), and `tokio_rustls` sends each at once: one `writev` system call each. Here a write
//! only encrypts into the TLS session's buffer; the records go to the socket on flush, or when
//! [`WRITE_HIGH_WATER`] bytes wait. A flush with data waiting first yields to the runtime once,
//! so calls completing meanwhile on the same connection share the send. Fewer sends per call
//! save the server much CPU, since a loopback send also runs the receiver's network stack (the
//! figures are in BENCHMARKS.md, "Profile").

use std::io::{IoSlice, Write};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Plaintext bytes that may wait for a flush before a write sends them itself.
pub(crate) const WRITE_HIGH_WATER: usize = 64 * 1024;

/// The socket and the TLS session of a `tokio_rustls` stream.
pub(crate) trait TlsParts {
    /// rustls' side data: server or client.
    type Data;
    /// The socket and the session.
    fn parts(&mut self) -> (&mut TcpStream, &mut rustls::ConnectionCommon<Self::Data>);
}

impl TlsParts for tokio_rustls::server::TlsStream<TcpStream> {
    type Data = rustls::server::ServerConnectionData;
    fn parts(&mut self) -> (&mut TcpStream, &mut rustls::ConnectionCommon<Self::Data>) {
        let (tcp, session) = self.get_mut();
        (tcp, session)
    }
}

impl TlsParts for tokio_rustls::client::TlsStream<TcpStream> {
    type Data = rustls::client::ClientConnectionData;
    fn parts(&mut self) -> (&mut TcpStream, &mut rustls::ConnectionCommon<Self::Data>) {
        let (tcp, session) = self.get_mut();
        (tcp, session)
    }
}

/// A TLS stream (after its handshake) whose writes are sent on flush; reads pass through.
pub(crate) struct Coalesced<S> {
    stream: S,
    /// Plaintext bytes accepted since the last send to the socket.
    unflushed: usize,
    /// The flush has yielded once for these bytes.
    yielded: bool,
}

impl<S: TlsParts + AsyncRead + AsyncWrite + Unpin> Coalesced<S> {
    /// Wraps a stream whose handshake finished.
    pub fn new(stream: S) -> Coalesced<S> {
        Coalesced {
            stream,
            unflushed: 0,
            yielded: false,
        }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// Sends the session's pending TLS records; `Pending` (the socket's waker set) while the
    /// socket cannot take them all.
    fn poll_send_tls(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let (tcp, session) = self.stream.parts();
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
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        if bufs.iter().all(|b| b.is_empty()) {
            return Poll::Ready(Ok(0));
        }
        if self.unflushed >= WRITE_HIGH_WATER {
            std::task::ready!(self.poll_send_tls(cx))?;
        }
        loop {
            let n = self.stream.parts().1.writer().write_vectored(bufs)?;
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
    cx: &'a mut Context<'b>,
}

impl Write for SocketWriter<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match Pin::new(&mut *self.tcp).poll_write(self.cx, buf) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(std::io::ErrorKind::WouldBlock.into()),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> std::io::Result<usize> {
        match Pin::new(&mut *self.tcp).poll_write_vectored(self.cx, bufs) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(std::io::ErrorKind::WouldBlock.into()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<S: TlsParts + AsyncRead + AsyncWrite + Unpin> AsyncRead for Coalesced<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl<S: TlsParts + AsyncRead + AsyncWrite + Unpin> AsyncWrite for Coalesced<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.get_mut().poll_encrypt(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        self.get_mut().poll_encrypt(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.unflushed > 0 && !this.yielded {
            // Once per flush: let the runtime run what else is ready (other calls on this
            // connection) before the system call.
            this.yielded = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        std::task::ready!(this.poll_send_tls(cx))?;
        this.yielded = false;
        Pin::new(&mut this.stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_send_tls(cx))?;
        Pin::new(&mut this.stream).poll_shutdown(cx)
    }
}
