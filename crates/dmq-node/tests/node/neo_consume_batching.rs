//! Neo Consume v4 batching and flow control (spec 3.8): a batch goes out once
//! it holds at least 100 000 bytes, or `write_flush_ms` after its first record
//! when smaller; at most one batch is unacknowledged (nothing more before
//! Continue); Stop at any time ends with Stopped, possibly after Records.

use std::time::Duration;

use dmq_testkit::neo::{self, ConsumeEvent, NeoClient, Pop, PUSHED};
use dmq_testkit::node::Node;

use crate::support::names_on_each_shard;

/// `i` as a 100-byte record.
fn record100(i: usize) -> Vec<u8> {
    let mut r = format!("{i:09}").into_bytes();
    r.resize(100, b'.');
    r
}

fn push_all(c: &mut NeoClient, ch: &str, range: std::ops::Range<usize>) {
    let all: Vec<usize> = range.collect();
    for chunk in all.chunks(200) {
        let ids: Vec<_> = chunk
            .iter()
            .map(|&i| c.queue_push(&[ch], record100(i)))
            .collect();
        c.flush();
        for id in ids {
            assert_eq!(c.read_push(id), PUSHED);
        }
    }
}

#[test]
fn a_full_batch_holds_at_least_100_000_bytes() {
    let node = Node::start_neo(&[
        "performance.write_flush_ms=1",
        "server.channel_size_limit=4194304",
    ]);
    let mut pusher = node.neo();
    for ch in names_on_each_shard("full_batch", 1) {
        push_all(&mut pusher, &ch, 0..5000);
        let mut c = node.neo();
        let id = c.consume(&ch, "");
        let ConsumeEvent::Records { batch_len, records } = c.next_event(id) else {
            panic!("{ch}: expected Records");
        };
        assert!(
            batch_len >= 100_000,
            "{ch}: the first batch holds {batch_len} bytes, with 540 000 waiting"
        );
        assert_eq!(
            batch_len,
            records.iter().map(|r| 8 + r.len()).sum::<usize>(),
            "{ch}: batch_len counts an 8-byte length per record"
        );
        let mut got = records;
        c.send_continue(id);
        got.extend(neo::receive(&mut c, id, 5000 - got.len()));
        let expected: Vec<_> = (0..5000).map(record100).collect();
        assert_eq!(got, expected, "{ch}: all records, in order");
        assert!(c.stop_consume(id).is_empty(), "{ch}: nothing more");
    }
}

#[test]
fn a_single_record_is_sent_as_a_partial_batch() {
    let node = Node::start_neo(&["performance.write_flush_ms=1"]);
    let mut pusher = node.neo();
    for ch in names_on_each_shard("partial", 1) {
        let mut c = node.neo();
        let id = c.consume(&ch, "");
        assert_eq!(pusher.push(&[&ch], "lonely"), PUSHED);
        match c.next_event(id) {
            ConsumeEvent::Records { batch_len, records } => {
                assert_eq!(records, vec![b"lonely".to_vec()], "{ch}");
                assert_eq!(batch_len, 8 + 6, "{ch}");
            }
            other => panic!("{ch}: expected Records, got {other:?}"),
        }
        c.send_continue(id);
        // And again after the acknowledgement.
        assert_eq!(pusher.push(&[&ch], "second"), PUSHED);
        assert_eq!(c.next_records(id), vec![b"second".to_vec()], "{ch}");
        c.send_continue(id);
        assert!(c.stop_consume(id).is_empty());
    }
}

#[test]
fn partial_batch_with_a_longer_flush_interval() {
    // 50 ms: a record pushed alone still arrives, in its own batch.
    let node = Node::start_neo(&["performance.write_flush_ms=50"]);
    let mut pusher = node.neo();
    let mut c = node.neo();
    let id = c.consume("slow_flush", "");
    assert_eq!(pusher.push(&["slow_flush"], "one"), PUSHED);
    assert_eq!(c.next_records(id), vec![b"one".to_vec()]);
    c.send_continue(id);
    assert!(c.stop_consume(id).is_empty());
}

#[test]
fn no_records_before_continue() {
    let node = Node::start_neo(&["performance.write_flush_ms=1"]);
    let mut pusher = node.neo();
    for ch in names_on_each_shard("held", 1) {
        let mut c = node.neo();
        let id = c.consume(&ch, "");
        assert_eq!(pusher.push(&[&ch], "first"), PUSHED);
        assert_eq!(c.next_records(id), vec![b"first".to_vec()], "{ch}");
        // Not acknowledged: more records, many flush intervals, no Records.
        push_all(&mut pusher, &ch, 0..300);
        assert_eq!(
            c.try_next_event(id, Duration::from_millis(300)),
            None,
            "{ch}: Records before Continue"
        );
        // The records wait in the node (popped into the next batch, or still
        // in the channel): Pop says the channel is subscribed.
        assert_eq!(pusher.pop(&ch), Pop::Subscribed);
        c.send_continue(id);
        let got = neo::receive(&mut c, id, 300);
        let expected: Vec<_> = (0..300).map(record100).collect();
        assert_eq!(got, expected, "{ch}: after Continue, in order");
        assert!(c.stop_consume(id).is_empty());
    }
}

#[test]
fn stop_ends_with_stopped() {
    let node = Node::start_neo(&[
        "performance.write_flush_ms=1",
        "server.channel_size_limit=4194304",
    ]);
    let mut pusher = node.neo();
    for ch in names_on_each_shard("stopped", 1) {
        // Stop on an idle Consume: Stopped alone.
        let mut c = node.neo();
        let id = c.consume(&ch, "");
        c.send_stop(id);
        assert_eq!(c.next_event(id), ConsumeEvent::Stopped, "{ch}");

        // Stop with a batch unacknowledged and more records waiting: Records
        // may still come, then Stopped; none is lost or repeated, so what the
        // consumer got and what is left in the channel make up everything.
        push_all(&mut pusher, &ch, 0..3000);
        let id = c.consume(&ch, "");
        let mut got = c.next_records(id);
        got.extend(c.stop_consume(id));
        // The rest is still in the default subscriber's queue: a new Consume
        // receives it.
        let rest = 3000 - got.len();
        if rest > 0 {
            let id = c.consume(&ch, "");
            got.extend(neo::receive(&mut c, id, rest));
            assert!(c.stop_consume(id).is_empty());
        }
        let expected: Vec<_> = (0..3000).map(record100).collect();
        assert_eq!(got, expected, "{ch}: every record exactly once, in order");

        // The connection serves other requests after Stopped, and the id is
        // free again.
        assert_eq!(c.push(&["elsewhere"], "v"), PUSHED);
        assert_eq!(c.pop("elsewhere"), Pop::Popped(b"v".to_vec()));
    }
}

#[test]
fn stop_and_continue_together() {
    let node = Node::start_neo(&["performance.write_flush_ms=1"]);
    let mut pusher = node.neo();
    let mut c = node.neo();
    let id = c.consume("both_msgs", "");
    assert_eq!(pusher.push(&["both_msgs"], "a"), PUSHED);
    assert_eq!(c.next_records(id), vec![b"a".to_vec()]);
    // Continue and Stop in one write.
    c.queue_consume_message(id, dmq_proto::neo::ConsumeClientMessage::Continue);
    c.queue_consume_message(id, dmq_proto::neo::ConsumeClientMessage::Stop);
    c.flush();
    let mut late = Vec::new();
    // Bounded: Records at most a few times, then Stopped.
    for _ in 0..10 {
        match c.next_event(id) {
            ConsumeEvent::Records { records, .. } => late.extend(records),
            ConsumeEvent::Stopped => break,
            ConsumeEvent::ChannelRemoved => panic!("ChannelRemoved"),
        }
    }
    assert!(late.is_empty(), "nothing was pushed after 'a': {late:?}");
    assert_eq!(pusher.push(&["both_msgs"], "b"), PUSHED);
    assert!(
        c.try_next_event(id, Duration::from_millis(100)).is_none(),
        "no Records after Stopped"
    );
}
