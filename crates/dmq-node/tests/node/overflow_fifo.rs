//! The disk overflow keeps every storage FIFO: a record that does not fit its
//! memory ring is written to `data_dir/overflow-<shard>of<nshards>-<seq>.dat`
//! and acknowledged only then (a Push never gets 407 for a full ring); once a
//! storage has records on disk, new records follow them there until it drains,
//! so Pop (legacy and neo, one by one or pipelined) and Consume read back in
//! exact push order, and Pop never answers "empty" while records remain on
//! disk. Every subscriber storage gets every record, each its own FIFO, also
//! when spilled; admin `channels` reports the records and bytes in memory and
//! in overflow of each storage.

use std::collections::VecDeque;
use std::path::Path;

use dmq_testkit::files::{data_dir_arg, overflow_files, parse_overflow_name};
use dmq_testkit::legacy::{pop_pipelined, pop_until_empty, push_pipelined, ERROR, OK};
use dmq_testkit::neo::{self, Pop, PUSHED};
use dmq_testkit::node::{Node, SHARDS};
use dmq_testkit::records::{assert_same_records, padded_record, padded_records};

use crate::support::names_on_each_shard;

/// Ring bytes per storage.
const RING: u64 = 4096;
/// Payload bytes per record: 8 + 100 bytes of ring each.
const LEN: usize = 100;
/// Records that fit one ring.
const RING_RECORDS: usize = (RING / (8 + LEN as u64)) as usize;
/// Ten rings' worth of records.
const TEN_RINGS: usize = 10 * RING_RECORDS;

/// A node with [`RING`]-byte rings whose data directory is `data`.
fn start(data: &Path, extra: &[&str]) -> Node {
    let data_dir = data_dir_arg(data);
    let ring = format!("server.channel_size_limit={RING}");
    let mut args = vec![data_dir.as_str(), ring.as_str()];
    args.extend_from_slice(extra);
    Node::start(&args)
}

/// As [`start`], with the neo port and 1 ms Consume batches.
fn start_neo(data: &Path) -> Node {
    let data_dir = data_dir_arg(data);
    let ring = format!("server.channel_size_limit={RING}");
    Node::start_neo(&[&data_dir, &ring, "performance.write_flush_ms=1"])
}

/// Asserts that storage `name` holds `records` records of `LEN` bytes, some of
/// them on disk, and no more in memory than its ring holds.
fn assert_spilled(node: &Node, name: &str, records: u64) {
    let figures = node
        .admin()
        .storage(name)
        .unwrap_or_else(|| panic!("admin channels does not list {name}"));
    let [in_memory, memory_bytes, on_disk, disk_bytes] = figures;
    assert_eq!(
        in_memory + on_disk,
        records,
        "{name}: records in memory + overflow ({figures:?})"
    );
    assert!(on_disk > 0, "{name}: nothing in the overflow ({figures:?})");
    assert!(
        memory_bytes <= RING,
        "{name}: more bytes in memory than the ring holds ({figures:?})"
    );
    assert!(
        memory_bytes >= in_memory * LEN as u64,
        "{name}: bytes in memory below the payloads ({figures:?})"
    );
    assert!(
        disk_bytes >= on_disk * LEN as u64,
        "{name}: bytes in overflow below the payloads ({figures:?})"
    );
}

/// Asserts that storage `name` is empty or gone.
fn assert_drained(node: &Node, name: &str) {
    if let Some(figures) = node.admin().storage(name) {
        assert_eq!(figures, [0; 4], "{name}: empty after reading everything");
    }
}

/// Asserts that the overflow files in `data` are named
/// `overflow-<shard>of<SHARDS>-<seq>.dat` and that there is at least one.
fn assert_overflow_files_named(data: &Path) {
    let files = overflow_files(data);
    assert!(!files.is_empty(), "no overflow-*.dat in {}", data.display());
    for (name, _) in &files {
        let (shard, nshards, _seq) = parse_overflow_name(name)
            .unwrap_or_else(|| panic!("{name}: not overflow-<shard>of<nshards>-<seq>.dat"));
        assert_eq!(nshards, SHARDS as u64, "{name}: number of shards");
        assert!(shard <= nshards, "{name}: shard number");
    }
}

#[test]
fn pop_reads_ten_rings_back_in_push_order() {
    let data = tempfile::tempdir().expect("tempdir");
    let node = start(data.path(), &[]);
    let mut client = node.client();
    for ch in names_on_each_shard("spill", 1) {
        let records = padded_records(0..TEN_RINGS, LEN);
        // One by one: each push is acknowledged with 200, none with 407.
        for (i, r) in records.iter().enumerate() {
            assert_eq!(client.push(&ch, r), OK, "{ch}: push {i}");
        }
        assert_spilled(&node, &ch, TEN_RINGS as u64);
        assert_overflow_files_named(data.path());

        let got = pop_until_empty(&mut client, &ch, 2 * TEN_RINGS);
        assert_same_records(&got, &records, &ch);
        assert_eq!(client.pop(&ch), Ok(Vec::new()), "{ch}: still empty");
        assert_drained(&node, &ch);
    }
}

#[test]
fn interleaved_pushes_and_pops_stay_fifo() {
    // Random runs of pushes and pops against a queue model: the ring fills,
    // spills, partly drains while more records arrive behind those on disk.
    let data = tempfile::tempdir().expect("tempdir");
    let node = start(data.path(), &[]);
    let mut client = node.client();
    let mut rng = fastrand::Rng::with_seed(0x0f1f0);
    for ch in names_on_each_shard("interleave", 1) {
        let mut model = VecDeque::new();
        let mut next = 0;
        for round in 0..40 {
            // At least one push: a legacy Pop of a channel never pushed to
            // answers 500.
            for _ in 0..1 + rng.usize(..4 * RING_RECORDS) {
                let r = padded_record(next, LEN);
                next += 1;
                assert_eq!(client.push(&ch, &r), OK, "{ch}: round {round}: push");
                model.push_back(r);
            }
            for _ in 0..rng.usize(..4 * RING_RECORDS) {
                let expected = model.pop_front().unwrap_or_default();
                let got = client.pop(&ch).unwrap_or_else(|s| panic!("{ch}: Pop {s}"));
                assert_eq!(
                    String::from_utf8_lossy(&got),
                    String::from_utf8_lossy(&expected),
                    "{ch}: round {round}: pop ({} left in the model)",
                    model.len()
                );
            }
        }
        let rest: Vec<Vec<u8>> = model.into_iter().collect();
        let got = pop_until_empty(&mut client, &ch, rest.len() + 1);
        assert_same_records(&got, &rest, &format!("{ch}: the rest"));
        assert_drained(&node, &ch);
    }
}

#[test]
fn pipelined_pushes_and_pops_through_the_overflow() {
    const N: usize = 2000;
    let data = tempfile::tempdir().expect("tempdir");
    let node = start(data.path(), &[]);
    let names = names_on_each_shard("pipelined", 1);
    let records = padded_records(0..N, LEN);
    let mut client = node.client();

    // Both channels (one per shard) in the same pipelines, interleaved.
    for chunk in records.chunks(250) {
        for r in chunk {
            for ch in &names {
                client.queue_push(ch, r);
            }
        }
        client.flush();
        for _ in 0..chunk.len() * names.len() {
            assert_eq!(client.read_status(), OK, "a pipelined push");
        }
    }
    for ch in &names {
        assert_spilled(&node, ch, N as u64);
    }

    // Pipelined Pops: each waits for its record from disk, none says empty.
    for (n, chunk) in records.chunks(250).enumerate() {
        for _ in chunk {
            for ch in &names {
                client.queue_pop(ch);
            }
        }
        client.flush();
        for (k, expected) in chunk.iter().enumerate() {
            for ch in &names {
                let got = client
                    .read_pop_reply()
                    .unwrap_or_else(|s| panic!("{ch}: Pop {s}"));
                assert_eq!(
                    String::from_utf8_lossy(&got),
                    String::from_utf8_lossy(expected),
                    "{ch}: pipelined pop {}",
                    n * 250 + k
                );
            }
        }
    }
    for ch in &names {
        assert_eq!(client.pop(ch), Ok(Vec::new()), "{ch}: empty at the end");
        assert_drained(&node, ch);
    }
}

#[test]
fn push_multi_spills_each_channel_in_order() {
    const N: usize = 1000;
    let data = tempfile::tempdir().expect("tempdir");
    let node = start(data.path(), &[]);
    let names = names_on_each_shard("multi", 1);
    let records = padded_records(0..N, LEN);
    let mut client = node.client();
    for (i, r) in records.iter().enumerate() {
        assert_eq!(client.push_multi(&names, r), OK, "PushMulti {i}");
    }
    for ch in &names {
        assert_spilled(&node, ch, N as u64);
        let got = pop_pipelined(&mut client, ch, N);
        assert_same_records(&got, &records, ch);
        assert_eq!(client.pop(ch), Ok(Vec::new()), "{ch}: empty at the end");
    }
}

#[test]
fn neo_push_and_pop_through_the_overflow() {
    const N: usize = 1000;
    let data = tempfile::tempdir().expect("tempdir");
    let node = start_neo(data.path());
    let names = names_on_each_shard("neo_spill", 1);
    let records = padded_records(0..N, LEN);
    let mut c = node.neo();

    // One channel per Push, pipelined; then one Push naming both channels.
    for ch in &names {
        for chunk in records.chunks(200) {
            let ids: Vec<_> = chunk.iter().map(|r| c.queue_push(&[ch], r)).collect();
            c.flush();
            for id in ids {
                assert_eq!(c.read_push(id), PUSHED, "{ch}: Push {id}");
            }
        }
    }
    let more = padded_records(N..2 * N, LEN);
    for chunk in more.chunks(200) {
        let ids: Vec<_> = chunk.iter().map(|r| c.queue_push(&names, r)).collect();
        c.flush();
        for id in ids {
            assert_eq!(c.read_push(id), PUSHED, "Push {id} to both channels");
        }
    }
    let all = padded_records(0..2 * N, LEN);
    for ch in &names {
        assert_spilled(&node, ch, 2 * N as u64);
        for (n, chunk) in all.chunks(200).enumerate() {
            let ids: Vec<_> = chunk.iter().map(|_| c.queue_pop(ch)).collect();
            c.flush();
            for (k, (id, expected)) in ids.into_iter().zip(chunk).enumerate() {
                assert_eq!(
                    c.read_pop(id),
                    Pop::Popped(expected.clone()),
                    "{ch}: neo pop {}",
                    n * 200 + k
                );
            }
        }
        assert_eq!(c.pop(ch), Pop::Empty, "{ch}: empty at the end");
        assert_drained(&node, ch);
    }
}

#[test]
fn every_subscriber_gets_every_record_when_spilled() {
    const N: usize = 1000;
    let data = tempfile::tempdir().expect("tempdir");
    let node = start_neo(data.path());
    // The default subscriber (read by a legacy Consume) and two named ones
    // (read by neo Consumes).
    let subscribers = ["", "s1", "s2"];
    let records = padded_records(0..N, LEN);
    for ch in names_on_each_shard("fanout", 1) {
        for sub in subscribers {
            neo::subscribe(node.neo_addr(), &ch, sub);
        }
        let mut pusher = node.client();
        push_pipelined(&mut pusher, &ch, &records);
        assert_eq!(pusher.pop(&ch), Err(ERROR), "{ch} is subscribed");
        for sub in subscribers {
            assert_spilled(&node, &format!("{sub}@{ch}"), N as u64);
        }
        assert_eq!(node.admin().storage(&ch), None, "{ch}: no plain storage");

        let mut legacy = node.client();
        assert_eq!(legacy.consume(&ch), OK, "{ch}: legacy Consume");
        let got: Vec<Vec<u8>> = (0..N)
            .map(|i| {
                legacy
                    .next_record()
                    .unwrap_or_else(|| panic!("{ch}: the stream ended at record {i}"))
            })
            .collect();
        assert_same_records(&got, &records, &format!("@{ch}"));

        let mut c = node.neo();
        for sub in &subscribers[1..] {
            let id = c.consume(&ch, sub);
            let got = neo::receive(&mut c, id, N);
            assert_same_records(&got, &records, &format!("{sub}@{ch}"));
            assert!(c.stop_consume(id).is_empty(), "{sub}@{ch}: nothing more");
        }
        for sub in subscribers {
            assert_drained(&node, &format!("{sub}@{ch}"));
        }
        // Ends the legacy Consume.
        assert_eq!(pusher.remove(&ch), OK);
        assert_eq!(legacy.next_record(), None, "{ch}: end marker after removal");
    }
}

#[test]
fn legacy_consume_reads_the_overflow_in_order() {
    const N: usize = 1000;
    let data = tempfile::tempdir().expect("tempdir");
    let node = start(data.path(), &["performance.write_flush_ms=1"]);
    let mut pusher = node.client();
    for ch in names_on_each_shard("consume_spill", 1) {
        let records = padded_records(0..N, LEN);
        push_pipelined(&mut pusher, &ch, &records);
        assert_spilled(&node, &ch, N as u64);

        // The first Consume takes over the backlog, disk part included.
        let mut consumer = node.client();
        assert_eq!(consumer.consume(&ch), OK, "{ch}: Consume");
        let mut got = Vec::new();
        for i in 0..N {
            let r = consumer
                .next_record()
                .unwrap_or_else(|| panic!("{ch}: the stream ended at record {i}"));
            got.push(r);
        }
        assert_same_records(&got, &records, &format!("{ch}: the backlog"));

        // Records pushed while the consumer is live follow in order.
        let later = padded_records(N..2 * N, LEN);
        push_pipelined(&mut pusher, &ch, &later);
        let got: Vec<Vec<u8>> = (N..2 * N)
            .map(|i| {
                consumer
                    .next_record()
                    .unwrap_or_else(|| panic!("{ch}: the stream ended at record {i}"))
            })
            .collect();
        assert_same_records(&got, &later, &format!("{ch}: pushed while consuming"));

        assert_eq!(pusher.remove(&ch), OK);
        assert_eq!(consumer.next_record(), None, "{ch}: end marker");
    }
}

#[test]
fn produce_multi_streams_through_the_overflow_in_order() {
    // A stream of many rings' worth into a channel on each shard: records
    // spill as the stream goes; each channel reads back every record once,
    // in order.
    const N: usize = 20 * RING_RECORDS;
    let data = tempfile::tempdir().expect("tempdir");
    let node = start(data.path(), &[]);
    let names = names_on_each_shard("produced", 1);
    let records = padded_records(0..N, LEN);
    let mut producer = node.client();
    assert_eq!(producer.produce_multi(&names), OK);
    for r in &records {
        producer.produce_record(r);
    }
    producer.produce_end();
    producer.sync();
    let mut client = node.client();
    for ch in &names {
        let got = pop_until_empty(&mut client, ch, N + 1);
        assert_same_records(&got, &records, ch);
    }
}

#[test]
fn pipelined_requests_behind_a_pop_that_waits_for_disk_keep_their_order() {
    // One pipeline per channel: pops of every record (the later ones wait
    // for the disk), a push, a pop, a RemoveChannel and a last pop. Each
    // request sees the state its predecessors left, as if run one by one.
    const N: usize = 3 * RING_RECORDS;
    let data = tempfile::tempdir().expect("tempdir");
    let node = start(data.path(), &[]);
    let records = padded_records(0..N + 1, LEN);
    let mut client = node.client();
    for ch in names_on_each_shard("behind", 1) {
        push_pipelined(&mut client, &ch, &records[..N]);
        for _ in 0..N {
            client.queue_pop(&ch);
        }
        client.queue_push(&ch, &records[N]);
        client.queue_pop(&ch);
        client.queue_remove(&ch);
        client.queue_pop(&ch);
        client.flush();
        for (i, expected) in records[..N].iter().enumerate() {
            assert_eq!(
                client.read_pop_reply().as_ref(),
                Ok(expected),
                "{ch}: pop {i}"
            );
        }
        assert_eq!(client.read_status(), OK, "{ch}: push");
        assert_eq!(
            client.read_pop_reply(),
            Ok(records[N].clone()),
            "{ch}: pop after the push"
        );
        assert_eq!(client.read_status(), OK, "{ch}: remove");
        assert_eq!(
            client.read_pop_reply(),
            Err(ERROR),
            "{ch}: pop of a removed channel"
        );
    }
}
