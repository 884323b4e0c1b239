//! The neo protocol port: version handshake, HMAC authentication, then
//! full-duplex multiplexed requests (Push v3, Pop v1, Consume v4).
//!
//! After authentication a connection is three kinds of task on the shard that
//! accepted it: the reader (this module), which frames messages and starts or
//! feeds requests; one task per Consume; and the writer ([`outbox`]), which sends
//! what every request appended. Push and Pop for channels this shard owns are
//! answered inline by the reader; those for other shards are collected over
//! everything the reader has buffered and sent as one message per owner shard
//! ([`batch`]).

pub mod batch;
pub mod connection;
pub mod inbox;
pub mod outbox;
pub mod shared;

pub use connection::{Connection, NeoConnError};
pub use shared::{Active, ActiveRequests, ConnShared, ConsumeInbox, MAX_ACTIVE_REQUESTS};
