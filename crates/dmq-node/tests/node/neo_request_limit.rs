//! At most 5000 requests may be active on one neo connection (spec 3.1): 5000
//! running Consumes are fine, one more request closes the connection. Other
//! connections are unaffected. All Consumes use one channel and the default
//! subscriber, so they share one small ring.

use dmq_proto::neo::ConsumeStatus;
use dmq_testkit::legacy::OK;
use dmq_testkit::neo::{ConsumeEvent, NeoClient, Pop, PUSHED};
use dmq_testkit::node::Node;

const LIMIT: usize = 5000;

fn node() -> Node {
    Node::start_neo(&[
        "server.channel_size_limit=1024",
        "performance.write_flush_ms=1",
    ])
}

/// Starts `n` Consumes of `ch` in one write and checks each is Started.
fn start_consumes(c: &mut NeoClient, ch: &str, n: usize) -> Vec<u64> {
    let ids: Vec<u64> = (0..n).map(|_| c.queue_consume(ch, "")).collect();
    c.flush();
    for &id in &ids {
        assert_eq!(
            c.read_consume_start(id),
            ConsumeStatus::Started,
            "Consume {id}"
        );
    }
    ids
}

#[test]
fn five_thousand_consumes_are_fine_one_more_closes() {
    let node = node();
    let mut c = node.neo();
    let ids = start_consumes(&mut c, "limited", LIMIT);

    // They are real consumers: a pushed record reaches exactly one of them.
    let mut legacy = node.client();
    assert_eq!(legacy.push("limited", "hello"), OK);
    let (got_id, payload) = c
        .next_any(dmq_testkit::IO_TIMEOUT)
        .expect("one consumer receives the record");
    assert!(ids.contains(&got_id));
    assert_eq!(
        ConsumeEvent::parse(&payload),
        ConsumeEvent::Records {
            batch_len: 8 + 5,
            records: vec![b"hello".to_vec()]
        }
    );
    c.send_continue(got_id);

    // Stopping one frees its slot: one new request fits again.
    assert!(c.stop_consume(ids[0]).is_empty());
    let again = start_consumes(&mut c, "limited", 1);
    assert_eq!(again.len(), 1);

    // 5000 active again: the next request of any kind closes the connection.
    let mut other = node.neo();
    let id = c.queue_pop("limited");
    c.flush();
    let seen = c.drain_until_closed("request 5001");
    assert!(
        seen.iter().all(|(_, body)| body[..8] != id.to_le_bytes()),
        "request 5001 got an answer: {seen:?}"
    );
    // The other connection still works, and the closed connection's
    // Consumes are gone: the channel serves its (default) subscriber still.
    assert_eq!(other.push(&["limited"], "after"), PUSHED);
    assert_eq!(other.pop("limited"), Pop::Subscribed);
    let id = other.consume("limited", "");
    assert_eq!(other.next_records(id), vec![b"after".to_vec()]);
    other.send_continue(id);
    assert!(other.stop_consume(id).is_empty());
}

#[test]
fn five_thousand_and_one_consumes_in_one_write_close() {
    let node = node();
    let mut c = node.neo();
    for _ in 0..=LIMIT {
        c.queue_consume("limited", "");
    }
    c.flush();
    // The first 5000 may be answered before the close; request 5001 never.
    let seen = c.drain_until_closed("5001 Consumes");
    let last = (LIMIT as u64 + 1).to_le_bytes();
    assert!(
        seen.iter().all(|(_, body)| body[..8] != last),
        "request 5001 got an answer"
    );
    assert!(seen.len() <= 2 * LIMIT);
    assert_eq!(node.neo().push(&["limited"], "v"), PUSHED);
}

#[test]
fn finished_requests_do_not_count() {
    // 1 MiB rings (the harness default): 5000 records fit.
    let node = Node::start_neo(&[]);
    let mut c = node.neo();
    // 3 × 5000 Push/Pop requests, each finished before the next batch: the
    // limit is on active requests, not on requests made.
    for round in 0..3 {
        let ids: Vec<u64> = (0..LIMIT)
            .map(|i| c.queue_push(&["counted"], format!("{round}-{i}")))
            .collect();
        c.flush();
        for id in ids {
            assert_eq!(c.read_push(id), PUSHED);
        }
        let ids: Vec<u64> = (0..LIMIT).map(|_| c.queue_pop("counted")).collect();
        c.flush();
        for (i, id) in ids.into_iter().enumerate() {
            assert_eq!(
                c.read_pop(id),
                Pop::Popped(format!("{round}-{i}").into_bytes())
            );
        }
    }
}
