//! The dmq node: channels of binary records in preallocated memory rings with
//! a disk overflow, served over the legacy and neo DMQ protocols,
//! thread-per-core on glommio.
//!
//! Layout: [`config`] (YAML, overrides, validation), [`server`] (start, shards,
//! shutdown), [`listener`] (accept loops), [`route`] (channel ownership and the
//! cross-shard mesh), [`shard`] (a shard's channels and consumers: the one place
//! that mutates them), [`overflow_io`] (a shard's disk I/O tasks), [`persist`]
//! (the data directory at start and stop), [`legacy`] and [`neo`]
//! (connections and request batching), [`request`] (one handler file per
//! request), [`admin`], [`metrics`], [`stats`], [`logging`], [`shutdown`],
//! [`context`] (what a shard's tasks share).

pub mod admin;
pub mod config;
pub mod context;
pub mod credentials;
pub mod legacy;
pub mod listener;
pub mod logging;
pub mod metrics;
pub mod migrate;
pub mod neo;
pub mod overflow_io;
pub mod persist;
pub mod preflight;
pub mod request;
pub mod route;
pub mod server;
pub mod shard;
pub mod shutdown;
pub mod stats;
