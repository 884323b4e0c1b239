//! One shard's channels and consumers: the single place where a shard's data is
//! changed. Every operation here is synchronous and runs to completion, so no
//! borrow of the state is ever held across an await.
//!
//! Lives on its shard's executor thread, for the life of the process; reached by
//! local connections directly and by other shards through [`crate::route`].

use std::collections::{HashMap, HashSet, VecDeque};
use std::rc::Rc;

use dmq_storage::disk::{DiskConfig, DiskError, DiskQueue, DiskWriter, Loc, WriteJob};
use dmq_storage::{ChannelSizes, Channels, PopError, StorageError, Stored};
use futures_channel::oneshot;

use crate::metrics::probes::{Probes, ProbesSnapshot};
use crate::overflow::IoSignals;

/// Read-ahead from disk: at most this much per read.
const REFILL_READ_MAX: usize = 1 << 20;
/// Read-ahead from disk: at least this much per read (a small ring still
/// reads a useful amount; what it cannot take stays on disk).
const REFILL_READ_MIN: usize = 64 << 10;

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

/// Why a legacy Pop on the local path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PopRefused {
    NoChannel,
    Subscribed,
}

/// The next step of reading a storage's disk records back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefillStep {
    /// Nothing (more) to read now.
    Done,
    /// The records are not written yet: wait for the writes in flight.
    NotYet,
    /// Read `len` bytes at `at`.
    Read { at: Loc, len: usize },
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
    /// Pushes the overflow could not take (limit, disk full, I/O error).
    pub refused_disk: u64,
    /// Records read back from the disk overflow.
    pub refilled_records: u64,
    /// Overflow writes or reads that failed.
    pub disk_errors: u64,
    /// Records given up because a failed write took them (never acknowledged)
    /// or a corrupt file could not be read back.
    pub disk_lost_records: u64,
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

/// The shard's disk overflow as a whole.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OverflowSnapshot {
    /// Records written to the disk overflow, one per storage.
    pub written_records: u64,
    /// Segment files.
    pub segments: usize,
    /// Bytes in the segment files.
    pub file_bytes: u64,
    /// Ring bytes left in this shard's memory budget (`None`: no budget).
    pub memory_budget_left: Option<u64>,
    /// Storages that got a smaller ring than configured.
    pub short_rings: u64,
}

/// What a shard reports about itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShardSnapshot {
    pub channels: usize,
    pub consumers: usize,
    pub storages: Vec<StorageInfo>,
    pub overflow: OverflowSnapshot,
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
    /// The shard's disk overflow (bookkeeping; the I/O tasks do the I/O).
    pub disk: DiskWriter,
    /// Wakes the overflow I/O tasks.
    pub io: Rc<IoSignals>,
    /// Pushes waiting for their records to be on disk, by ticket.
    flush_waiters: VecDeque<(u64, oneshot::Sender<Result<(), ()>>)>,
    /// Pops waiting for records to come back from disk, by channel.
    pop_waiters: HashMap<String, Vec<oneshot::Sender<()>>>,
    /// Storages to read back from disk: channel and overflow id.
    refills: VecDeque<(Rc<str>, u32)>,
    refill_queued: HashSet<u32>,
    /// A refused push was logged; reset by the maintenance tick so that a
    /// full disk logs once per tick, not once per push.
    refusal_logged: bool,
}

impl Shard {
    /// A shard with no memory budget and an unlimited overflow (tests).
    pub fn new(sizes: ChannelSizes) -> Shard {
        let disk = DiskWriter::new(DiskConfig {
            segment_size: 64 << 20,
            limit: 0,
        });
        Shard::with_storage(Channels::new(sizes), disk)
    }

    /// A shard over these channels (with their memory budget) and overflow.
    pub fn with_storage(channels: Channels, disk: DiskWriter) -> Shard {
        Shard {
            channels,
            consumers: HashMap::new(),
            by_channel: HashMap::new(),
            next_consumer: 1,
            cursor: HashMap::new(),
            counters: ShardCounters::default(),
            probes: Probes::default(),
            disk,
            io: Rc::new(IoSignals::default()),
            flush_waiters: VecDeque::new(),
            pop_waiters: HashMap::new(),
            refills: VecDeque::new(),
            refill_queued: HashSet::new(),
            refusal_logged: false,
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
                    records_overflow: stats.records_overflow as usize,
                    bytes_overflow: stats.bytes_overflow as usize,
                }
            })
            .collect();
        storages.sort_by(|a, b| a.name.cmp(&b.name));
        ShardSnapshot {
            channels: self.channels.len(),
            consumers: self.consumers.len(),
            storages,
            overflow: OverflowSnapshot {
                written_records: self.disk.records_appended(),
                segments: self.disk.segments().count(),
                file_bytes: self.disk.file_bytes(),
                memory_budget_left: self.channels.budget_left().map(|b| b as u64),
                short_rings: self.channels.short_rings(),
            },
            counters: self.counters,
            probes: self.probes.snapshot(reset_max_active),
            busy_seconds: glommio::executor()
                .executor_stats()
                .executor_runtime()
                .as_secs_f64(),
        }
    }

    /// Puts a channel loaded from the data directory back, storage by
    /// storage, in its mode: the memory records into the ring (the excess,
    /// if the ring is smaller now, to the disk overflow behind them), then
    /// the storage's disk part found at startup, if any. Returns the highest
    /// ticket of records it had to write (the caller waits for it).
    pub fn restore(
        &mut self,
        channel: &str,
        content: dmq_storage::files::ChannelContent,
        disk_parts: &mut HashMap<String, DiskQueue>,
    ) -> Stored {
        use dmq_storage::files::ChannelContent;
        let mut stored = Stored::Memory;
        let mut refused = 0usize;
        let storages: Vec<(Option<String>, Vec<Vec<u8>>)> = match content {
            ChannelContent::Unsubscribed(records) => vec![(None, records)],
            ChannelContent::Subscribed(subscribers) => subscribers
                .into_iter()
                .map(|(sub, records)| (Some(sub), records))
                .collect(),
        };
        self.channels.get_or_create(channel);
        for (subscriber, records) in storages {
            if let Some(sub) = &subscriber {
                self.channels.subscribe(channel, sub, &mut self.disk);
            }
            let name = dmq_storage::storage_name(channel, subscriber.as_deref());
            let Some(ch) = self.channels.get_mut(channel) else {
                continue;
            };
            let storage = match &subscriber {
                Some(sub) => ch.subscriber_storage_mut(sub),
                None => ch.unsubscribed_storage_mut(),
            };
            let Some(storage) = storage else {
                continue;
            };
            // Memory first (persist sized it to the ring), then the disk part
            // behind it.
            let mut rest = &records[..];
            while let Some((first, tail)) = rest.split_first() {
                if !storage.push_memory(first) {
                    break;
                }
                rest = tail;
            }
            if let Some(part) = disk_parts.remove(&name) {
                storage.set_disk(part);
            }
            refused += rest.len();
            for record in rest {
                // Only if the ring is smaller than persist computed: behind
                // the disk part, out of order (logged below).
                if let Ok(s) = storage.push(record, &mut self.disk, &|| name.clone()) {
                    stored = stored.max(s);
                }
            }
            let id = storage.disk().id();
            if !storage.disk().is_empty() {
                self.schedule_refill(channel, id);
            }
        }
        if refused > 0 {
            tracing::error!(
                channel,
                records = refused,
                "restored records did not fit the ring they were sized for; the rest went to the disk overflow, after the storage's disk records"
            );
        }
        stored
    }

    /// Creates the channel if missing (Produce, ProduceMulti, Consume start).
    pub fn create(&mut self, channel: &str) {
        self.channels.get_or_create(channel);
    }

    /// Pushes one record to every storage of the channel, creating it if missing,
    /// then wakes a waiting consumer. `Stored::Disk(ticket)`: acknowledge the
    /// push once the ticket is durable ([`Shard::durable_waiter`]).
    pub fn push(&mut self, channel: &str, value: &[u8]) -> Result<Stored, PushError> {
        let ch = self.channels.get_or_create(channel);
        let fanout = ch.storage_count() as u64;
        let result = ch.push(value, &mut self.disk);
        match result {
            Ok(stored) => {
                self.counters.pushed_records += fanout;
                self.counters.pushed_bytes += fanout * value.len() as u64;
                if let Stored::Disk(_) = stored {
                    self.io.writer.notify();
                }
                self.wake_consumers(channel);
                Ok(stored)
            }
            Err(StorageError::Disk { len, cause }) => {
                self.refused(channel, len, cause);
                if self.disk.has_pending() {
                    self.io.writer.notify();
                }
                self.wake_consumers(channel);
                Err(PushError::Disk(cause))
            }
        }
    }

    fn refused(&mut self, channel: &str, len: usize, cause: DiskError) {
        self.counters.refused_disk += 1;
        if !self.refusal_logged {
            self.refusal_logged = true;
            tracing::warn!(
                channel,
                bytes = len,
                "push refused: the record does not fit in memory and {cause} (logged once per overflow.write_index_ms)"
            );
        }
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
            let ch = self.channels.get_or_create(channel);
            let fanout = ch.storage_count() as u64;
            let (mut pushed_records, mut pushed_bytes) = (0u64, 0u64);
            let mut stored = Stored::Memory;
            let mut refused = None;
            'records: for record in EncodedRecords(records) {
                for _ in 0..times {
                    match ch.push(record, &mut self.disk) {
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
            if let Some((len, cause)) = refused {
                self.refused(channel, len, cause);
                result = result.and(Err(index));
            }
            result = result.map(|s| s.max(stored));
            if pushed_records > 0 {
                self.wake_consumers(channel);
            }
        }
        if self.disk.has_pending() {
            self.io.writer.notify();
        }
        result
    }

    /// True when a Pop of this (unsubscribed) channel must wait for records
    /// to come back from disk; the read is started.
    pub fn pop_would_wait(&mut self, channel: &str) -> bool {
        let Some(ch) = self.channels.get_mut(channel) else {
            return false;
        };
        if !ch.waits_on_disk() {
            return false;
        }
        let id = ch.unsubscribed_storage_mut().map_or(0, |s| s.disk().id());
        self.schedule_refill(channel, id);
        true
    }

    /// A Pop that waits for disk if it must: `Err` is a signal to try again.
    pub fn try_pop(
        &mut self,
        channel: &str,
        create: bool,
    ) -> Result<PopOutcome, oneshot::Receiver<()>> {
        if self.pop_would_wait(channel) {
            let (tx, rx) = oneshot::channel();
            match self.pop_waiters.get_mut(channel) {
                Some(waiters) => waiters.push(tx),
                None => {
                    self.pop_waiters.insert(channel.to_owned(), vec![tx]);
                }
            }
            return Err(rx);
        }
        Ok(self.pop(channel, create))
    }

    /// Pops one record of an unsubscribed channel and hands it to `take` while
    /// it is still in the ring, so the caller can encode it without a copy.
    /// `create` makes a missing channel (neo Pop does, legacy Pop does not).
    /// The caller checked [`Shard::pop_would_wait`]: memory empty means empty.
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
            let id = storage.and_then(|s| {
                s.release_lent();
                s.wants_refill().then(|| s.disk().id())
            });
            if let Some(id) = id {
                self.schedule_refill(channel, id);
            }
        }
        result
    }

    /// Pops one record of an unsubscribed channel as an owned outcome (for
    /// other shards). The caller checked [`Shard::pop_would_wait`] (see
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
        if self.channels.remove(channel, &mut self.disk).is_some() {
            tracing::info!(channel, "channel removed");
        }
        self.wake_pops(channel);
        let durable = had_disk.then(|| {
            self.io.writer.notify();
            self.disk.appended_ticket()
        });
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
        durable
    }

    /// Subscribes `subscriber` to the channel (creating both if missing) and
    /// registers a consumer of that subscriber's storage.
    pub fn consume_start(&mut self, channel: &str, subscriber: &str) -> ConsumerId {
        if self.channels.subscribe(channel, subscriber, &mut self.disk) {
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

    /// Pops up to `max_bytes` of records for a subscriber; `None` when there
    /// are none in memory (a read from disk is started if records wait there).
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
        if storage.memory_len() == 0 {
            let id = storage.disk().id();
            if !storage.disk().is_empty() {
                self.schedule_refill(channel, id);
            }
            return None;
        }
        let mut buf = Vec::with_capacity(max_bytes.min(storage.ring().used_bytes()));
        let (records, bytes) = storage.pop_into(&mut buf, max_bytes, false);
        let refill = storage.wants_refill().then(|| storage.disk().id());
        self.counters.popped_records += records as u64;
        self.counters.popped_bytes += bytes as u64;
        if let Some(id) = refill {
            self.schedule_refill(channel, id);
        }
        (records > 0).then_some(PollResult::Records { buf, records })
    }

    /// Queues a storage for reading back from disk.
    fn schedule_refill(&mut self, channel: &str, id: u32) {
        if id != 0 && self.refill_queued.insert(id) {
            self.refills.push_back((channel.into(), id));
            self.io.reader.notify();
        }
    }

    /// The next storage to read back (for the reader task).
    pub fn next_refill(&mut self) -> Option<(Rc<str>, u32)> {
        let next = self.refills.pop_front()?;
        self.refill_queued.remove(&next.1);
        Some(next)
    }

    /// What to read next for the storage with overflow id `id` of `channel`.
    pub fn refill_step(&self, channel: &str, id: u32) -> RefillStep {
        let Some(storage) = self
            .channels
            .get(channel)
            .and_then(|ch| ch.storage_by_disk_id(id))
        else {
            return RefillStep::Done;
        };
        if !storage.wants_refill() {
            return RefillStep::Done;
        }
        let max = storage
            .refill_room()
            .clamp(REFILL_READ_MIN, REFILL_READ_MAX);
        match self.disk.read_plan(storage.disk(), max) {
            dmq_storage::disk::ReadPlan::Nothing => RefillStep::Done,
            dmq_storage::disk::ReadPlan::NotYet => RefillStep::NotYet,
            dmq_storage::disk::ReadPlan::Read { at, len } => RefillStep::Read { at, len },
        }
    }

    /// Takes records read at `at` into the storage's memory. Returns the
    /// next step: read again (with the length a large record needs), wait
    /// for writes, or done.
    pub fn refill_apply(&mut self, channel: &str, id: u32, at: Loc, buf: &[u8]) -> RefillStep {
        let Some(storage) = self
            .channels
            .get_mut(channel)
            .and_then(|ch| ch.storage_by_disk_id_mut(id))
        else {
            return RefillStep::Done;
        };
        if storage.disk().head() != Some(at) {
            // Changed while the read was in flight (cleared, or read by a
            // previous pass): plan again.
            return self.refill_step(channel, id);
        }
        let refilled = storage.refill(&mut self.disk, at, buf);
        let step = match refilled {
            Ok(done) => {
                self.counters.refilled_records += done.records;
                if done.records > 0 {
                    self.refilled(channel);
                }
                match done.need {
                    Some(len) if done.records == 0 => {
                        if at.offset.saturating_add(len as u64) > self.disk.written(at.seg) {
                            RefillStep::NotYet
                        } else {
                            RefillStep::Read { at, len }
                        }
                    }
                    _ if done.not_yet => RefillStep::NotYet,
                    // The ring has no room for the next record yet: the next
                    // pop that frees room asks again.
                    _ if done.records == 0 => RefillStep::Done,
                    _ => self.refill_step(channel, id),
                }
            }
            Err(corrupt) => {
                self.abandon_disk(channel, id, &corrupt.to_string());
                RefillStep::Done
            }
        };
        if self.disk.has_pending() {
            self.io.writer.notify();
        }
        step
    }

    /// Gives up a storage's records on disk that cannot be read back.
    pub fn abandon_disk(&mut self, channel: &str, id: u32, reason: &str) {
        let Some(storage) = self
            .channels
            .get_mut(channel)
            .and_then(|ch| ch.storage_by_disk_id_mut(id))
        else {
            return;
        };
        let lost = storage.abandon_disk(&mut self.disk);
        self.counters.disk_errors += 1;
        self.counters.disk_lost_records += lost;
        tracing::error!(
            channel,
            lost,
            "overflow records cannot be read back ({reason}); they are given up"
        );
        self.refilled(channel);
    }

    /// Records came back from disk (or were given up): the channel's waiting
    /// pops look again, and its consumers are answered.
    fn refilled(&mut self, channel: &str) {
        self.wake_pops(channel);
        self.wake_consumers(channel);
    }

    fn wake_pops(&mut self, channel: &str) {
        for waiter in self.pop_waiters.remove(channel).unwrap_or_default() {
            let _ = waiter.send(());
        }
    }

    /// A receiver answered once every push up to `ticket` is on disk
    /// (`Err` if a write failed first); `None` if it is already.
    pub fn durable_waiter(&mut self, ticket: u64) -> Option<oneshot::Receiver<Result<(), ()>>> {
        if self.disk.durable_ticket() >= ticket {
            return None;
        }
        let (tx, rx) = oneshot::channel();
        self.flush_waiters.push_back((ticket, tx));
        self.io.writer.notify();
        Some(rx)
    }

    /// The outcome of one overflow write (for the writer task): a failure
    /// gives up every record not yet written, whose pushes are answered with
    /// an error.
    pub fn write_done(&mut self, job: WriteJob, ok: bool) {
        let lost = self.disk.write_done(job, ok);
        if !ok {
            self.counters.disk_errors += 1;
        }
        if !lost.is_empty() {
            self.counters.disk_lost_records += lost.len() as u64;
            for ch in self.channels.iter_mut() {
                for storage in ch.storages_mut() {
                    DiskWriter::forget(storage.disk_mut(), &lost);
                }
            }
        }
        let durable = self.disk.durable_ticket();
        while let Some((ticket, _)) = self.flush_waiters.front() {
            if *ticket > durable && ok {
                break;
            }
            let (ticket, waiter) = self.flush_waiters.pop_front().expect("front exists");
            let _ = waiter.send(if ticket <= durable { Ok(()) } else { Err(()) });
        }
        if !ok {
            // Pops waiting on records that were given up must look again.
            for (_, waiters) in self.pop_waiters.drain() {
                for waiter in waiters {
                    let _ = waiter.send(());
                }
            }
        }
    }

    /// The maintenance tick: the overflow accepts records again after a
    /// failure, and refusals may be logged again.
    pub fn maintenance(&mut self) {
        self.disk.retry();
        self.refusal_logged = false;
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
    fn produce_batch_spills_past_a_full_ring_in_order() {
        let mut s = Shard::new(ChannelSizes::new(40, Vec::new()).expect("sizes"));
        let batch = encoded(&[b"0123456789", b"1123456789", b"2123456789"]);
        assert!(matches!(
            s.push_encoded(&["c"], &batch),
            Ok(Stored::Disk(_))
        ));
        assert_eq!(s.disk.records_appended(), 1);
        assert_eq!(s.pop("c", false), PopOutcome::Value(b"0123456789".to_vec()));
        assert_eq!(s.pop("c", false), PopOutcome::Value(b"1123456789".to_vec()));
        // The third record is on disk: a Pop must wait for it, not answer Empty.
        assert!(s.pop_would_wait("c"));
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
