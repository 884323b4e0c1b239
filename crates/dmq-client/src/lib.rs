//! The Rust client of the dmq node: many nodes used as one queue, over the legacy
//! protocol or the neo protocol (with HMAC authentication), on any executor.
//!
//! # Layout
//!
//! - `client.rs`: [`Client`], the node set as one queue: Push and PushMulti
//!   round-robin with fail-over, Pop round-robin until a node has a record,
//!   RemoveChannel on every node, and a table of what a failure mid-request means.
//! - `consumer.rs`: [`Consumer`], one Consume per node merged into one stream, with
//!   suspend, resume and stop.
//! - `producer.rs`: [`Producer`], one legacy Produce stream per node, records spread
//!   round-robin.
//! - `legacy.rs`, `neo.rs`: one connection of each protocol; every byte is encoded
//!   and decoded by `dmq_proto` (`dmq_proto::legacy`, `dmq_proto::neo`), which checks
//!   each length prefix against its limit before anything is allocated.
//! - `wire.rs`: a stream with bounded read and write buffers, for `async fn`s and
//!   `poll` functions alike.
//! - `node.rs`: resolved nodes, health and back-off, name and value checks, opening
//!   connections within the connect timeout.
//! - `connector.rs`: the [`Connector`] trait (connect and sleep) and its
//!   implementations for async-io ([`AsyncIoConnector`]) and glommio
//!   ([`GlommioConnector`], cargo feature `glommio`, on by default).
//! - `blocking.rs`: [`blocking`], a blocking facade on async-io, used by the `dmq`
//!   command-line tool.
//! - `nodes.rs`: the nodes file ([`parse_nodes`], [`NodeAddr`]); `config.rs`:
//!   [`ClientConfig`], [`RetryPolicy`], [`ClientCredentials`]; `error.rs`: [`Error`].
//!
//! The client spawns nothing: all work happens in the futures the caller awaits,
//! over `futures-io`'s `AsyncRead`/`AsyncWrite`, so it runs on glommio, on async-io
//! (`futures_lite::future::block_on`), or on any executor given a [`Connector`].
//! `README.md` beside this crate is the user guide: the multi-node model, fail-over
//! and the delivery guarantees.
//!
//! ```no_run
//! use dmq_client::{blocking, ClientConfig, NodeAddr};
//!
//! # fn main() -> Result<(), dmq_client::Error> {
//! let nodes = dmq_client::parse_nodes("127.0.0.1:10000\n127.0.0.1:10010\n")?;
//! let client = blocking::Client::new(nodes, ClientConfig::default())?;
//! client.push("events", b"hello")?;
//! let mut consumer = client.consume("events", "")?;
//! let record = consumer.recv()?;
//! assert_eq!(record.as_deref(), Some(&b"hello"[..]));
//! # let _ = NodeAddr::new("127.0.0.1", 10000)?;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

pub mod blocking;
mod client;
mod config;
mod connector;
mod consumer;
mod error;
mod legacy;
mod neo;
mod node;
mod nodes;
mod producer;
mod wire;

pub use client::{Client, Pushed};
pub use config::{ClientConfig, ClientCredentials, Protocol, RetryPolicy};
#[cfg(feature = "glommio")]
pub use connector::GlommioConnector;
pub use connector::{AsyncIoConnector, Connector};
pub use consumer::Consumer;
pub use error::{Error, NodeError, NodeFailure, Result};
pub use nodes::{parse_nodes, read_nodes_file, NodeAddr, MAX_NODES_FILE_LEN};
pub use producer::{Producer, FLUSH_BYTES};

/// Reads a small text file, refusing one larger than `limit` bytes before reading it.
pub(crate) fn read_small_file(path: &std::path::Path, limit: u64, what: &str) -> Result<String> {
    use std::io::Read;
    let io_error = |error| Error::Io {
        what: format!("{what} {}", path.display()),
        error,
    };
    let file = std::fs::File::open(path).map_err(io_error)?;
    let mut text = String::new();
    file.take(limit + 1)
        .read_to_string(&mut text)
        .map_err(io_error)?;
    if text.len() as u64 > limit {
        return Err(Error::Io {
            what: format!("{what} {}", path.display()),
            error: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("larger than {limit} bytes"),
            ),
        });
    }
    Ok(text)
}
