//! The legacy protocol port: one task per connection, strictly ordered replies,
//! pipelined requests run in batches (see [`batch`]).
//!
//! A connection lives on the shard whose listener accepted it, until the client
//! disconnects, sends something invalid, or the node shuts down.
//!
//! Layout: `connection.rs` (the socket, its buffers and their I/O, used by
//! every handler), `serve.rs` (the request loop, which dispatches to the
//! handlers in `crate::request::legacy`), `batch.rs` (the replies of a run
//! of pipelined requests), `input.rs` (the input buffer).

pub mod batch;
pub mod connection;
pub mod input;
mod serve;

pub use connection::{ConnError, Connection};
pub use input::Input;
