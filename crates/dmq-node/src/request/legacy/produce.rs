//! Produce (10) and ProduceMulti (11): after the 200 status the client streams
//! records, ended by an empty one; each record goes to every listed channel.
//! There is no per-record acknowledgement.
//!
//! Records are applied in runs: everything complete in the input buffer goes to
//! each owner shard as one batch, and the next read waits until the owners have
//! applied it, so a fast producer is held back by the owners, never buffered
//! without bound. The run is copied once per remote shard and not at all locally.

use dmq_proto::legacy::{encode_status, parse_stream_item, DecodeError, Status, StreamItem};

use crate::context::ShardContext;
use crate::legacy::connection::{ConnError, Connection};
use crate::metrics::probes::{Outcome, Protocol, RequestKind};
use crate::request::channel_name;
use crate::route::{ShardGone, ShardId};
use crate::shard::{wait_durable, OpBatch};
use dmq_storage::Stored;

/// Runs the stream. `Ok(true)`: ended by the empty record, the connection goes
/// on; `Ok(false)`: close it (the client went away or the node shuts down).
pub async fn run(
    conn: &mut Connection,
    channels: Vec<Vec<u8>>,
    kind: RequestKind,
) -> Result<bool, ConnError> {
    let mut names = Vec::with_capacity(channels.len());
    for raw in &channels {
        match channel_name(raw) {
            Some(name) => names.push(name.to_owned()),
            None => {
                conn.ctx
                    .probes()
                    .request_done(Protocol::Legacy, kind, Outcome::S409, None);
                encode_status(conn.out(), Status::BadChannelName);
                conn.flush().await?;
                return Ok(true);
            }
        }
    }
    let ctx = conn.ctx.clone();
    let router = &ctx.router;
    // Channels grouped by owner shard, in list order (duplicates kept).
    let mut by_shard: Vec<(ShardId, Vec<String>)> = Vec::new();
    for name in names {
        let owner = router.owner(name.as_bytes());
        match by_shard.iter_mut().find(|(s, _)| *s == owner) {
            Some((_, list)) => list.push(name),
            None => by_shard.push((owner, vec![name])),
        }
    }
    // A single-channel Produce creates its channel at once (the original does);
    // ProduceMulti creates them with the first record.
    if channels.len() == 1 {
        if let Some((owner, list)) = by_shard.first() {
            let mut create = OpBatch::default();
            create.create(list[0].clone());
            router.run(*owner, create).await?;
        }
    }
    encode_status(conn.out(), Status::Ok);
    {
        let probes = ctx.probes();
        probes.request_done(Protocol::Legacy, kind, Outcome::S200, None);
        probes.request_started(Protocol::Legacy, kind);
    }
    let _active = Active(&ctx, kind);
    conn.flush().await?;

    loop {
        let (records_len, end) = scan(conn.input.data());
        let end = match end {
            Ok(end) => end,
            Err(e) => {
                apply(conn, &by_shard, records_len).await?;
                return Err(ConnError::TooLong(e));
            }
        };
        apply(conn, &by_shard, records_len).await?;
        match end {
            Scan::End(used) => {
                conn.input.consume(used);
                return Ok(true);
            }
            Scan::Need(needed) => {
                if !conn.read_or_shutdown(needed).await? {
                    return Ok(false);
                }
            }
        }
    }
}

enum Scan {
    /// The end marker is there; this many bytes (after the applied run) end it.
    End(usize),
    /// Read until this many bytes (from the start of the data) are buffered.
    Need(usize),
}

/// The length of the run of complete records at the start of `data`, and what
/// follows it.
fn scan(data: &[u8]) -> (usize, Result<Scan, DecodeError>) {
    let mut pos = 0;
    loop {
        match parse_stream_item(&data[pos..]) {
            Ok((StreamItem::Record(_), used)) => pos += used,
            Ok((StreamItem::End, used)) => return (pos, Ok(Scan::End(used))),
            Err(DecodeError::Incomplete { needed }) => return (pos, Ok(Scan::Need(pos + needed))),
            Err(e) => return (pos, Err(e)),
        }
    }
}

/// Pushes the first `len` bytes of input (complete records) to every channel on
/// its owner shard, waits for all of them, then consumes those bytes.
async fn apply(
    conn: &mut Connection,
    by_shard: &[(ShardId, Vec<String>)],
    len: usize,
) -> Result<(), ConnError> {
    if len == 0 {
        return Ok(());
    }
    let ctx = conn.ctx.clone();
    let router = &ctx.router;
    let run = &conn.input.data()[..len];
    let mut pending = Vec::new();
    let mut refused = None;
    for (shard, channels) in by_shard {
        if router.is_local(*shard) {
            let result = router.local().borrow_mut().push_encoded(channels, run);
            match result {
                Ok(Stored::Memory) => {}
                Ok(Stored::Disk(ticket)) => {
                    if wait_durable(router.local(), ticket).await.is_err() {
                        refused.get_or_insert_with(|| channels[0].clone());
                    }
                }
                Err(index) => {
                    refused.get_or_insert_with(|| channels[index].clone());
                }
            }
        } else {
            let mut batch = OpBatch::default();
            let slot = batch.push_encoded(channels.clone(), run.to_vec());
            let answer = router.submit(*shard, batch).await?;
            pending.push((*shard, channels, slot, answer));
        }
    }
    for (shard, channels, slot, answer) in pending {
        let replies = answer.await.map_err(|_| ShardGone(shard))?;
        match replies.produced(slot).ok_or(ShardGone(shard))? {
            Ok(()) => {}
            Err(index) => {
                let channel = channels.get(index).map_or("?", String::as_str);
                refused.get_or_insert_with(|| channel.to_owned());
            }
        }
    }
    conn.input.consume(len);
    match refused {
        Some(channel) => Err(ConnError::ProduceRefused { channel }),
        None => Ok(()),
    }
}

/// Counts the stream as running for as long as it lives.
struct Active<'a>(&'a ShardContext, RequestKind);

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.probes().request_ended(Protocol::Legacy, self.1);
    }
}
