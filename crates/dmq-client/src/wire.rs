//! A TCP stream with a read buffer and a write buffer, usable both from `async fn`s
//! (requests) and from `poll` functions (the merged Consume). The buffers grow only
//! to what the codec asked for after checking a length prefix against its limit, and
//! shrink back once a large message has been consumed.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures_lite::{AsyncRead, AsyncWrite};

use crate::error::NodeError;

/// Bytes asked of the socket per read when no larger message is expected.
const READ_CHUNK: usize = 64 * 1024;

/// A read buffer larger than this is given back once empty.
const KEEP_BUFFER: usize = 1024 * 1024;

/// Why a connection failed, before it is attributed to a node.
#[derive(Debug)]
pub(crate) enum ConnError {
    /// An I/O error.
    Io(io::Error),
    /// The peer closed the connection.
    Closed,
    /// The peer broke the protocol.
    Protocol(String),
    /// The node does not serve the request (neo SupportedStatus −1 or −2); the
    /// connection is still usable.
    Unsupported(&'static str),
    /// The node refused our neo credentials.
    AuthRejected,
}

impl From<io::Error> for ConnError {
    fn from(error: io::Error) -> Self {
        match error.kind() {
            io::ErrorKind::UnexpectedEof => ConnError::Closed,
            _ => ConnError::Io(error),
        }
    }
}

impl From<ConnError> for NodeError {
    fn from(error: ConnError) -> Self {
        match error {
            ConnError::Io(error) => NodeError::Io(error),
            ConnError::Closed => NodeError::Closed,
            ConnError::Protocol(why) => NodeError::Protocol(why),
            ConnError::Unsupported(what) => NodeError::Unsupported(what),
            ConnError::AuthRejected => NodeError::AuthRejected,
        }
    }
}

/// A stream with its buffers. `data()` is what was read and not yet consumed.
pub(crate) struct Wire<S> {
    stream: S,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    out: Vec<u8>,
    out_pos: usize,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Wire<S> {
    pub(crate) fn new(stream: S) -> Self {
        Wire {
            stream,
            buf: Vec::new(),
            start: 0,
            end: 0,
            out: Vec::new(),
            out_pos: 0,
        }
    }

    /// Bytes received and not consumed.
    pub(crate) fn data(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or_default()
    }

    /// Drops `n` bytes from the front of [`Wire::data`].
    pub(crate) fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if self.buf.len() > KEEP_BUFFER {
                self.buf = Vec::new();
            }
        }
    }

    /// Makes room so that `data()` can grow to `needed` bytes, with at least one
    /// free byte after it.
    fn reserve(&mut self, needed: usize) {
        let needed = needed.max(self.end - self.start + 1);
        if self.buf.len() - self.start < needed || self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        // After the compaction either `start` is 0, or the tail already holds `needed`.
        let wanted = (self.start + needed).max(READ_CHUNK);
        if self.buf.len() < wanted {
            self.buf.resize(wanted, 0);
        }
    }

    /// Reads at least one more byte, making room for `data()` to reach `needed`
    /// bytes (the total a decoder asked for). End of stream is [`ConnError::Closed`].
    pub(crate) fn poll_fill(
        &mut self,
        cx: &mut Context<'_>,
        needed: usize,
    ) -> Poll<Result<(), ConnError>> {
        self.reserve(needed);
        let free = &mut self.buf[self.end..];
        let n = ready!(Pin::new(&mut self.stream).poll_read(cx, free))?;
        if n == 0 {
            return Poll::Ready(Err(ConnError::Closed));
        }
        self.end += n;
        Poll::Ready(Ok(()))
    }

    /// [`Wire::poll_fill`] as a future.
    pub(crate) async fn fill(&mut self, needed: usize) -> Result<(), ConnError> {
        poll_fn(|cx| self.poll_fill(cx, needed)).await
    }

    /// The write buffer: append bytes, then [`Wire::flush`].
    pub(crate) fn out(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }

    /// Whether bytes wait in the write buffer.
    pub(crate) fn has_output(&self) -> bool {
        self.out_pos < self.out.len()
    }

    /// Whether any byte of the write buffer went out since it was last emptied.
    pub(crate) fn sent_any(&self) -> bool {
        self.out_pos > 0
    }

    /// Writes the whole write buffer and flushes the stream.
    pub(crate) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ConnError>> {
        while self.out_pos < self.out.len() {
            let pending = &self.out[self.out_pos..];
            let n = ready!(Pin::new(&mut self.stream).poll_write(cx, pending))?;
            if n == 0 {
                return Poll::Ready(Err(ConnError::Closed));
            }
            self.out_pos += n;
        }
        ready!(Pin::new(&mut self.stream).poll_flush(cx))?;
        self.out.clear();
        self.out_pos = 0;
        if self.out.capacity() > KEEP_BUFFER {
            self.out = Vec::new();
        }
        Poll::Ready(Ok(()))
    }

    /// [`Wire::poll_flush`] as a future.
    pub(crate) async fn flush(&mut self) -> Result<(), ConnError> {
        poll_fn(|cx| self.poll_flush(cx)).await
    }

    /// Whether an idle connection still looks usable: no byte and no end of stream
    /// arrived while it sat in the pool. A node that was stopped or killed has
    /// closed it; this catches that before a request is sent on it, so that the
    /// request is not left with an unknown outcome.
    pub(crate) async fn is_idle_and_open(&mut self) -> bool {
        if !self.data().is_empty() || self.has_output() {
            return false;
        }
        let mut probe = [0u8; 1];
        let read = futures_lite::future::poll_once(poll_fn(|cx| {
            Pin::new(&mut self.stream).poll_read(cx, &mut probe)
        }))
        .await;
        read.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future::block_on;
    use futures_lite::io::Cursor;

    /// A cursor that hands out its bytes a few at a time.
    struct Trickle(Cursor<Vec<u8>>);

    impl AsyncRead for Trickle {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            let len = buf.len().min(3);
            Pin::new(&mut self.0).poll_read(cx, &mut buf[..len])
        }
    }

    impl AsyncWrite for Trickle {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            Pin::new(&mut self.0).poll_write(cx, buf)
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[test]
    fn fills_and_consumes_across_reads() {
        let bytes: Vec<u8> = (0..200u8).collect();
        let mut wire = Wire::new(Trickle(Cursor::new(bytes.clone())));
        block_on(async {
            let mut seen = Vec::new();
            while seen.len() < bytes.len() {
                wire.fill(10).await.expect("fill");
                let n = wire.data().len().min(7);
                seen.extend_from_slice(&wire.data()[..n]);
                wire.consume(n);
            }
            assert_eq!(seen, bytes);
            assert!(matches!(wire.fill(1).await, Err(ConnError::Closed)));
        });
    }

    #[test]
    fn a_large_need_grows_the_buffer_once() {
        let bytes = vec![7u8; 300_000];
        let mut wire = Wire::new(Cursor::new(bytes));
        block_on(async {
            while wire.data().len() < 300_000 {
                wire.fill(300_000).await.expect("fill");
            }
            assert!(wire.buf.len() <= 300_000);
            wire.consume(300_000);
            assert!(wire.data().is_empty());
        });
    }

    #[test]
    fn an_idle_connection_closed_by_the_peer_is_noticed() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        block_on(async {
            let stream = async_io::Async::<std::net::TcpStream>::connect(addr)
                .await
                .expect("connect");
            let (peer, _) = listener.accept().expect("accept");
            let mut wire = Wire::new(stream);
            assert!(
                wire.is_idle_and_open().await,
                "open while the peer is there"
            );
            drop(peer);
            // Bounded: the FIN arrives within a few rounds on loopback.
            let mut closed = false;
            for _ in 0..200 {
                if !wire.is_idle_and_open().await {
                    closed = true;
                    break;
                }
                async_io::Timer::after(std::time::Duration::from_millis(5)).await;
            }
            assert!(closed, "the peer's close was not noticed");
        });
    }
}
