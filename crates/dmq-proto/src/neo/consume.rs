//! Consume v4 (spec §3.8): stream a channel's records to a subscriber, in batches
//! acknowledged one at a time.
//!
//! Client → node, after the command `6 4`: channel and subscriber names as arrays (the
//! empty subscriber is the default one). The node answers SupportedStatus, then a
//! [`ConsumeStatus`] message; after Started, every message in either direction is one
//! type byte, plus the batch for Records:
//!
//! | byte | message | direction | payload after the byte |
//! |---|---|---|---|
//! | 1 | Continue | C → N | nothing |
//! | 2 | Stop | C → N | nothing |
//! | 3 | Records | N → C | `u64 batch_len`, then records, each `u64 len` + bytes |
//! | 4 | Stopped | N → C | nothing |
//! | 5 | ChannelRemoved | N → C | nothing |

use super::frame::MAX_REQUEST_BODY;
use super::request::{encode_request_header, RequestCode, RequestId, COMMAND_LEN, REQUEST_ID_LEN};
use super::wire::{array_len, encode_array, ArrayList, BodyError, Fields, ARRAY_PREFIX_LEN};

/// The original node sends a batch as soon as it holds at least this many bytes after
/// a record was added (`min_batch_length`); a smaller batch goes out on the flush timer.
pub const BATCH_SEND_THRESHOLD: usize = 100_000;

/// Longest batch that fits in one Records message under [`MAX_REQUEST_BODY`]: the
/// body also holds the request id, the type byte and the batch length. A node must send
/// its batch before appending a record that would make it longer; any record a Push can
/// carry fits in an empty batch.
pub const MAX_RECORDS_BATCH: usize = MAX_REQUEST_BODY - REQUEST_ID_LEN - 1 - ARRAY_PREFIX_LEN;

/// A Consume request, borrowed from the message it came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsumeRequest<'a> {
    /// Channel name, raw bytes (not validated by the original, spec §10 Q3).
    pub channel: &'a [u8],
    /// Subscriber name; empty for the default subscriber.
    pub subscriber: &'a [u8],
}

impl<'a> ConsumeRequest<'a> {
    /// Parses the request's fields (the payload after the command).
    pub fn parse(fields: &'a [u8]) -> Result<Self, BodyError> {
        let mut fields = Fields::new(fields);
        let channel = fields.array()?;
        let subscriber = fields.array()?;
        fields.finish()?;
        Ok(ConsumeRequest {
            channel,
            subscriber,
        })
    }

    /// Appends the first message of this request with id `id` (client side).
    pub fn encode(&self, out: &mut Vec<u8>, id: RequestId) {
        let payload_len =
            COMMAND_LEN + array_len(self.channel.len()) + array_len(self.subscriber.len());
        encode_request_header(out, id, payload_len);
        out.extend_from_slice(&RequestCode::Consume.command().to_bytes());
        encode_array(out, self.channel);
        encode_array(out, self.subscriber);
    }
}

/// The node's answer to a Consume, after SupportedStatus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i8)]
pub enum ConsumeStatus {
    /// The node is consuming; Records, Stopped or ChannelRemoved follow.
    Started = 1,
    /// The node failed; the request ends.
    Error = 2,
}

impl ConsumeStatus {
    /// The status byte.
    pub fn code(self) -> i8 {
        self as i8
    }

    /// Parses the payload (after the request id) of the status message: exactly one
    /// byte (client side). The original client treats an unknown code as Error.
    pub fn parse(payload: &[u8]) -> Result<ConsumeStatus, BodyError> {
        let mut fields = Fields::new(payload);
        let code = fields.u8()?;
        fields.finish()?;
        match code {
            1 => Ok(ConsumeStatus::Started),
            2 => Ok(ConsumeStatus::Error),
            code => Err(BodyError::UnknownCode {
                what: "Consume status",
                code,
            }),
        }
    }

    /// Appends the whole status message for request `id` (node side).
    pub fn encode(self, out: &mut Vec<u8>, id: RequestId) {
        encode_request_header(out, id, 1);
        out.push(self.code() as u8);
    }
}

/// A message from the client to a running Consume: exactly one byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ConsumeClientMessage {
    /// Send the next batch (acknowledges the last one).
    Continue = 1,
    /// End the request; the node answers Stopped (after any Records it still had to
    /// send).
    Stop = 2,
}

impl ConsumeClientMessage {
    /// The type byte.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// Parses the payload (after the request id) of a client message (node side).
    /// Anything but exactly one byte 1 or 2 is a protocol error; whether Continue is
    /// expected at this point is for the node to judge.
    pub fn parse(payload: &[u8]) -> Result<ConsumeClientMessage, BodyError> {
        let mut fields = Fields::new(payload);
        let code = fields.u8()?;
        fields.finish()?;
        match code {
            1 => Ok(ConsumeClientMessage::Continue),
            2 => Ok(ConsumeClientMessage::Stop),
            code => Err(BodyError::UnknownCode {
                what: "Consume client message type",
                code,
            }),
        }
    }

    /// Appends the whole message for request `id` (client side).
    pub fn encode(self, out: &mut Vec<u8>, id: RequestId) {
        encode_request_header(out, id, 1);
        out.push(self.code());
    }
}

/// A message from the node to a running Consume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumeNodeMessage<'a> {
    /// Type 3: a batch of records, validated; the client answers Continue or Stop.
    Records(ArrayList<'a>),
    /// Type 4: the request ended after a Stop.
    Stopped,
    /// Type 5: the channel was removed; the request ended (no Stopped follows).
    ChannelRemoved,
}

impl<'a> ConsumeNodeMessage<'a> {
    /// The type byte.
    pub fn code(&self) -> u8 {
        match self {
            ConsumeNodeMessage::Records(_) => 3,
            ConsumeNodeMessage::Stopped => 4,
            ConsumeNodeMessage::ChannelRemoved => 5,
        }
    }

    /// Parses the payload (after the request id) of a node message (client side). A
    /// Records batch is checked whole before it is returned: every record length must
    /// fit, and the records must fill the batch exactly.
    pub fn parse(payload: &'a [u8]) -> Result<Self, BodyError> {
        let mut fields = Fields::new(payload);
        let message = match fields.u8()? {
            3 => ConsumeNodeMessage::Records(ArrayList::parse(fields.array()?)?),
            4 => ConsumeNodeMessage::Stopped,
            5 => ConsumeNodeMessage::ChannelRemoved,
            code => {
                return Err(BodyError::UnknownCode {
                    what: "Consume node message type",
                    code,
                })
            }
        };
        fields.finish()?;
        Ok(message)
    }

    /// Appends the whole message for request `id` (node side).
    pub fn encode(&self, out: &mut Vec<u8>, id: RequestId) {
        match self {
            ConsumeNodeMessage::Records(records) => encode_records(out, id, records.encoded()),
            _ => {
                encode_request_header(out, id, 1);
                out.push(self.code());
            }
        }
    }
}

/// Appends one record to a batch being built: its length as a `u64` and its bytes.
pub fn append_record(batch: &mut Vec<u8>, record: &[u8]) {
    encode_array(batch, record);
}

/// Appends a whole Records message for request `id` (node side) whose batch is
/// `batch`, records built with [`append_record`]. The batch is sent as it is; keep it
/// within [`MAX_RECORDS_BATCH`].
pub fn encode_records(out: &mut Vec<u8>, id: RequestId, batch: &[u8]) {
    encode_request_header(out, id, 1 + array_len(batch.len()));
    out.push(ConsumeNodeMessage::Records(ArrayList::default()).code());
    encode_array(out, batch);
}

#[cfg(test)]
mod tests {
    use super::super::frame::HEADER_LEN;
    use super::super::request::{parse_start, NewRequest, Start};
    use super::super::test_util::{assert_exact, request_payload};
    use super::*;

    #[test]
    fn start_wire_bytes() {
        let mut out = Vec::new();
        ConsumeRequest {
            channel: b"ch",
            subscriber: b"",
        }
        .encode(&mut out, 3);
        let expected: &[u8] = &[
            1, 28, 0, 0, 0, 0, 0, 0, 0, 29, // header: Request, 28-byte body, parity
            3, 0, 0, 0, 0, 0, 0, 0, // request id 3
            6, 4, // Consume v4
            2, 0, 0, 0, 0, 0, 0, 0, b'c', b'h', // "ch"
            0, 0, 0, 0, 0, 0, 0, 0, // default subscriber ""
        ];
        assert_eq!(out, expected);
    }

    #[test]
    fn start_round_trips() {
        for (channel, subscriber) in [
            (&b"ch"[..], &b""[..]),
            (b"", b"sub"),
            (b"a@b", &[0xFF; 200]),
        ] {
            let request = ConsumeRequest {
                channel,
                subscriber,
            };
            let mut out = Vec::new();
            request.encode(&mut out, 8);
            let (id, payload) = request_payload(&out);
            assert_eq!(id, 8);
            assert_eq!(
                parse_start(payload),
                Ok(Start::Supported(NewRequest::Consume(request)))
            );
            assert_exact(payload.get(COMMAND_LEN..).unwrap_or_default(), |fields| {
                ConsumeRequest::parse(fields).map(drop)
            });
        }
    }

    #[test]
    fn statuses_and_client_messages_are_one_byte() {
        for (status, byte) in [(ConsumeStatus::Started, 1), (ConsumeStatus::Error, 2)] {
            let mut out = Vec::new();
            status.encode(&mut out, 6);
            assert_eq!(request_payload(&out), (6, &[byte][..]));
            assert_exact(&[byte], |body| ConsumeStatus::parse(body).map(drop));
        }
        for (message, byte) in [
            (ConsumeClientMessage::Continue, 1),
            (ConsumeClientMessage::Stop, 2),
        ] {
            let mut out = Vec::new();
            message.encode(&mut out, 6);
            // Request id + 1 byte, nothing else.
            assert_eq!(out.len(), HEADER_LEN + 8 + 1);
            assert_eq!(request_payload(&out), (6, &[byte][..]));
            assert_exact(&[byte], |body| ConsumeClientMessage::parse(body).map(drop));
        }
        for code in [0, 3, 4, 5, 0xFF] {
            assert!(matches!(
                ConsumeClientMessage::parse(&[code]),
                Err(BodyError::UnknownCode { .. })
            ));
        }
        assert!(ConsumeStatus::parse(&[3]).is_err());
    }

    #[test]
    fn records_message_layout() {
        let mut batch = Vec::new();
        append_record(&mut batch, b"r1");
        append_record(&mut batch, b"");
        append_record(&mut batch, b"record-3");
        let mut out = Vec::new();
        encode_records(&mut out, 9, &batch);
        let (id, payload) = request_payload(&out);
        assert_eq!(id, 9);
        // Type 3, the batch length, then the records.
        let mut expected = vec![3];
        expected.extend_from_slice(&(batch.len() as u64).to_le_bytes());
        expected.extend_from_slice(&batch);
        assert_eq!(payload, &expected[..]);
        let Ok(ConsumeNodeMessage::Records(records)) = ConsumeNodeMessage::parse(payload) else {
            panic!("records");
        };
        assert_eq!(
            records.iter().collect::<Vec<_>>(),
            [&b"r1"[..], b"", b"record-3"]
        );
        assert_exact(payload, |body| ConsumeNodeMessage::parse(body).map(drop));
        let mut again = Vec::new();
        ConsumeNodeMessage::Records(records).encode(&mut again, 9);
        assert_eq!(again, out);
    }

    #[test]
    fn node_messages_round_trip() {
        for message in [
            ConsumeNodeMessage::Stopped,
            ConsumeNodeMessage::ChannelRemoved,
            ConsumeNodeMessage::Records(ArrayList::default()),
        ] {
            let mut out = Vec::new();
            message.encode(&mut out, 1);
            let (_, payload) = request_payload(&out);
            assert_eq!(payload.first(), Some(&message.code()));
            assert_eq!(ConsumeNodeMessage::parse(payload), Ok(message));
            assert_exact(payload, |body| ConsumeNodeMessage::parse(body).map(drop));
        }
        for code in [0, 1, 2, 6, 0xFF] {
            assert!(matches!(
                ConsumeNodeMessage::parse(&[code]),
                Err(BodyError::UnknownCode { .. })
            ));
        }
    }

    #[test]
    fn malformed_batches_are_refused() {
        // A record that runs past the end of the batch.
        let mut batch = Vec::new();
        append_record(&mut batch, b"abc");
        batch.truncate(batch.len() - 1);
        let mut payload = vec![3];
        encode_array(&mut payload, &batch);
        assert_eq!(
            ConsumeNodeMessage::parse(&payload),
            Err(BodyError::Truncated { missing: 1 })
        );
        // Half a length prefix at the end of the batch.
        let mut batch = Vec::new();
        append_record(&mut batch, b"abc");
        batch.extend_from_slice(&[1, 0, 0]);
        let mut payload = vec![3];
        encode_array(&mut payload, &batch);
        assert_eq!(
            ConsumeNodeMessage::parse(&payload),
            Err(BodyError::Truncated { missing: 5 })
        );
        // A record announcing 2^40 bytes.
        let mut batch = (1u64 << 40).to_le_bytes().to_vec();
        batch.push(0);
        let mut payload = vec![3];
        encode_array(&mut payload, &batch);
        assert!(ConsumeNodeMessage::parse(&payload).is_err());
    }

    #[test]
    fn batch_limit_leaves_room_for_the_message() {
        assert_eq!(
            REQUEST_ID_LEN + 1 + ARRAY_PREFIX_LEN + MAX_RECORDS_BATCH,
            MAX_REQUEST_BODY
        );
        const { assert!(BATCH_SEND_THRESHOLD < MAX_RECORDS_BATCH) };
    }
}
