//! Against a real node: Produce stores every record it counts, Consume (legacy
//! and neo) takes exactly the prefilled records, and fanout delivers each pushed
//! record once to every subscriber.

use crate::support::{local, run_report, workload_node};

#[test]
fn produce_is_confirmed_and_consume_takes_the_prefill() {
    let node = workload_node(&[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let addr = local(node.port());
    // More channels than connections: each connection rotates over its share.
    let produce = run_report(
        dir.path(),
        "produce",
        &format!(
            "produce --addr {addr} --connections 3 --channels 8 --produce-run 100 --count 10000"
        ),
    );
    assert_eq!((produce.records, produce.bytes), (10_000, 1_000_000));
    assert!(produce.latency.is_none());
    // What Produce counted is stored: popping finds exactly that many.
    let pop = run_report(
        dir.path(),
        "pop",
        &format!("pop --addr {addr} --connections 8 --in-flight 16 --count 20000"),
    );
    assert_eq!(pop.records, 10_000);

    let consume = run_report(
        dir.path(),
        "consume",
        &format!("consume --addr {addr} --connections 2 --count 30000"),
    );
    assert_eq!((consume.records, consume.bytes), (30_000, 3_000_000));
    assert!(consume.extra.contains_key("prefill_s"));

    let neo = local(node.neo_port());
    let neo_consume = run_report(
        dir.path(),
        "neo-consume",
        &format!("neo-consume --addr {addr} --neo-addr {neo} --connections 2 --count 30000"),
    );
    assert_eq!(neo_consume.records, 30_000);
}

#[test]
fn fanout_delivers_every_record_to_every_subscriber() {
    // A short flush interval keeps the last, partial batches quick.
    let node = workload_node(&["performance.write_flush_ms=5"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let addr = local(node.port());
    let neo = local(node.neo_port());
    let fanout = run_report(
        dir.path(),
        "fanout",
        &format!(
            "fanout --addr {addr} --neo-addr {neo} --connections 2 --in-flight 8 \
             --subscribers 3 --count 3000"
        ),
    );
    assert_eq!(fanout.extra.get("pushed_records"), Some(&3000.0));
    assert_eq!(fanout.records, 9000);
    assert_eq!(fanout.subscribers, Some(3));
    // End-to-end latency from the stamp in each record.
    assert_eq!(fanout.latency.as_ref().map(|l| l.count), Some(9000));
}
