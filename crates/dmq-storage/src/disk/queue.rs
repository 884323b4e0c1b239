//! The records one storage has on disk: a queue of parts, one per segment
//! holding its records, each a chain of links inside its segment.

use std::collections::VecDeque;

use super::layout::Loc;

/// The records of one storage in one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Part {
    pub(super) seg: u32,
    /// Offset of the next unread record.
    pub(super) next: u64,
    /// Offset of the newest record (for the index).
    pub(super) last: u64,
    pub(super) records: u64,
    pub(super) bytes: u64,
}

/// The records one storage has on disk, oldest first (kept in the storage).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DiskQueue {
    /// Overflow channel id; 0 until the first record goes to disk.
    pub(super) id: u32,
    pub(super) records: u64,
    /// Payload bytes.
    pub(super) bytes: u64,
    pub(super) parts: VecDeque<Part>,
    /// The newest record and its length, to link the next one to it.
    pub(super) tail: Option<(Loc, u64)>,
}

impl DiskQueue {
    /// Records on disk.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Payload bytes on disk.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// The overflow channel id (0: never spilled).
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Where the next record to read back is.
    pub fn head(&self) -> Option<Loc> {
        self.parts.front().map(|p| Loc {
            seg: p.seg,
            offset: p.next,
        })
    }

    /// Forgets every record (the caller wrote a drop meta record).
    pub(super) fn reset(&mut self) -> Vec<Part> {
        let parts = std::mem::take(&mut self.parts).into_iter().collect();
        *self = DiskQueue::default();
        parts
    }
}
