//! The one error type of the legacy decoders.

use super::{MAX_ARRAY_LEN, MAX_LIST_BYTES};

/// Why bytes at the start of a buffer are not (yet) a whole legacy message.
///
/// Only [`DecodeError::Incomplete`] means "read more and try again". Every other case is
/// fatal for the connection: the original node closes it without a status (spec §2.5,
/// §2.6), because the rest of the stream can no longer be framed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not enough bytes yet. `needed` is the smallest total buffer length, counted from
    /// the start of the buffer, that could make progress; it is always greater than the
    /// length that was given, so a reader can size its next read from it.
    #[error("incomplete message: need at least {needed} bytes")]
    Incomplete {
        /// Smallest total buffer length that could make progress.
        needed: usize,
    },
    /// The command code is not one the node serves (0, 3, 4, 5, 7, 13 or anything not in
    /// [`Command`](super::Command)); the original node drops the connection.
    #[error("unknown command code {0}")]
    UnknownCommand(i32),
    /// An array announced more than [`MAX_ARRAY_LEN`] bytes. It is reported as soon as
    /// the 8-byte length prefix is there, so a peer cannot make us wait for (or buffer)
    /// gigabytes first.
    #[error(
        "array of {len} bytes is longer than the limit of {} bytes",
        MAX_ARRAY_LEN
    )]
    ArrayTooLong {
        /// The announced length.
        len: u64,
    },
    /// A channel string list would be longer than [`MAX_LIST_BYTES`] once encoded. The
    /// original has no such limit; ours bounds the size of any one request.
    #[error("channel list is longer than the limit of {} bytes", MAX_LIST_BYTES)]
    ListTooLong,
}
