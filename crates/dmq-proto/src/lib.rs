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
//! - [`neo`]: the neo protocol (spec §3): message framing, the version handshake and
//!   HMAC authentication (`neo/frame.rs`, `neo/auth.rs`), the request id, command and
//!   SupportedStatus shared by all requests (`neo/request.rs`), and one file per request
//!   (`neo/push.rs`, `neo/pop.rs`, `neo/consume.rs`).
//! - `test_rng.rs` (tests only): the xorshift generator shared by the property-style
//!   unit tests of both protocols.
//!
//! Decoding is done in two steps, as in mini-redis: [`legacy::check`] tells whether a
//! whole request is at the start of a buffer without allocating, and [`legacy::parse`]
//! returns it borrowed from the buffer; the neo protocol does the same with
//! [`neo::check_message`] and [`neo::parse_message`]. Every length prefix is checked
//! against its limit before the bytes it announces are awaited.
#![forbid(unsafe_code)]

pub mod legacy;
pub mod neo;
#[cfg(test)]
mod test_rng;
