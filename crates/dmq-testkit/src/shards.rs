//! Channel names spread over the shards of a node.
//!
//! Which shard owns a channel is the node's own function (`shard_for` in
//! dmq-node); this kit does not depend on the node's library, so the caller
//! passes it in.

/// The owner function of a node: the shard of `channel` on a node with
/// `shards` shards.
pub type ShardFn = fn(channel: &[u8], shards: usize) -> usize;

/// `per_shard` channel names `prefix0`, `prefix1`, ... owned by each shard of a
/// `shards`-shard node, interleaved shard 0, shard 1, ..., shard 0, ...
pub fn names_on_each_shard(
    shard_of: ShardFn,
    shards: usize,
    prefix: &str,
    per_shard: usize,
) -> Vec<String> {
    let mut by_shard: Vec<Vec<String>> = vec![Vec::new(); shards];
    // Bounded: at most 100 000 names are tried.
    for i in 0..100_000 {
        let name = format!("{prefix}{i}");
        let list = &mut by_shard[shard_of(name.as_bytes(), shards)];
        if list.len() < per_shard {
            list.push(name);
        }
        if by_shard.iter().all(|l| l.len() == per_shard) {
            break;
        }
    }
    assert!(
        by_shard.iter().all(|l| l.len() == per_shard),
        "cannot find {per_shard} names per shard with prefix {prefix}"
    );
    (0..per_shard)
        .flat_map(|i| by_shard.iter().map(move |l| l[i].clone()))
        .collect()
}
