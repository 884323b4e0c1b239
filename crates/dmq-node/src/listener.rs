//! TCP listeners. Every shard accepts on its own `SO_REUSEPORT` socket bound to
//! the same address, so the kernel spreads connections over the shards and no
//! connection ever moves between cores. The connection limit is per listener,
//! over all shards, as in the original: past it a connection is accepted and
//! closed at once.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd, IntoRawFd, OwnedFd};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use glommio::net::{TcpListener, TcpStream};
use socket2::{Domain, Protocol, SockRef, Socket, TcpKeepalive, Type};

use crate::context::{ConnectionCount, ShardContext};

/// The listening sockets of one protocol: one per shard, all on one address.
pub struct BoundListener {
    pub addr: SocketAddr,
    pub sockets: Vec<OwnedFd>,
}

/// Binds `shards` sockets to `addr` with `SO_REUSEPORT`, after checking that no
/// other socket listens there. With port 0 the port is picked once and every
/// shard's socket joins it.
pub fn bind(addr: SocketAddr, shards: usize, backlog: u32) -> io::Result<BoundListener> {
    // First a plain bind: SO_REUSEPORT would let this node silently share the
    // port with another process (say, an old instance still running) and split
    // the clients between them. Without it, the bind fails if anyone listens.
    let probe = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    probe.set_reuse_address(true)?;
    probe.bind(&addr.into())?;
    let mut bound = probe.local_addr()?.as_socket().unwrap_or(addr);
    drop(probe);
    let mut sockets = Vec::with_capacity(shards);
    for _ in 0..shards {
        let socket = Socket::new(
            Domain::for_address(bound),
            Type::STREAM,
            Some(Protocol::TCP),
        )?;
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        socket.bind(&bound.into())?;
        socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
        if let Some(local) = socket.local_addr()?.as_socket() {
            bound = local;
        }
        sockets.push(OwnedFd::from(socket));
    }
    Ok(BoundListener {
        addr: bound,
        sockets,
    })
}

/// Decrements the counts when a connection task ends, however it ends.
struct Slot {
    count: Arc<ConnectionCount>,
    ctx: Rc<ShardContext>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.count.close();
        self.ctx.shutdown().connection_closed();
    }
}

/// Accepts connections on this shard's socket until shutdown and runs `serve` on
/// each in its own task. `no_delay` sets `TCP_NODELAY` on each connection.
pub async fn accept_loop<F, Fut>(
    fd: OwnedFd,
    protocol: &'static str,
    no_delay: bool,
    limit: usize,
    count: Arc<ConnectionCount>,
    ctx: Rc<ShardContext>,
    serve: F,
) where
    F: Fn(TcpStream, Rc<ShardContext>) -> Fut,
    Fut: std::future::Future<Output = ()> + 'static,
{
    // SAFETY: `fd` is a bound, listening TCP socket that we own; ownership moves
    // into the glommio listener, which closes it when dropped.
    let listener =
        unsafe { <TcpListener as std::os::fd::FromRawFd>::from_raw_fd(fd.into_raw_fd()) };
    loop {
        let accepted = futures_lite::future::or(async { Some(listener.accept().await) }, async {
            ctx.shutdown().wait().await;
            None
        })
        .await;
        let stream = match accepted {
            None => return,
            Some(Ok(stream)) => stream,
            Some(Err(e)) => {
                // Out of descriptors or memory: back off instead of spinning.
                tracing::warn!(protocol, "accept failed: {e}");
                glommio::timer::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if !count.try_open(limit) {
            tracing::warn!(
                protocol,
                limit,
                "connection limit reached: closing a new connection"
            );
            drop(stream);
            continue;
        }
        ctx.shutdown().connection_opened();
        let slot = Slot {
            count: count.clone(),
            ctx: ctx.clone(),
        };
        if let Err(e) = configure(&stream, no_delay) {
            tracing::debug!(protocol, "cannot set socket options: {e}");
        }
        let task = serve(stream, ctx.clone());
        glommio::spawn_local(async move {
            let _slot = slot;
            task.await;
        })
        .detach();
    }
}

/// Keepalive as the original (idle 5 s, 3 probes 3 s apart) and `TCP_NODELAY`.
fn configure(stream: &TcpStream, no_delay: bool) -> io::Result<()> {
    // SAFETY: the descriptor stays open for the duration of this borrow, since
    // `stream` owns it and outlives the call.
    let fd = unsafe { BorrowedFd::borrow_raw(stream.as_raw_fd()) };
    let socket = SockRef::from(&fd);
    let keepalive = TcpKeepalive::new()
        .with_time(Duration::from_secs(5))
        .with_interval(Duration::from_secs(3))
        .with_retries(3);
    socket.set_tcp_keepalive(&keepalive)?;
    socket.set_nodelay(no_delay)
}
