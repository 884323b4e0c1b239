//! ProduceMulti (11): a channel string list (ended by the empty array). After the
//! node's status the client streams records (arrays) and ends with the empty array.

use super::wire::{ChannelList, Reader};
use super::{DecodeError, Request};

pub(super) fn decode<'a>(reader: &mut Reader<'a>) -> Result<Request<'a>, DecodeError> {
    let channels = reader.channel_list()?;
    Ok(Request::ProduceMulti { channels })
}

pub(super) fn encode(out: &mut Vec<u8>, channels: ChannelList<'_>) {
    channels.encode(out);
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{assert_round_trip, list_bytes};
    use super::super::{check, encode_array, encode_channel_list, MAX_LIST_BYTES};
    use super::*;

    #[test]
    fn wire_bytes() {
        let encoded = list_bytes(&[b"ch"]);
        let (channels, _) = ChannelList::parse(&encoded).expect("list");
        let bytes = assert_round_trip(&Request::ProduceMulti { channels });
        #[rustfmt::skip]
        let expected = [
            11, 0, 0, 0,
            2, 0, 0, 0, 0, 0, 0, 0, b'c', b'h',
            0, 0, 0, 0, 0, 0, 0, 0,
        ];
        assert_eq!(bytes, expected);
    }

    #[test]
    fn round_trips_and_every_truncation_is_incomplete() {
        let cases: [&[&[u8]]; 4] = [&[], &[b"a"], &[b"a", b"b", b"a"], &[&[7; 64], b"z"]];
        for names in cases {
            let encoded = list_bytes(names);
            let (channels, _) = ChannelList::parse(&encoded).expect("list");
            assert_eq!(channels.len(), names.len());
            assert_round_trip(&Request::ProduceMulti { channels });
        }
    }

    #[test]
    fn list_limit_counts_prefixes_and_terminator() {
        // Code + one element whose prefix, bytes and terminator make MAX_LIST_BYTES.
        let name = vec![b'n'; MAX_LIST_BYTES - 16];
        let mut buf = 11i32.to_le_bytes().to_vec();
        encode_channel_list(&mut buf, [&name[..]]);
        assert_eq!(check(&buf), Ok(4 + MAX_LIST_BYTES));
        // One byte more in the name is refused.
        let mut buf = 11i32.to_le_bytes().to_vec();
        encode_array(&mut buf, &[name.as_slice(), b"n"].concat());
        assert_eq!(check(&buf), Err(DecodeError::ListTooLong));
    }
}
