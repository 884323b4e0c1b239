//! One queue of records: a memory ring followed by a disk overflow.

use crate::disk::{Consumed, Corrupt, DiskError, DiskQueue, DiskWriter, Loc};
use crate::ring::{record_size, Ring};

/// Errors of a storage operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// The record does not fit in the memory ring and the disk overflow
    /// cannot take it.
    #[error("record of {len} bytes: {cause}")]
    Disk {
        /// Payload length of the refused record.
        len: usize,
        cause: DiskError,
    },
}

/// Where a pushed record went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// In the memory ring.
    Memory,
    /// Appended to the disk overflow; acknowledge it once the shard's
    /// durable ticket reaches this one.
    Disk(u64),
}

impl Stored {
    /// The later of two outcomes (for fan-out and batches).
    pub fn max(self, other: Stored) -> Stored {
        match (self, other) {
            (Stored::Disk(a), Stored::Disk(b)) => Stored::Disk(a.max(b)),
            (Stored::Disk(a), Stored::Memory) | (Stored::Memory, Stored::Disk(a)) => {
                Stored::Disk(a)
            }
            (Stored::Memory, Stored::Memory) => Stored::Memory,
        }
    }
}

/// Counters of one storage, for stats and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StorageStats {
    /// Records in memory.
    pub records_memory: usize,
    /// Bytes used in the memory ring, 8-byte headers included (spec Q8).
    pub bytes_memory: usize,
    /// Size of the memory ring.
    pub capacity_bytes: usize,
    /// Records in the disk overflow.
    pub records_overflow: u64,
    /// Payload bytes in the disk overflow (headers excluded, spec Q8).
    pub bytes_overflow: u64,
    /// Records pushed since the storage was created.
    pub pushed_records: u64,
    /// Payload bytes pushed since the storage was created.
    pub pushed_bytes: u64,
    /// Records popped since the storage was created (skipped empty records
    /// included).
    pub popped_records: u64,
    /// Payload bytes popped since the storage was created.
    pub popped_bytes: u64,
}

/// One queue: a memory ring, then the records on disk, plus cumulative
/// counters.
///
/// **Order**: FIFO across memory and disk. A record goes to the ring only
/// while the storage has nothing on disk; once a record spilled, every new
/// record goes to disk behind it until the disk part is empty again. Records
/// come back from disk into the ring (read-ahead, [`refill`]) in order, so
/// the ring always holds the oldest records. This differs on purpose from
/// the original (spec 4.5, Q5), which let new records overtake spilled ones.
///
/// A record read back that is larger than the whole ring waits in a
/// one-record slot in front of the ring; nothing enters the ring until it
/// is popped.
///
/// A `Storage` lives on exactly one shard thread, inside its [`Channel`].
///
/// [`Channel`]: crate::Channel
/// [`refill`]: Storage::refill
#[derive(Debug)]
pub struct Storage {
    ring: Ring,
    disk: DiskQueue,
    /// An overflow record the ring is too small to hold; older than the ring.
    front: Option<Vec<u8>>,
    /// The last record popped from `front`, lent out by [`Storage::pop`]
    /// until [`Storage::release_lent`].
    lent: Vec<u8>,
    pushed_records: u64,
    pushed_bytes: u64,
    popped_records: u64,
    popped_bytes: u64,
}

impl Storage {
    /// An empty storage whose memory ring has `capacity_bytes` bytes.
    pub fn new(capacity_bytes: usize) -> Storage {
        Storage::with_ring(Ring::with_capacity(capacity_bytes))
    }

    /// An empty storage with this ring.
    pub fn with_ring(ring: Ring) -> Storage {
        Storage {
            ring,
            disk: DiskQueue::default(),
            front: None,
            lent: Vec::new(),
            pushed_records: 0,
            pushed_bytes: 0,
            popped_records: 0,
            popped_bytes: 0,
        }
    }

    /// The memory ring (read-only: records go in and out through the storage
    /// so the counters stay right).
    pub fn ring(&self) -> &Ring {
        &self.ring
    }

    /// The records on disk.
    pub fn disk(&self) -> &DiskQueue {
        &self.disk
    }

    /// Puts back the disk part found at startup.
    pub fn set_disk(&mut self, disk: DiskQueue) {
        self.disk = disk;
    }

    /// Number of records, in memory and on disk.
    pub fn len(&self) -> usize {
        self.memory_len() + self.disk.records() as usize
    }

    /// Records in memory.
    pub fn memory_len(&self) -> usize {
        self.ring.len() + usize::from(self.front.is_some())
    }

    /// True if there is no record, in memory or on disk.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when memory is empty but records wait on disk: a Pop must wait
    /// for them to be read back.
    pub fn waits_on_disk(&self) -> bool {
        self.memory_len() == 0 && !self.disk.is_empty()
    }

    /// True when records on disk should be read back now: memory is empty
    /// or at least half of the ring is free.
    pub fn wants_refill(&self) -> bool {
        !self.disk.is_empty()
            && self.front.is_none()
            && (self.ring.is_empty() || self.ring.free_bytes() >= self.ring.capacity() / 2)
    }

    /// Payload bytes the ring can take in one read-ahead.
    pub fn refill_room(&self) -> usize {
        self.ring.free_bytes()
    }

    /// Appends a record: to the ring if it fits and nothing is on disk,
    /// otherwise to the disk overflow (`name` is the storage name, asked
    /// for when the overflow records it).
    pub fn push(
        &mut self,
        payload: &[u8],
        disk: &mut DiskWriter,
        name: &dyn Fn() -> String,
    ) -> Result<Stored, StorageError> {
        let stored = if self.disk.is_empty() && self.front.is_none() && self.ring.push(payload) {
            Stored::Memory
        } else {
            let ticket = disk
                .append(&mut self.disk, name, payload)
                .map_err(|cause| StorageError::Disk {
                    len: payload.len(),
                    cause,
                })?;
            Stored::Disk(ticket)
        };
        self.pushed_records += 1;
        self.pushed_bytes += payload.len() as u64;
        Ok(stored)
    }

    /// Appends a record to the ring only (loading a dump); false if it does
    /// not fit or records are on disk already.
    pub fn push_memory(&mut self, payload: &[u8]) -> bool {
        self.disk.is_empty() && self.front.is_none() && self.ring.push(payload)
    }

    /// Removes the oldest record in memory and returns its payload (valid
    /// until the next mutation). `None` when memory is empty; see
    /// [`waits_on_disk`](Storage::waits_on_disk).
    pub fn pop(&mut self) -> Option<&[u8]> {
        let payload = match self.front.take() {
            Some(record) => {
                self.lent = record;
                &self.lent[..]
            }
            None => self.ring.pop()?,
        };
        self.popped_records += 1;
        self.popped_bytes += payload.len() as u64;
        Some(payload)
    }

    /// Frees the record the last [`pop`](Storage::pop) lent from the slot in
    /// front of the ring, once the caller is done with it (it could be
    /// large, and the storage may stay idle for long).
    pub fn release_lent(&mut self) {
        self.lent = Vec::new();
    }

    /// Payload length of the record the next [`pop`](Storage::pop) returns.
    pub fn front_len(&self) -> Option<usize> {
        match &self.front {
            Some(record) => Some(record.len()),
            None => self.ring.front_len(),
        }
    }

    /// The records in memory, oldest first (for a dump).
    pub fn memory_records(&self) -> impl Iterator<Item = &[u8]> {
        self.front.as_deref().into_iter().chain(self.ring.iter())
    }

    /// Takes the records found in `buf` (read from disk at `at`) into memory,
    /// in order, as long as they fit.
    pub fn refill(
        &mut self,
        disk: &mut DiskWriter,
        at: Loc,
        buf: &[u8],
    ) -> Result<Consumed, Corrupt> {
        let (ring, front) = (&mut self.ring, &mut self.front);
        disk.consume(&mut self.disk, at, buf, |payload| {
            if front.is_some() {
                false
            } else if ring.push(payload) {
                true
            } else if ring.is_empty() {
                *front = Some(payload.to_vec());
                true
            } else {
                false
            }
        })
    }

    /// Forgets the disk part (it could not be read back); returns the
    /// records lost.
    pub fn abandon_disk(&mut self, disk: &mut DiskWriter) -> u64 {
        let lost = self.disk.records();
        disk.drop_queue(&mut self.disk);
        lost
    }

    /// The disk queue, for the overflow's bookkeeping (rename, failed writes).
    pub fn disk_mut(&mut self) -> &mut DiskQueue {
        &mut self.disk
    }

    /// Pops records and appends each as `u64 LE len + bytes` to `out` (that is
    /// exactly the legacy Consume stream encoding and the neo Consume batch
    /// encoding), while the total appended stays <= `max_bytes`; always takes
    /// at least one record if there is one, even if it alone exceeds
    /// `max_bytes`. Returns `(records, payload_bytes)` appended.
    ///
    /// Empty (zero-length) records are skipped and consumed (they count as
    /// "nothing", spec 3.8 item 8) unless `keep_empty` is true.
    pub fn pop_into(
        &mut self,
        out: &mut Vec<u8>,
        max_bytes: usize,
        keep_empty: bool,
    ) -> (usize, usize) {
        let mut appended = 0usize;
        let mut records = 0usize;
        let mut payload_bytes = 0usize;
        while let Some(len) = self.front_len() {
            if len == 0 && !keep_empty {
                self.pop();
                continue;
            }
            let size = record_size(len).unwrap_or(usize::MAX);
            if records > 0 && appended.saturating_add(size) > max_bytes {
                break;
            }
            let Some(payload) = self.pop() else {
                break;
            };
            out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
            out.extend_from_slice(payload);
            appended = appended.saturating_add(size);
            records += 1;
            payload_bytes += len;
        }
        self.release_lent();
        (records, payload_bytes)
    }

    /// Removes every record, in memory and on disk. The cumulative counters
    /// are kept.
    pub fn clear(&mut self, disk: &mut DiskWriter) {
        self.ring.clear();
        self.front = None;
        disk.drop_queue(&mut self.disk);
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> StorageStats {
        StorageStats {
            records_memory: self.memory_len(),
            bytes_memory: self.ring.used_bytes() + self.front.as_ref().map_or(0, |r| r.len() + 8),
            capacity_bytes: self.ring.capacity(),
            records_overflow: self.disk.records(),
            bytes_overflow: self.disk.bytes(),
            pushed_records: self.pushed_records,
            pushed_bytes: self.pushed_bytes,
            popped_records: self.popped_records,
            popped_bytes: self.popped_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes a `u64 LE len + bytes` sequence.
    fn decode(mut buf: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some((header, rest)) = buf.split_first_chunk::<8>() {
            let len = u64::from_le_bytes(*header) as usize;
            out.push(rest[..len].to_vec());
            buf = &rest[len..];
        }
        assert!(buf.is_empty());
        out
    }

    fn writer() -> DiskWriter {
        DiskWriter::new(crate::disk::DiskConfig {
            segment_size: 1 << 20,
            limit: 0,
        })
    }

    fn name() -> String {
        "test".to_owned()
    }

    fn push(s: &mut Storage, record: &[u8]) -> Stored {
        s.push(record, &mut writer(), &name).expect("push")
    }

    fn storage_with(records: &[&[u8]]) -> Storage {
        let mut s = Storage::new(1000);
        for r in records {
            assert_eq!(push(&mut s, r), Stored::Memory);
        }
        s
    }

    #[test]
    fn push_pop_and_counters() {
        let mut s = Storage::new(64);
        push(&mut s, b"hello");
        push(&mut s, b"");
        assert_eq!(s.len(), 2);
        assert_eq!(
            s.stats(),
            StorageStats {
                records_memory: 2,
                bytes_memory: 8 + 5 + 8,
                capacity_bytes: 64,
                records_overflow: 0,
                bytes_overflow: 0,
                pushed_records: 2,
                pushed_bytes: 5,
                popped_records: 0,
                popped_bytes: 0,
            }
        );
        assert_eq!(s.pop(), Some(&b"hello"[..]));
        assert_eq!(s.pop(), Some(&b""[..]));
        assert_eq!(s.pop(), None);
        let st = s.stats();
        assert_eq!((st.popped_records, st.popped_bytes), (2, 5));
        assert_eq!((st.records_memory, st.bytes_memory), (0, 0));
        assert!(s.is_empty());
    }

    #[test]
    fn a_record_that_does_not_fit_goes_to_disk_and_so_do_later_ones() {
        let mut s = Storage::new(20);
        let mut w = writer();
        assert_eq!(s.push(b"abc", &mut w, &name), Ok(Stored::Memory));
        assert!(matches!(
            s.push(b"abcdefgh", &mut w, &name),
            Ok(Stored::Disk(_))
        ));
        // Fits the ring, but goes behind the spilled record.
        assert!(matches!(s.push(b"x", &mut w, &name), Ok(Stored::Disk(_))));
        assert_eq!((s.len(), s.memory_len()), (3, 1));
        assert_eq!(s.pop(), Some(&b"abc"[..]));
        assert!(s.waits_on_disk());
        assert!(s.wants_refill());
        let st = s.stats();
        assert_eq!((st.records_overflow, st.bytes_overflow), (2, 9));
        s.clear(&mut w);
        assert!(s.is_empty());
        assert_eq!(w.segments().live_records(), 0);
    }

    #[test]
    fn clear_keeps_counters() {
        let mut s = storage_with(&[b"a", b"bc"]);
        s.clear(&mut writer());
        assert!(s.is_empty());
        assert_eq!(s.ring().used_bytes(), 0);
        assert_eq!(s.stats().pushed_records, 2);
        assert_eq!(s.stats().popped_records, 0);
    }

    #[test]
    fn pop_into_respects_max_bytes() {
        let mut s = storage_with(&[b"aaaa", b"bbbb", b"cccc"]);
        let mut out = b"prefix".to_vec();
        // Each record takes 12 bytes; 30 allows two.
        assert_eq!(s.pop_into(&mut out, 30, false), (2, 8));
        assert_eq!(&out[..6], b"prefix");
        assert_eq!(decode(&out[6..]), [b"aaaa", b"bbbb"]);
        assert_eq!(s.len(), 1);
        // Exactly at the limit.
        let mut s = storage_with(&[b"aaaa", b"bbbb", b"cccc"]);
        let mut out = Vec::new();
        assert_eq!(s.pop_into(&mut out, 24, false), (2, 8));
        assert_eq!(out.len(), 24);
        // Everything.
        let mut out = Vec::new();
        assert_eq!(s.pop_into(&mut out, usize::MAX, false), (1, 4));
        assert_eq!(decode(&out), [b"cccc"]);
        assert_eq!(s.pop_into(&mut out, usize::MAX, false), (0, 0));
    }

    #[test]
    fn pop_into_takes_one_oversized_record() {
        let mut s = storage_with(&[&[1u8; 50], b"x"]);
        let mut out = Vec::new();
        assert_eq!(s.pop_into(&mut out, 10, false), (1, 50));
        assert_eq!(out.len(), 58);
        let mut out = Vec::new();
        assert_eq!(s.pop_into(&mut out, 0, false), (1, 1));
        assert_eq!(decode(&out), [b"x"]);
    }

    #[test]
    fn pop_into_skips_empty_records_unless_kept() {
        let mut s = storage_with(&[b"", b"a", b"", b"", b"b", b""]);
        let mut out = Vec::new();
        assert_eq!(s.pop_into(&mut out, 1000, false), (2, 2));
        assert_eq!(decode(&out), [b"a", b"b"]);
        assert!(s.is_empty());
        assert_eq!(s.stats().popped_records, 6);

        let mut s = storage_with(&[b"", b""]);
        let mut out = Vec::new();
        assert_eq!(s.pop_into(&mut out, 1000, false), (0, 0));
        assert!(out.is_empty());
        assert!(s.is_empty());

        let mut s = storage_with(&[b"", b"a", b""]);
        let mut out = Vec::new();
        assert_eq!(s.pop_into(&mut out, 1000, true), (3, 1));
        assert_eq!(decode(&out), [&b""[..], b"a", b""]);
        // Kept empty records count against max_bytes (8 bytes each).
        let mut s = storage_with(&[b"", b"", b""]);
        let mut out = Vec::new();
        assert_eq!(s.pop_into(&mut out, 16, true), (2, 0));
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn pop_into_stops_before_a_record_that_would_exceed() {
        // An empty record skipped before the stop does not count.
        let mut s = storage_with(&[b"aaaa", b"", b"bbbbbbbbbb", b"c"]);
        let mut out = Vec::new();
        assert_eq!(s.pop_into(&mut out, 20, false), (1, 4));
        assert_eq!(s.front_len(), Some(10));
        assert_eq!(s.len(), 2);
    }
}
