//! Push and Pop requests for other shards, collected over everything the reader
//! had buffered: one mesh message per owner shard, one task that awaits the
//! answers and writes each request's reply. Replies of different requests may
//! come in any order (the protocol is multiplexed).

use std::rc::Rc;

use dmq_proto::neo::{PopReply, PushStatus, RequestId};

use crate::neo::ConnShared;
use crate::route::{Op, OpResult, ShardGone, ShardId};
use crate::shard::PopOutcome;

enum Pending {
    Push {
        id: RequestId,
        parts: Vec<(ShardId, usize)>,
        local_failed: bool,
    },
    Pop {
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
    pub fn await_push(&mut self, id: RequestId, parts: Vec<(ShardId, usize)>, local_failed: bool) {
        self.pending.push(Pending::Push {
            id,
            parts,
            local_failed,
        });
    }

    /// Request `id` is answered with the outcome of the pop at `(shard, index)`.
    pub fn await_pop(&mut self, id: RequestId, shard: ShardId, index: usize) {
        self.pending.push(Pending::Pop { id, shard, index });
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
                        shared.active.remove(id);
                    }
                    Pending::Pop { id, shard, index } => {
                        let outcome = match result(shard, index) {
                            Some(OpResult::Pop(outcome)) => Some(outcome),
                            _ => None,
                        };
                        shared.outbox.push(|out| encode_pop(out, id, outcome));
                        shared.active.remove(id);
                    }
                }
            }
        })
        .detach();
        Ok(())
    }
}

/// The neo Pop reply for an outcome (`None`: the owner did not answer).
pub fn encode_pop(out: &mut Vec<u8>, id: RequestId, outcome: Option<&PopOutcome>) {
    let reply = match outcome {
        // A zero-length record counts as Empty (spec 3.7); it is consumed.
        Some(PopOutcome::Value(value)) if !value.is_empty() => PopReply::Popped(value),
        Some(PopOutcome::Value(_) | PopOutcome::Empty | PopOutcome::NoChannel) => PopReply::Empty,
        Some(PopOutcome::Subscribed) => PopReply::Subscribed,
        None => PopReply::Error,
    };
    reply.encode(out, id);
}
