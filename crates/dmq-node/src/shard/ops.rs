//! The typed calls a connection makes on the shard that owns a channel: an
//! [`OpBatch`] of data operations in connection order, answered by one
//! [`Replies`]. Each operation added to a batch gives back a [`Slot`] whose
//! type says which reply it reads, so a push can only be answered by a push
//! result: there is no result enum to match and no mismatch to handle.
//!
//! Built on the connection's shard, applied on the owner shard (inline when
//! that is the same shard), read back on the connection's shard.

use std::marker::PhantomData;

use dmq_storage::disk::DiskError;

/// Why a push was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// The record did not fit in memory and the disk overflow could not take
    /// it (limit reached, disk full, I/O error). With subscribers, storages
    /// that could take it have it.
    Disk(DiskError),
}

/// Result of a pop on an unsubscribed channel.
#[derive(Debug, PartialEq, Eq)]
pub enum PopOutcome {
    Value(Vec<u8>),
    Empty,
    NoChannel,
    Subscribed,
}

/// One data operation on the owner shard's channels. Names are already
/// validated.
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
    /// Answered once every push of this shard up to `ticket` is on disk (an
    /// error if a write failed first): the acknowledgement of a local push
    /// that went to the disk overflow.
    AwaitDurable {
        ticket: u64,
    },
}

/// The reply kinds a [`Slot`] can read.
pub mod reply {
    /// A Push or an awaited disk write: `Result<(), PushError>`.
    #[derive(Debug)]
    pub enum Pushed {}
    /// A Produce run: `Err(i)` = the i-th channel of the op refused a record.
    #[derive(Debug)]
    pub enum Produced {}
    /// A Pop: a [`PopOutcome`](super::PopOutcome).
    #[derive(Debug)]
    pub enum Popped {}
}

/// Where the reply of one op of a batch is, typed by what it is.
#[derive(Debug)]
pub struct Slot<K> {
    index: usize,
    kind: PhantomData<K>,
}

// Not derived: a derive would require `K: Clone`.
impl<K> Clone for Slot<K> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K> Copy for Slot<K> {}

impl<K> Slot<K> {
    fn new(index: usize) -> Slot<K> {
        Slot {
            index,
            kind: PhantomData,
        }
    }
}

/// Data operations for one shard, in connection order.
#[derive(Debug, Default)]
pub struct OpBatch {
    ops: Vec<Op>,
    pushed: usize,
    produced: usize,
    popped: usize,
}

impl OpBatch {
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// See [`Op::Push`].
    pub fn push(&mut self, channels: Vec<String>, value: Vec<u8>) -> Slot<reply::Pushed> {
        self.ops.push(Op::Push { channels, value });
        self.pushed += 1;
        Slot::new(self.pushed - 1)
    }

    /// See [`Op::PushEncoded`].
    pub fn push_encoded(
        &mut self,
        channels: Vec<String>,
        records: Vec<u8>,
    ) -> Slot<reply::Produced> {
        self.ops.push(Op::PushEncoded { channels, records });
        self.produced += 1;
        Slot::new(self.produced - 1)
    }

    /// A pop that waits for records on disk to come back before it answers.
    pub fn pop(&mut self, channel: String, create: bool) -> Slot<reply::Popped> {
        self.ops.push(Op::Pop { channel, create });
        self.popped += 1;
        Slot::new(self.popped - 1)
    }

    /// Creates the channel if missing; nothing to read back.
    pub fn create(&mut self, channel: String) {
        self.ops.push(Op::Create { channel });
    }

    /// Removes the channel; the batch is answered once a drop of its disk
    /// records is written, so nothing to read back.
    pub fn remove(&mut self, channel: String) {
        self.ops.push(Op::Remove { channel });
    }

    /// See [`Op::AwaitDurable`].
    pub fn await_durable(&mut self, ticket: u64) -> Slot<reply::Pushed> {
        self.ops.push(Op::AwaitDurable { ticket });
        self.pushed += 1;
        Slot::new(self.pushed - 1)
    }

    /// The ops in order, and the replies sized for them.
    pub(super) fn into_parts(self) -> (Vec<Op>, Replies) {
        let replies = Replies {
            pushed: Vec::with_capacity(self.pushed),
            produced: Vec::with_capacity(self.produced),
            popped: Vec::with_capacity(self.popped),
        };
        (self.ops, replies)
    }
}

/// The replies to one [`OpBatch`], by kind, each kind in op order. Empty
/// when the owner shard did not answer (it is shutting down): every slot
/// then reads `None`.
#[derive(Debug, Default, PartialEq)]
pub struct Replies {
    pub(super) pushed: Vec<Result<(), PushError>>,
    pub(super) produced: Vec<Result<(), usize>>,
    pub(super) popped: Vec<PopOutcome>,
}

impl Replies {
    /// No replies: what a shard that did not answer gave.
    pub const EMPTY: Replies = Replies {
        pushed: Vec::new(),
        produced: Vec::new(),
        popped: Vec::new(),
    };

    pub fn pushed(&self, slot: Slot<reply::Pushed>) -> Option<Result<(), PushError>> {
        self.pushed.get(slot.index).copied()
    }

    pub fn produced(&self, slot: Slot<reply::Produced>) -> Option<Result<(), usize>> {
        self.produced.get(slot.index).copied()
    }

    pub fn popped(&self, slot: Slot<reply::Popped>) -> Option<&PopOutcome> {
        self.popped.get(slot.index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_count_their_own_kind_in_op_order() {
        let mut batch = OpBatch::default();
        let a = batch.push(vec!["a".into()], b"1".to_vec());
        let p = batch.pop("a".into(), false);
        batch.create("b".into());
        let d = batch.await_durable(7);
        let r = batch.push_encoded(vec!["c".into()], Vec::new());
        assert_eq!(batch.len(), 5);
        assert_eq!((a.index, d.index, p.index, r.index), (0, 1, 0, 0));
        let replies = Replies::default();
        assert_eq!(replies.pushed(a), None, "an unanswered batch reads None");
    }
}
