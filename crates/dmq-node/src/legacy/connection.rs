//! One legacy client connection: its socket, input and output buffers, and
//! the I/O every request handler uses (write the pending output, read more
//! input unless the node shuts down).
//!
//! Lives in the connection's task on the shard that accepted it.

use std::io;
use std::net::SocketAddr;
use std::rc::Rc;

use dmq_proto::legacy::DecodeError;
use futures_lite::AsyncWriteExt;
use glommio::net::TcpStream;

use super::input::Input;
use crate::context::ShardContext;
use crate::metrics::probes::Protocol;
use crate::route::ShardGone;

/// Why a legacy connection ended other than by a clean client disconnect.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    #[error("invalid command code {0}: closing the connection")]
    InvalidCommand(i32),
    #[error("the input array is too long: {0}")]
    TooLong(DecodeError),
    #[error(transparent)]
    ShardGone(#[from] ShardGone),
    #[error("produced record for channel '{channel}' refused: it does not fit in memory and the disk overflow cannot take it; closing the connection")]
    ProduceRefused { channel: String },
}

impl ConnError {
    /// Ordinary disconnects are not worth a warning (the original does not log them).
    pub(super) fn is_disconnect(&self) -> bool {
        matches!(self, ConnError::Io(e) if matches!(
            e.kind(),
            io::ErrorKind::ConnectionReset
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::UnexpectedEof
                | io::ErrorKind::ConnectionAborted
        ))
    }
}

/// One legacy client connection.
pub struct Connection {
    pub(crate) stream: TcpStream,
    pub(crate) input: Input,
    pub(crate) ctx: Rc<ShardContext>,
    pub(super) out: Vec<u8>,
    pub(super) peer: Option<SocketAddr>,
}

impl Connection {
    pub fn new(stream: TcpStream, ctx: Rc<ShardContext>) -> Connection {
        let peer = stream.peer_addr().ok();
        Connection {
            stream,
            input: Input::new(),
            ctx,
            out: Vec::new(),
            peer,
        }
    }

    /// Writes and clears the pending output.
    pub(crate) async fn flush(&mut self) -> Result<(), ConnError> {
        if !self.out.is_empty() {
            self.ctx.probes().sent(Protocol::Legacy, self.out.len());
            self.stream.write_all(&self.out).await?;
            self.out.clear();
            self.input.shrink_if_idle();
        }
        Ok(())
    }

    /// Appends to the pending output (written by the next [`Connection::flush`]).
    pub(crate) fn out(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }

    /// Reads until the buffer holds `needed` bytes from its start, or returns
    /// `Ok(false)` when the client closed the connection or the node shuts down.
    pub(crate) async fn read_or_shutdown(&mut self, needed: usize) -> Result<bool, ConnError> {
        let node = self.ctx.node.clone();
        let read = self.input.read_from(&mut self.stream, needed);
        let n = futures_lite::future::or(async { Some(read.await) }, async {
            node.shutdown.wait().await;
            None
        })
        .await;
        match n {
            None => Ok(false),
            Some(Ok(0)) => {
                if !self.input.data().is_empty() {
                    tracing::debug!(
                        peer = ?self.peer,
                        bytes = self.input.data().len(),
                        "client closed the connection in the middle of a request"
                    );
                }
                Ok(false)
            }
            Some(Ok(n)) => {
                self.ctx.probes().received(Protocol::Legacy, n);
                Ok(true)
            }
            Some(Err(e)) => Err(e.into()),
        }
    }
}
