//! The overflow index `ofchannels.csv` (spec 5.3): one line per non-empty
//! overflow channel, `<storage_name> <records> <bytes> <first_offset>
//! <last_offset>\n`, single spaces, decimal numbers. Written at clean
//! shutdown only (quirk Q1), so after a crash it may be stale or missing.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::Path;

use super::FileError;
use crate::names::is_valid_storage_file_stem;

/// The index file's name in the data directory.
pub const INDEX_FILE_NAME: &str = "ofchannels.csv";

/// One line of the index: where a storage's overflow chain starts and ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// The storage name: `ch`, `sub@ch` or `@ch`.
    pub storage_name: String,
    /// Records in the chain, ≥ 1.
    pub records: u64,
    /// Payload bytes in the chain (headers excluded, quirk Q8).
    pub bytes: u64,
    /// File offset of the oldest record (the next to pop).
    pub first_offset: u64,
    /// File offset of the newest record.
    pub last_offset: u64,
}

/// Parses the index and applies the checks that need no data file (spec
/// 5.3): five fields separated by single spaces, a storage name passing the
/// dump-file name rules, plain decimal numbers, at least one record, and no
/// duplicate names, first offsets or last offsets. Every line, the last one
/// included, must end with `\n`: a missing newline means a torn write. The
/// checks against `overflow.dat` are [`read_indexed`]'s.
///
/// [`read_indexed`]: super::read_indexed
pub fn parse_index(text: &str) -> Result<Vec<IndexEntry>, FileError> {
    let mut entries = Vec::new();
    let mut names = BTreeSet::new();
    let mut firsts = BTreeSet::new();
    let mut lasts = BTreeSet::new();
    let mut rest = text;
    let mut line_no = 0;
    while !rest.is_empty() {
        line_no += 1;
        let err = |reason: String| FileError::Line {
            file: INDEX_FILE_NAME.to_owned(),
            line: line_no,
            reason,
        };
        let Some((line, tail)) = rest.split_once('\n') else {
            return Err(err("no newline at the end (torn write?)".to_owned()));
        };
        rest = tail;
        let entry = parse_line(line).map_err(err)?;
        if !names.insert(entry.storage_name.clone()) {
            return Err(err(format!(
                "duplicate storage name {:?}",
                entry.storage_name
            )));
        }
        if !firsts.insert(entry.first_offset) {
            return Err(err(format!(
                "duplicate first offset {}",
                entry.first_offset
            )));
        }
        if !lasts.insert(entry.last_offset) {
            return Err(err(format!("duplicate last offset {}", entry.last_offset)));
        }
        entries.push(entry);
    }
    Ok(entries)
}

fn parse_line(line: &str) -> Result<IndexEntry, String> {
    let fields: Vec<&str> = line.splitn(6, ' ').collect();
    let [name, records, bytes, first, last] = fields[..] else {
        return Err(format!(
            "expected 5 fields separated by single spaces, got {line:?}"
        ));
    };
    if !is_valid_storage_file_stem(name) {
        return Err(format!("invalid storage name {name:?}"));
    }
    let number = |what: &str, field: &str| -> Result<u64, String> {
        if field.is_empty() || !field.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("{what} {field:?} is not a decimal number"));
        }
        field
            .parse()
            .map_err(|_| format!("{what} {field:?} is out of range"))
    };
    let entry = IndexEntry {
        storage_name: name.to_owned(),
        records: number("records", records)?,
        bytes: number("bytes", bytes)?,
        first_offset: number("first offset", first)?,
        last_offset: number("last offset", last)?,
    };
    // The original writes offsets with %lld: they must fit an i64.
    if i64::try_from(entry.first_offset.max(entry.last_offset)).is_err() {
        return Err("offset out of range".to_owned());
    }
    if entry.records == 0 {
        return Err(format!("storage {name:?} has zero records"));
    }
    Ok(entry)
}

/// Formats entries as the original writes them (`"%.*s %lu %llu %lld %lld\n"`).
pub fn format_index(entries: &[IndexEntry]) -> String {
    entries
        .iter()
        .map(|e| {
            format!(
                "{} {} {} {} {}\n",
                e.storage_name, e.records, e.bytes, e.first_offset, e.last_offset
            )
        })
        .collect()
}

/// Reads and parses the index at `path`. A missing file is an empty index:
/// the original opens it with `O_CREAT`.
pub fn read_index_file(path: &Path) -> Result<Vec<IndexEntry>, FileError> {
    let file = path.display().to_string();
    let text = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(FileError::Io { file, source }),
    };
    let text = String::from_utf8(text).map_err(|e| FileError::Invalid {
        file: file.clone(),
        offset: e.utf8_error().valid_up_to() as u64,
        reason: "not UTF-8".to_owned(),
    })?;
    parse_index(&text).map_err(|e| e.in_file(file))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, records: u64, bytes: u64, first: u64, last: u64) -> IndexEntry {
        IndexEntry {
            storage_name: name.to_owned(),
            records,
            bytes,
            first_offset: first,
            last_offset: last,
        }
    }

    #[test]
    fn spec_example_round_trip() {
        let text = "sub1@ch1 1 10 50 50\n@ch1 3 30 8 92\nch2 2 0 134 218\n";
        let entries = parse_index(text).unwrap();
        assert_eq!(entries[0], entry("sub1@ch1", 1, 10, 50, 50));
        assert_eq!(entries[1], entry("@ch1", 3, 30, 8, 92));
        assert_eq!(format_index(&entries), text);
        assert_eq!(parse_index("").unwrap(), vec![]);
        assert_eq!(format_index(&[]), "");
    }

    fn line_error(text: &str) -> String {
        match parse_index(text) {
            Err(e @ FileError::Line { .. }) => e.to_string(),
            other => panic!("{text:?}: {other:?}"),
        }
    }

    #[test]
    fn rejects_bad_lines() {
        for bad in [
            "ch 1 10 8 8",                     // no newline
            "ch 1 10 8\n",                     // 4 fields
            "ch 1 10 8 8 9\n",                 // 6 fields
            "ch  1 10 8 8\n",                  // double space
            "ch 1 10 8 8 \n",                  // trailing space
            "\n",                              // blank line
            "c.h 1 10 8 8\n",                  // bad name
            "ch@ 1 10 8 8\n",                  // @ last
            "a@b@c 1 10 8 8\n",                // two @
            "ch +1 10 8 8\n",                  // sign
            "ch 1 10 -8 8\n",                  // negative offset
            "ch 1 0x10 8 8\n",                 // hex
            "ch 1 99999999999999999999 8 8\n", // > u64
            "ch 1 10 9223372036854775808 8\n", // > i64
            "ch 0 0 8 8\n",                    // zero records
        ] {
            line_error(bad);
        }
        assert!(line_error("a 1 1 8 8\nb 1 1 50 50\na 1 1 90 90\n")
            .contains("line 3: duplicate storage name"));
        assert!(line_error("a 1 1 8 8\nb 1 1 8 50\n").contains("duplicate first offset"));
        assert!(line_error("a 2 1 8 90\nb 2 1 50 90\n").contains("duplicate last offset"));
        assert!(line_error("ch 0 0 8 8\n").contains("ofchannels.csv: line 1"));
    }

    #[test]
    fn every_truncation_fails_or_is_a_line_prefix() {
        let text = "sub1@ch1 1 10 50 50\nch2 12 120 134 218\n";
        for cut in 0..text.len() {
            let part = &text[..cut];
            match parse_index(part) {
                Ok(entries) => {
                    assert!(part.is_empty() || part.ends_with('\n'), "{part:?}");
                    assert_eq!(format_index(&entries), part);
                }
                Err(e) => assert!(matches!(e, FileError::Line { .. })),
            }
        }
    }

    #[test]
    fn random_text_never_panics() {
        let mut rng = fastrand::Rng::with_seed(0xDEAD_BEEF_CAFE_F00D);
        let alphabet = b"ab@1 0\n9-_.";
        for _ in 0..20_000 {
            let len = rng.usize(..40);
            let text: String = (0..len)
                .map(|_| alphabet[rng.usize(..alphabet.len())] as char)
                .collect();
            if let Ok(entries) = parse_index(&text) {
                // Leading zeros parse, so compare after a canonical round trip.
                assert_eq!(parse_index(&format_index(&entries)).unwrap(), entries);
            }
        }
    }

    #[test]
    fn file_helpers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(INDEX_FILE_NAME);
        assert_eq!(read_index_file(&path).unwrap(), vec![]);
        let entries = vec![entry("@ch5", 1, 10, 260, 260)];
        fs::write(&path, format_index(&entries)).unwrap();
        assert_eq!(read_index_file(&path).unwrap(), entries);
        fs::write(&path, "@ch5 1 10 260\n").unwrap();
        let err = read_index_file(&path).unwrap_err();
        assert_eq!(err.file(), path.display().to_string());
        fs::write(&path, b"\xff\n").unwrap();
        assert!(matches!(
            read_index_file(&path),
            Err(FileError::Invalid { .. })
        ));
    }
}
