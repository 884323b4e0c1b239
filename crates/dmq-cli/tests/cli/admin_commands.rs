//! `dmq channels` and `dmq stats` read the node's admin socket.

use dmq_testkit::node::{nodes, NodeOptions};

use crate::support::dmq_ok;

#[test]
fn channels_and_stats_from_the_admin_socket() {
    let nodes = nodes(1);
    let node = nodes[0].node_arg();
    for value in ["a", "b", "c"] {
        dmq_ok(&["--node", &node, "push", "admin", value], b"", &[]);
    }
    let socket = nodes[0].socket();
    let socket = socket.to_str().expect("utf8");
    let channels = dmq_ok(&["channels", "--socket", socket], b"", &[]).text();
    let line = channels
        .lines()
        .find(|l| l.starts_with("admin "))
        .unwrap_or_else(|| panic!("no admin channel in {channels:?}"));
    let fields: Vec<&str> = line.split(' ').collect();
    assert_eq!(fields.len(), 5, "{line}");
    assert_eq!(fields[1], "3", "records in memory: {line}");
    let stats = dmq_ok(&["stats", "--socket", socket], b"", &[]).text();
    assert!(stats.lines().any(|l| l == "channels: 1"), "{stats}");
    assert!(
        stats.lines().any(|l| l.starts_with("records_memory: 3")),
        "{stats}"
    );
}

#[test]
fn channels_and_stats_from_the_metrics_endpoint() {
    let node = NodeOptions::for_clients().metrics().start();
    let metrics = node.metrics_addr();
    let arg = node.node_arg();
    for value in ["a", "bb"] {
        dmq_ok(&["--node", &arg, "push", "viahttp", value], b"", &[]);
    }
    let url = format!("http://{metrics}/metrics");
    let channels = dmq_ok(&["channels", "--metrics", &url], b"", &[]).text();
    let line = channels
        .lines()
        .find(|l| l.starts_with("viahttp "))
        .unwrap_or_else(|| panic!("no channel in {channels:?}"));
    assert!(line.starts_with("viahttp 2 "), "{line}");
    let stats = dmq_ok(&["stats", "--metrics", &url], b"", &[]).text();
    assert!(stats.lines().any(|l| l == "records_memory: 2"), "{stats}");
    assert!(stats.lines().any(|l| l == "channels: 1"), "{stats}");
}
