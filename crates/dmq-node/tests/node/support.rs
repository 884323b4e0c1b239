//! What the node's tests need beyond dmq-testkit: which shard owns a channel,
//! the node's own function (the kit does not depend on the node's library).

use dmq_testkit::node::{Node, SHARDS};
use dmq_testkit::writers::{self, Writer};

/// The shard that owns `channel` on a node with `shards` shards.
pub fn shard_of(channel: &str, shards: usize) -> usize {
    dmq_node::route::shard_for(channel.as_bytes(), shards)
}

/// `per_shard` channel names `prefix0`, `prefix1`, ... owned by each shard of a
/// [`SHARDS`]-shard node, interleaved shard 0, shard 1, shard 0, ...
pub fn names_on_each_shard(prefix: &str, per_shard: usize) -> Vec<String> {
    dmq_testkit::shards::names_on_each_shard(dmq_node::route::shard_for, SHARDS, prefix, per_shard)
}

/// A node for the neo writer/checker runs ([`writers::neo_node_options`]),
/// and the channels `writer` writes to on it: one per shard for the
/// two-channel writers.
pub fn start_neo_node_for(writer: Writer) -> (Node, Vec<String>) {
    let node = writers::neo_node_options().start();
    let channels = writer.channels(&names_on_each_shard("test_channel", 1));
    (node, channels)
}
