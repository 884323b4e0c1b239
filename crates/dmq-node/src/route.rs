//! Which shard owns a channel, and how work reaches it.
//!
//! Ownership is one deterministic function, [`shard_for`]. A connection runs on
//! the shard that accepted it; work for a channel owned by that same shard is done
//! inline (the local fast path), work for another shard travels as a [`ShardMsg`]
//! over glommio's bounded lock-free mesh and is answered through a oneshot. Every
//! message carries a *batch* of operations, because waking a parked executor on
//! another core costs tens of microseconds: one wake-up should move many records.
//!
//! A [`Router`] lives on each shard for the life of the process; the pump tasks
//! that drain the mesh run on the receiving shard.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use futures_channel::oneshot;
use glommio::channels::channel_mesh::Senders;
use glommio::channels::shared_channel::ConnectedReceiver;
use glommio::GlommioError;

use dmq_storage::disk::DiskError;
use dmq_storage::Stored;

use crate::shard::{ConsumerId, PollResult, PopOutcome, PushError, Shard, ShardSnapshot};

/// Index of a shard (= executor = core).
pub type ShardId = usize;

/// The owner of a channel: FNV-1a (fixed offset basis, so every process and every
/// restart agrees) of the name, modulo the number of shards.
pub fn shard_for(channel: &[u8], nr_shards: usize) -> ShardId {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0100_0000_01b3;
    if nr_shards <= 1 {
        return 0;
    }
    let hash = channel
        .iter()
        .fold(OFFSET_BASIS, |h, &b| (h ^ u64::from(b)).wrapping_mul(PRIME));
    (hash % nr_shards as u64) as ShardId
}

/// One operation on the owner shard's channels. Names are already validated.
#[derive(Debug)]
pub enum Op {
    /// One record to every storage of each channel (created if missing), in
    /// list order. One op carries all of a request's channels on this shard,
    /// so the value crosses cores once per shard, not once per channel.
    Push {
        channels: Vec<String>,
        value: Vec<u8>,
    },
    /// A run of records encoded `u64 len + bytes` (a Produce batch), each to
    /// every channel in list order.
    PushEncoded {
        channels: Vec<String>,
        records: Vec<u8>,
    },
    Pop {
        channel: String,
        create: bool,
    },
    Create {
        channel: String,
    },
    Remove {
        channel: String,
    },
    ConsumeStart {
        channel: String,
        subscriber: String,
    },
    ConsumeStop {
        consumer: ConsumerId,
    },
    /// Report the shard's storages and counters (admin socket, metrics, stats);
    /// `true` starts a new max-active window.
    Snapshot {
        reset_max_active: bool,
    },
    /// Answered `Push(Ok)` once every push of this shard up to `ticket` is on
    /// disk (`Push(Err)` if a write failed first): the acknowledgement of a
    /// local push that went to the disk overflow.
    AwaitDurable {
        ticket: u64,
    },
}

/// What applying an [`Op`] gave.
#[derive(Debug)]
pub enum Applied {
    Done(OpResult),
    /// Done, to be acknowledged once the ticket is on disk.
    Durable(OpResult, u64),
    /// A Pop that waits for records to come back from disk: apply the op
    /// again when the receiver fires.
    Wait(Op, oneshot::Receiver<()>),
}

impl Applied {
    fn stored(result: OpResult, stored: Stored) -> Applied {
        match stored {
            Stored::Memory => Applied::Done(result),
            Stored::Disk(ticket) => Applied::Durable(result, ticket),
        }
    }
}

/// Applies `ops` in order on this shard: synchronously as far as possible,
/// waiting where a Pop needs records from disk; then waits until the pushes
/// that went to disk are written, and turns them into errors if a write
/// failed. Results come in the order of `ops`.
pub async fn run_ops(shard: &RefCell<Shard>, ops: Vec<Op>) -> Vec<OpResult> {
    let mut results = Vec::with_capacity(ops.len());
    let mut durable: Vec<(usize, u64)> = Vec::new();
    for op in ops {
        let mut op = op;
        loop {
            let applied = shard.borrow_mut().apply(op);
            match applied {
                Applied::Done(result) => results.push(result),
                Applied::Durable(result, ticket) => {
                    durable.push((results.len(), ticket));
                    results.push(result);
                }
                Applied::Wait(again, ready) => {
                    // A dropped sender (shutdown) also means: look again.
                    let _ = ready.await;
                    op = again;
                    continue;
                }
            }
            break;
        }
    }
    if let Some(ticket) = durable.iter().map(|&(_, t)| t).max() {
        if crate::overflow::wait_durable(shard, ticket).await.is_err() {
            let written = shard.borrow().disk.durable_ticket();
            for (index, ticket) in durable {
                if ticket > written {
                    results[index] = match &results[index] {
                        OpResult::Produced(_) => OpResult::Produced(Err(0)),
                        _ => OpResult::Push(Err(PushError::Disk(DiskError::Unavailable))),
                    };
                }
            }
        }
    }
    results
}

/// The answer to one [`Op`], in the same position of the batch.
#[derive(Debug, PartialEq)]
pub enum OpResult {
    Done,
    Push(Result<(), PushError>),
    /// A Produce batch: `Err(i)` = the i-th channel of the op refused a record.
    Produced(Result<(), usize>),
    Pop(PopOutcome),
    Consumer(ConsumerId),
    Snapshot(Box<ShardSnapshot>),
}

impl Shard {
    /// Applies one operation; the single entry point for work from other
    /// shards (through [`run_ops`], which handles the waiting).
    pub fn apply(&mut self, op: Op) -> Applied {
        let result = match op {
            Op::Push { channels, value } => {
                // Every channel gets its push (no short cut); the answer is
                // an error if any refused.
                let mut result = Ok(());
                let mut stored = Stored::Memory;
                for channel in &channels {
                    match self.push(channel, &value) {
                        Ok(s) => stored = stored.max(s),
                        Err(e) => result = Err(e),
                    }
                }
                return Applied::stored(OpResult::Push(result), stored);
            }
            Op::PushEncoded { channels, records } => {
                return match self.push_encoded(&channels, &records) {
                    Ok(stored) => Applied::stored(OpResult::Produced(Ok(())), stored),
                    Err(index) => Applied::Done(OpResult::Produced(Err(index))),
                };
            }
            Op::Pop { channel, create } => match self.try_pop(&channel, create) {
                Ok(outcome) => OpResult::Pop(outcome),
                Err(ready) => return Applied::Wait(Op::Pop { channel, create }, ready),
            },
            Op::AwaitDurable { ticket } => {
                return Applied::Durable(OpResult::Push(Ok(())), ticket);
            }
            Op::Create { channel } => {
                self.create(&channel);
                OpResult::Done
            }
            Op::Remove { channel } => {
                return match self.remove(&channel) {
                    Some(ticket) => Applied::Durable(OpResult::Done, ticket),
                    None => Applied::Done(OpResult::Done),
                };
            }
            Op::ConsumeStart {
                channel,
                subscriber,
            } => OpResult::Consumer(self.consume_start(&channel, &subscriber)),
            Op::ConsumeStop { consumer } => {
                self.consume_stop(consumer);
                OpResult::Done
            }
            Op::Snapshot { reset_max_active } => {
                OpResult::Snapshot(Box::new(self.snapshot(reset_max_active)))
            }
        };
        Applied::Done(result)
    }
}

/// Appends `op` to the batch for `shard` in `ops` (one batch per shard, in
/// first-use order) and returns its position in that batch.
pub fn queue_op(ops: &mut Vec<(ShardId, Vec<Op>)>, shard: ShardId, op: Op) -> usize {
    let slot = match ops.iter().position(|(s, _)| *s == shard) {
        Some(slot) => slot,
        None => {
            ops.push((shard, Vec::new()));
            ops.len() - 1
        }
    };
    let batch = &mut ops[slot].1;
    batch.push(op);
    batch.len() - 1
}

/// Pushes `value` to every channel of a Push or PushMulti: the channels this
/// shard owns at once (when `inline`; otherwise as an op for this shard, like
/// the others), the others grouped into one [`Op::Push`] per owner shard
/// (returned for the caller to send). Returns whether a local push was
/// refused; when local pushes went to disk, the ops include an
/// [`Op::AwaitDurable`] for this shard, whose answer is their acknowledgement.
pub fn push_to_owners<'c>(
    router: &Router,
    channels: impl IntoIterator<Item = &'c str>,
    value: &[u8],
    inline: bool,
) -> (bool, Vec<(ShardId, Op)>) {
    let mut local_refused = false;
    let mut local = Stored::Memory;
    let mut remote: Vec<(ShardId, Vec<String>)> = Vec::new();
    for channel in channels {
        let owner = router.owner(channel.as_bytes());
        if inline && router.is_local(owner) {
            match router.local().borrow_mut().push(channel, value) {
                Ok(stored) => local = local.max(stored),
                Err(_) => local_refused = true,
            }
        } else {
            match remote.iter_mut().find(|(shard, _)| *shard == owner) {
                Some((_, list)) => list.push(channel.to_owned()),
                None => remote.push((owner, vec![channel.to_owned()])),
            }
        }
    }
    let mut ops: Vec<(ShardId, Op)> = remote
        .into_iter()
        .map(|(shard, channels)| {
            let op = Op::Push {
                channels,
                value: value.to_vec(),
            };
            (shard, op)
        })
        .collect();
    if let Stored::Disk(ticket) = local {
        ops.push((router.me(), Op::AwaitDurable { ticket }));
    }
    (local_refused, ops)
}

/// The envelope between shards.
#[derive(Debug)]
pub enum ShardMsg {
    Batch {
        ops: Vec<Op>,
        reply: oneshot::Sender<Vec<OpResult>>,
    },
    Poll {
        consumer: ConsumerId,
        max_bytes: usize,
        reply: oneshot::Sender<PollResult>,
    },
}

/// The other shard did not answer: it is shutting down.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("shard {0} is gone (shutting down)")]
pub struct ShardGone(pub ShardId);

fn bump(c: &Cell<u64>, by: u64) {
    c.set(c.get().wrapping_add(by));
}

/// Routes work from this shard's connections to the owning shards.
pub struct Router {
    me: ShardId,
    nr_shards: usize,
    shard: Rc<RefCell<Shard>>,
    mesh: Option<Senders<ShardMsg>>,
}

impl Router {
    pub fn new(
        me: ShardId,
        nr_shards: usize,
        shard: Rc<RefCell<Shard>>,
        mesh: Option<Senders<ShardMsg>>,
    ) -> Router {
        Router {
            me,
            nr_shards,
            shard,
            mesh,
        }
    }

    pub fn me(&self) -> ShardId {
        self.me
    }

    pub fn owner(&self, channel: &[u8]) -> ShardId {
        shard_for(channel, self.nr_shards)
    }

    pub fn is_local(&self, shard: ShardId) -> bool {
        shard == self.me
    }

    /// This shard's own state, for the inline fast path.
    pub fn local(&self) -> &RefCell<Shard> {
        &self.shard
    }

    /// Runs a batch on `shard`: inline when it is this shard, otherwise as one mesh
    /// message. Results come back in the order of `ops`.
    pub async fn run(&self, shard: ShardId, ops: Vec<Op>) -> Result<Vec<OpResult>, ShardGone> {
        if self.is_local(shard) {
            bump(&self.shard.borrow().probes.ops_local, ops.len() as u64);
            return Ok(run_ops(&self.shard, ops).await);
        }
        self.submit(shard, ops)
            .await?
            .await
            .map_err(|_| ShardGone(shard))
    }

    /// Sends a batch to another shard without waiting for the answer, so that
    /// batches for several shards can be in flight at once. A batch for this
    /// shard (ops that wait for the disk) runs in a task of its own.
    pub async fn submit(
        &self,
        shard: ShardId,
        ops: Vec<Op>,
    ) -> Result<oneshot::Receiver<Vec<OpResult>>, ShardGone> {
        let (reply, answer) = oneshot::channel();
        if self.is_local(shard) {
            bump(&self.shard.borrow().probes.ops_local, ops.len() as u64);
            run_and_reply(self.shard.clone(), ops, reply).await;
            return Ok(answer);
        }
        bump(&self.shard.borrow().probes.ops_remote, ops.len() as u64);
        self.send(shard, ShardMsg::Batch { ops, reply }).await?;
        Ok(answer)
    }

    /// Runs one operation on `shard` (see [`Router::run`]).
    pub async fn call(&self, shard: ShardId, op: Op) -> Result<OpResult, ShardGone> {
        let mut results = self.run(shard, vec![op]).await?;
        results.pop().ok_or(ShardGone(shard))
    }

    /// Waits for the next records of a consumer registered on `shard`.
    pub async fn poll(
        &self,
        shard: ShardId,
        consumer: ConsumerId,
        max_bytes: usize,
    ) -> Result<PollResult, ShardGone> {
        let (reply, answer) = oneshot::channel();
        if self.is_local(shard) {
            self.shard
                .borrow_mut()
                .consume_poll(consumer, max_bytes, reply);
        } else {
            self.send(
                shard,
                ShardMsg::Poll {
                    consumer,
                    max_bytes,
                    reply,
                },
            )
            .await?;
        }
        answer.await.map_err(|_| ShardGone(shard))
    }

    async fn send(&self, shard: ShardId, msg: ShardMsg) -> Result<(), ShardGone> {
        let mesh = self.mesh.as_ref().ok_or(ShardGone(shard))?;
        self.shard.borrow().probes.mesh_sent(shard);
        match mesh.try_send_to(shard, msg) {
            Ok(()) => Ok(()),
            Err(GlommioError::WouldBlock(glommio::ResourceType::Channel(msg))) => {
                bump(&self.shard.borrow().probes.mesh_full, 1);
                mesh.send_to(shard, msg).await.map_err(|_| ShardGone(shard))
            }
            Err(_) => Err(ShardGone(shard)),
        }
    }
}

/// Drains one peer's mesh queue into this shard, for as long as the peer is up.
/// All messages that are ready are handled in one go before the task parks.
pub async fn pump(shard: Rc<RefCell<Shard>>, from: ConnectedReceiver<ShardMsg>) {
    let mut handled: u32 = 0;
    while let Some(msg) = from.recv().await {
        bump(&shard.borrow().probes.mesh_received, 1);
        match msg {
            ShardMsg::Batch { ops, reply } => run_and_reply(shard.clone(), ops, reply).await,
            ShardMsg::Poll {
                consumer,
                max_bytes,
                reply,
            } => shard.borrow_mut().consume_poll(consumer, max_bytes, reply),
        }
        handled = handled.wrapping_add(1);
        if handled.is_multiple_of(256) {
            glommio::yield_if_needed().await;
        }
    }
}

/// Runs `ops` on this shard and sends the results: at once when nothing has
/// to wait (the common case), otherwise from a task of its own so that the
/// caller goes on.
async fn run_and_reply(
    shard: Rc<RefCell<Shard>>,
    ops: Vec<Op>,
    reply: oneshot::Sender<Vec<OpResult>>,
) {
    let mut run = Box::pin(async move { run_ops(&shard, ops).await });
    match futures_lite::future::poll_once(&mut run).await {
        // A closed reply means the asking connection went away; its pops
        // are lost with it, as records in flight on a broken socket are.
        Some(results) => {
            let _ = reply.send(results);
        }
        None => {
            glommio::spawn_local(async move {
                let _ = reply.send(run.await);
            })
            .detach();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_push_op_serves_every_channel_spilling_where_needed() {
        let sizes =
            dmq_storage::ChannelSizes::new(1024, vec![("tiny".to_owned(), 16)]).expect("sizes");
        let mut shard = Shard::new(sizes);
        let op = Op::Push {
            channels: vec!["a".into(), "tiny".into(), "b".into(), "a".into()],
            value: vec![7; 20],
        };
        // "tiny" cannot hold the value: it goes to disk, and the op is
        // acknowledged once that is written.
        let Applied::Durable(result, _) = shard.apply(op) else {
            panic!("the op waits for its disk write");
        };
        assert_eq!(result, OpResult::Push(Ok(())));
        for (channel, expected) in [("a", 2), ("b", 1), ("tiny", 1)] {
            let records = shard.channels().get(channel).map_or(0, |c| c.records());
            assert_eq!(records, expected, "{channel}");
        }
    }

    #[test]
    fn one_shard_owns_everything() {
        assert_eq!(shard_for(b"anything", 1), 0);
        assert_eq!(shard_for(b"", 0), 0);
    }

    #[test]
    fn ownership_is_stable_and_spreads() {
        // Fixed values: a change here would move channels between shards on upgrade.
        assert_eq!(shard_for(b"test_channel", 2), shard_for(b"test_channel", 2));
        let mut counts = [0usize; 4];
        for i in 0..4000 {
            counts[shard_for(format!("channel{i}").as_bytes(), 4)] += 1;
        }
        for c in counts {
            assert!((800..1200).contains(&c), "{counts:?}");
        }
    }
}
