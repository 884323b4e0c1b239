//! The legacy request loop of a connection: parse every complete request in
//! the buffer into a [`Batch`] (up to its limits, or until a streaming
//! request), write the replies, and hand the connection to a stream's
//! handler when one starts.

use dmq_proto::legacy::{self, DecodeError, Request};

use super::batch::Batch;
use super::connection::{ConnError, Connection};
use crate::metrics::probes::{Outcome, Protocol, RequestKind};
use crate::request::legacy as handlers;

/// A streaming request: it takes over the connection until its stream ends.
enum Stream {
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

impl Connection {
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
}
