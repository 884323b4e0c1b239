//! The legacy protocol port: one task per connection, strictly ordered replies,
//! pipelined requests run in batches (see [`batch`]).
//!
//! A connection lives on the shard whose listener accepted it, until the client
//! disconnects, sends something invalid, or the node shuts down.

pub mod batch;
mod input;

use std::io;
use std::net::SocketAddr;
use std::rc::Rc;

use dmq_proto::legacy::{self, DecodeError, Request};
use futures_lite::AsyncWriteExt;
use glommio::net::TcpStream;

use crate::context::ShardContext;
use crate::metrics::probes::{Outcome, Protocol, RequestKind};
use crate::request::legacy as handlers;
use crate::route::ShardGone;
use batch::Batch;
pub use input::Input;

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
    fn is_disconnect(&self) -> bool {
        matches!(self, ConnError::Io(e) if matches!(
            e.kind(),
            io::ErrorKind::ConnectionReset
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::UnexpectedEof
                | io::ErrorKind::ConnectionAborted
        ))
    }
}

/// A streaming request: it takes over the connection until its stream ends.
pub enum Stream {
    Consume(Vec<u8>),
    Produce(Vec<u8>),
    ProduceMulti(Vec<Vec<u8>>),
}

/// What the connection does after a batch.
enum Step {
    /// More complete requests may be buffered: run another batch.
    Continue,
    /// Wait until the buffer holds at least this many bytes.
    Read(usize),
    Stream(Stream),
    Close(ConnError),
}

/// One legacy client connection.
pub struct Connection {
    pub(crate) stream: TcpStream,
    pub(crate) input: Input,
    pub(crate) ctx: Rc<ShardContext>,
    out: Vec<u8>,
    peer: Option<SocketAddr>,
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

    /// Serves the connection until it ends; logs why if that was not ordinary.
    pub async fn run(mut self) {
        match self.serve().await {
            Ok(()) => {}
            Err(e) if e.is_disconnect() => {
                tracing::debug!(peer = ?self.peer, "legacy connection closed: {e}");
            }
            Err(e) => tracing::warn!(peer = ?self.peer, "legacy connection: {e}"),
        }
    }

    async fn serve(&mut self) -> Result<(), ConnError> {
        loop {
            match self.run_batch().await? {
                Step::Continue => {}
                Step::Read(needed) => {
                    if !self.read_or_shutdown(needed).await? {
                        return Ok(());
                    }
                }
                Step::Stream(Stream::Consume(channel)) => {
                    if !handlers::consume::run(self, channel).await? {
                        return Ok(());
                    }
                }
                Step::Stream(Stream::Produce(channel)) => {
                    if !handlers::produce::run(self, vec![channel], RequestKind::Produce).await? {
                        return Ok(());
                    }
                }
                Step::Stream(Stream::ProduceMulti(channels)) => {
                    if !handlers::produce::run(self, channels, RequestKind::ProduceMulti).await? {
                        return Ok(());
                    }
                }
                Step::Close(e) => return Err(e),
            }
        }
    }

    /// Parses and runs the complete requests in the buffer (up to the batch
    /// limits or a streaming request), then writes their replies.
    async fn run_batch(&mut self) -> Result<Step, ConnError> {
        let mut batch = Batch::new(&self.ctx.router, std::mem::take(&mut self.out));
        let step = loop {
            if batch.is_full() {
                break Step::Continue;
            }
            let data = self.input.data();
            let (request, used) = match legacy::parse(data) {
                Ok(parsed) => parsed,
                Err(DecodeError::Incomplete { needed }) => break Step::Read(needed),
                Err(DecodeError::UnknownCommand(code)) => {
                    self.ctx.probes().request_done(
                        Protocol::Legacy,
                        RequestKind::Unsupported,
                        Outcome::Closed,
                        None,
                    );
                    break Step::Close(ConnError::InvalidCommand(code));
                }
                Err(e) => break Step::Close(ConnError::TooLong(e)),
            };
            let stream = match request {
                Request::Push { channel, value } => {
                    handlers::push::handle(&mut batch, channel, value);
                    None
                }
                Request::Pop { channel } => {
                    handlers::pop::handle(&mut batch, channel);
                    None
                }
                Request::PushMulti { channels, value } => {
                    handlers::push_multi::handle(&mut batch, channels, value);
                    None
                }
                Request::RemoveChannel { channel } => {
                    handlers::remove_channel::handle(&mut batch, channel);
                    None
                }
                Request::GetNumConnections => {
                    handlers::get_num_connections::handle(&mut batch);
                    None
                }
                Request::Consume { channel } => Some(Stream::Consume(channel.to_vec())),
                Request::Produce { channel } => Some(Stream::Produce(channel.to_vec())),
                Request::ProduceMulti { channels } => Some(Stream::ProduceMulti(
                    channels.iter().map(<[u8]>::to_vec).collect(),
                )),
            };
            self.input.consume(used);
            if let Some(stream) = stream {
                break Step::Stream(stream);
            }
        };
        let out = batch.finish().await?;
        self.out = out;
        self.flush().await?;
        Ok(step)
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
