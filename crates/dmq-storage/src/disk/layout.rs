//! Where things are in a shard's overflow: segment and index file names,
//! positions, the sizing, and the walk over the records of a segment's
//! bytes. Plain values; every other part of the overflow uses them.

use crate::files::{RecordHeader, MAGIC, OVERFLOW_HEADER_LEN};

/// A record header's length.
pub(super) const HEADER: u64 = OVERFLOW_HEADER_LEN as u64;
/// The segment magic's length: a segment holding only it is empty.
pub(super) const MAGIC_LEN: u64 = MAGIC.len() as u64;

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

/// A position in a shard's overflow: segment and byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Loc {
    pub seg: u32,
    pub offset: u64,
}

/// Sizing of a shard's overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskConfig {
    /// Bytes per segment file (a single larger record gets a segment of its own).
    pub segment_size: u64,
    /// Bytes of segment files this shard may hold; 0 = no limit.
    pub limit: u64,
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
