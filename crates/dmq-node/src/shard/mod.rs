//! One shard's data: its channels and consumers, the single place where they
//! change, and the typed calls other shards make on it.
//!
//! Layout:
//! - `state.rs`: the [`Shard`] (channels, consumers, overflow state,
//!   counters, probes), its snapshot and the restore at start;
//! - `data.rs`: the data operations: push, pop, create, remove, and the
//!   consumers' start, poll and stop;
//! - `consumers.rs`: the consumer registry and its round-robin wake-ups;
//! - `overflow.rs`: the disk overflow as the shard sees it (bookkeeping,
//!   waiting pushes and pops, the refill queue, the I/O tasks' signals);
//! - `refill.rs`: what the overflow's I/O tasks ask of the shard and report;
//! - `ops.rs`: the typed cross-shard calls ([`OpBatch`], [`Slot`],
//!   [`Replies`]);
//! - `apply.rs`: [`run_batch`], which applies an `OpBatch` on the owner
//!   shard, and [`wait_durable`];
//! - `snapshot.rs`: what a shard reports about itself.
//!
//! Every operation is synchronous and runs to completion, so no borrow of a
//! shard is ever held across an await; only `apply.rs` awaits, between
//! operations. Nothing here does I/O: the overflow's tasks
//! (`crate::overflow_io`) and the routing (`crate::route`) depend on this
//! module, never the reverse.

mod apply;
mod consumers;
mod data;
mod ops;
mod overflow;
mod refill;
mod snapshot;
mod state;

pub use apply::{run_batch, wait_durable};
pub use consumers::{ConsumerId, PollResult};
pub use data::{EncodedRecords, PopRefused};
pub use ops::{reply, OpBatch, PopOutcome, PushError, Replies, Slot};
pub use overflow::{IoSignals, Notify, RefillStep, WriteFailed};
pub use snapshot::{OverflowSnapshot, ShardCounters, ShardSnapshot, StorageInfo};
pub use state::Shard;
