//! One legacy-protocol connection (spec §2): requests encoded and replies decoded
//! with `dmq_proto::legacy`, one request at a time.

use dmq_proto::legacy::{
    encode_array, encode_channel_list, encode_stream_end, parse_array, parse_status,
    parse_stream_item, Command, DecodeError, Request, Status, StreamItem,
};
use futures_lite::{AsyncRead, AsyncWrite};

use crate::wire::{ConnError, Wire};

/// The legacy status 200.
pub(crate) const OK: i32 = Status::Ok as i32;
/// The legacy status 406, GetNumConnections' fixed answer.
const NOT_SUPPORTED: i32 = Status::NotSupported as i32;

/// A legacy connection. After a request, it is reusable if the request returned
/// `Ok` (whatever the status): the node reads every request byte before it answers,
/// so a status never leaves the stream out of step.
pub(crate) struct LegacyConn<S> {
    pub(crate) wire: Wire<S>,
}

/// How far a request got when it failed: whether the node may have acted on it.
#[derive(Debug)]
pub(crate) struct Failed {
    pub(crate) error: ConnError,
    /// Some request bytes left this side before the failure.
    pub(crate) sent: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> LegacyConn<S> {
    pub(crate) fn new(stream: S) -> Self {
        LegacyConn {
            wire: Wire::new(stream),
        }
    }

    /// Reads one item with a `dmq_proto` decoder that borrows from the buffer;
    /// `own` turns it into an owned value before the bytes are consumed.
    async fn read<T>(
        &mut self,
        decode: impl Fn(&[u8]) -> Result<(T, usize), DecodeError>,
    ) -> Result<T, ConnError> {
        // Bounded: every round reads at least one byte, and the decoders refuse any
        // length prefix over the protocol's limit before asking for its bytes.
        loop {
            match decode(self.wire.data()) {
                Ok((value, used)) => {
                    self.wire.consume(used);
                    return Ok(value);
                }
                Err(DecodeError::Incomplete { needed }) => self.wire.fill(needed).await?,
                Err(e) => return Err(ConnError::Protocol(e.to_string())),
            }
        }
    }

    async fn send(&mut self) -> Result<(), Failed> {
        self.wire.flush().await.map_err(|error| Failed {
            sent: self.wire.sent_any(),
            error,
        })
    }

    async fn status(&mut self) -> Result<i32, Failed> {
        self.read(parse_status)
            .await
            .map_err(|error| Failed { error, sent: true })
    }

    /// Push: the node's status.
    pub(crate) async fn push(&mut self, channel: &[u8], value: &[u8]) -> Result<i32, Failed> {
        Request::Push { channel, value }.encode(self.wire.out());
        self.send().await?;
        self.status().await
    }

    /// PushMulti: the node's status.
    pub(crate) async fn push_multi(
        &mut self,
        channels: &[&[u8]],
        value: &[u8],
    ) -> Result<i32, Failed> {
        let out = self.wire.out();
        out.extend_from_slice(&Command::PushMulti.code().to_le_bytes());
        encode_channel_list(out, channels.iter().copied());
        encode_array(out, value);
        self.send().await?;
        self.status().await
    }

    /// Pop: `Ok(Ok(value))` after 200 (empty: nothing to pop), `Ok(Err(status))`
    /// otherwise.
    pub(crate) async fn pop(&mut self, channel: &[u8]) -> Result<Result<Vec<u8>, i32>, Failed> {
        Request::Pop { channel }.encode(self.wire.out());
        self.send().await?;
        match self.status().await? {
            OK => {
                let value = self
                    .read(|buf| parse_array(buf).map(|(value, used)| (value.to_vec(), used)))
                    .await
                    .map_err(|error| Failed { error, sent: true })?;
                Ok(Ok(value))
            }
            status => Ok(Err(status)),
        }
    }

    /// RemoveChannel: the node's status.
    pub(crate) async fn remove_channel(&mut self, channel: &[u8]) -> Result<i32, Failed> {
        Request::RemoveChannel { channel }.encode(self.wire.out());
        self.send().await?;
        self.status().await
    }

    /// Sends Consume and reads the status; after 200 records follow
    /// ([`LegacyConn::take_record`]).
    pub(crate) async fn start_consume(&mut self, channel: &[u8]) -> Result<i32, Failed> {
        Request::Consume { channel }.encode(self.wire.out());
        self.send().await?;
        self.status().await
    }

    /// Sends Produce and reads the status; after 200 the stream is open.
    pub(crate) async fn start_produce(&mut self, channel: &[u8]) -> Result<i32, Failed> {
        Request::Produce { channel }.encode(self.wire.out());
        self.send().await?;
        self.status().await
    }

    /// Queues one Produce record (not empty: that would end the stream).
    pub(crate) fn queue_record(&mut self, record: &[u8]) {
        encode_array(self.wire.out(), record);
    }

    /// Ends a Produce stream, then waits for the answer to a GetNumConnections sent
    /// after it: the node handles a connection's requests in order, so its answer
    /// proves that every record before it was stored.
    pub(crate) async fn end_produce_and_sync(&mut self) -> Result<(), Failed> {
        encode_stream_end(self.wire.out());
        Request::GetNumConnections.encode(self.wire.out());
        self.send().await?;
        match self.status().await? {
            NOT_SUPPORTED => Ok(()),
            other => Err(Failed {
                error: ConnError::Protocol(format!(
                    "GetNumConnections after a Produce stream answered {other}, not 406"
                )),
                sent: true,
            }),
        }
    }

    /// The next record of a Consume stream if a whole one is buffered: `Some(None)`
    /// is the end marker (the channel was removed).
    pub(crate) fn take_record(&mut self) -> Result<Option<Option<Vec<u8>>>, ConnError> {
        match parse_stream_item(self.wire.data()) {
            Ok((item, used)) => {
                let item = match item {
                    StreamItem::Record(record) => Some(record.to_vec()),
                    StreamItem::End => None,
                };
                self.wire.consume(used);
                Ok(Some(item))
            }
            Err(DecodeError::Incomplete { .. }) => Ok(None),
            Err(e) => Err(ConnError::Protocol(e.to_string())),
        }
    }

    /// Bytes the decoder needs buffered before the next Consume item can be taken.
    pub(crate) fn record_needed(&self) -> usize {
        match parse_stream_item(self.wire.data()) {
            Err(DecodeError::Incomplete { needed }) => needed,
            _ => 0,
        }
    }
}
