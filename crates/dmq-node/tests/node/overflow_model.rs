//! The node against a model of its queues, through the overflow: random
//! pushes of random sizes (some larger than the ring), pops, removals and
//! clean restarts on several channels of both shards, with tiny rings and
//! segments so that records keep moving between memory, disk and dumps.
//! Every pop must give exactly the model's next record, and a clean restart
//! must keep everything. A second run also kills the node: then only what
//! was in memory may be lost, and records read back shortly before the kill
//! may come again, never out of order.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;

use dmq_testkit::files::data_dir_arg;
use dmq_testkit::legacy::{Client, OK};
use dmq_testkit::node::Node;
use dmq_testkit::records::record_index;

use crate::support::names_on_each_shard;

/// Ring bytes per storage: a few records.
const RING: &str = "server.channel_size_limit=512";
/// Small segments: many segment files come and go.
const SEGMENT: &str = "overflow.segment_size=4096";
const ROUNDS: usize = 600;

fn start(data: &Path, extra: &[&str]) -> Node {
    let dir = data_dir_arg(data);
    let mut args = vec![dir.as_str(), RING, SEGMENT, "overflow.write_index_ms=20"];
    args.extend_from_slice(extra);
    Node::start(&args)
}

/// A record: its number, padded with a byte pattern to `len` bytes.
fn value(i: usize, len: usize) -> Vec<u8> {
    let mut v = format!("{i:09}").into_bytes();
    v.extend((0..len.saturating_sub(9)).map(|k| b'a' + (k % 26) as u8));
    v
}

/// Most records memory can hold: a 512-byte ring of 8-byte headers, plus the
/// one-record slot in front of it.
const MEMORY_RECORDS: usize = 512 / 8 + 1;

#[test]
fn random_operations_match_the_model_across_restarts() {
    for seed in [0x5eed_d15c, 0x0dd_ba11, 0xface_feed] {
        run(seed, false, &[]);
    }
}

#[test]
fn random_operations_with_kills_lose_only_memory() {
    for seed in [0xdead_beef, 0x1234_5678] {
        run(seed, true, &[]);
    }
}

#[test]
fn random_operations_without_rings_for_most_storages() {
    // 1 KiB of rings per shard: the first channel of each shard gets a
    // ring, the other gets none and lives on disk, one record at a time
    // through the slot in front of its (empty) ring.
    for seed in [0x00b0_d9e7, 0xb0d9_e7ed] {
        run(seed, true, &["server.memory_limit=1024"]);
    }
}

fn run(seed: u64, kills: bool, extra: &[&str]) {
    let data = tempfile::tempdir().expect("tempdir");
    let channels = names_on_each_shard("model", 2);
    let mut model: BTreeMap<String, VecDeque<Vec<u8>>> = BTreeMap::new();
    // Every record pushed to a channel since its last removal.
    let mut history: BTreeMap<String, BTreeSet<usize>> = BTreeMap::new();
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut next = 0usize;
    let mut node = start(data.path(), extra);
    let mut client = node.client();
    for round in 0..ROUNDS {
        let ch = &channels[rng.usize(..channels.len())];
        match rng.usize(..100) {
            // Pushes, some longer than the ring.
            0..=44 => {
                for _ in 0..1 + rng.usize(..8) {
                    let len = if rng.usize(..10) == 0 {
                        600
                    } else {
                        9 + rng.usize(..120)
                    };
                    let v = value(next, len);
                    next += 1;
                    assert_eq!(
                        client.push(ch, &v),
                        OK,
                        "seed {seed:x} round {round}: push to {ch}"
                    );
                    history.entry(ch.clone()).or_default().insert(next - 1);
                    model.entry(ch.clone()).or_default().push_back(v);
                }
            }
            // Pops, beyond the end sometimes.
            45..=89 => {
                for _ in 0..1 + rng.usize(..8) {
                    let expected = model.get_mut(ch).and_then(VecDeque::pop_front);
                    let got = client.pop(ch);
                    match expected {
                        Some(v) => assert_eq!(
                            got.as_ref().map(|g| record_index(g)),
                            Ok(record_index(&v)),
                            "seed {seed:x} round {round}: pop from {ch}"
                        ),
                        // Empty, or 500 for a channel that does not exist.
                        None => assert!(
                            matches!(&got, Ok(g) if g.is_empty()) || got.is_err(),
                            "seed {seed:x} round {round}: pop from empty {ch}: {got:?}"
                        ),
                    }
                }
            }
            // Remove a channel: memory and disk records go.
            90..=94 => {
                assert_eq!(
                    client.remove(ch),
                    OK,
                    "seed {seed:x} round {round}: remove {ch}"
                );
                model.remove(ch);
                history.remove(ch);
            }
            // A kill: memory is lost; drain every channel and check what
            // came back.
            _ if kills && rng.usize(..2) == 0 => {
                drop(client);
                node.signal(libc::SIGKILL);
                assert_eq!(
                    node.wait_exit(dmq_testkit::IO_TIMEOUT).signal(),
                    Some(libc::SIGKILL)
                );
                node = start(data.path(), extra);
                client = node.client();
                for ch in &channels {
                    let left: Vec<usize> = model
                        .remove(ch)
                        .unwrap_or_default()
                        .iter()
                        .map(|v| record_index(v))
                        .collect();
                    let got = drain(&mut client, ch, next + 1);
                    let what = format!("seed {seed:x} round {round}: {ch} after a kill");
                    assert!(got.windows(2).all(|w| w[0] < w[1]), "{what}: order {got:?}");
                    let pushed = history.get(ch).cloned().unwrap_or_default();
                    assert!(
                        got.iter().all(|i| pushed.contains(i)),
                        "{what}: {got:?} has records never pushed there"
                    );
                    for i in left.iter().skip(MEMORY_RECORDS) {
                        assert!(
                            got.contains(i),
                            "{what}: record {i} lost; left {left:?}, got {got:?}"
                        );
                    }
                }
            }
            // A clean restart keeps everything.
            _ => {
                drop(client);
                assert_eq!(
                    node.stop().code(),
                    Some(0),
                    "seed {seed:x} round {round}: stop"
                );
                node = start(data.path(), extra);
                client = node.client();
            }
        }
    }
    for ch in &channels {
        let rest: Vec<Vec<u8>> = model.remove(ch).unwrap_or_default().into();
        for (k, v) in rest.iter().enumerate() {
            let got = client.pop(ch).unwrap_or_else(|s| panic!("{ch}: Pop {s}"));
            assert_eq!(got, *v, "{ch}: record {k} of the rest");
        }
        let end = client.pop(ch);
        assert!(
            matches!(&end, Ok(g) if g.is_empty()) || end.is_err(),
            "{ch}: drained: {end:?}"
        );
    }
    // Everything read: the overflow files go.
    assert!(
        dmq_testkit::wait::wait_until(
            std::time::Duration::from_secs(5),
            std::time::Duration::from_millis(50),
            || dmq_testkit::files::overflow_files(data.path()).is_empty()
        ),
        "{:?}",
        dmq_testkit::files::overflow_files(data.path())
    );
    drop(Client::connect(node.addr()));
}

/// Pops `channel` until it is empty (or does not exist: its records were all
/// in memory), at most `max` records; their numbers.
fn drain(client: &mut Client, channel: &str, max: usize) -> Vec<usize> {
    let mut got = Vec::new();
    for _ in 0..=max {
        match client.pop(channel) {
            Ok(v) if v.is_empty() => return got,
            Ok(v) => got.push(record_index(&v)),
            Err(_) if got.is_empty() => return got,
            Err(status) => panic!(
                "{channel}: Pop answered {status} after {} records",
                got.len()
            ),
        }
    }
    panic!("{channel}: still not empty after {max} records");
}
