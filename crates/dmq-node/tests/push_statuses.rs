//! Push answers: 409 for a bad name, 408 for an empty value (which still
//! creates the channel), 407 when the record cannot fit in the channel's memory
//! ring, and none of these loses or reorders other records.

mod common;

use common::{
    names_on_each_shard, record, Node, BAD_CHANNEL_NAME, EMPTY_VALUE, ERROR, OK, OUT_OF_MEMORY,
};

#[test]
fn bad_name_is_409_and_creates_nothing() {
    let node = Node::start(&[]);
    let mut c = node.client();
    for name in [&b""[..], b"a.b", b"a/b", b"a@b", b"a b", b"\xff"] {
        assert_eq!(c.push(name, "v"), BAD_CHANNEL_NAME, "{name:?}");
        // Also with an empty value: the name is checked first.
        assert_eq!(c.push(name, ""), BAD_CHANNEL_NAME, "{name:?}");
    }
    // "a.b" was not created under some mangled name: a-b and ab do not exist.
    assert_eq!(c.pop("ab"), Err(ERROR));
    assert_eq!(c.pop("a-b"), Err(ERROR));
}

#[test]
fn empty_value_is_408_and_creates_the_channel() {
    let node = Node::start(&[]);
    let mut c = node.client();
    for ch in names_on_each_shard("emptyvalue", 2) {
        assert_eq!(c.pop(&ch), Err(ERROR), "{ch} does not exist yet");
        assert_eq!(c.push(&ch, ""), EMPTY_VALUE, "{ch}");
        assert_eq!(c.pop(&ch), Ok(Vec::new()), "{ch} exists now, empty");
    }
}

#[test]
fn record_larger_than_the_ring_is_407_and_nothing_else_is_lost() {
    // 64 KiB rings: a 64 KiB value needs 8 more bytes for its header.
    let node = Node::start(&["server.channel_size_limit=65536"]);
    let mut c = node.client();
    for ch in names_on_each_shard("toobig", 1) {
        assert_eq!(c.push(&ch, record(0)), OK);
        assert_eq!(c.push(&ch, vec![b'x'; 65536]), OUT_OF_MEMORY, "{ch}");
        // One byte more than the free space left by record 0 (17 bytes).
        assert_eq!(
            c.push(&ch, vec![b'y'; 65536 - 8 - 16]),
            OUT_OF_MEMORY,
            "{ch}"
        );
        assert_eq!(c.push(&ch, record(1)), OK);
        assert_eq!(c.pop(&ch), Ok(record(0)));
        assert_eq!(c.pop(&ch), Ok(record(1)));
        assert_eq!(c.pop(&ch), Ok(Vec::new()));
        // Exactly the ring size (header included) fits in an empty ring.
        let exact = vec![b'z'; 65536 - 8];
        assert_eq!(c.push(&ch, &exact), OK, "{ch}");
        assert_eq!(c.pop(&ch), Ok(exact));
    }
}

#[test]
fn full_ring_is_407_then_accepts_again_after_pops() {
    let node = Node::start(&["server.channel_size_limit=65536"]);
    let mut c = node.client();
    for ch in names_on_each_shard("fill", 1) {
        let value = |i: usize| {
            let mut v = record(i);
            v.resize(1000, b'.');
            v
        };
        let mut stored = 0;
        // 65536 / (8 + 1000) = 65 records fit; bounded well above that.
        for i in 0..200 {
            match c.push(&ch, value(i)) {
                OK => stored += 1,
                OUT_OF_MEMORY => break,
                other => panic!("{ch}: push {i}: status {other}"),
            }
        }
        assert_eq!(stored, 65536 / 1008, "{ch}");
        // Refused again while full; nothing stored meanwhile.
        assert_eq!(c.push(&ch, value(999)), OUT_OF_MEMORY);
        for i in 0..stored {
            assert_eq!(c.pop(&ch), Ok(value(i)), "{ch} record {i}");
        }
        assert_eq!(c.pop(&ch), Ok(Vec::new()));
        assert_eq!(c.push(&ch, value(1000)), OK);
        assert_eq!(c.pop(&ch), Ok(value(1000)));
    }
}
