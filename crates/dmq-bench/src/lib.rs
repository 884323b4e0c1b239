//! `dmq-bench`, the load-testing harness of the dmq node: closed- and open-loop
//! workloads over the legacy and neo protocols, with Redis and a raw loopback
//! target ("echo") driven by the same generator so that their numbers can be
//! put side by side.
//!
//! # Layout
//!
//! - [`cli`]: the command line (clap) and its resolution into a [`cli::Plan`].
//! - [`size`]: record sizes (`--size`, `--size-dist`) and the value pool.
//! - [`codec`]: one encoder/decoder pair per target, all over `dmq_proto` for the
//!   node (`codec/legacy.rs`, `codec/neo.rs`), RESP by hand for Redis
//!   (`codec/redis.rs`), and the input buffer they share (`codec/mod.rs`).
//! - [`driver`]: the request/reply loops (closed loop, open loop at a fixed
//!   rate) and the counters every worker adds to.
//! - [`stream`]: the streaming workers (legacy Produce, legacy and neo Consume),
//!   prefilling and channel removal.
//! - [`run`]: one run from start to report: setup, workers, warm-up and
//!   measurement window, progress line, teardown.
//! - [`latency`]: HDR histograms and their percentile summary.
//! - [`report`]: the report (JSON with serde), the one-screen summary and the
//!   medians `benches/compare` asks for.
//! - [`plot`]: SVG charts written by hand (throughput over time, latency by
//!   percentile); no font or drawing library is needed.
//! - [`procfs`]: server CPU time and memory from `/proc/<pid>`.
//! - [`echo`]: the raw loopback target, a "null node" that answers legacy
//!   requests with the node's reply bytes and keeps nothing.
//!
//! Threads and blocking sockets throughout: one thread per connection (two in
//! open loop), which is efficient up to a few dozen connections on the 2-core
//! machines this runs on, and keeps the timing path free of a runtime.

pub mod cli;
pub mod codec;
pub mod driver;
pub mod echo;
pub mod latency;
pub mod plot;
pub mod procfs;
pub mod report;
pub mod run;
pub mod size;
pub mod stream;

use std::io;

/// Everything that can go wrong in a run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line asks for something impossible.
    #[error("{0}")]
    Usage(String),
    /// A connection could not be opened.
    #[error("cannot connect to {addr}: {source}")]
    Connect { addr: String, source: io::Error },
    /// A socket or file operation failed.
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
    /// The peer sent something this harness does not understand.
    #[error("protocol error from {peer}: {detail}")]
    Protocol { peer: String, detail: String },
    /// A reply or a handshake did not come in time.
    #[error("{0}")]
    Timeout(String),
    /// A report could not be read or written.
    #[error("report {path}: {detail}")]
    Report { path: String, detail: String },
}

impl Error {
    /// An I/O error with a word on what was being done.
    pub fn io(what: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            what: what.into(),
            source,
        }
    }

    /// A protocol error from `peer`.
    pub fn protocol(peer: impl Into<String>, detail: impl std::fmt::Display) -> Error {
        Error::Protocol {
            peer: peer.into(),
            detail: detail.to_string(),
        }
    }
}
