//! stats.log (spec 7.1): with `stats.interval=1` the node writes one line a
//! second, `YYYY-MM-DD HH:MM:SS,mmm key:value ...`, with the original's keys
//! in the original's group order (process, traffic and connections, totals,
//! per channel, request versions, legacy requests, neo requests, actions, per
//! storage, log events). Counters cover the interval since the previous line,
//! so over all lines they add up to exactly what the client did.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use dmq_testkit::legacy::{Client, Wire, OK};
use dmq_testkit::node::Node;
use dmq_testkit::records::record;
use dmq_testkit::stats::{parsed_stats_lines, StatsLine};
use dmq_testkit::wait::wait_for;

use crate::support::names_on_each_shard;

const GROUP_PROCESS: [&str; 6] = [
    "cpu_user",
    "cpu_system",
    "cpu_total",
    "vsz",
    "rss",
    "mem_percentage",
];
const GROUP_TRAFFIC: [&str; 6] = [
    "bytes_sent",
    "bytes_received",
    "handling_connections",
    "handling_connections_pcnt",
    "handling_neo_connections",
    "handling_neo_connections_pcnt",
];
const GROUP_TOTALS: [&str; 2] = ["total_bytes", "total_records"];
/// The timing fields of a request (spec 7.1, group 6): three figures, then
/// how many requests were handled within each bound (`handled_<bound>`).
const TIMING_FIGURES: [&str; 3] = ["max_active", "handled", "mean_handled_time_micros"];
const TIMING_BOUNDS: [&str; 6] = [
    "10_micros",
    "100_micros",
    "1_ms",
    "10_ms",
    "100_ms",
    "over_100_ms",
];
const LEGACY_REQUESTS: [&str; 6] = [
    "Push",
    "PushMulti",
    "Pop",
    "Produce",
    "ProduceMulti",
    "Consume",
];
const GROUP_ACTIONS: [&str; 4] = [
    "action/pushed/records",
    "action/pushed/bytes",
    "action/popped/records",
    "action/popped/bytes",
];
const STORAGE_FIELDS: [&str; 5] = [
    "bytes_memory",
    "bytes_overflow",
    "records_memory",
    "records_overflow",
    "percent_memory",
];
const GROUP_LOG: [&str; 7] = [
    "logged_debug",
    "logged_trace",
    "logged_verbose",
    "logged_info",
    "logged_warn",
    "logged_error",
    "logged_fatal",
];

/// `<prefix>/<field>` for every timing field of a request, in order.
fn timing_fields(prefix: &str) -> Vec<String> {
    let figures = TIMING_FIGURES.iter().map(|f| format!("{prefix}/{f}"));
    let bounds = TIMING_BOUNDS
        .iter()
        .map(|b| format!("{prefix}/handled_{b}"));
    figures.chain(bounds).collect()
}

/// Ring bytes per storage.
const RING: u64 = 1000;

/// The instances of the per-object groups of one line.
#[derive(Debug, PartialEq)]
struct Layout {
    /// Group 4: `channel/<id>/bytes`, `channel/<id>/records`.
    channels: BTreeSet<String>,
    /// Group 9: `channel/<storage id>/bytes_memory` ... `percent_memory`.
    storages: BTreeSet<String>,
}

/// Walks the keys of `line` through the ten groups of spec 7.1 in order.
fn check_layout(line: &StatsLine) -> Result<Layout, String> {
    let keys = line.keys();
    let mut at = 0;
    let fixed = |group: &[&str], what: &str, at: &mut usize| -> Result<(), String> {
        for key in group {
            match keys.get(*at) {
                Some(k) if k == key => *at += 1,
                other => {
                    return Err(format!(
                        "{what}: expected {key} at field {at}, found {other:?}"
                    ))
                }
            }
        }
        Ok(())
    };
    fixed(&GROUP_PROCESS, "group 1 (process)", &mut at)?;
    fixed(&GROUP_TRAFFIC, "group 2 (traffic)", &mut at)?;
    fixed(&GROUP_TOTALS, "group 3 (totals)", &mut at)?;

    // Group 4: pairs per channel, until the request-version field.
    let mut channels = BTreeSet::new();
    while let Some(key) = keys.get(at).filter(|k| k.starts_with("channel/")) {
        let id = key
            .strip_prefix("channel/")
            .and_then(|k| k.strip_suffix("/bytes"))
            .ok_or_else(|| format!("group 4: expected channel/<id>/bytes, found {key}"))?;
        if keys.get(at + 1) != Some(&format!("channel/{id}/records").as_str()) {
            return Err(format!("group 4: {key} not followed by its records"));
        }
        if !channels.insert(id.to_owned()) {
            return Err(format!("group 4: channel {id} twice"));
        }
        at += 2;
    }
    fixed(&["old_request_versions_in_use"], "group 5", &mut at)?;

    // Group 6: the six legacy requests, in any order, nine fields each.
    let mut seen = BTreeSet::new();
    while let Some(key) = keys.get(at).filter(|k| k.starts_with("request/")) {
        let name = key.split('/').nth(1).unwrap_or("");
        if !LEGACY_REQUESTS.contains(&name) || !seen.insert(name.to_owned()) {
            return Err(format!("group 6: unexpected or repeated request {key}"));
        }
        let fields = timing_fields(&format!("request/{name}"));
        let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
        fixed(&fields, "group 6 (legacy requests)", &mut at)?;
    }
    if seen.len() != LEGACY_REQUESTS.len() {
        return Err(format!(
            "group 6: requests {seen:?}, want {LEGACY_REQUESTS:?}"
        ));
    }

    // Group 7: neo push and pop with timing fields, consume with two.
    let mut seen = BTreeSet::new();
    while let Some(key) = keys.get(at).filter(|k| k.starts_with("neo_request/")) {
        let name = key.split('/').nth(1).unwrap_or("");
        let prefix = format!("neo_request/{name}");
        let fields: Vec<String> = match name {
            "push" | "pop" => timing_fields(&prefix),
            "consume" => vec![format!("{prefix}/max_active"), format!("{prefix}/handled")],
            _ => return Err(format!("group 7: unexpected neo request {key}")),
        };
        if !seen.insert(name.to_owned()) {
            return Err(format!("group 7: neo request {name} twice"));
        }
        let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
        fixed(&fields, "group 7 (neo requests)", &mut at)?;
    }
    if seen.len() != 3 {
        return Err(format!(
            "group 7: neo requests {seen:?}, want push, pop, consume"
        ));
    }
    fixed(&GROUP_ACTIONS, "group 8 (actions)", &mut at)?;

    // Group 9: five fields per storage.
    let mut storages = BTreeSet::new();
    while let Some(key) = keys.get(at).filter(|k| k.starts_with("channel/")) {
        let id = key
            .strip_prefix("channel/")
            .and_then(|k| k.strip_suffix("/bytes_memory"))
            .ok_or_else(|| format!("group 9: expected channel/<id>/bytes_memory, found {key}"))?;
        if !storages.insert(id.to_owned()) {
            return Err(format!("group 9: storage {id} twice"));
        }
        let fields: Vec<String> = STORAGE_FIELDS
            .iter()
            .map(|f| format!("channel/{id}/{f}"))
            .collect();
        let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
        fixed(&fields, "group 9 (storages)", &mut at)?;
    }
    fixed(&GROUP_LOG, "group 10 (log events)", &mut at)?;
    if at != keys.len() {
        return Err(format!("fields after logged_fatal: {:?}", &keys[at..]));
    }

    // Values: floats for CPU, memory share and mean times, integers elsewhere.
    for (key, value) in &line.fields {
        let float = key.starts_with("cpu_")
            || key == "mem_percentage"
            || key.ends_with("/mean_handled_time_micros");
        let ok = if float {
            value.parse::<f64>().is_ok() || matches!(value.as_str(), "nan" | "-nan")
        } else {
            value.parse::<u64>().is_ok()
        };
        if !ok {
            return Err(format!("{key}:{value} is not a valid value"));
        }
    }
    Ok(Layout { channels, storages })
}

/// A node writing stats.log every second into a directory the node creates,
/// after known traffic, and what that traffic should show.
struct Scenario {
    node: Node,
    _dir: tempfile::TempDir,
    path: PathBuf,
    wire: Wire,
    /// Kept open: the legacy connections counted in the last lines.
    _clients: (Client, Client),
    /// Channels x (7 pushed, 3 popped), y (5 pushed), z (2 pushed and consumed).
    x: String,
    y: String,
    z: String,
}

const PUSHES: u64 = 14;
const POPS: u64 = 3;
const CONSUMED: u64 = 2;
/// Every record is 9 bytes (`record(i)`).
const RECORD: u64 = 9;

fn scenario() -> Scenario {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("logs").join("stats.log");
    let file = format!("stats.file_name={}", path.display());
    let ring = format!("server.channel_size_limit={RING}");
    let node = Node::start(&[
        "stats.interval=1",
        &file,
        &ring,
        "server.connection_limit=50",
    ]);
    // The harness's start-up probe: one GetNumConnections, 4 bytes each way.
    let mut wire = Wire {
        sent: 4,
        received: 4,
    };
    let names = names_on_each_shard("stat", 2);
    let (x, y, z) = (names[0].clone(), names[1].clone(), names[3].clone());
    let mut c1 = node.client();
    for i in 0..7 {
        assert_eq!(wire.push(&mut c1, &x, &record(i)), OK);
    }
    for i in 0..5 {
        assert_eq!(wire.push(&mut c1, &y, &record(i)), OK);
    }
    for i in 0..3 {
        assert_eq!(wire.pop(&mut c1, &x), Ok(record(i)));
    }
    for i in 0..2 {
        assert_eq!(wire.push(&mut c1, &z, &record(i)), OK);
    }
    let mut c2 = node.client();
    assert_eq!(wire.consume(&mut c2, &z), OK);
    for i in 0..2 {
        assert_eq!(wire.next_record(&mut c2), Some(record(i)));
    }
    Scenario {
        node,
        _dir: dir,
        path,
        wire,
        _clients: (c1, c2),
        x,
        y,
        z,
    }
}

/// Sum of an integer field over lines.
fn sum(lines: &[StatsLine], key: &str) -> u64 {
    lines.iter().map(|l| l.int(key)).sum()
}

/// The counters summed over all lines, in a fixed order for comparison.
fn sums(lines: &[StatsLine]) -> Vec<(&'static str, u64)> {
    [
        "action/pushed/records",
        "action/pushed/bytes",
        "action/popped/records",
        "action/popped/bytes",
        "request/Push/handled",
        "request/Pop/handled",
        "request/Consume/handled",
        "request/PushMulti/handled",
        "request/Produce/handled",
        "request/ProduceMulti/handled",
        "bytes_received",
        "bytes_sent",
    ]
    .into_iter()
    .map(|k| (k, sum(lines, k)))
    .collect()
}

#[test]
fn every_line_has_the_original_keys_in_group_order() {
    let s = scenario();
    // Wait for two lines written after the traffic, so that the channels show.
    let lines = wait_for(
        "two stats lines with the channels",
        Duration::from_secs(10),
        || {
            let lines = parsed_stats_lines(&s.path);
            let with = lines
                .iter()
                .filter(|l| l.get(&format!("channel/{}/records", s.z)).is_some())
                .count();
            if with >= 2 {
                Ok(lines)
            } else {
                Err(format!(
                    "{} lines, {with} with channel {}",
                    lines.len(),
                    s.z
                ))
            }
        },
    );
    let mut previous = String::new();
    for line in &lines {
        let layout = check_layout(line).unwrap_or_else(|e| panic!("{e}\nin {line:?}"));
        assert!(
            line.timestamp > previous,
            "timestamps not increasing: {previous} then {}",
            line.timestamp
        );
        previous = line.timestamp.clone();
        if layout.channels.contains(&s.z) {
            let all: BTreeSet<String> = [&s.x, &s.y, &s.z].iter().map(|c| c.to_string()).collect();
            // The consumed channel's storage `@z` is listed as `z`.
            assert_eq!(
                layout,
                Layout {
                    channels: all.clone(),
                    storages: all
                },
                "{line:?}"
            );
        }
    }
    assert!(!s.node.stderr().contains("panicked"), "{}", s.node.stderr());
}

#[test]
fn per_line_counters_add_up_to_the_requests_made() {
    let s = scenario();
    let expected = vec![
        ("action/pushed/records", PUSHES),
        ("action/pushed/bytes", PUSHES * RECORD),
        ("action/popped/records", POPS + CONSUMED),
        ("action/popped/bytes", (POPS + CONSUMED) * RECORD),
        ("request/Push/handled", PUSHES),
        ("request/Pop/handled", POPS),
        ("request/Consume/handled", 1),
        ("request/PushMulti/handled", 0),
        ("request/Produce/handled", 0),
        ("request/ProduceMulti/handled", 0),
        ("bytes_received", s.wire.sent),
        ("bytes_sent", s.wire.received),
    ];
    let written = wait_for("stats lines adding up", Duration::from_secs(10), || {
        let lines = parsed_stats_lines(&s.path);
        let got = sums(&lines);
        if got == expected {
            Ok(lines.len())
        } else {
            Err(format!("{} lines; sums {got:?}", lines.len()))
        }
    });
    // One more line: it adds nothing (the counters were reset).
    let lines = wait_for("one more stats line", Duration::from_secs(10), || {
        let lines = parsed_stats_lines(&s.path);
        if lines.len() > written {
            Ok(lines)
        } else {
            Err(format!("{} lines", lines.len()))
        }
    });
    assert_eq!(
        sums(&lines),
        expected,
        "sums over all {} lines",
        lines.len()
    );

    let last = lines.last().expect("a line");
    for key in GROUP_ACTIONS {
        assert_eq!(last.int(key), 0, "{key} in the last line");
    }
    // Gauges: the two open connections (of 50), the records left, the
    // running Consume.
    let gauge = |key: &str| last.int(key);
    assert_eq!(gauge("handling_connections"), 2);
    assert_eq!(gauge("handling_connections_pcnt"), 4);
    assert_eq!(gauge("handling_neo_connections"), 0);
    assert_eq!(gauge("request/Consume/max_active"), 1);
    let stored = |records: u64| records * (RECORD + 8);
    assert_eq!(gauge("total_records"), 4 + 5);
    assert_eq!(gauge("total_bytes"), stored(4) + stored(5));
    for (channel, records) in [(&s.x, 4), (&s.y, 5), (&s.z, 0)] {
        let key = |f: &str| format!("channel/{channel}/{f}");
        assert_eq!(gauge(&key("records")), records, "{channel}");
        assert_eq!(gauge(&key("bytes")), stored(records), "{channel}");
        assert_eq!(gauge(&key("records_memory")), records, "{channel}");
        assert_eq!(gauge(&key("bytes_memory")), stored(records), "{channel}");
        assert_eq!(gauge(&key("records_overflow")), 0, "{channel}");
        assert_eq!(gauge(&key("bytes_overflow")), 0, "{channel}");
        // floor(bytes_memory * 100 / capacity): 68 -> 6, 85 -> 8.
        assert_eq!(
            gauge(&key("percent_memory")),
            stored(records) * 100 / RING,
            "{channel}"
        );
    }
}

/// As in the original (swarm's `RequestStats`): each request is active while
/// it is handled and `max_active` restarts at the current level after each
/// line, so a line that counts handled requests of a type shows a
/// `max_active` of at least 1 for that type.
#[test]
fn max_active_is_at_least_one_where_requests_were_handled() {
    let s = scenario();
    let lines = wait_for(
        "stats lines with every request",
        Duration::from_secs(10),
        || {
            let lines = parsed_stats_lines(&s.path);
            let handled = (
                sum(&lines, "request/Push/handled"),
                sum(&lines, "request/Pop/handled"),
                sum(&lines, "request/Consume/handled"),
            );
            if handled == (PUSHES, POPS, 1) {
                Ok(lines)
            } else {
                Err(format!("handled (Push, Pop, Consume) {handled:?}"))
            }
        },
    );
    let mut wrong = Vec::new();
    for line in &lines {
        for name in LEGACY_REQUESTS {
            let handled = line.int(&format!("request/{name}/handled"));
            let max_active = line.int(&format!("request/{name}/max_active"));
            if handled > 0 && max_active == 0 {
                wrong.push(format!(
                    "{}: request/{name}/handled:{handled} with max_active:0",
                    line.timestamp
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
