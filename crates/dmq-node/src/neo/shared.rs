//! What the tasks of one neo connection share: its outbox, the requests
//! running on it by id, and the protocol error that closes it.
//!
//! Lives on the connection's shard, shared by `Rc` between the reader, the
//! request tasks and the writer, for the life of the connection.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use dmq_proto::neo::RequestId;

use super::inbox::Inbox;
use super::outbox::Outbox;
use crate::context::ShardContext;

/// Most requests active at once on one connection (the original's limit).
pub const MAX_ACTIVE_REQUESTS: usize = 5000;
/// A message from the client for a running Consume.
pub type ConsumeInbox = Rc<Inbox>;

/// A request that is still running on this connection.
pub enum Active {
    /// Push or Pop waiting for another shard; any further message for it is a
    /// protocol error.
    Waiting,
    /// A Consume: later messages (Continue, Stop) go to its task.
    Consume { inbox: ConsumeInbox },
}

/// The requests running on one connection, by id.
#[derive(Default)]
pub struct ActiveRequests {
    pub(super) map: RefCell<HashMap<RequestId, Active>>,
    changed: event_listener::Event,
}

impl ActiveRequests {
    pub fn len(&self) -> usize {
        self.map.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.borrow().is_empty()
    }

    pub fn insert(&self, id: RequestId, active: Active) {
        self.map.borrow_mut().insert(id, active);
    }

    /// Ends a request: its id may be used again.
    pub fn remove(&self, id: RequestId) {
        let removed = self.map.borrow_mut().remove(&id);
        drop(removed);
        self.changed.notify(usize::MAX);
    }

    /// Tells every running Consume that the connection is gone.
    pub(super) fn close_all(&self) {
        for active in self.map.borrow().values() {
            if let Active::Consume { inbox } = active {
                inbox.close();
            }
        }
    }

    pub(super) async fn wait_empty(&self) {
        loop {
            if self.is_empty() {
                return;
            }
            let listener = self.changed.listen();
            if self.is_empty() {
                return;
            }
            listener.await;
        }
    }
}

/// What the request tasks of one connection share.
pub struct ConnShared {
    pub ctx: Rc<ShardContext>,
    pub outbox: Outbox,
    pub active: ActiveRequests,
    /// `client@address`, for log lines.
    pub client: String,
    /// Set by a request task that found a protocol error: the reader closes the
    /// connection.
    pub(super) aborted: RefCell<Option<String>>,
    pub(super) abort_event: event_listener::Event,
}

impl ConnShared {
    /// Logs (at debug) a request refused for an invalid channel name; the
    /// request is answered Error and the connection stays up.
    pub fn log_invalid_channel(&self, id: RequestId, request: &str, channel: &[u8]) {
        tracing::debug!(
            client = %self.client,
            id,
            channel = %String::from_utf8_lossy(channel),
            "neo {request} refused: invalid channel name"
        );
    }

    /// Closes the connection for a protocol error found by a request task.
    pub fn abort(&self, reason: String) {
        self.aborted.borrow_mut().get_or_insert(reason);
        self.abort_event.notify(usize::MAX);
    }

    pub(super) async fn wait_abort(&self) -> String {
        loop {
            if let Some(reason) = self.aborted.borrow().clone() {
                return reason;
            }
            let listener = self.abort_event.listen();
            if let Some(reason) = self.aborted.borrow().clone() {
                return reason;
            }
            listener.await;
        }
    }
}
