//! The memory dump `<storage_name>.rq` (spec 5.2): written at clean shutdown
//! for each storage whose memory ring is non-empty, loaded and deleted at the
//! next startup.
//!
//! Format, little-endian: `u32` record count, `u64` n, then n bytes: the
//! ring's unread records in pop order, each a `u64` length and its payload
//! (exactly the ring's own record layout, spec 5.1).

use std::fs;
use std::io::{self, Read, Write};
use std::path::Path;

use super::{le_u32, le_u64, FileError};
use crate::names::is_valid_storage_file_stem;
use crate::ring::{Ring, RECORD_HEADER_LEN};

/// Extension of dump files, with its dot.
pub const DUMP_EXTENSION: &str = ".rq";

/// Bytes before the records: `u32` record count and `u64` data length.
pub const DUMP_HEADER_LEN: usize = 12;

/// Name used in errors by [`read_dump`], which does not know its file.
const UNNAMED: &str = "<storage>.rq";

/// The dump file name of a storage: `ch` → `ch.rq`, `sub@ch` → `sub@ch.rq`.
pub fn dump_file_name(storage_name: &str) -> String {
    format!("{storage_name}{DUMP_EXTENSION}")
}

/// The storage name of a dump file, or `None` if the original would skip the
/// file: not ending in `.rq`, or a stem failing the name check of spec 5.2.
pub fn parse_dump_file_name(file_name: &str) -> Option<&str> {
    file_name
        .strip_suffix(DUMP_EXTENSION)
        .filter(|stem| is_valid_storage_file_stem(stem))
}

/// A validated dump, borrowing the file's bytes. Iterating cannot fail: every
/// record was checked by [`read_dump`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dump<'a> {
    records: u32,
    data: &'a [u8],
}

impl<'a> Dump<'a> {
    /// Number of records.
    pub fn len(&self) -> usize {
        self.records as usize
    }

    /// Whether the dump holds no records.
    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// The data part (records with their headers). Its length is what must
    /// fit into the ring's capacity (spec 5.2, quirk Q7).
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// The payloads in pop order.
    pub fn iter(&self) -> DumpIter<'a> {
        DumpIter {
            rest: self.data,
            remaining: self.records,
        }
    }

    /// The payloads, copied.
    pub fn to_vecs(&self) -> Vec<Vec<u8>> {
        self.iter().map(<[u8]>::to_vec).collect()
    }
}

impl<'a> IntoIterator for Dump<'a> {
    type Item = &'a [u8];
    type IntoIter = DumpIter<'a>;

    fn into_iter(self) -> DumpIter<'a> {
        self.iter()
    }
}

/// Iterator over a validated [`Dump`]'s payloads.
#[derive(Debug, Clone)]
pub struct DumpIter<'a> {
    rest: &'a [u8],
    remaining: u32,
}

impl<'a> Iterator for DumpIter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.remaining == 0 {
            return None;
        }
        // Validated by `read_dump`; `split_record` re-checks anyway.
        let (payload, rest) = split_record(self.rest)?;
        self.rest = rest;
        self.remaining -= 1;
        Some(payload)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.remaining as usize;
        (n, Some(n))
    }
}

/// Splits the first record (header + payload) off `bytes`, if it is whole.
fn split_record(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let header = bytes.get(..RECORD_HEADER_LEN)?;
    let len = usize::try_from(le_u64(header, 0)).ok()?;
    let rest = &bytes[RECORD_HEADER_LEN..];
    if len > rest.len() {
        return None;
    }
    Some(rest.split_at(len))
}

/// Decodes and validates a whole dump file (spec 5.2): the header must be
/// there, n must equal the bytes that follow exactly (we reject trailing
/// bytes, which we never write), an empty queue must have no data, each
/// record header and payload must fit, the lengths must add up to n, and the
/// record count must match. The capacity check of quirk Q7 is the caller's,
/// with [`Dump::data`] (or see [`load_dump_file`]).
pub fn read_dump(bytes: &[u8]) -> Result<Dump<'_>, FileError> {
    let truncated = |offset: usize, what, needed: usize, available: usize| FileError::Truncated {
        file: UNNAMED.to_owned(),
        offset: offset as u64,
        what,
        needed: needed as u64,
        available: available as u64,
    };
    let invalid = |offset: usize, reason: String| FileError::Invalid {
        file: UNNAMED.to_owned(),
        offset: offset as u64,
        reason,
    };
    if bytes.len() < DUMP_HEADER_LEN {
        return Err(truncated(0, "dump header", DUMP_HEADER_LEN, bytes.len()));
    }
    let records = le_u32(bytes, 0);
    let n = le_u64(bytes, 4);
    let data = &bytes[DUMP_HEADER_LEN..];
    let available = data.len();
    if n > available as u64 {
        return Err(FileError::Truncated {
            file: UNNAMED.to_owned(),
            offset: DUMP_HEADER_LEN as u64,
            what: "dump data",
            needed: n,
            available: available as u64,
        });
    }
    if n < available as u64 {
        return Err(invalid(
            DUMP_HEADER_LEN + n as usize,
            format!("{} bytes after the {n} data bytes", available as u64 - n),
        ));
    }
    if records == 0 && n != 0 {
        return Err(invalid(4, format!("empty queue with {n} data bytes")));
    }
    let mut rest = data;
    let mut found: u32 = 0;
    while !rest.is_empty() {
        let offset = bytes.len() - rest.len();
        if found == records {
            return Err(invalid(
                offset,
                format!("data continues after the {records} records announced"),
            ));
        }
        if rest.len() < RECORD_HEADER_LEN {
            return Err(truncated(
                offset,
                "record header",
                RECORD_HEADER_LEN,
                rest.len(),
            ));
        }
        let len = le_u64(rest, 0);
        let payload_available = rest.len() - RECORD_HEADER_LEN;
        if len > payload_available as u64 {
            return Err(FileError::Truncated {
                file: UNNAMED.to_owned(),
                offset: (offset + RECORD_HEADER_LEN) as u64,
                what: "record payload",
                needed: len,
                available: payload_available as u64,
            });
        }
        rest = &rest[RECORD_HEADER_LEN + len as usize..];
        found += 1;
    }
    if found != records {
        return Err(invalid(
            0,
            format!("{records} records announced, the data holds {found}"),
        ));
    }
    Ok(Dump { records, data })
}

/// Encodes payloads as a dump file. Fails only with more than `u32::MAX`
/// records.
pub fn encode_dump<'a, I>(payloads: I) -> Result<Vec<u8>, FileError>
where
    I: IntoIterator<Item = &'a [u8]>,
{
    let mut count: u64 = 0;
    let mut out = vec![0u8; DUMP_HEADER_LEN];
    for payload in payloads {
        out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        out.extend_from_slice(payload);
        count += 1;
    }
    let records = u32::try_from(count).map_err(|_| too_many(count))?;
    let n = (out.len() - DUMP_HEADER_LEN) as u64;
    out[..4].copy_from_slice(&records.to_le_bytes());
    out[4..DUMP_HEADER_LEN].copy_from_slice(&n.to_le_bytes());
    Ok(out)
}

/// Encodes a ring's unread records as a dump file, straight from
/// [`Ring::as_slices`] (the ring already stores the dump's record layout).
pub fn encode_dump_ring(ring: &Ring) -> Result<Vec<u8>, FileError> {
    let mut out = Vec::new();
    write_dump(&mut out, ring).map_err(|source| FileError::Io {
        file: UNNAMED.to_owned(),
        source,
    })?;
    Ok(out)
}

/// Writes a ring's dump to `w`. The original writes nothing for an empty
/// ring (spec 5.2); that decision is the caller's. More than `u32::MAX`
/// records is an `InvalidInput` error.
pub fn write_dump<W: Write>(w: &mut W, ring: &Ring) -> io::Result<()> {
    let records = u32::try_from(ring.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, too_many(ring.len() as u64)))?;
    let (head, tail) = ring.as_slices();
    let n = (head.len() + tail.len()) as u64;
    let mut header = [0u8; DUMP_HEADER_LEN];
    header[..4].copy_from_slice(&records.to_le_bytes());
    header[4..].copy_from_slice(&n.to_le_bytes());
    w.write_all(&header)?;
    w.write_all(head)?;
    w.write_all(tail)
}

fn too_many(count: u64) -> FileError {
    FileError::Invalid {
        file: UNNAMED.to_owned(),
        offset: 0,
        reason: format!("{count} records do not fit the u32 record count"),
    }
}

/// Reads and validates the dump at `path` for a ring of `capacity_bytes`.
/// The file's size is checked against the capacity before anything is read
/// or allocated: a dump larger than the ring fails, as in the original
/// (quirk Q7, startup aborts there).
pub fn load_dump_file(path: &Path, capacity_bytes: usize) -> Result<Vec<Vec<u8>>, FileError> {
    let file = path.display().to_string();
    let io_err = |source| FileError::Io {
        file: file.clone(),
        source,
    };
    let f = fs::File::open(path).map_err(io_err)?;
    let size = f.metadata().map_err(io_err)?.len();
    let limit = (DUMP_HEADER_LEN as u64).saturating_add(capacity_bytes as u64);
    if size > limit {
        return Err(FileError::Invalid {
            file,
            offset: 0,
            reason: format!(
                "{} data bytes do not fit the ring capacity of {capacity_bytes} bytes",
                size.saturating_sub(DUMP_HEADER_LEN as u64)
            ),
        });
    }
    // `take` keeps the allocation bounded even if the file grows meanwhile.
    let mut bytes = Vec::new();
    f.take(limit).read_to_end(&mut bytes).map_err(io_err)?;
    let dump = read_dump(&bytes).map_err(|e| e.in_file(file.clone()))?;
    Ok(dump.to_vecs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::random_bytes;

    /// `ch2.rq` of the original's loadfiles test (spec 5.2).
    const CH2: &[u8] = b"\x01\0\0\0\x12\0\0\0\0\0\0\0\x0a\0\0\0\0\0\0\0Hello ch2!";

    #[test]
    fn decodes_the_spec_example() {
        let dump = read_dump(CH2).unwrap();
        assert_eq!(dump.len(), 1);
        assert_eq!(dump.data().len(), 18);
        assert_eq!(dump.iter().collect::<Vec<_>>(), vec![&b"Hello ch2!"[..]]);
        assert_eq!(encode_dump([&b"Hello ch2!"[..]]).unwrap(), CH2);
    }

    #[test]
    fn empty_dump() {
        let bytes = encode_dump(std::iter::empty()).unwrap();
        assert_eq!(bytes, [0u8; 12]);
        assert!(read_dump(&bytes).unwrap().is_empty());
        // An empty queue must have no data.
        let mut bad = bytes.clone();
        bad[4] = 8;
        bad.extend_from_slice(&[0u8; 8]);
        assert!(matches!(read_dump(&bad), Err(FileError::Invalid { .. })));
    }

    #[test]
    fn round_trip_payloads_and_ring() {
        let payloads: Vec<Vec<u8>> = vec![vec![], b"a".to_vec(), vec![7u8; 300], b"xyz".to_vec()];
        let bytes = encode_dump(payloads.iter().map(Vec::as_slice)).unwrap();
        assert_eq!(read_dump(&bytes).unwrap().to_vecs(), payloads);

        // A wrapped ring dumps its records in pop order.
        let mut ring = Ring::with_capacity(64);
        for p in [&b"0123456789"[..], b"abcdefghij", b"ABCDEFGHIJ"] {
            assert!(ring.push(p));
        }
        ring.pop();
        ring.pop();
        assert!(ring.push(b"wrapped-1"));
        assert!(ring.push(b"w2"));
        assert!(
            !ring.as_slices().1.is_empty(),
            "the ring should have wrapped"
        );
        let bytes = encode_dump_ring(&ring).unwrap();
        let expected: Vec<Vec<u8>> = ring.iter().map(<[u8]>::to_vec).collect();
        assert_eq!(read_dump(&bytes).unwrap().to_vecs(), expected);
        assert_eq!(expected.len(), 3);
    }

    #[test]
    fn rejects_count_and_length_mismatches() {
        let mut more = CH2.to_vec();
        more[0] = 2;
        assert!(matches!(read_dump(&more), Err(FileError::Invalid { .. })));
        let mut fewer = encode_dump([&b"a"[..], b"b"]).unwrap();
        fewer[0] = 1;
        assert!(matches!(read_dump(&fewer), Err(FileError::Invalid { .. })));
        let mut trailing = CH2.to_vec();
        trailing.push(0);
        assert!(matches!(
            read_dump(&trailing),
            Err(FileError::Invalid { .. })
        ));
        // A record length pointing past the data.
        let mut long = CH2.to_vec();
        long[12] = 11;
        assert!(matches!(read_dump(&long), Err(FileError::Truncated { .. })));
        // A huge record length is checked, not allocated.
        let mut huge = CH2.to_vec();
        huge[12..20].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(read_dump(&huge), Err(FileError::Truncated { .. })));
        // A huge n.
        let mut huge_n = CH2.to_vec();
        huge_n[4..12].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            read_dump(&huge_n),
            Err(FileError::Truncated { .. })
        ));
    }

    #[test]
    fn every_truncation_fails() {
        let bytes = encode_dump([&b"Hello"[..], b"", b"world!"]).unwrap();
        for cut in 0..bytes.len() {
            let err = read_dump(&bytes[..cut]).unwrap_err();
            assert_eq!(err.file(), "<storage>.rq");
        }
        assert!(read_dump(&bytes).is_ok());
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = fastrand::Rng::with_seed(0x2545_F491_4F6C_DD1D);
        for _ in 0..20_000 {
            let len = rng.usize(..64);
            let mut bytes = random_bytes(&mut rng, len);
            // Make plausible headers common.
            if len >= 12 && rng.bool() {
                bytes[1..4].fill(0);
                let n = (len - 12) as u64;
                bytes[4..12].copy_from_slice(&n.to_le_bytes());
            }
            if let Ok(dump) = read_dump(&bytes) {
                assert_eq!(dump.iter().count(), dump.len());
            }
        }
    }

    #[test]
    fn file_names() {
        assert_eq!(dump_file_name("ch2"), "ch2.rq");
        assert_eq!(dump_file_name("sub1@ch1"), "sub1@ch1.rq");
        assert_eq!(parse_dump_file_name("@ch1.rq"), Some("@ch1"));
        assert_eq!(parse_dump_file_name("sub1@ch1.rq"), Some("sub1@ch1"));
        for bad in [
            "ch2", "ch2.dat", ".rq", "@.rq", "ch@.rq", "a@b@c.rq", "a.b.rq", "ch.rq.rq",
        ] {
            assert_eq!(parse_dump_file_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn load_checks_capacity_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(dump_file_name("ch"));
        let mut ring = Ring::with_capacity(100);
        assert!(ring.push(b"Hello ch!"));
        let mut file = fs::File::create(&path).unwrap();
        write_dump(&mut file, &ring).unwrap();
        drop(file);
        assert_eq!(
            load_dump_file(&path, 17).unwrap(),
            vec![b"Hello ch!".to_vec()]
        );
        let err = load_dump_file(&path, 16).unwrap_err();
        assert!(matches!(err, FileError::Invalid { .. }), "{err}");
        assert!(err.to_string().contains("ring capacity"), "{err}");
        fs::write(&path, &CH2[..20]).unwrap();
        let err = load_dump_file(&path, 100).unwrap_err();
        assert_eq!(err.file(), path.display().to_string());
        let missing = load_dump_file(&dir.path().join("nope.rq"), 100).unwrap_err();
        assert!(matches!(missing, FileError::Io { .. }));
    }
}
