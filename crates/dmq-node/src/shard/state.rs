//! The [`Shard`] itself: one shard's channels, consumers, overflow state,
//! counters and probes, with its construction, its snapshot and the restore
//! of channels loaded at start. The operations are in the sibling modules
//! (`data`, `refill`, `apply`), each an `impl Shard` block.

use std::collections::HashMap;

use dmq_storage::disk::{DiskConfig, DiskQueue, DiskWriter};
use dmq_storage::files::ChannelContent;
use dmq_storage::{ChannelSizes, Channels, Stored};

use super::consumers::Consumers;
use super::overflow::Overflow;
use super::snapshot::{storage_infos, OverflowSnapshot, ShardCounters, ShardSnapshot};
use crate::metrics::probes::Probes;

/// The channels owned by one shard and the consumers registered on them.
///
/// Lives on its shard's executor thread in an `Rc<RefCell<_>>`, for the life
/// of the process. Every operation is synchronous and runs to completion, so
/// no borrow is ever held across an await.
pub struct Shard {
    pub(super) channels: Channels,
    pub(super) consumers: Consumers,
    pub counters: ShardCounters,
    /// What this shard's connections did (requests, bytes, routing).
    pub probes: Probes,
    /// The shard's disk overflow (bookkeeping and waiters; the I/O tasks do
    /// the I/O).
    pub overflow: Overflow,
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
            consumers: Consumers::default(),
            counters: ShardCounters::default(),
            probes: Probes::default(),
            overflow: Overflow::new(disk),
        }
    }

    pub fn channels(&self) -> &Channels {
        &self.channels
    }

    /// Every storage with its figures, sorted by name, and the shard's probes.
    /// `reset_max_active` starts a new max-active window (stats.log does).
    pub fn snapshot(&self, reset_max_active: bool) -> ShardSnapshot {
        let disk = &self.overflow.disk;
        ShardSnapshot {
            channels: self.channels.len(),
            consumers: self.consumers.len(),
            storages: storage_infos(&self.channels),
            overflow: OverflowSnapshot {
                written_records: disk.records_appended(),
                segments: disk.segments().count(),
                file_bytes: disk.segments().file_bytes(),
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
    /// the storage's disk part found at startup, if any. Returns where the
    /// records went (`Disk(ticket)`: the caller waits for that ticket).
    pub fn restore(
        &mut self,
        channel: &str,
        content: ChannelContent,
        disk_parts: &mut HashMap<String, DiskQueue>,
    ) -> Stored {
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
                self.channels
                    .subscribe(channel, sub, &mut self.overflow.disk);
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
                if let Ok(s) = storage.push(record, &mut self.overflow.disk, &|| name.clone()) {
                    stored = stored.max(s);
                }
            }
            if !storage.disk().is_empty() {
                self.overflow.schedule_refill(channel, storage.disk().id());
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
}
