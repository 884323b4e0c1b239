//! The node's Prometheus endpoint as a scraper sees it: a tiny HTTP client
//! (one request per connection, as the endpoint answers) and a strict parser
//! of the Prometheus text format 0.0.4.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use crate::IO_TIMEOUT;

/// One HTTP response, read until the server closed the connection.
#[derive(Debug)]
pub struct HttpReply {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpReply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `request` as is on a new connection and reads the whole response
/// (the endpoint closes each connection after one answer).
pub fn http_raw(addr: SocketAddr, request: &[u8]) -> HttpReply {
    let mut stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
        .unwrap_or_else(|e| panic!("connect to the metrics endpoint {addr}: {e}"));
    stream.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    stream.set_write_timeout(Some(IO_TIMEOUT)).expect("timeout");
    stream
        .write_all(request)
        .unwrap_or_else(|e| panic!("send an HTTP request to {addr}: {e}"));
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .unwrap_or_else(|e| panic!("read the HTTP response from {addr}: {e}"));
    parse_http(&raw)
}

/// `GET path` with HTTP/1.1.
pub fn http_get(addr: SocketAddr, path: &str) -> HttpReply {
    http_raw(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

fn parse_http(raw: &[u8]) -> HttpReply {
    let text = String::from_utf8(raw.to_vec())
        .unwrap_or_else(|e| panic!("HTTP response is not UTF-8: {e}: {raw:?}"));
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("HTTP response without an end of head: {text:?}"));
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    assert!(
        version == "HTTP/1.1" || version == "HTTP/1.0",
        "bad HTTP status line {status_line:?}"
    );
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad HTTP status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .map(|line| {
            let (name, value) = line
                .split_once(':')
                .unwrap_or_else(|| panic!("bad HTTP header line {line:?}"));
            (name.trim().to_ascii_lowercase(), value.trim().to_owned())
        })
        .collect();
    let reply = HttpReply {
        status,
        headers,
        body: body.to_owned(),
    };
    if let Some(len) = reply.header("content-length") {
        let len: usize = len
            .parse()
            .unwrap_or_else(|e| panic!("bad Content-Length {len:?}: {e}"));
        assert_eq!(
            len,
            reply.body.len(),
            "Content-Length does not match the body: {:?}",
            reply.body
        );
    }
    reply
}

/// `GET /metrics`: asserts 200 and returns the strictly parsed exposition
/// (panics with the text if it does not parse).
pub fn scrape(addr: SocketAddr) -> Exposition {
    let reply = http_get(addr, "/metrics");
    assert_eq!(reply.status, 200, "GET /metrics: {reply:?}");
    Exposition::parse(&reply.body)
        .unwrap_or_else(|e| panic!("the exposition does not parse: {e}\n{}", reply.body))
}

// ---------------------------------------------------------------------------
// Prometheus text format 0.0.4, strictly
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The sample's own name (`x_bucket`, `x_sum`, `x_count` for histograms).
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

#[derive(Debug, Clone)]
pub struct Family {
    pub name: String,
    /// `counter`, `gauge`, `histogram`, `summary` or `untyped`.
    pub kind: String,
    pub help: Option<String>,
    pub samples: Vec<Sample>,
}

impl Family {
    /// The label names used by the family's samples (`le` and `quantile` left out).
    pub fn label_names(&self) -> BTreeSet<String> {
        self.samples
            .iter()
            .flat_map(|s| s.labels.keys())
            .filter(|k| *k != "le" && *k != "quantile")
            .cloned()
            .collect()
    }
}

/// A whole parsed exposition.
#[derive(Debug, Clone)]
pub struct Exposition {
    pub families: Vec<Family>,
    pub text: String,
}

fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with("__")
}

/// A sample value as Go's ParseFloat takes it in the text format.
fn parse_value(token: &str) -> Result<f64, String> {
    match token {
        "NaN" => return Ok(f64::NAN),
        "+Inf" | "Inf" => return Ok(f64::INFINITY),
        "-Inf" => return Ok(f64::NEG_INFINITY),
        _ => {}
    }
    if token.is_empty()
        || !token
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
    {
        return Err(format!("bad sample value {token:?}"));
    }
    token
        .parse::<f64>()
        .map_err(|e| format!("bad sample value {token:?}: {e}"))
}

/// Splits off the first blank-separated token.
fn split_token(s: &str) -> (&str, &str) {
    let s = s.trim_start_matches([' ', '\t']);
    match s.find([' ', '\t']) {
        Some(at) => (&s[..at], &s[at..]),
        None => (s, ""),
    }
}

/// Parses `{name="value",...}` at the start of `s`; returns the labels and the rest.
fn parse_labels(s: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    let mut rest = s
        .strip_prefix('{')
        .ok_or_else(|| format!("expected '{{' in {s:?}"))?;
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        let eq = rest
            .find('=')
            .ok_or_else(|| format!("label without '=' in {s:?}"))?;
        let name = &rest[..eq];
        if !is_label_name(name) {
            return Err(format!("bad label name {name:?} in {s:?}"));
        }
        rest = rest[eq + 1..]
            .strip_prefix('"')
            .ok_or_else(|| format!("label value of {name} is not quoted in {s:?}"))?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err(format!("unterminated label value in {s:?}")),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => return Err(format!("bad escape {other:?} in a label value of {s:?}")),
                },
                Some((_, c)) => value.push(c),
            }
        };
        if labels.insert(name.to_owned(), value).is_some() {
            return Err(format!("label {name} given twice in {s:?}"));
        }
        rest = &rest[end + 1..];
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        } else if !rest.starts_with('}') {
            return Err(format!("expected ',' or '}}' after label {name} in {s:?}"));
        }
    }
}

fn check_help_text(doc: &str) -> Result<(), String> {
    let mut chars = doc.chars();
    while let Some(c) = chars.next() {
        if c == '\\' && !matches!(chars.next(), Some('\\') | Some('n')) {
            return Err(format!("bad escape in HELP text {doc:?}"));
        }
    }
    Ok(())
}

impl Exposition {
    /// Parses `text` strictly: every line is a HELP, TYPE, comment or sample
    /// line of the 0.0.4 text format; TYPE comes once and before the family's
    /// samples; a family's samples are contiguous; no series appears twice;
    /// counters are not negative; every histogram has increasing `le` bounds,
    /// non-decreasing cumulative counts, a `+Inf` bucket equal to its `_count`,
    /// and a `_sum`.
    pub fn parse(text: &str) -> Result<Exposition, String> {
        if !text.is_empty() && !text.ends_with('\n') {
            return Err("the text does not end with a newline".into());
        }
        let mut families: Vec<Family> = Vec::new();
        let mut by_name: HashMap<String, usize> = HashMap::new();
        let mut helps: HashMap<String, String> = HashMap::new();
        let mut series: HashSet<(String, BTreeMap<String, String>)> = HashSet::new();
        let mut current: Option<usize> = None;
        for (n, line) in text.split_terminator('\n').enumerate() {
            let at = |e: String| format!("line {}: {e}: {line:?}", n + 1);
            if line.contains('\r') {
                return Err(at("carriage return".into()));
            }
            if line.trim().is_empty() {
                continue;
            }
            if let Some(comment) = line.strip_prefix('#') {
                let (keyword, rest) = split_token(comment);
                if keyword != "HELP" && keyword != "TYPE" {
                    continue;
                }
                let (name, rest) = split_token(rest);
                if !is_metric_name(name) {
                    return Err(at(format!("bad metric name {name:?}")));
                }
                let rest = rest.strip_prefix([' ', '\t']).unwrap_or(rest);
                if keyword == "HELP" {
                    check_help_text(rest).map_err(at)?;
                    if helps.insert(name.to_owned(), rest.to_owned()).is_some() {
                        return Err(at(format!("second HELP for {name}")));
                    }
                    continue;
                }
                let kind = rest.trim_end_matches([' ', '\t']);
                if !matches!(
                    kind,
                    "counter" | "gauge" | "histogram" | "summary" | "untyped"
                ) {
                    return Err(at(format!("bad type {kind:?}")));
                }
                let mut taken = vec![name.to_owned()];
                if kind == "histogram" || kind == "summary" {
                    taken.push(format!("{name}_sum"));
                    taken.push(format!("{name}_count"));
                }
                if kind == "histogram" {
                    taken.push(format!("{name}_bucket"));
                }
                if let Some(clash) = taken.iter().find(|t| by_name.contains_key(*t)) {
                    return Err(at(format!(
                        "TYPE for {name} after a TYPE or samples of {clash}"
                    )));
                }
                by_name.insert(name.to_owned(), families.len());
                families.push(Family {
                    name: name.to_owned(),
                    kind: kind.to_owned(),
                    help: None,
                    samples: Vec::new(),
                });
                continue;
            }
            // A sample line.
            let name_end = line.find(['{', ' ', '\t']).unwrap_or(line.len());
            let name = &line[..name_end];
            if !is_metric_name(name) {
                return Err(at(format!("bad metric name {name:?}")));
            }
            let (labels, rest) = if line[name_end..].starts_with('{') {
                parse_labels(&line[name_end..]).map_err(at)?
            } else {
                (BTreeMap::new(), &line[name_end..])
            };
            if !rest.starts_with([' ', '\t']) {
                return Err(at("no blank before the value".into()));
            }
            let (value, rest) = split_token(rest);
            let value = parse_value(value).map_err(at)?;
            let (timestamp, rest) = split_token(rest);
            if !timestamp.is_empty() && timestamp.parse::<i64>().is_err() {
                return Err(at(format!("bad timestamp {timestamp:?}")));
            }
            if !rest.trim().is_empty() {
                return Err(at(format!("trailing text {rest:?}")));
            }
            // The family the sample belongs to.
            let family = match by_name.get(name) {
                Some(&i) => {
                    let kind = families[i].kind.as_str();
                    if kind == "histogram" {
                        return Err(at(format!("histogram {name} sample without a suffix")));
                    }
                    i
                }
                None => {
                    let parent = ["_bucket", "_sum", "_count"].iter().find_map(|suffix| {
                        let base = name.strip_suffix(suffix)?;
                        let &i = by_name.get(base)?;
                        let kind = families[i].kind.as_str();
                        let fits =
                            kind == "histogram" || (kind == "summary" && *suffix != "_bucket");
                        fits.then_some(i)
                    });
                    match parent {
                        Some(i) => i,
                        None => {
                            by_name.insert(name.to_owned(), families.len());
                            families.push(Family {
                                name: name.to_owned(),
                                kind: "untyped".into(),
                                help: None,
                                samples: Vec::new(),
                            });
                            families.len() - 1
                        }
                    }
                }
            };
            if current != Some(family) {
                if !families[family].samples.is_empty() {
                    return Err(at(format!(
                        "samples of {} are not contiguous",
                        families[family].name
                    )));
                }
                current = Some(family);
            }
            let kind = families[family].kind.clone();
            let is_bucket = kind == "histogram" && name.ends_with("_bucket");
            if is_bucket != labels.contains_key("le") {
                return Err(at("`le` belongs to histogram buckets only".into()));
            }
            if kind == "counter" && (value.is_nan() || value < 0.0) {
                return Err(at(format!("counter value {value}")));
            }
            if !series.insert((name.to_owned(), labels.clone())) {
                return Err(at("duplicate series".into()));
            }
            families[family].samples.push(Sample {
                name: name.to_owned(),
                labels,
                value,
            });
        }
        for (name, help) in helps {
            match by_name.get(&name) {
                Some(&i) if families[i].name == name => families[i].help = Some(help),
                // HELP without samples or TYPE: allowed, nothing to attach to.
                _ => {}
            }
        }
        for family in families.iter().filter(|f| f.kind == "histogram") {
            check_histogram(family)?;
        }
        Ok(Exposition {
            families,
            text: text.to_owned(),
        })
    }

    pub fn family(&self, name: &str) -> Option<&Family> {
        self.families.iter().find(|f| f.name == name)
    }

    /// Samples named `name` (a family name, or `x_bucket`, `x_sum`, `x_count`).
    pub fn samples(&self, name: &str) -> Vec<&Sample> {
        self.families
            .iter()
            .flat_map(|f| &f.samples)
            .filter(|s| s.name == name)
            .collect()
    }

    /// The value of the series `name` with exactly these labels.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let wanted: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.samples(name)
            .into_iter()
            .find(|s| s.labels == wanted)
            .map(|s| s.value)
    }

    /// As [`Exposition::get`], panicking with the family's series if absent.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels).unwrap_or_else(|| {
            let have: Vec<String> = self
                .samples(name)
                .iter()
                .map(|s| format!("{:?} {}", s.labels, s.value))
                .collect();
            panic!(
                "no series {name}{labels:?}; the node has:\n{}",
                have.join("\n")
            )
        })
    }

    /// Every series of `name` whose labels include all of `labels`.
    pub fn matching(&self, name: &str, labels: &[(&str, &str)]) -> Vec<&Sample> {
        self.samples(name)
            .into_iter()
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect()
    }

    /// The distinct values of `label` over the series of `name`.
    pub fn label_values(&self, name: &str, label: &str) -> BTreeSet<String> {
        self.samples(name)
            .iter()
            .filter_map(|s| s.labels.get(label).cloned())
            .collect()
    }
}

/// A label set.
type Labels = BTreeMap<String, String>;

fn check_histogram(family: &Family) -> Result<(), String> {
    let name = &family.name;
    let without_le = |s: &Sample| {
        let mut l = s.labels.clone();
        l.remove("le");
        l
    };
    // Buckets per label set, in text order.
    let mut groups: Vec<(Labels, Vec<(f64, f64)>)> = Vec::new();
    for s in family
        .samples
        .iter()
        .filter(|s| s.name == format!("{name}_bucket"))
    {
        let key = without_le(s);
        let le = parse_value(&s.labels["le"]).map_err(|e| format!("{name}: le: {e}"))?;
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, buckets)) => buckets.push((le, s.value)),
            None => groups.push((key, vec![(le, s.value)])),
        }
    }
    let find = |suffix: &str, key: &BTreeMap<String, String>| {
        family
            .samples
            .iter()
            .find(|s| s.name == format!("{name}{suffix}") && s.labels == *key)
            .map(|s| s.value)
    };
    for (key, buckets) in &groups {
        for pair in buckets.windows(2) {
            if pair[0].0.partial_cmp(&pair[1].0) != Some(std::cmp::Ordering::Less) {
                return Err(format!("{name}{key:?}: bucket bounds not increasing"));
            }
            if pair[0].1.is_nan() || pair[1].1.is_nan() || pair[0].1 > pair[1].1 {
                return Err(format!("{name}{key:?}: cumulative counts decrease"));
            }
        }
        let Some(&(last_le, inf_count)) = buckets.last() else {
            continue;
        };
        if last_le != f64::INFINITY {
            return Err(format!("{name}{key:?}: no +Inf bucket"));
        }
        match find("_count", key) {
            Some(count) if count == inf_count => {}
            other => {
                return Err(format!(
                    "{name}{key:?}: _count {other:?} differs from the +Inf bucket {inf_count}"
                ))
            }
        }
        if find("_sum", key).is_none() {
            return Err(format!("{name}{key:?}: no _sum"));
        }
    }
    for s in family
        .samples
        .iter()
        .filter(|s| !s.name.ends_with("_bucket"))
    {
        if !groups.iter().any(|(k, _)| *k == s.labels) {
            return Err(format!("{}{:?} has no buckets", s.name, s.labels));
        }
    }
    Ok(())
}
