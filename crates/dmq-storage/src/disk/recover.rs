//! Rebuilding a shard's overflow from its segment files after a stop or a
//! crash: no index is needed, the meta records say which storage each
//! channel id is, how far it was read and whether it was dropped.

use std::collections::{BTreeMap, HashMap};

use super::layout::{DiskConfig, Loc};
use super::meta::Meta;
use super::queue::{DiskQueue, Part};
use super::segments::Segment;
use super::walk_records;
use super::writer::{DiskWriter, Patch};
use crate::files::{RecordHeader, OVERFLOW_HEADER_LEN};

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

/// What the meta records of every segment say, gathered before any data
/// record is placed.
#[derive(Default)]
struct MetaState {
    names: HashMap<u32, String>,
    read_to: HashMap<u32, Loc>,
    dropped_at: HashMap<u32, Loc>,
    /// The highest id named by any record: never given out again.
    max_id: u32,
}

impl MetaState {
    fn take(&mut self, here: Loc, channel_id: u32, payload: &[u8]) {
        self.max_id = self.max_id.max(channel_id);
        if channel_id != 0 {
            return;
        }
        // An id named by any record still on disk is never given to
        // another storage: its meta records would apply to that one.
        match Meta::decode(payload) {
            Some(Meta::Name { id, name }) => {
                self.max_id = self.max_id.max(id);
                self.names.insert(id, name);
            }
            Some(Meta::Progress { id, at }) => {
                self.max_id = self.max_id.max(id);
                let e = self.read_to.entry(id).or_insert(at);
                *e = (*e).max(at);
            }
            Some(Meta::Drop { id }) => {
                self.max_id = self.max_id.max(id);
                self.dropped_at.insert(id, here);
            }
            None => {}
        }
    }

    /// A data record not read back yet, nor dropped.
    fn is_live(&self, id: u32, here: Loc) -> bool {
        id != 0
            && self.read_to.get(&id).is_none_or(|&r| here >= r)
            && self.dropped_at.get(&id).is_none_or(|&d| here > d)
    }
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
    // First pass: the meta records and where each segment's valid content
    // ends (a torn tail is cut).
    let mut meta = MetaState::default();
    let mut truncate = Vec::new();
    let mut ends = Vec::new();
    for &seq in &seqs {
        let bytes = read(seq)?;
        let end = walk_records(&bytes, 0, |offset, header, payload| {
            meta.take(Loc { seg: seq, offset }, header.channel_id, payload);
        });
        if end < bytes.len() as u64 {
            truncate.push((seq, end));
        }
        ends.push(end);
    }
    // Second pass: the live data records into their storages' queues.
    let mut writer = DiskWriter::new(config);
    let mut rebuilt = Rebuilt::default();
    for (&seq, &end) in seqs.iter().zip(&ends) {
        let mut bytes = read(seq)?;
        bytes.truncate(end as usize);
        let live = rebuilt.place_segment(&meta, seq, &bytes);
        writer.segments.table.insert(
            seq,
            Segment {
                end,
                durable: end,
                live,
            },
        );
    }
    writer.segments.next_seq = seqs.last().map_or(1, |&seq| seq + 1);
    writer.next_id = meta.max_id.wrapping_add(1).max(1);
    let empty = drop_empty_head(&mut writer);
    let queues = rebuilt
        .queues
        .into_values()
        .map(|q| (meta.names[&q.id].clone(), q))
        .collect();
    Ok(Recovered {
        writer,
        queues,
        truncate,
        patches: rebuilt.patches,
        empty,
        orphans: rebuilt.orphans,
    })
}

/// The queues rebuilt from the data records, with the links to rewrite and
/// the records no name claims.
#[derive(Default)]
struct Rebuilt {
    queues: BTreeMap<u32, DiskQueue>,
    patches: Vec<Patch>,
    orphans: u64,
}

impl Rebuilt {
    /// Places the live records of segment `seq` (its valid `bytes`) in
    /// their queues; returns how many there were.
    fn place_segment(&mut self, meta: &MetaState, seq: u32, bytes: &[u8]) -> u64 {
        let mut live = 0u64;
        walk_records(bytes, 0, |offset, header, _| {
            let id = header.channel_id;
            let here = Loc { seg: seq, offset };
            if !meta.is_live(id, here) {
                return;
            }
            if !meta.names.contains_key(&id) {
                self.orphans += 1;
                return;
            }
            live += 1;
            let q = self.queues.entry(id).or_insert_with(|| DiskQueue {
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
                            self.patches.push(Patch {
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
        live
    }
}

/// Segments with nothing live go from the head only, as while running: a
/// later one may hold the progress, drop or name records that older
/// segments' records depend on. When nothing at all is live, every one
/// goes. Returns the segments taken out (to delete).
fn drop_empty_head(writer: &mut DiskWriter) -> Vec<u32> {
    let table = &mut writer.segments.table;
    let nothing_live = table.values().all(|s| s.live == 0);
    let empty: Vec<u32> = table
        .iter()
        .take_while(|(_, s)| s.live == 0 || nothing_live)
        .map(|(&seq, _)| seq)
        .collect();
    for seq in &empty {
        table.remove(seq);
    }
    empty
}
