//! Layout: [`ring`] is the fixed-size memory ring of variable-length records
//! (`FlexibleByteRingQueue`, spec 5.1); [`storage`] is one queue (the ring
//! followed by its records on disk, FIFO across both) with its counters;
//! [`disk`] is a shard's disk overflow (segments, links, meta records,
//! recovery), as bookkeeping that the node's I/O tasks execute; [`channel`]
//! is a channel with its subscriber storages and fan-out (spec 4.2);
//! [`channels`] is a shard's channel registry (spec 4.1) and its memory
//! budget; [`sizes`] maps channel names to ring sizes (`channel_size_limit`,
//! `[ChannelSizeById]`); [`names`] checks channel, subscriber and storage
//! names (spec 2.6, 5.2); [`files`] holds the original node's on-disk
//! formats: `.rq` dumps, `overflow.dat`, `ofchannels.csv` and the startup
//! reconstruction of channels (spec 5.2 to 5.4). Everything except [`files`]
//! and [`disk`] is re-exported at the crate root.
//!
//! These are the node's data structures: no networking, no async runtime,
//! and no I/O outside the few blocking `std::io` helpers of [`files`],
//! called at startup and shutdown ([`disk`] only plans writes and parses
//! what was read). Every value here belongs to
//! one shard thread and is used only there; cross-shard work goes through the
//! node's messages, never through shared references to these types.

pub mod channel;
pub mod channels;
pub mod disk;
pub mod files;
pub mod names;
pub mod ring;
pub mod sizes;
pub mod storage;

pub use channel::{Channel, PopError};
pub use channels::Channels;
pub use names::{
    is_valid_channel_name, is_valid_storage_file_stem, is_valid_subscriber_name,
    split_storage_name, storage_name,
};
pub use ring::{record_size, Ring, RingIter, RECORD_HEADER_LEN};
pub use sizes::{ChannelSizes, SizeConfigError};
pub use storage::{Storage, StorageError, StorageStats, Stored};
