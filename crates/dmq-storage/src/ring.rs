//! The memory ring: a fixed-size byte buffer holding variable-length records
//! in FIFO order, with the exact placement rules of the original
//! `FlexibleByteRingQueue` (spec 5.1).

use std::fmt;
use std::iter::FusedIterator;

/// Size of the record header: the payload length as a little-endian `u64`.
pub const RECORD_HEADER_LEN: usize = 8;

/// Bytes a record with `payload_len` payload bytes takes in the ring
/// (header included), or `None` if that overflows `usize`.
pub fn record_size(payload_len: usize) -> Option<usize> {
    payload_len.checked_add(RECORD_HEADER_LEN)
}

/// The `FlexibleByteRingQueue` of spec 5.1, with bit-exact semantics.
///
/// A record is a `u64` little-endian length header followed by the payload,
/// with no padding. A record is always stored contiguously: after the write
/// position if it fits before the end of the buffer, otherwise (by wrapping)
/// at offset 0 if it fits before the read position. The end of the valid data
/// before a wrap is remembered in `gap`. So a record may not fit although the
/// total free space would be enough; the storage then sends it elsewhere.
/// When the last record is popped all positions go back to 0; when a pop
/// reaches `gap` the read position wraps to 0.
///
/// The capacity is fixed at construction and never grows. The buffer is
/// allocated once, zeroed, so the operating system maps its pages lazily: an
/// idle ring costs address space, not memory.
///
/// A `Ring` lives on exactly one shard thread, inside its [`Storage`]; it is
/// created with the storage and dropped with it.
///
/// [`Storage`]: crate::Storage
pub struct Ring {
    buf: Box<[u8]>,
    /// Offset of the oldest record's header.
    read_from: usize,
    /// Offset where the next record goes (if it fits there).
    write_to: usize,
    /// End of the valid data at the rear of the buffer; equal to `write_to`
    /// whenever `read_from < write_to`.
    gap: usize,
    /// Number of records.
    items: usize,
}

impl Ring {
    /// A ring of exactly `capacity_bytes` bytes (headers included). A
    /// capacity below [`RECORD_HEADER_LEN`] is allowed; nothing fits then.
    pub fn with_capacity(capacity_bytes: usize) -> Ring {
        Ring::from_buf(vec![0u8; capacity_bytes].into_boxed_slice())
    }

    /// Like [`with_capacity`](Ring::with_capacity), but `None` instead of
    /// aborting the process when the memory cannot be had (too many
    /// mappings, address space or overcommit limits).
    pub fn try_with_capacity(capacity_bytes: usize) -> Option<Ring> {
        if capacity_bytes == 0 {
            return Some(Ring::with_capacity(0));
        }
        let layout = std::alloc::Layout::array::<u8>(capacity_bytes).ok()?;
        // SAFETY: `layout` has a non-zero size. Zeroed memory from the
        // allocator is lazily mapped (calloc), as with `vec![0; n]`.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        if ptr.is_null() {
            return None;
        }
        // SAFETY: `ptr` was allocated by the global allocator with the layout
        // of `[u8; capacity_bytes]` and is initialised (zeroed); the box
        // takes ownership and frees it with that same layout.
        let buf = unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, capacity_bytes)) };
        Some(Ring::from_buf(buf))
    }

    fn from_buf(buf: Box<[u8]>) -> Ring {
        Ring {
            // `vec![0; n]` allocates with calloc, whose fresh pages are mapped lazily.
            buf,
            read_from: 0,
            write_to: 0,
            gap: 0,
            items: 0,
        }
    }

    /// Free bytes (not all of them contiguous).
    pub fn free_bytes(&self) -> usize {
        self.capacity() - self.used_bytes()
    }

    /// Size of the buffer in bytes.
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.items
    }

    /// True if the ring holds no record.
    pub fn is_empty(&self) -> bool {
        self.items == 0
    }

    /// Bytes taken by the records, headers included (spec `used_space`).
    pub fn used_bytes(&self) -> usize {
        if self.items == 0 {
            0
        } else if self.write_to > self.read_from {
            self.write_to - self.read_from
        } else {
            // Wrapped: data[read_from .. gap] and data[0 .. write_to].
            self.gap - self.read_from + self.write_to
        }
    }

    /// Would [`push`](Ring::push) of a `payload_len`-byte record succeed now?
    /// It needs `8 + payload_len` contiguous free bytes.
    pub fn fits(&self, payload_len: usize) -> bool {
        record_size(payload_len).is_some_and(|size| self.placement(size).is_some())
    }

    /// Appends a record. Returns false, changing nothing, if it does not fit.
    /// A zero-length payload is allowed and stores just a header.
    pub fn push(&mut self, payload: &[u8]) -> bool {
        let Some(size) = record_size(payload.len()) else {
            return false;
        };
        let Some(start) = self.placement(size) else {
            return false;
        };
        let end = start + size;
        let Some((header, body)) = self
            .buf
            .get_mut(start..end)
            .and_then(|dst| dst.split_first_chunk_mut::<RECORD_HEADER_LEN>())
        else {
            // `placement` only returns offsets with `size` bytes in the buffer.
            return false;
        };
        *header = (payload.len() as u64).to_le_bytes();
        body.copy_from_slice(payload);

        self.write_to = end;
        // Not wrapped (empty before, or appended at the rear): the valid data
        // ends here. After a wrap the old `gap` stays.
        if self.write_to > self.read_from {
            self.gap = self.write_to;
        }
        self.items += 1;
        true
    }

    /// Removes the oldest record and returns its payload. The slice borrows
    /// the ring, so it is valid until the next mutation.
    pub fn pop(&mut self) -> Option<&[u8]> {
        if self.items == 0 {
            return None;
        }
        let record = record_at(&self.buf, self.read_from);
        debug_assert!(record.is_some(), "ring invariant broken: {self:?}");
        let Some((start, end)) = record else {
            // Unreachable while the invariants hold; in a release build we
            // drop the (corrupt) content rather than panic.
            self.clear();
            return None;
        };

        self.items -= 1;
        self.read_from = end;
        if self.items == 0 {
            self.clear();
        } else if self.read_from == self.gap {
            // End of the rear part: wrap the read position; the rest of the
            // data is data[0 .. write_to].
            self.read_from = 0;
            self.gap = self.write_to;
        }
        self.buf.get(start..end)
    }

    /// Payload length of the oldest record, if any.
    pub fn front_len(&self) -> Option<usize> {
        if self.items == 0 {
            return None;
        }
        record_at(&self.buf, self.read_from).map(|(start, end)| end - start)
    }

    /// The records' payloads in pop order, without removing them (for dumps).
    pub fn iter(&self) -> RingIter<'_> {
        RingIter {
            buf: &self.buf,
            pos: self.read_from,
            gap: self.gap,
            remaining: self.items,
        }
    }

    /// The unread bytes (records with their headers) in pop order, as two
    /// slices like `VecDeque::as_slices`: the second is empty unless the ring
    /// has wrapped. Their concatenation is the data part of a `.rq` dump
    /// (spec 5.2).
    pub fn as_slices(&self) -> (&[u8], &[u8]) {
        if self.items == 0 {
            (&[], &[])
        } else if self.read_from < self.write_to {
            let head = self.buf.get(self.read_from..self.write_to);
            (head.unwrap_or_default(), &[])
        } else {
            let head = self.buf.get(self.read_from..self.gap);
            let tail = self.buf.get(..self.write_to);
            (head.unwrap_or_default(), tail.unwrap_or_default())
        }
    }

    /// Removes every record; all positions go back to 0. The capacity stays.
    pub fn clear(&mut self) {
        self.read_from = 0;
        self.write_to = 0;
        self.gap = 0;
        self.items = 0;
    }

    /// Where a record of `size` bytes (header included) would start, or
    /// `None` if it does not fit. The three cases of spec 5.1.
    fn placement(&self, size: usize) -> Option<usize> {
        let capacity = self.buf.len();
        if self.read_from < self.write_to {
            // Data in [read_from, write_to): free space at the rear, else at
            // the front by wrapping.
            if capacity - self.write_to >= size {
                Some(self.write_to)
            } else if self.read_from >= size {
                Some(0)
            } else {
                None
            }
        } else if self.items > 0 {
            // Wrapped: free space is [write_to, read_from).
            (self.read_from - self.write_to >= size).then_some(self.write_to)
        } else {
            // Empty: all positions are 0.
            (capacity >= size).then_some(0)
        }
    }
}

impl fmt::Debug for Ring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring")
            .field("capacity", &self.buf.len())
            .field("items", &self.items)
            .field("used_bytes", &self.used_bytes())
            .field("read_from", &self.read_from)
            .field("write_to", &self.write_to)
            .field("gap", &self.gap)
            .finish()
    }
}

/// Payload range `(start, end)` of the record whose header is at `pos`, or
/// `None` if the header or the payload would run past the buffer.
fn record_at(buf: &[u8], pos: usize) -> Option<(usize, usize)> {
    let header = buf.get(pos..)?.first_chunk::<RECORD_HEADER_LEN>()?;
    let len = usize::try_from(u64::from_le_bytes(*header)).ok()?;
    let start = pos + RECORD_HEADER_LEN;
    let end = start.checked_add(len)?;
    (end <= buf.len()).then_some((start, end))
}

/// Iterator over a ring's payloads in pop order; see [`Ring::iter`].
pub struct RingIter<'a> {
    buf: &'a [u8],
    pos: usize,
    gap: usize,
    remaining: usize,
}

impl<'a> Iterator for RingIter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.remaining == 0 {
            return None;
        }
        let Some((start, end)) = record_at(self.buf, self.pos) else {
            self.remaining = 0;
            return None;
        };
        self.remaining -= 1;
        self.pos = end;
        if self.remaining > 0 && self.pos == self.gap {
            self.pos = 0;
        }
        self.buf.get(start..end)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl FusedIterator for RingIter<'_> {}

impl fmt::Debug for RingIter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RingIter")
            .field("pos", &self.pos)
            .field("remaining", &self.remaining)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    const H: usize = RECORD_HEADER_LEN;

    fn positions(ring: &Ring) -> (usize, usize, usize) {
        (ring.read_from, ring.write_to, ring.gap)
    }

    fn drain(ring: &mut Ring) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(p) = ring.pop() {
            out.push(p.to_vec());
        }
        out
    }

    #[test]
    fn push_pop_fifo() {
        let mut ring = Ring::with_capacity(100);
        assert!(ring.is_empty());
        assert_eq!(ring.pop(), None);
        assert_eq!(ring.front_len(), None);
        assert!(ring.push(b"one"));
        assert!(ring.push(b"two!"));
        assert_eq!(ring.len(), 2);
        assert_eq!(ring.used_bytes(), 2 * H + 7);
        assert_eq!(ring.front_len(), Some(3));
        assert_eq!(ring.pop(), Some(&b"one"[..]));
        assert_eq!(ring.pop(), Some(&b"two!"[..]));
        assert_eq!(ring.pop(), None);
    }

    #[test]
    fn record_layout_is_le_header_then_payload() {
        let mut ring = Ring::with_capacity(32);
        assert!(ring.push(b"ab"));
        assert!(ring.push(b"c"));
        assert_eq!(&ring.buf[..10], &[2, 0, 0, 0, 0, 0, 0, 0, b'a', b'b']);
        assert_eq!(&ring.buf[10..19], &[1, 0, 0, 0, 0, 0, 0, 0, b'c']);
        assert_eq!(positions(&ring), (0, 19, 19));
    }

    #[test]
    fn full_ring_refuses_and_changes_nothing() {
        // The ocean unit test: ten 9-byte records fill the ring exactly.
        let mut ring = Ring::with_capacity((9 + H) * 10);
        for i in 0..10 {
            assert!(ring.push(format!("Element{i:2}").as_bytes()));
        }
        assert_eq!(ring.used_bytes(), ring.capacity());
        assert!(!ring.fits(0));
        let before = positions(&ring);
        assert!(!ring.push(b"more"));
        assert_eq!(positions(&ring), before);
        assert_eq!(ring.len(), 10);
    }

    #[test]
    fn ocean_middle_case() {
        // ocean FlexibleRingQueue "middle" unit test.
        let rec = 1 + H;
        let mut ring = Ring::with_capacity(rec * 5);
        for p in [b"1", b"2", b"3", b"4"] {
            assert!(ring.push(p));
        }
        assert_eq!(ring.pop(), Some(&b"1"[..]));
        assert_eq!(ring.read_from, rec);
        assert_eq!(ring.write_to, rec * 4);
        // One record fits at the rear, one by wrapping to the front.
        assert!(ring.push(b"5"));
        assert_eq!(positions(&ring), (rec, rec * 5, rec * 5));
        assert!(ring.push(b"6"));
        assert_eq!(positions(&ring), (rec, rec, rec * 5));
        assert_eq!(ring.used_bytes(), ring.capacity());
        assert!(!ring.fits(0));
        assert_eq!(drain(&mut ring), [b"2", b"3", b"4", b"5", b"6"]);
    }

    #[test]
    fn wrap_keeps_gap_and_pop_wraps_at_gap() {
        // Capacity 40: records of 10 bytes (2-byte payloads).
        let mut ring = Ring::with_capacity(40);
        assert!(ring.push(b"aa"));
        assert!(ring.push(b"bb"));
        assert!(ring.push(b"cc"));
        assert_eq!(positions(&ring), (0, 30, 30));
        assert_eq!(ring.pop(), Some(&b"aa"[..]));
        assert_eq!(ring.pop(), Some(&b"bb"[..]));
        // 10 bytes free at the rear, 20 at the front: a 12-byte record
        // (4-byte payload) does not fit at the rear, so it wraps to 0.
        assert!(ring.push(b"dddd"));
        assert_eq!(positions(&ring), (20, 12, 30));
        assert_eq!(ring.used_bytes(), 10 + 12);
        // Wrapped: free space is [12, 20).
        assert!(ring.fits(0));
        assert!(!ring.fits(1));
        assert!(ring.push(b""));
        assert_eq!(positions(&ring), (20, 20, 30));
        assert_eq!(ring.used_bytes(), 10 + 12 + 8);
        assert!(!ring.fits(0));
        // Popping the record that ends at gap wraps the read position.
        assert_eq!(ring.pop(), Some(&b"cc"[..]));
        assert_eq!(positions(&ring), (0, 20, 20));
        assert_eq!(ring.used_bytes(), 20);
        assert_eq!(ring.pop(), Some(&b"dddd"[..]));
        assert_eq!(positions(&ring), (12, 20, 20));
        assert_eq!(ring.pop(), Some(&b""[..]));
        assert_eq!(positions(&ring), (0, 0, 0));
    }

    #[test]
    fn record_does_not_fit_although_total_free_space_would() {
        let mut ring = Ring::with_capacity(40);
        assert!(ring.push(b"aa")); // [0, 10)
        assert!(ring.push(b"bb")); // [10, 20)
        assert!(ring.push(b"cc")); // [20, 30)
        assert_eq!(ring.pop(), Some(&b"aa"[..]));
        // 10 free bytes at the rear and 10 at the front: 20 in total, but a
        // 12-byte record fits in neither.
        assert_eq!(ring.capacity() - ring.used_bytes(), 20);
        assert!(!ring.fits(4));
        assert!(!ring.push(b"dddd"));
        assert_eq!(positions(&ring), (10, 30, 30));
        // 10 bytes still fit at the rear.
        assert!(ring.fits(2));
        assert!(ring.push(b"ee"));
        assert_eq!(positions(&ring), (10, 40, 40));
        // And 10 at the front, by wrapping.
        assert!(ring.push(b"ff"));
        assert_eq!(positions(&ring), (10, 10, 40));
        assert_eq!(drain(&mut ring), [b"bb", b"cc", b"ee", b"ff"]);
    }

    #[test]
    fn exact_rear_fit_then_wrap_on_pop() {
        let mut ring = Ring::with_capacity(20);
        assert!(ring.push(b"aa"));
        assert!(ring.push(b"bb"));
        assert_eq!(positions(&ring), (0, 20, 20));
        assert_eq!(ring.pop(), Some(&b"aa"[..]));
        assert!(ring.push(b"cc"));
        assert_eq!(positions(&ring), (10, 10, 20));
        // read_from reaches gap (20 = capacity) and wraps.
        assert_eq!(ring.pop(), Some(&b"bb"[..]));
        assert_eq!(positions(&ring), (0, 10, 10));
        assert_eq!(ring.pop(), Some(&b"cc"[..]));
        assert_eq!(positions(&ring), (0, 0, 0));
    }

    #[test]
    fn zero_length_records() {
        let mut ring = Ring::with_capacity(16);
        assert!(ring.push(b""));
        assert!(ring.push(b""));
        assert!(!ring.push(b""));
        assert_eq!(ring.len(), 2);
        assert_eq!(ring.used_bytes(), 16);
        assert_eq!(ring.front_len(), Some(0));
        assert_eq!(ring.iter().count(), 2);
        assert_eq!(ring.pop(), Some(&b""[..]));
        assert_eq!(ring.pop(), Some(&b""[..]));
        assert_eq!(ring.pop(), None);
    }

    #[test]
    fn reset_to_zero_when_empty() {
        let mut ring = Ring::with_capacity(30);
        assert!(ring.push(b"aa"));
        assert!(ring.push(b"bb"));
        assert_eq!(ring.pop(), Some(&b"aa"[..]));
        assert_eq!(positions(&ring), (10, 20, 20));
        assert_eq!(ring.pop(), Some(&b"bb"[..]));
        assert_eq!(positions(&ring), (0, 0, 0));
        assert_eq!(ring.used_bytes(), 0);
        // The whole buffer is available again, contiguously.
        assert!(ring.fits(30 - H));
        assert!(ring.push(&[7u8; 22]));
        assert_eq!(ring.used_bytes(), 30);
    }

    #[test]
    fn tiny_and_zero_capacity() {
        let mut ring = Ring::with_capacity(0);
        assert!(!ring.fits(0));
        assert!(!ring.push(b""));
        assert_eq!(ring.pop(), None);
        let mut ring = Ring::with_capacity(7);
        assert!(!ring.push(b""));
        let mut ring = Ring::with_capacity(8);
        assert!(ring.push(b""));
        assert!(!ring.fits(usize::MAX));
        assert!(!ring.push(b"x"));
    }

    #[test]
    fn oversized_record_never_fits() {
        let mut ring = Ring::with_capacity(64);
        assert!(!ring.fits(57));
        assert!(!ring.push(&[0u8; 57]));
        assert!(ring.push(&[1u8; 56]));
        assert_eq!(ring.used_bytes(), 64);
    }

    #[test]
    fn iter_and_slices_follow_pop_order_after_wrap() {
        let mut ring = Ring::with_capacity(40);
        assert!(ring.push(b"aa"));
        assert!(ring.push(b"bb"));
        assert!(ring.push(b"cc"));
        assert_eq!(ring.pop(), Some(&b"aa"[..]));
        assert_eq!(ring.pop(), Some(&b"bb"[..]));
        assert!(ring.push(b"dddd"));
        let items: Vec<&[u8]> = ring.iter().collect();
        assert_eq!(items, [&b"cc"[..], &b"dddd"[..]]);
        let (head, tail) = ring.as_slices();
        assert_eq!(head, &[2, 0, 0, 0, 0, 0, 0, 0, b'c', b'c']);
        assert_eq!(tail, &[4, 0, 0, 0, 0, 0, 0, 0, b'd', b'd', b'd', b'd']);
        assert_eq!(head.len() + tail.len(), ring.used_bytes());
        // iter is non-destructive.
        assert_eq!(ring.len(), 2);
        ring.clear();
        assert_eq!(ring.iter().next(), None);
        assert_eq!(ring.as_slices(), (&[][..], &[][..]));
        assert_eq!(positions(&ring), (0, 0, 0));
    }

    #[test]
    fn randomized_against_vecdeque_model() {
        let mut rng = fastrand::Rng::with_seed(0x9E37_79B9_7F4A_7C15);
        for capacity in [0usize, 8, 9, 17, 40, 64, 100, 257, 1000] {
            let mut ring = Ring::with_capacity(capacity);
            let mut model: VecDeque<Vec<u8>> = VecDeque::new();
            let max_len = (capacity / 2).max(1);
            let mut wraps = 0usize;
            for step in 0..20_000u32 {
                if rng.usize(..100) < 55 {
                    let len = rng.usize(..=max_len);
                    let payload: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
                    let fits = ring.fits(len);
                    let model_used: usize = model.iter().map(|p| p.len() + H).sum();
                    if model.is_empty() {
                        assert_eq!(fits, len + H <= capacity);
                    }
                    if fits {
                        assert!(model_used + len + H <= capacity);
                    }
                    let write_to_before = ring.write_to;
                    assert_eq!(ring.push(&payload), fits, "step {step}");
                    if fits && ring.write_to < write_to_before {
                        wraps += 1;
                    }
                    if fits {
                        model.push_back(payload);
                    }
                } else {
                    let expected = model.pop_front();
                    assert_eq!(ring.front_len(), expected.as_ref().map(Vec::len));
                    assert_eq!(ring.pop().map(<[u8]>::to_vec), expected, "step {step}");
                }
                let used: usize = model.iter().map(|p| p.len() + H).sum();
                assert_eq!(ring.len(), model.len());
                assert_eq!(ring.used_bytes(), used, "step {step}: {ring:?}");
                assert!(ring.used_bytes() <= ring.capacity());
                if model.is_empty() {
                    assert_eq!(positions(&ring), (0, 0, 0));
                }
                if step % 97 == 0 {
                    assert!(ring.iter().eq(model.iter().map(Vec::as_slice)));
                    let (head, tail) = ring.as_slices();
                    let mut joined = head.to_vec();
                    joined.extend_from_slice(tail);
                    let mut expected = Vec::new();
                    for p in &model {
                        expected.extend_from_slice(&(p.len() as u64).to_le_bytes());
                        expected.extend_from_slice(p);
                    }
                    assert_eq!(joined, expected);
                }
            }
            if capacity >= 40 {
                assert!(wraps > 100, "capacity {capacity}: only {wraps} wraps");
            }
            let rest = drain(&mut ring);
            assert_eq!(rest, Vec::from(model));
        }
    }
}
