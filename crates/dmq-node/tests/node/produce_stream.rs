//! Produce and ProduceMulti: 409 for a bad name (and the connection goes on
//! with requests), a stream with no per-record reply ended by an empty record,
//! requests pipelined right behind the stream, channel creation, and records
//! kept when the client disconnects mid-stream.

use std::thread;
use std::time::Duration;

use dmq_proto::legacy::{encode_array, encode_stream_end, Request};
use dmq_testkit::legacy::{BAD_CHANNEL_NAME, ERROR, OK};
use dmq_testkit::node::Node;
use dmq_testkit::records::record;

use crate::support::names_on_each_shard;

#[test]
fn bad_names_are_409_and_no_stream_follows() {
    let node = Node::start(&[]);
    let mut c = node.client();
    assert_eq!(c.produce("bad.name"), BAD_CHANNEL_NAME);
    assert_eq!(c.produce(""), BAD_CHANNEL_NAME);
    assert_eq!(c.produce_multi(&["good", "bad/name"]), BAD_CHANNEL_NAME);
    // The connection takes requests, not records.
    assert_eq!(c.push("good", "v"), OK);
    assert_eq!(c.pop("good"), Ok(b"v".to_vec()));
}

#[test]
fn requests_pipelined_behind_the_stream_are_answered() {
    let node = Node::start(&[]);
    let mut c = node.client();
    for ch in names_on_each_shard("behind", 1) {
        // Everything in one write: the Produce, its records, its end, a Pop.
        let mut bytes = Vec::new();
        Request::Produce {
            channel: ch.as_bytes(),
        }
        .encode(&mut bytes);
        for i in 0..3 {
            encode_array(&mut bytes, &record(i));
        }
        encode_stream_end(&mut bytes);
        Request::Pop {
            channel: ch.as_bytes(),
        }
        .encode(&mut bytes);
        c.send_raw(&bytes);
        assert_eq!(c.read_status(), OK, "{ch}: Produce status");
        assert_eq!(
            c.read_pop_reply(),
            Ok(record(0)),
            "{ch}: Pop after the stream"
        );
        assert_eq!(c.pop(&ch), Ok(record(1)));
        assert_eq!(c.pop(&ch), Ok(record(2)));
        assert_eq!(c.pop(&ch), Ok(Vec::new()));
    }
}

#[test]
fn produce_creates_its_channel_at_once() {
    let node = Node::start(&[]);
    let mut c = node.client();
    for ch in names_on_each_shard("created", 1) {
        assert_eq!(c.produce(&ch), OK);
        c.produce_end();
        assert_eq!(c.pop(&ch), Ok(Vec::new()), "{ch} exists and is empty");
    }
}

#[test]
fn produce_multi_reaches_every_channel() {
    let node = Node::start(&[]);
    let mut c = node.client();
    let names = names_on_each_shard("pmulti", 2);
    assert_eq!(c.produce_multi(&names), OK);
    for i in 0..50 {
        c.produce_record(record(i));
    }
    c.produce_end();
    c.sync();
    for ch in &names {
        for i in 0..50 {
            assert_eq!(c.pop(ch), Ok(record(i)), "{ch}");
        }
        assert_eq!(c.pop(ch), Ok(Vec::new()), "{ch}");
    }
}

#[test]
fn produce_multi_creates_channels_with_the_first_record() {
    let node = Node::start(&[]);
    let mut c = node.client();
    let names = names_on_each_shard("lazy", 1);
    assert_eq!(c.produce_multi(&names), OK);
    c.produce_end();
    c.sync();
    for ch in &names {
        assert_eq!(c.pop(ch), Err(ERROR), "{ch}: no record, no channel");
    }
}

/// A channel listed twice gets each record twice, one push after the other,
/// as PushMulti does: the original pushes every record to every listed channel
/// before it reads the next record (spec 2.5), so `a` holds 1, 1, 2, 2.
#[test]
fn produce_multi_duplicate_channel_gets_each_record_twice_in_a_row() {
    let node = Node::start(&[]);
    let mut c = node.client();
    for ch in names_on_each_shard("twice", 1) {
        // ProduceMulti [ch, ch], records "1" and "2", end: in one write.
        let mut bytes = 11i32.to_le_bytes().to_vec();
        dmq_proto::legacy::encode_channel_list(&mut bytes, [ch.as_bytes(), ch.as_bytes()]);
        encode_array(&mut bytes, b"1");
        encode_array(&mut bytes, b"2");
        encode_stream_end(&mut bytes);
        c.send_raw(&bytes);
        assert_eq!(c.read_status(), OK);
        c.sync();
        let popped: Vec<Vec<u8>> = (0..5).map(|_| c.pop(&ch).expect("pop")).collect();
        assert_eq!(
            popped,
            [&b"1"[..], b"1", b"2", b"2", b""],
            "{ch}: order of a duplicated ProduceMulti channel"
        );
    }
}

#[test]
fn produce_multi_with_an_empty_list_discards_the_stream() {
    let node = Node::start(&[]);
    let mut c = node.client();
    let none: [&str; 0] = [];
    assert_eq!(c.produce_multi(&none), OK);
    for i in 0..10 {
        c.produce_record(record(i));
    }
    c.produce_end();
    c.sync();
    assert_eq!(c.push("after_empty_list", "v"), OK);
    assert_eq!(c.pop("after_empty_list"), Ok(b"v".to_vec()));
}

#[test]
fn records_already_sent_are_kept_when_the_producer_disconnects() {
    let node = Node::start(&[]);
    let mut reader = node.client();
    for ch in names_on_each_shard("cut", 1) {
        let mut producer = node.client();
        assert_eq!(producer.produce(&ch), OK);
        for i in 0..100 {
            producer.produce_record(record(i));
        }
        producer.flush();
        drop(producer);
        // No acknowledgement exists: wait (bounded) for each record in turn.
        for i in 0..100 {
            let mut got = Ok(Vec::new());
            for _ in 0..400 {
                got = reader.pop(&ch);
                if got != Ok(Vec::new()) {
                    break;
                }
                thread::sleep(Duration::from_millis(25));
            }
            assert_eq!(got, Ok(record(i)), "{ch} record {i}");
        }
        assert_eq!(reader.pop(&ch), Ok(Vec::new()));
    }
    assert_eq!(reader.pop("never_created"), Err(ERROR));
}
