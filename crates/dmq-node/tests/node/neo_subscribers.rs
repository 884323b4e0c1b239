//! The dmqtest subscriber sequence (spec 8.1 `SubscribeDmqTestCase`, 4.2) with
//! neo consumers, for the writers legacy Push, PushMulti, neo Push and neo
//! Push to two channels:
//! 1. write 10 000 records; 2. a neo Pop returns record 0;
//! 3. start consumers sub1, sub1, sub2 on each channel;
//! 4. a neo Pop answers Subscribed;
//! 5. the two sub1 consumers together receive exactly the other 9 999 records,
//!    sub2 none (sub1 took over the backlog, sub2 started empty);
//! 6. write 10 000 again: sub1 (both consumers together) and sub2 each
//!    receive all of them; 7. stop.

use std::time::Duration;

use dmq_testkit::neo::{ConsumeEvent, NeoClient, Pop};
use dmq_testkit::node::Node;
use dmq_testkit::records::{assert_records, record};
use dmq_testkit::writers::{write, Writer, RECORDS};

use crate::support::names_on_each_shard;

struct Consumer {
    channel: usize,
    subscriber: &'static str,
    id: u64,
    got: Vec<Vec<u8>>,
}

/// Takes Records for any consumer (acknowledging each) until `done` holds;
/// then until nothing more comes for a while.
fn collect(c: &mut NeoClient, consumers: &mut [Consumer], done: impl Fn(&[Consumer]) -> bool) {
    // Bounded: each round takes one message (or ends after a quiet period).
    let mut settled = false;
    for _ in 0..1_000_000 {
        let timeout = if done(consumers) {
            settled = true;
            Duration::from_millis(300)
        } else {
            dmq_testkit::IO_TIMEOUT
        };
        let Some((id, payload)) = c.next_any(timeout) else {
            assert!(settled, "no Records within {timeout:?}");
            return;
        };
        let consumer = consumers
            .iter_mut()
            .find(|k| k.id == id)
            .unwrap_or_else(|| panic!("a message for unknown request {id}"));
        match ConsumeEvent::parse(&payload) {
            ConsumeEvent::Records { records, .. } => {
                consumer.got.extend(records);
                c.send_continue(id);
            }
            other => panic!("{} consumer {id}: {other:?}", consumer.subscriber),
        }
    }
    panic!("more than 1 000 000 messages");
}

/// The records of `subscriber` on channel `k`, over all its consumers.
fn received(consumers: &[Consumer], k: usize, subscriber: &str) -> Vec<Vec<u8>> {
    consumers
        .iter()
        .filter(|c| c.channel == k && c.subscriber == subscriber)
        .flat_map(|c| c.got.iter().cloned())
        .collect()
}

fn sorted(mut v: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    v.sort();
    v
}

fn run(writer: Writer) {
    let node = Node::start_neo(&[
        "performance.write_flush_ms=1",
        "server.channel_size_limit=4194304",
    ]);
    let channels = writer.channels(&names_on_each_shard("test_channel", 1));

    // 1, 2.
    write(&node, writer, &channels, RECORDS);
    let mut popper = node.neo();
    for ch in &channels {
        assert_eq!(popper.pop(ch), Pop::Popped(record(0)), "{ch}");
    }

    // 3: one at a time, so sub1 subscribes first and takes the backlog.
    let mut c = node.neo();
    let mut consumers = Vec::new();
    for (k, ch) in channels.iter().enumerate() {
        for subscriber in ["sub1", "sub1", "sub2"] {
            let id = c.consume(ch, subscriber);
            consumers.push(Consumer {
                channel: k,
                subscriber,
                id,
                got: Vec::new(),
            });
        }
    }

    // 4.
    for ch in &channels {
        assert_eq!(popper.pop(ch), Pop::Subscribed, "{ch}");
    }

    // 5.
    let n = channels.len();
    collect(&mut c, &mut consumers, |cs| {
        (0..n).all(|k| received(cs, k, "sub1").len() >= RECORDS - 1)
    });
    let rest: Vec<_> = (1..RECORDS).map(record).collect();
    for (k, ch) in channels.iter().enumerate() {
        assert_eq!(
            sorted(received(&consumers, k, "sub1")),
            rest,
            "{ch}: sub1 gets records 1..10000 exactly once"
        );
        assert!(
            received(&consumers, k, "sub2").is_empty(),
            "{ch}: sub2 subscribed after those records were written"
        );
    }
    for k in consumers.iter_mut() {
        k.got.clear();
    }

    // 6.
    write(&node, writer, &channels, RECORDS);
    collect(&mut c, &mut consumers, |cs| {
        (0..n).all(|k| {
            received(cs, k, "sub1").len() >= RECORDS && received(cs, k, "sub2").len() >= RECORDS
        })
    });
    let all: Vec<_> = (0..RECORDS).map(record).collect();
    for (k, ch) in channels.iter().enumerate() {
        assert_eq!(
            sorted(received(&consumers, k, "sub1")),
            all,
            "{ch}: sub1 gets every record once"
        );
        // sub2 has one consumer: in order.
        assert_records(
            &received(&consumers, k, "sub2"),
            RECORDS,
            &format!("{ch} sub2"),
        );
    }
    // The admin socket shows the subscriber storages, empty.
    let mut admin = node.admin();
    for ch in &channels {
        assert_eq!(admin.storage(ch), None, "{ch}: no unsubscribed storage");
        for sub in ["sub1", "sub2"] {
            let name = format!("{sub}@{ch}");
            assert_eq!(admin.storage(&name).map(|f| f[0]), Some(0), "{name}");
        }
    }

    // 7.
    for k in &consumers {
        assert!(c.stop_consume(k.id).is_empty(), "consumer {}", k.id);
    }
}

#[test]
fn subscribers_push() {
    run(Writer::Push);
}

#[test]
fn subscribers_push_multi() {
    run(Writer::PushMulti);
}

#[test]
fn subscribers_neo_push() {
    run(Writer::NeoPush);
}

#[test]
fn subscribers_neo_push_multi() {
    run(Writer::NeoPushMulti);
}
