//! Reading a storage's records back: [`DiskWriter::consume`] takes the
//! records a read brought (planned with
//! [`Segments::read_plan`](super::Segments::read_plan)) off the storage's
//! queue, in order, and records the progress in a meta record so that a
//! restart does not bring them back.

use super::error::Corrupt;
use super::layout::{Loc, HEADER};
use super::meta::Meta;
use super::queue::DiskQueue;
use super::writer::DiskWriter;
use crate::files::{RecordHeader, OVERFLOW_HEADER_LEN};

/// The outcome of [`DiskWriter::consume`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Consumed {
    pub records: u64,
    pub bytes: u64,
    /// The next record needs this many bytes read at the head (it did not
    /// fit in the buffer).
    pub need: Option<usize>,
    /// The next record's link is not written yet.
    pub not_yet: bool,
}

impl DiskWriter {
    /// Takes the records of `q` found in `buf` (read at `at`) in order,
    /// handing each payload to `accept` until it answers false; then writes
    /// a progress meta record.
    pub fn consume(
        &mut self,
        q: &mut DiskQueue,
        at: Loc,
        buf: &[u8],
        mut accept: impl FnMut(&[u8]) -> bool,
    ) -> Result<Consumed, Corrupt> {
        let mut done = Consumed::default();
        let mut last_end = None;
        while let Some(part) = q.parts.front().copied() {
            if part.seg != at.seg || part.next < at.offset {
                break;
            }
            let rel = (part.next - at.offset) as usize;
            let corrupt = |reason: String| Corrupt {
                seg: part.seg,
                offset: part.next,
                reason,
            };
            let Some(raw) = buf
                .get(rel..)
                .and_then(|b| b.first_chunk::<OVERFLOW_HEADER_LEN>())
            else {
                done.need = (done.records == 0).then_some(OVERFLOW_HEADER_LEN);
                break;
            };
            let header = RecordHeader::decode(raw);
            if !header.parity_ok() {
                return Err(corrupt("parity error".into()));
            }
            if header.channel_id != q.id {
                return Err(corrupt(format!(
                    "record of channel id {} where id {} was expected",
                    header.channel_id, q.id
                )));
            }
            let end = (rel as u64)
                .checked_add(HEADER)
                .and_then(|e| e.checked_add(header.length))
                .ok_or_else(|| corrupt("length overflows".into()))?;
            if end > buf.len() as u64 {
                if done.records == 0 {
                    done.need = Some(usize::try_from(HEADER + header.length).unwrap_or(usize::MAX));
                }
                break;
            }
            if part.records > 1 {
                if header.next_offset < 0 {
                    return Err(corrupt("negative link".into()));
                }
                if header.next_offset == 0 {
                    // The link to the next record is written after that
                    // record: not on disk yet.
                    done.not_yet = done.records == 0;
                    break;
                }
            }
            let payload = &buf[rel + OVERFLOW_HEADER_LEN..end as usize];
            if !accept(payload) {
                break;
            }
            done.records += 1;
            done.bytes += header.length;
            q.records -= 1;
            q.bytes -= header.length;
            self.segments.release(part.seg, 1);
            last_end = Some(Loc {
                seg: part.seg,
                offset: part.next + HEADER + header.length,
            });
            let front = q.parts.front_mut().expect("front part exists");
            front.records -= 1;
            front.bytes -= header.length;
            if front.records == 0 {
                q.parts.pop_front();
            } else {
                front.next += header.next_offset as u64;
            }
        }
        if let Some(end) = last_end {
            let at = q.head().unwrap_or(end);
            self.put_meta(&Meta::Progress { id: q.id, at });
        }
        if q.records == 0 {
            q.tail = None;
            q.parts.clear();
        }
        Ok(done)
    }
}
