//! The messages a client sends to a running neo Consume (Continue, Stop),
//! queued for its task, and the connection's end.
//!
//! Lives on the connection's shard, shared by the reader (which delivers)
//! and the Consume task (which takes), for the life of the request.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;

use dmq_proto::neo::ConsumeClientMessage;
use event_listener::Event;

/// Most client messages queued for one Consume: the protocol allows at most a
/// Continue and a Stop to be outstanding.
const INBOX_DEPTH: usize = 4;

/// Messages from the client to a running Consume, and the connection's end.
#[derive(Default)]
pub struct Inbox {
    queue: RefCell<VecDeque<ConsumeClientMessage>>,
    closed: Cell<bool>,
    event: Event,
}

impl Inbox {
    /// Queues a message from the client; more than the protocol allows is an error.
    pub fn deliver(&self, message: ConsumeClientMessage) -> Result<(), &'static str> {
        let mut queue = self.queue.borrow_mut();
        if queue.len() >= INBOX_DEPTH {
            return Err("Consume: too many messages from the client");
        }
        queue.push_back(message);
        drop(queue);
        self.event.notify(1);
        Ok(())
    }

    /// The connection is gone: the Consume stops silently.
    pub fn close(&self) {
        self.closed.set(true);
        self.event.notify(usize::MAX);
    }

    /// The next message, or `None` once the connection closed.
    pub async fn next(&self) -> Option<ConsumeClientMessage> {
        loop {
            if self.closed.get() {
                return None;
            }
            if let Some(message) = self.queue.borrow_mut().pop_front() {
                return Some(message);
            }
            let listener = self.event.listen();
            if self.closed.get() || !self.queue.borrow().is_empty() {
                continue;
            }
            listener.await;
        }
    }
}
