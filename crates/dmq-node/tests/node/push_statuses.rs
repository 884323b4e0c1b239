//! Push answers: 409 for a bad name, 408 for an empty value (which still
//! creates the channel); a record that does not fit in the channel's memory
//! ring is not refused but goes to the disk overflow, and none of these loses
//! or reorders other records. (407 is never sent, as in the original.)

use dmq_testkit::legacy::{BAD_CHANNEL_NAME, EMPTY_VALUE, ERROR, OK};
use dmq_testkit::node::Node;
use dmq_testkit::records::record;

use crate::support::names_on_each_shard;

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
fn record_larger_than_the_ring_goes_to_disk_in_order() {
    // 64 KiB rings: a 64 KiB value needs 8 more bytes for its header.
    let data = tempfile::tempdir().expect("tempdir");
    let dir = format!("server.data_dir={}", data.path().display());
    let node = Node::start(&["server.channel_size_limit=65536", &dir]);
    let mut c = node.client();
    for ch in names_on_each_shard("toobig", 1) {
        assert_eq!(c.push(&ch, record(0)), OK);
        assert_eq!(c.push(&ch, vec![b'x'; 65536]), OK, "{ch}");
        // Would fit the ring, but goes behind the record on disk.
        assert_eq!(c.push(&ch, record(1)), OK);
        assert_eq!(c.pop(&ch), Ok(record(0)));
        assert_eq!(c.pop(&ch), Ok(vec![b'x'; 65536]));
        assert_eq!(c.pop(&ch), Ok(record(1)));
        assert_eq!(c.pop(&ch), Ok(Vec::new()));
        // Exactly the ring size (header included) fits in an empty ring.
        let exact = vec![b'z'; 65536 - 8];
        assert_eq!(c.push(&ch, &exact), OK, "{ch}");
        assert_eq!(c.pop(&ch), Ok(exact));
    }
}

#[test]
fn a_full_ring_never_refuses_and_order_is_kept() {
    let data = tempfile::tempdir().expect("tempdir");
    let dir = format!("server.data_dir={}", data.path().display());
    let node = Node::start(&["server.channel_size_limit=65536", &dir]);
    let mut c = node.client();
    for ch in names_on_each_shard("fill", 1) {
        let value = |i: usize| {
            let mut v = record(i);
            v.resize(1000, b'.');
            v
        };
        // 65536 / (8 + 1000) = 65 records fit in memory; 200 are pushed.
        for i in 0..200 {
            assert_eq!(c.push(&ch, value(i)), OK, "{ch}: push {i}");
        }
        for i in 0..100 {
            assert_eq!(c.pop(&ch), Ok(value(i)), "{ch} record {i}");
        }
        // Pushes while records are on disk go behind them.
        assert_eq!(c.push(&ch, value(1000)), OK);
        for i in 100..200 {
            assert_eq!(c.pop(&ch), Ok(value(i)), "{ch} record {i}");
        }
        assert_eq!(c.pop(&ch), Ok(value(1000)));
        assert_eq!(c.pop(&ch), Ok(Vec::new()));
    }
}
