//! The dmqtest record format (9-digit zero-padded decimal) and assertions on
//! lists of records that name the first difference instead of printing
//! thousands of records.

/// The dmqtest record `i`: 9-digit zero-padded decimal.
pub fn record(i: usize) -> Vec<u8> {
    format!("{i:09}").into_bytes()
}

/// [`record`]`(i)` padded with `.` to `len` bytes (at least 9), so a record's
/// size in a ring is known: 8 + `len` bytes.
pub fn padded_record(i: usize, len: usize) -> Vec<u8> {
    let mut r = record(i);
    assert!(
        len >= r.len(),
        "a padded record has at least {} bytes",
        r.len()
    );
    r.resize(len, b'.');
    r
}

/// `padded_record(i, len)` for every `i` of `range`.
pub fn padded_records(range: std::ops::Range<usize>, len: usize) -> Vec<Vec<u8>> {
    range.map(|i| padded_record(i, len)).collect()
}

/// The number of a record made by [`record`] or [`padded_record`].
pub fn record_index(r: &[u8]) -> usize {
    std::str::from_utf8(&r[..9.min(r.len())])
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a test record: {:?}", String::from_utf8_lossy(r)))
}

/// Asserts that `got` equals `expected`, naming the first difference.
pub fn assert_same_records(got: &[Vec<u8>], expected: &[Vec<u8>], what: &str) {
    if let Some(i) = (0..got.len().min(expected.len())).find(|&i| got[i] != expected[i]) {
        panic!(
            "{what}: record {i} of {} is {:?}, expected {:?}",
            got.len(),
            String::from_utf8_lossy(&got[i]),
            String::from_utf8_lossy(&expected[i])
        );
    }
    if got.len() != expected.len() {
        let extra = got
            .get(expected.len())
            .or_else(|| expected.get(got.len()))
            .map(|r| String::from_utf8_lossy(r).into_owned());
        panic!(
            "{what}: {} records, expected {} (first extra or missing: {extra:?})",
            got.len(),
            expected.len()
        );
    }
}

/// Asserts that `got` is `record(0)..record(count - 1)`, naming the first
/// difference.
pub fn assert_records(got: &[Vec<u8>], count: usize, what: &str) {
    if let Some(i) = (0..count.min(got.len())).find(|&i| got[i] != record(i)) {
        panic!(
            "{what}: record {i} is {:?}, expected {:?}",
            String::from_utf8_lossy(&got[i]),
            String::from_utf8_lossy(&record(i))
        );
    }
    assert_eq!(got.len(), count, "{what}: number of records");
}

/// `len` bytes from `rng` (seeded by the test, so a failure repeats).
pub fn random_bytes(rng: &mut fastrand::Rng, len: usize) -> Vec<u8> {
    let mut bytes = vec![0; len];
    rng.fill(&mut bytes);
    bytes
}
