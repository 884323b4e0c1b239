//! Neo Push v3 and Pop v1 (spec 3.6, 3.7) and their statuses: Pushed, Push to
//! channels on both shards, Push Error for an invalid name or an empty value
//! (differs from the original on purpose, spec 10 Q3), Pop Popped / Empty /
//! Subscribed / Error. A refused request leaves the connection up.

use dmq_testkit::neo::{Pop, PUSHED, PUSH_ERROR};
use dmq_testkit::node::Node;
use dmq_testkit::records::{random_bytes, record};

use crate::support::names_on_each_shard;

#[test]
fn push_then_pop_in_order() {
    let node = Node::start_neo(&[]);
    let mut c = node.neo();
    for ch in names_on_each_shard("neo_fifo", 2) {
        for i in 0..20 {
            assert_eq!(c.push(&[&ch], record(i)), PUSHED, "{ch}");
        }
        for i in 0..20 {
            assert_eq!(c.pop(&ch), Pop::Popped(record(i)), "{ch}");
        }
        assert_eq!(c.pop(&ch), Pop::Empty, "{ch}");
    }
}

#[test]
fn push_to_two_channels_on_different_shards() {
    let node = Node::start_neo(&[]);
    let mut c = node.neo();
    let both = names_on_each_shard("neo_two", 1);
    assert_ne!(
        crate::support::shard_of(&both[0], dmq_testkit::node::SHARDS),
        crate::support::shard_of(&both[1], dmq_testkit::node::SHARDS)
    );
    for i in 0..10 {
        assert_eq!(c.push(&both, record(i)), PUSHED);
    }
    // Also both orders, and the same channel named twice gets it twice.
    assert_eq!(c.push(&[&both[1], &both[0]], "reversed"), PUSHED);
    let mut legacy = node.client();
    for ch in &both {
        for i in 0..10 {
            assert_eq!(c.pop(ch), Pop::Popped(record(i)), "{ch}");
        }
        assert_eq!(c.pop(ch), Pop::Popped(b"reversed".to_vec()), "{ch}");
        assert_eq!(c.pop(ch), Pop::Empty, "{ch}");
        // Legacy sees the same (empty) channel.
        assert_eq!(legacy.pop(ch), Ok(Vec::new()), "{ch}");
    }
    assert_eq!(c.push(&[&both[0], &both[0]], "twice"), PUSHED);
    assert_eq!(c.pop(&both[0]), Pop::Popped(b"twice".to_vec()));
    assert_eq!(c.pop(&both[0]), Pop::Popped(b"twice".to_vec()));
    assert_eq!(c.pop(&both[0]), Pop::Empty);
}

#[test]
fn push_error_for_an_invalid_name_and_the_connection_stays_up() {
    let node = Node::start_neo(&[]);
    let mut c = node.neo();
    let good = names_on_each_shard("neo_good", 1);
    let bad: [&[u8]; 6] = [b"", b"bad.name", b"a@b", b"sp ace", b"sl/ash", b"\xC3\xA9"];
    for name in bad {
        assert_eq!(c.push(&[name], "v"), PUSH_ERROR, "{name:?}");
        // With good channels around it: nothing is pushed anywhere.
        assert_eq!(
            c.push(&[good[0].as_bytes(), name, good[1].as_bytes()], "v"),
            PUSH_ERROR,
            "{name:?}"
        );
    }
    for ch in &good {
        assert_eq!(c.pop(ch), Pop::Empty, "{ch}: nothing pushed");
    }
    // The connection serves on.
    assert_eq!(c.push(&good, "after"), PUSHED);
    for ch in &good {
        assert_eq!(c.pop(ch), Pop::Popped(b"after".to_vec()), "{ch}");
    }
    // The admin socket lists no storage with a bad name.
    let names: Vec<String> = node
        .admin()
        .channels()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let mut expected = good.clone();
    expected.sort();
    assert_eq!(names, expected);
}

#[test]
fn push_error_for_an_empty_value_and_the_connection_stays_up() {
    let node = Node::start_neo(&[]);
    let mut c = node.neo();
    let both = names_on_each_shard("neo_empty", 1);
    assert_eq!(c.push(&[&both[0]], ""), PUSH_ERROR);
    assert_eq!(c.push(&both, ""), PUSH_ERROR);
    assert_eq!(c.push(&both, "x"), PUSHED);
    for ch in &both {
        assert_eq!(c.pop(ch), Pop::Popped(b"x".to_vec()), "{ch}");
        assert_eq!(
            c.pop(ch),
            Pop::Empty,
            "{ch}: the empty value was not stored"
        );
    }
}

#[test]
fn pop_on_a_missing_channel_is_empty_and_creates_it() {
    let node = Node::start_neo(&[]);
    let mut c = node.neo();
    let mut admin = node.admin();
    for ch in names_on_each_shard("neo_missing", 1) {
        assert_eq!(admin.storage(&ch), None, "{ch} does not exist yet");
        assert_eq!(c.pop(&ch), Pop::Empty, "{ch}");
        assert_eq!(admin.storage(&ch), Some([0, 0, 0, 0]), "{ch} now exists");
        // Legacy Pop, which answers 500 for a missing channel, sees it too.
        assert_eq!(node.client().pop(&ch), Ok(Vec::new()), "{ch}");
    }
}

#[test]
fn pop_is_subscribed_after_a_consume() {
    let node = Node::start_neo(&["performance.write_flush_ms=1"]);
    let mut c = node.neo();
    for ch in names_on_each_shard("neo_sub", 1) {
        assert_eq!(c.push(&[&ch], "before"), PUSHED);
        let mut consumer = node.neo();
        let id = consumer.consume(&ch, "");
        assert_eq!(c.pop(&ch), Pop::Subscribed, "{ch}");
        // The consumer took over the record pushed before it started.
        assert_eq!(consumer.next_records(id), vec![b"before".to_vec()]);
        assert!(consumer.stop_consume(id).is_empty());
        // Subscriptions are permanent: still Subscribed with no consumer.
        assert_eq!(c.pop(&ch), Pop::Subscribed, "{ch}");
        // Also with a named subscriber.
        let id = consumer.consume(&ch, "named");
        assert_eq!(c.pop(&ch), Pop::Subscribed, "{ch}");
        assert!(consumer.stop_consume(id).is_empty());
    }
}

#[test]
fn pop_error_for_an_invalid_name_and_the_connection_stays_up() {
    let node = Node::start_neo(&[]);
    let mut c = node.neo();
    let bad: [&[u8]; 5] = [b"", b"bad.name", b"a@b", b"sp ace", b"\xFF"];
    for name in bad {
        assert_eq!(c.pop(name), Pop::Error, "{name:?}");
    }
    assert!(node.admin().channels().is_empty(), "no channel was created");
    assert_eq!(c.push(&["fine"], "v"), PUSHED);
    assert_eq!(c.pop("fine"), Pop::Popped(b"v".to_vec()));
}

#[test]
fn pipelined_pushes_and_pops_on_both_shards_keep_order() {
    let node = Node::start_neo(&[]);
    let mut c = node.neo();
    let both = names_on_each_shard("neo_pipe", 1);
    let mut ids = Vec::new();
    for i in 0..500 {
        ids.push(c.queue_push(&[&both[i % 2]], record(i)));
    }
    c.flush();
    for id in ids {
        assert_eq!(c.read_push(id), PUSHED);
    }
    let mut ids = Vec::new();
    for i in 0..500 {
        ids.push((i, c.queue_pop(&both[i % 2])));
    }
    c.flush();
    for (i, id) in ids {
        assert_eq!(c.read_pop(id), Pop::Popped(record(i)), "record {i}");
    }
}

#[test]
fn large_value_round_trips() {
    let node = Node::start_neo(&["server.channel_size_limit=4194304"]);
    let mut c = node.neo();
    let value = random_bytes(&mut fastrand::Rng::with_seed(7), 1_000_000);
    for ch in names_on_each_shard("neo_large", 1) {
        assert_eq!(c.push(&[&ch], &value), PUSHED);
        assert_eq!(c.pop(&ch), Pop::Popped(value.clone()), "{ch}");
    }
}
