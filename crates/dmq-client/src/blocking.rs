//! A blocking facade over async-io: [`Client`], [`Consumer`] and [`Producer`] run
//! each call to completion with `futures_lite::future::block_on` on
//! [`AsyncIoConnector`]. The `dmq` command-line tool uses it.
//!
//! Do not call it from inside an async task: it blocks the thread.

use std::time::Duration;

use futures_lite::future::block_on;

use crate::config::ClientConfig;
use crate::connector::{timeout, AsyncIoConnector};
use crate::error::Result;
use crate::nodes::NodeAddr;
use crate::Pushed;

/// A blocking [`crate::Client`].
pub struct Client {
    inner: crate::Client<AsyncIoConnector>,
}

impl Client {
    /// A client of `nodes` (see [`crate::Client::new`]).
    pub fn new(nodes: Vec<NodeAddr>, config: ClientConfig) -> Result<Client> {
        Ok(Client {
            inner: crate::Client::new(nodes, config, AsyncIoConnector)?,
        })
    }

    /// The async client inside.
    pub fn as_async(&self) -> &crate::Client<AsyncIoConnector> {
        &self.inner
    }

    /// See [`crate::Client::push`].
    pub fn push(&self, channel: &str, value: &[u8]) -> Result<Pushed> {
        block_on(self.inner.push(channel, value))
    }

    /// See [`crate::Client::push_multi`].
    pub fn push_multi(&self, channels: &[&str], value: &[u8]) -> Result<Pushed> {
        block_on(self.inner.push_multi(channels, value))
    }

    /// See [`crate::Client::push_to`].
    pub fn push_to(&self, node: usize, channel: &str, value: &[u8]) -> Result<Pushed> {
        block_on(self.inner.push_to(node, channel, value))
    }

    /// See [`crate::Client::pop`].
    pub fn pop(&self, channel: &str) -> Result<Option<Vec<u8>>> {
        block_on(self.inner.pop(channel))
    }

    /// See [`crate::Client::pop_from`].
    pub fn pop_from(&self, node: usize, channel: &str) -> Result<Option<Vec<u8>>> {
        block_on(self.inner.pop_from(node, channel))
    }

    /// See [`crate::Client::remove_channel`].
    pub fn remove_channel(&self, channel: &str) -> Result<()> {
        block_on(self.inner.remove_channel(channel))
    }

    /// See [`crate::Client::consume`].
    pub fn consume(&self, channel: &str, subscriber: &str) -> Result<Consumer> {
        Ok(Consumer {
            inner: block_on(self.inner.consume(channel, subscriber))?,
        })
    }

    /// See [`crate::Client::produce`].
    pub fn produce(&self, channel: &str) -> Result<Producer> {
        Ok(Producer {
            inner: block_on(self.inner.produce(channel))?,
        })
    }
}

/// A blocking [`crate::Consumer`].
pub struct Consumer {
    inner: crate::Consumer<AsyncIoConnector>,
}

impl Consumer {
    /// See [`crate::Consumer::next`]: blocks until a record comes.
    pub fn recv(&mut self) -> Result<Option<Vec<u8>>> {
        block_on(self.inner.next())
    }

    /// As [`Consumer::recv`], but gives up after `wait`: `Ok(None)` then means
    /// "nothing yet" (or the end; see [`Consumer::is_ended`]).
    pub fn recv_timeout(&mut self, wait: Duration) -> Result<Option<Vec<u8>>> {
        block_on(timeout(&AsyncIoConnector, wait, self.inner.next())).unwrap_or(Ok(None))
    }

    /// See [`crate::Consumer::is_ended`].
    pub fn is_ended(&self) -> bool {
        self.inner.is_ended()
    }

    /// See [`crate::Consumer::suspend`].
    pub fn suspend(&mut self) {
        self.inner.suspend();
    }

    /// See [`crate::Consumer::resume`].
    pub fn resume(&mut self) {
        self.inner.resume();
    }

    /// The async consumer inside.
    pub fn as_async(&mut self) -> &mut crate::Consumer<AsyncIoConnector> {
        &mut self.inner
    }

    /// See [`crate::Consumer::stop`].
    pub fn stop(self) -> Vec<Vec<u8>> {
        block_on(self.inner.stop())
    }
}

/// A blocking [`crate::Producer`].
pub struct Producer {
    inner: crate::Producer<AsyncIoConnector>,
}

impl Producer {
    /// See [`crate::Producer::send`].
    pub fn send(&mut self, record: &[u8]) -> Result<()> {
        block_on(self.inner.send(record))
    }

    /// See [`crate::Producer::flush`].
    pub fn flush(&mut self) -> Result<()> {
        block_on(self.inner.flush())
    }

    /// See [`crate::Producer::finish`].
    pub fn finish(self) -> Result<u64> {
        block_on(self.inner.finish())
    }
}
