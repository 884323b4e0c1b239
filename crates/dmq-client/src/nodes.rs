//! The node list: the original's nodes file (one `host:port` per line, the legacy
//! port), with the neo port as legacy port + 1 by convention or given as a third
//! field, `host:port:neoport`.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::str::FromStr;

use crate::error::{Error, Result};

/// Largest nodes file read, in bytes; a nodes file is a handful of lines.
pub const MAX_NODES_FILE_LEN: u64 = 1024 * 1024;

/// One node: a host and its two ports.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NodeAddr {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// The legacy protocol port (`server.port`).
    pub port: u16,
    /// The neo protocol port (`server.neoport`).
    pub neo_port: u16,
}

impl NodeAddr {
    /// A node whose neo port is `port + 1`, the original's convention.
    pub fn new(host: impl Into<String>, port: u16) -> Result<NodeAddr> {
        let neo_port = port.checked_add(1).ok_or_else(|| {
            Error::NodeList(format!("port {port}: no neo port can follow it; give one"))
        })?;
        Ok(NodeAddr {
            host: host.into(),
            port,
            neo_port,
        })
    }

    /// A node with both ports given.
    pub fn with_neo_port(host: impl Into<String>, port: u16, neo_port: u16) -> NodeAddr {
        NodeAddr {
            host: host.into(),
            port,
            neo_port,
        }
    }

    /// The node of `addr` (its port being the legacy port, neo = port + 1).
    pub fn from_socket_addr(addr: SocketAddr) -> Result<NodeAddr> {
        NodeAddr::new(addr.ip().to_string(), addr.port())
    }

    /// Resolves the legacy and neo addresses (blocking, through the system resolver;
    /// an IP address needs no lookup). The first address found is used.
    pub fn resolve(&self) -> Result<(SocketAddr, SocketAddr)> {
        let first = |port: u16| -> Result<SocketAddr> {
            (self.host.as_str(), port)
                .to_socket_addrs()
                .map_err(|error| Error::Io {
                    what: format!("resolving {}", self.host),
                    error,
                })?
                .next()
                .ok_or_else(|| Error::NodeList(format!("{}: no address found", self.host)))
        };
        Ok((first(self.port)?, first(self.neo_port)?))
    }

    fn host_for_display(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }

    /// `host:port` of the legacy port.
    pub fn legacy_display(&self) -> String {
        format!("{}:{}", self.host_for_display(), self.port)
    }

    /// `host:neoport (neo)`.
    pub fn neo_display(&self) -> String {
        format!("{}:{} (neo)", self.host_for_display(), self.neo_port)
    }
}

impl fmt::Display for NodeAddr {
    /// `host:port:neoport`, which [`NodeAddr::from_str`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            self.host_for_display(),
            self.port,
            self.neo_port
        )
    }
}

impl FromStr for NodeAddr {
    type Err = Error;

    /// `host:port` or `host:port:neoport`; an IPv6 host is written in brackets,
    /// `[::1]:10000`.
    fn from_str(text: &str) -> Result<NodeAddr> {
        let text = text.trim();
        let bad = |why: &str| Error::NodeList(format!("'{text}': {why}"));
        let (host, ports) = if let Some(rest) = text.strip_prefix('[') {
            let (host, after) = rest
                .split_once(']')
                .ok_or_else(|| bad("missing ']' after the IPv6 address"))?;
            let ports = after
                .strip_prefix(':')
                .ok_or_else(|| bad("expected ':' and a port after ']'"))?;
            (host, ports)
        } else {
            text.split_once(':')
                .ok_or_else(|| bad("expected host:port or host:port:neoport"))?
        };
        if host.is_empty() {
            return Err(bad("empty host"));
        }
        let port = |s: &str| {
            s.parse::<u16>()
                .map_err(|_| bad(&format!("'{s}' is not a port number")))
        };
        match ports.split_once(':') {
            None => NodeAddr::new(host, port(ports)?).map_err(|_| {
                bad("port 65535 leaves no room for the neo port; give host:port:neoport")
            }),
            Some((legacy, neo)) => Ok(NodeAddr::with_neo_port(host, port(legacy)?, port(neo)?)),
        }
    }
}

/// Parses a nodes file: one node per line ([`NodeAddr::from_str`]); blank lines and
/// `#` comments (whole lines or after the address) are skipped. Errors name the line
/// (from 1). An empty list is an error.
pub fn parse_nodes(text: &str) -> Result<Vec<NodeAddr>> {
    let mut nodes = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let node = line
            .parse::<NodeAddr>()
            .map_err(|e| Error::NodeList(format!("line {}: {e}", index + 1)))?;
        nodes.push(node);
    }
    if nodes.is_empty() {
        return Err(Error::NodeList("no node listed".into()));
    }
    Ok(nodes)
}

/// Reads and parses a nodes file (at most [`MAX_NODES_FILE_LEN`] bytes).
pub fn read_nodes_file(path: &Path) -> Result<Vec<NodeAddr>> {
    let text = crate::read_small_file(path, MAX_NODES_FILE_LEN, "nodes file")?;
    parse_nodes(&text).map_err(|e| match e {
        Error::NodeList(why) => Error::NodeList(format!("{}: {why}", path.display())),
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_original_format_and_our_extension() {
        let nodes = parse_nodes(
            "# the cluster\n127.0.0.1:10000\n\n  host-b:11000:12000  # explicit neo port\n[::1]:10010\n",
        )
        .expect("nodes");
        assert_eq!(
            nodes,
            [
                NodeAddr::with_neo_port("127.0.0.1", 10000, 10001),
                NodeAddr::with_neo_port("host-b", 11000, 12000),
                NodeAddr::with_neo_port("::1", 10010, 10011),
            ]
        );
        assert_eq!(nodes[2].to_string(), "[::1]:10010:10011");
        assert_eq!(nodes[2].legacy_display(), "[::1]:10010");
        assert_eq!(
            nodes[1].to_string().parse::<NodeAddr>().expect("again"),
            nodes[1]
        );
    }

    #[test]
    fn bad_lines_are_named() {
        let err = parse_nodes("a:1\nb:x\n").expect_err("bad port");
        assert!(err.to_string().contains("line 2"), "{err}");
        assert!(parse_nodes("# nothing\n\n").is_err());
        assert!("a".parse::<NodeAddr>().is_err());
        assert!(":1".parse::<NodeAddr>().is_err());
        assert!("a:65535".parse::<NodeAddr>().is_err());
        assert!("a:65535:1".parse::<NodeAddr>().is_ok());
        assert!("[::1:1".parse::<NodeAddr>().is_err());
        assert!("a:1:2:3".parse::<NodeAddr>().is_err());
    }

    #[test]
    fn resolves_ip_addresses() {
        let node: NodeAddr = "127.0.0.1:7".parse().expect("node");
        let (legacy, neo) = node.resolve().expect("resolve");
        assert_eq!(legacy, "127.0.0.1:7".parse().expect("addr"));
        assert_eq!(neo, "127.0.0.1:8".parse().expect("addr"));
    }
}
