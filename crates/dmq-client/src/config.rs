//! Client settings: protocol, neo credentials, timeouts, back-off, pool size and the
//! retry policy, with defaults that suit a local cluster.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use dmq_proto::neo::{check_name, Credentials, Key};

use crate::error::{Error, Result};

/// Which protocol carries Push, PushMulti, Pop and Consume. RemoveChannel and
/// Produce exist only in the legacy protocol and always use the legacy port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// The legacy protocol (port `server.port`): no authentication.
    #[default]
    Legacy,
    /// The neo protocol (port `server.neoport`): HMAC authentication with
    /// [`ClientConfig::credentials`].
    Neo,
}

/// What a Push does when the connection to a node breaks after the request was sent
/// and before the node answered: the record may or may not be stored there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RetryPolicy {
    /// Return [`Error::OutcomeUnknown`] and try no other node: a record is never
    /// stored twice by the client, but may be lost if that node did not store it.
    #[default]
    AtMostOnce,
    /// Go on to the next node: the record is stored at least once, maybe twice (the
    /// result's `maybe_duplicated` says so).
    AtLeastOnce,
}

/// A neo client name and its 128-byte key: one line of the node's credentials file.
/// `Debug` shows the name only.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCredentials {
    /// Client name (1 to 100 printable ASCII characters).
    pub name: String,
    /// The key.
    pub key: Key,
}

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl ClientCredentials {
    /// Parses `name:hexkey` (256 hex digits), the node's credentials-file format.
    pub fn parse(line: &str) -> Result<ClientCredentials> {
        let line = line.trim();
        let name = line.split(':').next().unwrap_or_default().trim();
        check_name(name.as_bytes())
            .map_err(|e| Error::Credentials(format!("client name '{name}': {e}")))?;
        let parsed = Credentials::parse(line).map_err(|e| Error::Credentials(e.to_string()))?;
        let key = parsed
            .key(name)
            .ok_or_else(|| Error::Credentials("expected one name:hexkey line".into()))?;
        Ok(ClientCredentials {
            name: name.to_owned(),
            key: *key,
        })
    }

    /// Reads the first `name:hexkey` line of a file (other lines and `#` comments are
    /// ignored).
    pub fn from_file(path: &Path) -> Result<ClientCredentials> {
        let text = crate::read_small_file(
            path,
            dmq_proto::neo::MAX_CREDENTIALS_FILE_LEN as u64,
            "credentials file",
        )?;
        let line = text
            .lines()
            .map(str::trim)
            .find(|line| !line.is_empty() && !line.starts_with('#'))
            .ok_or_else(|| Error::Credentials(format!("{}: no name:key line", path.display())))?;
        ClientCredentials::parse(line)
            .map_err(|e| Error::Credentials(format!("{}: {e}", path.display())))
    }
}

/// Client settings. `ClientConfig::default()` is the legacy protocol with the
/// defaults documented on each field.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Protocol for Push, PushMulti, Pop and Consume. Default: legacy.
    pub protocol: Protocol,
    /// Neo credentials; required with [`Protocol::Neo`].
    pub credentials: Option<ClientCredentials>,
    /// Longest wait for a TCP connection and, for neo, its handshake. Default: 2 s.
    pub connect_timeout: Duration,
    /// Longest wait for the answer to a request (and for a write to complete).
    /// Default: 10 s. Consume waits for records without limit.
    pub request_timeout: Duration,
    /// Back-off after a node's first failure; it doubles on every further failure
    /// in a row. Default: 100 ms.
    pub backoff_initial: Duration,
    /// Longest back-off. Default: 5 s.
    pub backoff_max: Duration,
    /// Idle connections kept per node and protocol for reuse. Default: 4.
    pub max_idle_per_node: usize,
    /// What a Push does when its outcome on a node is unknown. Default: at most once.
    pub retry: RetryPolicy,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            protocol: Protocol::Legacy,
            credentials: None,
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            max_idle_per_node: 4,
            retry: RetryPolicy::AtMostOnce,
        }
    }
}

impl ClientConfig {
    /// The neo protocol with these credentials, other settings by default.
    pub fn neo(credentials: ClientCredentials) -> ClientConfig {
        ClientConfig {
            protocol: Protocol::Neo,
            credentials: Some(credentials),
            ..ClientConfig::default()
        }
    }

    /// The back-off after `failures` failures in a row (at least one).
    pub(crate) fn backoff(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(30);
        self.backoff_initial
            .saturating_mul(1 << doublings)
            .min(self.backoff_max)
    }

    pub(crate) fn check(&self) -> Result<()> {
        if self.protocol == Protocol::Neo && self.credentials.is_none() {
            return Err(Error::Credentials(
                "the neo protocol needs credentials (name:hexkey)".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_line() {
        let line = format!("test:{}", "0".repeat(256));
        let credentials = ClientCredentials::parse(&line).expect("credentials");
        assert_eq!(credentials.name, "test");
        assert_eq!(credentials.key, [0; 128]);
        assert!(!format!("{credentials:?}").contains("key"));
        assert!(ClientCredentials::parse("test:00").is_err());
        assert!(ClientCredentials::parse(&format!(":{}", "0".repeat(256))).is_err());
    }

    #[test]
    fn backoff_doubles_up_to_the_limit() {
        let config = ClientConfig::default();
        assert_eq!(config.backoff(1), Duration::from_millis(100));
        assert_eq!(config.backoff(2), Duration::from_millis(200));
        assert_eq!(config.backoff(4), Duration::from_millis(800));
        assert_eq!(config.backoff(20), Duration::from_secs(5));
        assert_eq!(config.backoff(u32::MAX), Duration::from_secs(5));
    }
}
