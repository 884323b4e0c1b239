//! The overflow's files across restarts: a restart with another number of
//! shards moves every storage's disk records to its new owner shard (in
//! order, the old segment files deleted); a subscribe that renamed a spilled
//! storage survives a SIGKILL; a clean stop leaves each segment an index in
//! the original's format, which the original's reader accepts.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;

use dmq_testkit::files::{data_dir_arg, overflow_files};
use dmq_testkit::legacy::{pop_until_empty, push_pipelined, ERROR, OK};
use dmq_testkit::neo;
use dmq_testkit::node::Node;
use dmq_testkit::records::{padded_records, record_index};
use dmq_testkit::IO_TIMEOUT;

use crate::support::names_on_each_shard;

/// 4 KiB rings: 37 records of 100 bytes fit, the rest go to disk.
const RING: &str = "server.channel_size_limit=4096";
const LEN: usize = 100;

fn start(data: &Path, extra: &[&str]) -> Node {
    let dir = data_dir_arg(data);
    let mut args = vec![dir.as_str(), RING];
    args.extend_from_slice(extra);
    Node::start_neo(&args)
}

fn layouts(data: &Path) -> Vec<u64> {
    let mut shards: Vec<u64> = overflow_files(data)
        .iter()
        .filter_map(|(name, _)| dmq_testkit::files::parse_overflow_name(name).map(|(_, n, _)| n))
        .collect();
    shards.sort_unstable();
    shards.dedup();
    shards
}

#[test]
fn a_restart_with_another_shard_count_keeps_every_storage_in_order() {
    const N: usize = 400;
    const POPPED: usize = 50;
    let data = tempfile::tempdir().expect("tempdir");
    let channels = names_on_each_shard("reshard", 2);
    let records = padded_records(0..N, LEN);

    let mut node = start(data.path(), &["server.shards=2"]);
    let mut client = node.client();
    for ch in &channels {
        push_pipelined(&mut client, ch, &records);
        for expected in &records[..POPPED] {
            assert_eq!(client.pop(ch).as_ref(), Ok(expected), "{ch}");
        }
    }
    drop(client);
    assert_eq!(node.stop().code(), Some(0));
    assert_eq!(
        layouts(data.path()),
        [2],
        "{:?}",
        overflow_files(data.path())
    );

    // One shard now: the two-shard segments are copied and deleted.
    let mut node = start(data.path(), &["server.shards=1"]);
    assert!(
        !layouts(data.path()).contains(&2),
        "the old layout's segments are deleted: {:?}",
        overflow_files(data.path())
    );
    let mut client = node.client();
    for (i, ch) in channels.iter().enumerate() {
        if i % 2 == 0 {
            let got = pop_until_empty(&mut client, ch, N);
            dmq_testkit::records::assert_same_records(&got, &records[POPPED..], ch);
        }
    }
    drop(client);
    assert_eq!(node.stop().code(), Some(0));

    // And back to two shards: the channels not read yet are still whole.
    let node = start(data.path(), &["server.shards=2"]);
    let mut client = node.client();
    for (i, ch) in channels.iter().enumerate() {
        if i % 2 == 0 {
            // Emptied before the stop: nothing was kept, not even the channel.
            assert_eq!(client.pop(ch), Err(ERROR), "{ch}");
        } else {
            let got = pop_until_empty(&mut client, ch, N);
            dmq_testkit::records::assert_same_records(&got, &records[POPPED..], ch);
        }
    }
}

#[test]
fn a_subscriber_made_after_a_spill_survives_a_sigkill() {
    const N: usize = 300;
    const MORE: usize = 50;
    let data = tempfile::tempdir().expect("tempdir");
    let ch = "renamed";
    let records = padded_records(0..N + MORE, LEN);

    let mut node = start(data.path(), &[]);
    let mut client = node.client();
    push_pipelined(&mut client, ch, &records[..N]);
    // The unsubscribed storage, spilled, becomes subscriber "s"'s, with its
    // backlog: the consumer takes what is in memory before it stops.
    let mut neo = node.neo();
    let id = neo.consume(ch, "s");
    let taken = neo.stop_consume(id);
    dmq_testkit::records::assert_same_records(
        &taken,
        &records[..taken.len()],
        "taken at subscribe",
    );
    push_pipelined(&mut client, ch, &records[N..]);
    drop(client);
    node.signal(libc::SIGKILL);
    assert_eq!(node.wait_exit(IO_TIMEOUT).signal(), Some(libc::SIGKILL));

    let node = start(data.path(), &[]);
    let mut admin = node.admin();
    let figures = admin
        .storage(&format!("s@{ch}"))
        .unwrap_or_else(|| panic!("s@{ch} restored: {:?}", admin.channels()));
    assert!(figures[2] > 0, "records on disk: {figures:?}");
    assert!(
        admin.storage(ch).is_none(),
        "no plain storage: {:?}",
        admin.channels()
    );
    let mut client = node.client();
    assert_eq!(client.pop(ch), Err(ERROR), "still subscribed");
    // What was in memory (at most a ring, 37 records) died with the process;
    // the rest is back, in order, through the subscriber.
    let mut neo = node.neo();
    let id = neo.consume(ch, "s");
    let expected = figures[2] as usize;
    let got = neo::receive(&mut neo, id, expected);
    let first = record_index(&got[0]);
    assert!(
        (taken.len()..=taken.len() + 40).contains(&first),
        "first record back: {first}, {} taken before",
        taken.len()
    );
    dmq_testkit::records::assert_same_records(
        &got,
        &records[first..first + got.len()],
        "s@renamed",
    );
    assert_eq!(
        first + got.len(),
        N + MORE,
        "up to the last acknowledged record"
    );
    let mut client = node.client();
    assert_eq!(client.push(ch, b"after"), OK);
}

#[test]
fn a_clean_stop_writes_each_segment_an_index_the_original_reader_accepts() {
    const N: usize = 300;
    let data = tempfile::tempdir().expect("tempdir");
    let ch = "indexed";
    let records = padded_records(0..N, LEN);
    let mut node = start(data.path(), &["overflow.segment_size=8192"]);
    let mut client = node.client();
    push_pipelined(&mut client, ch, &records);
    drop(client);
    assert_eq!(node.stop().code(), Some(0));

    // Every segment with records has its index; read as the original's
    // overflow.dat + ofchannels.csv, the pairs give the disk part in order.
    let mut from_disk = Vec::new();
    for (segment, _) in overflow_files(data.path()) {
        let index = data.path().join(
            segment
                .replace("overflow-", "ofchannels-")
                .replace(".dat", ".csv"),
        );
        let entries = dmq_storage::files::read_index_file(&index).expect("index");
        let bytes = std::fs::read(data.path().join(&segment)).expect("segment");
        for (storage, part) in dmq_storage::files::read_indexed(&bytes, &entries).expect("read") {
            assert_eq!(storage, ch);
            from_disk.extend(part);
        }
    }
    let first = record_index(&from_disk[0]);
    assert!(
        first > 0 && first <= 40,
        "the ring's records are in the dump: {first}"
    );
    dmq_testkit::records::assert_same_records(&from_disk, &records[first..], "disk part");

    // The next start reads the segments themselves and deletes the indexes.
    let node = start(data.path(), &[]);
    let left: Vec<String> = std::fs::read_dir(data.path())
        .expect("data dir")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.starts_with("ofchannels-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let mut client = node.client();
    let got = pop_until_empty(&mut client, ch, N);
    dmq_testkit::records::assert_same_records(&got, &records, ch);
}
