//! The one entry point for work from other shards: [`run_batch`] applies an
//! [`OpBatch`] in order on this shard, waits where a Pop needs records from
//! disk and until the pushes that went to disk are written, and gives the
//! [`Replies`]. Runs on the owner shard, inside the task that received the
//! batch (or the connection's own task when the owner is its shard).

use std::cell::RefCell;

use dmq_storage::disk::DiskError;
use dmq_storage::Stored;
use futures_channel::oneshot;

use super::ops::{Op, OpBatch, PushError, Replies};
use super::overflow::WriteFailed;
use super::state::Shard;

/// A reply that is only final once its records are on disk.
enum Durable {
    Pushed(usize),
    Produced(usize),
    /// A removal of records on disk: nothing to turn into an error.
    Removed,
}

/// What applying one [`Op`] gave.
enum Applied {
    /// Answered (into the replies).
    Done,
    /// Answered, to be acknowledged once `ticket` is on disk.
    Durable(Durable, u64),
    /// A Pop that waits for records to come back from disk: apply the op
    /// again when the receiver fires.
    Wait(Op, oneshot::Receiver<()>),
}

impl Applied {
    fn stored(stored: Stored, durable: Durable) -> Applied {
        match stored {
            Stored::Memory => Applied::Done,
            Stored::Disk(ticket) => Applied::Durable(durable, ticket),
        }
    }
}

impl Shard {
    /// Applies one operation, appending its reply to `replies` (a Pop that
    /// must wait appends nothing and is returned to be applied again).
    fn apply(&mut self, op: Op, replies: &mut Replies) -> Applied {
        match op {
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
                replies.pushed.push(result);
                Applied::stored(stored, Durable::Pushed(replies.pushed.len() - 1))
            }
            Op::PushEncoded { channels, records } => {
                let result = self.push_encoded(&channels, &records);
                replies.produced.push(result.map(|_| ()));
                match result {
                    Ok(stored) => {
                        Applied::stored(stored, Durable::Produced(replies.produced.len() - 1))
                    }
                    Err(_) => Applied::Done,
                }
            }
            Op::Pop { channel, create } => match self.try_pop(&channel, create) {
                Ok(outcome) => {
                    replies.popped.push(outcome);
                    Applied::Done
                }
                Err(ready) => Applied::Wait(Op::Pop { channel, create }, ready),
            },
            Op::AwaitDurable { ticket } => {
                replies.pushed.push(Ok(()));
                Applied::Durable(Durable::Pushed(replies.pushed.len() - 1), ticket)
            }
            Op::Create { channel } => {
                self.create(&channel);
                Applied::Done
            }
            Op::Remove { channel } => match self.remove(&channel) {
                Some(ticket) => Applied::Durable(Durable::Removed, ticket),
                None => Applied::Done,
            },
        }
    }
}

/// Applies `batch` in order on this shard: synchronously as far as possible,
/// waiting where a Pop needs records from disk; then waits until the pushes
/// that went to disk are written, and turns them into errors if a write
/// failed first.
pub async fn run_batch(shard: &RefCell<Shard>, batch: OpBatch) -> Replies {
    let (ops, mut replies) = batch.into_parts();
    let mut durable: Vec<(Durable, u64)> = Vec::new();
    for op in ops {
        let mut op = op;
        loop {
            let applied = shard.borrow_mut().apply(op, &mut replies);
            match applied {
                Applied::Done => {}
                Applied::Durable(slot, ticket) => durable.push((slot, ticket)),
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
    let Some(last) = durable.iter().map(|&(_, t)| t).max() else {
        return replies;
    };
    if wait_durable(shard, last).await.is_err() {
        let written = shard.borrow().overflow.disk.durable_ticket();
        for (slot, ticket) in durable {
            if ticket <= written {
                continue;
            }
            match slot {
                Durable::Pushed(i) => {
                    replies.pushed[i] = Err(PushError::Disk(DiskError::Unavailable));
                }
                Durable::Produced(i) => replies.produced[i] = Err(0),
                Durable::Removed => {}
            }
        }
    }
    replies
}

/// Waits until every push of this shard up to `ticket` is on disk; `Err`
/// if a write failed first (the push must be answered with an error).
pub async fn wait_durable(shard: &RefCell<Shard>, ticket: u64) -> Result<(), WriteFailed> {
    let waiter = shard.borrow_mut().overflow.durable_waiter(ticket);
    match waiter {
        None => Ok(()),
        Some(rx) => rx.await.unwrap_or(Err(WriteFailed)),
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
        let mut batch = OpBatch::default();
        let slot = batch.push(
            vec!["a".into(), "tiny".into(), "b".into(), "a".into()],
            vec![7; 20],
        );
        let (mut ops, mut replies) = batch.into_parts();
        // "tiny" cannot hold the value: it goes to disk, and the op is
        // acknowledged once that is written.
        let applied = shard.apply(ops.remove(0), &mut replies);
        assert!(matches!(applied, Applied::Durable(Durable::Pushed(0), _)));
        assert_eq!(replies.pushed(slot), Some(Ok(())));
        for (channel, expected) in [("a", 2), ("b", 1), ("tiny", 1)] {
            let records = shard.channels().get(channel).map_or(0, |c| c.records());
            assert_eq!(records, expected, "{channel}");
        }
    }
}
