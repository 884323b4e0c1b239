//! Replies to a run of pipelined legacy requests.
//!
//! Requests for channels this shard owns are done at once and their replies go
//! straight to the output; requests for other shards are collected into one
//! message per shard. Replies keep request order: once one reply waits for another
//! shard, every later reply waits behind it. Each shard still sees its requests in
//! connection order, so per-channel order is exactly that of sequential execution.
//!
//! Lives inside one connection task on the connection's shard.

use dmq_proto::legacy::{encode_array, encode_status, Status};

use std::time::Instant;

use crate::metrics::probes::{Outcome, Protocol, RequestKind};
use crate::route::{PushParts, Router, ShardBatches, ShardGone, ShardId, ShardReplies};
use crate::shard::{reply, OpBatch, PopOutcome, PushError, Slot};

/// Requests per batch: bounds the held replies and the size of one mesh message.
pub const MAX_BATCH_REQUESTS: usize = 128;
/// Pops per batch: a Pop reply can be a whole 10 MiB record.
pub const MAX_BATCH_POPS: usize = 16;

/// Which request a held reply answers (for its metrics).
type Meta = RequestKind;

/// A reply behind the first one that waits for a shard, in request order.
enum Held {
    /// Reply bytes already known, at `held[start..end]`.
    Bytes {
        start: usize,
        end: usize,
        meta: Meta,
    },
    /// 200, or 500 when the disk overflow could not take the record.
    Pushed {
        meta: Meta,
        shard: ShardId,
        slot: Slot<reply::Pushed>,
    },
    /// 200 + value, 200 + empty array, or 500 (missing or subscribed channel).
    Popped {
        meta: Meta,
        shard: ShardId,
        slot: Slot<reply::Popped>,
    },
    /// This status once the batch's ops are done (the op had to happen, the
    /// answer is fixed).
    Fixed { meta: Meta, status: Status },
    /// A PushMulti over several shards: 200 unless any part was refused.
    AllPushed { meta: Meta, parts: PushParts },
}

/// One run of pipelined requests and their replies.
pub struct Batch<'r> {
    router: &'r Router,
    /// Replies ready to write, in order.
    out: Vec<u8>,
    /// Replies behind the first remote one, in order.
    queue: Vec<Held>,
    held: Vec<u8>,
    /// Ops per shard, in connection order.
    ops: ShardBatches,
    requests: usize,
    pops: usize,
    /// The request being handled.
    current: Meta,
    /// When the batch's requests were parsed: every request of a batch is
    /// timed from there to the batch's replies (two clock reads per batch).
    started: Instant,
    /// Requests per kind in this batch, for their timing.
    timed: [u16; RequestKind::COUNT],
    /// See [`Batch::defer_local`].
    deferred: bool,
}

impl<'r> Batch<'r> {
    /// Starts a batch that appends its replies to `out` (kept to reuse its memory).
    pub fn new(router: &'r Router, out: Vec<u8>) -> Batch<'r> {
        Batch {
            router,
            out,
            queue: Vec::new(),
            held: Vec::new(),
            ops: ShardBatches::default(),
            requests: 0,
            pops: 0,
            current: RequestKind::Push,
            started: Instant::now(),
            timed: [0; RequestKind::COUNT],
            deferred: false,
        }
    }

    pub fn router(&self) -> &'r Router {
        self.router
    }

    /// No more requests should join this batch.
    pub fn is_full(&self) -> bool {
        self.requests >= MAX_BATCH_REQUESTS || self.pops >= MAX_BATCH_POPS
    }

    /// A request of this batch waits on this shard (a Pop for records on
    /// disk): later requests for this shard's channels must not overtake
    /// it, so from now on they go behind it, as ops for this shard.
    pub fn defer_local(&mut self) {
        self.deferred = true;
    }

    /// Whether a request for `owner`'s channels is done inline now (this
    /// shard's, and nothing of this batch waits on it).
    pub fn inline(&self, owner: ShardId) -> bool {
        self.router.is_local(owner) && !self.deferred
    }

    /// Starts a request (called once per request, before its reply).
    pub fn begin(&mut self, kind: RequestKind) {
        self.requests += 1;
        self.pops += usize::from(kind == RequestKind::Pop);
        self.current = kind;
        self.timed[kind as usize] += 1;
        self.router
            .local()
            .borrow()
            .probes
            .request_started(Protocol::Legacy, kind);
    }

    /// A reply known now: written at once, or held behind a remote one.
    pub fn reply(&mut self, encode: impl FnOnce(&mut Vec<u8>)) {
        if self.queue.is_empty() {
            let at = self.out.len();
            encode(&mut self.out);
            record(self.router, self.current, &self.out[at..]);
        } else {
            let start = self.held.len();
            encode(&mut self.held);
            self.queue.push(Held::Bytes {
                start,
                end: self.held.len(),
                meta: self.current,
            });
        }
    }

    /// Starts a request for one channel: `None` (answered 409) for an
    /// invalid name, otherwise the name and its owner shard.
    pub fn begin_channel<'c>(
        &mut self,
        kind: RequestKind,
        channel: &'c [u8],
    ) -> Option<(&'c str, ShardId)> {
        self.begin(kind);
        let Some(name) = crate::request::channel_name(channel) else {
            self.status(Status::BadChannelName);
            return None;
        };
        Some((name, self.router.owner(channel)))
    }

    pub fn status(&mut self, status: Status) {
        self.reply(|out| encode_status(out, status));
    }

    /// The ops for `shard` (another one, or this one for ops that wait for
    /// the disk); their replies are held with [`Batch::reply_pushed`] and
    /// the like.
    pub fn ops(&mut self, shard: ShardId) -> &mut OpBatch {
        self.ops.for_shard(shard)
    }

    /// Every shard's ops so far, for a push spread over shards
    /// ([`crate::route::push_to_owners`]).
    pub fn all_ops(&mut self) -> &mut ShardBatches {
        &mut self.ops
    }

    /// The reply of a push answered by `shard`'s `slot`.
    pub fn reply_pushed(&mut self, shard: ShardId, slot: Slot<reply::Pushed>) {
        let meta = self.current;
        self.queue.push(Held::Pushed { meta, shard, slot });
    }

    /// The reply of a pop answered by `shard`'s `slot`.
    pub fn reply_popped(&mut self, shard: ShardId, slot: Slot<reply::Popped>) {
        let meta = self.current;
        self.queue.push(Held::Popped { meta, shard, slot });
    }

    /// A fixed reply, sent once the ops queued so far are done.
    pub fn reply_after_ops(&mut self, status: Status) {
        let meta = self.current;
        self.queue.push(Held::Fixed { meta, status });
    }

    /// The reply of a push spread over shards: 500 if the local part or any
    /// other part was refused, otherwise 200.
    pub fn all_pushed(&mut self, parts: PushParts) {
        if parts.parts.is_empty() {
            self.status(if parts.local_refused {
                Status::Error
            } else {
                Status::Ok
            });
        } else {
            let meta = self.current;
            self.queue.push(Held::AllPushed { meta, parts });
        }
    }

    /// Sends the remote ops (one message per shard, all sent before any answer is
    /// awaited), then writes every held reply in order. Returns the output.
    pub async fn finish(mut self) -> Result<Vec<u8>, ShardGone> {
        if !self.queue.is_empty() {
            self.resolve_held().await?;
        }
        if self.requests > 0 {
            let took = self.started.elapsed();
            let shard = self.router.local().borrow();
            for kind in RequestKind::ALL {
                let n = self.timed[kind as usize];
                if n > 0 {
                    shard
                        .probes
                        .time(Protocol::Legacy, kind, took, u64::from(n));
                }
            }
        }
        Ok(self.out)
    }

    /// Sends the remote ops and writes the held replies in order.
    async fn resolve_held(&mut self) -> Result<(), ShardGone> {
        let ops = std::mem::take(&mut self.ops);
        let replies = ops.submit(self.router).await?.wait().await?;
        for held in std::mem::take(&mut self.queue) {
            let at = self.out.len();
            let meta = self.write_held(held, &replies)?;
            record(self.router, meta, &self.out[at..]);
        }
        Ok(())
    }

    /// Writes one held reply from the shards' replies.
    fn write_held(&mut self, held: Held, replies: &ShardReplies) -> Result<Meta, ShardGone> {
        let out = &mut self.out;
        Ok(match held {
            Held::Bytes { start, end, meta } => {
                out.extend_from_slice(&self.held[start..end]);
                meta
            }
            Held::Pushed { meta, shard, slot } => {
                let pushed = replies.of(shard).pushed(slot).ok_or(ShardGone(shard))?;
                encode_pushed(out, pushed);
                meta
            }
            Held::Popped { meta, shard, slot } => {
                let popped = replies.of(shard).popped(slot).ok_or(ShardGone(shard))?;
                encode_pop(out, popped);
                meta
            }
            Held::Fixed { meta, status } => {
                encode_status(out, status);
                meta
            }
            Held::AllPushed { meta, parts } => {
                let ok = parts.all_pushed(replies);
                encode_status(out, if ok { Status::Ok } else { Status::Error });
                meta
            }
        })
    }
}

/// Counts a finished request by the status at the start of its reply.
fn record(router: &Router, kind: Meta, reply: &[u8]) {
    let outcome = reply.first_chunk::<4>().map_or(Outcome::OtherCode, |code| {
        Outcome::legacy(i32::from_le_bytes(*code))
    });
    let shard = router.local().borrow();
    shard.probes.count(Protocol::Legacy, kind, outcome);
    shard.probes.request_ended(Protocol::Legacy, kind);
}

/// The legacy Push reply: 200, or 500 when the overflow could not take it.
fn encode_pushed(out: &mut Vec<u8>, pushed: Result<(), PushError>) {
    let status = match pushed {
        Ok(()) => Status::Ok,
        Err(PushError::Disk(_)) => Status::Error,
    };
    encode_status(out, status);
}

/// The legacy Pop reply for an outcome.
pub fn encode_pop(out: &mut Vec<u8>, outcome: &PopOutcome) {
    match outcome {
        PopOutcome::Value(value) => {
            encode_status(out, Status::Ok);
            encode_array(out, value);
        }
        PopOutcome::Empty => {
            encode_status(out, Status::Ok);
            encode_array(out, &[]);
        }
        PopOutcome::NoChannel | PopOutcome::Subscribed => encode_status(out, Status::Error),
    }
}
