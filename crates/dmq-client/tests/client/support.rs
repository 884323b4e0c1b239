//! What the client's tests share beyond dmq-testkit: the node as the client
//! sees it, client settings, and receiving helpers.

use std::collections::HashMap;
use std::time::Duration;

use dmq_client::{blocking, ClientConfig, ClientCredentials, NodeAddr, Protocol};
use dmq_testkit::node::{credentials_line, Node};

/// The node as the client sees it.
pub trait NodeExt {
    fn node_addr(&self) -> NodeAddr;
    /// Whether `name`, a node as an error names it (`host:port`, or
    /// `host:neoport (neo)`), is this node.
    fn is_named(&self, name: &str) -> bool;
}

impl NodeExt for Node {
    fn node_addr(&self) -> NodeAddr {
        NodeAddr::with_neo_port("127.0.0.1", self.port(), self.neo_port())
    }

    fn is_named(&self, name: &str) -> bool {
        let addr = self.node_addr();
        name == addr.legacy_display() || name == addr.neo_display()
    }
}

/// The node list of `nodes`.
pub fn addrs(nodes: &[Node]) -> Vec<NodeAddr> {
    nodes.iter().map(Node::node_addr).collect()
}

/// Client settings for tests: short timeouts and back-off so failures are quick.
pub fn config(protocol: Protocol) -> ClientConfig {
    ClientConfig {
        protocol,
        credentials: Some(ClientCredentials::parse(&credentials_line()).expect("credentials")),
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(10),
        backoff_initial: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
        ..ClientConfig::default()
    }
}

/// Receives `want` records, each within 10 s (the test fails otherwise).
pub fn receive(consumer: &mut blocking::Consumer, want: usize) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    // Bounded: every round takes a record or fails the test.
    while got.len() < want {
        match consumer
            .recv_timeout(Duration::from_secs(10))
            .expect("consume")
        {
            Some(record) => got.push(record),
            None => panic!("only {} of {want} records arrived", got.len()),
        }
    }
    got
}

/// Pops node `node` empty (bounded by `max`) and returns what it held.
pub fn drain_node(
    client: &blocking::Client,
    node: usize,
    channel: &str,
    max: usize,
) -> Vec<Vec<u8>> {
    let mut records = Vec::new();
    for _ in 0..max {
        match client.pop_from(node, channel).expect("pop_from") {
            Some(record) => records.push(record),
            None => return records,
        }
    }
    panic!("node {node} still had records after {max} pops");
}

/// Counts how often each record occurs.
pub fn counts(records: impl IntoIterator<Item = Vec<u8>>) -> HashMap<Vec<u8>, usize> {
    let mut map = HashMap::new();
    for record in records {
        *map.entry(record).or_insert(0) += 1;
    }
    map
}
