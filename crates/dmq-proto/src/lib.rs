//! Wire formats of the dmq node: decoders and encoders only, with no I/O, no sockets
//! and no runtime, so that every decoder can be unit-tested and fuzzed on plain bytes.
//!
//! # Layout
//!
//! - [`legacy`]: the legacy ("classic swarm") protocol of the original DMQ node (spec
//!   §2). `legacy/wire.rs` holds the primitives (arrays, string lists, record streams,
//!   statuses), `legacy/error.rs` the decode error, and each request has its own file
//!   (`push.rs`, `pop.rs`, `consume.rs`, `push_multi.rs`, `produce.rs`,
//!   `produce_multi.rs`, `remove_channel.rs`, `get_num_connections.rs`), named as its
//!   handler in `dmq-node`.
//!
//! Decoding is done in two steps, as in mini-redis: [`legacy::check`] tells whether a
//! whole request is at the start of a buffer without allocating, and [`legacy::parse`]
//! returns it borrowed from the buffer. Every length prefix is checked against its
//! limit before the bytes it announces are awaited.
#![forbid(unsafe_code)]

pub mod legacy;
