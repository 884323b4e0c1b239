//! The disk-overflow data file `overflow.dat` (spec 5.3): the magic
//! `QDSKOF01`, then records of every overflow channel interleaved, each a
//! 32-byte [`RecordHeader`] and its payload. A channel's records form a
//! forward chain: each header's `next_offset` is the distance to the
//! channel's next record, 0 at the newest one.
//!
//! [`read_channel_records`] and [`read_indexed`] follow the chains from the
//! index (the original's startup); [`scan`] walks the file front to back
//! without an index (crash recovery, which the original does not have);
//! [`OverflowWriter`] builds a file in memory the way the original appends
//! to it.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

use super::index::{IndexEntry, INDEX_FILE_NAME};
use super::{le_u32, le_u64, FileError, Records};

/// The data file's name in the data directory.
pub const DATA_FILE_NAME: &str = "overflow.dat";

/// The 8 bytes every non-empty data file starts with.
pub const MAGIC: [u8; 8] = *b"QDSKOF01";

/// Size of a record header.
pub const OVERFLOW_HEADER_LEN: usize = 32;

const MAGIC_LEN: u64 = MAGIC.len() as u64;
const HEADER_LEN: u64 = OVERFLOW_HEADER_LEN as u64;

/// The 32-byte record header (spec 5.3), little-endian with zeroed padding:
/// `u32` channel id at 0, `i64` next_offset at 8, `u8` parity at 16, `u64`
/// length at 24.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    /// Overflow channel id, ≥ 1; 0 marks a filler record.
    pub channel_id: u32,
    /// Distance from this record's start to the channel's next record; 0 for
    /// the channel's newest record.
    pub next_offset: i64,
    /// Parity byte; see [`RecordHeader::parity_of`].
    pub parity: u8,
    /// Payload bytes following the header.
    pub length: u64,
}

/// XOR-folds 64 bits to 8 (>>32, >>16, >>8), as the original does.
fn fold(x: u64) -> u8 {
    let x = x ^ (x >> 32);
    let x = x ^ (x >> 16);
    let x = x ^ (x >> 8);
    x as u8
}

impl RecordHeader {
    /// A header with its parity computed.
    pub fn new(channel_id: u32, next_offset: i64, length: u64) -> RecordHeader {
        RecordHeader {
            channel_id,
            next_offset,
            parity: RecordHeader::parity_of(channel_id, next_offset, length),
            length,
        }
    }

    /// The parity byte: `channel ^ next_offset ^ length`, each widened to 64
    /// bits (parity counted as 0), folded to 8 bits.
    pub fn parity_of(channel_id: u32, next_offset: i64, length: u64) -> u8 {
        fold(u64::from(channel_id) ^ next_offset as u64 ^ length)
    }

    /// Whether the stored parity matches: folding all four fields, the
    /// stored parity included, gives 0.
    pub fn parity_ok(&self) -> bool {
        fold(
            u64::from(self.channel_id)
                ^ self.next_offset as u64
                ^ u64::from(self.parity)
                ^ self.length,
        ) == 0
    }

    /// The header's 32 bytes.
    pub fn encode(&self) -> [u8; OVERFLOW_HEADER_LEN] {
        let mut b = [0u8; OVERFLOW_HEADER_LEN];
        b[0..4].copy_from_slice(&self.channel_id.to_le_bytes());
        b[8..16].copy_from_slice(&self.next_offset.to_le_bytes());
        b[16] = self.parity;
        b[24..32].copy_from_slice(&self.length.to_le_bytes());
        b
    }

    /// Reads the fields; padding is ignored and parity is not checked.
    pub fn decode(bytes: &[u8; OVERFLOW_HEADER_LEN]) -> RecordHeader {
        RecordHeader {
            channel_id: le_u32(bytes, 0),
            next_offset: le_u64(bytes, 8) as i64,
            parity: bytes[16],
            length: le_u64(bytes, 24),
        }
    }
}

fn invalid(offset: u64, reason: String) -> FileError {
    FileError::Invalid {
        file: DATA_FILE_NAME.to_owned(),
        offset,
        reason,
    }
}

/// Checks the magic: an empty file is accepted (no overflow yet); a file
/// shorter than 8 bytes or with other bytes fails, as at the original's
/// startup.
pub fn check_magic(data: &[u8]) -> Result<(), FileError> {
    if data.is_empty() {
        return Ok(());
    }
    match data.get(..MAGIC.len()) {
        None => Err(FileError::Truncated {
            file: DATA_FILE_NAME.to_owned(),
            offset: 0,
            what: "magic",
            needed: MAGIC_LEN,
            available: data.len() as u64,
        }),
        Some(m) if m != MAGIC => Err(invalid(0, format!("bad magic {m:02x?}"))),
        Some(_) => Ok(()),
    }
}

/// The header at `offset`, bounds- and parity-checked.
fn header_at(data: &[u8], offset: u64) -> Result<RecordHeader, FileError> {
    let len = data.len() as u64;
    if offset < MAGIC_LEN {
        return Err(invalid(offset, "record offset inside the magic".to_owned()));
    }
    if offset >= len {
        return Err(invalid(
            offset,
            format!("record offset beyond the end of the file ({len} bytes)"),
        ));
    }
    let available = len - offset;
    if available < HEADER_LEN {
        return Err(FileError::Truncated {
            file: DATA_FILE_NAME.to_owned(),
            offset,
            what: "record header",
            needed: HEADER_LEN,
            available,
        });
    }
    let start = offset as usize;
    let mut raw = [0u8; OVERFLOW_HEADER_LEN];
    raw.copy_from_slice(&data[start..start + OVERFLOW_HEADER_LEN]);
    let header = RecordHeader::decode(&raw);
    if !header.parity_ok() {
        return Err(invalid(
            offset,
            format!("parity error in record header {header:?}"),
        ));
    }
    Ok(header)
}

/// The payload of the record at `offset`, bounds-checked.
fn payload_at<'a>(
    data: &'a [u8],
    offset: u64,
    header: &RecordHeader,
) -> Result<&'a [u8], FileError> {
    let start = offset + HEADER_LEN; // header_at checked that the header fits
    let available = (data.len() as u64).saturating_sub(start);
    if header.length > available {
        return Err(FileError::Truncated {
            file: DATA_FILE_NAME.to_owned(),
            offset: start,
            what: "record payload",
            needed: header.length,
            available,
        });
    }
    Ok(&data[start as usize..(start + header.length) as usize])
}

/// One channel's chain, as followed from its first record.
struct Chain<'a> {
    channel_id: u32,
    last_offset: u64,
    bytes: u64,
    payloads: Vec<&'a [u8]>,
}

fn walk(data: &[u8], first_offset: u64, records: u64) -> Result<Chain<'_>, FileError> {
    check_magic(data)?;
    if records == 0 {
        return Err(invalid(
            first_offset,
            "a channel with zero records".to_owned(),
        ));
    }
    let mut chain = Chain {
        channel_id: 0,
        last_offset: first_offset,
        bytes: 0,
        payloads: Vec::new(),
    };
    let mut offset = first_offset;
    for i in 0..records {
        let header = header_at(data, offset)?;
        if header.channel_id == 0 {
            return Err(invalid(
                offset,
                "filler record (channel id 0) in a channel's chain".to_owned(),
            ));
        }
        if i == 0 {
            chain.channel_id = header.channel_id;
        } else if header.channel_id != chain.channel_id {
            return Err(invalid(
                offset,
                format!(
                    "record of channel id {} in the chain of channel id {}",
                    header.channel_id, chain.channel_id
                ),
            ));
        }
        let payload = payload_at(data, offset, &header)?;
        chain.payloads.push(payload);
        chain.bytes += header.length;
        chain.last_offset = offset;
        let last = i + 1 == records;
        if last {
            if header.next_offset != 0 {
                return Err(invalid(
                    offset,
                    format!(
                        "next_offset {} at the channel's last record (record {records})",
                        header.next_offset
                    ),
                ));
            }
        } else {
            // Records are appended, so the next one starts after this one ends;
            // this also guarantees the walk moves forward.
            let min_next = HEADER_LEN + header.length;
            if header.next_offset <= 0 || (header.next_offset as u64) < min_next {
                return Err(invalid(
                    offset,
                    format!(
                        "next_offset {} at record {} of {records} (must be at least {min_next})",
                        header.next_offset,
                        i + 1
                    ),
                ));
            }
            offset = offset.saturating_add(header.next_offset as u64);
        }
    }
    Ok(chain)
}

/// The payloads of one channel, in pop order: follows the `next_offset`
/// links for `records` records from `first_offset`, checking bounds, parity,
/// that every record has the first record's (non-zero) channel id, and that
/// `next_offset` is 0 exactly at the last record.
pub fn read_channel_records(
    data: &[u8],
    first_offset: u64,
    records: u64,
) -> Result<Vec<Vec<u8>>, FileError> {
    let chain = walk(data, first_offset, records)?;
    Ok(chain.payloads.into_iter().map(<[u8]>::to_vec).collect())
}

/// Loads every channel of an index (spec 5.3, "Loading the index"): checks
/// the magic and that the file holds at least `bytes + records × 32` bytes
/// past the magic, follows each chain with [`read_channel_records`]' checks,
/// and checks that each chain ends at the entry's `last_offset`, holds its
/// `bytes`, and that no two entries share a channel id. Returns the storage
/// names and payloads in index order.
pub fn read_indexed(
    data: &[u8],
    entries: &[IndexEntry],
) -> Result<Vec<(String, Records)>, FileError> {
    check_magic(data)?;
    let needed = entries.iter().fold(0u64, |sum, e| {
        sum.saturating_add(e.bytes)
            .saturating_add(e.records.saturating_mul(HEADER_LEN))
    });
    let available = (data.len() as u64).saturating_sub(MAGIC_LEN);
    if needed > available {
        return Err(FileError::Truncated {
            file: DATA_FILE_NAME.to_owned(),
            offset: MAGIC_LEN,
            what: "records listed in the index",
            needed,
            available,
        });
    }
    let conflict = |e: &IndexEntry, reason: String| FileError::Storage {
        file: INDEX_FILE_NAME.to_owned(),
        storage: e.storage_name.clone(),
        reason,
    };
    let mut ids: BTreeMap<u32, &str> = BTreeMap::new();
    let mut out = Vec::new();
    for e in entries {
        let chain = walk(data, e.first_offset, e.records)?;
        if chain.last_offset != e.last_offset {
            return Err(conflict(
                e,
                format!(
                    "the chain ends at offset {}, the index says {}",
                    chain.last_offset, e.last_offset
                ),
            ));
        }
        if chain.bytes != e.bytes {
            return Err(conflict(
                e,
                format!(
                    "the chain holds {} bytes, the index says {}",
                    chain.bytes, e.bytes
                ),
            ));
        }
        match ids.entry(chain.channel_id) {
            Entry::Occupied(other) => {
                return Err(conflict(
                    e,
                    format!(
                        "channel id {} is also used by {:?}",
                        chain.channel_id,
                        other.get()
                    ),
                ));
            }
            Entry::Vacant(v) => {
                v.insert(&e.storage_name);
            }
        }
        out.push((
            e.storage_name.clone(),
            chain.payloads.into_iter().map(<[u8]>::to_vec).collect(),
        ));
    }
    Ok(out)
}

/// A record found by [`scan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScannedRecord {
    /// Offset of the record's header.
    pub offset: u64,
    /// The header, parity-checked.
    pub header: RecordHeader,
}

impl ScannedRecord {
    /// The record's payload in the data that was scanned (empty if `data` is
    /// not that data).
    pub fn payload<'a>(&self, data: &'a [u8]) -> &'a [u8] {
        let start = self.offset.saturating_add(HEADER_LEN);
        let end = start.saturating_add(self.header.length);
        usize::try_from(start)
            .ok()
            .zip(usize::try_from(end).ok())
            .and_then(|(s, e)| data.get(s..e))
            .unwrap_or_default()
    }
}

/// Why [`scan`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScanStop {
    /// At the end of the file, after a whole record (or an empty file).
    #[default]
    End,
    /// The file is shorter than the magic, or the magic is wrong.
    BadMagic,
    /// A partial header at `offset`.
    TornHeader {
        /// Where the header starts.
        offset: u64,
    },
    /// A header at `offset` whose payload runs past the end of the file.
    TornPayload {
        /// Where the header starts.
        offset: u64,
    },
    /// A header at `offset` whose parity is wrong.
    Parity {
        /// Where the header starts.
        offset: u64,
    },
}

/// What [`scan`] found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScanResult {
    /// Records per channel id, in file order (filler records excluded).
    pub channels: BTreeMap<u32, Vec<ScannedRecord>>,
    /// Number of filler records (channel id 0) skipped.
    pub filler_count: u64,
    /// Where the valid data ends: 0 for an empty file or a bad magic,
    /// otherwise the end of the last whole record (at least 8).
    pub valid_end: u64,
    /// Why the scan stopped at `valid_end`.
    pub stop: ScanStop,
}

impl ScanResult {
    /// The payloads of `channel_id` in file order.
    pub fn payloads<'a>(&self, data: &'a [u8], channel_id: u32) -> Vec<&'a [u8]> {
        self.channels
            .get(&channel_id)
            .map(|records| records.iter().map(|r| r.payload(data)).collect())
            .unwrap_or_default()
    }
}

/// Walks the whole data file from offset 8, record by record, without an
/// index: for recovery after a crash, when `ofchannels.csv` is stale or
/// missing (spec 5.6). Stops at the end of the file or at the first torn or
/// corrupt record (a partial header or payload, or a parity error); all that
/// lies before is returned, grouped by channel id.
///
/// The file keeps popped records (there is no tombstone, spec 5.3), so the
/// result is everything pushed since the file was last emptied; which of it
/// was already delivered is not recorded anywhere. A channel's newest record
/// may have a `next_offset` pointing into a torn tail, because the original
/// patches the link before it appends the record.
pub fn scan(data: &[u8]) -> ScanResult {
    let mut result = ScanResult::default();
    if data.is_empty() {
        return result;
    }
    if check_magic(data).is_err() {
        result.stop = ScanStop::BadMagic;
        return result;
    }
    let len = data.len() as u64;
    let mut offset = MAGIC_LEN;
    result.valid_end = offset;
    while offset < len {
        if len - offset < HEADER_LEN {
            result.stop = ScanStop::TornHeader { offset };
            return result;
        }
        let header = match header_at(data, offset) {
            Ok(h) => h,
            Err(_) => {
                result.stop = ScanStop::Parity { offset };
                return result;
            }
        };
        if payload_at(data, offset, &header).is_err() {
            result.stop = ScanStop::TornPayload { offset };
            return result;
        }
        if header.channel_id == 0 {
            result.filler_count += 1;
        } else {
            result
                .channels
                .entry(header.channel_id)
                .or_default()
                .push(ScannedRecord { offset, header });
        }
        offset += HEADER_LEN + header.length;
        result.valid_end = offset;
    }
    result
}

/// Builds a data file in memory exactly as the original appends to it:
/// the magic before the first record, and each push patches the channel's
/// previous newest header (`next_offset`, parity) before appending. Used to
/// write overflow files in tests and tools.
#[derive(Debug, Clone, Default)]
pub struct OverflowWriter {
    data: Vec<u8>,
    channels: BTreeMap<u32, ChainState>,
}

#[derive(Debug, Clone, Copy)]
struct ChainState {
    first_offset: u64,
    last_offset: u64,
    records: u64,
    bytes: u64,
}

impl OverflowWriter {
    /// An empty (zero-byte) data file.
    pub fn new() -> OverflowWriter {
        OverflowWriter::default()
    }

    fn start(&mut self) -> u64 {
        if self.data.is_empty() {
            self.data.extend_from_slice(&MAGIC);
        }
        self.data.len() as u64
    }

    /// Appends a record to channel `channel_id` (≥ 1; 0 is a programmer
    /// error) and returns its offset.
    pub fn push(&mut self, channel_id: u32, payload: &[u8]) -> u64 {
        assert_ne!(channel_id, 0, "channel id 0 is reserved for filler records");
        let pos = self.start();
        let length = payload.len() as u64;
        match self.channels.entry(channel_id) {
            Entry::Occupied(mut o) => {
                let state = o.get_mut();
                let prev = state.last_offset as usize;
                let mut raw = [0u8; OVERFLOW_HEADER_LEN];
                raw.copy_from_slice(&self.data[prev..prev + OVERFLOW_HEADER_LEN]);
                let old = RecordHeader::decode(&raw);
                let patched =
                    RecordHeader::new(channel_id, (pos - state.last_offset) as i64, old.length);
                self.data[prev..prev + OVERFLOW_HEADER_LEN].copy_from_slice(&patched.encode());
                state.last_offset = pos;
                state.records += 1;
                state.bytes += length;
            }
            Entry::Vacant(v) => {
                v.insert(ChainState {
                    first_offset: pos,
                    last_offset: pos,
                    records: 1,
                    bytes: length,
                });
            }
        }
        self.data
            .extend_from_slice(&RecordHeader::new(channel_id, 0, length).encode());
        self.data.extend_from_slice(payload);
        pos
    }

    /// Appends a filler record (channel id 0) with `payload_len` zero bytes.
    pub fn push_filler(&mut self, payload_len: usize) -> u64 {
        let pos = self.start();
        self.data
            .extend_from_slice(&RecordHeader::new(0, 0, payload_len as u64).encode());
        self.data.resize(self.data.len() + payload_len, 0);
        pos
    }

    /// The index line for `channel_id` under `storage_name`, if it has records.
    pub fn index_entry(&self, channel_id: u32, storage_name: &str) -> Option<IndexEntry> {
        self.channels.get(&channel_id).map(|s| IndexEntry {
            storage_name: storage_name.to_owned(),
            records: s.records,
            bytes: s.bytes,
            first_offset: s.first_offset,
            last_offset: s.last_offset,
        })
    }

    /// The file's bytes so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.data
    }

    /// The file's bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.data
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::random_bytes;

    #[test]
    fn parity_worked_example() {
        // Spec 5.3: channel 3, length 10 → parity 3 ^ 10 = 9.
        assert_eq!(RecordHeader::parity_of(3, 0, 10), 9);
        let h = RecordHeader::new(3, 0, 10);
        assert_eq!(h.parity, 9);
        assert!(h.parity_ok());
        // Folding covers all 64 bits of every field.
        assert_eq!(RecordHeader::parity_of(0, 0x0100_0000_0000_0000, 0), 1);
        assert_eq!(RecordHeader::parity_of(0, -1, 0), 0);
        assert_eq!(RecordHeader::parity_of(0x0102_0304, 0, 0), 4); // 1 ^ 2 ^ 3 ^ 4
        for bad in 0..=255u8 {
            let h = RecordHeader { parity: bad, ..h };
            assert_eq!(h.parity_ok(), bad == 9);
        }
    }

    #[test]
    fn header_layout_round_trip() {
        let h = RecordHeader::new(0xA1B2_C3D4, 0x1122_3344_5566_7788, 0x99AA_BBCC_DDEE_FF00);
        let b = h.encode();
        assert_eq!(&b[0..4], &0xA1B2_C3D4u32.to_le_bytes());
        assert_eq!(&b[4..8], &[0; 4]);
        assert_eq!(&b[8..16], &0x1122_3344_5566_7788i64.to_le_bytes());
        assert_eq!(b[16], h.parity);
        assert_eq!(&b[17..24], &[0; 7]);
        assert_eq!(&b[24..32], &0x99AA_BBCC_DDEE_FF00u64.to_le_bytes());
        assert_eq!(RecordHeader::decode(&b), h);
        assert!(RecordHeader::decode(&b).parity_ok());
    }

    #[test]
    fn magic() {
        assert!(check_magic(b"").is_ok());
        assert!(check_magic(b"QDSKOF01").is_ok());
        assert!(matches!(
            check_magic(b"QDSK"),
            Err(FileError::Truncated { .. })
        ));
        assert!(matches!(
            check_magic(b"QDSKOF02"),
            Err(FileError::Invalid { .. })
        ));
    }

    fn sample() -> (OverflowWriter, Vec<IndexEntry>) {
        let mut w = OverflowWriter::new();
        w.push(1, b"a1");
        w.push(2, b"b1");
        w.push(1, b"");
        w.push_filler(5);
        w.push(1, b"a3-longer");
        w.push(2, b"b2");
        w.push(3, b"c1");
        let entries = vec![
            w.index_entry(1, "ch1").unwrap(),
            w.index_entry(2, "sub@ch2").unwrap(),
            w.index_entry(3, "@ch3").unwrap(),
        ];
        (w, entries)
    }

    #[test]
    fn chains_round_trip() {
        let (w, entries) = sample();
        let data = w.as_bytes();
        assert_eq!(entries[0].records, 3);
        assert_eq!(entries[0].bytes, 11);
        assert_eq!(
            read_channel_records(data, entries[0].first_offset, 3).unwrap(),
            vec![b"a1".to_vec(), vec![], b"a3-longer".to_vec()]
        );
        let loaded = read_indexed(data, &entries).unwrap();
        assert_eq!(
            loaded[1],
            ("sub@ch2".to_owned(), vec![b"b1".to_vec(), b"b2".to_vec()])
        );
        assert_eq!(loaded[2], ("@ch3".to_owned(), vec![b"c1".to_vec()]));

        let s = scan(data);
        assert_eq!(s.stop, ScanStop::End);
        assert_eq!(s.valid_end, data.len() as u64);
        assert_eq!(s.filler_count, 1);
        assert_eq!(s.payloads(data, 1), vec![&b"a1"[..], b"", b"a3-longer"]);
        assert_eq!(s.payloads(data, 2), vec![&b"b1"[..], b"b2"]);
        assert_eq!(s.channels[&1][0].offset, entries[0].first_offset);
        assert_eq!(s.channels[&1][2].offset, entries[0].last_offset);
        // Scan and the links agree.
        for records in s.channels.values() {
            for pair in records.windows(2) {
                assert_eq!(
                    pair[0].offset + pair[0].header.next_offset as u64,
                    pair[1].offset
                );
            }
            assert_eq!(records.last().unwrap().header.next_offset, 0);
        }
    }

    #[test]
    fn chain_checks() {
        let (w, entries) = sample();
        let data = w.as_bytes();
        let e = &entries[0];
        // Too few records: next_offset is not 0 at the claimed last record.
        assert!(matches!(
            read_channel_records(data, e.first_offset, 2),
            Err(FileError::Invalid { .. })
        ));
        // Too many: the newest record has next_offset 0 before the end.
        assert!(matches!(
            read_channel_records(data, e.first_offset, 4),
            Err(FileError::Invalid { .. })
        ));
        assert!(matches!(
            read_channel_records(data, e.first_offset, 0),
            Err(FileError::Invalid { .. })
        ));
        // Offsets inside the magic, beyond the end, or not at a header.
        assert!(read_channel_records(data, 0, 1).is_err());
        assert!(read_channel_records(data, data.len() as u64, 1).is_err());
        assert!(read_channel_records(data, u64::MAX, 1).is_err());
        assert!(read_channel_records(data, e.first_offset + 1, 1).is_err());
        // The filler record is not a channel.
        let filler = scan(data).channels[&1][2].offset - 32 - 5;
        assert!(read_channel_records(data, filler, 1).is_err());
        // A chain that crosses into another channel.
        let mut bad = data.to_vec();
        let first = e.first_offset as usize;
        let other = entries[1].first_offset as i64 - e.first_offset as i64;
        bad[first..first + 32].copy_from_slice(&RecordHeader::new(1, other, 2).encode());
        let err = read_channel_records(&bad, e.first_offset, 3).unwrap_err();
        assert!(err.to_string().contains("channel id 2"), "{err}");
        // A backwards or overlapping link.
        bad[first..first + 32].copy_from_slice(&RecordHeader::new(1, 10, 2).encode());
        assert!(read_channel_records(&bad, e.first_offset, 3).is_err());
        bad[first..first + 32].copy_from_slice(&RecordHeader::new(1, -8, 2).encode());
        assert!(read_channel_records(&bad, e.first_offset, 3).is_err());
        // A parity error.
        let mut bad = data.to_vec();
        bad[first + 16] ^= 1;
        let err = read_channel_records(&bad, e.first_offset, 3).unwrap_err();
        assert!(err.to_string().contains("parity"), "{err}");
        assert_eq!(err.file(), "overflow.dat");
    }

    #[test]
    fn index_consistency_checks() {
        let (w, entries) = sample();
        let data = w.as_bytes();
        let mut wrong_last = entries.clone();
        wrong_last[0].last_offset = wrong_last[0].first_offset;
        assert!(matches!(
            read_indexed(data, &wrong_last),
            Err(FileError::Storage { .. })
        ));
        let mut wrong_bytes = entries.clone();
        wrong_bytes[1].bytes = 5;
        assert!(matches!(
            read_indexed(data, &wrong_bytes),
            Err(FileError::Storage { .. })
        ));
        // Two entries on one chain (parse_index would reject the shared last
        // offset; read_indexed catches the shared id). A filler makes room
        // for the size check.
        let mut padded = OverflowWriter::new();
        padded.push(1, b"x");
        padded.push(1, b"y");
        padded.push_filler(100);
        let mut same_id = vec![padded.index_entry(1, "ch").unwrap()];
        same_id.push(IndexEntry {
            storage_name: "other".to_owned(),
            records: 1,
            bytes: 1,
            first_offset: same_id[0].last_offset,
            last_offset: same_id[0].last_offset,
        });
        let err = read_indexed(padded.as_bytes(), &same_id).unwrap_err();
        assert!(err.to_string().contains("channel id 1"), "{err}");
        let mut too_big = entries.clone();
        too_big[2].bytes = 1 << 40;
        assert!(matches!(
            read_indexed(data, &too_big),
            Err(FileError::Truncated { .. })
        ));
        let mut huge = entries.clone();
        huge[2].records = u64::MAX;
        assert!(read_indexed(data, &huge).is_err());
        assert!(read_indexed(b"", &[]).unwrap().is_empty());
        assert!(read_indexed(b"", &entries).is_err());
    }

    #[test]
    fn every_truncation() {
        let (w, entries) = sample();
        let data = w.as_bytes();
        let full = scan(data);
        let record_ends: Vec<u64> = std::iter::once(8)
            .chain(
                full.channels
                    .values()
                    .flatten()
                    .map(|r| r.offset + 32 + r.header.length),
            )
            .chain(std::iter::once(8 + 32 + 2 + 32 + 2 + 32 + 32 + 5)) // the filler's end
            .collect();
        for cut in 0..data.len() {
            let part = &data[..cut];
            assert!(read_indexed(part, &entries).is_err(), "cut {cut}");
            let s = scan(part);
            assert!(s.valid_end <= cut as u64);
            if s.stop == ScanStop::End {
                assert_eq!(s.valid_end, cut as u64, "cut {cut}");
            }
            if cut >= 8 {
                assert!(
                    record_ends.contains(&s.valid_end),
                    "cut {cut}: {}",
                    s.valid_end
                );
                // What was found is a prefix of the full scan.
                for (id, records) in &s.channels {
                    assert_eq!(records[..], full.channels[id][..records.len()]);
                }
                // Rescanning the valid prefix finds the same, cleanly.
                let again = scan(&part[..s.valid_end as usize]);
                assert_eq!(again.stop, ScanStop::End);
                assert_eq!(again.channels, s.channels);
            } else {
                assert_eq!(s.valid_end, 0);
            }
        }
    }

    #[test]
    fn scan_stops_at_corruption() {
        let (w, _) = sample();
        let mut data = w.into_bytes();
        let second = 8 + 32 + 2;
        data[second + 16] ^= 0x40;
        let s = scan(&data);
        assert_eq!(
            s.stop,
            ScanStop::Parity {
                offset: second as u64
            }
        );
        assert_eq!(s.valid_end, second as u64);
        assert_eq!(s.channels.len(), 1);
        assert_eq!(scan(b"QDSKOF0").stop, ScanStop::BadMagic);
        assert_eq!(scan(b"XDSKOF01").valid_end, 0);
        assert_eq!(scan(b""), ScanResult::default());
        assert_eq!(scan(&MAGIC).valid_end, 8);
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = fastrand::Rng::with_seed(0x9E37_79B9_7F4A_7C15);
        let (w, entries) = sample();
        let sample = w.into_bytes();
        for round in 0..20_000 {
            let data = if round % 2 == 0 {
                let len = rng.usize(..160);
                let mut d = random_bytes(&mut rng, len);
                if len >= 8 {
                    d[..8].copy_from_slice(&MAGIC);
                }
                d
            } else {
                // Flip a few bytes of a valid file.
                let mut d = sample.clone();
                for _ in 0..rng.usize(1..4) {
                    let i = rng.usize(..d.len());
                    d[i] = rng.u8(..);
                }
                d
            };
            let s = scan(&data);
            assert!(s.valid_end <= data.len() as u64);
            let first = rng.u64(..data.len() as u64 + 2);
            let _ = read_channel_records(&data, first, rng.u64(..5));
            let _ = read_indexed(&data, &entries);
        }
    }
}
