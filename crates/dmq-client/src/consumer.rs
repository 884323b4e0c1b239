//! [`Consumer`]: one Consume per node, merged into one stream of records.
//!
//! Each node's stream is a small state machine driven from [`Consumer::next`]:
//! connecting (after a back-off when it failed before), running, or ended (the
//! channel was removed). No task is spawned, so the consumer runs on whatever
//! executor awaits it.
//!
//! Flow control and memory: a neo node sends one batch and waits for Continue; the
//! consumer sends Continue only once that node's batch was handed out and the
//! caller asks for more, and never while suspended, so at most one batch per node
//! is buffered. A legacy node streams without acknowledgement; the consumer reads
//! only when the caller asks for a record and nothing is buffered, so TCP flow
//! control holds the node back, and at most one read buffer per node is kept.
//!
//! Delivery: the nodes pop a record before sending it. Records sent and not yet
//! received when a connection breaks, or when the consumer is dropped without
//! [`Consumer::stop`], are lost (at most once, as in the original); a legacy
//! consumer stopped by closing loses what was in flight too.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::net::SocketAddr;
use std::rc::Rc;
use std::task::{Context, Poll};

use dmq_proto::neo::{ConsumeClientMessage, ConsumeStatus, RequestId};

use crate::config::{ClientConfig, Protocol};
use crate::connector::{timeout, Connector};
use crate::error::{Error, NodeError, NodeFailure, Result};
use crate::legacy::{LegacyConn, OK};
use crate::neo::{ConsumeEvent, NeoConn};
use crate::node::{connect_legacy, connect_neo, join_all, Health, LocalBoxFuture, Node};

/// What a consumer needs to (re)start its node streams.
pub(crate) struct ConsumeSpec<C> {
    pub(crate) connector: C,
    pub(crate) config: ClientConfig,
    pub(crate) channel: String,
    pub(crate) subscriber: String,
}

/// A node stream that has started.
enum Started<S> {
    Legacy(LegacyConn<S>),
    Neo(NeoConn<S>, RequestId),
}

enum Stream<S> {
    /// Connecting and starting the Consume again, after a back-off: the stream
    /// failed (or never started) with `error`.
    Connecting {
        start: LocalBoxFuture<Result<Started<S>, NodeError>>,
        error: NodeError,
    },
    /// Legacy Consume: records are parsed straight from the read buffer.
    Legacy(LegacyConn<S>),
    /// Neo Consume v4.
    Neo {
        conn: NeoConn<S>,
        id: RequestId,
        /// The last batch, handed out one record at a time.
        batch: VecDeque<Vec<u8>>,
        /// A batch arrived and Continue was not sent yet.
        owe_continue: bool,
    },
    /// The channel was removed (or the stream was stopped).
    Ended,
}

struct NodeStream<S> {
    name: String,
    addr: SocketAddr,
    stream: Stream<S>,
    health: Health,
}

/// A Consume of one channel on every node, merged. Records come in no defined
/// order across nodes; within one node they come in that node's order.
///
/// Created by [`Client::consume`](crate::Client::consume). Not `Send` (its
/// connecting futures are boxed without `Send`, as glommio needs).
pub struct Consumer<C: Connector> {
    spec: Rc<ConsumeSpec<C>>,
    nodes: Vec<NodeStream<C::Stream>>,
    next: usize,
    suspended: bool,
    reconnects: u64,
}

/// Connects to `node` after `delay` and starts the Consume.
fn start_node<C: Connector>(
    spec: Rc<ConsumeSpec<C>>,
    addr: SocketAddr,
    delay: std::time::Duration,
) -> LocalBoxFuture<Result<Started<C::Stream>, NodeError>> {
    Box::pin(async move {
        if !delay.is_zero() {
            spec.connector.sleep(delay).await;
        }
        let connector = &spec.connector;
        let config = &spec.config;
        let request_timeout = config.request_timeout;
        match config.protocol {
            Protocol::Legacy => {
                let mut conn = connect_legacy(connector, config, addr).await?;
                let start = conn.start_consume(spec.channel.as_bytes());
                match timeout(connector, request_timeout, start).await {
                    None => Err(NodeError::Timeout(request_timeout)),
                    Some(Err(failed)) => Err(failed.error.into()),
                    Some(Ok(OK)) => Ok(Started::Legacy(conn)),
                    Some(Ok(status)) => Err(NodeError::status(status)),
                }
            }
            Protocol::Neo => {
                let mut conn = connect_neo(connector, config, addr).await?;
                let start = conn.start_consume(spec.channel.as_bytes(), spec.subscriber.as_bytes());
                match timeout(connector, request_timeout, start).await {
                    None => Err(NodeError::Timeout(request_timeout)),
                    Some(Err(failed)) => Err(failed.error.into()),
                    Some(Ok((id, ConsumeStatus::Started))) => Ok(Started::Neo(conn, id)),
                    Some(Ok((_, ConsumeStatus::Error))) => Err(NodeError::NeoError),
                }
            }
        }
    })
}

impl<S> Stream<S> {
    fn running(started: Started<S>) -> Stream<S> {
        match started {
            Started::Legacy(conn) => Stream::Legacy(conn),
            Started::Neo(conn, id) => Stream::Neo {
                conn,
                id,
                batch: VecDeque::new(),
                owe_continue: false,
            },
        }
    }
}

impl<C: Connector> Consumer<C> {
    /// Starts a Consume on every node at once; fails only if every node failed.
    pub(crate) async fn start(spec: Rc<ConsumeSpec<C>>, nodes: Vec<Node>) -> Result<Self> {
        let protocol = spec.config.protocol;
        let addr_of = |node: &Node| match protocol {
            Protocol::Legacy => node.legacy,
            Protocol::Neo => node.neo,
        };
        let name_of = |node: &Node| match protocol {
            Protocol::Legacy => node.addr.legacy_display(),
            Protocol::Neo => node.addr.neo_display(),
        };
        let futures = nodes
            .iter()
            .map(|node| start_node(spec.clone(), addr_of(node), std::time::Duration::ZERO))
            .collect();
        let results = join_all(futures).await;
        if results.iter().all(Result::is_err) {
            let failures = nodes
                .iter()
                .zip(results)
                .filter_map(|(node, result)| {
                    result.err().map(|error| NodeFailure {
                        node: name_of(node),
                        error,
                        outcome_unknown: false,
                    })
                })
                .collect();
            return Err(Error::NodesFailed {
                request: "Consume",
                failures,
            });
        }
        let streams = nodes
            .iter()
            .zip(results)
            .map(|(node, result)| {
                let mut health = Health::default();
                let stream = match result {
                    Ok(started) => Stream::running(started),
                    Err(error) => {
                        let wait = health.failed(&spec.config);
                        Stream::Connecting {
                            start: start_node(spec.clone(), addr_of(node), wait),
                            error,
                        }
                    }
                };
                NodeStream {
                    name: name_of(node),
                    addr: addr_of(node),
                    stream,
                    health,
                }
            })
            .collect();
        Ok(Consumer {
            spec,
            nodes: streams,
            next: 0,
            suspended: false,
            reconnects: 0,
        })
    }

    /// The next record from any node; `Ok(None)` once every node's stream has
    /// ended (the channel was removed on each). Waits as long as it takes; wrap it
    /// in a timeout if needed (dropping the future loses nothing: records stay
    /// buffered).
    ///
    /// While suspended, returns the records already received, then
    /// [`Error::Suspended`].
    pub async fn next(&mut self) -> Result<Option<Vec<u8>>> {
        poll_fn(|cx| self.poll_next(cx)).await
    }

    /// Stops asking the nodes for records: no neo Continue is sent and no legacy
    /// connection is read until [`Consumer::resume`]. A neo node then pops nothing
    /// more for this consumer; a legacy node keeps writing until TCP's buffers are
    /// full.
    pub fn suspend(&mut self) {
        self.suspended = true;
    }

    /// Lifts [`Consumer::suspend`].
    pub fn resume(&mut self) {
        self.suspended = false;
    }

    /// Whether the consumer is suspended.
    pub fn is_suspended(&self) -> bool {
        self.suspended
    }

    /// How many times a node stream broke (or could not be started) and was
    /// restarted. Records in flight on a broken stream are lost.
    pub fn reconnect_count(&self) -> u64 {
        self.reconnects
    }

    /// Number of node streams currently running (not connecting, not ended).
    pub fn running_count(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| matches!(n.stream, Stream::Legacy(_) | Stream::Neo { .. }))
            .count()
    }

    /// Whether every node's stream has ended (the channel was removed on each):
    /// [`Consumer::next`] then returns `Ok(None)`.
    pub fn is_ended(&self) -> bool {
        self.nodes.iter().all(|n| matches!(n.stream, Stream::Ended))
    }

    /// The last error of each node stream that failed, if it has not run since.
    pub fn node_errors(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter_map(|n| match &n.stream {
                Stream::Connecting { error, .. } => Some(format!("{}: {error}", n.name)),
                _ => None,
            })
            .collect()
    }

    /// Stops every node stream: neo Stop (then the records the node had already
    /// popped are read until Stopped), legacy by closing the connection (records
    /// in flight are lost). Returns the records received but not handed out yet, so
    /// that none the nodes popped is dropped here.
    pub async fn stop(mut self) -> Vec<Vec<u8>> {
        let mut left = Vec::new();
        let request_timeout = self.spec.config.request_timeout;
        for node in &mut self.nodes {
            match std::mem::replace(&mut node.stream, Stream::Ended) {
                Stream::Legacy(mut conn) => {
                    while let Ok(Some(Some(record))) = conn.take_record() {
                        left.push(record);
                    }
                }
                Stream::Neo {
                    mut conn,
                    id,
                    batch,
                    ..
                } => {
                    left.extend(batch);
                    conn.queue_consume_message(id, ConsumeClientMessage::Stop);
                    let stop = async {
                        conn.wire.flush().await?;
                        conn.drain_consume(id, &mut left).await
                    };
                    // A failure or a timeout only ends the drain: what arrived
                    // before it is in `left`.
                    let _ = timeout(&self.spec.connector, request_timeout, stop).await;
                }
                Stream::Connecting { .. } | Stream::Ended => {}
            }
        }
        left
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Vec<u8>>>> {
        // Bounded: a round either returns, or made progress on some node (a read of
        // at least one byte, a state change); with no progress it returns Pending.
        loop {
            let n = self.nodes.len();
            for k in 0..n {
                let i = (self.next + k) % n;
                if let Some(record) = self.take_buffered(i) {
                    self.next = (i + 1) % n;
                    return Poll::Ready(Ok(Some(record)));
                }
            }
            if self
                .nodes
                .iter()
                .all(|node| matches!(node.stream, Stream::Ended))
            {
                return Poll::Ready(Ok(None));
            }
            if self.suspended {
                return Poll::Ready(Err(Error::Suspended));
            }
            let mut progress = false;
            for i in 0..n {
                progress |= self.drive(i, cx);
            }
            if !progress {
                return Poll::Pending;
            }
        }
    }

    /// A record of node `i` that was already received.
    fn take_buffered(&mut self, i: usize) -> Option<Vec<u8>> {
        let node = &mut self.nodes[i];
        let error = match &mut node.stream {
            Stream::Legacy(conn) => match conn.take_record() {
                Ok(Some(Some(record))) => return Some(record),
                Ok(Some(None)) => {
                    node.stream = Stream::Ended;
                    return None;
                }
                Ok(None) => return None,
                Err(error) => error,
            },
            Stream::Neo { batch, .. } => return batch.pop_front(),
            Stream::Connecting { .. } | Stream::Ended => return None,
        };
        self.restart(i, error.into());
        None
    }

    /// Replaces node `i`'s broken stream with a new one after a back-off.
    fn restart(&mut self, i: usize, error: NodeError) {
        self.reconnects += 1;
        let node = &mut self.nodes[i];
        let wait = node.health.failed(&self.spec.config);
        node.stream = Stream::Connecting {
            start: start_node(self.spec.clone(), node.addr, wait),
            error,
        };
    }

    /// Moves node `i` forward as far as it goes without waiting; true if anything
    /// changed.
    fn drive(&mut self, i: usize, cx: &mut Context<'_>) -> bool {
        match self.step(i, cx) {
            Step::Idle => false,
            Step::Progress => true,
            Step::Broken(error) => {
                self.restart(i, error);
                true
            }
        }
    }

    fn step(&mut self, i: usize, cx: &mut Context<'_>) -> Step {
        let node = &mut self.nodes[i];
        match &mut node.stream {
            Stream::Ended => Step::Idle,
            Stream::Connecting { start, .. } => match start.as_mut().poll(cx) {
                Poll::Pending => Step::Idle,
                Poll::Ready(Ok(started)) => {
                    node.health.ok();
                    node.stream = Stream::running(started);
                    Step::Progress
                }
                Poll::Ready(Err(error)) => Step::Broken(error),
            },
            Stream::Legacy(conn) => {
                let needed = conn.record_needed();
                if needed == 0 {
                    return Step::Progress;
                }
                fill(conn.wire.poll_fill(cx, needed))
            }
            Stream::Neo {
                conn,
                id,
                batch,
                owe_continue,
            } => {
                if batch.is_empty() && *owe_continue {
                    conn.queue_consume_message(*id, ConsumeClientMessage::Continue);
                    *owe_continue = false;
                }
                if conn.wire.has_output() {
                    if let Poll::Ready(Err(error)) = conn.wire.poll_flush(cx) {
                        return Step::Broken(error.into());
                    }
                }
                match conn.take_consume_event(*id, batch) {
                    Ok(Some(ConsumeEvent::Records)) => {
                        *owe_continue = true;
                        return Step::Progress;
                    }
                    Ok(Some(ConsumeEvent::Stopped | ConsumeEvent::ChannelRemoved)) => {
                        node.stream = Stream::Ended;
                        return Step::Progress;
                    }
                    Ok(None) => {}
                    Err(error) => return Step::Broken(error.into()),
                }
                let needed = conn.message_needed();
                fill(conn.wire.poll_fill(cx, needed))
            }
        }
    }
}

/// What one look at a node stream did.
enum Step {
    /// Nothing to do until woken.
    Idle,
    /// Something changed; look again.
    Progress,
    /// The stream broke; restart it.
    Broken(NodeError),
}

fn fill(poll: Poll<Result<(), crate::wire::ConnError>>) -> Step {
    match poll {
        Poll::Pending => Step::Idle,
        Poll::Ready(Ok(())) => Step::Progress,
        Poll::Ready(Err(error)) => Step::Broken(error.into()),
    }
}
