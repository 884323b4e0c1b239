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
use crate::route::{queue_op, Op, OpResult, Router, ShardGone, ShardId};
use crate::shard::{PopOutcome, PushError};

/// Requests per batch: bounds the held replies and the size of one mesh message.
pub const MAX_BATCH_REQUESTS: usize = 128;
/// Pops per batch: a Pop reply can be a whole 10 MiB record.
pub const MAX_BATCH_POPS: usize = 16;

/// How to turn a remote result into legacy reply bytes.
#[derive(Debug, Clone, Copy)]
pub enum ReplyKind {
    /// 200, or 500 when the disk overflow could not take the record.
    Push,
    /// 200 + value, 200 + empty array, or 500 (missing or subscribed channel).
    Pop,
    /// This status whatever the result (the op had to happen, the answer is fixed).
    Fixed(Status),
}

/// Which request a held reply answers (for its metrics).
type Meta = RequestKind;

enum Held {
    /// Reply bytes already known, at `held[start..end]`.
    Bytes {
        start: usize,
        end: usize,
        meta: Meta,
    },
    Remote {
        meta: Meta,
        shard: ShardId,
        index: usize,
        kind: ReplyKind,
    },
    /// A PushMulti over several shards: 200 unless any part was refused.
    AllPushed {
        meta: Meta,
        parts: Vec<(ShardId, usize)>,
        local_refused: bool,
    },
}

/// One run of pipelined requests and their replies.
pub struct Batch<'r> {
    router: &'r Router,
    /// Replies ready to write, in order.
    out: Vec<u8>,
    /// Replies behind the first remote one, in order.
    queue: Vec<Held>,
    held: Vec<u8>,
    /// Ops per remote shard, in connection order.
    ops: Vec<(ShardId, Vec<Op>)>,
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
            ops: Vec::new(),
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

    pub fn status(&mut self, status: Status) {
        self.reply(|out| encode_status(out, status));
    }

    /// Queues `op` for `shard` (another one, or this one for ops that wait
    /// for the disk); its reply is made from its result.
    pub fn remote(&mut self, shard: ShardId, op: Op, kind: ReplyKind) {
        let index = self.push_op(shard, op);
        self.queue.push(Held::Remote {
            meta: self.current,
            shard,
            index,
            kind,
        });
    }

    /// Queues `op` for `shard` and returns its position, for [`Batch::all_pushed`].
    pub fn push_op(&mut self, shard: ShardId, op: Op) -> usize {
        queue_op(&mut self.ops, shard, op)
    }

    /// The reply of a push spread over shards: 500 if the local part or any
    /// other part was refused, otherwise 200.
    pub fn all_pushed(&mut self, parts: Vec<(ShardId, usize)>, local_refused: bool) {
        if parts.is_empty() {
            self.status(if local_refused {
                Status::Error
            } else {
                Status::Ok
            });
        } else {
            self.queue.push(Held::AllPushed {
                meta: self.current,
                parts,
                local_refused,
            });
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
        let mut pending = Vec::with_capacity(self.ops.len());
        for (shard, ops) in std::mem::take(&mut self.ops) {
            pending.push((shard, self.router.submit(shard, ops).await?));
        }
        let mut results: Vec<(ShardId, Vec<OpResult>)> = Vec::with_capacity(pending.len());
        for (shard, answer) in pending {
            results.push((shard, answer.await.map_err(|_| ShardGone(shard))?));
        }
        let result = |shard: ShardId, index: usize| {
            results
                .iter()
                .find(|(s, _)| *s == shard)
                .and_then(|(_, r)| r.get(index))
        };
        for held in std::mem::take(&mut self.queue) {
            let at = self.out.len();
            let meta = match held {
                Held::Bytes { start, end, meta } => {
                    self.out.extend_from_slice(&self.held[start..end]);
                    meta
                }
                Held::Remote {
                    meta,
                    shard,
                    index,
                    kind,
                } => {
                    let r = result(shard, index).ok_or(ShardGone(shard))?;
                    encode_result(&mut self.out, kind, r);
                    meta
                }
                Held::AllPushed {
                    meta,
                    parts,
                    local_refused,
                } => {
                    let refused = local_refused
                        || parts.iter().any(|&(shard, index)| {
                            matches!(result(shard, index), Some(OpResult::Push(Err(_))))
                        });
                    encode_status(
                        &mut self.out,
                        if refused { Status::Error } else { Status::Ok },
                    );
                    meta
                }
            };
            record(self.router, meta, &self.out[at..]);
        }
        Ok(())
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

/// The legacy reply for a remote result.
fn encode_result(out: &mut Vec<u8>, kind: ReplyKind, result: &OpResult) {
    match (kind, result) {
        (ReplyKind::Fixed(status), _) => encode_status(out, status),
        (ReplyKind::Push, OpResult::Push(Ok(()))) => encode_status(out, Status::Ok),
        (ReplyKind::Push, OpResult::Push(Err(PushError::Disk(_)))) => {
            encode_status(out, Status::Error)
        }
        (ReplyKind::Pop, OpResult::Pop(outcome)) => encode_pop(out, outcome),
        // An op answered with a result of another kind is a bug of this process;
        // the client gets the generic error and the mismatch is logged.
        (kind, other) => {
            tracing::error!(?kind, ?other, "internal error: mismatched shard result");
            encode_status(out, Status::Error)
        }
    }
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
