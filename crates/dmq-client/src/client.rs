//! [`Client`]: many nodes as one queue. Push and PushMulti go round-robin and fail
//! over; Pop tries nodes round-robin until one has a record; RemoveChannel goes to
//! every node; Consume and Produce hand out a [`Consumer`] or a [`Producer`].
//!
//! # What a failure in the middle of a request means
//!
//! | request | failure | effect | what the client does |
//! |---|---|---|---|
//! | Push, PushMulti | no connection, or the node answered legacy 500 / 407 or neo Error | not stored there | next node |
//! | Push, PushMulti | connection broke (or timed out) after the request was sent | stored there or not: unknown | [`RetryPolicy::AtMostOnce`]: [`Error::OutcomeUnknown`]; [`RetryPolicy::AtLeastOnce`]: next node, result says `maybe_duplicated` |
//! | Push, PushMulti | legacy 408 / 409 / other refusals | not stored | [`Error::Rejected`], no other node tried |
//! | Pop | connection broke after sending | a record may have been popped and lost | next node (no duplicate possible) |
//! | RemoveChannel | a node failed | removed on the others | [`Error::NodesFailed`] lists the failed nodes |
//!
//! Consume and Produce: see [`Consumer`] and [`Producer`].

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use dmq_proto::legacy::{Status, MAX_LIST_BYTES};
use dmq_proto::neo::{PushStatus, ARRAY_PREFIX_LEN, MAX_PUSH_CHANNELS};

use crate::config::{ClientConfig, Protocol, RetryPolicy};
use crate::connector::{timeout, Connector};
use crate::consumer::{ConsumeSpec, Consumer};
use crate::error::{Error, NodeError, NodeFailure, Result};
use crate::legacy::{Failed, LegacyConn, OK};
use crate::neo::{NeoConn, PopOutcome};
use crate::node::{
    check_channel, check_subscriber, check_value, connect_legacy, connect_neo, join_all, Health,
    LocalBoxFuture, Node,
};
use crate::nodes::NodeAddr;
use crate::producer::Producer;
use crate::wire::{ConnError, Wire};

/// Where a Push was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pushed {
    /// Index of the node (in the node list) that acknowledged it.
    pub node: usize,
    /// Under [`RetryPolicy::AtLeastOnce`]: an earlier node may have stored it too.
    pub maybe_duplicated: bool,
}

/// Per node: idle connections and health. Borrowed only between awaits.
struct NodeState<S> {
    idle_legacy: Vec<LegacyConn<S>>,
    idle_neo: Vec<NeoConn<S>>,
    health: Health,
}

/// A connection kind kept in a node's idle pool.
trait PooledConn<S>: Sized {
    fn wire(&mut self) -> &mut Wire<S>;
    fn pool(state: &mut NodeState<S>) -> &mut Vec<Self>;
}

impl<S> PooledConn<S> for LegacyConn<S> {
    fn wire(&mut self) -> &mut Wire<S> {
        &mut self.wire
    }

    fn pool(state: &mut NodeState<S>) -> &mut Vec<Self> {
        &mut state.idle_legacy
    }
}

impl<S> PooledConn<S> for NeoConn<S> {
    fn wire(&mut self) -> &mut Wire<S> {
        &mut self.wire
    }

    fn pool(state: &mut NodeState<S>) -> &mut Vec<Self> {
        &mut state.idle_neo
    }
}

/// How one attempt on one node ended.
enum Attempt<T> {
    Done(T),
    /// Not done there; `unknown` if it may have been done all the same.
    Failed {
        error: NodeError,
        unknown: bool,
    },
    /// The node refused the request itself; no other node will take it either.
    Rejected(NodeError),
}

/// A client of a set of nodes, used as one queue.
///
/// It runs no task of its own: every request runs inside the future the caller
/// awaits, on the caller's executor, through the [`Connector`]. Methods take `&self`
/// so that several tasks of one thread (glommio's model) can share a client; each
/// concurrent request on a node takes its own connection, and up to
/// [`ClientConfig::max_idle_per_node`] idle ones are kept per node and protocol. It
/// is not `Sync`: give each thread its own.
pub struct Client<C: Connector> {
    connector: C,
    config: ClientConfig,
    nodes: Vec<Node>,
    state: RefCell<Vec<NodeState<C::Stream>>>,
    push_next: Cell<usize>,
    pop_next: Cell<usize>,
}

impl<C: Connector> Client<C> {
    /// A client of `nodes`. Host names are resolved here (blocking); no connection
    /// is made until the first request.
    pub fn new(nodes: Vec<NodeAddr>, config: ClientConfig, connector: C) -> Result<Self> {
        config.check()?;
        let nodes = Node::resolve_all(nodes)?;
        let state = nodes
            .iter()
            .map(|_| NodeState {
                idle_legacy: Vec::new(),
                idle_neo: Vec::new(),
                health: Health::default(),
            })
            .collect();
        Ok(Client {
            connector,
            config,
            nodes,
            state: RefCell::new(state),
            push_next: Cell::new(0),
            pop_next: Cell::new(0),
        })
    }

    /// The nodes, in the order requests go round.
    pub fn nodes(&self) -> impl Iterator<Item = &NodeAddr> + '_ {
        self.nodes.iter().map(|node| &node.addr)
    }

    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The settings.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    fn display(&self, node: usize, protocol: Protocol) -> String {
        match protocol {
            Protocol::Legacy => self.nodes[node].addr.legacy_display(),
            Protocol::Neo => self.nodes[node].addr.neo_display(),
        }
    }

    fn next_of(counter: &Cell<usize>, n: usize) -> usize {
        let start = counter.get() % n;
        counter.set((start + 1) % n);
        start
    }

    fn failed(&self, node: usize) {
        if let Some(state) = self.state.borrow_mut().get_mut(node) {
            state.health.failed(&self.config);
            // Idle connections to a failing node are most likely dead too.
            state.idle_legacy.clear();
            state.idle_neo.clear();
        }
    }

    fn check_node(&self, node: usize) -> Result<()> {
        if node >= self.nodes.len() {
            return Err(Error::InvalidArgument(format!(
                "node index {node}, but there are {} nodes",
                self.nodes.len()
            )));
        }
        Ok(())
    }

    /// A legacy connection to `node`: an idle one that is still open, or a new one.
    async fn legacy_conn(&self, node: usize) -> Result<LegacyConn<C::Stream>, NodeError> {
        let connect = connect_legacy(&self.connector, &self.config, self.nodes[node].legacy);
        self.pooled(node, connect).await
    }

    /// A neo connection to `node`, authenticated.
    async fn neo_conn(&self, node: usize) -> Result<NeoConn<C::Stream>, NodeError> {
        let connect = connect_neo(&self.connector, &self.config, self.nodes[node].neo);
        self.pooled(node, connect).await
    }

    /// An idle connection of this kind to `node` that is still open, or the one
    /// `connect` makes (only awaited when no idle one will do).
    async fn pooled<T: PooledConn<C::Stream>>(
        &self,
        node: usize,
        connect: impl std::future::Future<Output = Result<T, NodeError>>,
    ) -> Result<T, NodeError> {
        self.state.borrow()[node].health.check()?;
        // Bounded: every round takes one connection out of the (bounded) pool.
        loop {
            let idle = T::pool(&mut self.state.borrow_mut()[node]).pop();
            match idle {
                Some(mut conn) => {
                    if conn.wire().is_idle_and_open().await {
                        return Ok(conn);
                    }
                }
                None => break,
            }
        }
        let result = connect.await;
        if result.is_err() {
            self.failed(node);
        }
        result
    }

    /// The node answered in step: its back-off is over, and the connection goes
    /// back to its pool (or is dropped if the pool is full).
    fn answered<T: PooledConn<C::Stream>>(&self, node: usize, conn: T) {
        let mut state = self.state.borrow_mut();
        let state = &mut state[node];
        state.health.ok();
        let pool = T::pool(state);
        if pool.len() < self.config.max_idle_per_node {
            pool.push(conn);
        }
    }

    /// Runs one request on a connection to `node` (as `conn` got it) within the
    /// request timeout. A failure becomes the attempt's answer: no connection,
    /// a timeout (outcome unknown), or a broken connection (judged by
    /// [`Client::conn_failed`]).
    async fn exchange<T, R, X>(
        &self,
        node: usize,
        conn: Result<T, NodeError>,
        request: impl AsyncFnOnce(&mut T) -> Result<R, Failed>,
    ) -> Result<(T, R), Attempt<X>> {
        let mut conn = conn.map_err(|error| Attempt::Failed {
            error,
            unknown: false,
        })?;
        match timeout(
            &self.connector,
            self.config.request_timeout,
            request(&mut conn),
        )
        .await
        {
            None => Err(self.timed_out(node)),
            Some(Err(failed)) => Err(self.conn_failed(node, failed)),
            Some(Ok(reply)) => Ok((conn, reply)),
        }
    }

    /// Judges a request that failed on its connection (which is dropped). A node
    /// that does not support the request is not "down".
    fn conn_failed<T>(&self, node: usize, failed: Failed) -> Attempt<T> {
        let unknown = failed.sent && !matches!(failed.error, ConnError::Unsupported(_));
        if !matches!(failed.error, ConnError::Unsupported(_)) {
            self.failed(node);
        }
        Attempt::Failed {
            error: failed.error.into(),
            unknown,
        }
    }

    fn timed_out<T>(&self, node: usize) -> Attempt<T> {
        self.failed(node);
        Attempt::Failed {
            error: NodeError::Timeout(self.config.request_timeout),
            unknown: true,
        }
    }

    /// One Push or PushMulti on one node.
    async fn push_once(&self, node: usize, channels: &[&[u8]], value: &[u8]) -> Attempt<()> {
        match self.config.protocol {
            Protocol::Legacy => {
                let legacy = self.legacy_conn(node).await;
                let (conn, status) = match self
                    .exchange(node, legacy, async |conn| match channels {
                        [channel] => conn.push(channel, value).await,
                        _ => conn.push_multi(channels, value).await,
                    })
                    .await
                {
                    Ok(done) => done,
                    Err(attempt) => return attempt,
                };
                let known = Status::from_code(status);
                if known.is_none() {
                    // Out of step with the node: drop the connection.
                    self.failed(node);
                    return Attempt::Failed {
                        error: NodeError::status(status),
                        unknown: true,
                    };
                }
                self.answered(node, conn);
                match known {
                    Some(Status::Ok) => Attempt::Done(()),
                    // The node failed, or is full: another node may take it.
                    Some(Status::Error | Status::OutOfMemory) => Attempt::Failed {
                        error: NodeError::status(status),
                        unknown: false,
                    },
                    _ => Attempt::Rejected(NodeError::status(status)),
                }
            }
            Protocol::Neo => {
                let neo = self.neo_conn(node).await;
                let (conn, status) = match self
                    .exchange(node, neo, async |conn| conn.push(channels, value).await)
                    .await
                {
                    Ok(done) => done,
                    Err(attempt) => return attempt,
                };
                self.answered(node, conn);
                match status {
                    PushStatus::Pushed => Attempt::Done(()),
                    PushStatus::Error => Attempt::Failed {
                        error: NodeError::NeoError,
                        unknown: false,
                    },
                }
            }
        }
    }

    /// Push over `nodes` in order, failing over as the retry policy allows.
    async fn push_over(
        &self,
        request: &'static str,
        nodes: impl IntoIterator<Item = usize>,
        channels: &[&[u8]],
        value: &[u8],
    ) -> Result<Pushed> {
        let protocol = self.config.protocol;
        let mut failures = Vec::new();
        let mut maybe_duplicated = false;
        for node in nodes {
            match self.push_once(node, channels, value).await {
                Attempt::Done(()) => {
                    return Ok(Pushed {
                        node,
                        maybe_duplicated,
                    })
                }
                Attempt::Rejected(error) => {
                    return Err(Error::Rejected {
                        request,
                        node: self.display(node, protocol),
                        error,
                    })
                }
                Attempt::Failed { error, unknown } => {
                    if unknown && self.config.retry == RetryPolicy::AtMostOnce {
                        return Err(Error::OutcomeUnknown {
                            request,
                            node: self.display(node, protocol),
                            error,
                        });
                    }
                    maybe_duplicated |= unknown;
                    failures.push(NodeFailure {
                        node: self.display(node, protocol),
                        error,
                        outcome_unknown: unknown,
                    });
                }
            }
        }
        Err(Error::NodesFailed { request, failures })
    }

    /// Every node once, starting at the next one of `counter`'s round-robin.
    fn round(&self, counter: &Cell<usize>) -> impl Iterator<Item = usize> {
        let n = self.nodes.len();
        let start = Self::next_of(counter, n);
        (0..n).map(move |k| (start + k) % n)
    }

    /// Pushes `value` to `channel` on one node, round-robin, failing over to the
    /// next node when a node is down, failed (legacy 500, neo Error) or full (legacy
    /// 407). `Ok` only once a node acknowledged the record. If the connection
    /// breaks after sending, see [`RetryPolicy`].
    pub async fn push(&self, channel: &str, value: &[u8]) -> Result<Pushed> {
        check_channel(channel)?;
        check_value(value)?;
        let order = self.round(&self.push_next);
        self.push_over("Push", order, &[channel.as_bytes()], value)
            .await
    }

    /// Pushes `value` to every channel of `channels` on one node (legacy PushMulti,
    /// or neo Push with several channels: at most 255), round-robin with fail-over
    /// like [`Client::push`]. A node stores the value in all the channels or in none.
    pub async fn push_multi(&self, channels: &[&str], value: &[u8]) -> Result<Pushed> {
        if channels.is_empty() {
            return Err(Error::InvalidArgument("PushMulti needs a channel".into()));
        }
        for channel in channels {
            check_channel(channel)?;
        }
        check_value(value)?;
        let list_bytes: usize = channels
            .iter()
            .map(|c| ARRAY_PREFIX_LEN + c.len())
            .sum::<usize>()
            + ARRAY_PREFIX_LEN;
        if self.config.protocol == Protocol::Neo && channels.len() > MAX_PUSH_CHANNELS {
            return Err(Error::InvalidArgument(format!(
                "a neo Push names at most {MAX_PUSH_CHANNELS} channels"
            )));
        }
        if list_bytes > MAX_LIST_BYTES {
            return Err(Error::InvalidArgument("channel list too long".into()));
        }
        let channels: Vec<&[u8]> = channels.iter().map(|c| c.as_bytes()).collect();
        let order = self.round(&self.push_next);
        self.push_over("PushMulti", order, &channels, value).await
    }

    /// Pushes to node `node` (index in the node list) only, without fail-over.
    pub async fn push_to(&self, node: usize, channel: &str, value: &[u8]) -> Result<Pushed> {
        self.check_node(node)?;
        check_channel(channel)?;
        check_value(value)?;
        self.push_over("Push", [node], &[channel.as_bytes()], value)
            .await
    }

    /// One Pop on one node: `Done(None)` when it has nothing.
    async fn pop_once(&self, node: usize, channel: &str) -> Attempt<Option<Vec<u8>>> {
        match self.config.protocol {
            Protocol::Legacy => {
                let legacy = self.legacy_conn(node).await;
                let (conn, reply) = match self
                    .exchange(node, legacy, async |conn| {
                        conn.pop(channel.as_bytes()).await
                    })
                    .await
                {
                    Ok(done) => done,
                    Err(attempt) => return attempt,
                };
                match reply {
                    Ok(value) => {
                        self.answered(node, conn);
                        Attempt::Done((!value.is_empty()).then_some(value))
                    }
                    // Legacy Pop answers 500 when the channel does not exist on this
                    // node (or has subscribers): nothing to pop here.
                    Err(500) => {
                        self.answered(node, conn);
                        Attempt::Done(None)
                    }
                    Err(status) if Status::from_code(status).is_some() => {
                        self.answered(node, conn);
                        Attempt::Rejected(NodeError::status(status))
                    }
                    Err(status) => {
                        self.failed(node);
                        Attempt::Failed {
                            error: NodeError::status(status),
                            unknown: true,
                        }
                    }
                }
            }
            Protocol::Neo => {
                let neo = self.neo_conn(node).await;
                let (conn, outcome) = match self
                    .exchange(node, neo, async |conn| conn.pop(channel.as_bytes()).await)
                    .await
                {
                    Ok(done) => done,
                    Err(attempt) => return attempt,
                };
                self.answered(node, conn);
                match outcome {
                    PopOutcome::Popped(value) => Attempt::Done(Some(value)),
                    PopOutcome::Empty => Attempt::Done(None),
                    PopOutcome::Error => Attempt::Failed {
                        error: NodeError::NeoError,
                        unknown: false,
                    },
                    PopOutcome::Subscribed => Attempt::Failed {
                        error: NodeError::Subscribed,
                        unknown: false,
                    },
                }
            }
        }
    }

    /// Pop over `nodes` in order until one has a record.
    async fn pop_over(
        &self,
        nodes: impl IntoIterator<Item = usize>,
        channel: &str,
    ) -> Result<Option<Vec<u8>>> {
        let protocol = self.config.protocol;
        let mut failures = Vec::new();
        for node in nodes {
            match self.pop_once(node, channel).await {
                Attempt::Done(Some(value)) => return Ok(Some(value)),
                Attempt::Done(None) => {}
                Attempt::Rejected(error) => {
                    return Err(Error::Rejected {
                        request: "Pop",
                        node: self.display(node, protocol),
                        error,
                    })
                }
                Attempt::Failed { error, unknown } => failures.push(NodeFailure {
                    node: self.display(node, protocol),
                    error,
                    outcome_unknown: unknown,
                }),
            }
        }
        if failures.is_empty() {
            Ok(None)
        } else {
            Err(Error::NodesFailed {
                request: "Pop",
                failures,
            })
        }
    }

    /// Pops one record from `channel`, trying the nodes round-robin until one has a
    /// record. `Ok(None)` when every node answered that it has none; if no node had
    /// a record and some could not answer, [`Error::NodesFailed`] lists them (their
    /// records are out of reach, not gone).
    ///
    /// A Pop whose connection breaks after it was sent may have popped a record that
    /// never arrived: that record is lost (at most once), and the next node is tried.
    pub async fn pop(&self, channel: &str) -> Result<Option<Vec<u8>>> {
        check_channel(channel)?;
        let order = self.round(&self.pop_next);
        self.pop_over(order, channel).await
    }

    /// Pops one record from node `node` only.
    pub async fn pop_from(&self, node: usize, channel: &str) -> Result<Option<Vec<u8>>> {
        self.check_node(node)?;
        check_channel(channel)?;
        self.pop_over([node], channel).await
    }

    /// Removes `channel` on every node (legacy RemoveChannel, whatever the protocol:
    /// neo has no such request). Every Consume of the channel ends. A node that
    /// fails keeps its copy; [`Error::NodesFailed`] lists those.
    pub async fn remove_channel(&self, channel: &str) -> Result<()> {
        check_channel(channel)?;
        let futures: Vec<LocalBoxFuture<std::result::Result<(), NodeFailure>>> =
            (0..self.nodes.len())
                .map(|node| {
                    let connector = self.connector.clone();
                    let config = self.config.clone();
                    let addr = self.nodes[node].legacy;
                    let name = self.display(node, Protocol::Legacy);
                    let channel = channel.to_owned();
                    Box::pin(async move {
                        let fail = |error, outcome_unknown| NodeFailure {
                            node: name.clone(),
                            error,
                            outcome_unknown,
                        };
                        let mut conn = connect_legacy(&connector, &config, addr)
                            .await
                            .map_err(|e| fail(e, false))?;
                        let request = conn.remove_channel(channel.as_bytes());
                        match timeout(&connector, config.request_timeout, request).await {
                            None => Err(fail(NodeError::Timeout(config.request_timeout), true)),
                            Some(Err(failed)) => Err(fail(failed.error.into(), failed.sent)),
                            Some(Ok(OK)) => Ok(()),
                            Some(Ok(status)) => Err(fail(NodeError::status(status), false)),
                        }
                    }) as LocalBoxFuture<_>
                })
                .collect();
        let failures: Vec<NodeFailure> = join_all(futures)
            .await
            .into_iter()
            .filter_map(|result| result.err())
            .collect();
        if failures.is_empty() {
            Ok(())
        } else {
            Err(Error::NodesFailed {
                request: "RemoveChannel",
                failures,
            })
        }
    }

    /// Consumes `channel` from every node and merges the streams (legacy Consume,
    /// or neo Consume as `subscriber`; the legacy protocol knows only the default
    /// subscriber, the empty name). Fails only if no node could be reached; the
    /// others are retried in the background of [`Consumer::next`] with back-off.
    pub async fn consume(&self, channel: &str, subscriber: &str) -> Result<Consumer<C>> {
        check_channel(channel)?;
        check_subscriber(subscriber)?;
        if self.config.protocol == Protocol::Legacy && !subscriber.is_empty() {
            return Err(Error::InvalidArgument(
                "the legacy protocol consumes as the default subscriber only; use neo for a named subscriber"
                    .into(),
            ));
        }
        let spec = Rc::new(ConsumeSpec {
            connector: self.connector.clone(),
            config: self.config.clone(),
            channel: channel.to_owned(),
            subscriber: subscriber.to_owned(),
        });
        Consumer::start(spec, self.nodes.clone()).await
    }

    /// Opens a legacy Produce stream to every node; records sent through the
    /// [`Producer`] are spread round-robin over them. Fails only if no node could
    /// be reached.
    pub async fn produce(&self, channel: &str) -> Result<Producer<C>> {
        check_channel(channel)?;
        Producer::start(
            self.connector.clone(),
            self.config.clone(),
            channel,
            self.nodes.clone(),
        )
        .await
    }
}
