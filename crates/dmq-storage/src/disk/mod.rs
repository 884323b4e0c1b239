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
//!
//! Layout:
//! - `layout.rs`: file names, positions ([`Loc`]), sizing ([`DiskConfig`]),
//!   the walk over a segment's records;
//! - `meta.rs`: the meta records;
//! - `queue.rs`: a storage's records on disk ([`DiskQueue`]);
//! - `segments.rs`: the segment table ([`Segments`]): space, what is
//!   written, read plans, reclaim, the index at a clean stop;
//! - `writer.rs`: appending, write jobs, tickets, failed writes
//!   ([`DiskWriter`]);
//! - `read.rs`: taking records read back off their queue;
//! - `recover.rs`: rebuilding the state from segment bytes;
//! - `error.rs`: [`DiskError`], [`Corrupt`].

mod error;
mod layout;
mod meta;
mod queue;
mod read;
mod recover;
mod segments;
mod writer;

pub use error::{Corrupt, DiskError};
pub use layout::{
    is_segment_index_file_name, parse_segment_file_name, segment_file_name,
    segment_index_file_name, walk_records, DiskConfig, Loc,
};
pub use meta::{Meta, META_TAG};
pub use queue::DiskQueue;
pub use read::Consumed;
pub use recover::{recover, Recovered};
pub use segments::{ReadPlan, Segments};
pub use writer::{DataWrite, DiskWriter, Lost, Patch, WriteJob, MAX_UNWRITTEN_BYTES};

#[cfg(test)]
mod tests;

/// An overflow with 1 MiB segments and no limit, for unit tests.
#[cfg(test)]
pub(crate) fn test_writer() -> DiskWriter {
    DiskWriter::new(DiskConfig {
        segment_size: 1 << 20,
        limit: 0,
    })
}
