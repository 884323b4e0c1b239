//! Helpers shared by the unit tests of the neo codec.

use super::frame::{encode_header, parse_message, MessageType, HEADER_LEN};
use super::request::split_request_body;
use super::wire::encode_array;

pub(super) use crate::test_rng::XorShift;

impl XorShift {
    /// Random bytes that look like neo traffic often enough to reach deep into the
    /// decoders: valid headers, request ids, command and status bytes, short arrays,
    /// limit edges and plain noise.
    pub(super) fn neo_bytes(&mut self, max_pieces: u64) -> Vec<u8> {
        let mut out = Vec::new();
        for _ in 0..self.below(max_pieces + 1) {
            match self.below(10) {
                0 | 1 => {
                    let kind = if self.below(2) == 0 {
                        MessageType::Request
                    } else {
                        MessageType::Authentication
                    };
                    let len = self.below(40) as usize;
                    encode_header(&mut out, kind, len);
                }
                2 => out.extend_from_slice(&self.below(4).to_le_bytes()),
                3 => {
                    let code = [1, 2, 6, 0, 9][self.below(5) as usize];
                    let version = self.below(6) as u8;
                    out.extend_from_slice(&[code, version]);
                }
                4 => out.push([1, 2, 3, 4, 5, 0xFD, 0xFE, 0xFF][self.below(8) as usize]),
                5 | 6 => {
                    let bytes = self.bytes(5);
                    encode_array(&mut out, &bytes);
                }
                7 => {
                    let len = match self.below(3) {
                        0 => 1 << 40,
                        1 => u64::MAX,
                        _ => self.next(),
                    };
                    out.extend_from_slice(&len.to_le_bytes());
                }
                _ => {
                    let bytes = self.bytes(4);
                    out.extend_from_slice(&bytes);
                }
            }
        }
        out
    }
}

/// Parses `bytes` as exactly one Request message and returns its id and payload.
pub(super) fn request_payload(bytes: &[u8]) -> (u64, &[u8]) {
    let (message, used) = parse_message(bytes).expect("a whole message");
    assert_eq!(used, bytes.len(), "exactly one message");
    assert_eq!(message.kind, MessageType::Request);
    split_request_body(message.body).expect("a request body")
}

/// Parses `bytes` as exactly one Authentication message and returns its body.
pub(super) fn auth_body(bytes: &[u8]) -> &[u8] {
    let (message, used) = parse_message(bytes).expect("a whole message");
    assert_eq!(used, bytes.len(), "exactly one message");
    assert_eq!(message.kind, MessageType::Authentication);
    assert!(bytes.len() >= HEADER_LEN);
    message.body
}

/// Checks that every strict prefix of a message body is refused by `parse` and that
/// one extra byte is refused too: bodies are exact.
///
/// `parse` returns `()`, as in `|body| PopReply::parse(body).map(drop)`, because a
/// parsed value borrows from the body it came from.
pub(super) fn assert_exact(payload: &[u8], parse: impl Fn(&[u8]) -> Result<(), super::BodyError>) {
    assert!(parse(payload).is_ok(), "{payload:?}");
    for len in 0..payload.len() {
        assert!(parse(&payload[..len]).is_err(), "{payload:?}[..{len}]");
    }
    let mut longer = payload.to_vec();
    longer.push(0);
    assert_eq!(
        parse(&longer),
        Err(super::BodyError::TrailingBytes { count: 1 }),
        "{payload:?} + 1 byte"
    );
}
