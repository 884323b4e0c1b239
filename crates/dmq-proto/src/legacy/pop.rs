//! Pop (2): `str channel`. The node answers a status, and after 200 the value as an
//! array (empty when the channel's storage is empty).

use super::wire::{encode_array, Reader};
use super::{DecodeError, Request};

pub(super) fn decode<'a>(reader: &mut Reader<'a>) -> Result<Request<'a>, DecodeError> {
    let channel = reader.array()?;
    Ok(Request::Pop { channel })
}

pub(super) fn encode(out: &mut Vec<u8>, channel: &[u8]) {
    encode_array(out, channel);
}

#[cfg(test)]
mod tests {
    use super::super::test_util::assert_round_trip;
    use super::*;

    #[test]
    fn wire_bytes() {
        let bytes = assert_round_trip(&Request::Pop { channel: b"ch" });
        assert_eq!(bytes, [2, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, b'c', b'h']);
    }

    #[test]
    fn round_trips_and_every_truncation_is_incomplete() {
        for channel in [&b""[..], b"x", b"a.b", b"sub@ch", &[0xFF; 300]] {
            assert_round_trip(&Request::Pop { channel });
        }
    }
}
