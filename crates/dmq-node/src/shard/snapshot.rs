//! What a shard reports about itself to the admin socket, the metrics and
//! stats.log: its storages with their figures, its overflow, its counters
//! and its probes. Built on the shard's thread, sent to shard 0.

use dmq_storage::Channels;

use crate::metrics::probes::ProbesSnapshot;

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

/// Every storage of `channels` with its figures, sorted by name.
pub fn storage_infos(channels: &Channels) -> Vec<StorageInfo> {
    let mut storages: Vec<StorageInfo> = channels
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
    storages
}
