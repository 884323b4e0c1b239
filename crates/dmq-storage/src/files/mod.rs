//! The original node's on-disk files (spec 5.2 to 5.4), byte for byte.
//!
//! Layout: [`dump`] is the `<storage_name>.rq` memory dump written at clean
//! shutdown (spec 5.2); [`overflow`] is the shared disk-overflow data file
//! `overflow.dat` with its 32-byte record headers, the per-channel link walk
//! and a crash-recovery scan (spec 5.3); [`index`] is the overflow index
//! `ofchannels.csv` (spec 5.3); [`reconstruct`](mod@reconstruct) rebuilds the
//! channels and their modes from storage names, as the original does at
//! startup (spec 5.4).
//!
//! The decoders are pure functions over byte slices: every length read from a
//! file is checked against the bytes actually there before it is used, so a
//! truncated or corrupt file is an error, never a panic or a huge allocation.
//! The few file helpers use plain `std::io`, no async runtime; the node
//! decides on which thread to call them (startup and shutdown only).

pub mod dump;
pub mod index;
pub mod overflow;
pub mod reconstruct;

pub use dump::{
    dump_file_name, encode_dump, encode_dump_ring, load_dump_file, parse_dump_file_name, read_dump,
    write_dump, Dump, DumpIter, DUMP_EXTENSION, DUMP_HEADER_LEN,
};
pub use index::{format_index, parse_index, read_index_file, IndexEntry, INDEX_FILE_NAME};
pub use overflow::{
    check_magic, read_channel_records, read_indexed, scan, OverflowWriter, RecordHeader,
    ScanResult, ScanStop, ScannedRecord, DATA_FILE_NAME, MAGIC, OVERFLOW_HEADER_LEN,
};
pub use reconstruct::{reconstruct, ChannelContent};

use thiserror::Error;

/// A storage's payloads in pop order, as loaded from a file.
pub type Records = Vec<Vec<u8>>;

/// Why a file could not be read or written. Every case names the file: the
/// real path for the `std::io` helpers, otherwise the conventional name
/// (`overflow.dat`, `ofchannels.csv`, or `<storage>.rq` when a dump's name is
/// not known to the decoder; see [`FileError::in_file`]).
#[derive(Debug, Error)]
pub enum FileError {
    /// The file ends inside a structure: `needed` bytes were required at
    /// `offset`, only `available` are there.
    #[error(
        "{file}: truncated at byte {offset}: {what} needs {needed} bytes, only {available} remain"
    )]
    Truncated {
        /// The file.
        file: String,
        /// Where the structure starts.
        offset: u64,
        /// What was being read ("dump header", "record payload", ...).
        what: &'static str,
        /// Bytes the structure needs.
        needed: u64,
        /// Bytes left in the file from `offset`.
        available: u64,
    },
    /// The bytes are there but do not make sense.
    #[error("{file}: invalid at byte {offset}: {reason}")]
    Invalid {
        /// The file.
        file: String,
        /// Where the problem was found.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A line of the index file is malformed or conflicts with another.
    #[error("{file}: line {line}: {reason}")]
    Line {
        /// The file.
        file: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The storages found at startup do not form valid channels (spec 5.4),
    /// e.g. a plain `ch` storage next to `sub@ch`.
    #[error("{file}: storage {storage:?}: {reason}")]
    Storage {
        /// The file (or data directory) the storage came from.
        file: String,
        /// The storage name.
        storage: String,
        /// What is wrong.
        reason: String,
    },
    /// The operating system refused a read or write.
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl FileError {
    /// The file this error is about.
    pub fn file(&self) -> &str {
        match self {
            FileError::Truncated { file, .. }
            | FileError::Invalid { file, .. }
            | FileError::Line { file, .. }
            | FileError::Storage { file, .. }
            | FileError::Io { file, .. } => file,
        }
    }

    /// The same error, naming `file` instead: the pure decoders do not know
    /// the path their bytes came from.
    pub fn in_file(mut self, name: impl Into<String>) -> FileError {
        let name = name.into();
        match &mut self {
            FileError::Truncated { file, .. }
            | FileError::Invalid { file, .. }
            | FileError::Line { file, .. }
            | FileError::Storage { file, .. }
            | FileError::Io { file, .. } => *file = name,
        }
        self
    }
}

/// Little-endian field readers over a slice whose length the caller has
/// already checked; a short slice reads as zeros instead of panicking.
pub(crate) fn le_u32(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    if let Some(src) = bytes.get(at..at.saturating_add(4)) {
        b.copy_from_slice(src);
    }
    u32::from_le_bytes(b)
}

/// See [`le_u32`].
pub(crate) fn le_u64(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    if let Some(src) = bytes.get(at..at.saturating_add(8)) {
        b.copy_from_slice(src);
    }
    u64::from_le_bytes(b)
}

/// `len` bytes from `rng`, for the property tests (each seeds its
/// generator, so a failure repeats).
#[cfg(test)]
pub(crate) fn random_bytes(rng: &mut fastrand::Rng, len: usize) -> Vec<u8> {
    let mut bytes = vec![0; len];
    rng.fill(&mut bytes);
    bytes
}
