//! Observability: per-shard [`probes`], the Prometheus endpoint ([`http`],
//! [`exposition`]), gathered by asking every shard for a snapshot.

pub mod exposition;
pub mod http;
pub mod probes;

use crate::context::ShardContext;
use crate::route::ShardGone;
use crate::shard::ShardSnapshot;

/// Every shard's snapshot, in shard order (one mesh round trip per shard).
pub async fn gather(
    ctx: &ShardContext,
    reset_max_active: bool,
) -> Result<Vec<ShardSnapshot>, ShardGone> {
    let mut all = Vec::with_capacity(ctx.node.nr_shards);
    for shard in 0..ctx.node.nr_shards {
        all.push(ctx.router.snapshot(shard, reset_max_active).await?);
    }
    Ok(all)
}
