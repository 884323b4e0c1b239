//! The node's configuration: YAML keys of `node-contract.md`, embedded defaults,
//! `-O key=value` overrides and validation.
//!
//! Lives on the main thread; each shard gets a shared read-only copy.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use dmq_storage::ChannelSizes;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_yaml::{Mapping, Value};

/// A configuration problem: the process exits with status 2 and prints this.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {source}")]
    Parse {
        path: String,
        source: serde_yaml::Error,
    },
    #[error("override '{0}': expected KEY=VALUE with a dotted key, e.g. server.port=11000")]
    OverrideSyntax(String),
    #[error("override '{key}': '{part}' is not a section")]
    OverrideNotSection { key: String, part: String },
    #[error("{key}: {reason}")]
    Invalid { key: &'static str, reason: String },
}

fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        reason: reason.into(),
    }
}

/// The whole configuration, section by section, as in the YAML file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    /// Channel-name prefix -> ring bytes per storage for matching channels.
    pub channel_size_by_id: BTreeMap<String, u64>,
    pub performance: PerformanceConfig,
    pub overflow: OverflowConfig,
    pub stats: StatsConfig,
    pub metrics: MetricsConfig,
    pub log: LogConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// IPv4 or IPv6 address for both TCP listeners.
    pub address: String,
    /// Legacy protocol port; 0 disables the listener.
    pub port: u16,
    /// Neo protocol port; 0 disables the listener.
    pub neoport: u16,
    pub data_dir: PathBuf,
    /// Bytes of memory ring per storage, record headers included.
    pub channel_size_limit: u64,
    pub unix_socket_path: PathBuf,
    /// Connections per listener; past it a new connection is accepted and closed.
    pub connection_limit: u32,
    pub backlog: u32,
    pub credentials: PathBuf,
    /// Executors, one per core; 0 = one per CPU the process may use.
    pub shards: u32,
    /// Bytes for all rings of all shards; 0 = no limit.
    pub memory_limit: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            address: "127.0.0.1".into(),
            port: 10000,
            neoport: 10001,
            data_dir: "data".into(),
            channel_size_limit: 64 * 1024 * 1024,
            unix_socket_path: "dmqnode.socket".into(),
            connection_limit: 5000,
            backlog: 2048,
            credentials: "etc/credentials".into(),
            shards: 0,
            memory_limit: 0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PerformanceConfig {
    /// Longest time Consume output may wait in a buffer before it is written.
    pub write_flush_ms: u32,
    /// TCP_NODELAY on accepted sockets.
    pub no_delay: bool,
    /// How long an idle executor spins before it parks (0 = park at once).
    pub spin_before_park_us: u64,
}

impl Default for PerformanceConfig {
    fn default() -> Self {
        Self {
            write_flush_ms: 250,
            no_delay: true,
            spin_before_park_us: 0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OverflowConfig {
    /// Milliseconds between `fdatasync`s of the overflow segment files
    /// (drained segments are deleted as soon as they are drained).
    pub write_index_ms: u32,
    /// Bytes per overflow segment file (a larger record gets a segment of
    /// its own). Disk space is reserved a segment at a time.
    pub segment_size: u64,
    /// Bytes of overflow segment files for the whole node, split evenly
    /// between shards; 0 = limited only by the disk.
    pub disk_limit: u64,
}

/// Smallest `overflow.segment_size`.
pub const MIN_SEGMENT_SIZE: u64 = 4096;

impl Default for OverflowConfig {
    fn default() -> Self {
        Self {
            write_index_ms: 60_000,
            segment_size: 64 * 1024 * 1024,
            disk_limit: 0,
        }
    }
}

/// `stats.console`: `auto` (on when stdout is a terminal), `true` or `false`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConsoleMode {
    #[default]
    Auto,
    On,
    Off,
}

impl Serialize for ConsoleMode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ConsoleMode::Auto => s.serialize_str("auto"),
            ConsoleMode::On => s.serialize_bool(true),
            ConsoleMode::Off => s.serialize_bool(false),
        }
    }
}

impl<'de> Deserialize<'de> for ConsoleMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Bool(true) => Ok(ConsoleMode::On),
            Value::Bool(false) => Ok(ConsoleMode::Off),
            Value::String(s) if s == "auto" => Ok(ConsoleMode::Auto),
            other => Err(serde::de::Error::custom(format!(
                "expected auto, true or false, found {other:?}"
            ))),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatsConfig {
    pub file_name: PathBuf,
    /// Seconds between two stats.log lines.
    pub interval: u32,
    pub console: ConsoleMode,
}

impl Default for StatsConfig {
    fn default() -> Self {
        Self {
            file_name: "log/stats.log".into(),
            interval: 30,
            console: ConsoleMode::Auto,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// `host:port` of the Prometheus endpoint; empty disables it.
    pub address: String,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            address: "127.0.0.1:10002".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// root.log; empty disables the file.
    pub file: PathBuf,
    /// trace, debug, info, warn or error.
    pub level: String,
    /// Also log to stderr.
    pub console: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            file: "log/root.log".into(),
            level: "info".into(),
            console: false,
        }
    }
}

/// Highest `server.shards` accepted; far above any core count we run on.
pub const MAX_SHARDS: u32 = 256;

impl Config {
    /// Reads `file` (or the embedded defaults when `None`), applies the overrides in
    /// order, then validates.
    pub fn load(file: Option<&Path>, overrides: &[String]) -> Result<Config, ConfigError> {
        let (mut tree, origin) = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                let tree: Value =
                    serde_yaml::from_str(&text).map_err(|source| ConfigError::Parse {
                        path: path.display().to_string(),
                        source,
                    })?;
                (tree, path.display().to_string())
            }
            None => (Value::Mapping(Mapping::new()), "defaults".to_owned()),
        };
        if tree.is_null() {
            tree = Value::Mapping(Mapping::new());
        }
        for item in overrides {
            apply_override(&mut tree, item)?;
        }
        let origin = if overrides.is_empty() {
            origin
        } else {
            format!("{origin} with overrides")
        };
        Config::from_tree(tree, &origin)
    }

    /// Deserializes and validates a YAML tree; `origin` names it in errors.
    pub fn from_tree(tree: Value, origin: &str) -> Result<Config, ConfigError> {
        let config: Config = serde_yaml::from_value(tree).map_err(|source| ConfigError::Parse {
            path: origin.to_owned(),
            source,
        })?;
        config.validate()?;
        Ok(config)
    }

    /// The effective configuration as YAML (for `--check-config`).
    pub fn to_yaml(&self) -> String {
        serde_yaml::to_string(self).unwrap_or_else(|e| format!("# cannot print config: {e}\n"))
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.server
            .address
            .parse::<IpAddr>()
            .map_err(|e| invalid("server.address", format!("'{}': {e}", self.server.address)))?;
        if self.server.channel_size_limit < 9 {
            return Err(invalid(
                "server.channel_size_limit",
                "must be at least 9 bytes (one 8-byte header and one byte)",
            ));
        }
        usize::try_from(self.server.channel_size_limit)
            .map_err(|_| invalid("server.channel_size_limit", "too large for this machine"))?;
        if self.server.connection_limit == 0 {
            return Err(invalid("server.connection_limit", "must be at least 1"));
        }
        if self.server.backlog == 0 {
            return Err(invalid("server.backlog", "must be at least 1"));
        }
        if self.server.shards > MAX_SHARDS {
            return Err(invalid(
                "server.shards",
                format!("at most {MAX_SHARDS} (0 = one per usable CPU)"),
            ));
        }
        if self.server.port != 0 && self.server.port == self.server.neoport {
            return Err(invalid(
                "server.neoport",
                "must differ from server.port (or be 0 to disable)",
            ));
        }
        self.channel_sizes()?;
        if self.performance.write_flush_ms == 0 {
            return Err(invalid("performance.write_flush_ms", "must be at least 1"));
        }
        if self.performance.spin_before_park_us > 1_000_000 {
            return Err(invalid(
                "performance.spin_before_park_us",
                "at most 1000000 (one second)",
            ));
        }
        if self.overflow.write_index_ms == 0 {
            return Err(invalid("overflow.write_index_ms", "must be at least 1"));
        }
        if self.overflow.segment_size < MIN_SEGMENT_SIZE {
            return Err(invalid(
                "overflow.segment_size",
                format!("at least {MIN_SEGMENT_SIZE} bytes"),
            ));
        }
        if self.overflow.disk_limit != 0 && self.overflow.disk_limit < self.overflow.segment_size {
            return Err(invalid(
                "overflow.disk_limit",
                "at least overflow.segment_size (or 0 for no limit)",
            ));
        }
        if self.stats.interval == 0 {
            return Err(invalid("stats.interval", "must be at least 1 second"));
        }
        if !self.metrics.address.is_empty() {
            self.metrics
                .address
                .parse::<std::net::SocketAddr>()
                .map_err(|e| {
                    invalid(
                        "metrics.address",
                        format!(
                            "'{}': {e} (expected host:port or empty)",
                            self.metrics.address
                        ),
                    )
                })?;
        }
        match self.log.level.as_str() {
            "trace" | "debug" | "info" | "warn" | "error" => {}
            other => {
                return Err(invalid(
                    "log.level",
                    format!("'{other}': expected trace, debug, info, warn or error"),
                ))
            }
        }
        Ok(())
    }

    /// The ring size per storage for every channel, from `channel_size_limit` and
    /// `channel_size_by_id`.
    pub fn channel_sizes(&self) -> Result<ChannelSizes, ConfigError> {
        let to_usize = |v: u64, key: &'static str| {
            usize::try_from(v).map_err(|_| invalid(key, "too large for this machine"))
        };
        let mut prefixes = Vec::with_capacity(self.channel_size_by_id.len());
        for (prefix, bytes) in &self.channel_size_by_id {
            if *bytes < 9 {
                return Err(invalid(
                    "channel_size_by_id",
                    format!("'{prefix}': at least 9 bytes"),
                ));
            }
            prefixes.push((prefix.clone(), to_usize(*bytes, "channel_size_by_id")?));
        }
        ChannelSizes::new(
            to_usize(self.server.channel_size_limit, "server.channel_size_limit")?,
            prefixes,
        )
        .map_err(|e| invalid("channel_size_by_id", e.to_string()))
    }

    /// The listen address of the legacy port, if enabled.
    pub fn legacy_addr(&self) -> Option<std::net::SocketAddr> {
        self.listen_addr(self.server.port)
    }

    /// The listen address of the neo port, if enabled.
    pub fn neo_addr(&self) -> Option<std::net::SocketAddr> {
        self.listen_addr(self.server.neoport)
    }

    fn listen_addr(&self, port: u16) -> Option<std::net::SocketAddr> {
        let ip: IpAddr = self.server.address.parse().ok()?;
        (port != 0).then_some(std::net::SocketAddr::new(ip, port))
    }
}

/// Applies `a.b.c=value` to the YAML tree. The value is read as a YAML scalar, so
/// `server.port=11000` is a number and `metrics.address=` an empty string.
fn apply_override(tree: &mut Value, item: &str) -> Result<(), ConfigError> {
    let (key, raw) = item
        .split_once('=')
        .ok_or_else(|| ConfigError::OverrideSyntax(item.to_owned()))?;
    let key = key.trim();
    if key.is_empty() || key.split('.').any(str::is_empty) {
        return Err(ConfigError::OverrideSyntax(item.to_owned()));
    }
    let raw = raw.trim();
    let value = if raw.is_empty() {
        Value::String(String::new())
    } else {
        serde_yaml::from_str::<Value>(raw).unwrap_or_else(|_| Value::String(raw.to_owned()))
    };
    let parts: Vec<&str> = key.split('.').collect();
    let mut node = tree;
    for part in &parts[..parts.len() - 1] {
        let map = node
            .as_mapping_mut()
            .ok_or_else(|| ConfigError::OverrideNotSection {
                key: key.to_owned(),
                part: (*part).to_owned(),
            })?;
        node = map
            .entry(Value::String((*part).to_owned()))
            .or_insert_with(|| Value::Mapping(Mapping::new()));
    }
    let map = node
        .as_mapping_mut()
        .ok_or_else(|| ConfigError::OverrideNotSection {
            key: key.to_owned(),
            part: parts[parts.len() - 2].to_owned(),
        })?;
    map.insert(Value::String(parts[parts.len() - 1].to_owned()), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_serve_on_loopback() {
        let config = Config::load(None, &[]).expect("defaults");
        assert_eq!(config.server.port, 10000);
        assert_eq!(config.server.neoport, 10001);
        assert_eq!(config.metrics.address, "127.0.0.1:10002");
        assert_eq!(
            config.legacy_addr(),
            Some("127.0.0.1:10000".parse().expect("addr"))
        );
    }

    #[test]
    fn overrides_set_typed_values() {
        let config = Config::load(
            None,
            &[
                "server.port=11000".into(),
                "metrics.address=".into(),
                "channel_size_by_id.admedia=4000".into(),
                "stats.console=false".into(),
            ],
        )
        .expect("overrides");
        assert_eq!(config.server.port, 11000);
        assert_eq!(config.metrics.address, "");
        assert_eq!(config.channel_size_by_id.get("admedia"), Some(&4000));
        assert_eq!(config.stats.console, ConsoleMode::Off);
    }

    #[test]
    fn unknown_key_is_named() {
        let err = Config::load(None, &["server.prot=1".into()]).expect_err("unknown key");
        assert!(err.to_string().contains("prot"), "{err}");
        let err = Config::load(None, &["nosuch.key=1".into()]).expect_err("unknown section");
        assert!(err.to_string().contains("nosuch"), "{err}");
    }

    #[test]
    fn bad_values_name_their_key() {
        for (item, key) in [
            ("server.address=not-an-ip", "server.address"),
            ("server.channel_size_limit=0", "server.channel_size_limit"),
            ("performance.write_flush_ms=0", "performance.write_flush_ms"),
            ("log.level=loud", "log.level"),
            ("metrics.address=nonsense", "metrics.address"),
        ] {
            let err = Config::load(None, &[item.into()]).expect_err(item);
            assert!(err.to_string().contains(key), "{item}: {err}");
        }
    }

    #[test]
    fn overlapping_prefixes_are_rejected() {
        let err = Config::load(
            None,
            &[
                "channel_size_by_id.ad=1000".into(),
                "channel_size_by_id.admedia=2000".into(),
            ],
        )
        .expect_err("overlap");
        assert!(err.to_string().contains("channel_size_by_id"), "{err}");
    }

    #[test]
    fn printed_config_loads_back_identically() {
        let config = Config::load(None, &["server.shards=2".into()]).expect("config");
        let yaml = config.to_yaml();
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.yaml");
        std::fs::write(&path, &yaml).expect("write");
        let again = Config::load(Some(&path), &[]).expect("reload");
        assert_eq!(again.to_yaml(), yaml);
    }

    #[test]
    fn shipped_config_files_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config");
        for name in ["dmqnode.yaml", "example.yaml"] {
            let path = dir.join(name);
            Config::load(Some(&path), &[]).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        // The commented defaults file says exactly what the embedded defaults are.
        let shipped = Config::load(Some(&dir.join("dmqnode.yaml")), &[]).expect("defaults file");
        let embedded = Config::load(None, &[]).expect("embedded defaults");
        assert_eq!(shipped.to_yaml(), embedded.to_yaml());
    }
}
