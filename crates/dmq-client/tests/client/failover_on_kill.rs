//! Killing one node (SIGKILL) while records are being pushed makes the pushes fail
//! over to the other nodes, and no acknowledged record is lost: every one is found
//! on the surviving nodes afterwards.

use std::sync::mpsc;

use dmq_client::{blocking, Error, Protocol, RetryPolicy};
use dmq_testkit::node::nodes;
use dmq_testkit::records::record;

use crate::support::{addrs, config, counts, drain_node, NodeExt};

fn failover(protocol: Protocol, retry: RetryPolicy) {
    let mut nodes = nodes(3);
    let client_config = dmq_client::ClientConfig {
        retry,
        ..config(protocol)
    };
    let client = blocking::Client::new(addrs(&nodes), client_config).expect("client");
    let channel = "failover";
    let kill_after = 300;
    let after_kill_wanted = 900;
    let max_pushes = 200_000;

    // The kill happens on another thread while this one keeps pushing.
    let victim_pid = nodes[1].pid();
    let (go, kill_now) = mpsc::channel::<()>();
    let (killed_tx, killed) = mpsc::channel::<()>();
    let killer = std::thread::spawn(move || {
        if kill_now.recv().is_ok() {
            // SAFETY: kill(2) on the PID of a child of this process, not yet reaped
            // (the main thread reaps it only after this thread is joined).
            let rc = unsafe { libc::kill(victim_pid as i32, libc::SIGKILL) };
            assert_eq!(rc, 0);
            // kill(2) returns before the process is gone: wait until it is a zombie.
            let stat = format!("/proc/{victim_pid}/stat");
            for _ in 0..2000 {
                match std::fs::read_to_string(&stat) {
                    Ok(text) if !text.contains(") Z ") => {
                        std::thread::sleep(std::time::Duration::from_millis(5))
                    }
                    _ => break,
                }
            }
            let _ = killed_tx.send(());
        }
    });

    // Which node acknowledged each record.
    let mut acked: Vec<(Vec<u8>, usize)> = Vec::new();
    let mut unknown = Vec::new();
    let mut maybe_duplicated = 0;
    let mut after_kill_by_node = [0usize; 3];
    let mut kill_seen = false;
    let mut after_kill = 0;
    // Bounded: stops `after_kill_wanted` pushes after the kill was confirmed, or
    // fails at `max_pushes`.
    for i in 0..max_pushes {
        if kill_seen && after_kill >= after_kill_wanted {
            break;
        }
        if i == kill_after {
            go.send(()).expect("killer thread");
        }
        if !kill_seen && killed.try_recv().is_ok() {
            kill_seen = true;
        }
        if kill_seen {
            after_kill += 1;
        }
        match client.push(channel, &record(i)) {
            Ok(pushed) => {
                acked.push((record(i), pushed.node));
                if pushed.maybe_duplicated {
                    maybe_duplicated += 1;
                }
                if kill_seen {
                    after_kill_by_node[pushed.node] += 1;
                }
            }
            // Only a push caught by the kill after it was sent may end like this,
            // and only under at-most-once.
            Err(Error::OutcomeUnknown { node, .. }) if retry == RetryPolicy::AtMostOnce => {
                assert!(
                    nodes[1].is_named(&node),
                    "outcome unknown on a live node: {node}"
                );
                unknown.push(record(i));
            }
            Err(e) => panic!("push {i}: {e}"),
        }
    }
    assert!(
        kill_seen,
        "the kill was not confirmed within {max_pushes} pushes"
    );
    killer.join().expect("killer");
    nodes[1].kill(); // reaps it (already dead)
    assert!(kill_seen, "the kill happened during the run");
    assert!(
        unknown.len() <= 2,
        "at most the pushes in flight: {unknown:?}"
    );
    assert_eq!(after_kill_by_node[1], 0, "acknowledged by a dead node");
    assert!(
        after_kill_by_node[0] > 0 && after_kill_by_node[2] > 0,
        "pushes went on over both survivors: {after_kill_by_node:?}"
    );

    // Everything on the survivors, read over the legacy port.
    let checker = blocking::Client::new(addrs(&nodes), config(Protocol::Legacy)).expect("client");
    let mut found = Vec::new();
    for node in [0, 2] {
        found.extend(drain_node(&checker, node, channel, max_pushes + 1));
    }
    let found = counts(found);
    // Every record a surviving node acknowledged is there. (What the killed node
    // acknowledged before it died was in its memory only and died with it: the
    // node's own guarantee, README "Delivery guarantees".)
    for (r, node) in &acked {
        if *node != 1 {
            assert!(
                found.contains_key(r),
                "acknowledged by node {node}, lost: {r:?}"
            );
        }
    }
    // Nothing that was not pushed, and a duplicate only where the client said so.
    for (r, n) in &found {
        let pushed = acked.iter().any(|(a, _)| a == r) || unknown.contains(r);
        assert!(pushed, "{r:?} was never pushed");
        if *n > 1 {
            assert!(
                retry == RetryPolicy::AtLeastOnce && maybe_duplicated > 0,
                "{r:?} stored twice without the client saying so"
            );
        }
    }
}

#[test]
fn legacy_push_fails_over_at_most_once() {
    failover(Protocol::Legacy, RetryPolicy::AtMostOnce);
}

#[test]
fn neo_push_fails_over_at_least_once() {
    failover(Protocol::Neo, RetryPolicy::AtLeastOnce);
}
