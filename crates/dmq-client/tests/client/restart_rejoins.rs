//! A node that was killed and restarted on the same ports rejoins: once its
//! back-off has passed, pushes reach it again.

use std::time::{Duration, Instant};

use dmq_client::{blocking, Protocol};
use dmq_testkit::node::nodes;
use dmq_testkit::records::record;

use crate::support::{addrs, config, NodeExt};

fn rejoins(protocol: Protocol) {
    let mut nodes = nodes(3);
    let client = blocking::Client::new(addrs(&nodes), config(protocol)).expect("client");
    let channel = "rejoin";
    for i in 0..30 {
        client.push(channel, &record(i)).expect("push");
    }
    nodes[1].kill();
    // While it is down, every push goes to the others. One push may meet a pooled
    // connection that the dead node's kernel resets only after the push was sent
    // (glommio's io_uring closes a dead process's sockets a moment after it was
    // reaped): that one is reported as "outcome unknown" (at-most-once).
    let mut unknown = 0;
    for i in 30..90 {
        match client.push(channel, &record(i)) {
            Ok(pushed) => assert_ne!(pushed.node, 1),
            Err(dmq_client::Error::OutcomeUnknown { node, .. }) => {
                assert!(
                    nodes[1].is_named(&node),
                    "outcome unknown on a live node: {node}"
                );
                unknown += 1;
            }
            Err(e) => panic!("push with a node down: {e}"),
        }
    }
    assert!(unknown <= 1, "{unknown} pushes with an unknown outcome");
    nodes[1].restart();
    // Back-off is at most 200 ms in these tests; the loop is bounded in time and
    // in count.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut reached = None;
    for i in 90..100_000 {
        let pushed = client.push(channel, &record(i)).expect("push");
        if pushed.node == 1 {
            reached = Some(record(i));
            break;
        }
        assert!(Instant::now() < deadline, "node 1 never got a push back");
        std::thread::sleep(Duration::from_millis(5));
    }
    let reached = reached.expect("a push reached the restarted node");
    // The restarted node holds exactly what reached it since it came back.
    assert_eq!(
        client.pop_from(1, channel).expect("pop_from"),
        Some(reached)
    );
    assert_eq!(client.pop_from(1, channel).expect("pop_from"), None);
}

#[test]
fn legacy_restarted_node_rejoins() {
    rejoins(Protocol::Legacy);
}

#[test]
fn neo_restarted_node_rejoins() {
    rejoins(Protocol::Neo);
}

#[test]
fn consumer_reconnects_to_a_restarted_node() {
    let mut nodes = nodes(2);
    let client = blocking::Client::new(addrs(&nodes), config(Protocol::Neo)).expect("client");
    let channel = "reconsume";
    let mut consumer = client.consume(channel, "").expect("consume");
    nodes[0].kill();
    nodes[0].restart();
    // Records pushed to the restarted node reach the consumer once it reconnected.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut received = false;
    let mut i = 0;
    while !received {
        assert!(Instant::now() < deadline, "the consumer never reconnected");
        client.push_to(0, channel, &record(i)).expect("push_to");
        i += 1;
        while let Some(record) = consumer
            .recv_timeout(Duration::from_millis(100))
            .expect("consume")
        {
            assert!(record.len() == 9, "{record:?}");
            received = true;
        }
    }
    assert!(consumer.as_async().reconnect_count() >= 1);
    drop(consumer.stop());
}
