//! One queue of records: a memory ring, later followed by a disk overflow.

use crate::ring::{record_size, Ring};

/// Errors of a storage operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// The record does not fit in the memory ring (and there is no overflow
    /// to take it yet).
    #[error("record of {len} bytes does not fit in the memory ring")]
    Full {
        /// Payload length of the refused record.
        len: usize,
    },
}

/// Counters of one storage, for stats and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StorageStats {
    /// Records in the memory ring.
    pub records_memory: usize,
    /// Bytes used in the memory ring, 8-byte headers included (spec Q8).
    pub bytes_memory: usize,
    /// Size of the memory ring.
    pub capacity_bytes: usize,
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

/// One queue: a memory ring (later: followed by a disk overflow), plus
/// cumulative counters.
///
/// Push and pop follow spec 4.5: a record goes to the memory ring if it fits
/// there; pop takes from memory first. Today there is no overflow, so a record
/// that does not fit is refused with [`StorageError::Full`]; the overflow will
/// slot in behind the ring in [`push`](Storage::push) and
/// [`pop`](Storage::pop) without changing this interface.
///
/// A `Storage` lives on exactly one shard thread, inside its [`Channel`]: it
/// is created when the channel is created or gains a subscriber, and dropped
/// when the channel is removed.
///
/// [`Channel`]: crate::Channel
#[derive(Debug)]
pub struct Storage {
    ring: Ring,
    pushed_records: u64,
    pushed_bytes: u64,
    popped_records: u64,
    popped_bytes: u64,
}

impl Storage {
    /// An empty storage whose memory ring has `capacity_bytes` bytes.
    pub fn new(capacity_bytes: usize) -> Storage {
        Storage {
            ring: Ring::with_capacity(capacity_bytes),
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

    /// Number of records.
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// True if there is no record.
    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }

    /// Would [`push`](Storage::push) of a `payload_len`-byte record succeed now?
    pub fn fits(&self, payload_len: usize) -> bool {
        self.ring.fits(payload_len)
    }

    /// Appends a record; [`StorageError::Full`] if it does not fit, and then
    /// nothing changes.
    pub fn push(&mut self, payload: &[u8]) -> Result<(), StorageError> {
        if !self.ring.push(payload) {
            return Err(StorageError::Full { len: payload.len() });
        }
        self.pushed_records += 1;
        self.pushed_bytes += payload.len() as u64;
        Ok(())
    }

    /// Removes the oldest record and returns its payload (valid until the
    /// next mutation).
    pub fn pop(&mut self) -> Option<&[u8]> {
        let payload = self.ring.pop()?;
        self.popped_records += 1;
        self.popped_bytes += payload.len() as u64;
        Some(payload)
    }

    /// Payload length of the record the next [`pop`](Storage::pop) returns.
    pub fn front_len(&self) -> Option<usize> {
        self.ring.front_len()
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
        (records, payload_bytes)
    }

    /// Removes every record. The cumulative counters are kept.
    pub fn clear(&mut self) {
        self.ring.clear();
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> StorageStats {
        StorageStats {
            records_memory: self.ring.len(),
            bytes_memory: self.ring.used_bytes(),
            capacity_bytes: self.ring.capacity(),
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

    fn storage_with(records: &[&[u8]]) -> Storage {
        let mut s = Storage::new(1000);
        for r in records {
            s.push(r).unwrap();
        }
        s
    }

    #[test]
    fn push_pop_and_counters() {
        let mut s = Storage::new(64);
        s.push(b"hello").unwrap();
        s.push(b"").unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(
            s.stats(),
            StorageStats {
                records_memory: 2,
                bytes_memory: 8 + 5 + 8,
                capacity_bytes: 64,
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
    fn full_is_an_error_and_changes_nothing() {
        let mut s = Storage::new(20);
        assert!(s.fits(12));
        assert!(!s.fits(13));
        assert_eq!(s.push(&[0; 13]), Err(StorageError::Full { len: 13 }));
        s.push(b"abc").unwrap();
        assert_eq!(s.push(b"abcdefgh"), Err(StorageError::Full { len: 8 }));
        assert_eq!(s.stats().pushed_records, 1);
        assert_eq!(s.len(), 1);
        assert_eq!(
            StorageError::Full { len: 8 }.to_string(),
            "record of 8 bytes does not fit in the memory ring"
        );
    }

    #[test]
    fn clear_keeps_counters() {
        let mut s = storage_with(&[b"a", b"bc"]);
        s.clear();
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
