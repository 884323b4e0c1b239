//! The disk overflow at run time: where records go when they do not fit in
//! their storage's ring, and how they are read back in order.
//!
//! Each shard owns a sequence of **segment files**,
//! `overflow-<shard>of<shards>-<seq>.dat`. A segment is in the original's
//! `overflow.dat` format (spec 5.3): the magic `QDSKOF01`, then 32-byte
//! record headers (channel id, relative link to the channel's next record,
//! parity, length) each followed by its payload. Records of one storage form
//! a chain inside each segment; a chain ends at the segment's end and goes on
//! in the next segment holding records of that storage.
//!
//! Segments describe themselves, so no index is needed to recover them after
//! a crash. Besides data records they hold **meta records**: filler records
//! (channel id 0, which the original skips) whose payload starts with
//! [`META_TAG`]:
//! - *name*: before the first record of a storage in each segment, and when a
//!   storage is renamed (subscribe), binds the channel id to the storage name;
//! - *progress*: after records were read back into memory, the position of
//!   the storage's next unread record;
//! - *drop*: the storage was cleared or removed; its earlier records are dead.
//!
//! Space is reclaimed by deleting whole segments from the head: the oldest
//! segment goes once none of its records is live, and all of them go once the
//! overflow is empty.
//!
//! This module is pure bookkeeping, with no I/O: [`DiskWriter`] builds
//! [`WriteJob`]s that the node executes (glommio file I/O on the shards,
//! plain `std::fs` at startup), and parses what was read back with
//! [`DiskWriter::consume`]. [`recover`] rebuilds the state from segment bytes.

use std::collections::{BTreeMap, HashMap, VecDeque};

use crate::files::{RecordHeader, MAGIC, OVERFLOW_HEADER_LEN};

const HEADER: u64 = OVERFLOW_HEADER_LEN as u64;
const MAGIC_LEN: u64 = MAGIC.len() as u64;

/// First bytes of a meta record's payload.
pub const META_TAG: [u8; 8] = *b"DMQMETA1";

const META_NAME: u8 = 1;
const META_PROGRESS: u8 = 2;
const META_DROP: u8 = 3;

/// The file name of segment `seq` of `shard` on a node with `shards` shards.
pub fn segment_file_name(shard: usize, shards: usize, seq: u32) -> String {
    format!("overflow-{shard}of{shards}-{seq:06}.dat")
}

/// `(shard, shards, seq)` of a segment file name.
pub fn parse_segment_file_name(name: &str) -> Option<(usize, usize, u32)> {
    let rest = name.strip_prefix("overflow-")?.strip_suffix(".dat")?;
    let (layout, seq) = rest.split_once('-')?;
    let (shard, shards) = layout.split_once("of")?;
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !(all_digits(shard) && all_digits(shards) && all_digits(seq)) {
        return None;
    }
    let (shard, shards) = (shard.parse().ok()?, shards.parse().ok()?);
    (shard < shards).then_some((shard, shards, seq.parse().ok()?))
}

/// A position in a shard's overflow: segment and byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Loc {
    pub seg: u32,
    pub offset: u64,
}

/// A meta record (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Meta {
    Name { id: u32, name: String },
    Progress { id: u32, at: Loc },
    Drop { id: u32 },
}

impl Meta {
    fn encode(&self) -> Vec<u8> {
        let mut out = META_TAG.to_vec();
        match self {
            Meta::Name { id, name } => {
                out.push(META_NAME);
                out.extend_from_slice(&id.to_le_bytes());
                out.extend_from_slice(name.as_bytes());
            }
            Meta::Progress { id, at } => {
                out.push(META_PROGRESS);
                out.extend_from_slice(&id.to_le_bytes());
                out.extend_from_slice(&at.seg.to_le_bytes());
                out.extend_from_slice(&at.offset.to_le_bytes());
            }
            Meta::Drop { id } => {
                out.push(META_DROP);
                out.extend_from_slice(&id.to_le_bytes());
            }
        }
        out
    }

    /// The meta record in a filler payload, if it is one of ours.
    pub fn decode(payload: &[u8]) -> Option<Meta> {
        let rest = payload.strip_prefix(&META_TAG)?;
        let (&kind, rest) = rest.split_first()?;
        let (id, rest) = rest.split_first_chunk::<4>()?;
        let id = u32::from_le_bytes(*id);
        match kind {
            META_NAME => Some(Meta::Name {
                id,
                name: std::str::from_utf8(rest).ok()?.to_owned(),
            }),
            META_PROGRESS => {
                let (seg, rest) = rest.split_first_chunk::<4>()?;
                let offset = rest.first_chunk::<8>()?;
                Some(Meta::Progress {
                    id,
                    at: Loc {
                        seg: u32::from_le_bytes(*seg),
                        offset: u64::from_le_bytes(*offset),
                    },
                })
            }
            META_DROP => Some(Meta::Drop { id }),
            _ => None,
        }
    }
}

/// The records of one storage in one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Part {
    seg: u32,
    /// Offset of the next unread record.
    next: u64,
    /// Offset of the newest record (for the index).
    last: u64,
    records: u64,
    bytes: u64,
}

/// The records one storage has on disk, oldest first (kept in the storage).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DiskQueue {
    /// Overflow channel id; 0 until the first record goes to disk.
    id: u32,
    records: u64,
    /// Payload bytes.
    bytes: u64,
    parts: VecDeque<Part>,
    /// The newest record and its length, to link the next one to it.
    tail: Option<(Loc, u64)>,
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
    fn reset(&mut self) -> Vec<Part> {
        let parts = std::mem::take(&mut self.parts).into_iter().collect();
        *self = DiskQueue::default();
        parts
    }
}

/// Why a record cannot go to disk now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DiskError {
    /// The overflow files take all the space `overflow.disk_limit` allows.
    #[error("the disk overflow is full (overflow.disk_limit)")]
    Limit,
    /// A write to the overflow failed recently (disk full, I/O error); new
    /// records are refused until a retry succeeds.
    #[error("the disk overflow cannot be written (disk full or I/O error)")]
    Unavailable,
    /// The disk is behind: [`MAX_UNWRITTEN_BYTES`] wait to be written
    /// already, and memory must not grow without bound meanwhile.
    #[error("the disk overflow is behind: too many bytes wait to be written")]
    Behind,
}

/// Bytes appended but not yet written at which a shard's overflow refuses
/// new records ([`DiskError::Behind`]).
pub const MAX_UNWRITTEN_BYTES: u64 = 256 << 20;

/// Why records read back could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("overflow segment {seg} offset {offset}: {reason}")]
pub struct Corrupt {
    pub seg: u32,
    pub offset: u64,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Segment {
    /// Bytes appended (magic included).
    end: u64,
    /// Bytes written to the file, links included.
    durable: u64,
    /// Records not yet read back, dropped or cleared.
    live: u64,
}

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

/// One write for the node to execute: `bytes` at `pos` of segment `seg`
/// (creating the file when `pos` is 0), then every patch.
#[derive(Debug)]
pub struct WriteJob {
    pub seg: u32,
    pub pos: u64,
    pub bytes: Vec<u8>,
    pub patches: Vec<Patch>,
    /// Pushes with a ticket up to this one are on disk once the job is done.
    pub ticket: u64,
    /// Length of `bytes` (the executor may take `bytes` once they are
    /// written; a failed job must keep them).
    pub len: u64,
}

impl WriteJob {
    /// True when the job starts a new segment file.
    pub fn creates(&self) -> bool {
        self.pos == 0
    }
}

/// A record that a failed write took with it: its storage must forget it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lost {
    pub id: u32,
    pub seg: u32,
    pub len: u64,
}

/// What to read next for a storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadPlan {
    /// Nothing on disk.
    Nothing,
    /// The next record is not written yet: wait for the writes in flight.
    NotYet,
    /// Read `len` bytes at `at` and pass them to [`DiskWriter::consume`].
    Read { at: Loc, len: usize },
}

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

/// Sizing of a shard's overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskConfig {
    /// Bytes per segment file (a single larger record gets a segment of its own).
    pub segment_size: u64,
    /// Bytes of segment files this shard may hold; 0 = no limit.
    pub limit: u64,
}

/// A shard's overflow: the segments, the bytes not yet written, and the ids.
/// See the module documentation.
#[derive(Debug)]
pub struct DiskWriter {
    config: DiskConfig,
    segments: BTreeMap<u32, Segment>,
    /// The segment records are appended to.
    current: Option<u32>,
    next_seq: u32,
    next_id: u32,
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
            config,
            segments: BTreeMap::new(),
            current: None,
            next_seq: 1,
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

    /// The same with another bound on bytes waiting to be written (tests).
    pub fn with_unwritten_limit(mut self, bytes: u64) -> DiskWriter {
        self.unwritten_limit = bytes;
        self
    }

    /// Data records ever appended (one per storage a record spilled in).
    pub fn records_appended(&self) -> u64 {
        self.records_appended
    }

    pub fn config(&self) -> DiskConfig {
        self.config
    }

    /// Changes the sizing (new segments and the limit apply from now on).
    pub fn set_config(&mut self, config: DiskConfig) {
        self.config = config;
    }

    /// Segment numbers that exist (or are being created), oldest first.
    pub fn segments(&self) -> impl Iterator<Item = u32> + '_ {
        self.segments.keys().copied()
    }

    /// Bytes of all segments (what the disk limit counts).
    pub fn allocated(&self) -> u64 {
        self.segments
            .values()
            .map(|s| s.end.max(self.config.segment_size))
            .sum()
    }

    /// Bytes appended to segments, magic and headers included.
    pub fn file_bytes(&self) -> u64 {
        self.segments.values().map(|s| s.end).sum()
    }

    /// Records on disk not yet read back.
    pub fn live_records(&self) -> u64 {
        self.segments.values().map(|s| s.live).sum()
    }

    /// Bytes of segment `seq` written to its file.
    pub fn written(&self, seq: u32) -> u64 {
        self.segments.get(&seq).map_or(0, |s| s.durable)
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
        let in_current =
            |w: &DiskWriter| w.current.is_some() && q.parts.back().map(|p| p.seg) == w.current;
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
            let next = self.segments[&seg].end;
            q.parts.push_back(Part {
                seg,
                next,
                last: next,
                records: 0,
                bytes: 0,
            });
        }
        let pos = self.segments[&seg].end;
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
        if let Some(s) = self.segments.get_mut(&seg) {
            s.live += 1;
        }
        self.records_appended += 1;
        Ok(self.appended)
    }

    /// Writes a meta record if the overflow has room; meta records are
    /// best effort (losing one can only bring back read or dropped records
    /// after a crash, never lose one).
    fn put_meta(&mut self, meta: &Meta) {
        if self.unavailable {
            return;
        }
        // The current segment takes it even when full (a meta record is a
        // few dozen bytes past the reservation), so that the limit does not
        // keep a drop or progress record off the disk.
        let seg = match self.current {
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
        if let Some(seg) = self.current {
            let end = self.segments[&seg].end;
            if end + len <= self.config.segment_size || end == MAGIC_LEN {
                return Ok(seg);
            }
        }
        let size = (MAGIC_LEN + len).max(self.config.segment_size);
        if self.config.limit > 0 && self.allocated() + size > self.config.limit {
            return Err(DiskError::Limit);
        }
        let seg = self.next_seq;
        self.next_seq += 1;
        self.segments.insert(
            seg,
            Segment {
                end: 0,
                durable: 0,
                live: 0,
            },
        );
        self.current = Some(seg);
        self.put(seg, &MAGIC, &[]);
        Ok(seg)
    }

    /// Appends bytes at the end of `seg`.
    fn put(&mut self, seg: u32, a: &[u8], b: &[u8]) {
        let n = (a.len() + b.len()) as u64;
        let Some(segment) = self.segments.get_mut(&seg) else {
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
        let patches = std::mem::take(&mut self.patches);
        Some(match p {
            Some(p) => WriteJob {
                seg: p.seg,
                pos: p.pos,
                len: p.bytes.len() as u64,
                bytes: p.bytes,
                patches,
                ticket: p.ticket,
            },
            None => WriteJob {
                seg: patches[0].seg,
                pos: u64::MAX,
                bytes: Vec::new(),
                len: 0,
                patches,
                ticket: self.durable,
            },
        })
    }

    /// Records the outcome of a job. On failure, every byte not yet written
    /// is given up: the segment is closed where the disk content ends, and
    /// the returned records must be forgotten by their storages
    /// ([`forget`](DiskWriter::forget)); their pushes were never acknowledged.
    pub fn write_done(&mut self, job: WriteJob, ok: bool) -> Vec<Lost> {
        if ok {
            if job.pos != u64::MAX {
                if let Some(s) = self.segments.get_mut(&job.seg) {
                    s.durable = s.durable.max(job.pos + job.len);
                }
            }
            self.durable = self.durable.max(job.ticket);
            return Vec::new();
        }
        self.unavailable = true;
        let mut lost = Vec::new();
        let mut failed = vec![Pending {
            seg: job.seg,
            pos: job.pos,
            bytes: job.bytes,
            ticket: job.ticket,
        }];
        failed.extend(self.pending.drain(..));
        self.patches.clear();
        for p in &failed {
            if p.pos == u64::MAX {
                continue;
            }
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
            if p.pos == u64::MAX {
                continue;
            }
            if let Some(s) = self.segments.get_mut(&p.seg) {
                s.end = s.end.min(p.pos);
            }
        }
        for l in &lost {
            if let Some(s) = self.segments.get_mut(&l.seg) {
                s.live = s.live.saturating_sub(1);
            }
        }
        // A segment whose file was never written is gone; the others are
        // closed where their content ends.
        self.segments.retain(|_, s| s.end > 0);
        self.current = None;
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
            if let Some(s) = self.segments.get_mut(&part.seg) {
                s.live = s.live.saturating_sub(part.records);
            }
        }
        self.put_meta(&Meta::Drop { id });
    }

    /// Records the storage's new name (subscribe renames it).
    pub fn rename(&mut self, q: &DiskQueue, name: String) {
        if q.id != 0 && q.records > 0 {
            self.put_meta(&Meta::Name { id: q.id, name });
        }
    }

    /// What to read next for `q`, at most about `max` bytes.
    pub fn read_plan(&self, q: &DiskQueue, max: usize) -> ReadPlan {
        let Some(head) = q.head() else {
            return ReadPlan::Nothing;
        };
        let durable = self.segments.get(&head.seg).map_or(0, |s| s.durable);
        if durable < head.offset + HEADER {
            return ReadPlan::NotYet;
        }
        let len = (durable - head.offset).min(max.max(OVERFLOW_HEADER_LEN) as u64);
        ReadPlan::Read {
            at: head,
            len: len as usize,
        }
    }

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
            if let Some(s) = self.segments.get_mut(&part.seg) {
                s.live = s.live.saturating_sub(1);
            }
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

    /// Segments that can be deleted now, oldest first: from the head, while
    /// no record in them is live and they are not being appended to. When
    /// the whole overflow is empty and written, every segment goes.
    pub fn reclaim(&mut self) -> Vec<u32> {
        let mut gone = Vec::new();
        let everything = self.live_records() == 0 && !self.has_pending();
        for (&seq, s) in &self.segments {
            let closed = Some(seq) != self.current;
            let written = s.durable >= s.end;
            if s.live == 0 && written && (closed || everything) {
                gone.push(seq);
            } else {
                break;
            }
        }
        for seq in &gone {
            self.segments.remove(seq);
            if Some(*seq) == self.current {
                self.current = None;
            }
        }
        gone
    }
}

/// The name of the index file written next to segment `seq` at a clean
/// shutdown: `ofchannels-<shard>of<shards>-<seq>.csv`.
pub fn segment_index_file_name(shard: usize, shards: usize, seq: u32) -> String {
    format!("ofchannels-{shard}of{shards}-{seq:06}.csv")
}

/// True for a name [`segment_index_file_name`] makes.
pub fn is_segment_index_file_name(name: &str) -> bool {
    name.strip_prefix("ofchannels-")
        .and_then(|rest| rest.strip_suffix(".csv"))
        .and_then(|middle| parse_segment_file_name(&format!("overflow-{middle}.dat")))
        .is_some()
}

impl DiskWriter {
    /// The index of every segment in the original's `ofchannels.csv` format
    /// (spec 5.3): one line per storage with records in that segment, its
    /// records and bytes there and the offsets of its oldest and newest
    /// records there. With each segment as `overflow.dat`, the pair reads
    /// like the original's files. `queues` are the storages and their names.
    pub fn index<'q>(
        &self,
        queues: impl IntoIterator<Item = (String, &'q DiskQueue)>,
    ) -> BTreeMap<u32, Vec<crate::files::IndexEntry>> {
        let mut index: BTreeMap<u32, Vec<crate::files::IndexEntry>> = BTreeMap::new();
        for (name, q) in queues {
            for part in q.parts.iter().filter(|p| p.records > 0) {
                let end = self.segments.get(&part.seg).map_or(0, |s| s.end);
                if part.last >= end || part.next > part.last {
                    // Only after a failed write: its records are unknown.
                    continue;
                }
                index
                    .entry(part.seg)
                    .or_default()
                    .push(crate::files::IndexEntry {
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

/// Walks the records in `bytes` (which start at file offset `base` on a
/// record boundary, or with the magic at 0), calling `f(offset, header,
/// payload)`; stops at the first incomplete or invalid record and returns
/// the offset where the valid content ends.
pub fn walk_records(bytes: &[u8], base: u64, mut f: impl FnMut(u64, RecordHeader, &[u8])) -> u64 {
    let mut rel = 0usize;
    if base == 0 {
        if bytes.get(..MAGIC.len()) != Some(&MAGIC[..]) {
            return 0;
        }
        rel = MAGIC.len();
    }
    while let Some(raw) = bytes
        .get(rel..)
        .and_then(|b| b.first_chunk::<OVERFLOW_HEADER_LEN>())
    {
        let header = RecordHeader::decode(raw);
        if raw.iter().all(|&b| b == 0) || !header.parity_ok() {
            break;
        }
        let start = rel + OVERFLOW_HEADER_LEN;
        let Some(end) = usize::try_from(header.length)
            .ok()
            .and_then(|l| start.checked_add(l))
            .filter(|&e| e <= bytes.len())
        else {
            break;
        };
        f(base + rel as u64, header, &bytes[start..end]);
        rel = end;
    }
    base + rel as u64
}

/// What [`recover`] rebuilt.
#[derive(Debug)]
pub struct Recovered {
    pub writer: DiskWriter,
    /// Storage name → its queue, for every storage with live records.
    pub queues: Vec<(String, DiskQueue)>,
    /// Segments to truncate (torn tail after a crash): `(seq, valid length)`.
    pub truncate: Vec<(u32, u64)>,
    /// Links to rewrite (a crash came between a record and its link).
    pub patches: Vec<Patch>,
    /// Segments at the head holding nothing live: delete them.
    pub empty: Vec<u32>,
    /// Live records whose storage name was never recorded (lost).
    pub orphans: u64,
}

/// Rebuilds a shard's overflow from its segments (any order); see the module
/// documentation for the meta records it relies on. Segments are closed:
/// new records go to a new segment.
pub fn recover(
    config: DiskConfig,
    seqs: &[u32],
    mut read: impl FnMut(u32) -> std::io::Result<Vec<u8>>,
) -> std::io::Result<Recovered> {
    let mut seqs = seqs.to_vec();
    seqs.sort_unstable();
    seqs.dedup();
    let mut names: HashMap<u32, String> = HashMap::new();
    let mut read_to: HashMap<u32, Loc> = HashMap::new();
    let mut dropped_at: HashMap<u32, Loc> = HashMap::new();
    let mut max_id = 0u32;
    let mut truncate = Vec::new();
    let mut ends = Vec::new();
    for &seq in &seqs {
        let bytes = read(seq)?;
        let end = walk_records(&bytes, 0, |offset, header, payload| {
            let here = Loc { seg: seq, offset };
            max_id = max_id.max(header.channel_id);
            if header.channel_id != 0 {
                return;
            }
            // An id named by any record still on disk is never given to
            // another storage: its meta records would apply to that one.
            match Meta::decode(payload) {
                Some(Meta::Name { id, name }) => {
                    max_id = max_id.max(id);
                    names.insert(id, name);
                }
                Some(Meta::Progress { id, at }) => {
                    max_id = max_id.max(id);
                    let e = read_to.entry(id).or_insert(at);
                    *e = (*e).max(at);
                }
                Some(Meta::Drop { id }) => {
                    max_id = max_id.max(id);
                    dropped_at.insert(id, here);
                }
                None => {}
            }
        });
        if end < bytes.len() as u64 {
            truncate.push((seq, end));
        }
        ends.push(end);
    }
    let mut writer = DiskWriter::new(config);
    let mut queues: BTreeMap<u32, DiskQueue> = BTreeMap::new();
    let mut patches = Vec::new();
    let mut orphans = 0u64;
    for (&seq, &end) in seqs.iter().zip(&ends) {
        let mut bytes = read(seq)?;
        bytes.truncate(end as usize);
        let mut live = 0u64;
        walk_records(&bytes, 0, |offset, header, _| {
            let id = header.channel_id;
            let here = Loc { seg: seq, offset };
            let alive = id != 0
                && read_to.get(&id).is_none_or(|&r| here >= r)
                && dropped_at.get(&id).is_none_or(|&d| here > d);
            if !alive {
                return;
            }
            if !names.contains_key(&id) {
                orphans += 1;
                return;
            }
            live += 1;
            let q = queues.entry(id).or_insert_with(|| DiskQueue {
                id,
                ..DiskQueue::default()
            });
            match q.parts.back_mut() {
                Some(part) if part.seg == seq => {
                    if let Some((tail, tail_len)) = q.tail {
                        let link = (offset - tail.offset) as i64;
                        let raw = bytes[tail.offset as usize..][..OVERFLOW_HEADER_LEN]
                            .first_chunk::<OVERFLOW_HEADER_LEN>()
                            .map(RecordHeader::decode);
                        if raw.map(|h| h.next_offset) != Some(link) {
                            patches.push(Patch {
                                seg: seq,
                                pos: tail.offset,
                                header: RecordHeader::new(id, link, tail_len).encode(),
                            });
                        }
                    }
                    part.records += 1;
                    part.bytes += header.length;
                    part.last = offset;
                }
                _ => q.parts.push_back(Part {
                    seg: seq,
                    next: offset,
                    last: offset,
                    records: 1,
                    bytes: header.length,
                }),
            }
            q.records += 1;
            q.bytes += header.length;
            q.tail = Some((here, header.length));
        });
        writer.segments.insert(
            seq,
            Segment {
                end,
                durable: end,
                live,
            },
        );
    }
    writer.next_seq = seqs.last().map_or(1, |&seq| seq + 1);
    writer.next_id = max_id.wrapping_add(1).max(1);
    // Segments with nothing live go from the head only, as while running: a
    // later one may hold the progress, drop or name records that older
    // segments' records depend on. When nothing at all is live, every one
    // goes.
    let nothing_live = writer.segments.values().all(|s| s.live == 0);
    let empty: Vec<u32> = writer
        .segments
        .iter()
        .take_while(|(_, s)| s.live == 0 || nothing_live)
        .map(|(&seq, _)| seq)
        .collect();
    for seq in &empty {
        writer.segments.remove(seq);
    }
    let queues = queues
        .into_values()
        .map(|q| (names[&q.id].clone(), q))
        .collect();
    Ok(Recovered {
        writer,
        queues,
        truncate,
        patches,
        empty,
        orphans,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: DiskConfig = DiskConfig {
        segment_size: 4096,
        limit: 0,
    };

    /// Executes jobs against in-memory files.
    #[derive(Default)]
    struct Files(BTreeMap<u32, Vec<u8>>);

    impl Files {
        fn recover(&self) -> Recovered {
            let seqs: Vec<u32> = self.0.keys().copied().collect();
            recover(CONFIG, &seqs, |seq| Ok(self.0[&seq].clone())).expect("recover")
        }

        fn run(&mut self, w: &mut DiskWriter) {
            while let Some(job) = w.take_write() {
                if job.pos != u64::MAX {
                    let f = self.0.entry(job.seg).or_default();
                    let end = job.pos as usize + job.bytes.len();
                    if f.len() < end {
                        f.resize(end, 0);
                    }
                    f[job.pos as usize..end].copy_from_slice(&job.bytes);
                }
                for p in &job.patches {
                    let f = self.0.get_mut(&p.seg).expect("patched file exists");
                    f[p.pos as usize..p.pos as usize + 32].copy_from_slice(&p.header);
                }
                assert!(w.write_done(job, true).is_empty());
            }
        }

        fn read_all(&self, w: &mut DiskWriter, q: &mut DiskQueue) -> Vec<Vec<u8>> {
            let mut out = Vec::new();
            loop {
                match w.read_plan(q, 100) {
                    ReadPlan::Nothing => return out,
                    ReadPlan::NotYet => panic!("everything was written"),
                    ReadPlan::Read { at, mut len } => loop {
                        let f = &self.0[&at.seg];
                        let end = (at.offset as usize + len).min(f.len());
                        let buf = &f[at.offset as usize..end];
                        let done = w
                            .consume(q, at, buf, |p| {
                                out.push(p.to_vec());
                                true
                            })
                            .expect("valid");
                        match done.need {
                            Some(n) if done.records == 0 => len = n,
                            _ => break,
                        }
                    },
                }
            }
        }
    }

    fn name(n: &'static str) -> impl Fn() -> String {
        move || n.to_owned()
    }

    #[test]
    fn segment_names_round_trip() {
        assert_eq!(segment_file_name(1, 2, 7), "overflow-1of2-000007.dat");
        assert_eq!(
            parse_segment_file_name("overflow-1of2-000007.dat"),
            Some((1, 2, 7))
        );
        assert_eq!(parse_segment_file_name("overflow-2of2-000007.dat"), None);
        assert_eq!(parse_segment_file_name("overflow.dat"), None);
        assert_eq!(parse_segment_file_name("overflow-1of2-x.dat"), None);
    }

    #[test]
    fn interleaved_queues_read_back_in_order_across_segments() {
        let mut w = DiskWriter::new(CONFIG);
        let mut files = Files::default();
        let (mut a, mut b) = (DiskQueue::default(), DiskQueue::default());
        for i in 0..200u32 {
            let rec = format!("record-{i:05}").into_bytes();
            w.append(&mut a, &name("a"), &rec).expect("append");
            if i % 3 == 0 {
                w.append(&mut b, &name("sub@b"), &rec).expect("append");
            }
            if i % 50 == 0 {
                files.run(&mut w);
            }
        }
        files.run(&mut w);
        assert!(w.segments().count() > 2, "several segments");
        assert_eq!((a.records(), b.records()), (200, 67));
        let got = files.read_all(&mut w, &mut a);
        let want: Vec<Vec<u8>> = (0..200)
            .map(|i| format!("record-{i:05}").into_bytes())
            .collect();
        assert_eq!(got, want);
        assert_eq!(files.read_all(&mut w, &mut b).len(), 67);
        assert_eq!(w.live_records(), 0);
        files.run(&mut w);
        let gone = w.reclaim();
        assert_eq!(gone.len(), files.0.len(), "everything reclaimed");
    }

    #[test]
    fn unwritten_records_are_not_read_and_links_wait() {
        let mut w = DiskWriter::new(CONFIG);
        let mut q = DiskQueue::default();
        w.append(&mut q, &name("a"), b"one").expect("append");
        assert_eq!(w.read_plan(&q, 100), ReadPlan::NotYet);
        let mut files = Files::default();
        files.run(&mut w);
        // The second record is appended but not written: the link is not there.
        w.append(&mut q, &name("a"), b"two").expect("append");
        let ReadPlan::Read { at, len } = w.read_plan(&q, 1000) else {
            panic!("readable");
        };
        let buf = files.0[&at.seg][at.offset as usize..][..len].to_vec();
        let done = w.consume(&mut q, at, &buf, |_| true).expect("valid");
        assert!(done.not_yet);
        files.run(&mut w);
        assert_eq!(
            files.read_all(&mut w, &mut q),
            vec![b"one".to_vec(), b"two".to_vec()]
        );
    }

    #[test]
    fn limit_refuses_new_segments() {
        let mut w = DiskWriter::new(DiskConfig {
            segment_size: 4096,
            limit: 8192,
        });
        let mut q = DiskQueue::default();
        let mut n = 0;
        let error = loop {
            match w.append(&mut q, &name("a"), &[1; 1000]) {
                Ok(_) => n += 1,
                Err(e) => break e,
            }
            assert!(n < 100);
        };
        assert_eq!(error, DiskError::Limit);
        assert_eq!(q.records(), n);
        assert!(n >= 6, "{n}");
    }

    #[test]
    fn records_are_refused_while_too_much_waits_to_be_written() {
        let mut w = DiskWriter::new(CONFIG).with_unwritten_limit(1000);
        let mut files = Files::default();
        let mut q = DiskQueue::default();
        // One record alone may exceed the bound; then nothing more fits.
        w.append(&mut q, &name("a"), &[1; 1500]).expect("append");
        assert_eq!(
            w.append(&mut q, &name("a"), &[2; 10]),
            Err(DiskError::Behind)
        );
        // Once written, records are taken again.
        files.run(&mut w);
        w.append(&mut q, &name("a"), &[2; 10]).expect("append");
        assert_eq!(q.records(), 2);
    }

    #[test]
    fn a_failed_write_gives_up_unwritten_records() {
        let mut w = DiskWriter::new(CONFIG);
        let mut files = Files::default();
        let mut q = DiskQueue::default();
        w.append(&mut q, &name("a"), b"kept").expect("append");
        files.run(&mut w);
        w.append(&mut q, &name("a"), b"lost1").expect("append");
        w.append(&mut q, &name("a"), b"lost2").expect("append");
        let job = w.take_write().expect("job");
        let lost = w.write_done(job, false);
        assert_eq!(lost.len(), 2);
        assert!(DiskWriter::forget(&mut q, &lost));
        assert_eq!(q.records(), 1);
        assert_eq!(
            w.append(&mut q, &name("a"), b"x"),
            Err(DiskError::Unavailable)
        );
        w.retry();
        w.append(&mut q, &name("a"), b"after").expect("append");
        files.run(&mut w);
        assert_eq!(
            files.read_all(&mut w, &mut q),
            vec![b"kept".to_vec(), b"after".to_vec()]
        );
    }

    #[test]
    fn recovery_rebuilds_queues_skips_read_and_dropped_records_and_cuts_torn_tails() {
        let mut w = DiskWriter::new(CONFIG);
        let mut files = Files::default();
        let (mut a, mut b, mut c) = Default::default();
        for i in 0..100u32 {
            let rec = format!("r{i:04}").into_bytes();
            w.append(&mut a, &name("a"), &rec).expect("append");
            w.append(&mut b, &name("x@b"), &rec).expect("append");
            w.append(&mut c, &name("c"), &rec).expect("append");
        }
        files.run(&mut w);
        // Read 30 of a, rename b, drop c.
        let mut taken = 0;
        while taken < 30 {
            let ReadPlan::Read { at, len } = w.read_plan(&a, 64) else {
                panic!("readable");
            };
            let buf = files.0[&at.seg][at.offset as usize..][..len].to_vec();
            let done = w
                .consume(&mut a, at, &buf, |_| {
                    taken += 1;
                    taken <= 30
                })
                .expect("valid");
            taken = taken.min(30);
            let _ = done;
        }
        w.rename(&b, "y@b".to_owned());
        w.drop_queue(&mut c);
        w.append(&mut a, &name("a"), b"last").expect("append");
        files.run(&mut w);
        // A torn tail: half a record at the end of the newest segment.
        let newest = *files.0.keys().last().expect("segments");
        files
            .0
            .get_mut(&newest)
            .expect("file")
            .extend_from_slice(&[7; 20]);

        let r = files.recover();
        assert_eq!(r.orphans, 0);
        assert_eq!(r.truncate.len(), 1);
        let names: Vec<&str> = r.queues.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["a", "y@b"]);
        let mut w = r.writer;
        let mut a = r.queues[0].1.clone();
        assert_eq!(a.records(), 71);
        let got = files.read_all(&mut w, &mut a);
        assert_eq!(got[0], b"r0030");
        assert_eq!(got.last().expect("records"), b"last");
        // New records go to a new segment.
        let mut b = r.queues[1].1.clone();
        w.append(&mut b, &name("y@b"), b"new").expect("append");
        files.run(&mut w);
        let got = files.read_all(&mut w, &mut b);
        assert_eq!(got.len(), 101);
        assert_eq!(got.last().expect("records"), b"new");
    }

    #[test]
    fn each_segment_with_its_index_reads_like_the_originals_files() {
        let mut w = DiskWriter::new(CONFIG);
        let mut files = Files::default();
        let (mut a, mut b) = (DiskQueue::default(), DiskQueue::default());
        for i in 0..120u32 {
            let rec = format!("r{i:04}").into_bytes();
            w.append(&mut a, &name("a"), &rec).expect("append");
            if i % 2 == 0 {
                w.append(&mut b, &name("s@b"), &rec).expect("append");
            }
        }
        files.run(&mut w);
        // Read some of a back: the index starts at the next unread record.
        let ReadPlan::Read { at, len } = w.read_plan(&a, 200) else {
            panic!("readable");
        };
        let buf = files.0[&at.seg][at.offset as usize..][..len].to_vec();
        let taken = w
            .consume(&mut a, at, &buf, |_| true)
            .expect("valid")
            .records;
        assert!(taken > 0);
        let index = w.index([("a".to_owned(), &a), ("s@b".to_owned(), &b)]);
        assert!(index.len() > 1, "several segments");
        let mut got_a = Vec::new();
        let mut got_b = Vec::new();
        for (seq, entries) in &index {
            let text = crate::files::format_index(entries);
            let parsed = crate::files::parse_index(&text).expect("index parses");
            for (storage, records) in
                crate::files::read_indexed(&files.0[seq], &parsed).expect("original reader")
            {
                match storage.as_str() {
                    "a" => got_a.extend(records),
                    _ => got_b.extend(records),
                }
            }
        }
        let want = |range: std::ops::Range<u32>, step: usize| -> Vec<Vec<u8>> {
            range
                .step_by(step)
                .map(|i| format!("r{i:04}").into_bytes())
                .collect()
        };
        assert_eq!(got_a, want(taken as u32..120, 1));
        assert_eq!(got_b, want(0..120, 2));
    }

    #[test]
    fn a_segment_holding_only_meta_records_is_kept_behind_live_ones() {
        let mut w = DiskWriter::new(CONFIG);
        let mut files = Files::default();
        let (mut a, mut b) = (DiskQueue::default(), DiskQueue::default());
        // Segment 1: a's records and one of b's.
        for i in 0..20u32 {
            w.append(&mut a, &name("a"), format!("a{i:03}").as_bytes())
                .expect("append");
        }
        w.append(&mut b, &name("b"), b"b-kept").expect("append");
        files.run(&mut w);
        // Fill segment 1 so that what follows goes to segment 2.
        let mut filler = DiskQueue::default();
        while w.segments().count() < 2 {
            w.append(&mut filler, &name("f"), &[0; 200])
                .expect("append");
        }
        files.run(&mut w);
        // Read all of a and of the filler: their progress records go to
        // segment 2, which then holds nothing live.
        assert_eq!(files.read_all(&mut w, &mut a).len(), 20);
        files.read_all(&mut w, &mut filler);
        files.run(&mut w);
        // Twice: what one start keeps, the next must read the same way.
        for round in 0..2 {
            let r = files.recover();
            assert!(
                r.empty.is_empty(),
                "round {round}: nothing deleted: {:?}",
                r.empty
            );
            let names: Vec<&str> = r.queues.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(names, ["b"], "round {round}: a's records stay read");
            assert!(r.writer.next_id > filler.id(), "ids on disk are not reused");
        }
    }

    #[test]
    fn recovery_repairs_a_link_the_crash_did_not_write() {
        let mut w = DiskWriter::new(CONFIG);
        let mut files = Files::default();
        let mut q = DiskQueue::default();
        w.append(&mut q, &name("a"), b"1").expect("append");
        files.run(&mut w);
        w.append(&mut q, &name("a"), b"2").expect("append");
        // Execute the data write but not the link patch.
        let mut job = w.take_write().expect("job");
        job.patches.clear();
        let f = files.0.get_mut(&job.seg).expect("file");
        f.extend_from_slice(&job.bytes);
        let r = files.recover();
        assert_eq!(r.patches.len(), 1);
        for p in &r.patches {
            let f = files.0.get_mut(&p.seg).expect("file");
            f[p.pos as usize..p.pos as usize + 32].copy_from_slice(&p.header);
        }
        let mut w = r.writer;
        let mut q = r.queues[0].1.clone();
        assert_eq!(
            files.read_all(&mut w, &mut q),
            vec![b"1".to_vec(), b"2".to_vec()]
        );
    }
}
