//! The Prometheus endpoint: the whole `/metrics` text parses (a strict parser
//! of the text format, cross-checked with the `prometheus-parse` crate) and
//! holds every family of the contract's Metrics table with its type and
//! labels; other paths answer 404 and other methods 405.

use std::collections::{BTreeMap, BTreeSet};

use dmq_testkit::legacy::{Client, NOT_SUPPORTED, OK};
use dmq_testkit::metrics::{http_get, http_raw, scrape, Exposition};
use dmq_testkit::node::{NodeOptions, SHARDS};

use crate::support::names_on_each_shard;

/// The contract's table: family, type, label names.
const CONTRACT: [(&str, &str, &[&str]); 12] = [
    (
        "dmq_records",
        "gauge",
        &["channel", "subscriber", "location"],
    ),
    ("dmq_bytes", "gauge", &["channel", "subscriber", "location"]),
    (
        "dmq_channel_memory_ratio",
        "gauge",
        &["channel", "subscriber"],
    ),
    ("dmq_pushed_records_total", "counter", &["channel"]),
    ("dmq_popped_records_total", "counter", &["channel"]),
    ("dmq_pushed_bytes_total", "counter", &["channel"]),
    ("dmq_popped_bytes_total", "counter", &["channel"]),
    ("dmq_connections", "gauge", &["protocol"]),
    (
        "dmq_requests_total",
        "counter",
        &["protocol", "request", "status"],
    ),
    (
        "dmq_request_duration_seconds",
        "histogram",
        &["protocol", "request"],
    ),
    ("dmq_bytes_received_total", "counter", &["protocol"]),
    ("dmq_bytes_sent_total", "counter", &["protocol"]),
];

/// Traffic that gives every family of the table at least one series: pushes
/// and pops on channels of both shards, a PushMulti, and a legacy Consume (a
/// subscribed storage) that stays open. Returns the consuming client.
fn traffic(node: &dmq_testkit::node::Node, channels: &[String]) -> Client {
    let mut c = node.client();
    for (i, ch) in channels.iter().enumerate() {
        for j in 0..=i {
            assert_eq!(c.push(ch, dmq_testkit::records::record(j)), OK);
        }
    }
    assert_eq!(c.pop(&channels[0]), Ok(dmq_testkit::records::record(0)));
    assert_eq!(c.push_multi(&channels[..2], "both"), OK);
    let mut consumer = node.client();
    let consumed = &channels[channels.len() - 1];
    assert_eq!(consumer.consume(consumed), OK);
    assert_eq!(
        consumer.next_record(),
        Some(dmq_testkit::records::record(0))
    );
    consumer
}

/// Every non-comment line is a sample for `prometheus-parse`, and it reads the
/// same values as the strict parser.
fn cross_check(exposition: &Exposition) {
    use prometheus_parse::{LineInfo, Scrape, Value};
    for line in exposition.text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        assert!(
            matches!(LineInfo::parse(line), LineInfo::Sample { .. }),
            "prometheus-parse does not read {line:?} as a sample"
        );
    }
    let scrape = Scrape::parse(exposition.text.lines().map(|l| Ok(l.to_owned())))
        .expect("prometheus-parse reads the exposition");
    let labels_of = |s: &prometheus_parse::Sample| -> BTreeMap<String, String> {
        s.labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    for family in &exposition.families {
        for sample in &family.samples {
            if family.kind == "histogram" && sample.name.ends_with("_bucket") {
                continue;
            }
            let theirs = scrape
                .samples
                .iter()
                .find(|s| s.metric == sample.name && labels_of(s) == sample.labels)
                .unwrap_or_else(|| {
                    panic!("prometheus-parse has no {}{:?}", sample.name, sample.labels)
                });
            let value = match theirs.value {
                Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
                ref other => panic!("{}: unexpected {other:?}", sample.name),
            };
            assert!(
                value == sample.value || (value.is_nan() && sample.value.is_nan()),
                "{}{:?}: prometheus-parse reads {value}, the strict parser {}",
                sample.name,
                sample.labels,
                sample.value
            );
        }
        if family.kind == "histogram" {
            let groups: BTreeSet<BTreeMap<String, String>> = family
                .samples
                .iter()
                .filter(|s| s.name.ends_with("_count"))
                .map(|s| s.labels.clone())
                .collect();
            for key in groups {
                let theirs = scrape
                    .samples
                    .iter()
                    .find(|s| s.metric == family.name && labels_of(s) == key)
                    .unwrap_or_else(|| panic!("prometheus-parse has no {}{key:?}", family.name));
                let Value::Histogram(buckets) = &theirs.value else {
                    panic!("{}: not a histogram for prometheus-parse", family.name);
                };
                let mine = exposition
                    .matching(&format!("{}_bucket", family.name), &[])
                    .into_iter()
                    .filter(|s| {
                        let mut l = s.labels.clone();
                        l.remove("le");
                        l == key
                    })
                    .count();
                assert_eq!(buckets.len(), mine, "{}{key:?}: buckets", family.name);
            }
        }
    }
}

#[test]
fn whole_exposition_parses_and_holds_every_contract_family() {
    let node = NodeOptions::new().metrics().start();
    let metrics = node.metrics_addr();

    // A node that has served nothing but the start-up probe parses too.
    let fresh = scrape(metrics);
    cross_check(&fresh);

    let channels = names_on_each_shard("expo", 2);
    let _consumer = traffic(&node, &channels);
    let exposition = scrape(metrics);
    cross_check(&exposition);

    for (name, kind, labels) in CONTRACT {
        let family = exposition
            .family(name)
            .unwrap_or_else(|| panic!("no family {name} in\n{}", exposition.text));
        assert_eq!(family.kind, kind, "type of {name}");
        assert!(!family.samples.is_empty(), "{name} has no series");
        let wanted: BTreeSet<String> = labels.iter().map(|l| l.to_string()).collect();
        for sample in &family.samples {
            let mut names: BTreeSet<String> = sample.labels.keys().cloned().collect();
            names.remove("le");
            assert_eq!(
                names, wanted,
                "labels of {}{:?}",
                sample.name, sample.labels
            );
        }
    }

    // Each storage has a memory and an overflow series; every channel pushed
    // to is there, the consumed one with the default subscriber "".
    for family in ["dmq_records", "dmq_bytes"] {
        assert_eq!(
            exposition.label_values(family, "location"),
            BTreeSet::from(["memory".to_owned(), "overflow".to_owned()]),
            "{family} locations"
        );
        for ch in &channels {
            for location in ["memory", "overflow"] {
                exposition.value(
                    family,
                    &[("channel", ch), ("subscriber", ""), ("location", location)],
                );
            }
        }
    }
    for sample in exposition.samples("dmq_channel_memory_ratio") {
        assert!(
            (0.0..=1.0).contains(&sample.value),
            "memory ratio out of 0..1: {sample:?}"
        );
    }
    for family in [
        "dmq_connections",
        "dmq_bytes_received_total",
        "dmq_bytes_sent_total",
    ] {
        assert_eq!(
            exposition.label_values(family, "protocol"),
            BTreeSet::from(["legacy".to_owned(), "neo".to_owned()]),
            "{family} protocols"
        );
    }

    // dmq_shard_*: at least one family, each with a series for every shard.
    let shards: BTreeSet<String> = (0..SHARDS).map(|s| s.to_string()).collect();
    let shard_families: Vec<_> = exposition
        .families
        .iter()
        .filter(|f| f.name.starts_with("dmq_shard_"))
        .collect();
    assert!(!shard_families.is_empty(), "no dmq_shard_* family");
    for family in shard_families {
        for sample in &family.samples {
            assert!(
                sample.labels.contains_key("shard"),
                "{} without a shard label: {:?}",
                sample.name,
                sample.labels
            );
        }
        let seen: BTreeSet<String> = family
            .samples
            .iter()
            .filter_map(|s| s.labels.get("shard").cloned())
            .collect();
        assert_eq!(seen, shards, "shards of {}", family.name);
    }
}

#[test]
fn other_paths_are_404_and_other_methods_405() {
    let node = NodeOptions::new().metrics().start();
    let metrics = node.metrics_addr();
    for path in ["/", "/metric", "/metrics/", "/other", "/metricsx"] {
        let reply = http_get(metrics, path);
        assert_eq!(reply.status, 404, "GET {path}: {reply:?}");
    }
    for method in ["POST", "PUT", "DELETE", "HEAD"] {
        let request = format!(
            "{method} /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let reply = http_raw(metrics, request.as_bytes());
        assert_eq!(reply.status, 405, "{method} /metrics: {reply:?}");
    }
    // A query string does not change the path; the endpoint still serves after
    // the errors, with the text format's content type.
    let reply = http_get(metrics, "/metrics?name[]=dmq_records");
    assert_eq!(reply.status, 200, "{reply:?}");
    let reply = http_get(metrics, "/metrics");
    assert_eq!(reply.status, 200, "{reply:?}");
    let content_type = reply.header("content-type").unwrap_or("");
    assert!(
        content_type.starts_with("text/plain") && content_type.contains("version=0.0.4"),
        "Content-Type {content_type:?}"
    );
    Exposition::parse(&reply.body).expect("parses");
    // And the legacy port is unaffected.
    assert_eq!(node.client().get_num_connections(), NOT_SUPPORTED);
}

/// The contract's row `dmq_shard_*`: "per-shard runtime figures (queue depth,
/// busy time)". Busy time must be there, and a queue-depth figure too.
#[test]
fn shard_families_include_queue_depth_and_busy_time() {
    let node = NodeOptions::new().metrics().start();
    let metrics = node.metrics_addr();
    let exposition = scrape(metrics);
    let names: Vec<&str> = exposition
        .families
        .iter()
        .map(|f| f.name.as_str())
        .filter(|n| n.starts_with("dmq_shard_"))
        .collect();
    assert!(
        names.iter().any(|n| n.contains("busy")),
        "no per-shard busy-time family among {names:?}"
    );
    assert!(
        names
            .iter()
            .any(|n| n.contains("queue") || n.contains("depth")),
        "no per-shard queue-depth family among {names:?}"
    );
}

/// The strict parser used above accepts a well-formed text and rejects the
/// faults it is meant to catch (so a pass above means something).
#[test]
fn strict_parser_rejects_malformed_text() {
    let good = "# HELP a_total A counter.\n# TYPE a_total counter\na_total{x=\"q\\\"\\\\\\n\"} 1\n\
                # TYPE h histogram\nh_bucket{le=\"0.1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 0.5\nh_count 2\n\
                g{y=\"\"} NaN\n";
    let parsed = Exposition::parse(good).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(parsed.value("a_total", &[("x", "q\"\\\n")]), 1.0);
    assert_eq!(parsed.value("h_count", &[]), 2.0);
    let bad = [
        ("no final newline", "a 1"),
        ("bad value", "a one\n"),
        ("bad escape", "a{x=\"\\t\"} 1\n"),
        ("unquoted label", "a{x=1} 1\n"),
        ("duplicate series", "a{x=\"1\"} 1\na{x=\"1\"} 2\n"),
        ("TYPE after samples", "a 1\n# TYPE a gauge\n"),
        ("not contiguous", "a 1\nb 1\na{x=\"1\"} 1\n"),
        ("negative counter", "# TYPE c counter\nc -1\n"),
        ("bad type", "# TYPE c countr\nc 1\n"),
        (
            "+Inf differs from _count",
            "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n",
        ),
        (
            "no +Inf bucket",
            "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_sum 1\nh_count 2\n",
        ),
        (
            "decreasing buckets",
            "# TYPE h histogram\nh_bucket{le=\"1\"} 3\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 2\n",
        ),
        ("trailing text", "a 1 2 3\n"),
        ("bad metric name", "1a 1\n"),
    ];
    for (what, text) in bad {
        assert!(
            Exposition::parse(text).is_err(),
            "{what}: accepted {text:?}"
        );
    }
}
