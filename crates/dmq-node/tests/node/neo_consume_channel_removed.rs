//! A legacy RemoveChannel ends every neo Consume of the channel with
//! ChannelRemoved (spec 3.8 step 7, 4.6), after any batch still waiting for
//! its Continue; no Stopped follows, the request id is free again and the
//! connection keeps serving.

use std::time::Duration;

use dmq_proto::neo::ConsumeStatus;
use dmq_testkit::legacy::OK;
use dmq_testkit::neo::{ConsumeEvent, NeoClient, Pop, PUSHED};
use dmq_testkit::node::Node;
use dmq_testkit::records::record;

use crate::support::names_on_each_shard;

/// Reads until ChannelRemoved, acknowledging any Records; returns them.
fn until_removed(c: &mut NeoClient, id: u64) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    // Bounded: each round takes one message (within IO_TIMEOUT).
    for _ in 0..1000 {
        match c.next_event(id) {
            ConsumeEvent::Records { records, .. } => {
                got.extend(records);
                c.send_continue(id);
            }
            ConsumeEvent::ChannelRemoved => return got,
            ConsumeEvent::Stopped => panic!("Consume {id}: Stopped without a Stop"),
        }
    }
    panic!("Consume {id}: no ChannelRemoved after 1000 messages");
}

#[test]
fn remove_channel_ends_a_neo_consume() {
    let node = Node::start_neo(&["performance.write_flush_ms=1"]);
    let mut legacy = node.client();
    for ch in names_on_each_shard("removed", 2) {
        let mut c = node.neo();
        let id = c.consume(&ch, "");
        assert_eq!(legacy.push(&ch, "something"), OK);
        assert_eq!(c.next_records(id), vec![b"something".to_vec()], "{ch}");
        c.send_continue(id);
        assert_eq!(legacy.remove(&ch), OK);
        assert!(until_removed(&mut c, id).is_empty(), "{ch}");
        // Nothing follows ChannelRemoved.
        assert!(
            c.try_next_event(id, Duration::from_millis(100)).is_none(),
            "{ch}: a message after ChannelRemoved"
        );

        // The connection keeps working: Push and Pop on the same connection;
        // the channel came back unsubscribed and empty.
        assert_eq!(c.pop(&ch), Pop::Empty, "{ch}");
        assert_eq!(c.push(&[&ch], "again"), PUSHED);
        assert_eq!(c.pop(&ch), Pop::Popped(b"again".to_vec()), "{ch}");
        // The id is free: a Consume with the same id starts.
        let mut msg = Vec::new();
        dmq_proto::neo::ConsumeRequest {
            channel: ch.as_bytes(),
            subscriber: b"",
        }
        .encode(&mut msg, id);
        c.send_raw(&msg);
        assert_eq!(c.read_consume_start(id), ConsumeStatus::Started);
        assert_eq!(legacy.push(&ch, "third"), OK);
        assert_eq!(c.next_records(id), vec![b"third".to_vec()]);
        c.send_continue(id);
        assert_eq!(legacy.remove(&ch), OK);
        assert!(until_removed(&mut c, id).is_empty());
    }
}

#[test]
fn remove_channel_ends_every_consumer_and_subscriber() {
    let node = Node::start_neo(&["performance.write_flush_ms=1"]);
    let mut legacy = node.client();
    for ch in names_on_each_shard("all_removed", 1) {
        // Three consumers on one connection (two subscribers), one on another.
        let mut c = node.neo();
        let ids = [
            c.consume(&ch, ""),
            c.consume(&ch, ""),
            c.consume(&ch, "sub"),
        ];
        let mut other = node.neo();
        let other_id = other.consume(&ch, "sub2");
        // A legacy Consume on the default subscriber too.
        let mut legacy_consumer = node.client();
        assert_eq!(legacy_consumer.consume(&ch), OK);
        assert_eq!(legacy.remove(&ch), OK);
        for id in ids {
            until_removed(&mut c, id);
        }
        until_removed(&mut other, other_id);
        assert_eq!(
            legacy_consumer.next_record(),
            None,
            "{ch}: legacy end marker"
        );
        assert_eq!(c.push(&[&ch], "v"), PUSHED);
        assert_eq!(
            other.pop(&ch),
            Pop::Popped(b"v".to_vec()),
            "{ch}: unsubscribed"
        );
    }
}

#[test]
fn channel_removed_waits_for_the_outstanding_batch() {
    let node = Node::start_neo(&["performance.write_flush_ms=1"]);
    let mut legacy = node.client();
    for ch in names_on_each_shard("outstanding", 1) {
        let mut c = node.neo();
        let id = c.consume(&ch, "");
        for i in 0..10 {
            legacy.queue_push(&ch, record(i));
        }
        legacy.flush();
        for _ in 0..10 {
            assert_eq!(legacy.read_status(), OK);
        }
        let mut got = c.next_records(id);
        // Not acknowledged yet: the removal must not overtake the batch.
        assert_eq!(legacy.remove(&ch), OK);
        assert!(
            c.try_next_event(id, Duration::from_millis(200)).is_none(),
            "{ch}: a message while a batch is unacknowledged"
        );
        c.send_continue(id);
        got.extend(until_removed(&mut c, id));
        // What came is a prefix of what was pushed, in order (records not
        // yet popped when the channel was removed are gone with it).
        let expected: Vec<_> = (0..got.len()).map(record).collect();
        assert_eq!(got, expected, "{ch}");
        assert_eq!(c.push(&[&ch], "v"), PUSHED);
    }
}

#[test]
fn admin_remove_channel_ends_a_neo_consume_too() {
    let node = Node::start_neo(&["performance.write_flush_ms=1"]);
    let mut c = node.neo();
    let id = c.consume("admin_removed", "sub");
    assert_eq!(
        node.admin().line("remove-channel admin_removed"),
        "Channel admin_removed removed."
    );
    assert!(until_removed(&mut c, id).is_empty());
    assert_eq!(c.pop("admin_removed"), Pop::Empty);
}
