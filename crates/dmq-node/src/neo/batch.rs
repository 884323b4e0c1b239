//! Push and Pop requests for other shards, collected over everything the reader
//! had buffered: one mesh message per owner shard, one task that awaits the
//! answers and writes each request's reply. Replies of different requests may
//! come in any order (the protocol is multiplexed).

use std::rc::Rc;
use std::time::Instant;

use dmq_proto::neo::{PopReply, PushStatus, RequestId};

use crate::metrics::probes::{Outcome, Protocol, RequestKind};
use crate::neo::shared::ConnShared;
use crate::route::{PushParts, ShardBatches, ShardGone, ShardId};
use crate::shard::{reply, PopOutcome, PopRefused, Slot};

enum Pending {
    Push {
        start: Instant,
        id: RequestId,
        parts: PushParts,
    },
    Pop {
        start: Instant,
        id: RequestId,
        shard: ShardId,
        slot: Slot<reply::Popped>,
    },
}

/// Remote work of one read, and the replies waiting for it.
pub struct NeoBatch {
    ops: ShardBatches,
    pending: Vec<Pending>,
    /// When the read's messages were parsed; requests answered inline are
    /// timed from there to the end of the read (two clock reads per read).
    pub started: Instant,
    timed: [u16; RequestKind::COUNT],
}

impl Default for NeoBatch {
    fn default() -> Self {
        NeoBatch {
            ops: ShardBatches::default(),
            pending: Vec::new(),
            started: Instant::now(),
            timed: [0; RequestKind::COUNT],
        }
    }
}

impl NeoBatch {
    /// Counts a request answered inline; its time is taken at [`NeoBatch::submit`].
    pub fn done_local(&mut self, shared: &ConnShared, kind: RequestKind, outcome: Outcome) {
        let probes = shared.ctx.probes();
        probes.count(Protocol::Neo, kind, outcome);
        probes.request_ended(Protocol::Neo, kind);
        self.timed[kind as usize] += 1;
    }

    /// The ops for other shards (and this one's waiting on the disk).
    pub fn ops(&mut self) -> &mut ShardBatches {
        &mut self.ops
    }

    /// Request `id` is answered Pushed once every part succeeded.
    pub fn await_push(&mut self, start: Instant, id: RequestId, parts: PushParts) {
        self.pending.push(Pending::Push { start, id, parts });
    }

    /// Request `id` is answered with the outcome of the pop at `shard`'s `slot`.
    pub fn await_pop(
        &mut self,
        start: Instant,
        id: RequestId,
        shard: ShardId,
        slot: Slot<reply::Popped>,
    ) {
        self.pending.push(Pending::Pop {
            start,
            id,
            shard,
            slot,
        });
    }

    /// Sends the ops (waiting for room in the mesh: backpressure on the reader),
    /// then leaves the answers to a task of their own.
    pub async fn submit(self, shared: &Rc<ConnShared>) -> Result<(), ShardGone> {
        if self.timed.iter().any(|&n| n > 0) {
            let took = self.started.elapsed();
            let probes = shared.ctx.probes();
            for kind in RequestKind::ALL {
                let n = self.timed[kind as usize];
                if n > 0 {
                    probes.time(Protocol::Neo, kind, took, u64::from(n));
                }
            }
        }
        if self.pending.is_empty() {
            return Ok(());
        }
        let answers = self.ops.submit(&shared.ctx.router).await?;
        let shared = shared.clone();
        let pending = self.pending;
        glommio::spawn_local(async move {
            // A shard that went away answers nothing: its requests get Error.
            let replies = answers.wait_all().await;
            for p in pending {
                match p {
                    Pending::Push { start, id, parts } => {
                        let status = if parts.all_pushed(&replies) {
                            PushStatus::Pushed
                        } else {
                            PushStatus::Error
                        };
                        shared.outbox.push(|out| status.encode(out, id));
                        record(&shared, RequestKind::Push, push_outcome(status), start);
                        shared.active.remove(id);
                    }
                    Pending::Pop {
                        start,
                        id,
                        shard,
                        slot,
                    } => {
                        let outcome = replies.of(shard).popped(slot);
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

/// Sends the neo Pop reply for a remote outcome (`None`: the owner did not
/// answer) and returns its outcome.
pub fn encode_pop(shared: &ConnShared, id: RequestId, outcome: Option<&PopOutcome>) -> Outcome {
    let popped = outcome.map(|outcome| match outcome {
        PopOutcome::Value(value) => Ok(Some(value.as_slice())),
        PopOutcome::Empty => Ok(None),
        PopOutcome::NoChannel => Err(PopRefused::NoChannel),
        PopOutcome::Subscribed => Err(PopRefused::Subscribed),
    });
    encode_popped(shared, id, popped)
}

/// Sends the neo Pop reply for a pop (`None`: the owner did not answer), the
/// value straight from where it is, and returns its outcome.
pub fn encode_popped(
    shared: &ConnShared,
    id: RequestId,
    popped: Option<Result<Option<&[u8]>, PopRefused>>,
) -> Outcome {
    let (reply, outcome) = match popped {
        // A zero-length record counts as Empty (spec 3.7); it is consumed.
        Some(Ok(Some(value))) if !value.is_empty() => (PopReply::Popped(value), Outcome::Popped),
        Some(Ok(_) | Err(PopRefused::NoChannel)) => (PopReply::Empty, Outcome::Empty),
        Some(Err(PopRefused::Subscribed)) => (PopReply::Subscribed, Outcome::Subscribed),
        None => (PopReply::Error, Outcome::Error),
    };
    shared.outbox.push(|out| reply.encode(out, id));
    outcome
}

/// Counts a finished neo request.
pub fn record(shared: &ConnShared, kind: RequestKind, status: Outcome, start: Instant) {
    let probes = shared.ctx.probes();
    probes.request_done(Protocol::Neo, kind, status, Some(start.elapsed()));
    probes.request_ended(Protocol::Neo, kind);
}

/// The outcome of a neo Push status.
pub fn push_outcome(status: PushStatus) -> Outcome {
    match status {
        PushStatus::Pushed => Outcome::Pushed,
        PushStatus::Error => Outcome::Error,
    }
}
