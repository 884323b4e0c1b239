//! `dmqnode migrate-config config.ini`: translates the original node's
//! `config.ini` (spec section 6.2) into this node's YAML, and says which keys
//! have no effect here.
//!
//! The ini dialect is ocean's: `[Section]` headers, `key = value` lines,
//! comments starting with `;` or `#`. Section and key names are matched as
//! written (case-sensitively), as the original reads them.

use serde_yaml::{Mapping, Value};

use crate::config::Config;

/// Why a file could not be translated.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("line {line}: {reason}")]
    Syntax { line: usize, reason: String },
    #[error("[{section}] {key} = {value}: {reason}")]
    Value {
        section: String,
        key: String,
        value: String,
        reason: String,
    },
    #[error("the translated configuration is not valid: {0}")]
    Invalid(#[from] crate::config::ConfigError),
}

/// The translation: YAML text, and one warning per key that has no effect.
#[derive(Debug)]
pub struct Migrated {
    pub config: Config,
    pub yaml: String,
    pub warnings: Vec<String>,
}

/// Sections in file order, keys in file order within them.
type Ini = Vec<(String, Vec<(usize, String, String)>)>;

fn parse_ini(text: &str) -> Result<Ini, MigrateError> {
    let mut sections: Ini = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with(';') || trimmed.starts_with('#') {
            continue;
        }
        if let Some(name) = trimmed.strip_prefix('[') {
            let name = name.strip_suffix(']').ok_or_else(|| MigrateError::Syntax {
                line,
                reason: format!("section header without ']': {trimmed}"),
            })?;
            sections.push((name.trim().to_owned(), Vec::new()));
            continue;
        }
        let (key, value) = trimmed
            .split_once('=')
            .ok_or_else(|| MigrateError::Syntax {
                line,
                reason: format!("expected 'key = value': {trimmed}"),
            })?;
        let Some((_, keys)) = sections.last_mut() else {
            return Err(MigrateError::Syntax {
                line,
                reason: "key before any [Section]".to_owned(),
            });
        };
        keys.push((line, key.trim().to_owned(), value.trim().to_owned()));
    }
    Ok(sections)
}

/// A YAML scalar for an ini value: numbers and booleans typed, the rest text.
fn scalar(value: &str) -> Value {
    if let Ok(n) = value.parse::<u64>() {
        return Value::Number(n.into());
    }
    match value {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => Value::String(value.to_owned()),
    }
}

fn set(tree: &mut Mapping, section: &str, key: &str, value: Value) {
    let entry = tree
        .entry(Value::String(section.to_owned()))
        .or_insert_with(|| Value::Mapping(Mapping::new()));
    if let Value::Mapping(map) = entry {
        map.insert(Value::String(key.to_owned()), value);
    }
}

/// The ocean log level names mapped to ours.
fn log_level(value: &str) -> Option<&'static str> {
    match value.to_ascii_lowercase().as_str() {
        "trace" | "all" => Some("trace"),
        "debug" | "verbose" => Some("debug"),
        "info" => Some("info"),
        "warn" | "warning" => Some("warn"),
        "error" | "fatal" | "none" | "off" => Some("error"),
        _ => None,
    }
}

/// Translates the text of a `config.ini`.
pub fn migrate(text: &str) -> Result<Migrated, MigrateError> {
    let ini = parse_ini(text)?;
    let mut tree = Mapping::new();
    let mut warnings = Vec::new();
    let mut legacy_port = None;
    let mut address = None;
    for (section, keys) in &ini {
        for (line, key, value) in keys {
            let bad = |reason: &str| MigrateError::Value {
                section: section.clone(),
                key: key.clone(),
                value: value.clone(),
                reason: format!("{reason} (line {line})"),
            };
            if section == "Server" && key == "port" {
                legacy_port = Some(value.parse::<u16>().map_err(|_| bad("not a port number"))?);
            }
            if section == "Server" && key == "address" {
                address = Some(value.clone());
            }
            if let Some(why) = translate(&mut tree, section, key, value, &bad)? {
                warnings.push(format!("[{section}] {key}: {why}"));
            }
        }
    }
    if let Some(port) = legacy_port {
        set_metrics_address(&mut tree, port, address.as_deref());
    }
    let config = Config::from_tree(Value::Mapping(tree), "migrated config.ini")?;
    let yaml = format!(
        "# Translated from the original node's config.ini by `dmqnode migrate-config`.\n\
         # Keys not set there have this node's defaults (see config/dmqnode.yaml).\n{}",
        config.to_yaml()
    );
    Ok(Migrated {
        config,
        yaml,
        warnings,
    })
}

/// Translates one key into `tree`, or says why it is not translated. One
/// arm per key of the original, so it reads as the translation table.
fn translate(
    tree: &mut Mapping,
    section: &str,
    key: &str,
    value: &str,
    bad: &dyn Fn(&str) -> MigrateError,
) -> Result<Option<&'static str>, MigrateError> {
    let warn = |why: &'static str| Ok(Some(why));
    match (section, key) {
        (
            "Server",
            "address" | "port" | "neoport" | "data_dir" | "channel_size_limit"
            | "unix_socket_path" | "connection_limit" | "backlog",
        ) => {
            set(tree, "server", key, scalar(value));
            Ok(None)
        }
        ("Server", "cpu") => warn("no effect: every executor is pinned to its own CPU (server.shards)"),
        ("Server", "size_limit") => warn("no effect (it had none in the original either); see server.memory_limit"),
        ("ChannelSizeById", prefix) => {
            let bytes = value.parse::<u64>().map_err(|_| bad("not a number of bytes"))?;
            set(tree, "channel_size_by_id", prefix, Value::Number(bytes.into()));
            Ok(None)
        }
        ("Performance", "write_flush_ms") => {
            set(tree, "performance", key, scalar(value));
            Ok(None)
        }
        ("Performance", "no_delay") => {
            // The original ignored it (neo always had TCP_NODELAY); here it
            // sets TCP_NODELAY on legacy sockets, which is better on.
            warn("ignored by the original; here performance.no_delay (legacy sockets) stays on")
        }
        ("Overflow", "write_index_ms") => {
            set(tree, "overflow", key, scalar(value));
            Ok(None)
        }
        ("Stats", "console_stats_enabled") => warn("unused by the original; the console view is stats.console (auto = when stdout is a terminal)"),
        ("STATS", "file_name" | "interval") => {
            set(tree, "stats", key, scalar(value));
            Ok(None)
        }
        ("STATS", "socket_path" | "hostname" | "app_name" | "app_instance" | "default_type") => {
            warn("no effect: collectd is not supported; scrape /metrics instead")
        }
        ("PidLock", "path") => warn("no effect: no PID lock file; run one instance per directory (systemd: dmqnode@N)"),
        ("LOG.Root", "level") => {
            let level = log_level(value).ok_or_else(|| bad("unknown log level"))?;
            set(tree, "log", "level", Value::String(level.to_owned()));
            Ok(None)
        }
        ("LOG.Root", "file") => {
            set(tree, "log", key, Value::String(value.to_owned()));
            Ok(None)
        }
        ("LOG.Root", "console") => {
            set(tree, "log", key, scalar(value));
            Ok(None)
        }
        ("LOG.Root", "propagate" | "additive" | "console_layout" | "file_layout" | "syslog") => {
            warn("no effect: one log with a fixed layout")
        }
        (s, _) if s.starts_with("LOG.") => warn("no effect: only [LOG.Root] is translated (use RUST_LOG for per-module levels)"),
        ("UNIX_SOCKET", _) => warn("no effect: ocean's application socket is not needed; the admin socket is server.unix_socket_path"),
        _ => warn("unknown to this node; not translated"),
    }
}

/// Metrics go on the port after neo, so that several instances on one host
/// (10000, 11000, ...) do not collide on the default 10002.
fn set_metrics_address(tree: &mut Mapping, legacy_port: u16, address: Option<&str>) {
    let host = match address {
        Some(a) if !a.is_empty() => a.to_owned(),
        _ => "127.0.0.1".to_owned(),
    };
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    if let Some(metrics_port) = legacy_port.checked_add(2) {
        set(
            tree,
            "metrics",
            "address",
            Value::String(format!("{host}:{metrics_port}")),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/fixtures/original-config")
            .join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn example_config_translates_with_its_values() {
        let m = migrate(&fixture("example-config.ini")).expect("migrate");
        let c = &m.config;
        assert_eq!(c.server.address, "0.0.0.0");
        assert_eq!((c.server.port, c.server.neoport), (10000, 10001));
        assert_eq!(c.server.channel_size_limit, 2_000_000_000);
        assert_eq!(c.server.unix_socket_path.to_str(), Some("dmqnode.socket"));
        assert_eq!(c.channel_size_by_id.get("admedia"), Some(&400_000_000));
        assert_eq!(c.performance.write_flush_ms, 250);
        assert_eq!(c.overflow.write_index_ms, 60_000);
        assert_eq!(c.log.level, "trace");
        assert_eq!(c.log.file.to_str(), Some("log/root.log"));
        assert!(!c.log.console);
        assert_eq!(c.metrics.address, "0.0.0.0:10002");
        for key in [
            "[Server] cpu",
            "[PidLock] path",
            "[Performance] no_delay",
            "[LOG.Root] propagate",
        ] {
            assert!(
                m.warnings.iter().any(|w| w.starts_with(key)),
                "{key}: {:?}",
                m.warnings
            );
        }
    }

    #[test]
    fn test_configs_translate() {
        let m = migrate(&fixture("dmqtest-config.ini")).expect("dmqtest");
        assert_eq!(m.config.server.channel_size_limit, 10_000_000);
        assert_eq!(m.config.performance.write_flush_ms, 1);
        let m = migrate(&fixture("loadfiles-config.ini")).expect("loadfiles");
        assert_eq!(
            (m.config.server.port, m.config.server.neoport),
            (11000, 11001)
        );
        assert_eq!(m.config.server.channel_size_limit, 100_000);
        assert_eq!(m.config.metrics.address, "127.0.0.1:11002");
        assert_eq!(m.config.log.level, "info");
        assert!(m.config.log.console);
    }

    #[test]
    fn the_yaml_loads_back_to_the_same_config() {
        let m = migrate(&fixture("example-config.ini")).expect("migrate");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, &m.yaml).expect("write");
        let again = Config::load(Some(&path), &[]).expect("load");
        assert_eq!(again.to_yaml(), m.config.to_yaml());
    }

    #[test]
    fn errors_name_the_line_or_key() {
        let err = migrate("port = 1\n").expect_err("no section");
        assert!(err.to_string().contains("line 1"), "{err}");
        let err = migrate("[Server]\nport = lots\n").expect_err("bad port");
        assert!(err.to_string().contains("[Server] port"), "{err}");
        let err = migrate("[Server]\nchannel_size_limit = 0\n").expect_err("invalid");
        assert!(err.to_string().contains("channel_size_limit"), "{err}");
    }
}
