//! Abortive close for the `cut` fault: a TCP connection that, once armed,
//! is closed with a reset (RST) instead of an orderly FIN.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Set by a request task when it cuts its stream; read by the connection's
/// transport when hyper closes it. One per connection. Transports that cannot
/// reset (in-memory pipes, turmoil streams) ignore it and close normally.
#[derive(Clone, Debug, Default)]
pub(crate) struct AbortFlag(Arc<AtomicBool>);

impl AbortFlag {
    /// Asks for the connection to be reset when it closes.
    pub fn arm(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_armed(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// A TCP stream that resets instead of closing once its flag is armed.
pub(crate) struct AbortableTcp {
    stream: TcpStream,
    abort: AbortFlag,
}

impl AbortableTcp {
    pub fn new(stream: TcpStream, abort: AbortFlag) -> Self {
        Self { stream, abort }
    }
}

impl Drop for AbortableTcp {
    fn drop(&mut self) {
        if self.abort.is_armed() {
            // SO_LINGER 0 makes the kernel send RST on close. Failing to set
            // it only downgrades the cut to a FIN, so the error is ignored.
            let _ = self.stream.set_zero_linger();
        }
    }
}

impl AsyncRead for AbortableTcp {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for AbortableTcp {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.abort.is_armed() {
            // A FIN now would turn the reset into an orderly close.
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
