//! What the client needs from a runtime: a TCP connection and a timer, behind
//! [`Connector`], with implementations for async-io ([`AsyncIoConnector`]) and, with
//! the `glommio` feature, glommio ([`GlommioConnector`]).

use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use async_io::{Async, Timer};
use futures_lite::{AsyncRead, AsyncWrite};

/// Connects to nodes and sleeps, on one runtime. The client runs no task of its own:
/// everything happens inside the futures the caller awaits, so a `Connector` is all
/// it needs to run on an executor.
///
/// Futures need not be `Send`: glommio's are not.
pub trait Connector: Clone + 'static {
    /// A connected TCP stream.
    type Stream: AsyncRead + AsyncWrite + Unpin + 'static;

    /// Opens a TCP connection to `addr` (with `TCP_NODELAY`: requests are small and
    /// the client waits for each answer).
    fn connect(&self, addr: SocketAddr) -> impl Future<Output = io::Result<Self::Stream>>;

    /// Completes after `duration`.
    fn sleep(&self, duration: Duration) -> impl Future<Output = ()>;
}

/// The async-io runtime: `Async<std::net::TcpStream>` and `async_io::Timer`. Works
/// under any executor, and under `futures_lite::future::block_on` (async-io drives
/// its reactor on a thread of its own when needed); the blocking facade uses it.
#[derive(Debug, Clone, Copy, Default)]
pub struct AsyncIoConnector;

impl Connector for AsyncIoConnector {
    type Stream = Async<TcpStream>;

    async fn connect(&self, addr: SocketAddr) -> io::Result<Self::Stream> {
        let stream = Async::<TcpStream>::connect(addr).await?;
        stream.get_ref().set_nodelay(true)?;
        Ok(stream)
    }

    async fn sleep(&self, duration: Duration) {
        Timer::after(duration).await;
    }
}

/// The glommio runtime: `glommio::net::TcpStream` and `glommio::timer::sleep`. Its
/// futures must run inside a glommio executor (a `LocalExecutor` or an executor of a
/// glommio pool), like every glommio I/O.
#[cfg(feature = "glommio")]
#[derive(Debug, Clone, Copy, Default)]
pub struct GlommioConnector;

#[cfg(feature = "glommio")]
impl Connector for GlommioConnector {
    type Stream = glommio::net::TcpStream;

    async fn connect(&self, addr: SocketAddr) -> io::Result<Self::Stream> {
        let stream = glommio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    async fn sleep(&self, duration: Duration) {
        glommio::timer::sleep(duration).await;
    }
}

/// `future`'s output, or `None` if `duration` passes first.
pub(crate) async fn timeout<C: Connector, T>(
    connector: &C,
    duration: Duration,
    future: impl Future<Output = T>,
) -> Option<T> {
    futures_lite::future::or(async { Some(future.await) }, async {
        connector.sleep(duration).await;
        None
    })
    .await
}
