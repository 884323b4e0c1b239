//! Pop v1 (spec §3.7): pop one value from one channel.
//!
//! Client → node, after the command `2 1`: the channel name as an array. The node
//! answers SupportedStatus, then one [`PopReply`] message.

use super::request::{encode_request_header, RequestCode, RequestId, COMMAND_LEN};
use super::wire::{array_len, encode_array, BodyError, Fields};

/// A Pop request, borrowed from the message it came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PopRequest<'a> {
    /// Channel name, raw bytes (the original does not validate it, spec §10 Q3).
    pub channel: &'a [u8],
}

impl<'a> PopRequest<'a> {
    /// Parses the request's fields (the payload after the command).
    pub fn parse(fields: &'a [u8]) -> Result<Self, BodyError> {
        let mut fields = Fields::new(fields);
        let channel = fields.array()?;
        fields.finish()?;
        Ok(PopRequest { channel })
    }

    /// Appends the first message of this request with id `id` (client side).
    pub fn encode(&self, out: &mut Vec<u8>, id: RequestId) {
        encode_request_header(out, id, COMMAND_LEN + array_len(self.channel.len()));
        out.extend_from_slice(&RequestCode::Pop.command().to_bytes());
        encode_array(out, self.channel);
    }
}

/// The node's answer to a Pop, after SupportedStatus: a status byte and, for Popped,
/// the value as an array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PopReply<'a> {
    /// Status 1: the popped value (never empty: the node answers Empty for an empty
    /// record).
    Popped(&'a [u8]),
    /// Status 2: nothing to pop.
    Empty,
    /// Status 3: the node failed.
    Error,
    /// Status 4: the channel has subscribers, so it can only be consumed.
    Subscribed,
}

impl<'a> PopReply<'a> {
    /// The status byte.
    pub fn code(&self) -> i8 {
        match self {
            PopReply::Popped(_) => 1,
            PopReply::Empty => 2,
            PopReply::Error => 3,
            PopReply::Subscribed => 4,
        }
    }

    /// Parses the payload (after the request id) of the reply (client side). The
    /// original client ignores bytes after the value; here they are an error.
    pub fn parse(payload: &'a [u8]) -> Result<Self, BodyError> {
        let mut fields = Fields::new(payload);
        let reply = match fields.u8()? {
            1 => PopReply::Popped(fields.array()?),
            2 => PopReply::Empty,
            3 => PopReply::Error,
            4 => PopReply::Subscribed,
            code => {
                return Err(BodyError::UnknownCode {
                    what: "Pop status",
                    code,
                })
            }
        };
        fields.finish()?;
        Ok(reply)
    }

    /// Appends the whole reply message for request `id` (node side).
    pub fn encode(&self, out: &mut Vec<u8>, id: RequestId) {
        let status = self.code() as u8;
        match self {
            PopReply::Popped(value) => {
                encode_request_header(out, id, 1 + array_len(value.len()));
                out.push(status);
                encode_array(out, value);
            }
            _ => {
                encode_request_header(out, id, 1);
                out.push(status);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::request::{parse_start, NewRequest, Start};
    use super::super::test_util::{assert_exact, request_payload};
    use super::*;

    #[test]
    fn wire_bytes() {
        let mut out = Vec::new();
        PopRequest { channel: b"ch" }.encode(&mut out, 2);
        let expected: &[u8] = &[
            1, 20, 0, 0, 0, 0, 0, 0, 0, 21, // header: Request, 20-byte body, parity
            2, 0, 0, 0, 0, 0, 0, 0, // request id 2
            2, 1, // Pop v1
            2, 0, 0, 0, 0, 0, 0, 0, b'c', b'h', // "ch"
        ];
        assert_eq!(out, expected);
    }

    #[test]
    fn request_round_trips() {
        for channel in [&b""[..], b"x", b"sub@ch", &[0xFF; 300]] {
            let request = PopRequest { channel };
            let mut out = Vec::new();
            request.encode(&mut out, 11);
            let (id, payload) = request_payload(&out);
            assert_eq!(id, 11);
            assert_eq!(
                parse_start(payload),
                Ok(Start::Supported(NewRequest::Pop(request)))
            );
            assert_exact(payload.get(COMMAND_LEN..).unwrap_or_default(), |fields| {
                PopRequest::parse(fields).map(drop)
            });
        }
    }

    #[test]
    fn replies_round_trip() {
        let long = vec![7; 4000];
        for reply in [
            PopReply::Popped(b"value"),
            PopReply::Popped(&long),
            PopReply::Popped(b""),
            PopReply::Empty,
            PopReply::Error,
            PopReply::Subscribed,
        ] {
            let mut out = Vec::new();
            reply.encode(&mut out, 4);
            let (id, payload) = request_payload(&out);
            assert_eq!(id, 4);
            assert_eq!(payload.first().map(|&b| b as i8), Some(reply.code()));
            assert_eq!(PopReply::parse(payload), Ok(reply));
            assert_exact(payload, |body| PopReply::parse(body).map(drop));
        }
        assert_eq!(
            PopReply::parse(&[1, 2, 0, 0, 0, 0, 0, 0, 0, b'a', b'b']),
            Ok(PopReply::Popped(b"ab"))
        );
        assert_eq!(
            PopReply::parse(&[5]),
            Err(BodyError::UnknownCode {
                what: "Pop status",
                code: 5
            })
        );
    }
}
