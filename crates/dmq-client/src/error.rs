//! The one error type of the crate, [`Error`], and what can go wrong on one node,
//! [`NodeError`].

use std::fmt;
use std::io;
use std::time::Duration;

/// What went wrong with one node during one request.
///
/// `Display` is one line, so that a list of them fits an error message.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The TCP connection could not be made.
    #[error("cannot connect: {0}")]
    Connect(io::Error),
    /// The TCP connection (or the neo handshake) took longer than the connect timeout.
    #[error("no connection within {0:?}")]
    ConnectTimeout(Duration),
    /// The node refused our neo credentials.
    #[error("neo authentication rejected")]
    AuthRejected,
    /// Reading from or writing to the connection failed.
    #[error("connection error: {0}")]
    Io(io::Error),
    /// The node closed the connection.
    #[error("the node closed the connection")]
    Closed,
    /// No reply within the request timeout.
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    /// The node sent something the protocol does not allow.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// A legacy status other than 200.
    #[error("status {code} ({name})")]
    Status {
        /// The status code as received.
        code: i32,
        /// Its name in the original's `Status` enum, or "unknown".
        name: &'static str,
    },
    /// A neo request answered with its Error status.
    #[error("the node answered Error")]
    NeoError,
    /// The node does not serve this request (neo SupportedStatus −1 or −2).
    #[error("request not supported by the node ({0})")]
    Unsupported(&'static str),
    /// Not tried: the node failed recently and is in back-off.
    #[error("skipped: back-off after earlier failures, next try in {0:?}")]
    Backoff(Duration),
    /// Neo Pop on a channel that has subscribers (it can only be consumed).
    #[error("the channel has subscribers, so it can only be consumed")]
    Subscribed,
}

impl NodeError {
    /// A legacy status as an error.
    pub(crate) fn status(code: i32) -> NodeError {
        use dmq_proto::legacy::Status;
        let name = match Status::from_code(code) {
            Some(Status::Ok) => "Ok",
            Some(Status::InvalidRequest) => "InvalidRequest",
            Some(Status::WrongNode) => "WrongNode",
            Some(Status::NotSupported) => "NotSupported",
            Some(Status::OutOfMemory) => "OutOfMemory: the node is full",
            Some(Status::EmptyValue) => "EmptyValue",
            Some(Status::BadChannelName) => "BadChannelName",
            Some(Status::ValueTooBig) => "ValueTooBig",
            Some(Status::Error) => "Error",
            None => "unknown",
        };
        NodeError::Status { code, name }
    }
}

/// One node's failure, as listed in [`Error::NodesFailed`].
#[derive(Debug)]
pub struct NodeFailure {
    /// The node's address as configured (`host:port`, the legacy port, or the neo port
    /// with ` (neo)` when the request went over neo).
    pub node: String,
    /// What went wrong.
    pub error: NodeError,
    /// Whether the request may nevertheless have taken effect on this node (the
    /// connection broke after the request was sent). Only a Push under
    /// [`RetryPolicy::AtLeastOnce`](crate::RetryPolicy::AtLeastOnce) goes on to the
    /// next node after such a failure.
    pub outcome_unknown: bool,
}

impl fmt::Display for NodeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.node, self.error)?;
        if self.outcome_unknown {
            write!(f, " (outcome unknown)")?;
        }
        Ok(())
    }
}

/// Lists failures on one line: `a: why; b: why`.
struct FailureList<'a>(&'a [NodeFailure]);

impl fmt::Display for FailureList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, failure) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{failure}")?;
        }
        Ok(())
    }
}

/// Every error of the client. `Display` is one line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request failed on every node it was tried on (for a per-node request, on
    /// that node); each failure is listed. Nothing was stored, unless a failure says
    /// "outcome unknown".
    #[error("{request} failed: {}", FailureList(failures))]
    NodesFailed {
        /// The request ("Push", "Pop", ...).
        request: &'static str,
        /// One entry per node tried (or skipped because of back-off).
        failures: Vec<NodeFailure>,
    },
    /// The connection broke after the request was sent and before the node answered:
    /// the request may or may not have taken effect on that node. It was not retried
    /// elsewhere, because that could duplicate the record; opt in with
    /// [`RetryPolicy::AtLeastOnce`](crate::RetryPolicy::AtLeastOnce).
    #[error("{request} to {node}: outcome unknown (the record may or may not be stored): {error}")]
    OutcomeUnknown {
        /// The request.
        request: &'static str,
        /// The node it was sent to.
        node: String,
        /// What broke.
        error: NodeError,
    },
    /// A node refused the request itself (for example status 409, a bad channel
    /// name); another node would refuse it too, so it was not retried.
    #[error("{request} refused by {node}: {error}")]
    Rejected {
        /// The request.
        request: &'static str,
        /// The node that refused.
        node: String,
        /// Its answer.
        error: NodeError,
    },
    /// A Produce stream to a node broke. Legacy Produce has no acknowledgement, so
    /// the records sent on that stream since it started (or since the last
    /// confirmation) may be lost; none is resent.
    #[error("Produce stream to {node} broke, {records} record(s) sent on it may be lost: {error}")]
    ProduceStreamBroken {
        /// The node.
        node: String,
        /// Records sent on the stream and not confirmed.
        records: u64,
        /// What broke.
        error: NodeError,
    },
    /// An argument the nodes would refuse: a bad channel name, an empty or too long
    /// value, too many channels, a subscriber name with the legacy protocol.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A node list that cannot be used.
    #[error("node list: {0}")]
    NodeList(String),
    /// Neo credentials that cannot be used.
    #[error("credentials: {0}")]
    Credentials(String),
    /// [`Consumer::next`](crate::Consumer::next) was called while suspended and no
    /// record was buffered.
    #[error("the consumer is suspended")]
    Suspended,
    /// A local I/O error (reading a nodes or credentials file).
    #[error("{what}: {error}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        error: io::Error,
    },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_display_on_one_line() {
        let error = Error::NodesFailed {
            request: "Push",
            failures: vec![
                NodeFailure {
                    node: "a:1".into(),
                    error: NodeError::status(500),
                    outcome_unknown: false,
                },
                NodeFailure {
                    node: "b:2".into(),
                    error: NodeError::Closed,
                    outcome_unknown: true,
                },
            ],
        };
        assert_eq!(
            error.to_string(),
            "Push failed: a:1: status 500 (Error); b:2: the node closed the connection (outcome unknown)"
        );
    }
}
