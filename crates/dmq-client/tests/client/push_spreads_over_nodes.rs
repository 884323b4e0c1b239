//! Records pushed through the client are spread over all nodes: each node holds
//! some (checked with per-node Pop), and together they hold each record once.

use dmq_client::{blocking, Protocol};
use dmq_testkit::node::nodes;
use dmq_testkit::records::record;

use crate::support::{addrs, config, counts, drain_node};

fn spreads(protocol: Protocol, multi: bool) {
    let nodes = nodes(3);
    let client = blocking::Client::new(addrs(&nodes), config(protocol)).expect("client");
    let channel = "spread";
    let total = 60;
    let mut acked_by = [0usize; 3];
    for i in 0..total {
        let pushed = if multi {
            client.push_multi(&[channel], &record(i))
        } else {
            client.push(channel, &record(i))
        }
        .expect("push");
        assert!(!pushed.maybe_duplicated);
        acked_by[pushed.node] += 1;
    }
    assert_eq!(acked_by, [20, 20, 20], "round-robin over healthy nodes");
    // Per-node Pop over the legacy port, whatever the push protocol was.
    let checker = blocking::Client::new(addrs(&nodes), config(Protocol::Legacy)).expect("client");
    let mut all = Vec::new();
    for (node, &acked) in acked_by.iter().enumerate() {
        let held = drain_node(&checker, node, channel, total + 1);
        assert_eq!(held.len(), acked, "node {node}");
        all.extend(held);
    }
    let seen = counts(all);
    assert_eq!(seen.len(), total);
    assert!(seen.values().all(|&n| n == 1));
    assert!((0..total).all(|i| seen.contains_key(&record(i))));
    assert_eq!(client.pop(channel).expect("pop"), None, "empty everywhere");
}

#[test]
fn legacy_push_spreads_over_nodes() {
    spreads(Protocol::Legacy, false);
}

#[test]
fn legacy_push_multi_spreads_over_nodes() {
    spreads(Protocol::Legacy, true);
}

#[test]
fn neo_push_spreads_over_nodes() {
    spreads(Protocol::Neo, false);
}

#[test]
fn pop_goes_round_the_nodes_until_one_has_a_record() {
    let nodes = nodes(3);
    for protocol in [Protocol::Legacy, Protocol::Neo] {
        let client = blocking::Client::new(addrs(&nodes), config(protocol)).expect("client");
        let channel = format!("pop{protocol:?}");
        // Only the last node holds records; the others never saw the channel
        // (legacy Pop: 500 there, neo Pop: Empty).
        for i in 0..5 {
            let pushed = client.push_to(2, &channel, &record(i)).expect("push_to");
            assert_eq!(pushed.node, 2);
        }
        for i in 0..5 {
            assert_eq!(client.pop(&channel).expect("pop"), Some(record(i)));
        }
        assert_eq!(client.pop(&channel).expect("pop"), None);
    }
}
