//! What the client, the consumer and the producer share about nodes: the resolved
//! addresses, the health (failures in a row and back-off), validation of names and
//! values, and opening a connection with its timeouts.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use dmq_proto::legacy::MAX_ARRAY_LEN;

use crate::config::{ClientConfig, ClientCredentials};
use crate::connector::{timeout, Connector};
use crate::error::{Error, NodeError, Result};
use crate::legacy::LegacyConn;
use crate::neo::NeoConn;
use crate::nodes::NodeAddr;

/// A node with its addresses resolved.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) addr: NodeAddr,
    pub(crate) legacy: SocketAddr,
    pub(crate) neo: SocketAddr,
}

impl Node {
    pub(crate) fn resolve_all(nodes: Vec<NodeAddr>) -> Result<Vec<Node>> {
        if nodes.is_empty() {
            return Err(Error::NodeList("no node given".into()));
        }
        nodes
            .into_iter()
            .map(|addr| {
                let (legacy, neo) = addr.resolve()?;
                Ok(Node { addr, legacy, neo })
            })
            .collect()
    }
}

/// Failures in a row and the back-off they earned. Lives with whoever talks to the
/// node (the client, a consumer, a producer), so each keeps its own view.
#[derive(Debug, Default)]
pub(crate) struct Health {
    failures: u32,
    retry_at: Option<Instant>,
}

impl Health {
    /// `Err(wait)` while in back-off.
    pub(crate) fn check(&self) -> Result<(), NodeError> {
        match self.retry_at {
            Some(at) => match at.checked_duration_since(Instant::now()) {
                Some(wait) if !wait.is_zero() => Err(NodeError::Backoff(wait)),
                _ => Ok(()),
            },
            None => Ok(()),
        }
    }

    /// Records a failure and starts (or lengthens) the back-off.
    pub(crate) fn failed(&mut self, config: &ClientConfig) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let wait = config.backoff(self.failures);
        self.retry_at = Some(Instant::now() + wait);
        wait
    }

    /// Records a success: the back-off is over.
    pub(crate) fn ok(&mut self) {
        self.failures = 0;
        self.retry_at = None;
    }
}

/// Checks a channel name as the node does: non-empty, `[A-Za-z0-9_-]` only.
pub(crate) fn check_channel(channel: &str) -> Result<()> {
    if channel.is_empty() {
        return Err(Error::InvalidArgument("empty channel name".into()));
    }
    if channel.len() > MAX_ARRAY_LEN {
        return Err(Error::InvalidArgument("channel name too long".into()));
    }
    if let Some(c) = channel
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
    {
        return Err(Error::InvalidArgument(format!(
            "channel name '{channel}': '{c}' is not allowed (only A-Z, a-z, 0-9, '_' and '-')"
        )));
    }
    Ok(())
}

/// Checks a subscriber name: empty (the default subscriber) or a channel-like name.
pub(crate) fn check_subscriber(subscriber: &str) -> Result<()> {
    if subscriber.is_empty() {
        return Ok(());
    }
    check_channel(subscriber).map_err(|e| match e {
        Error::InvalidArgument(why) => {
            Error::InvalidArgument(format!("subscriber: {}", why.replace("channel ", "")))
        }
        other => other,
    })
}

/// Checks a value: not empty (neither protocol stores one) and within the legacy
/// array limit (the neo limit is larger, but a record must be poppable and
/// consumable through either port).
pub(crate) fn check_value(value: &[u8]) -> Result<()> {
    if value.is_empty() {
        return Err(Error::InvalidArgument(
            "empty value (the nodes store no empty record)".into(),
        ));
    }
    if value.len() > MAX_ARRAY_LEN {
        return Err(Error::InvalidArgument(format!(
            "value of {} bytes is longer than the limit of {MAX_ARRAY_LEN} bytes",
            value.len()
        )));
    }
    Ok(())
}

/// Opens a TCP connection within the connect timeout.
pub(crate) async fn connect_stream<C: Connector>(
    connector: &C,
    config: &ClientConfig,
    addr: SocketAddr,
) -> Result<C::Stream, NodeError> {
    match timeout(connector, config.connect_timeout, connector.connect(addr)).await {
        None => Err(NodeError::ConnectTimeout(config.connect_timeout)),
        Some(Err(e)) => Err(NodeError::Connect(e)),
        Some(Ok(stream)) => Ok(stream),
    }
}

/// Opens a legacy connection.
pub(crate) async fn connect_legacy<C: Connector>(
    connector: &C,
    config: &ClientConfig,
    addr: SocketAddr,
) -> Result<LegacyConn<C::Stream>, NodeError> {
    Ok(LegacyConn::new(
        connect_stream(connector, config, addr).await?,
    ))
}

/// Opens a neo connection and authenticates, all within the connect timeout.
pub(crate) async fn connect_neo<C: Connector>(
    connector: &C,
    config: &ClientConfig,
    addr: SocketAddr,
) -> Result<NeoConn<C::Stream>, NodeError> {
    let credentials: &ClientCredentials =
        config.credentials.as_ref().ok_or(NodeError::AuthRejected)?;
    let handshake = async {
        let stream = connector.connect(addr).await.map_err(NodeError::Connect)?;
        NeoConn::handshake(stream, credentials)
            .await
            .map_err(NodeError::from)
    };
    match timeout(connector, config.connect_timeout, handshake).await {
        None => Err(NodeError::ConnectTimeout(config.connect_timeout)),
        Some(result) => result,
    }
}

/// A boxed future of this crate: not `Send`, like glommio's.
pub(crate) type LocalBoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;

/// Runs `futures` concurrently and returns their outputs in order.
pub(crate) async fn join_all<T>(futures: Vec<LocalBoxFuture<T>>) -> Vec<T> {
    let mut slots: Vec<(LocalBoxFuture<T>, Option<T>)> =
        futures.into_iter().map(|f| (f, None)).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in slots.iter_mut() {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    slots.into_iter().filter_map(|(_, output)| output).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_values() {
        assert!(check_channel("ch_1-A").is_ok());
        for bad in ["", "a.b", "a b", "sub@ch", "é"] {
            assert!(check_channel(bad).is_err(), "{bad:?}");
        }
        assert!(check_subscriber("").is_ok());
        assert!(check_subscriber("s@x").is_err());
        assert!(check_value(b"x").is_ok());
        assert!(check_value(b"").is_err());
        assert!(check_value(&vec![0; MAX_ARRAY_LEN + 1]).is_err());
    }

    #[test]
    fn health_backs_off_and_recovers() {
        let config = ClientConfig {
            backoff_initial: Duration::from_secs(60),
            ..ClientConfig::default()
        };
        let mut health = Health::default();
        assert!(health.check().is_ok());
        health.failed(&config);
        assert!(matches!(health.check(), Err(NodeError::Backoff(_))));
        health.ok();
        assert!(health.check().is_ok());
    }

    #[test]
    fn join_all_keeps_the_order() {
        let futures: Vec<LocalBoxFuture<usize>> = (0..5usize)
            .map(|i| Box::pin(async move { i * 2 }) as LocalBoxFuture<usize>)
            .collect();
        let out = futures_lite::future::block_on(join_all(futures));
        assert_eq!(out, [0, 2, 4, 6, 8]);
    }
}
