//! An array that announces more than 10 MiB (10 485 760 bytes) anywhere in a
//! request or a Produce stream closes the connection without a reply; an array
//! of exactly 10 MiB is accepted.

use dmq_proto::legacy::{encode_array, encode_stream_end, MAX_ARRAY_LEN};
use dmq_testkit::legacy::OK;
use dmq_testkit::node::Node;

const LIMIT: u64 = 10 * 1024 * 1024;

fn code(c: i32) -> Vec<u8> {
    c.to_le_bytes().to_vec()
}

fn with_array(mut prefix: Vec<u8>, bytes: &[u8]) -> Vec<u8> {
    encode_array(&mut prefix, bytes);
    prefix
}

/// Request heads that are followed by an array length, one per place an array
/// can appear.
fn heads() -> Vec<(&'static str, Vec<u8>)> {
    let mut list_one = code(9);
    encode_array(&mut list_one, b"ch");
    let mut list_ended = list_one.clone();
    encode_stream_end(&mut list_ended);
    vec![
        ("Push channel", code(1)),
        ("Push value", with_array(code(1), b"ch")),
        ("Pop channel", code(2)),
        ("Consume channel", code(6)),
        ("PushMulti first name", code(9)),
        ("PushMulti second name", list_one),
        ("PushMulti value", list_ended),
        ("Produce channel", code(10)),
        ("ProduceMulti first name", code(11)),
        ("RemoveChannel channel", code(12)),
    ]
}

/// Writes, ignoring errors: the node may close while we are still writing.
fn send_ignoring_close(c: &mut dmq_testkit::legacy::Client, bytes: &[u8]) {
    c.queue(bytes);
    let _ = c.try_flush();
}

#[test]
fn huge_length_prefix_closes() {
    assert_eq!(LIMIT, MAX_ARRAY_LEN as u64);
    let node = Node::start(&[]);
    for len in [LIMIT + 1, 1 << 40, u64::MAX] {
        for (what, head) in heads() {
            let mut c = node.client();
            let mut bytes = head;
            bytes.extend_from_slice(&len.to_le_bytes());
            bytes.extend_from_slice(b"some bytes that follow");
            send_ignoring_close(&mut c, &bytes);
            c.expect_closed(&format!("{what}, length {len}"));
        }
    }
    // The node still serves.
    let mut c = node.client();
    assert_eq!(c.push("alive", "v"), OK);
    assert_eq!(c.pop("alive"), Ok(b"v".to_vec()));
}

#[test]
fn one_byte_over_the_limit_closes_even_when_all_bytes_are_sent() {
    let node = Node::start(&[]);
    let payload = vec![b'a'; LIMIT as usize + 1];
    for (what, head) in [
        ("Push value", with_array(code(1), b"ch")),
        ("Pop channel", code(2)),
    ] {
        let mut c = node.client();
        let mut bytes = head;
        encode_array(&mut bytes, &payload);
        send_ignoring_close(&mut c, &bytes);
        c.expect_closed(what);
    }
    let mut c = node.client();
    assert_eq!(
        c.pop("ch"),
        Err(dmq_testkit::legacy::ERROR),
        "nothing was pushed"
    );
}

#[test]
fn oversized_record_in_produce_stream_closes() {
    let node = Node::start(&[]);
    let names = crate::support::names_on_each_shard("prod_big", 1);
    for multi in [false, true] {
        let mut c = node.client();
        let status = if multi {
            c.produce_multi(&names)
        } else {
            c.produce(&names[0])
        };
        assert_eq!(status, OK);
        c.produce_record(b"before");
        let mut bytes = (LIMIT + 1).to_le_bytes().to_vec();
        bytes.extend_from_slice(b"xx");
        send_ignoring_close(&mut c, &bytes);
        c.expect_closed(if multi { "ProduceMulti" } else { "Produce" });
    }
    // The records before the oversized one were kept (records already read
    // are not lost), once per Produce for names[0].
    let mut c = node.client();
    assert_eq!(c.pop(&names[0]), Ok(b"before".to_vec()));
    assert_eq!(c.pop(&names[0]), Ok(b"before".to_vec()));
    assert_eq!(c.pop(&names[0]), Ok(Vec::new()));
    assert_eq!(c.pop(&names[1]), Ok(b"before".to_vec()));
    assert_eq!(c.pop(&names[1]), Ok(Vec::new()));
}

#[test]
fn exactly_ten_mib_is_accepted() {
    // 12 MiB rings so that a 10 MiB record fits.
    let node = Node::start(&["server.channel_size_limit=12582912"]);
    let mut c = node.client();
    let mut value = vec![b'v'; LIMIT as usize];
    value[0] = b'<';
    value[LIMIT as usize - 1] = b'>';
    let names = crate::support::names_on_each_shard("big", 1);
    for ch in &names {
        assert_eq!(c.push(ch, &value), OK, "{ch}");
        assert_eq!(c.pop(ch), Ok(value.clone()), "{ch}");
    }
    assert_eq!(c.push_multi(&names, &value), OK);
    for ch in &names {
        assert_eq!(c.pop(ch), Ok(value.clone()), "{ch}");
    }
    // A 10 MiB Produce record between two small ones.
    assert_eq!(c.produce(&names[0]), OK);
    c.produce_record(b"before");
    c.produce_record(&value);
    c.produce_record(b"after");
    c.produce_end();
    c.sync();
    assert_eq!(c.pop(&names[0]), Ok(b"before".to_vec()));
    assert_eq!(c.pop(&names[0]), Ok(value));
    assert_eq!(c.pop(&names[0]), Ok(b"after".to_vec()));
    for ch in &names {
        assert_eq!(c.pop(ch), Ok(Vec::new()), "{ch}");
    }
}
