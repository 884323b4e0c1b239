//! Against a real node: every record pushed (legacy and neo, closed and open
//! loop) is popped again, and the counts, bytes and latencies add up.

use dmq_testkit::node::NodeOptions;

use crate::support::{local, run_report, workload_node};

#[test]
fn legacy_push_then_pop_moves_every_record() {
    let node = workload_node(&[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let addr = local(node.port());
    let pid = node.pid();
    let load = format!("--addr {addr} --connections 4 --in-flight 8 --count 20000");
    let push = run_report(
        dir.path(),
        "push",
        &format!("push {load} --size 100 --server-pid {pid}"),
    );
    assert_eq!((push.records, push.bytes), (20_000, 2_000_000));
    assert_eq!((push.error_count, push.empty_count), (0, 0));
    let latency = push.latency.as_ref().expect("latency");
    assert_eq!(latency.count, 20_000);
    assert!(latency.p50_us <= latency.p99_us && latency.p99_us <= latency.max_us);
    let server = push.server.as_ref().expect("server stats");
    assert!(server.rss_end_bytes > 0 && server.cpu_us_per_record.is_some());

    let pop = run_report(dir.path(), "pop", &format!("pop {load}"));
    assert_eq!((pop.records, pop.bytes), (20_000, 2_000_000));
    // Drained: one more pop on each channel finds nothing.
    let empty = run_report(
        dir.path(),
        "empty",
        &format!("pop --addr {addr} --connections 4 --count 1"),
    );
    assert_eq!(empty.records, 0);
    assert_eq!(empty.empty_count, 4);
}

#[test]
fn neo_push_then_pop_and_open_loop() {
    let node = workload_node(&[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let addr = local(node.port());
    let neo = local(node.neo_port());
    let load = format!(
        "--addr {addr} --neo-addr {neo} --connections 2 --in-flight 16 --count 5000 --channels 3"
    );
    let push = run_report(
        dir.path(),
        "neo-push",
        &format!("neo-push {load} --size-dist uniform:10:200"),
    );
    assert_eq!(push.records, 5000);
    assert!(push.bytes >= 5000 * 10 && push.bytes <= 5000 * 200);
    let pop = run_report(dir.path(), "neo-pop", &format!("neo-pop {load}"));
    assert_eq!((pop.records, pop.bytes), (5000, push.bytes));

    // Open loop: 2000 requests at 4000/s take about half a second and are all
    // answered; latency is measured from the intended send times.
    let open = run_report(
        dir.path(),
        "open",
        &format!("push-pop --addr {addr} --connections 2 --in-flight 32 --rate 4000 --count 2000"),
    );
    assert_eq!(open.loop_kind, "open");
    assert_eq!(open.requests, 2000);
    assert_eq!(open.records + open.empty_count, 2000);
    assert_eq!(open.latency.as_ref().map(|l| l.count), Some(2000));
    assert!(
        open.elapsed_s > 0.3,
        "2000 at 4000/s ran in {} s",
        open.elapsed_s
    );
}

#[test]
fn duration_runs_report_a_timeline_and_ping_round_trips() {
    let node = NodeOptions::for_clients().start();
    let dir = tempfile::tempdir().expect("tempdir");
    let addr = local(node.port());
    let ping = run_report(
        dir.path(),
        "ping",
        &format!("ping --addr {addr} --duration 1.2 --warmup 0.2"),
    );
    assert!(ping.records > 0 && ping.error_count == 0);
    assert_eq!(ping.bytes, 0);
    // The window closes no earlier than asked (no upper bound: no timing
    // assertions in tests).
    assert!(ping.elapsed_s >= 1.2, "{}", ping.elapsed_s);
    assert!(!ping.timeline.is_empty());
    assert_eq!(
        ping.latency.as_ref().map(|l| l.count),
        Some(ping.records),
        "one latency per round trip in the window"
    );
}
