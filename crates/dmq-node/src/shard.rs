//! One shard's channels and consumers: the single place where a shard's data is
//! changed. Every operation here is synchronous and runs to completion, so no
//! borrow of the state is ever held across an await.
//!
//! Lives on its shard's executor thread, for the life of the process; reached by
//! local connections directly and by other shards through [`crate::route`].

use std::collections::HashMap;
use std::rc::Rc;

use dmq_storage::{ChannelSizes, Channels, PopError, StorageError};
use futures_channel::oneshot;

use crate::metrics::probes::{Probes, ProbesSnapshot};

/// Identifies a consumer on the shard that owns its channel.
pub type ConsumerId = u64;

/// What a consumer's poll gets back.
#[derive(Debug)]
pub enum PollResult {
    /// Records encoded as `u64 len + bytes` each, ready for the wire.
    Records { buf: Vec<u8>, records: usize },
    /// The channel was removed: the Consume ends.
    Finished,
}

/// Why a push was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// The record does not fit in the memory ring of some storage of the channel.
    /// Nothing was pushed to that channel.
    Full,
}

/// Result of a pop on an unsubscribed channel.
#[derive(Debug, PartialEq, Eq)]
pub enum PopOutcome {
    Value(Vec<u8>),
    Empty,
    NoChannel,
    Subscribed,
}

/// Why a legacy Pop on the local path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PopRefused {
    NoChannel,
    Subscribed,
}

/// A poll waiting on the owner shard for records to arrive.
struct Waiter {
    max_bytes: usize,
    reply: oneshot::Sender<PollResult>,
}

struct Consumer {
    channel: Rc<str>,
    subscriber: Rc<str>,
    waiter: Option<Waiter>,
    /// Set when the channel is removed while no poll was waiting.
    finished: bool,
}

/// Counters a shard keeps for itself; read by stats and metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ShardCounters {
    pub pushed_records: u64,
    pub pushed_bytes: u64,
    pub popped_records: u64,
    pub popped_bytes: u64,
    pub refused_full: u64,
}

/// One storage as the admin socket, metrics and stats report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageInfo {
    /// `channel`, `subscriber@channel` or `@channel`.
    pub name: String,
    pub channel: String,
    /// `None` for the storage of an unsubscribed channel.
    pub subscriber: Option<String>,
    /// Records and payload bytes written to / taken from this storage.
    pub pushed_records: u64,
    pub pushed_bytes: u64,
    pub popped_records: u64,
    pub popped_bytes: u64,
    pub records_memory: usize,
    /// Ring bytes in use, 8-byte headers included.
    pub bytes_memory: usize,
    pub capacity_bytes: usize,
    pub records_overflow: usize,
    /// Payload bytes on disk.
    pub bytes_overflow: usize,
}

/// What a shard reports about itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShardSnapshot {
    pub channels: usize,
    pub consumers: usize,
    pub storages: Vec<StorageInfo>,
    pub counters: ShardCounters,
    pub probes: ProbesSnapshot,
    /// Seconds the shard's executor spent running tasks since it started.
    pub busy_seconds: f64,
}

/// The channels owned by one shard and the consumers registered on them.
pub struct Shard {
    channels: Channels,
    consumers: HashMap<ConsumerId, Consumer>,
    /// Consumers per channel name, in registration order (round-robin wake-ups).
    by_channel: HashMap<String, Vec<ConsumerId>>,
    next_consumer: ConsumerId,
    /// Round-robin position per channel.
    cursor: HashMap<String, usize>,
    pub counters: ShardCounters,
    /// What this shard's connections did (requests, bytes, routing).
    pub probes: Probes,
}

impl Shard {
    pub fn new(sizes: ChannelSizes) -> Shard {
        Shard {
            channels: Channels::new(sizes),
            consumers: HashMap::new(),
            by_channel: HashMap::new(),
            next_consumer: 1,
            cursor: HashMap::new(),
            counters: ShardCounters::default(),
            probes: Probes::default(),
        }
    }

    pub fn channels(&self) -> &Channels {
        &self.channels
    }

    /// Every storage with its figures, sorted by name, and the shard's probes.
    /// `reset_max_active` starts a new max-active window (stats.log does).
    pub fn snapshot(&self, reset_max_active: bool) -> ShardSnapshot {
        let mut storages: Vec<StorageInfo> = self
            .channels
            .iter()
            .flat_map(|channel| {
                channel
                    .storages()
                    .map(move |(name, storage)| (channel.name(), name, storage))
            })
            .map(|(channel, name, storage)| {
                let stats = storage.stats();
                let subscriber = dmq_storage::split_storage_name(&name).0.map(str::to_owned);
                StorageInfo {
                    channel: channel.to_owned(),
                    subscriber,
                    pushed_records: stats.pushed_records,
                    pushed_bytes: stats.pushed_bytes,
                    popped_records: stats.popped_records,
                    popped_bytes: stats.popped_bytes,
                    name,
                    records_memory: stats.records_memory,
                    bytes_memory: stats.bytes_memory,
                    capacity_bytes: stats.capacity_bytes,
                    records_overflow: 0,
                    bytes_overflow: 0,
                }
            })
            .collect();
        storages.sort_by(|a, b| a.name.cmp(&b.name));
        ShardSnapshot {
            channels: self.channels.len(),
            consumers: self.consumers.len(),
            storages,
            counters: self.counters,
            probes: self.probes.snapshot(reset_max_active),
            busy_seconds: glommio::executor()
                .executor_stats()
                .executor_runtime()
                .as_secs_f64(),
        }
    }

    /// Puts a channel loaded from the data directory back, storage by storage,
    /// in its mode. The caller checked that every storage fits its ring.
    pub fn restore(&mut self, channel: &str, content: dmq_storage::files::ChannelContent) {
        use dmq_storage::files::ChannelContent;
        let ch = self.channels.get_or_create(channel);
        let mut refused = 0usize;
        match content {
            ChannelContent::Unsubscribed(records) => {
                if let Some(storage) = ch.unsubscribed_storage_mut() {
                    for record in &records {
                        refused += usize::from(storage.push(record).is_err());
                    }
                }
            }
            ChannelContent::Subscribed(subscribers) => {
                for (subscriber, records) in subscribers {
                    ch.subscribe(&subscriber);
                    if let Some(storage) = ch.subscriber_storage_mut(&subscriber) {
                        for record in &records {
                            refused += usize::from(storage.push(record).is_err());
                        }
                    }
                }
            }
        }
        if refused > 0 {
            // Only possible if the size check before the start was wrong.
            tracing::error!(channel, refused, "restored records did not fit their ring");
        }
    }

    /// Creates the channel if missing (Produce, ProduceMulti, Consume start).
    pub fn create(&mut self, channel: &str) {
        self.channels.get_or_create(channel);
    }

    /// Pushes one record to every storage of the channel, creating it if missing,
    /// then wakes a waiting consumer.
    pub fn push(&mut self, channel: &str, value: &[u8]) -> Result<(), PushError> {
        let ch = self.channels.get_or_create(channel);
        let fanout = ch.storage_count() as u64;
        match ch.push(value) {
            Ok(()) => {
                self.counters.pushed_records += fanout;
                self.counters.pushed_bytes += fanout * value.len() as u64;
                self.wake_consumers(channel);
                Ok(())
            }
            Err(StorageError::Full { len }) => {
                self.counters.refused_full += 1;
                tracing::warn!(
                    channel,
                    bytes = len,
                    "push refused: the record does not fit in the channel's memory ring"
                );
                Err(PushError::Full)
            }
        }
    }

    /// Pushes a run of records encoded as `u64 len + bytes` each (a Produce or
    /// ProduceMulti batch) to every channel of `channels`; a name listed `k`
    /// times gets every record `k` times in a row, as if each record went to the
    /// list in order. Each distinct channel is looked up once per run, not once
    /// per record. A channel stops at the first record it cannot take (the
    /// others still take the whole run); the result names the first such
    /// channel by its position in `channels`.
    pub fn push_encoded<S: AsRef<str>>(
        &mut self,
        channels: &[S],
        records: &[u8],
    ) -> Result<(), usize> {
        let mut result = Ok(());
        for (index, channel) in channels.iter().enumerate() {
            let channel = channel.as_ref();
            if channels[..index].iter().any(|c| c.as_ref() == channel) {
                continue;
            }
            let times = channels[index..]
                .iter()
                .filter(|c| c.as_ref() == channel)
                .count();
            let ch = self.channels.get_or_create(channel);
            let fanout = ch.storage_count() as u64;
            let (mut pushed_records, mut pushed_bytes) = (0u64, 0u64);
            let mut refused = None;
            'records: for record in EncodedRecords(records) {
                for _ in 0..times {
                    if let Err(StorageError::Full { len }) = ch.push(record) {
                        refused = Some(len);
                        break 'records;
                    }
                    pushed_records += fanout;
                    pushed_bytes += fanout * record.len() as u64;
                }
            }
            self.counters.pushed_records += pushed_records;
            self.counters.pushed_bytes += pushed_bytes;
            if let Some(len) = refused {
                self.counters.refused_full += 1;
                tracing::warn!(
                    channel,
                    bytes = len,
                    "produced record refused: it does not fit in the channel's memory ring"
                );
                result = result.and(Err(index));
            }
            if pushed_records > 0 {
                self.wake_consumers(channel);
            }
        }
        result
    }

    /// Pops one record of an unsubscribed channel and hands it to `take` while
    /// it is still in the ring, so the caller can encode it without a copy.
    /// `create` makes a missing channel (neo Pop does, legacy Pop does not).
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
        match ch.pop() {
            Ok(Some(value)) => {
                self.counters.popped_records += 1;
                self.counters.popped_bytes += value.len() as u64;
                take(Ok(Some(value)))
            }
            Ok(None) => take(Ok(None)),
            Err(PopError::Subscribed) => take(Err(PopRefused::Subscribed)),
        }
    }

    /// Pops one record of an unsubscribed channel as an owned outcome (for
    /// other shards).
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
    pub fn remove(&mut self, channel: &str) {
        if self.channels.remove(channel).is_some() {
            tracing::info!(channel, "channel removed");
        }
        self.cursor.remove(channel);
        for id in self.by_channel.remove(channel).unwrap_or_default() {
            if let Some(consumer) = self.consumers.get_mut(&id) {
                match consumer.waiter.take() {
                    Some(waiter) => {
                        // The connection is waiting: tell it now and forget it.
                        let _ = waiter.reply.send(PollResult::Finished);
                        self.consumers.remove(&id);
                    }
                    None => consumer.finished = true,
                }
            }
        }
    }

    /// Subscribes `subscriber` to the channel (creating both if missing) and
    /// registers a consumer of that subscriber's storage.
    pub fn consume_start(&mut self, channel: &str, subscriber: &str) -> ConsumerId {
        let ch = self.channels.get_or_create(channel);
        if ch.subscribe(subscriber) {
            tracing::info!(channel, subscriber, "subscribed");
        }
        let id = self.next_consumer;
        self.next_consumer += 1;
        self.consumers.insert(
            id,
            Consumer {
                channel: channel.into(),
                subscriber: subscriber.into(),
                waiter: None,
                finished: false,
            },
        );
        self.by_channel
            .entry(channel.to_owned())
            .or_default()
            .push(id);
        id
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
        let Some(consumer) = self.consumers.get_mut(&id) else {
            let _ = reply.send(PollResult::Finished);
            return;
        };
        if consumer.finished {
            self.consumers.remove(&id);
            let _ = reply.send(PollResult::Finished);
            return;
        }
        let (channel, subscriber) = (consumer.channel.clone(), consumer.subscriber.clone());
        match self.take_records(&channel, &subscriber, max_bytes) {
            Some(result) => {
                let _ = reply.send(result);
            }
            None => {
                if let Some(consumer) = self.consumers.get_mut(&id) {
                    consumer.waiter = Some(Waiter { max_bytes, reply });
                }
            }
        }
    }

    /// Unregisters a consumer (its connection went away or stopped). A poll still
    /// waiting is dropped unanswered: nothing was popped for it.
    pub fn consume_stop(&mut self, id: ConsumerId) {
        if let Some(consumer) = self.consumers.remove(&id) {
            if let Some(ids) = self.by_channel.get_mut(&*consumer.channel) {
                ids.retain(|&other| other != id);
                if ids.is_empty() {
                    self.by_channel.remove(&*consumer.channel);
                }
            }
        }
    }

    /// Pops up to `max_bytes` of records for a subscriber; `None` when there are none.
    fn take_records(
        &mut self,
        channel: &str,
        subscriber: &str,
        max_bytes: usize,
    ) -> Option<PollResult> {
        let storage = self
            .channels
            .get_mut(channel)?
            .subscriber_storage_mut(subscriber)?;
        if storage.is_empty() {
            return None;
        }
        let mut buf = Vec::with_capacity(max_bytes.min(storage.ring().used_bytes()));
        let (records, bytes) = storage.pop_into(&mut buf, max_bytes, false);
        self.counters.popped_records += records as u64;
        self.counters.popped_bytes += bytes as u64;
        (records > 0).then_some(PollResult::Records { buf, records })
    }

    /// After a push: hand records to waiting consumers, round-robin, one consumer
    /// per subscriber storage at a time, until the storages or the waiters run out.
    fn wake_consumers(&mut self, channel: &str) {
        let Some(n) = self.by_channel.get(channel).map(Vec::len) else {
            return;
        };
        let start = self.cursor.get(channel).copied().unwrap_or(0);
        for step in 0..n {
            let index = (start + step) % n;
            let Some(&id) = self.by_channel.get(channel).and_then(|ids| ids.get(index)) else {
                return;
            };
            let Some(consumer) = self.consumers.get_mut(&id) else {
                continue;
            };
            let Some(waiter) = consumer.waiter.take() else {
                continue;
            };
            if waiter.reply.is_canceled() {
                continue;
            }
            let subscriber = consumer.subscriber.clone();
            match self.take_records(channel, &subscriber, waiter.max_bytes) {
                Some(result) => {
                    let _ = waiter.reply.send(result);
                    if let Some(cursor) = self.cursor.get_mut(channel) {
                        *cursor = (index + 1) % n;
                    } else {
                        self.cursor.insert(channel.to_owned(), (index + 1) % n);
                    }
                }
                None => {
                    if let Some(consumer) = self.consumers.get_mut(&id) {
                        consumer.waiter = Some(waiter);
                    }
                }
            }
        }
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
        assert!(s.consumers.is_empty());
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
    fn produce_batch_stops_at_a_full_ring() {
        let mut s = Shard::new(ChannelSizes::new(40, Vec::new()).expect("sizes"));
        let batch = encoded(&[b"0123456789", b"0123456789", b"0123456789"]);
        assert_eq!(s.push_encoded(&["c"], &batch), Err(0));
        assert_eq!(s.counters.refused_full, 1);
        assert_eq!(s.pop("c", false), PopOutcome::Value(b"0123456789".to_vec()));
    }

    #[test]
    fn produce_multi_pushes_each_record_to_every_listed_channel_in_turn() {
        let mut s = shard();
        let batch = encoded(&[b"1", b"2"]);
        assert_eq!(s.push_encoded(&["a", "b", "a"], &batch), Ok(()));
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
