//! One neo-protocol connection (spec §3): the version handshake, HMAC
//! authentication, and requests encoded and decoded with `dmq_proto::neo`.
//!
//! A connection carries one Push or Pop at a time (the client's pool gives each
//! concurrent request its own connection), or one Consume for its whole life. The
//! protocol could multiplex them on one connection; that would need a task reading
//! the socket for every request, which a runtime-neutral client without tasks of
//! its own does not have.

use std::time::{SystemTime, UNIX_EPOCH};

use dmq_proto::neo::{
    check_version, encode_client_timestamp, encode_push, hmac_code, parse_auth_result,
    parse_message, parse_nonce, split_request_body, BodyError, ClientIdentity,
    ConsumeClientMessage, ConsumeNodeMessage, ConsumeRequest, ConsumeStatus, FrameError,
    MessageType, PopReply, PopRequest, PushStatus, RequestId, SupportedStatus, PROTOCOL_VERSION,
};
use futures_lite::{AsyncRead, AsyncWrite};

use crate::config::ClientCredentials;
use crate::legacy::Failed;
use crate::wire::{ConnError, Wire};

/// A neo connection, authenticated.
pub(crate) struct NeoConn<S> {
    pub(crate) wire: Wire<S>,
    last_id: RequestId,
}

/// What a neo Pop found.
pub(crate) enum PopOutcome {
    Popped(Vec<u8>),
    Empty,
    Error,
    Subscribed,
}

/// Most Records messages a node may send after our Stop: the batch that was in
/// flight, then the records it had already popped (`docs/protocol-neo.md`, Consume
/// flow control). More is a broken node; this keeps what `drain_consume` buffers
/// bounded.
const MAX_BATCHES_AFTER_STOP: usize = 2;

/// A message of a running Consume.
pub(crate) enum ConsumeEvent {
    /// A batch of records, appended to the caller's buffer; answer Continue for
    /// the next one.
    Records,
    /// The request ended after our Stop.
    Stopped,
    /// The channel was removed; the request ended.
    ChannelRemoved,
}

fn protocol<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> ConnError + '_ {
    move |e| ConnError::Protocol(format!("{what}: {e}"))
}

impl<S: AsyncRead + AsyncWrite + Unpin> NeoConn<S> {
    /// Runs the version handshake and authenticates as `credentials`.
    pub(crate) async fn handshake(
        stream: S,
        credentials: &ClientCredentials,
    ) -> Result<Self, ConnError> {
        let mut conn = NeoConn {
            wire: Wire::new(stream),
            last_id: 0,
        };
        // The version byte must go alone: the node refuses bytes sent with it.
        conn.wire.out().push(PROTOCOL_VERSION);
        conn.wire.flush().await?;
        while conn.wire.data().is_empty() {
            conn.wire.fill(1).await?;
        }
        let theirs = conn.wire.data()[0];
        conn.wire.consume(1);
        check_version(theirs).map_err(protocol("version"))?;

        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(1);
        encode_client_timestamp(conn.wire.out(), timestamp);
        conn.wire.flush().await?;
        let nonce = conn
            .read_auth(|body| parse_nonce(body).map_err(protocol("nonce")))
            .await?;
        let code = hmac_code(&credentials.key, timestamp, &nonce);
        ClientIdentity {
            name: credentials.name.as_bytes(),
            code: &code,
        }
        .encode(conn.wire.out());
        conn.wire.flush().await?;
        let accepted = conn
            .read_auth(|body| parse_auth_result(body).map_err(protocol("authentication result")))
            .await?;
        if !accepted {
            return Err(ConnError::AuthRejected);
        }
        Ok(conn)
    }

    /// Reads one whole message and hands its type and body to `f`.
    async fn read_message<T>(
        &mut self,
        f: impl FnOnce(MessageType, &[u8]) -> Result<T, ConnError>,
    ) -> Result<T, ConnError> {
        // Bounded: every round reads at least one byte; the header is judged (body
        // length against the limit of its type) before its body is awaited.
        loop {
            match parse_message(self.wire.data()) {
                Ok((message, used)) => {
                    let result = f(message.kind, message.body);
                    self.wire.consume(used);
                    return result;
                }
                Err(FrameError::Incomplete { needed }) => self.wire.fill(needed).await?,
                Err(e) => return Err(ConnError::Protocol(e.to_string())),
            }
        }
    }

    async fn read_auth<T>(
        &mut self,
        f: impl FnOnce(&[u8]) -> Result<T, ConnError>,
    ) -> Result<T, ConnError> {
        self.read_message(|kind, body| match kind {
            MessageType::Authentication => f(body),
            other => Err(ConnError::Protocol(format!(
                "{other:?} message during authentication"
            ))),
        })
        .await
    }

    /// Reads the next message of request `id` and parses its payload with `f`.
    async fn read_reply<T>(
        &mut self,
        id: RequestId,
        f: impl FnOnce(&[u8]) -> Result<T, BodyError>,
    ) -> Result<T, ConnError> {
        self.read_message(|kind, body| {
            request_payload(kind, body, id)
                .and_then(|p| f(p).map_err(|e| ConnError::Protocol(e.to_string())))
        })
        .await
    }

    fn next_id(&mut self) -> RequestId {
        self.last_id += 1;
        self.last_id
    }

    async fn send(&mut self) -> Result<(), Failed> {
        self.wire.flush().await.map_err(|error| Failed {
            sent: self.wire.sent_any(),
            error,
        })
    }

    /// Reads the SupportedStatus that opens every answer.
    async fn supported(&mut self, id: RequestId, what: &'static str) -> Result<(), ConnError> {
        match self.read_reply(id, SupportedStatus::parse).await? {
            SupportedStatus::RequestSupported => Ok(()),
            SupportedStatus::RequestVersionNotSupported | SupportedStatus::RequestNotSupported => {
                Err(ConnError::Unsupported(what))
            }
        }
    }

    /// Push v3 to `channels` (1 to 255).
    pub(crate) async fn push(
        &mut self,
        channels: &[&[u8]],
        value: &[u8],
    ) -> Result<PushStatus, Failed> {
        let id = self.next_id();
        encode_push(self.wire.out(), id, channels, value).map_err(|e| Failed {
            error: ConnError::Protocol(e.to_string()),
            sent: false,
        })?;
        self.send().await?;
        let sent = |error| Failed { error, sent: true };
        self.supported(id, "Push v3").await.map_err(sent)?;
        self.read_reply(id, PushStatus::parse).await.map_err(sent)
    }

    /// Pop v1.
    pub(crate) async fn pop(&mut self, channel: &[u8]) -> Result<PopOutcome, Failed> {
        let id = self.next_id();
        PopRequest { channel }.encode(self.wire.out(), id);
        self.send().await?;
        let sent = |error| Failed { error, sent: true };
        self.supported(id, "Pop v1").await.map_err(sent)?;
        self.read_reply(id, |payload| {
            Ok(match PopReply::parse(payload)? {
                PopReply::Popped(value) => PopOutcome::Popped(value.to_vec()),
                PopReply::Empty => PopOutcome::Empty,
                PopReply::Error => PopOutcome::Error,
                PopReply::Subscribed => PopOutcome::Subscribed,
            })
        })
        .await
        .map_err(sent)
    }

    /// Starts Consume v4; on `Started`, messages follow
    /// ([`NeoConn::take_consume_event`]) and the returned id names them.
    pub(crate) async fn start_consume(
        &mut self,
        channel: &[u8],
        subscriber: &[u8],
    ) -> Result<(RequestId, ConsumeStatus), Failed> {
        let id = self.next_id();
        ConsumeRequest {
            channel,
            subscriber,
        }
        .encode(self.wire.out(), id);
        self.send().await?;
        let sent = |error| Failed { error, sent: true };
        self.supported(id, "Consume v4").await.map_err(sent)?;
        let status = self
            .read_reply(id, ConsumeStatus::parse)
            .await
            .map_err(sent)?;
        Ok((id, status))
    }

    /// Queues a Continue or Stop for Consume `id` (sent by the next flush).
    pub(crate) fn queue_consume_message(&mut self, id: RequestId, message: ConsumeClientMessage) {
        message.encode(self.wire.out(), id);
    }

    /// The next Consume message if a whole one is buffered; the records of a
    /// batch go straight into `records`.
    pub(crate) fn take_consume_event(
        &mut self,
        id: RequestId,
        records: &mut impl Extend<Vec<u8>>,
    ) -> Result<Option<ConsumeEvent>, ConnError> {
        let (event, used) = match parse_message(self.wire.data()) {
            Ok((message, used)) => {
                let payload = request_payload(message.kind, message.body, id)?;
                let event = match ConsumeNodeMessage::parse(payload)
                    .map_err(|e| ConnError::Protocol(e.to_string()))?
                {
                    ConsumeNodeMessage::Records(batch) => {
                        records.extend(batch.iter().map(<[u8]>::to_vec));
                        ConsumeEvent::Records
                    }
                    ConsumeNodeMessage::Stopped => ConsumeEvent::Stopped,
                    ConsumeNodeMessage::ChannelRemoved => ConsumeEvent::ChannelRemoved,
                };
                (event, used)
            }
            Err(FrameError::Incomplete { .. }) => return Ok(None),
            Err(e) => return Err(ConnError::Protocol(e.to_string())),
        };
        self.wire.consume(used);
        Ok(Some(event))
    }

    /// Bytes that must be buffered before the next message can be taken.
    pub(crate) fn message_needed(&self) -> usize {
        match parse_message(self.wire.data()) {
            Err(FrameError::Incomplete { needed }) => needed,
            _ => 0,
        }
    }

    /// Reads messages of Consume `id` until it ends, after a Stop was sent:
    /// records that still arrive go into `records` as they come (the node popped
    /// them already), so an error or a timeout keeps those received before it.
    pub(crate) async fn drain_consume(
        &mut self,
        id: RequestId,
        records: &mut Vec<Vec<u8>>,
    ) -> Result<(), ConnError> {
        let mut batches = 0;
        // Bounded: every round reads at least one byte, and a node may send at
        // most MAX_BATCHES_AFTER_STOP batches (each within the frame limit).
        loop {
            match self.take_consume_event(id, records)? {
                Some(ConsumeEvent::Records) => {
                    batches += 1;
                    if batches > MAX_BATCHES_AFTER_STOP {
                        return Err(ConnError::Protocol(format!(
                            "more than {MAX_BATCHES_AFTER_STOP} Records messages after Stop"
                        )));
                    }
                }
                Some(ConsumeEvent::Stopped | ConsumeEvent::ChannelRemoved) => return Ok(()),
                None => {
                    let needed = self.message_needed();
                    self.wire.fill(needed).await?;
                }
            }
        }
    }
}

/// The payload of a Request message of request `id`.
fn request_payload(kind: MessageType, body: &[u8], id: RequestId) -> Result<&[u8], ConnError> {
    if kind != MessageType::Request {
        return Err(ConnError::Protocol(format!(
            "{kind:?} message after authentication"
        )));
    }
    let (got, payload) =
        split_request_body(body).map_err(|e| ConnError::Protocol(e.to_string()))?;
    if got != id {
        return Err(ConnError::Protocol(format!(
            "message for request {got} while waiting for request {id}"
        )));
    }
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dmq_proto::neo::{append_record, encode_records};
    use futures_lite::future::block_on;
    use futures_lite::io::Cursor;

    /// A connection past its handshake that reads `bytes` from the node.
    fn conn(bytes: Vec<u8>) -> NeoConn<Cursor<Vec<u8>>> {
        NeoConn {
            wire: Wire::new(Cursor::new(bytes)),
            last_id: 0,
        }
    }

    fn records(out: &mut Vec<u8>, id: RequestId, records: &[&[u8]]) {
        let mut batch = Vec::new();
        for record in records {
            append_record(&mut batch, record);
        }
        encode_records(out, id, &batch);
    }

    #[test]
    fn drain_after_stop_keeps_the_late_batches() {
        let mut bytes = Vec::new();
        records(&mut bytes, 7, &[b"a", b"b"]);
        records(&mut bytes, 7, &[b"c"]);
        ConsumeNodeMessage::Stopped.encode(&mut bytes, 7);
        let mut got = Vec::new();
        block_on(conn(bytes).drain_consume(7, &mut got)).expect("drained");
        assert_eq!(got, [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
    }

    #[test]
    fn a_node_that_keeps_sending_after_stop_is_cut_off() {
        let mut bytes = Vec::new();
        for i in 0..=MAX_BATCHES_AFTER_STOP {
            records(&mut bytes, 7, &[format!("r{i}").as_bytes()]);
        }
        ConsumeNodeMessage::Stopped.encode(&mut bytes, 7);
        let mut got = Vec::new();
        let result = block_on(conn(bytes).drain_consume(7, &mut got));
        assert!(matches!(result, Err(ConnError::Protocol(_))), "{result:?}");
        // What came before the excess batch is kept.
        assert_eq!(got.len(), MAX_BATCHES_AFTER_STOP + 1);
    }
}
