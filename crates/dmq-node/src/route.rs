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

use dmq_storage::Stored;

use crate::shard::{
    reply, run_batch, ConsumerId, OpBatch, PollResult, Replies, Shard, ShardSnapshot, Slot,
};

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

/// The batches of one connection's work for several shards, one per shard
/// in first-use order. Each shard's batch keeps connection order.
#[derive(Debug, Default)]
pub struct ShardBatches {
    batches: Vec<(ShardId, OpBatch)>,
}

impl ShardBatches {
    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// The batch for `shard`, started if this is its first op.
    pub fn for_shard(&mut self, shard: ShardId) -> &mut OpBatch {
        let slot = match self.batches.iter().position(|(s, _)| *s == shard) {
            Some(slot) => slot,
            None => {
                self.batches.push((shard, OpBatch::default()));
                self.batches.len() - 1
            }
        };
        &mut self.batches[slot].1
    }

    /// Sends every batch (one mesh message per shard, all sent before any
    /// answer is awaited; this shard's batch runs in a task of its own).
    pub async fn submit(self, router: &Router) -> Result<PendingReplies, ShardGone> {
        let mut pending = Vec::with_capacity(self.batches.len());
        for (shard, batch) in self.batches {
            pending.push((shard, router.submit(shard, batch).await?));
        }
        Ok(PendingReplies { pending })
    }
}

/// The answers of submitted [`ShardBatches`], still to come.
#[derive(Debug)]
pub struct PendingReplies {
    pending: Vec<(ShardId, oneshot::Receiver<Replies>)>,
}

impl PendingReplies {
    /// Every shard's replies; `ShardGone` if one did not answer.
    pub async fn wait(self) -> Result<ShardReplies, ShardGone> {
        let mut replies = Vec::with_capacity(self.pending.len());
        for (shard, answer) in self.pending {
            replies.push((shard, answer.await.map_err(|_| ShardGone(shard))?));
        }
        Ok(ShardReplies { replies })
    }

    /// Every shard's replies; a shard that did not answer has empty replies,
    /// so its slots read `None`.
    pub async fn wait_all(self) -> ShardReplies {
        let mut replies = Vec::with_capacity(self.pending.len());
        for (shard, answer) in self.pending {
            replies.push((shard, answer.await.unwrap_or_default()));
        }
        ShardReplies { replies }
    }
}

/// The replies of several shards to one connection's batches.
#[derive(Debug, Default)]
pub struct ShardReplies {
    replies: Vec<(ShardId, Replies)>,
}

impl ShardReplies {
    /// `shard`'s replies (empty if it was sent nothing or did not answer).
    pub fn of(&self, shard: ShardId) -> &Replies {
        static NONE: Replies = Replies::EMPTY;
        self.replies
            .iter()
            .find(|(s, _)| *s == shard)
            .map_or(&NONE, |(_, r)| r)
    }
}

/// Where the parts of a push spread over shards are answered.
#[derive(Debug, Default)]
pub struct PushParts {
    /// A push done inline on this shard was refused.
    pub local_refused: bool,
    /// One slot per shard the push went to as an op (this shard's too when
    /// inline pushes went to disk: its slot is their acknowledgement).
    pub parts: Vec<(ShardId, Slot<reply::Pushed>)>,
}

impl PushParts {
    /// Whether every part was pushed (a part without a reply was not).
    pub fn all_pushed(&self, replies: &ShardReplies) -> bool {
        !self.local_refused
            && self
                .parts
                .iter()
                .all(|&(shard, slot)| replies.of(shard).pushed(slot) == Some(Ok(())))
    }
}

/// Pushes `value` to every channel of a Push or PushMulti: the channels this
/// shard owns at once (when `inline`; otherwise as an op for this shard, like
/// the others), the others grouped into one push op per owner shard in
/// `batches`. When local pushes went to disk, the batch for this shard gets
/// an await of their write, whose answer is their acknowledgement.
pub fn push_to_owners<'c>(
    router: &Router,
    channels: impl IntoIterator<Item = &'c str>,
    value: &[u8],
    inline: bool,
    batches: &mut ShardBatches,
) -> PushParts {
    let mut result = PushParts::default();
    let mut local = Stored::Memory;
    let mut remote: Vec<(ShardId, Vec<String>)> = Vec::new();
    for channel in channels {
        let owner = router.owner(channel.as_bytes());
        if inline && router.is_local(owner) {
            match router.local().borrow_mut().push(channel, value) {
                Ok(stored) => local = local.max(stored),
                Err(_) => result.local_refused = true,
            }
        } else {
            match remote.iter_mut().find(|(shard, _)| *shard == owner) {
                Some((_, list)) => list.push(channel.to_owned()),
                None => remote.push((owner, vec![channel.to_owned()])),
            }
        }
    }
    for (shard, channels) in remote {
        let slot = batches.for_shard(shard).push(channels, value.to_vec());
        result.parts.push((shard, slot));
    }
    if let Stored::Disk(ticket) = local {
        let me = router.me();
        let slot = batches.for_shard(me).await_durable(ticket);
        result.parts.push((me, slot));
    }
    result
}

/// The envelope between shards: one variant per call, each with a reply
/// channel of its own result type.
#[derive(Debug)]
pub enum ShardMsg {
    /// Data operations in connection order ([`run_batch`]).
    Batch {
        ops: OpBatch,
        reply: oneshot::Sender<Replies>,
    },
    /// The next records of a consumer ([`Shard::consume_poll`]).
    Poll {
        consumer: ConsumerId,
        max_bytes: usize,
        reply: oneshot::Sender<PollResult>,
    },
    ConsumeStart {
        channel: String,
        subscriber: String,
        reply: oneshot::Sender<ConsumerId>,
    },
    ConsumeStop {
        consumer: ConsumerId,
        reply: oneshot::Sender<()>,
    },
    /// The shard's storages and counters (admin socket, metrics, stats);
    /// `reset_max_active` starts a new max-active window.
    Snapshot {
        reset_max_active: bool,
        reply: oneshot::Sender<Box<ShardSnapshot>>,
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
    /// message.
    pub async fn run(&self, shard: ShardId, batch: OpBatch) -> Result<Replies, ShardGone> {
        if self.is_local(shard) {
            bump(&self.shard.borrow().probes.ops_local, batch.len() as u64);
            return Ok(run_batch(&self.shard, batch).await);
        }
        self.submit(shard, batch)
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
        batch: OpBatch,
    ) -> Result<oneshot::Receiver<Replies>, ShardGone> {
        let (reply, answer) = oneshot::channel();
        if self.is_local(shard) {
            bump(&self.shard.borrow().probes.ops_local, batch.len() as u64);
            run_and_reply(self.shard.clone(), batch, reply).await;
            return Ok(answer);
        }
        bump(&self.shard.borrow().probes.ops_remote, batch.len() as u64);
        self.send(shard, ShardMsg::Batch { ops: batch, reply })
            .await?;
        Ok(answer)
    }

    /// Subscribes and registers a consumer on `shard` (see
    /// [`Shard::consume_start`]).
    pub async fn consume_start(
        &self,
        shard: ShardId,
        channel: &str,
        subscriber: &str,
    ) -> Result<ConsumerId, ShardGone> {
        if self.is_local(shard) {
            return Ok(self.shard.borrow_mut().consume_start(channel, subscriber));
        }
        let (reply, answer) = oneshot::channel();
        let msg = ShardMsg::ConsumeStart {
            channel: channel.to_owned(),
            subscriber: subscriber.to_owned(),
            reply,
        };
        self.send(shard, msg).await?;
        answer.await.map_err(|_| ShardGone(shard))
    }

    /// Unregisters a consumer on `shard`; returns once it is done there, so
    /// that a poll sent before it has been answered or dropped.
    pub async fn consume_stop(
        &self,
        shard: ShardId,
        consumer: ConsumerId,
    ) -> Result<(), ShardGone> {
        if self.is_local(shard) {
            self.shard.borrow_mut().consume_stop(consumer);
            return Ok(());
        }
        let (reply, answer) = oneshot::channel();
        self.send(shard, ShardMsg::ConsumeStop { consumer, reply })
            .await?;
        answer.await.map_err(|_| ShardGone(shard))
    }

    /// `shard`'s snapshot (see [`Shard::snapshot`]).
    pub async fn snapshot(
        &self,
        shard: ShardId,
        reset_max_active: bool,
    ) -> Result<ShardSnapshot, ShardGone> {
        if self.is_local(shard) {
            return Ok(self.shard.borrow().snapshot(reset_max_active));
        }
        let (reply, answer) = oneshot::channel();
        let msg = ShardMsg::Snapshot {
            reset_max_active,
            reply,
        };
        self.send(shard, msg).await?;
        answer.await.map(|s| *s).map_err(|_| ShardGone(shard))
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
            let msg = ShardMsg::Poll {
                consumer,
                max_bytes,
                reply,
            };
            self.send(shard, msg).await?;
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
        // A closed reply means the asking connection went away; what was
        // popped for it is lost with it, as records in flight on a broken
        // socket are.
        match msg {
            ShardMsg::Batch { ops, reply } => run_and_reply(shard.clone(), ops, reply).await,
            ShardMsg::Poll {
                consumer,
                max_bytes,
                reply,
            } => shard.borrow_mut().consume_poll(consumer, max_bytes, reply),
            ShardMsg::ConsumeStart {
                channel,
                subscriber,
                reply,
            } => {
                let id = shard.borrow_mut().consume_start(&channel, &subscriber);
                let _ = reply.send(id);
            }
            ShardMsg::ConsumeStop { consumer, reply } => {
                shard.borrow_mut().consume_stop(consumer);
                let _ = reply.send(());
            }
            ShardMsg::Snapshot {
                reset_max_active,
                reply,
            } => {
                let snapshot = shard.borrow().snapshot(reset_max_active);
                let _ = reply.send(Box::new(snapshot));
            }
        }
        handled = handled.wrapping_add(1);
        if handled.is_multiple_of(256) {
            glommio::yield_if_needed().await;
        }
    }
}

/// Runs `batch` on this shard and sends the replies: at once when nothing
/// has to wait (the common case), otherwise from a task of its own so that
/// the caller goes on.
async fn run_and_reply(shard: Rc<RefCell<Shard>>, batch: OpBatch, reply: oneshot::Sender<Replies>) {
    let mut run = Box::pin(async move { run_batch(&shard, batch).await });
    match futures_lite::future::poll_once(&mut run).await {
        Some(replies) => {
            let _ = reply.send(replies);
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

    /// Owners computed outside this code, from the FNV-1a 64 definition
    /// (offset basis 0xcbf29ce484222325, prime 0x100000001b3) modulo the
    /// shard count.
    const GOLDEN: &[(&str, usize, ShardId)] = &[
        ("test_channel", 2, 1),
        ("test_channel", 3, 1),
        ("test_channel", 8, 1),
        ("ch1", 2, 1),
        ("ch1", 3, 1),
        ("ch1", 8, 5),
        ("ch2", 2, 0),
        ("ch2", 3, 1),
        ("ch2", 8, 4),
        ("greetings", 3, 0),
        ("greetings", 8, 7),
        ("a", 3, 1),
        ("", 3, 2),
        ("channel0", 8, 4),
        ("orders-eu_1", 8, 5),
    ];

    #[test]
    fn one_shard_owns_everything() {
        assert_eq!(shard_for(b"anything", 1), 0);
        assert_eq!(shard_for(b"", 0), 0);
    }

    #[test]
    fn ownership_is_pinned() {
        // Golden values: a change here moves channels between shards on
        // upgrade, and strands their dumps and overflow on the wrong shard.
        for (name, nr_shards, owner) in GOLDEN {
            assert_eq!(
                shard_for(name.as_bytes(), *nr_shards),
                *owner,
                "{name} of {nr_shards}"
            );
        }
    }

    #[test]
    fn ownership_spreads() {
        let mut counts = [0usize; 4];
        for i in 0..4000 {
            counts[shard_for(format!("channel{i}").as_bytes(), 4)] += 1;
        }
        for c in counts {
            assert!((800..1200).contains(&c), "{counts:?}");
        }
    }
}
