//! Feeds arbitrary bytes to the legacy decoders the way a node connection does: decode a
//! request, advance by the bytes it used, read the record stream that follows Produce
//! and ProduceMulti, repeat. Checks that nothing panics, that `check` and `parse` agree,
//! that `Incomplete` always asks for more than was given, and that every decoded request
//! re-encodes to exactly the bytes it came from.
#![no_main]

use dmq_proto::legacy::{
    check, encode_channel_list, parse, parse_stream_item, ChannelList, DecodeError, Request,
    StreamItem, MAX_REQUEST_LEN,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    loop {
        let parsed = parse(rest);
        assert_eq!(check(rest), parsed.clone().map(|(_, used)| used));
        let (request, used) = match parsed {
            Ok(ok) => ok,
            Err(DecodeError::Incomplete { needed }) => {
                assert!(needed > rest.len() && needed <= MAX_REQUEST_LEN);
                return;
            }
            // Fatal for the connection: the node closes it.
            Err(_) => return,
        };
        assert!(used > 0 && used <= rest.len() && used <= MAX_REQUEST_LEN);
        let mut reencoded = Vec::new();
        request.encode(&mut reencoded);
        assert_eq!(reencoded, &rest[..used]);
        if let Request::PushMulti { channels, .. } | Request::ProduceMulti { channels } = request {
            let mut list = Vec::new();
            encode_channel_list(&mut list, channels.iter());
            assert_eq!(ChannelList::parse(&list), Ok((channels, list.len())));
            assert_eq!(channels.iter().count(), channels.len());
        }
        rest = &rest[used..];

        if matches!(
            request,
            Request::Produce { .. } | Request::ProduceMulti { .. }
        ) {
            loop {
                match parse_stream_item(rest) {
                    Ok((item, used)) => {
                        assert!(used >= 8 && used <= rest.len());
                        rest = &rest[used..];
                        if item == StreamItem::End {
                            break;
                        }
                    }
                    Err(DecodeError::Incomplete { needed }) => {
                        assert!(needed > rest.len());
                        return;
                    }
                    Err(_) => return,
                }
            }
        }
    }
});
