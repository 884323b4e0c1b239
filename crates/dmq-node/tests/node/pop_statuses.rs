//! Pop answers: 500 for a missing channel (which it does not create), 200 and
//! an empty array for an empty one, 500 for a subscribed one, 409 for a bad
//! name; the connection stays usable after each.

use dmq_testkit::legacy::{BAD_CHANNEL_NAME, ERROR, OK};
use dmq_testkit::node::Node;

use crate::support::names_on_each_shard;

/// Names that fail `[A-Za-z0-9_-]+`.
pub const BAD_NAMES: [&[u8]; 9] = [
    b"",
    b"a.b",
    b"a/b",
    b"a@b",
    b"a b",
    b"ch\0",
    b"\xc3\xa4",
    b"*",
    b"tab\t",
];

#[test]
fn missing_channel_is_500_and_not_created() {
    let node = Node::start(&[]);
    let mut c = node.client();
    for ch in names_on_each_shard("missing", 2) {
        assert_eq!(c.pop(&ch), Err(ERROR), "{ch}");
        // Pop did not create it: still missing.
        assert_eq!(c.pop(&ch), Err(ERROR), "{ch}");
    }
}

#[test]
fn empty_channel_is_200_and_empty_array() {
    let node = Node::start(&[]);
    let mut c = node.client();
    for ch in names_on_each_shard("empty", 2) {
        assert_eq!(c.push(&ch, "v"), OK);
        assert_eq!(c.pop(&ch), Ok(b"v".to_vec()));
        assert_eq!(c.pop(&ch), Ok(Vec::new()), "{ch}");
        assert_eq!(c.pop(&ch), Ok(Vec::new()), "{ch}");
    }
}

#[test]
fn subscribed_channel_is_500() {
    let node = Node::start(&[]);
    let mut c = node.client();
    for ch in names_on_each_shard("subscribed", 1) {
        assert_eq!(c.push(&ch, "kept"), OK);
        let mut consumer = node.client();
        assert_eq!(consumer.consume(&ch), OK);
        assert_eq!(consumer.next_record(), Some(b"kept".to_vec()));
        assert_eq!(c.pop(&ch), Err(ERROR), "{ch}");
        assert_eq!(c.push(&ch, "more"), OK);
        assert_eq!(c.pop(&ch), Err(ERROR), "{ch}");
        assert_eq!(consumer.next_record(), Some(b"more".to_vec()));
        assert_eq!(c.remove(&ch), OK);
        assert_eq!(consumer.next_record(), None);
    }
}

#[test]
fn bad_name_is_409() {
    let node = Node::start(&[]);
    let mut c = node.client();
    for name in BAD_NAMES {
        assert_eq!(c.pop(name), Err(BAD_CHANNEL_NAME), "{name:?}");
    }
    // Still in sync.
    assert_eq!(c.push("good-name_9", "v"), OK);
    assert_eq!(c.pop("good-name_9"), Ok(b"v".to_vec()));
}
