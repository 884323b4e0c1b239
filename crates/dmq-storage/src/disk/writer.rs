//! The write side of a shard's overflow: [`DiskWriter`] appends records to
//! the storages' queues and to the current segment, links each to the
//! previous record of its storage, hands the node its [`WriteJob`]s one at a
//! time and keeps the tickets that tell a push when it is on disk. A failed
//! write gives up every byte not yet written.
//!
//! Lives on its shard (inside the shard's overflow state); at start, on the
//! main thread while the data directory is loaded.

use std::collections::VecDeque;

use super::error::DiskError;
use super::layout::{DiskConfig, Loc, HEADER};
use super::meta::{Meta, META_TAG};
use super::queue::{DiskQueue, Part};
use super::segments::Segments;
use super::walk_records;
use crate::files::{RecordHeader, MAGIC, OVERFLOW_HEADER_LEN};

/// Bytes appended but not yet written at which a shard's overflow refuses
/// new records ([`DiskError::Behind`]).
pub const MAX_UNWRITTEN_BYTES: u64 = 256 << 20;

/// Bytes appended but not yet handed to the file.
#[derive(Debug)]
struct Pending {
    seg: u32,
    pos: u64,
    bytes: Vec<u8>,
    /// Ticket of the last byte.
    ticket: u64,
}

/// A header rewritten in place (a link to a record appended later).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Patch {
    pub seg: u32,
    pub pos: u64,
    pub header: [u8; OVERFLOW_HEADER_LEN],
}

/// A record that a failed write took with it: its storage must forget it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lost {
    pub id: u32,
    pub seg: u32,
    pub len: u64,
}

/// Appended bytes for the node to write: `bytes` at `pos` of segment `seg`
/// (creating the file when `pos` is 0).
#[derive(Debug)]
pub struct DataWrite {
    pub seg: u32,
    pub pos: u64,
    pub bytes: Vec<u8>,
    /// Length of `bytes` (the executor may take `bytes` once they are
    /// written; a failed job must keep them).
    pub len: u64,
}

/// One write for the node to execute: the appended bytes, if any, then
/// every patch.
#[derive(Debug)]
pub struct WriteJob {
    pub data: Option<DataWrite>,
    pub patches: Vec<Patch>,
    /// Pushes with a ticket up to this one are on disk once the job is done.
    pub ticket: u64,
}

impl WriteJob {
    /// True when the job starts a new segment file.
    pub fn creates(&self) -> bool {
        self.data.as_ref().is_some_and(|d| d.pos == 0)
    }

    /// The segments the job writes to.
    pub fn segments(&self) -> impl Iterator<Item = u32> + '_ {
        let data = self.data.as_ref().map(|d| d.seg);
        data.into_iter().chain(self.patches.iter().map(|p| p.seg))
    }
}

/// A shard's overflow: the segments, the bytes not yet written, and the ids.
/// See the `disk` module documentation.
#[derive(Debug)]
pub struct DiskWriter {
    pub(super) segments: Segments,
    pub(super) next_id: u32,
    pending: VecDeque<Pending>,
    patches: Vec<Patch>,
    /// Bytes ever appended: a push's ticket is this count after it.
    appended: u64,
    /// Every ticket up to this one is on disk.
    durable: u64,
    unavailable: bool,
    /// Data records ever appended (one per storage a record spilled in).
    records_appended: u64,
    /// See [`MAX_UNWRITTEN_BYTES`].
    unwritten_limit: u64,
}

impl DiskWriter {
    /// An empty overflow.
    pub fn new(config: DiskConfig) -> DiskWriter {
        DiskWriter {
            segments: Segments::new(config),
            next_id: 1,
            pending: VecDeque::new(),
            patches: Vec::new(),
            appended: 0,
            durable: 0,
            unavailable: false,
            records_appended: 0,
            unwritten_limit: MAX_UNWRITTEN_BYTES,
        }
    }

    /// Data records ever appended (one per storage a record spilled in).
    pub fn records_appended(&self) -> u64 {
        self.records_appended
    }
    /// The ticket of the newest append.
    pub fn appended_ticket(&self) -> u64 {
        self.appended
    }
    /// Every ticket up to this one is on disk.
    pub fn durable_ticket(&self) -> u64 {
        self.durable
    }
    /// True while appended bytes wait to be written.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty() || !self.patches.is_empty()
    }
    /// True after a failed write, until [`retry`](DiskWriter::retry).
    pub fn is_unavailable(&self) -> bool {
        self.unavailable
    }
    /// Accept records again after a failure (the next write tries the disk).
    pub fn retry(&mut self) {
        self.unavailable = false;
    }
    /// The same with another bound on bytes waiting to be written (tests).
    pub fn with_unwritten_limit(mut self, bytes: u64) -> DiskWriter {
        self.unwritten_limit = bytes;
        self
    }
    pub fn config(&self) -> DiskConfig {
        self.segments.config
    }

    /// Changes the sizing (new segments and the limit apply from now on).
    pub fn set_config(&mut self, config: DiskConfig) {
        self.segments.config = config;
    }

    /// The segment table: what exists, what is written, read plans.
    pub fn segments(&self) -> &Segments {
        &self.segments
    }

    /// Segments that can be deleted now (see [`Segments::reclaim`]).
    pub fn reclaim(&mut self) -> Vec<u32> {
        let nothing_pending = !self.has_pending();
        self.segments.reclaim(nothing_pending)
    }

    /// Appends `payload` to the storage's queue and returns the push's
    /// ticket: the push is on disk once [`durable_ticket`] reaches it.
    /// `name` is the storage's name, asked for only when the segment needs it.
    ///
    /// [`durable_ticket`]: DiskWriter::durable_ticket
    pub fn append(
        &mut self,
        q: &mut DiskQueue,
        name: &dyn Fn() -> String,
        payload: &[u8],
    ) -> Result<u64, DiskError> {
        if self.unavailable {
            return Err(DiskError::Unavailable);
        }
        let len = payload.len() as u64;
        let unwritten = self.appended - self.durable;
        if unwritten > 0 && unwritten + HEADER + len > self.unwritten_limit {
            return Err(DiskError::Behind);
        }
        let in_current = |w: &DiskWriter| {
            w.segments.current.is_some() && q.parts.back().map(|p| p.seg) == w.segments.current
        };
        let storage_name = (!in_current(self) || q.id == 0).then(name);
        let meta_len = storage_name
            .as_ref()
            .map_or(0, |n| HEADER + META_TAG.len() as u64 + 5 + n.len() as u64);
        let seg = self.room_for(HEADER + len + meta_len)?;
        if q.id == 0 {
            q.id = self.next_id;
            self.next_id = self.next_id.wrapping_add(1).max(1);
        }
        if q.parts.back().map(|p| p.seg) != Some(seg) {
            let name = storage_name.unwrap_or_else(name);
            self.put_meta_in(seg, &Meta::Name { id: q.id, name });
            let next = self.segments.table[&seg].end;
            q.parts.push_back(Part {
                seg,
                next,
                last: next,
                records: 0,
                bytes: 0,
            });
        }
        let pos = self.segments.table[&seg].end;
        if let Some((tail, tail_len)) = q.tail {
            if tail.seg == seg {
                let header = RecordHeader::new(q.id, (pos - tail.offset) as i64, tail_len);
                self.patch(tail, header.encode());
            }
        }
        self.put(seg, &RecordHeader::new(q.id, 0, len).encode(), payload);
        q.tail = Some((Loc { seg, offset: pos }, len));
        if let Some(part) = q.parts.back_mut() {
            part.records += 1;
            part.bytes += len;
            part.last = pos;
        }
        q.records += 1;
        q.bytes += len;
        if let Some(s) = self.segments.table.get_mut(&seg) {
            s.live += 1;
        }
        self.records_appended += 1;
        Ok(self.appended)
    }

    /// Writes a meta record if the overflow has room; meta records are
    /// best effort (losing one can only bring back read or dropped records
    /// after a crash, never lose one).
    pub(super) fn put_meta(&mut self, meta: &Meta) {
        if self.unavailable {
            return;
        }
        // The current segment takes it even when full (a meta record is a
        // few dozen bytes past the reservation), so that the limit does not
        // keep a drop or progress record off the disk.
        let seg = match self.segments.current {
            Some(seg) => Ok(seg),
            None => self.room_for(HEADER + meta.encode().len() as u64),
        };
        if let Ok(seg) = seg {
            self.put_meta_in(seg, meta);
        }
    }

    fn put_meta_in(&mut self, seg: u32, meta: &Meta) {
        let payload = meta.encode();
        self.put(
            seg,
            &RecordHeader::new(0, 0, payload.len() as u64).encode(),
            &payload,
        );
    }

    /// The segment `len` more bytes go to: the current one if they fit (or it
    /// is still empty), else a new one if the limit allows.
    fn room_for(&mut self, len: u64) -> Result<u32, DiskError> {
        if let Some(seg) = self.segments.current_with_room(len) {
            return Ok(seg);
        }
        let seg = self.segments.create(len)?;
        self.put(seg, &MAGIC, &[]);
        Ok(seg)
    }

    /// Appends bytes at the end of `seg`.
    fn put(&mut self, seg: u32, a: &[u8], b: &[u8]) {
        let n = (a.len() + b.len()) as u64;
        let Some(segment) = self.segments.table.get_mut(&seg) else {
            return;
        };
        let pos = segment.end;
        segment.end += n;
        self.appended += n;
        match self.pending.back_mut() {
            Some(p) if p.seg == seg && p.pos + p.bytes.len() as u64 == pos => {
                p.bytes.extend_from_slice(a);
                p.bytes.extend_from_slice(b);
                p.ticket = self.appended;
            }
            _ => {
                let mut bytes = Vec::with_capacity(a.len() + b.len());
                bytes.extend_from_slice(a);
                bytes.extend_from_slice(b);
                self.pending.push_back(Pending {
                    seg,
                    pos,
                    bytes,
                    ticket: self.appended,
                });
            }
        }
    }

    /// Rewrites a header: in the pending bytes if it is still there, else on disk.
    fn patch(&mut self, at: Loc, header: [u8; OVERFLOW_HEADER_LEN]) {
        for p in self.pending.iter_mut() {
            if p.seg == at.seg && at.offset >= p.pos {
                let start = (at.offset - p.pos) as usize;
                if let Some(dst) = p.bytes.get_mut(start..start + OVERFLOW_HEADER_LEN) {
                    dst.copy_from_slice(&header);
                    return;
                }
            }
        }
        self.patches.push(Patch {
            seg: at.seg,
            pos: at.offset,
            header,
        });
    }

    /// The next write to execute, if any. Jobs must be executed one at a
    /// time, in order, each followed by [`write_done`](DiskWriter::write_done).
    pub fn take_write(&mut self) -> Option<WriteJob> {
        let p = self.pending.pop_front();
        if p.is_none() && self.patches.is_empty() {
            return None;
        }
        let ticket = p.as_ref().map_or(self.durable, |p| p.ticket);
        Some(WriteJob {
            data: p.map(|p| DataWrite {
                seg: p.seg,
                pos: p.pos,
                len: p.bytes.len() as u64,
                bytes: p.bytes,
            }),
            patches: std::mem::take(&mut self.patches),
            ticket,
        })
    }

    /// Records the outcome of a job. On failure, every byte not yet written
    /// is given up: the segment is closed where the disk content ends, and
    /// the returned records must be forgotten by their storages
    /// ([`forget`](DiskWriter::forget)); their pushes were never acknowledged.
    pub fn write_done(&mut self, job: WriteJob, ok: bool) -> Vec<Lost> {
        if ok {
            if let Some(data) = &job.data {
                if let Some(s) = self.segments.table.get_mut(&data.seg) {
                    s.durable = s.durable.max(data.pos + data.len);
                }
            }
            self.durable = self.durable.max(job.ticket);
            return Vec::new();
        }
        self.unavailable = true;
        let mut failed: Vec<Pending> = job
            .data
            .map(|d| Pending {
                seg: d.seg,
                pos: d.pos,
                bytes: d.bytes,
                ticket: job.ticket,
            })
            .into_iter()
            .collect();
        failed.extend(self.pending.drain(..));
        self.patches.clear();
        let mut lost = Vec::new();
        for p in &failed {
            walk_records(&p.bytes, p.pos, |_, header, _| {
                if header.channel_id != 0 {
                    lost.push(Lost {
                        id: header.channel_id,
                        seg: p.seg,
                        len: header.length,
                    });
                }
            });
        }
        for p in &failed {
            if let Some(s) = self.segments.table.get_mut(&p.seg) {
                s.end = s.end.min(p.pos);
            }
        }
        for l in &lost {
            self.segments.release(l.seg, 1);
        }
        // A segment whose file was never written is gone; the others are
        // closed where their content ends.
        self.segments.table.retain(|_, s| s.end > 0);
        self.segments.current = None;
        self.appended = self.durable;
        lost
    }

    /// Makes `q` forget records a failed write took (see
    /// [`write_done`](DiskWriter::write_done)); true if it had any.
    pub fn forget(q: &mut DiskQueue, lost: &[Lost]) -> bool {
        let mut any = false;
        for l in lost.iter().filter(|l| l.id == q.id && q.id != 0) {
            any = true;
            if let Some(part) = q.parts.iter_mut().rev().find(|p| p.seg == l.seg) {
                part.records = part.records.saturating_sub(1);
                part.bytes = part.bytes.saturating_sub(l.len);
            }
            q.records = q.records.saturating_sub(1);
            q.bytes = q.bytes.saturating_sub(l.len);
        }
        if any {
            q.parts.retain(|p| p.records > 0);
            q.tail = None;
        }
        any
    }

    /// Forgets every record of a storage that is cleared or removed.
    pub fn drop_queue(&mut self, q: &mut DiskQueue) {
        if q.id == 0 || q.records == 0 {
            *q = DiskQueue::default();
            return;
        }
        let id = q.id;
        for part in q.reset() {
            self.segments.release(part.seg, part.records);
        }
        self.put_meta(&Meta::Drop { id });
    }

    /// Records the storage's new name (subscribe renames it).
    pub fn rename(&mut self, q: &DiskQueue, name: String) {
        if q.id != 0 && q.records > 0 {
            self.put_meta(&Meta::Name { id: q.id, name });
        }
    }
}
