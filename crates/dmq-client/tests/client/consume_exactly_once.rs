//! One consumer of a channel on three nodes receives every pushed record exactly
//! once (legacy Consume, and neo Consume with a subscriber name), and suspend,
//! resume and stop work across the merged streams.

use std::time::Duration;

use dmq_client::{blocking, Protocol};
use dmq_testkit::node::nodes;
use dmq_testkit::records::record;

use crate::support::{addrs, config, counts, receive};

fn exactly_once(protocol: Protocol, subscriber: &str) {
    let nodes = nodes(3);
    let client = blocking::Client::new(addrs(&nodes), config(protocol)).expect("client");
    let channel = "consumed";
    // Some records are there before the consumer starts, the rest come after.
    let total = 900;
    for i in 0..total / 3 {
        client.push(channel, &record(i)).expect("push");
    }
    let mut consumer = client.consume(channel, subscriber).expect("consume");
    for i in total / 3..total {
        client.push(channel, &record(i)).expect("push");
    }
    let mut got = receive(&mut consumer, total / 2);

    // Suspended: only what was already received comes out, then Suspended.
    consumer.suspend();
    // Bounded: at most one batch per node is buffered.
    for _ in 0..total {
        match consumer.recv() {
            Ok(Some(record)) => got.push(record),
            Err(dmq_client::Error::Suspended) => break,
            other => panic!("while suspended: {other:?}"),
        }
    }
    consumer.resume();
    let rest = total - got.len();
    got.extend(receive(&mut consumer, rest));

    // Nothing more: a short wait brings no record.
    assert_eq!(
        consumer
            .recv_timeout(Duration::from_millis(300))
            .expect("consume"),
        None
    );
    let left = consumer.stop();
    assert!(left.is_empty(), "records after the last one: {left:?}");

    let seen = counts(got);
    assert_eq!(seen.len(), total, "every record");
    assert!(seen.values().all(|&n| n == 1), "exactly once");
    assert!((0..total).all(|i| seen.contains_key(&record(i))));
}

#[test]
fn legacy_consume_merges_three_nodes_exactly_once() {
    exactly_once(Protocol::Legacy, "");
}

#[test]
fn neo_consume_merges_three_nodes_exactly_once() {
    exactly_once(Protocol::Neo, "");
}

#[test]
fn neo_consume_with_a_subscriber_name() {
    let nodes = nodes(3);
    let client = blocking::Client::new(addrs(&nodes), config(Protocol::Neo)).expect("client");
    let channel = "subscribed";
    let mut first = client.consume(channel, "sub1").expect("consume sub1");
    let mut second = client.consume(channel, "sub2").expect("consume sub2");
    let total = 300;
    for i in 0..total {
        client.push(channel, &record(i)).expect("push");
    }
    // Each subscriber gets its own copy of every record.
    for consumer in [&mut first, &mut second] {
        let seen = counts(receive(consumer, total));
        assert_eq!(seen.len(), total);
        assert!(seen.values().all(|&n| n == 1));
    }
    // Stop ends the streams with neo Stop; nothing is left behind.
    assert!(first.stop().is_empty());
    assert!(second.stop().is_empty());
    // Pop is refused on a subscribed channel.
    let err = client
        .pop(channel)
        .expect_err("pop on a subscribed channel");
    assert!(err.to_string().contains("subscribers"), "{err}");
}

#[test]
fn consume_ends_when_the_channel_is_removed_everywhere() {
    let nodes = nodes(3);
    for protocol in [Protocol::Legacy, Protocol::Neo] {
        let client = blocking::Client::new(addrs(&nodes), config(protocol)).expect("client");
        let channel = format!("removed{protocol:?}");
        let mut consumer = client.consume(&channel, "").expect("consume");
        client.push(&channel, b"one").expect("push");
        assert_eq!(receive(&mut consumer, 1), [b"one".to_vec()]);
        client.remove_channel(&channel).expect("remove");
        // Bounded: the end arrives within a few waits.
        let mut ended = false;
        for _ in 0..50 {
            match consumer
                .recv_timeout(Duration::from_millis(200))
                .expect("consume")
            {
                Some(record) => panic!("unexpected record {record:?}"),
                None if consumer.is_ended() => {
                    ended = true;
                    break;
                }
                None => {}
            }
        }
        assert!(ended, "{protocol:?}: the consumer did not end");
        assert_eq!(consumer.recv().expect("after the end"), None);
    }
}
