//! The data operations of a [`Shard`]: push, pop, create, remove, and the
//! consumers' start, poll and stop. The local fast path calls these
//! directly; other shards reach them through [`Shard::apply`].

use dmq_storage::disk::DiskError;
use dmq_storage::{Channels, PopError, StorageError, Stored};
use futures_channel::oneshot;

use super::consumers::{ConsumerId, Consumers, PollResult};
use super::ops::{PopOutcome, PushError};
use super::overflow::Overflow;
use super::snapshot::ShardCounters;
use super::state::Shard;

/// Why a legacy Pop on the local path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PopRefused {
    NoChannel,
    Subscribed,
}

impl Shard {
    /// Creates the channel if missing (Produce, ProduceMulti, Consume start).
    pub fn create(&mut self, channel: &str) {
        self.channels.get_or_create(channel);
    }

    /// Pushes one record to every storage of the channel, creating it if missing,
    /// then wakes a waiting consumer. `Stored::Disk(ticket)`: acknowledge the
    /// push once the ticket is durable (see `Overflow::durable_waiter`).
    pub fn push(&mut self, channel: &str, value: &[u8]) -> Result<Stored, PushError> {
        let ch = self.channels.get_or_create(channel);
        let fanout = ch.storage_count() as u64;
        let result = ch.push(value, &mut self.overflow.disk);
        let result = match result {
            Ok(stored) => {
                self.counters.pushed_records += fanout;
                self.counters.pushed_bytes += fanout * value.len() as u64;
                Ok(stored)
            }
            Err(StorageError::Disk { len, cause }) => {
                self.refused(channel, len, cause);
                Err(PushError::Disk(cause))
            }
        };
        self.overflow.kick_writer();
        self.wake_consumers(channel);
        result
    }

    fn refused(&mut self, channel: &str, len: usize, cause: DiskError) {
        self.counters.refused_disk += 1;
        self.overflow.log_refusal(channel, len, cause);
    }

    /// Pushes a run of records encoded as `u64 len + bytes` each (a Produce or
    /// ProduceMulti batch) to every channel of `channels`; a name listed `k`
    /// times gets every record `k` times in a row, as if each record went to the
    /// list in order. Each distinct channel is looked up once per run, not once
    /// per record. A channel stops at the first record it cannot take (the
    /// others still take the whole run); the error names the first such
    /// channel by its position in `channels`. `Ok` carries where the records
    /// went, as for [`Shard::push`].
    pub fn push_encoded<S: AsRef<str>>(
        &mut self,
        channels: &[S],
        records: &[u8],
    ) -> Result<Stored, usize> {
        let mut result = Ok(Stored::Memory);
        for (index, channel) in channels.iter().enumerate() {
            let channel = channel.as_ref();
            if channels[..index].iter().any(|c| c.as_ref() == channel) {
                continue;
            }
            let times = channels[index..]
                .iter()
                .filter(|c| c.as_ref() == channel)
                .count();
            let (stored, pushed, refused) = self.push_run(channel, records, times);
            if let Some((len, cause)) = refused {
                self.refused(channel, len, cause);
                result = result.and(Err(index));
            }
            result = result.map(|s| s.max(stored));
            if pushed > 0 {
                self.wake_consumers(channel);
            }
        }
        self.overflow.kick_writer();
        result
    }

    /// Pushes every record of `records`, `times` times each, to `channel`
    /// until one is refused. Returns where they went, how many storage
    /// pushes were done, and the refusal.
    fn push_run(
        &mut self,
        channel: &str,
        records: &[u8],
        times: usize,
    ) -> (Stored, u64, Option<(usize, DiskError)>) {
        let ch = self.channels.get_or_create(channel);
        let fanout = ch.storage_count() as u64;
        let (mut pushed_records, mut pushed_bytes) = (0u64, 0u64);
        let mut stored = Stored::Memory;
        let mut refused = None;
        'records: for record in EncodedRecords(records) {
            for _ in 0..times {
                match ch.push(record, &mut self.overflow.disk) {
                    Ok(s) => stored = stored.max(s),
                    Err(StorageError::Disk { len, cause }) => {
                        refused = Some((len, cause));
                        break 'records;
                    }
                }
                pushed_records += fanout;
                pushed_bytes += fanout * record.len() as u64;
            }
        }
        self.counters.pushed_records += pushed_records;
        self.counters.pushed_bytes += pushed_bytes;
        (stored, pushed_records, refused)
    }

    /// True when a Pop of this (unsubscribed) channel must wait for records
    /// to come back from disk: its memory is empty and its disk part is not.
    /// Asks nothing of the disk; [`Shard::try_pop`] starts the read.
    pub fn waits_for_disk(&self, channel: &str) -> bool {
        self.channels
            .get(channel)
            .is_some_and(|ch| ch.waits_on_disk())
    }

    /// A Pop that waits for disk if it must: `Err` carries a receiver that
    /// fires when it is worth trying again (a read back was started).
    pub fn try_pop(
        &mut self,
        channel: &str,
        create: bool,
    ) -> Result<PopOutcome, oneshot::Receiver<()>> {
        if self.waits_for_disk(channel) {
            let id = self
                .channels
                .get_mut(channel)
                .and_then(|ch| ch.unsubscribed_storage_mut())
                .map_or(0, |s| s.disk().id());
            self.overflow.schedule_refill(channel, id);
            return Err(self.overflow.wait_for_read(channel));
        }
        Ok(self.pop(channel, create))
    }

    /// Pops one record of an unsubscribed channel and hands it to `take` while
    /// it is still in the ring, so the caller can encode it without a copy.
    /// `create` makes a missing channel (neo Pop does, legacy Pop does not).
    /// The caller checked [`Shard::waits_for_disk`]: memory empty means empty.
    pub fn pop_with<R>(
        &mut self,
        channel: &str,
        create: bool,
        take: impl FnOnce(Result<Option<&[u8]>, PopRefused>) -> R,
    ) -> R {
        let ch = if create {
            self.channels.get_or_create(channel)
        } else {
            match self.channels.get_mut(channel) {
                Some(ch) => ch,
                None => return take(Err(PopRefused::NoChannel)),
            }
        };
        let spilled = ch
            .unsubscribed_storage_mut()
            .is_some_and(|s| !s.disk().is_empty() || s.memory_len() > s.ring().len());
        let result = match ch.pop() {
            Ok(Some(value)) => {
                self.counters.popped_records += 1;
                self.counters.popped_bytes += value.len() as u64;
                take(Ok(Some(value)))
            }
            Ok(None) => take(Ok(None)),
            Err(PopError::Subscribed) => take(Err(PopRefused::Subscribed)),
        };
        if spilled {
            let storage = self
                .channels
                .get_mut(channel)
                .and_then(|ch| ch.unsubscribed_storage_mut());
            if let Some(storage) = storage {
                storage.release_lent();
                self.overflow.refill_if_wanted(channel, storage);
            }
        }
        result
    }

    /// Pops one record of an unsubscribed channel as an owned outcome (for
    /// other shards). The caller checked [`Shard::waits_for_disk`] (see
    /// [`Shard::try_pop`]).
    pub fn pop(&mut self, channel: &str, create: bool) -> PopOutcome {
        self.pop_with(channel, create, |popped| match popped {
            Ok(Some(value)) => PopOutcome::Value(value.to_vec()),
            Ok(None) => PopOutcome::Empty,
            Err(PopRefused::NoChannel) => PopOutcome::NoChannel,
            Err(PopRefused::Subscribed) => PopOutcome::Subscribed,
        })
    }

    /// Legacy Pop on the local path: the popped value (or an empty array) goes
    /// straight into `out` as `u64 len + bytes`.
    pub fn pop_encoded(&mut self, channel: &str, out: &mut Vec<u8>) -> Result<(), PopRefused> {
        self.pop_with(channel, false, |popped| {
            dmq_proto::legacy::encode_array(out, popped?.unwrap_or_default());
            Ok(())
        })
    }

    /// Removes the channel and all its storages, and ends every Consume of it.
    /// `Some(ticket)` when records on disk were dropped: the removal is
    /// acknowledged once that is on disk too, so that a crash cannot bring
    /// them back.
    pub fn remove(&mut self, channel: &str) -> Option<u64> {
        let had_disk = self
            .channels
            .get(channel)
            .is_some_and(|ch| ch.storage_values().any(|s| !s.disk().is_empty()));
        if self
            .channels
            .remove(channel, &mut self.overflow.disk)
            .is_some()
        {
            tracing::info!(channel, "channel removed");
        }
        self.overflow.wake_pops(channel);
        let durable = had_disk.then(|| {
            self.overflow.io.writer.notify();
            self.overflow.disk.appended_ticket()
        });
        self.consumers.channel_removed(channel);
        durable
    }

    /// Subscribes `subscriber` to the channel (creating both if missing) and
    /// registers a consumer of that subscriber's storage.
    pub fn consume_start(&mut self, channel: &str, subscriber: &str) -> ConsumerId {
        if self
            .channels
            .subscribe(channel, subscriber, &mut self.overflow.disk)
        {
            tracing::info!(channel, subscriber, "subscribed");
        }
        self.consumers.register(channel, subscriber)
    }

    /// Asks for the next records of a consumer. Answers at once when records are
    /// there or the channel is gone; otherwise the poll waits here until a push or
    /// a removal answers it.
    pub fn consume_poll(
        &mut self,
        id: ConsumerId,
        max_bytes: usize,
        reply: oneshot::Sender<PollResult>,
    ) {
        let (consumers, mut records) = self.consumers_and_records();
        consumers.poll(id, max_bytes, reply, |channel, subscriber, max| {
            records.take(channel, subscriber, max)
        });
    }

    /// Unregisters a consumer (its connection went away or stopped). A poll still
    /// waiting is dropped unanswered: nothing was popped for it.
    pub fn consume_stop(&mut self, id: ConsumerId) {
        self.consumers.unregister(id);
    }

    /// Records arrived in `channel` (pushed, or read back from disk): hand
    /// them to its waiting consumers.
    pub(super) fn wake_consumers(&mut self, channel: &str) {
        let (consumers, mut records) = self.consumers_and_records();
        consumers.wake(channel, |subscriber, max| {
            records.take(channel, subscriber, max)
        });
    }

    /// The consumer registry, and apart from it what pops records for a
    /// consumer: both are borrowed at once while consumers are answered.
    fn consumers_and_records(&mut self) -> (&mut Consumers, SubscriberRecords<'_>) {
        let Shard {
            channels,
            consumers,
            counters,
            overflow,
            ..
        } = self;
        let records = SubscriberRecords {
            channels,
            counters,
            overflow,
        };
        (consumers, records)
    }
}

/// What pops records for consumers: the shard's storages with the counters
/// and the overflow a pop touches.
struct SubscriberRecords<'s> {
    channels: &'s mut Channels,
    counters: &'s mut ShardCounters,
    overflow: &'s mut Overflow,
}

impl SubscriberRecords<'_> {
    /// Pops up to `max_bytes` of records for a subscriber; `None` when there
    /// are none in memory (a read from disk is started if records wait there).
    fn take(&mut self, channel: &str, subscriber: &str, max_bytes: usize) -> Option<PollResult> {
        let storage = self
            .channels
            .get_mut(channel)?
            .subscriber_storage_mut(subscriber)?;
        if storage.memory_len() == 0 {
            if !storage.disk().is_empty() {
                self.overflow.schedule_refill(channel, storage.disk().id());
            }
            return None;
        }
        let mut buf = Vec::with_capacity(max_bytes.min(storage.ring().used_bytes()));
        let (records, bytes) = storage.pop_into(&mut buf, max_bytes, false);
        self.counters.popped_records += records as u64;
        self.counters.popped_bytes += bytes as u64;
        self.overflow.refill_if_wanted(channel, storage);
        (records > 0).then_some(PollResult::Records { buf, records })
    }
}

/// Iterates the records of a `u64 len + bytes` sequence. The sequence was built by
/// this process (checked on decode), so a short tail simply ends the iteration.
pub struct EncodedRecords<'a>(pub &'a [u8]);

impl<'a> Iterator for EncodedRecords<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let header: [u8; 8] = self.0.get(..8)?.try_into().ok()?;
        let len = usize::try_from(u64::from_le_bytes(header)).ok()?;
        let record = self.0.get(8..8usize.checked_add(len)?)?;
        self.0 = &self.0[8 + len..];
        Some(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dmq_storage::disk::{DiskConfig, DiskError, DiskWriter};
    use dmq_storage::ChannelSizes;

    fn shard() -> Shard {
        Shard::new(ChannelSizes::new(1024, Vec::new()).expect("sizes"))
    }

    fn encoded(records: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for r in records {
            dmq_proto::legacy::encode_array(&mut out, r);
        }
        out
    }

    #[test]
    fn legacy_pop_does_not_create_but_neo_pop_does() {
        let mut s = shard();
        assert_eq!(s.pop("a", false), PopOutcome::NoChannel);
        assert!(s.channels().get("a").is_none());
        assert_eq!(s.pop("a", true), PopOutcome::Empty);
        assert!(s.channels().get("a").is_some());
    }

    #[test]
    fn waiting_consumer_is_answered_by_a_push() {
        let mut s = shard();
        let id = s.consume_start("c", "");
        let (tx, mut rx) = oneshot::channel();
        s.consume_poll(id, 1 << 20, tx);
        assert!(matches!(rx.try_recv(), Ok(None)));
        s.push("c", b"x").expect("push");
        match rx.try_recv() {
            Ok(Some(PollResult::Records { buf, records })) => {
                assert_eq!(records, 1);
                assert_eq!(buf, encoded(&[b"x"]));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(s.pop("c", false), PopOutcome::Subscribed);
    }

    #[test]
    fn removal_finishes_waiting_and_idle_consumers() {
        let mut s = shard();
        let waiting = s.consume_start("c", "");
        let idle = s.consume_start("c", "");
        let (tx, mut rx) = oneshot::channel();
        s.consume_poll(waiting, 100, tx);
        s.remove("c");
        assert!(matches!(rx.try_recv(), Ok(Some(PollResult::Finished))));
        let (tx, mut rx) = oneshot::channel();
        s.consume_poll(idle, 100, tx);
        assert!(matches!(rx.try_recv(), Ok(Some(PollResult::Finished))));
        assert_eq!(s.consumers.len(), 0);
    }

    #[test]
    fn consumers_of_one_subscriber_take_turns() {
        let mut s = shard();
        let a = s.consume_start("c", "g");
        let b = s.consume_start("c", "g");
        let (ta, mut ra) = oneshot::channel();
        let (tb, mut rb) = oneshot::channel();
        s.consume_poll(a, 100, ta);
        s.consume_poll(b, 100, tb);
        s.push("c", b"1").expect("push");
        s.push("c", b"2").expect("push");
        assert!(matches!(
            ra.try_recv(),
            Ok(Some(PollResult::Records { records: 1, .. }))
        ));
        assert!(matches!(
            rb.try_recv(),
            Ok(Some(PollResult::Records { records: 1, .. }))
        ));
    }

    #[test]
    fn produce_batch_spills_past_a_full_ring_in_order() {
        let mut s = Shard::new(ChannelSizes::new(40, Vec::new()).expect("sizes"));
        let batch = encoded(&[b"0123456789", b"1123456789", b"2123456789"]);
        assert!(matches!(
            s.push_encoded(&["c"], &batch),
            Ok(Stored::Disk(_))
        ));
        assert_eq!(s.overflow.disk.records_appended(), 1);
        assert_eq!(s.pop("c", false), PopOutcome::Value(b"0123456789".to_vec()));
        assert_eq!(s.pop("c", false), PopOutcome::Value(b"1123456789".to_vec()));
        // The third record is on disk: a Pop must wait for it, not answer Empty.
        assert!(s.waits_for_disk("c"));
        assert!(s.try_pop("c", false).is_err());
        assert_eq!(
            s.next_refill().map(|(c, _)| c.to_string()),
            Some("c".to_owned())
        );
    }

    #[test]
    fn a_pop_waiting_for_disk_is_woken_by_its_channel_only() {
        let mut s = Shard::new(ChannelSizes::new(16, Vec::new()).expect("sizes"));
        for channel in ["a", "b"] {
            assert!(matches!(s.push(channel, &[1; 20]), Ok(Stored::Disk(_))));
        }
        let mut a = s.try_pop("a", false).expect_err("waits for disk");
        let mut b = s.try_pop("b", false).expect_err("waits for disk");
        s.remove("a");
        assert!(
            matches!(a.try_recv(), Ok(Some(()))),
            "removal wakes a's pop"
        );
        assert!(matches!(b.try_recv(), Ok(None)), "b's pop still waits");
        assert_eq!(s.try_pop("a", false).ok(), Some(PopOutcome::NoChannel));
    }

    #[test]
    fn produce_batch_stops_where_the_overflow_is_full() {
        let disk = DiskWriter::new(DiskConfig {
            segment_size: 4096,
            limit: 4096,
        });
        // No memory budget left: the channel has no ring at all.
        let sizes = ChannelSizes::new(1024, Vec::new()).expect("sizes");
        let channels = Channels::with_budget(sizes, Some(0));
        let mut s = Shard::with_storage(channels, disk);
        let record = [7u8; 1000];
        let batch = encoded(&[&record[..]; 8]);
        assert_eq!(s.push_encoded(&["c"], &batch), Err(0));
        assert_eq!(s.counters.refused_disk, 1);
        let on_disk = s.channels().get("c").map_or(0, |c| c.records());
        assert!((1..8).contains(&on_disk), "{on_disk}");
        assert_eq!(s.push("c", &record), Err(PushError::Disk(DiskError::Limit)));
    }

    #[test]
    fn produce_multi_pushes_each_record_to_every_listed_channel_in_turn() {
        let mut s = shard();
        let batch = encoded(&[b"1", b"2"]);
        assert_eq!(s.push_encoded(&["a", "b", "a"], &batch), Ok(Stored::Memory));
        for expected in [b"1", b"1", b"2", b"2"] {
            assert_eq!(s.pop("a", false), PopOutcome::Value(expected.to_vec()));
        }
        assert_eq!(s.pop("a", false), PopOutcome::Empty);
        assert_eq!(s.pop("b", false), PopOutcome::Value(b"1".to_vec()));
    }

    #[test]
    fn encoded_records_iterate_and_stop_on_a_short_tail() {
        let mut buf = encoded(&[b"a", b"", b"bc"]);
        assert_eq!(
            EncodedRecords(&buf).collect::<Vec<_>>(),
            vec![&b"a"[..], b"", b"bc"]
        );
        buf.truncate(buf.len() - 1);
        assert_eq!(EncodedRecords(&buf).count(), 2);
    }
}
