//! [`Producer`]: one legacy Produce stream per node, records spread round-robin.
//!
//! Legacy Produce has no per-record acknowledgement (spec §2.5). The producer
//! buffers records per node (up to [`FLUSH_BYTES`]) and writes them in batches;
//! [`Producer::finish`] ends every stream and then waits for the answer to a
//! GetNumConnections sent after it, which proves that the node stored every record
//! of the stream (it handles a connection's requests in order). Until then, records
//! sent to a node whose stream breaks may be lost: the producer reports how many
//! ([`Error::ProduceStreamBroken`]) and resends none, so nothing is duplicated.

use std::net::SocketAddr;

use crate::config::ClientConfig;
use crate::connector::{timeout, Connector};
use crate::error::{Error, NodeError, NodeFailure, Result};
use crate::legacy::{LegacyConn, OK};
use crate::node::{check_value, connect_legacy, join_all, Health, LocalBoxFuture, Node};

/// A node's buffered records are written once they reach this many bytes.
pub const FLUSH_BYTES: usize = 64 * 1024;

struct ProduceNode<S> {
    name: String,
    addr: SocketAddr,
    conn: Option<LegacyConn<S>>,
    /// Records queued or written on the current stream since it started.
    unconfirmed: u64,
    health: Health,
}

/// Produce streams to every node of a client, used as one.
///
/// Created by [`Client::produce`](crate::Client::produce).
pub struct Producer<C: Connector> {
    connector: C,
    config: ClientConfig,
    channel: String,
    nodes: Vec<ProduceNode<C::Stream>>,
    next: usize,
}

async fn open<C: Connector>(
    connector: &C,
    config: &ClientConfig,
    addr: SocketAddr,
    channel: &str,
) -> Result<LegacyConn<C::Stream>, NodeError> {
    let mut conn = connect_legacy(connector, config, addr).await?;
    let start = conn.start_produce(channel.as_bytes());
    match timeout(connector, config.request_timeout, start).await {
        None => Err(NodeError::Timeout(config.request_timeout)),
        Some(Err(failed)) => Err(failed.error.into()),
        Some(Ok(OK)) => Ok(conn),
        Some(Ok(status)) => Err(NodeError::status(status)),
    }
}

impl<C: Connector> Producer<C> {
    /// Opens a stream to every node at once; fails only if every node failed.
    /// `channel` was checked by the caller.
    pub(crate) async fn start(
        connector: C,
        config: ClientConfig,
        channel: &str,
        nodes: Vec<Node>,
    ) -> Result<Self> {
        let futures = nodes
            .iter()
            .map(|node| {
                let (connector, config, addr) = (connector.clone(), config.clone(), node.legacy);
                let channel = channel.to_owned();
                Box::pin(async move { open(&connector, &config, addr, &channel).await })
                    as LocalBoxFuture<_>
            })
            .collect();
        let results = join_all(futures).await;
        if results.iter().all(Result::is_err) {
            let failures = nodes
                .iter()
                .zip(results)
                .filter_map(|(node, result)| {
                    result.err().map(|error| NodeFailure {
                        node: node.addr.legacy_display(),
                        error,
                        outcome_unknown: false,
                    })
                })
                .collect();
            return Err(Error::NodesFailed {
                request: "Produce",
                failures,
            });
        }
        let streams = nodes
            .iter()
            .zip(results)
            .map(|(node, result)| {
                let mut health = Health::default();
                let conn = match result {
                    Ok(conn) => Some(conn),
                    Err(_) => {
                        health.failed(&config);
                        None
                    }
                };
                ProduceNode {
                    name: node.addr.legacy_display(),
                    addr: node.legacy,
                    conn,
                    unconfirmed: 0,
                    health,
                }
            })
            .collect();
        Ok(Producer {
            connector,
            config,
            channel: channel.to_owned(),
            nodes: streams,
            next: 0,
        })
    }

    /// Number of node streams open now.
    pub fn open_count(&self) -> usize {
        self.nodes.iter().filter(|n| n.conn.is_some()).count()
    }

    /// Queues `record` on the next node's stream (round-robin over the open ones;
    /// a closed one is reopened once its back-off has passed) and writes that
    /// node's buffer if it is full.
    ///
    /// `Ok` means the record was handed to a stream, not that it is stored: see
    /// [`Producer::finish`]. If writing breaks a stream,
    /// [`Error::ProduceStreamBroken`] says how many records sent on it may be lost
    /// (this one included); the producer goes on with the other nodes.
    pub async fn send(&mut self, record: &[u8]) -> Result<()> {
        // An empty record would also end the legacy Produce stream.
        check_value(record)?;
        let n = self.nodes.len();
        let mut failures = Vec::new();
        for k in 0..n {
            let i = (self.next + k) % n;
            if self.nodes[i].conn.is_none() {
                if let Err(error) = self.reopen(i).await {
                    failures.push(NodeFailure {
                        node: self.nodes[i].name.clone(),
                        error,
                        outcome_unknown: false,
                    });
                    continue;
                }
            }
            let node = &mut self.nodes[i];
            let Some(conn) = node.conn.as_mut() else {
                continue;
            };
            conn.queue_record(record);
            node.unconfirmed += 1;
            self.next = (i + 1) % n;
            if conn.wire.out().len() >= FLUSH_BYTES {
                self.flush_node(i).await?;
            }
            return Ok(());
        }
        Err(Error::NodesFailed {
            request: "Produce",
            failures,
        })
    }

    async fn reopen(&mut self, i: usize) -> Result<(), NodeError> {
        self.nodes[i].health.check()?;
        let node = &mut self.nodes[i];
        match open(&self.connector, &self.config, node.addr, &self.channel).await {
            Ok(conn) => {
                node.health.ok();
                node.conn = Some(conn);
                Ok(())
            }
            Err(error) => {
                node.health.failed(&self.config);
                Err(error)
            }
        }
    }

    /// Writes node `i`'s buffer; on failure closes the stream and reports it.
    async fn flush_node(&mut self, i: usize) -> Result<()> {
        let request_timeout = self.config.request_timeout;
        let node = &mut self.nodes[i];
        let Some(conn) = node.conn.as_mut() else {
            return Ok(());
        };
        let error = match timeout(&self.connector, request_timeout, conn.wire.flush()).await {
            Some(Ok(())) => return Ok(()),
            Some(Err(error)) => error.into(),
            None => NodeError::Timeout(request_timeout),
        };
        Err(self.broken(i, error))
    }

    fn broken(&mut self, i: usize, error: NodeError) -> Error {
        let node = &mut self.nodes[i];
        node.conn = None;
        node.health.failed(&self.config);
        let records = std::mem::take(&mut node.unconfirmed);
        Error::ProduceStreamBroken {
            node: node.name.clone(),
            records,
            error,
        }
    }

    /// Writes every node's buffered records. The first broken stream is reported;
    /// the others are still flushed.
    pub async fn flush(&mut self) -> Result<()> {
        let mut first = None;
        for i in 0..self.nodes.len() {
            if let Err(e) = self.flush_node(i).await {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Ends every stream and confirms it: returns the number of records the nodes
    /// stored through this producer. If a stream cannot be confirmed, the first
    /// such failure is returned (the others are still ended and confirmed).
    pub async fn finish(mut self) -> Result<u64> {
        let request_timeout = self.config.request_timeout;
        let mut confirmed = 0;
        let mut first = None;
        for i in 0..self.nodes.len() {
            let Some(mut conn) = self.nodes[i].conn.take() else {
                continue;
            };
            let end = conn.end_produce_and_sync();
            let error = match timeout(&self.connector, request_timeout, end).await {
                Some(Ok(())) => {
                    confirmed += std::mem::take(&mut self.nodes[i].unconfirmed);
                    continue;
                }
                Some(Err(failed)) => failed.error.into(),
                None => NodeError::Timeout(request_timeout),
            };
            let e = self.broken(i, error);
            first.get_or_insert(e);
        }
        first.map_or(Ok(confirmed), Err)
    }
}
