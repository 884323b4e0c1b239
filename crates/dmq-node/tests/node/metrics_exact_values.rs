//! Exact metric values after a known sequence of legacy requests on a fresh
//! 2-shard node: request counts by status (200, 406, 407, 408, 409, 500,
//! closed), duration histogram counts, bytes in and out as the client counted
//! them, connections, per-channel push/pop counters (per storage: a push to a
//! channel with two subscriber storages counts two), per-storage records,
//! bytes (8-byte header per record in memory) and memory ratio, and the
//! per-shard channel, consumer and refusal figures.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use dmq_testkit::legacy::{Wire, BAD_CHANNEL_NAME, EMPTY_VALUE, ERROR, NOT_SUPPORTED, OK};
use dmq_testkit::metrics::{scrape, Exposition};
use dmq_testkit::node::NodeOptions;
use dmq_testkit::wait::wait_for;

use crate::support::names_on_each_shard;

/// Ring bytes per storage (`server.channel_size_limit`).
const RING: usize = 1024;

/// The legacy `dmq_requests_total` series as `(request, status) -> count`.
fn legacy_requests(x: &Exposition) -> BTreeMap<(String, String), f64> {
    x.matching("dmq_requests_total", &[("protocol", "legacy")])
        .into_iter()
        .map(|s| {
            (
                (s.labels["request"].clone(), s.labels["status"].clone()),
                s.value,
            )
        })
        .collect()
}

fn expected_requests(list: &[(&str, &str, f64)]) -> BTreeMap<(String, String), f64> {
    list.iter()
        .map(|(r, s, n)| (((*r).to_owned(), (*s).to_owned()), *n))
        .collect()
}

/// Every legacy histogram series counts exactly the requests of its type, and
/// the short requests are timed.
fn check_histograms(x: &Exposition) {
    let requests = legacy_requests(x);
    for kind in ["push", "pop", "push_multi"] {
        assert!(
            x.get(
                "dmq_request_duration_seconds_count",
                &[("protocol", "legacy"), ("request", kind)]
            )
            .is_some(),
            "no duration histogram for legacy {kind}"
        );
    }
    for count in x.matching(
        "dmq_request_duration_seconds_count",
        &[("protocol", "legacy")],
    ) {
        let kind = &count.labels["request"];
        let handled: f64 = requests
            .iter()
            .filter(|((r, _), _)| r == kind)
            .map(|(_, n)| n)
            .sum();
        assert_eq!(
            count.value, handled,
            "histogram count of legacy {kind} vs its requests"
        );
        let sum = x.value(
            "dmq_request_duration_seconds_sum",
            &[("protocol", "legacy"), ("request", kind)],
        );
        assert!(sum >= 0.0, "negative duration sum for {kind}");
    }
}

/// `(channel, subscriber)` of every storage in `dmq_records`.
fn storages(x: &Exposition) -> BTreeSet<(String, String)> {
    x.samples("dmq_records")
        .iter()
        .map(|s| (s.labels["channel"].clone(), s.labels["subscriber"].clone()))
        .collect()
}

/// Records and bytes of one storage, memory and overflow, and its ratio.
fn check_storage(x: &Exposition, channel: &str, subscriber: &str, records: f64, payload: f64) {
    let at = |location| {
        [
            ("channel", channel),
            ("subscriber", subscriber),
            ("location", location),
        ]
    };
    let what = format!("storage {subscriber}@{channel}");
    assert_eq!(
        x.value("dmq_records", &at("memory")),
        records,
        "{what} records"
    );
    assert_eq!(
        x.value("dmq_records", &at("overflow")),
        0.0,
        "{what} overflow records"
    );
    let bytes = payload + 8.0 * records;
    assert_eq!(x.value("dmq_bytes", &at("memory")), bytes, "{what} bytes");
    assert_eq!(
        x.value("dmq_bytes", &at("overflow")),
        0.0,
        "{what} overflow bytes"
    );
    assert_eq!(
        x.value(
            "dmq_channel_memory_ratio",
            &[("channel", channel), ("subscriber", subscriber)]
        ),
        bytes / RING as f64,
        "{what} memory ratio"
    );
}

/// `dmq_pushed_records_total`, `dmq_pushed_bytes_total`, `dmq_popped_*` of a channel.
fn check_channel(x: &Exposition, channel: &str, pushed: [f64; 2], popped: [f64; 2]) {
    let l = [("channel", channel)];
    let got = [
        x.value("dmq_pushed_records_total", &l),
        x.value("dmq_pushed_bytes_total", &l),
        x.value("dmq_popped_records_total", &l),
        x.value("dmq_popped_bytes_total", &l),
    ];
    assert_eq!(
        got,
        [pushed[0], pushed[1], popped[0], popped[1]],
        "channel {channel}: pushed records, bytes, popped records, bytes"
    );
}

fn shard_figure(x: &Exposition, name: &str) -> [f64; 2] {
    [
        x.value(name, &[("shard", "0")]),
        x.value(name, &[("shard", "1")]),
    ]
}

/// The legacy request counts are `requests`, the duration histograms agree
/// with them, and the legacy byte counters match what `wire` counted.
fn check_legacy_traffic(x: &Exposition, requests: &[(&str, &str, f64)], wire: &Wire) {
    assert_eq!(legacy_requests(x), expected_requests(requests));
    check_histograms(x);
    assert_eq!(
        x.value("dmq_bytes_received_total", &[("protocol", "legacy")]),
        wire.sent as f64,
        "legacy bytes received"
    );
    assert_eq!(
        x.value("dmq_bytes_sent_total", &[("protocol", "legacy")]),
        wire.received as f64,
        "legacy bytes sent"
    );
}

/// The per-shard overflow figures of the sequence: the one record larger than
/// the ring went to disk and came back on shard 0; nothing was refused.
fn check_overflow_figures(x: &Exposition) {
    assert_eq!(
        shard_figure(x, "dmq_shard_overflow_written_records_total"),
        [1.0, 0.0]
    );
    assert_eq!(
        shard_figure(x, "dmq_shard_overflow_read_records_total"),
        [1.0, 0.0]
    );
    assert_eq!(
        shard_figure(x, "dmq_shard_overflow_refused_total"),
        [0.0, 0.0]
    );
}

/// Scrapes until the connection gauges read `legacy` and `neo` (a closed
/// connection is counted out when its task ends, a moment after the client
/// sees the close).
fn scrape_with_connections(metrics: std::net::SocketAddr, legacy: f64, neo: f64) -> Exposition {
    wait_for("connection gauges", Duration::from_secs(10), || {
        let x = scrape(metrics);
        let got = (
            x.value("dmq_connections", &[("protocol", "legacy")]),
            x.value("dmq_connections", &[("protocol", "neo")]),
        );
        if got == (legacy, neo) {
            Ok(x)
        } else {
            Err(format!("(legacy, neo) = {got:?}"))
        }
    })
}

#[test]
fn counters_and_gauges_after_a_known_sequence() {
    let ring = format!("server.channel_size_limit={RING}");
    let node = NodeOptions::new()
        .neo()
        .metrics()
        .overrides(&[ring])
        .start();
    let metrics = node.metrics_addr();
    // The harness's start-up probe: one GetNumConnections, 4 bytes each way.
    let mut wire = Wire {
        sent: 4,
        received: 4,
    };
    let names = names_on_each_shard("exact", 3);
    // Shard 0: a, c, e; shard 1: b, d, missing.
    let (a, b, c, d) = (&names[0], &names[1], &names[2], &names[3]);
    let (e, missing) = (&names[4], &names[5]);

    let mut c1 = node.client();
    assert_eq!(wire.push(&mut c1, a, b"hello"), OK);
    assert_eq!(wire.push(&mut c1, b, b"world!"), OK);
    assert_eq!(wire.push(&mut c1, b, b"xyz"), OK);
    assert_eq!(wire.push(&mut c1, a, b""), EMPTY_VALUE);
    // An empty Push still creates its channel.
    assert_eq!(wire.push(&mut c1, c, b""), EMPTY_VALUE);
    assert_eq!(wire.push(&mut c1, "bad.name", b"v"), BAD_CHANNEL_NAME);
    // Larger than the ring: it goes to the disk overflow, behind "hello".
    assert_eq!(wire.push(&mut c1, a, &[b'x'; 2000]), OK);
    assert_eq!(wire.pop(&mut c1, a), Ok(b"hello".to_vec()));
    assert_eq!(wire.pop(&mut c1, a), Ok(vec![b'x'; 2000]));
    assert_eq!(wire.pop(&mut c1, a), Ok(Vec::new()));
    assert_eq!(wire.pop(&mut c1, missing), Err(ERROR));
    assert_eq!(wire.pop(&mut c1, "bad.name"), Err(BAD_CHANNEL_NAME));
    assert_eq!(wire.push_multi(&mut c1, &[a, b], b"multi"), OK);
    assert_eq!(wire.push(&mut c1, e, b"e"), OK);
    assert_eq!(wire.push(&mut c1, d, b"d0"), OK);

    // A legacy Consume of d (default subscriber "") takes the record there.
    let mut c2 = node.client();
    assert_eq!(wire.consume(&mut c2, d), OK);
    assert_eq!(wire.next_record(&mut c2), Some(b"d0".to_vec()));
    // A second subscriber storage of d, "grp", left without a consumer.
    let mut neo = node.neo();
    let id = neo.consume(d, "grp");
    assert_eq!(neo.stop_consume(id), Vec::<Vec<u8>>::new());
    // Each push to d now goes to both storages.
    assert_eq!(wire.push(&mut c1, d, b"d1"), OK);
    assert_eq!(wire.push(&mut c1, d, b"d2"), OK);
    assert_eq!(wire.next_record(&mut c2), Some(b"d1".to_vec()));
    assert_eq!(wire.next_record(&mut c2), Some(b"d2".to_vec()));

    let x = scrape_with_connections(metrics, 2.0, 1.0);
    let mut requests = vec![
        ("get_num_connections", "406", 1.0),
        ("push", "200", 8.0),
        ("push", "408", 2.0),
        ("push", "409", 1.0),
        ("pop", "200", 3.0),
        ("pop", "409", 1.0),
        ("pop", "500", 1.0),
        ("push_multi", "200", 1.0),
        ("consume", "200", 1.0),
    ];
    check_legacy_traffic(&x, &requests, &wire);
    let s = |n: &str| (n.to_owned(), String::new());
    assert_eq!(
        storages(&x),
        BTreeSet::from([s(a), s(b), s(c), s(d), (d.clone(), "grp".to_owned()), s(e)]),
        "storages (no bad or missing channel)"
    );
    check_storage(&x, a, "", 1.0, 5.0);
    check_storage(&x, b, "", 3.0, 14.0);
    check_storage(&x, c, "", 0.0, 0.0);
    check_storage(&x, d, "", 0.0, 0.0);
    check_storage(&x, d, "grp", 2.0, 4.0);
    check_storage(&x, e, "", 1.0, 1.0);
    check_channel(&x, a, [3.0, 2010.0], [2.0, 2005.0]);
    check_channel(&x, b, [3.0, 14.0], [0.0, 0.0]);
    check_channel(&x, c, [0.0, 0.0], [0.0, 0.0]);
    // d0 once, d1 and d2 to two storages each; the Consume popped three.
    check_channel(&x, d, [5.0, 10.0], [3.0, 6.0]);
    check_channel(&x, e, [1.0, 1.0], [0.0, 0.0]);
    assert_eq!(shard_figure(&x, "dmq_shard_channels"), [3.0, 2.0]);
    assert_eq!(shard_figure(&x, "dmq_shard_consumers"), [0.0, 1.0]);
    check_overflow_figures(&x);

    // Removing d ends the Consume (end marker; the connection goes on).
    assert_eq!(wire.remove(&mut c1, d), OK);
    assert_eq!(wire.next_record(&mut c2), None);
    assert_eq!(wire.remove(&mut c1, e), OK);
    assert_eq!(wire.remove(&mut c1, "bad.name"), BAD_CHANNEL_NAME);
    assert_eq!(wire.get_num_connections(&mut c2), NOT_SUPPORTED);
    // An invalid command code closes its connection.
    let mut c3 = node.client();
    c3.send_raw(&99i32.to_le_bytes());
    wire.sent += 4;
    c3.expect_closed("invalid command code");

    let x = scrape_with_connections(metrics, 2.0, 1.0);
    requests[0].2 = 2.0;
    requests.extend([
        ("remove_channel", "200", 2.0),
        ("remove_channel", "409", 1.0),
        ("unsupported", "closed", 1.0),
    ]);
    check_legacy_traffic(&x, &requests, &wire);
    assert_eq!(
        storages(&x),
        BTreeSet::from([s(a), s(b), s(c)]),
        "storages after removing {d} and {e}"
    );
    for family in ["dmq_bytes", "dmq_channel_memory_ratio"] {
        for gone in [d, e] {
            assert!(
                x.matching(family, &[("channel", gone)]).is_empty(),
                "{family} still has removed channel {gone}"
            );
        }
    }
    check_storage(&x, a, "", 1.0, 5.0);
    check_storage(&x, b, "", 3.0, 14.0);
    check_storage(&x, c, "", 0.0, 0.0);
    check_channel(&x, a, [3.0, 2010.0], [2.0, 2005.0]);
    check_channel(&x, b, [3.0, 14.0], [0.0, 0.0]);
    assert_eq!(shard_figure(&x, "dmq_shard_channels"), [2.0, 1.0]);
    assert_eq!(shard_figure(&x, "dmq_shard_consumers"), [0.0, 0.0]);
    check_overflow_figures(&x);
    drop(neo);
}
