//! Why the overflow refuses a record, and why records read back are unusable.

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
    /// The disk is behind: [`MAX_UNWRITTEN_BYTES`](super::MAX_UNWRITTEN_BYTES) wait to be written
    /// already, and memory must not grow without bound meanwhile.
    #[error("the disk overflow is behind: too many bytes wait to be written")]
    Behind,
}

/// Why records read back could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("overflow segment {seg} offset {offset}: {reason}")]
pub struct Corrupt {
    pub seg: u32,
    pub offset: u64,
    pub reason: String,
}
