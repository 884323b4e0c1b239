//! Push and Pop requests for other shards, collected over everything the reader
//! had buffered: one mesh message per owner shard, one task that awaits the
//! answers and writes each request's reply. Replies of different requests may
//! come in any order (the protocol is multiplexed).

use std::rc::Rc;
use std::time::Instant;

use dmq_proto::neo::{PopReply, PushStatus, RequestId};

use crate::metrics::probes::{Protocol, RequestKind};
use crate::neo::ConnShared;
use crate::route::{Op, OpResult, ShardGone, ShardId};
use crate::shard::PopOutcome;

enum Pending {
    Push {
        start: Instant,
        id: RequestId,
        parts: Vec<(ShardId, usize)>,
        local_failed: bool,
    },
    Pop {
        start: Instant,
        id: RequestId,
        shard: ShardId,
        index: usize,
    },
}

/// Remote work of one read, and the replies waiting for it.
#[derive(Default)]
pub struct NeoBatch {
    ops: Vec<(ShardId, Vec<Op>)>,
    pending: Vec<Pending>,
}

impl NeoBatch {
    /// Queues `op` for `shard` and returns its position in that shard's batch.
    pub fn push_op(&mut self, shard: ShardId, op: Op) -> usize {
        let slot = match self.ops.iter().position(|(s, _)| *s == shard) {
            Some(slot) => slot,
            None => {
                self.ops.push((shard, Vec::new()));
                self.ops.len() - 1
            }
        };
        let ops = &mut self.ops[slot].1;
        ops.push(op);
        ops.len() - 1
    }

    /// Request `id` is answered Pushed once every part succeeded.
    pub fn await_push(
        &mut self,
        start: Instant,
        id: RequestId,
        parts: Vec<(ShardId, usize)>,
        local_failed: bool,
    ) {
        self.pending.push(Pending::Push {
            start,
            id,
            parts,
            local_failed,
        });
    }

    /// Request `id` is answered with the outcome of the pop at `(shard, index)`.
    pub fn await_pop(&mut self, start: Instant, id: RequestId, shard: ShardId, index: usize) {
        self.pending.push(Pending::Pop {
            start,
            id,
            shard,
            index,
        });
    }

    /// Sends the ops (waiting for room in the mesh: backpressure on the reader),
    /// then leaves the answers to a task of their own.
    pub async fn submit(self, shared: &Rc<ConnShared>) -> Result<(), ShardGone> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let router = &shared.ctx.router;
        let mut answers = Vec::with_capacity(self.ops.len());
        for (shard, ops) in self.ops {
            answers.push((shard, router.submit(shard, ops).await?));
        }
        let shared = shared.clone();
        let pending = self.pending;
        glommio::spawn_local(async move {
            let mut results: Vec<(ShardId, Vec<OpResult>)> = Vec::with_capacity(answers.len());
            for (shard, answer) in answers {
                // A shard that went away answers nothing: its requests get Error.
                results.push((shard, answer.await.unwrap_or_default()));
            }
            let result = |shard: ShardId, index: usize| {
                results
                    .iter()
                    .find(|(s, _)| *s == shard)
                    .and_then(|(_, r)| r.get(index))
            };
            for p in pending {
                match p {
                    Pending::Push {
                        start,
                        id,
                        parts,
                        local_failed,
                    } => {
                        let ok = !local_failed
                            && parts.iter().all(|&(shard, index)| {
                                matches!(result(shard, index), Some(OpResult::Push(Ok(()))))
                            });
                        let status = if ok {
                            PushStatus::Pushed
                        } else {
                            PushStatus::Error
                        };
                        shared.outbox.push(|out| status.encode(out, id));
                        record_push(&shared, status, start);
                        shared.active.remove(id);
                    }
                    Pending::Pop {
                        start,
                        id,
                        shard,
                        index,
                    } => {
                        let outcome = match result(shard, index) {
                            Some(OpResult::Pop(outcome)) => Some(outcome),
                            _ => None,
                        };
                        let label = encode_pop(&shared, id, outcome);
                        record(&shared, RequestKind::Pop, label, start);
                        shared.active.remove(id);
                    }
                }
            }
        })
        .detach();
        Ok(())
    }
}

/// Sends the neo Pop reply for an outcome (`None`: the owner did not answer)
/// and returns its `status` label.
pub fn encode_pop(
    shared: &ConnShared,
    id: RequestId,
    outcome: Option<&PopOutcome>,
) -> &'static str {
    let (reply, label) = match outcome {
        // A zero-length record counts as Empty (spec 3.7); it is consumed.
        Some(PopOutcome::Value(value)) if !value.is_empty() => (PopReply::Popped(value), "popped"),
        Some(PopOutcome::Value(_) | PopOutcome::Empty | PopOutcome::NoChannel) => {
            (PopReply::Empty, "empty")
        }
        Some(PopOutcome::Subscribed) => (PopReply::Subscribed, "subscribed"),
        None => (PopReply::Error, "error"),
    };
    shared.outbox.push(|out| reply.encode(out, id));
    label
}

/// Counts a finished neo request.
pub fn record(shared: &ConnShared, kind: RequestKind, status: &'static str, start: Instant) {
    shared
        .ctx
        .probes()
        .request_done(Protocol::Neo, kind, status, Some(start.elapsed()));
}

/// Counts a finished neo Push.
pub fn record_push(shared: &ConnShared, status: PushStatus, start: Instant) {
    let label = match status {
        PushStatus::Pushed => "pushed",
        PushStatus::Error => "error",
    };
    record(shared, RequestKind::Push, label, start);
}
