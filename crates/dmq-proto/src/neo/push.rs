//! Push v3 (spec §3.6): push one value to one or more channels.
//!
//! Client → node, after the command `1 3`: `u8 n_channels`, `n_channels` arrays (the
//! channel names), then the value as an array; nothing may follow. The node answers
//! SupportedStatus, then one [`PushStatus`] message.

use super::request::{encode_request_header, RequestCode, RequestId, COMMAND_LEN};
use super::wire::{array_len, encode_array, ArrayList, BodyError, Fields};

/// Most channels one Push can name: the count is a `u8`.
pub const MAX_PUSH_CHANNELS: usize = 255;

/// A Push request, borrowed from the message it came in.
///
/// Channel names and the value are raw bytes: the original validates neither (spec
/// §10 Q3); judging them is the node's business. Only [`PushRequest::parse`] makes one,
/// so it never holds more than [`MAX_PUSH_CHANNELS`] channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushRequest<'a> {
    channels: ArrayList<'a>,
    value: &'a [u8],
}

impl<'a> PushRequest<'a> {
    /// Parses the request's fields (the payload after the command). Every array length
    /// is checked against what is left of the body before it is trusted.
    pub fn parse(fields: &'a [u8]) -> Result<Self, BodyError> {
        let mut fields = Fields::new(fields);
        let count = fields.u8()?;
        let channels = fields.arrays(usize::from(count))?;
        let value = fields.array()?;
        fields.finish()?;
        Ok(PushRequest { channels, value })
    }

    /// The channel names, in wire order, duplicates included (0 to 255 of them).
    pub fn channels(&self) -> ArrayList<'a> {
        self.channels
    }

    /// The value; may be empty.
    pub fn value(&self) -> &'a [u8] {
        self.value
    }

    /// Appends the request's first message again, with id `id`.
    pub fn encode(&self, out: &mut Vec<u8>, id: RequestId) {
        // `parse` read the count from a `u8`, so this never saturates.
        let count = u8::try_from(self.channels.len()).unwrap_or(u8::MAX);
        let encoded = self.channels.encoded();
        let payload_len = COMMAND_LEN + 1 + encoded.len() + array_len(self.value.len());
        encode_request_header(out, id, payload_len);
        out.extend_from_slice(&RequestCode::Push.command().to_bytes());
        out.push(count);
        out.extend_from_slice(encoded);
        encode_array(out, self.value);
    }
}

/// More channels than one Push can carry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a Push names at most {} channels, not {count}", MAX_PUSH_CHANNELS)]
pub struct TooManyChannels {
    /// The number of channels asked for.
    pub count: usize,
}

/// Appends the first message of a Push request with id `id` (client side).
///
/// The original client also refuses an empty channel list; the node accepts it (and
/// stores nothing), so this encoder allows it for tests.
pub fn encode_push(
    out: &mut Vec<u8>,
    id: RequestId,
    channels: &[&[u8]],
    value: &[u8],
) -> Result<(), TooManyChannels> {
    let count = u8::try_from(channels.len()).map_err(|_| TooManyChannels {
        count: channels.len(),
    })?;
    let channels_len: usize = channels
        .iter()
        .map(|channel| array_len(channel.len()))
        .sum();
    let payload_len = COMMAND_LEN + 1 + channels_len + array_len(value.len());
    encode_request_header(out, id, payload_len);
    out.extend_from_slice(&RequestCode::Push.command().to_bytes());
    out.push(count);
    for channel in channels {
        encode_array(out, channel);
    }
    encode_array(out, value);
    Ok(())
}

/// The node's answer to a Push, after SupportedStatus. 0 (`None`) is never sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i8)]
pub enum PushStatus {
    /// The value was pushed to every channel.
    Pushed = 1,
    /// A channel could not be created; nothing was pushed.
    Error = 2,
}

impl PushStatus {
    /// The status byte.
    pub fn code(self) -> i8 {
        self as i8
    }

    /// Parses the payload (after the request id) of the status message: exactly one
    /// byte (client side). The original client treats an unknown code as Error; here it
    /// is [`BodyError::UnknownCode`] and the caller decides.
    pub fn parse(payload: &[u8]) -> Result<PushStatus, BodyError> {
        let mut fields = Fields::new(payload);
        let code = fields.u8()?;
        fields.finish()?;
        match code {
            1 => Ok(PushStatus::Pushed),
            2 => Ok(PushStatus::Error),
            code => Err(BodyError::UnknownCode {
                what: "Push status",
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

#[cfg(test)]
mod tests {
    use super::super::request::{parse_start, NewRequest, Start};
    use super::super::test_util::{assert_exact, request_payload};
    use super::*;

    fn push_bytes(id: RequestId, channels: &[&[u8]], value: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_push(&mut out, id, channels, value).expect("encodable");
        out
    }

    #[test]
    fn wire_bytes() {
        let out = push_bytes(1, &[b"ch"], b"ab");
        let expected: &[u8] = &[
            1, 31, 0, 0, 0, 0, 0, 0, 0, 30, // header: Request, 31-byte body, parity
            1, 0, 0, 0, 0, 0, 0, 0, // request id 1
            1, 3, // Push v3
            1, // one channel
            2, 0, 0, 0, 0, 0, 0, 0, b'c', b'h', // "ch"
            2, 0, 0, 0, 0, 0, 0, 0, b'a', b'b', // "ab"
        ];
        assert_eq!(out, expected);
    }

    #[test]
    fn round_trips() {
        let long = vec![0xAB; 5000];
        let many: Vec<&[u8]> = (0..255).map(|_| &b"c"[..]).collect();
        let cases: [(&[&[u8]], &[u8]); 6] = [
            (&[b"ch"], b"ab"),
            (&[], b"v"),
            (&[b"a", b"b", b"a"], b""),
            (&[b""], b"x"),
            (&[b"ch"], &long),
            (&many, b"v"),
        ];
        for (channels, value) in cases {
            let out = push_bytes(77, channels, value);
            let (id, payload) = request_payload(&out);
            assert_eq!(id, 77);
            let Ok(Start::Supported(NewRequest::Push(request))) = parse_start(payload) else {
                panic!("{channels:?}");
            };
            assert_eq!(request.channels().iter().collect::<Vec<_>>(), channels);
            assert_eq!(request.value(), value);
            let mut again = Vec::new();
            request.encode(&mut again, 77);
            assert_eq!(again, out);
            let fields = payload.get(COMMAND_LEN..).unwrap_or_default();
            assert_exact(fields, |body| PushRequest::parse(body).map(drop));
        }
    }

    #[test]
    fn too_many_channels_is_refused_by_the_encoder() {
        let many: Vec<&[u8]> = (0..256).map(|_| &b"c"[..]).collect();
        let mut out = Vec::new();
        assert_eq!(
            encode_push(&mut out, 1, &many, b"v"),
            Err(TooManyChannels { count: 256 })
        );
        assert!(out.is_empty());
    }

    #[test]
    fn lengths_are_checked_against_the_body() {
        // Count says 2, one channel present.
        let mut fields = vec![2];
        encode_array(&mut fields, b"a");
        encode_array(&mut fields, b"v");
        assert!(PushRequest::parse(&fields).is_err());
        // A channel announcing 2^40 bytes.
        let mut fields = vec![1];
        fields.extend_from_slice(&(1u64 << 40).to_le_bytes());
        fields.extend_from_slice(b"abc");
        assert_eq!(
            PushRequest::parse(&fields),
            Err(BodyError::Truncated {
                missing: (1 << 40) - 3
            })
        );
        // No value.
        let mut fields = vec![1];
        encode_array(&mut fields, b"a");
        assert_eq!(
            PushRequest::parse(&fields),
            Err(BodyError::Truncated { missing: 8 })
        );
    }

    #[test]
    fn status_round_trips() {
        for (status, byte) in [(PushStatus::Pushed, 1), (PushStatus::Error, 2)] {
            let mut out = Vec::new();
            status.encode(&mut out, 3);
            assert_eq!(request_payload(&out), (3, &[byte][..]));
            assert_exact(&[byte], |body| PushStatus::parse(body).map(drop));
        }
        for code in [0, 3, 0xFD, 0xFF] {
            assert_eq!(
                PushStatus::parse(&[code]),
                Err(BodyError::UnknownCode {
                    what: "Push status",
                    code
                })
            );
        }
    }
}
