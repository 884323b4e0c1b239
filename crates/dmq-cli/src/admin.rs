//! `dmq channels` and `dmq stats`: a node's admin UNIX socket (send `channels\n` or
//! `stats\n`, print the reply up to its empty line), or its Prometheus endpoint
//! (`GET /metrics` over a minimal HTTP/1.0 client, summarising `dmq_records` and
//! `dmq_bytes`).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;

/// Longest wait for the node's answer.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Largest reply read from the admin socket or the metrics endpoint.
const MAX_REPLY_BYTES: u64 = 64 * 1024 * 1024;

/// Where the figures come from.
#[derive(Debug, Args)]
pub struct Source {
    /// The node's admin UNIX socket (`server.unix_socket_path`).
    #[arg(long, value_name = "PATH", default_value = "dmqnode.socket")]
    socket: PathBuf,
    /// Read the node's Prometheus endpoint instead, e.g. http://127.0.0.1:10002/metrics.
    #[arg(long, value_name = "URL")]
    metrics: Option<String>,
}

/// Sends one admin command and returns the reply lines before the empty line.
fn admin(path: &PathBuf, command: &str) -> Result<Vec<String>> {
    let stream =
        UnixStream::connect(path).with_context(|| format!("admin socket {}", path.display()))?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    (&stream)
        .write_all(format!("{command}\n").as_bytes())
        .with_context(|| format!("admin socket {}", path.display()))?;
    let mut reader = BufReader::new((&stream).take(MAX_REPLY_BYTES));
    let mut lines = Vec::new();
    // Bounded: the reply is at most MAX_REPLY_BYTES and every read has a timeout.
    loop {
        let mut line = String::new();
        let n = reader
            .read_line(&mut line)
            .with_context(|| format!("admin socket {}: reading the reply", path.display()))?;
        if n == 0 {
            bail!("admin socket {}: the reply ended early", path.display());
        }
        let line = line.trim_end_matches(['\n', '\r']).to_owned();
        if lines.is_empty() && (line.starts_with("Error:") || line == "Command not found") {
            bail!("admin socket {}: {line}", path.display());
        }
        if line.is_empty() {
            return Ok(lines);
        }
        lines.push(line);
    }
}

/// `dmq channels`.
pub fn channels(source: &Source) -> Result<()> {
    let lines = match &source.metrics {
        None => admin(&source.socket, "channels")?,
        Some(url) => {
            let storages = storages(&get_metrics(url)?);
            storages
                .iter()
                .map(|(name, f)| format!("{name} {} {} {} {}", f[0], f[1], f[2], f[3]))
                .collect()
        }
    };
    for line in lines {
        println!("{line}");
    }
    Ok(())
}

/// `dmq stats`.
pub fn stats(source: &Source) -> Result<()> {
    let lines = match &source.metrics {
        None => admin(&source.socket, "stats")?,
        Some(url) => {
            let storages = storages(&get_metrics(url)?);
            let channels: std::collections::BTreeSet<&str> = storages
                .keys()
                .map(|name| name.rsplit('@').next().unwrap_or(name))
                .collect();
            let sum = |i: usize| storages.values().map(|f| f[i]).sum::<u64>();
            vec![
                format!("channels: {}", channels.len()),
                format!("storages: {}", storages.len()),
                format!("records_memory: {}", sum(0)),
                format!("bytes_memory: {}", sum(1)),
                format!("records_overflow: {}", sum(2)),
                format!("bytes_overflow: {}", sum(3)),
            ]
        }
    };
    for line in lines {
        println!("{line}");
    }
    Ok(())
}

/// Fetches a metrics URL (`http://host:port[/path]`, default path `/metrics`) and
/// returns the body.
fn get_metrics(url: &str) -> Result<String> {
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("metrics URL '{url}': only http:// is supported"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/metrics"),
    };
    let addr = authority
        .to_socket_addrs()
        .with_context(|| format!("metrics URL '{url}': host:port"))?
        .next()
        .with_context(|| format!("metrics URL '{url}': no address"))?;
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT)
        .with_context(|| format!("metrics endpoint {authority}"))?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )?;
    let mut reply = Vec::new();
    (&mut stream)
        .take(MAX_REPLY_BYTES)
        .read_to_end(&mut reply)
        .with_context(|| format!("metrics endpoint {authority}: reading the reply"))?;
    let reply = String::from_utf8_lossy(&reply);
    let (head, body) = reply
        .split_once("\r\n\r\n")
        .with_context(|| format!("metrics endpoint {authority}: not an HTTP reply"))?;
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        bail!("metrics endpoint {authority}: {status}");
    }
    Ok(body.to_owned())
}

/// Per storage (`channel`, or `subscriber@channel`): records and bytes in memory
/// and in the overflow, from the `dmq_records` and `dmq_bytes` samples.
fn storages(exposition: &str) -> BTreeMap<String, [u64; 4]> {
    let mut storages: BTreeMap<String, [u64; 4]> = BTreeMap::new();
    for line in exposition.lines() {
        let (family, rest) = match line.split_once('{') {
            Some(split) => split,
            None => continue,
        };
        let offset = match family {
            "dmq_records" => 0,
            "dmq_bytes" => 1,
            _ => continue,
        };
        let Some((labels, value)) = rest.split_once('}') else {
            continue;
        };
        let labels = parse_labels(labels);
        let label = |name: &str| labels.get(name).map(String::as_str).unwrap_or_default();
        let index = match label("location") {
            "memory" => offset,
            "overflow" => offset + 2,
            _ => continue,
        };
        let Ok(value) = value.trim().parse::<f64>() else {
            continue;
        };
        let name = match label("subscriber") {
            "" => label("channel").to_owned(),
            subscriber => format!("{subscriber}@{}", label("channel")),
        };
        // Gauges of counts: whole, non-negative numbers.
        storages.entry(name).or_default()[index] += value.max(0.0) as u64;
    }
    storages
}

/// `a="x",b="y"` into a map (label values are unescaped for `\"` and `\\`).
fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while let Some((name, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(if escaped == 'n' { '\n' } else { escaped });
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        labels.insert(name.trim_start_matches(',').trim().to_owned(), value);
        rest = &after[end..];
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summarises_records_and_bytes() {
        let text = "\
# HELP dmq_records Records stored.
# TYPE dmq_records gauge
dmq_records{channel=\"a\",subscriber=\"\",location=\"memory\"} 3
dmq_records{channel=\"a\",subscriber=\"\",location=\"overflow\"} 1
dmq_bytes{channel=\"a\",subscriber=\"\",location=\"memory\"} 51
dmq_bytes{channel=\"a\",subscriber=\"\",location=\"overflow\"} 9
dmq_records{channel=\"b\",subscriber=\"s\\\"1\",location=\"memory\"} 2
dmq_pushed_records_total{channel=\"a\"} 99
";
        let storages = storages(text);
        assert_eq!(storages["a"], [3, 51, 1, 9]);
        assert_eq!(storages["s\"1@b"], [2, 0, 0, 0]);
        assert_eq!(storages.len(), 2);
    }
}
