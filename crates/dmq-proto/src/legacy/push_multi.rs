//! PushMulti (9): a channel string list (ended by the empty array), then `str value`.
//! The node answers one status.

use super::wire::{encode_array, ChannelList, Reader};
use super::{DecodeError, Request};

pub(super) fn decode<'a>(reader: &mut Reader<'a>) -> Result<Request<'a>, DecodeError> {
    let channels = reader.channel_list()?;
    let value = reader.array()?;
    Ok(Request::PushMulti { channels, value })
}

pub(super) fn encode(out: &mut Vec<u8>, channels: ChannelList<'_>, value: &[u8]) {
    channels.encode(out);
    encode_array(out, value);
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{assert_round_trip, list_bytes};
    use super::super::{check, MAX_LIST_BYTES};
    use super::*;

    #[test]
    fn wire_bytes() {
        let encoded = list_bytes(&[b"a", b"bc"]);
        let (channels, _) = ChannelList::parse(&encoded).expect("list");
        let bytes = assert_round_trip(&Request::PushMulti {
            channels,
            value: b"v",
        });
        #[rustfmt::skip]
        let expected = [
            9, 0, 0, 0,
            1, 0, 0, 0, 0, 0, 0, 0, b'a',
            2, 0, 0, 0, 0, 0, 0, 0, b'b', b'c',
            0, 0, 0, 0, 0, 0, 0, 0,
            1, 0, 0, 0, 0, 0, 0, 0, b'v',
        ];
        assert_eq!(bytes, expected);
    }

    #[test]
    fn round_trips_and_every_truncation_is_incomplete() {
        let cases: [(&[&[u8]], &[u8]); 5] = [
            (&[], b"v"),
            (&[], b""),
            (&[b"ch"], b""),
            (&[b"a", b"a", b"a"], b"value"),
            (&[b"x.y", b"sub@ch", &[0; 40]], &[1; 100]),
        ];
        for (names, value) in cases {
            let encoded = list_bytes(names);
            let (channels, _) = ChannelList::parse(&encoded).expect("list");
            assert_eq!(channels.iter().collect::<Vec<_>>(), names);
            assert_round_trip(&Request::PushMulti { channels, value });
        }
    }

    #[test]
    fn list_over_the_limit_is_refused_before_its_bytes_arrive() {
        let mut buf = 9i32.to_le_bytes().to_vec();
        buf.extend_from_slice(&((MAX_LIST_BYTES - 15) as u64).to_le_bytes());
        assert_eq!(check(&buf), Err(DecodeError::ListTooLong));
    }
}
