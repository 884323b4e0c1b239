//! Push (1): `str channel`, `str value`. The node answers one status.

use super::wire::{encode_array, Reader};
use super::{DecodeError, Request};

pub(super) fn decode<'a>(reader: &mut Reader<'a>) -> Result<Request<'a>, DecodeError> {
    let channel = reader.array()?;
    let value = reader.array()?;
    Ok(Request::Push { channel, value })
}

pub(super) fn encode(out: &mut Vec<u8>, channel: &[u8], value: &[u8]) {
    encode_array(out, channel);
    encode_array(out, value);
}

#[cfg(test)]
mod tests {
    use super::super::test_util::assert_round_trip;
    use super::super::{check, parse};
    use super::*;

    /// Spec §2.7: Push "ch" = "ab".
    const SPEC_PUSH: [u8; 24] = [
        0x01, 0x00, 0x00, 0x00, // Push
        0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x63, 0x68, // "ch"
        0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x61, 0x62, // "ab"
    ];

    #[test]
    fn spec_example_bytes() {
        let request = Request::Push {
            channel: b"ch",
            value: b"ab",
        };
        assert_eq!(assert_round_trip(&request), SPEC_PUSH);
        assert_eq!(parse(&SPEC_PUSH), Ok((request, 24)));
    }

    #[test]
    fn needed_points_at_the_next_field() {
        let cases = [
            (0, 4),
            (3, 4),
            (4, 12),
            (11, 12),
            (12, 14),
            (13, 14),
            (14, 22),
        ];
        for (len, needed) in cases {
            assert_eq!(
                check(&SPEC_PUSH[..len]),
                Err(DecodeError::Incomplete { needed }),
                "{len} bytes"
            );
        }
        assert_eq!(
            check(&SPEC_PUSH[..22]),
            Err(DecodeError::Incomplete { needed: 24 })
        );
    }

    #[test]
    fn round_trips_and_every_truncation_is_incomplete() {
        let long = vec![0xAB; 1000];
        for (channel, value) in [
            (&b"ch"[..], &b"ab"[..]),
            (b"", b""),
            (b"ch", b""),
            (b"", b"v"),
            (b"c", &long),
        ] {
            assert_round_trip(&Request::Push { channel, value });
        }
    }
}
