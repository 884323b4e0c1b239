//! Observability: per-shard [`probes`], the Prometheus endpoint ([`http`],
//! [`exposition`]), gathered by asking every shard for a snapshot.

pub mod exposition;
pub mod http;
pub mod probes;

use crate::context::ShardContext;
use crate::route::{Op, OpResult, ShardGone};
use crate::shard::ShardSnapshot;

/// Every shard's snapshot, in shard order (one mesh round trip per shard).
pub async fn gather(
    ctx: &ShardContext,
    reset_max_active: bool,
) -> Result<Vec<ShardSnapshot>, ShardGone> {
    let mut all = Vec::with_capacity(ctx.node.nr_shards);
    for shard in 0..ctx.node.nr_shards {
        match ctx
            .router
            .call(shard, Op::Snapshot { reset_max_active })
            .await?
        {
            OpResult::Snapshot(snapshot) => all.push(*snapshot),
            _ => return Err(ShardGone(shard)),
        }
    }
    Ok(all)
}
