//! Push then Pop returns records first in, first out, byte for byte; the
//! example exchanges of spec 2.7 are sent and compared as raw bytes.

use dmq_testkit::legacy::OK;
use dmq_testkit::node::Node;
use dmq_testkit::records::record;

use crate::support::names_on_each_shard;

fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).expect("ascii"), 16).expect("hex"))
        .collect()
}

#[test]
fn spec_example_bytes() {
    let node = Node::start(&[]);
    let mut c = node.client();

    // Push "ch" = "ab".
    c.send_raw(&hex(
        "01 00 00 00 | 02 00 00 00 00 00 00 00 | 63 68 | 02 00 00 00 00 00 00 00 | 61 62",
    ));
    assert_eq!(c.read_exact(4), hex("C8 00 00 00"));

    // Pop "ch" returns it: 200, then the array "ab".
    c.send_raw(&hex("02 00 00 00 | 02 00 00 00 00 00 00 00 | 63 68"));
    assert_eq!(
        c.read_exact(4 + 8 + 2),
        hex("C8 00 00 00 | 02 00 00 00 00 00 00 00 | 61 62")
    );

    // Pop "ch" again: empty but existing channel.
    c.send_raw(&hex("02 00 00 00 | 02 00 00 00 00 00 00 00 | 63 68"));
    assert_eq!(
        c.read_exact(12),
        hex("C8 00 00 00 | 00 00 00 00 00 00 00 00")
    );

    // Pop "zz": no such channel.
    c.send_raw(&hex("02 00 00 00 | 02 00 00 00 00 00 00 00 | 7A 7A"));
    assert_eq!(c.read_exact(4), hex("F4 01 00 00"));

    // Pop "a.b": a dot is not allowed in a name.
    c.send_raw(&hex("02 00 00 00 | 03 00 00 00 00 00 00 00 | 61 2E 62"));
    assert_eq!(c.read_exact(4), hex("99 01 00 00"));

    // The connection is still in sync after the error statuses.
    assert_eq!(c.push("ch", "x"), OK);
    assert_eq!(c.pop("ch"), Ok(b"x".to_vec()));
}

#[test]
fn sanity_foo_then_bar() {
    let node = Node::start(&[]);
    let mut c = node.client();
    assert_eq!(c.push("test_channel", "foo"), OK);
    assert_eq!(c.push("test_channel", "bar"), OK);
    assert_eq!(c.pop("test_channel"), Ok(b"foo".to_vec()));
    assert_eq!(c.pop("test_channel"), Ok(b"bar".to_vec()));
    assert_eq!(c.pop("test_channel"), Ok(Vec::new()));
}

#[test]
fn fifo_on_both_shards_and_binary_safe() {
    let node = Node::start(&[]);
    let mut writer = node.client();
    let mut reader = node.client();
    let channels = names_on_each_shard("fifo", 1);
    let binary: Vec<u8> = (0..=255u8).collect();
    for ch in &channels {
        for i in 0..1000 {
            writer.queue_push(ch, record(i));
        }
        writer.queue_push(ch, &binary);
        writer.flush();
        for _ in 0..1001 {
            assert_eq!(writer.read_status(), OK);
        }
    }
    // Read on another connection: order is per channel, not per connection.
    for ch in &channels {
        for i in 0..1000 {
            assert_eq!(reader.pop(ch), Ok(record(i)), "{ch} record {i}");
        }
        assert_eq!(reader.pop(ch), Ok(binary.clone()), "{ch} binary record");
        assert_eq!(reader.pop(ch), Ok(Vec::new()), "{ch} then empty");
    }
}

#[test]
fn fifo_across_ring_wraparound() {
    // 64 KiB rings, about 50 records of 1000 bytes in flight: the ring wraps
    // around many times over 2000 records.
    let node = Node::start(&["server.channel_size_limit=65536"]);
    let mut c = node.client();
    let value = |i: usize| {
        let mut v = record(i);
        // Varying sizes, so records end at ever different offsets.
        v.resize(900 + (i * 37) % 200, b'a' + (i % 26) as u8);
        v
    };
    for ch in names_on_each_shard("wrap", 1) {
        let mut next_pop = 0;
        for i in 0..2000 {
            assert_eq!(c.push(&ch, value(i)), OK, "{ch} push {i}");
            if i >= 50 {
                assert_eq!(c.pop(&ch), Ok(value(next_pop)), "{ch} pop {next_pop}");
                next_pop += 1;
            }
        }
        for i in next_pop..2000 {
            assert_eq!(c.pop(&ch), Ok(value(i)), "{ch} pop {i}");
        }
        assert_eq!(c.pop(&ch), Ok(Vec::new()));
    }
}

#[test]
fn long_channel_names_work() {
    let node = Node::start(&[]);
    let mut c = node.client();
    for len in [1, 255, 4096, 100_000] {
        let ch: String = (0..len).map(|i| ['a', 'Z', '0', '_', '-'][i % 5]).collect();
        assert_eq!(c.push(&ch, "v"), OK, "name of {len} bytes");
        assert_eq!(c.pop(&ch), Ok(b"v".to_vec()));
        assert_eq!(c.pop(&ch), Ok(Vec::new()));
    }
}
