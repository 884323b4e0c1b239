//! The segment table of a shard's overflow: which segments exist, how far
//! each is appended and written, how many live records each holds, the
//! space they take against `overflow.disk_limit`; what can be read back now
//! (read plans), which segments can be deleted (reclaim) and their index at
//! a clean stop.
//!
//! Owned by the shard's [`DiskWriter`](super::DiskWriter), which appends to
//! it; read by the reader and the index writer through
//! [`DiskWriter::segments`](super::DiskWriter::segments).

use std::collections::BTreeMap;

use super::error::DiskError;
use super::layout::{DiskConfig, Loc, HEADER, MAGIC_LEN};
use super::queue::DiskQueue;
use crate::files::{IndexEntry, OVERFLOW_HEADER_LEN};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Segment {
    /// Bytes appended (magic included).
    pub(super) end: u64,
    /// Bytes written to the file, links included.
    pub(super) durable: u64,
    /// Records not yet read back, dropped or cleared.
    pub(super) live: u64,
}

/// What to read next for a storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadPlan {
    /// Nothing on disk.
    Nothing,
    /// The next record is not written yet: wait for the writes in flight.
    NotYet,
    /// Read `len` bytes at `at` and pass them to [`DiskWriter::consume`](super::DiskWriter::consume).
    Read { at: Loc, len: usize },
}

/// A shard's segments (see the module documentation).
#[derive(Debug)]
pub struct Segments {
    pub(super) config: DiskConfig,
    pub(super) table: BTreeMap<u32, Segment>,
    /// The segment records are appended to.
    pub(super) current: Option<u32>,
    pub(super) next_seq: u32,
}

impl Segments {
    pub(super) fn new(config: DiskConfig) -> Segments {
        Segments {
            config,
            table: BTreeMap::new(),
            current: None,
            next_seq: 1,
        }
    }

    /// Segment numbers that exist (or are being created), oldest first.
    pub fn seqs(&self) -> impl Iterator<Item = u32> + '_ {
        self.table.keys().copied()
    }

    /// How many segments exist.
    pub fn count(&self) -> usize {
        self.table.len()
    }

    /// Bytes of all segments (what the disk limit counts).
    pub fn allocated(&self) -> u64 {
        self.table
            .values()
            .map(|s| s.end.max(self.config.segment_size))
            .sum()
    }
    /// Bytes appended to segments, magic and headers included.
    pub fn file_bytes(&self) -> u64 {
        self.table.values().map(|s| s.end).sum()
    }
    /// Records on disk not yet read back.
    pub fn live_records(&self) -> u64 {
        self.table.values().map(|s| s.live).sum()
    }
    /// Bytes of segment `seq` written to its file.
    pub fn written(&self, seq: u32) -> u64 {
        self.table.get(&seq).map_or(0, |s| s.durable)
    }

    /// The segment `len` more bytes go to if it is the current one: they fit
    /// in it, or it is still empty.
    pub(super) fn current_with_room(&self, len: u64) -> Option<u32> {
        let seg = self.current?;
        let end = self.table[&seg].end;
        (end + len <= self.config.segment_size || end == MAGIC_LEN).then_some(seg)
    }

    /// Starts a new segment for `len` bytes if the limit allows; the caller
    /// appends its magic.
    pub(super) fn create(&mut self, len: u64) -> Result<u32, DiskError> {
        let size = (MAGIC_LEN + len).max(self.config.segment_size);
        if self.config.limit > 0 && self.allocated() + size > self.config.limit {
            return Err(DiskError::Limit);
        }
        let seg = self.next_seq;
        self.next_seq += 1;
        self.table.insert(
            seg,
            Segment {
                end: 0,
                durable: 0,
                live: 0,
            },
        );
        self.current = Some(seg);
        Ok(seg)
    }

    /// `records` live records fewer in `seg` (read back, dropped or lost).
    pub(super) fn release(&mut self, seg: u32, records: u64) {
        if let Some(s) = self.table.get_mut(&seg) {
            s.live = s.live.saturating_sub(records);
        }
    }

    /// What to read next for `q`, at most about `max` bytes.
    pub fn read_plan(&self, q: &DiskQueue, max: usize) -> ReadPlan {
        let Some(head) = q.head() else {
            return ReadPlan::Nothing;
        };
        let durable = self.table.get(&head.seg).map_or(0, |s| s.durable);
        if durable < head.offset + HEADER {
            return ReadPlan::NotYet;
        }
        let len = (durable - head.offset).min(max.max(OVERFLOW_HEADER_LEN) as u64);
        ReadPlan::Read {
            at: head,
            len: len as usize,
        }
    }

    /// Segments that can be deleted now, oldest first: from the head, while
    /// no record in them is live and they are not being appended to. When
    /// the whole overflow is empty and written (`nothing_pending`: no byte
    /// waits to be written), every segment goes.
    pub fn reclaim(&mut self, nothing_pending: bool) -> Vec<u32> {
        let mut gone = Vec::new();
        let everything = self.live_records() == 0 && nothing_pending;
        for (&seq, s) in &self.table {
            let closed = Some(seq) != self.current;
            let written = s.durable >= s.end;
            if s.live == 0 && written && (closed || everything) {
                gone.push(seq);
            } else {
                break;
            }
        }
        for seq in &gone {
            self.table.remove(seq);
            if Some(*seq) == self.current {
                self.current = None;
            }
        }
        gone
    }
    /// The index of every segment in the original's `ofchannels.csv` format
    /// (spec 5.3): one line per storage with records in that segment, its
    /// records and bytes there and the offsets of its oldest and newest
    /// records there. With each segment as `overflow.dat`, the pair reads
    /// like the original's files. `queues` are the storages and their names.
    pub fn index<'q>(
        &self,
        queues: impl IntoIterator<Item = (String, &'q DiskQueue)>,
    ) -> BTreeMap<u32, Vec<IndexEntry>> {
        let mut index: BTreeMap<u32, Vec<IndexEntry>> = BTreeMap::new();
        for (name, q) in queues {
            for part in q.parts.iter().filter(|p| p.records > 0) {
                let end = self.table.get(&part.seg).map_or(0, |s| s.end);
                if part.last >= end || part.next > part.last {
                    // Only after a failed write: its records are unknown.
                    continue;
                }
                index.entry(part.seg).or_default().push(IndexEntry {
                    storage_name: name.clone(),
                    records: part.records,
                    bytes: part.bytes,
                    first_offset: part.next,
                    last_offset: part.last,
                });
            }
        }
        for entries in index.values_mut() {
            entries.sort_by_key(|e| e.first_offset);
        }
        index
    }
}
