//! The consumers registered on a shard: who consumes which subscriber's
//! storage, which of them waits for records, and whose turn it is.
//!
//! Owned by its [`Shard`](super::Shard), on the shard's thread. The registry
//! never touches a storage itself: the shard hands it a `take` function that
//! pops records, so that the registry's borrow and the storages' are apart.

use std::collections::HashMap;
use std::rc::Rc;

use futures_channel::oneshot;

/// Identifies a consumer on the shard that owns its channel.
pub type ConsumerId = u64;

/// What a consumer's poll gets back.
#[derive(Debug)]
pub enum PollResult {
    /// Records encoded as `u64 len + bytes` each, ready for the wire.
    Records { buf: Vec<u8>, records: usize },
    /// The channel was removed: the Consume ends.
    Finished,
}

/// A poll waiting on the owner shard for records to arrive.
struct Waiter {
    max_bytes: usize,
    reply: oneshot::Sender<PollResult>,
}

struct Consumer {
    channel: Rc<str>,
    subscriber: Rc<str>,
    waiter: Option<Waiter>,
    /// Set when the channel is removed while no poll was waiting.
    finished: bool,
}

/// The consumers of one shard's channels.
pub struct Consumers {
    map: HashMap<ConsumerId, Consumer>,
    /// Consumers per channel name, in registration order (round-robin wake-ups).
    by_channel: HashMap<String, Vec<ConsumerId>>,
    next: ConsumerId,
    /// Round-robin position per channel.
    cursor: HashMap<String, usize>,
}

impl Default for Consumers {
    fn default() -> Self {
        Consumers {
            map: HashMap::new(),
            by_channel: HashMap::new(),
            next: 1,
            cursor: HashMap::new(),
        }
    }
}

impl Consumers {
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Registers a consumer of `subscriber`'s storage of `channel`.
    pub fn register(&mut self, channel: &str, subscriber: &str) -> ConsumerId {
        let id = self.next;
        self.next += 1;
        self.map.insert(
            id,
            Consumer {
                channel: channel.into(),
                subscriber: subscriber.into(),
                waiter: None,
                finished: false,
            },
        );
        self.by_channel
            .entry(channel.to_owned())
            .or_default()
            .push(id);
        id
    }

    /// Unregisters a consumer. A poll still waiting is dropped unanswered:
    /// nothing was popped for it.
    pub fn unregister(&mut self, id: ConsumerId) {
        if let Some(consumer) = self.map.remove(&id) {
            if let Some(ids) = self.by_channel.get_mut(&*consumer.channel) {
                ids.retain(|&other| other != id);
                if ids.is_empty() {
                    self.by_channel.remove(&*consumer.channel);
                }
            }
        }
    }

    /// Answers a poll at once with what `take(channel, subscriber,
    /// max_bytes)` pops, or `Finished` when the channel is gone; otherwise
    /// the poll waits here until [`Consumers::wake`] or
    /// [`Consumers::channel_removed`] answers it.
    pub fn poll(
        &mut self,
        id: ConsumerId,
        max_bytes: usize,
        reply: oneshot::Sender<PollResult>,
        take: impl FnOnce(&str, &str, usize) -> Option<PollResult>,
    ) {
        let Some(consumer) = self.map.get_mut(&id) else {
            let _ = reply.send(PollResult::Finished);
            return;
        };
        if consumer.finished {
            self.map.remove(&id);
            let _ = reply.send(PollResult::Finished);
            return;
        }
        match take(&consumer.channel, &consumer.subscriber, max_bytes) {
            Some(result) => {
                let _ = reply.send(result);
            }
            None => consumer.waiter = Some(Waiter { max_bytes, reply }),
        }
    }

    /// After a push: hands records to waiting consumers of `channel`,
    /// round-robin, one consumer per subscriber storage at a time, until the
    /// storages (`take(subscriber, max_bytes)` gives `None`) or the waiters
    /// run out.
    pub fn wake(&mut self, channel: &str, mut take: impl FnMut(&str, usize) -> Option<PollResult>) {
        let Some(ids) = self.by_channel.get(channel) else {
            return;
        };
        let n = ids.len();
        let start = self.cursor.get(channel).copied().unwrap_or(0);
        for step in 0..n {
            let index = (start + step) % n;
            let Some(consumer) = ids.get(index).and_then(|id| self.map.get_mut(id)) else {
                continue;
            };
            let Some(waiter) = consumer.waiter.take() else {
                continue;
            };
            if waiter.reply.is_canceled() {
                continue;
            }
            match take(&consumer.subscriber, waiter.max_bytes) {
                Some(result) => {
                    let _ = waiter.reply.send(result);
                    match self.cursor.get_mut(channel) {
                        Some(cursor) => *cursor = (index + 1) % n,
                        None => {
                            self.cursor.insert(channel.to_owned(), (index + 1) % n);
                        }
                    }
                }
                None => consumer.waiter = Some(waiter),
            }
        }
    }

    /// The channel was removed: a waiting poll is answered `Finished` and its
    /// consumer forgotten; an idle consumer gets `Finished` at its next poll.
    pub fn channel_removed(&mut self, channel: &str) {
        self.cursor.remove(channel);
        for id in self.by_channel.remove(channel).unwrap_or_default() {
            let Some(consumer) = self.map.get_mut(&id) else {
                continue;
            };
            match consumer.waiter.take() {
                Some(waiter) => {
                    let _ = waiter.reply.send(PollResult::Finished);
                    self.map.remove(&id);
                }
                None => consumer.finished = true,
            }
        }
    }
}
