//! Helpers shared by the unit tests of the legacy decoders.

use super::wire::{encode_array, encode_channel_list};
use super::{check, parse, DecodeError, Request, MAX_ARRAY_LEN, MAX_LIST_BYTES};

pub(super) use crate::test_rng::XorShift;

impl XorShift {
    /// Up to `max_pieces` random pieces that look like legacy traffic often enough to
    /// reach deep into the decoders: command codes, short arrays, terminators, limit
    /// edges and plain noise.
    pub(super) fn fragments(&mut self, max_pieces: u64) -> Vec<u8> {
        const CODES: [i32; 14] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13];
        let mut out = Vec::new();
        for _ in 0..self.below(max_pieces + 1) {
            match self.below(8) {
                0 | 1 => {
                    let code = CODES[self.below(CODES.len() as u64) as usize];
                    out.extend_from_slice(&code.to_le_bytes());
                }
                2 | 3 => {
                    let bytes = self.bytes(4);
                    encode_array(&mut out, &bytes);
                }
                4 => encode_array(&mut out, &[]),
                5 => {
                    let bytes = self.bytes(3);
                    out.extend_from_slice(&bytes);
                }
                6 => {
                    let len = match self.below(4) {
                        0 => MAX_ARRAY_LEN as u64,
                        1 => MAX_ARRAY_LEN as u64 + 1,
                        2 => (MAX_LIST_BYTES - 15) as u64,
                        _ => self.next(),
                    };
                    out.extend_from_slice(&len.to_le_bytes());
                }
                _ => out.extend_from_slice(&(self.next() as i32).to_le_bytes()),
            }
        }
        out
    }
}

/// The wire form of a channel list holding `channels`, terminator included.
pub(super) fn list_bytes(channels: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_channel_list(&mut out, channels.iter().copied());
    out
}

/// Checks a framing decoder (`decode(prefix) -> used`) on every prefix of `buf`:
/// `Incomplete { needed }` is above the prefix length, stays the same answer until
/// `needed` bytes are there and then changes; any other answer never changes as more
/// bytes arrive, and `used` never exceeds what was given.
pub(super) fn assert_prefix_consistency(
    buf: &[u8],
    decode: impl Fn(&[u8]) -> Result<usize, DecodeError>,
) {
    let results: Vec<_> = (0..=buf.len()).map(|len| decode(&buf[..len])).collect();
    for (len, result) in results.iter().enumerate() {
        match result {
            Ok(used) => assert!(*used > 0 && *used <= len, "{buf:?}[..{len}]: {result:?}"),
            Err(DecodeError::Incomplete { needed }) => {
                assert!(*needed > len, "{buf:?}[..{len}]: {result:?}");
                if let Some(Err(DecodeError::Incomplete { needed: later })) = results.get(*needed) {
                    assert!(later > needed, "no progress at {needed} bytes in {buf:?}");
                }
            }
            Err(_) => {}
        }
        let Some(next) = results.get(len + 1) else {
            continue;
        };
        match result {
            Err(DecodeError::Incomplete { needed }) if len + 1 >= *needed => {}
            _ => assert_eq!(next, result, "{buf:?}: answer changed at {} bytes", len + 1),
        }
    }
}

/// Encodes `request` and checks that `check` and `parse` give it back whole, that every
/// shorter prefix is `Incomplete` with a `needed` that makes progress, and that a second
/// request right behind it (pipelining) changes nothing. Returns the encoded bytes.
pub(super) fn assert_round_trip(request: &Request<'_>) -> Vec<u8> {
    let mut bytes = Vec::new();
    request.encode(&mut bytes);
    assert_eq!(check(&bytes), Ok(bytes.len()));
    assert_eq!(parse(&bytes), Ok((*request, bytes.len())));
    for len in 0..bytes.len() {
        let prefix = &bytes[..len];
        let needed = match check(prefix) {
            Err(DecodeError::Incomplete { needed }) => needed,
            other => panic!("{request:?} cut to {len} bytes: {other:?}"),
        };
        assert!(
            needed > len && needed <= bytes.len(),
            "{request:?}[..{len}]"
        );
        assert_eq!(parse(prefix), Err(DecodeError::Incomplete { needed }));
    }
    assert_prefix_consistency(&bytes, check);

    let mut pipelined = bytes.clone();
    request.encode(&mut pipelined);
    let (first, used) = parse(&pipelined).expect("first of two requests");
    assert_eq!((first, used), (*request, bytes.len()));
    assert_eq!(parse(&pipelined[used..]), Ok((*request, bytes.len())));
    bytes
}
