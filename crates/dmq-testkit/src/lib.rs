//! Test support for every dmq test suite (not published): real `dmqnode`
//! processes on loopback ports, blocking clients of both protocols and of the
//! admin socket, the dmqtest writers and checkers, and strict parsers of what
//! the node writes (Prometheus exposition, stats.log).
//!
//! Layout:
//! - [`ports`]: server ports below the ephemeral range, never handed out twice.
//! - [`node`]: the `dmqnode` process harness (options, start-up probe,
//!   signals, restart, logs, stdout) and one-shot runs of the binary.
//! - [`process`]: bounded runs of any program, resident memory, pseudo-terminals.
//! - [`legacy`]: a blocking legacy-protocol client, its statuses, pipelined
//!   Push/Pop helpers, and byte accounting of legacy requests.
//! - [`neo`]: a blocking neo-protocol client; its version handshake and
//!   authentication is one function, [`neo::NeoClient::authenticate`].
//! - [`admin`]: a blocking client of the admin UNIX socket.
//! - [`records`]: the dmqtest record format and record-list assertions.
//! - [`shards`]: channel names spread over the shards of a node.
//! - [`writers`] and [`checkers`]: the dmqtest writers and checkers (spec 8.1).
//! - [`files`]: the node's data-directory files as a test sees them.
//! - [`metrics`]: a tiny HTTP client and a strict parser of the Prometheus
//!   text format 0.0.4.
//! - [`stats`]: a parser of stats.log lines.
//! - [`wait`]: bounded polling.
//!
//! Every wait is bounded (a read gives up after [`IO_TIMEOUT`], loops have a
//! fixed number of rounds or a deadline), and a node is always signalled by
//! its own PID.

use std::io;
use std::time::Duration;

pub mod admin;
pub mod checkers;
pub mod files;
pub mod legacy;
pub mod metrics;
pub mod neo;
pub mod node;
pub mod ports;
pub mod process;
pub mod records;
pub mod shards;
pub mod stats;
pub mod wait;
pub mod writers;

/// Longest wait for any single reply.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest wait for a node to start or exit.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Whether an I/O error means the peer closed or reset the connection.
pub fn is_disconnect(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
    )
}
