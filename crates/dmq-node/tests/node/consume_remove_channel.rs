//! A legacy Consume receives what is pushed to its channel; RemoveChannel on
//! another connection ends it with the end marker (an empty array), and the
//! consuming connection then takes ordinary requests again.

use dmq_testkit::legacy::{BAD_CHANNEL_NAME, ERROR, OK};
use dmq_testkit::node::Node;
use dmq_testkit::records::record;

use crate::support::names_on_each_shard;

#[test]
fn consume_receives_pushes_and_remove_channel_ends_it() {
    let node = Node::start(&[]);
    let mut pusher = node.client();
    for ch in names_on_each_shard("consumed", 2) {
        let mut consumer = node.client();
        assert_eq!(consumer.consume(&ch), OK, "{ch}");
        assert_eq!(pusher.push(&ch, "something"), OK);
        assert_eq!(consumer.next_record(), Some(b"something".to_vec()), "{ch}");
        for i in 0..100 {
            pusher.queue_push(&ch, record(i));
        }
        pusher.flush();
        for _ in 0..100 {
            assert_eq!(pusher.read_status(), OK);
        }
        for i in 0..100 {
            assert_eq!(consumer.next_record(), Some(record(i)), "{ch}");
        }

        assert_eq!(pusher.remove(&ch), OK);
        assert_eq!(consumer.next_record(), None, "{ch}: end marker");

        // The same connection now serves ordinary requests; the channel was
        // removed, so it is gone until a push recreates it unsubscribed.
        assert_eq!(consumer.pop(&ch), Err(ERROR), "{ch}");
        assert_eq!(consumer.push(&ch, "again"), OK);
        assert_eq!(consumer.pop(&ch), Ok(b"again".to_vec()), "{ch}");
        assert_eq!(consumer.pop(&ch), Ok(Vec::new()), "{ch}");
        // And it can consume again.
        assert_eq!(consumer.consume(&ch), OK);
        assert_eq!(pusher.push(&ch, "third"), OK);
        assert_eq!(consumer.next_record(), Some(b"third".to_vec()));
        assert_eq!(pusher.remove(&ch), OK);
        assert_eq!(consumer.next_record(), None);
    }
}

#[test]
fn remove_channel_is_200_even_for_a_missing_channel() {
    let node = Node::start(&[]);
    let mut c = node.client();
    for ch in names_on_each_shard("never", 2) {
        assert_eq!(c.remove(&ch), OK, "{ch}");
        assert_eq!(c.pop(&ch), Err(ERROR), "remove must not create {ch}");
    }
    assert_eq!(c.remove("bad.name"), BAD_CHANNEL_NAME);
    assert_eq!(c.remove(""), BAD_CHANNEL_NAME);
}

#[test]
fn remove_channel_drops_the_records() {
    let node = Node::start(&[]);
    let mut c = node.client();
    for ch in names_on_each_shard("dropped", 1) {
        for i in 0..10 {
            assert_eq!(c.push(&ch, record(i)), OK);
        }
        assert_eq!(c.remove(&ch), OK);
        assert_eq!(c.pop(&ch), Err(ERROR), "{ch} is gone");
        assert_eq!(c.push(&ch, "new"), OK);
        assert_eq!(c.pop(&ch), Ok(b"new".to_vec()));
        assert_eq!(c.pop(&ch), Ok(Vec::new()));
    }
}

#[test]
fn consume_with_a_bad_name_is_409_and_the_connection_goes_on() {
    let node = Node::start(&[]);
    let mut c = node.client();
    assert_eq!(c.consume("bad.name"), BAD_CHANNEL_NAME);
    assert_eq!(c.consume(""), BAD_CHANNEL_NAME);
    assert_eq!(c.push("fine", "v"), OK);
    assert_eq!(c.pop("fine"), Ok(b"v".to_vec()));
}

#[test]
fn several_consumes_of_one_channel_all_end() {
    let node = Node::start(&[]);
    let mut pusher = node.client();
    for ch in names_on_each_shard("ended", 1) {
        let mut consumers: Vec<_> = (0..3).map(|_| node.client()).collect();
        for consumer in &mut consumers {
            assert_eq!(consumer.consume(&ch), OK);
        }
        assert_eq!(pusher.remove(&ch), OK);
        for consumer in &mut consumers {
            assert_eq!(consumer.next_record(), None, "{ch}");
            consumer.sync();
        }
    }
}

#[test]
fn requests_sent_behind_a_consume_are_answered_after_it_ends() {
    let node = Node::start(&[]);
    let mut pusher = node.client();
    for ch in names_on_each_shard("queued", 1) {
        let other = format!("{ch}_other");
        let mut consumer = node.client();
        // Consume, then a Push and a Pop in the same write: they wait until
        // the Consume has ended.
        consumer.queue_request(dmq_proto::legacy::Request::Consume {
            channel: ch.as_bytes(),
        });
        consumer.queue_push(&other, "behind");
        consumer.queue_pop(&other);
        consumer.flush();
        assert_eq!(consumer.read_status(), OK);
        assert_eq!(pusher.push(&ch, "first"), OK);
        assert_eq!(consumer.next_record(), Some(b"first".to_vec()));
        assert_eq!(pusher.pop(&other), Err(ERROR), "the Push is not done yet");
        assert_eq!(pusher.remove(&ch), OK);
        assert_eq!(consumer.next_record(), None);
        assert_eq!(consumer.read_status(), OK, "the Push behind the Consume");
        assert_eq!(consumer.read_pop_reply(), Ok(b"behind".to_vec()));
    }
}
