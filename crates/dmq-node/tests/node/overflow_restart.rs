//! The disk overflow across restarts and over time:
//! - a clean stop (SIGTERM) dumps the memory rings to `<storage>.rq` and keeps
//!   the overflow files; the next start on the same `data_dir` loads both, in
//!   order (ring first, then disk), subscribers intact, and deletes the dumps;
//!   a dump larger than the new, smaller ring does not stop the start;
//! - after SIGKILL the node starts again on the same `data_dir` by itself and
//!   every acknowledged record that was on disk (not in the ring) is there, in
//!   order: what was popped is a contiguous run ending with the last record
//!   written, starting within the first ring's worth;
//! - segment files whose records were all consumed are deleted by the
//!   maintenance pass (`overflow.write_index_ms`), so the data files shrink.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use dmq_testkit::files::{data_dir_arg, files_ending_with, overflow_bytes, overflow_files};
use dmq_testkit::legacy::{pop_pipelined, pop_until_empty, push_pipelined, Client, ERROR, OK};
use dmq_testkit::neo::{self, NeoClient, Pop};
use dmq_testkit::node::{Node, SHARDS};
use dmq_testkit::records::{assert_same_records, padded_record, padded_records, record_index};
use dmq_testkit::wait::wait_until;
use dmq_testkit::IO_TIMEOUT;

use crate::support::names_on_each_shard;

/// Ring bytes per storage (unless a test says otherwise).
const RING: u64 = 4096;
/// Payload bytes per record: 8 + 100 bytes of ring each.
const LEN: usize = 100;
/// The first record a SIGKILL may lose is at most this one: the records before
/// it fit the ring (4096 / 108 = 37), the rest were on disk.
const MAX_LOST: usize = 40;

fn ring_arg(bytes: u64) -> String {
    format!("server.channel_size_limit={bytes}")
}

/// Asserts that `got` is `padded_record(j, LEN)..padded_record(end - 1, LEN)`
/// for some `j <= MAX_LOST`, with `min_end <= end <= max_end`; returns `j`.
fn assert_contiguous_suffix(got: &[Vec<u8>], min_end: usize, max_end: usize, what: &str) -> usize {
    let first = got
        .first()
        .map(|r| record_index(r))
        .unwrap_or_else(|| panic!("{what}: nothing came back"));
    assert!(
        first <= MAX_LOST,
        "{what}: the first record back is {first}: more than the ring's records were lost"
    );
    let end = first + got.len();
    assert_same_records(
        got,
        &padded_records(first..end, LEN),
        &format!("{what}: records {first}.. in order, each once"),
    );
    assert!(
        (min_end..=max_end).contains(&end),
        "{what}: the last record back is {}, expected {}..={}",
        end - 1,
        min_end.saturating_sub(1),
        max_end.saturating_sub(1)
    );
    first
}

/// Reads whole batches of neo Consume `id` until at least `n` records came,
/// acknowledging all but the last one, then stops it: the records received
/// (whole batches, so possibly more than `n`).
fn take_at_least(c: &mut NeoClient, id: u64, n: usize) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    // Bounded: every batch holds at least one record; each wait is bounded.
    loop {
        let batch = c.next_records(id);
        assert!(!batch.is_empty(), "Consume {id}: an empty Records batch");
        got.extend(batch);
        if got.len() >= n {
            break;
        }
        c.send_continue(id);
    }
    // Nothing was acknowledged after the last batch: nothing more was popped.
    got.extend(c.stop_consume(id));
    got
}

/// SIGKILL, and the exit status says so.
fn kill(node: &mut Node) {
    node.signal(libc::SIGKILL);
    let status = node.wait_exit(IO_TIMEOUT);
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
}

#[test]
fn clean_restart_keeps_ring_and_overflow_in_order() {
    // Enough that a neo Consume, which reads ahead one batch of about 128 KiB
    // (1200 records) while the last one is unacknowledged, leaves records
    // when it stops after a quarter of them.
    const N: usize = 10_000;
    let data = tempfile::tempdir().expect("tempdir");
    let data_dir = data_dir_arg(data.path());
    let ring = ring_arg(RING);
    let args = [
        data_dir.as_str(),
        ring.as_str(),
        "performance.write_flush_ms=1",
    ];
    // Two plain and two subscribed channels, one of each per shard.
    let names = names_on_each_shard("restart", 2);
    let (plain, subscribed) = (&names[..SHARDS], &names[SHARDS..]);
    let storages: Vec<String> = plain
        .iter()
        .cloned()
        .chain(
            subscribed
                .iter()
                .flat_map(|ch| [format!("@{ch}"), format!("x@{ch}")]),
        )
        .collect();
    let records = padded_records(0..N, LEN);

    let mut node = Node::start_neo(&args);
    for ch in subscribed {
        neo::subscribe(node.neo_addr(), ch, "");
        neo::subscribe(node.neo_addr(), ch, "x");
    }
    let mut client = node.client();
    for ch in &names {
        push_pipelined(&mut client, ch, &records);
    }
    drop(client);
    let mut admin = node.admin();
    for name in &storages {
        let figures = admin
            .storage(name)
            .unwrap_or_else(|| panic!("{name} not listed"));
        assert_eq!(figures[0] + figures[2], N as u64, "{name}: {figures:?}");
        assert!(figures[0] > 0, "{name}: nothing in memory: {figures:?}");
        assert!(figures[2] > 0, "{name}: nothing in overflow: {figures:?}");
    }
    drop(admin);
    assert_eq!(node.stop().code(), Some(0), "clean stop");
    let dumps = files_ending_with(data.path(), ".rq");
    for name in &storages {
        assert!(dumps.contains(&format!("{name}.rq")), "{name}: {dumps:?}");
    }
    assert!(
        !overflow_files(data.path()).is_empty(),
        "the overflow files are kept"
    );

    // First restart: read half of everything, then stop cleanly again.
    let half = N / 2;
    let mut node = Node::start_neo(&args);
    assert_eq!(
        files_ending_with(data.path(), ".rq"),
        Vec::<String>::new(),
        "loaded dumps are deleted"
    );
    let mut client = node.client();
    // Records each subscriber storage received before the second restart.
    let mut taken = std::collections::HashMap::new();
    for ch in plain {
        let got = pop_pipelined(&mut client, ch, half);
        assert_same_records(&got, &records[..half], &format!("{ch}: first half"));
    }
    for ch in subscribed {
        assert_eq!(client.pop(ch), Err(ERROR), "{ch} is still subscribed");
        let mut c = node.neo();
        for sub in ["", "x"] {
            let id = c.consume(ch, sub);
            let got = take_at_least(&mut c, id, N / 4);
            assert!(got.len() < N, "{sub}@{ch}: the test wants records left");
            assert_same_records(
                &got,
                &records[..got.len()],
                &format!("{sub}@{ch}: first part"),
            );
            taken.insert(format!("{sub}@{ch}"), got.len());
        }
    }
    drop(client);
    assert_eq!(node.stop().code(), Some(0), "clean stop");

    // Second restart: the rest, each record once.
    let node = Node::start_neo(&args);
    let mut client = node.client();
    for ch in plain {
        let got = pop_until_empty(&mut client, ch, N);
        assert_same_records(&got, &records[half..], &format!("{ch}: second half"));
    }
    let mut admin = node.admin();
    let mut c = node.neo();
    for ch in subscribed {
        for sub in ["", "x"] {
            let name = format!("{sub}@{ch}");
            let left = admin
                .storage(&name)
                .map(|f| f[0] + f[2])
                .unwrap_or_else(|| panic!("{name}: the subscriber is gone"));
            assert_eq!(
                left as usize,
                N - taken[&name],
                "{name}: records left after the restart"
            );
            let id = c.consume(ch, sub);
            let got = neo::receive(&mut c, id, left as usize);
            assert!(c.stop_consume(id).is_empty(), "{name}: nothing more");
            let from = taken[&name];
            assert_same_records(
                &got,
                &records[from..],
                &format!("{name}: the rest after the {from} read before the restart"),
            );
        }
    }
}

#[test]
fn a_dump_larger_than_the_new_ring_still_loads() {
    const N: usize = 500;
    let data = tempfile::tempdir().expect("tempdir");
    let data_dir = data_dir_arg(data.path());
    let names = names_on_each_shard("shrink_ring", 1);
    let records = padded_records(0..N, LEN);

    let big = ring_arg(65536);
    let mut node = Node::start(&[&data_dir, &big]);
    let mut client = node.client();
    for ch in &names {
        push_pipelined(&mut client, ch, &records);
        // 500 * 108 bytes fit a 64 KiB ring: all in memory, so all dumped.
        let figures = node.admin().storage(ch).expect("listed");
        assert_eq!(figures[0], N as u64, "{ch}: all in memory: {figures:?}");
        assert_eq!(figures[2], 0, "{ch}: nothing in overflow: {figures:?}");
    }
    drop(client);
    assert_eq!(node.stop().code(), Some(0), "clean stop");
    for ch in &names {
        assert!(
            data.path().join(format!("{ch}.rq")).exists(),
            "{ch}: dumped"
        );
    }

    let small = ring_arg(RING);
    let node = Node::start(&[&data_dir, &small]);
    assert_eq!(
        files_ending_with(data.path(), ".rq"),
        Vec::<String>::new(),
        "loaded dumps are deleted"
    );
    let mut client = node.client();
    for ch in &names {
        let got = pop_until_empty(&mut client, ch, N);
        assert_same_records(&got, &records, ch);
    }
}

/// Starts a node on `data` with the ring, LEN-byte records and `extra`.
fn start_on(data: &Path, extra: &[&str]) -> Node {
    let data_dir = data_dir_arg(data);
    let ring = ring_arg(RING);
    let mut args = vec![data_dir.as_str(), ring.as_str()];
    args.extend_from_slice(extra);
    Node::start(&args)
}

#[test]
fn sigkill_after_acknowledged_pushes_loses_at_most_the_ring() {
    const N: usize = 2000;
    let data = tempfile::tempdir().expect("tempdir");
    // The default maintenance interval (a minute): no index was written
    // before the kill.
    let ch = "crash";
    let records = padded_records(0..N, LEN);
    let mut node = start_on(data.path(), &[]);
    let mut client = node.client();
    push_pipelined(&mut client, ch, &records);
    kill(&mut node);
    drop(client);

    let node = start_on(data.path(), &[]);
    let mut client = node.client();
    let got = pop_until_empty(&mut client, ch, 2 * N);
    // Nothing was popped before the kill: no duplicates, only the ring lost.
    assert_contiguous_suffix(&got, N, N, "after SIGKILL");

    // The node goes on working on the recovered directory.
    let more = padded_records(N..2 * N, LEN);
    push_pipelined(&mut client, ch, &more);
    let got = pop_until_empty(&mut client, ch, 2 * N);
    assert_same_records(&got, &more, "pushed after the restart");
}

#[test]
fn sigkill_during_a_write_load_keeps_what_was_acknowledged() {
    const CHUNK: usize = 50;
    const MAX: usize = 200_000;
    const KILL_AFTER: usize = 1500;
    let data = tempfile::tempdir().expect("tempdir");
    let extra = ["overflow.write_index_ms=100"];
    let ch = "crash_load";
    let mut node = start_on(data.path(), &extra);

    let acked = Arc::new(AtomicUsize::new(0));
    let addr = node.addr();
    let writer = {
        let acked = Arc::clone(&acked);
        // Returns (records acknowledged, records sent).
        thread::spawn(move || -> (usize, usize) {
            let mut c = Client::connect(addr);
            let mut sent = 0;
            // Bounded: at most MAX records, and the kill ends it sooner.
            for start in (0..MAX).step_by(CHUNK) {
                for i in start..start + CHUNK {
                    c.queue_push(ch, padded_record(i, LEN));
                }
                if c.try_flush().is_err() {
                    break;
                }
                sent = start + CHUNK;
                for i in start..start + CHUNK {
                    match c.try_read_status() {
                        Ok(OK) => acked.store(i + 1, Ordering::SeqCst),
                        Ok(status) => panic!("push {i}: status {status}"),
                        Err(_) => return (acked.load(Ordering::SeqCst), sent),
                    }
                }
            }
            (acked.load(Ordering::SeqCst), sent)
        })
    };
    assert!(
        wait_until(IO_TIMEOUT, Duration::from_millis(1), || acked
            .load(Ordering::SeqCst)
            >= KILL_AFTER),
        "only {} pushes acknowledged within {IO_TIMEOUT:?}",
        acked.load(Ordering::SeqCst)
    );
    kill(&mut node);
    let (acked, sent) = writer.join().expect("writer thread");
    assert!(acked >= KILL_AFTER, "{acked} acknowledged");

    let node = start_on(data.path(), &extra);
    let mut client = node.client();
    let got = pop_until_empty(&mut client, ch, sent + 1);
    // Every acknowledged record past the ring is back; records written but
    // not yet acknowledged may be back too, never a torn one.
    assert_contiguous_suffix(&got, acked, sent, "after SIGKILL under load");
}

#[test]
fn consumed_segment_files_are_deleted() {
    const SEGMENT: u64 = 65536;
    const BIG: usize = 1024;
    const N: usize = 2048; // 2 MiB of payload
    let data = tempfile::tempdir().expect("tempdir");
    let segment = format!("overflow.segment_size={SEGMENT}");
    let node = start_on(data.path(), &[&segment, "overflow.write_index_ms=100"]);
    let ch = "shrink_files";
    let records: Vec<Vec<u8>> = (0..N).map(|i| padded_record(i, BIG)).collect();
    let mut client = node.client();
    push_pipelined(&mut client, ch, &records);

    let files = overflow_files(data.path());
    let peak: u64 = files.iter().map(|(_, len)| len).sum();
    assert!(
        peak >= (N * BIG) as u64 * 3 / 4,
        "{peak} bytes of overflow files for {} bytes of records: {files:?}",
        N * BIG
    );
    assert!(
        files.len() >= 8,
        "{} segment files of at most {SEGMENT} bytes for {peak} bytes",
        files.len()
    );
    for (name, len) in &files {
        assert!(*len <= 2 * SEGMENT, "{name}: {len} bytes");
    }

    // Half consumed: the segments holding only that half go.
    let got = pop_pipelined(&mut client, ch, N / 2);
    assert_same_records(&got, &records[..N / 2], "the first half");
    let half_bound = peak / 2 + 2 * SEGMENT;
    let shrunk = wait_until(Duration::from_secs(5), Duration::from_millis(100), || {
        overflow_bytes(data.path()) <= half_bound
    });
    assert!(
        shrunk,
        "half consumed: {} bytes of overflow files left of {peak}: {:?}",
        overflow_bytes(data.path()),
        overflow_files(data.path())
    );

    // All consumed: the files go (at most an open segment per shard stays).
    let got = pop_until_empty(&mut client, ch, N);
    assert_same_records(&got, &records[N / 2..], "the second half");
    wait_until(Duration::from_secs(5), Duration::from_millis(100), || {
        overflow_bytes(data.path()) == 0
    });
    let left = overflow_bytes(data.path());
    assert!(
        left <= SHARDS as u64 * SEGMENT && left < peak / 10,
        "all consumed: {left} bytes of overflow files left of {peak}: {:?}",
        overflow_files(data.path())
    );

    // And the overflow keeps working after its files were deleted.
    let more: Vec<Vec<u8>> = (N..N + 200).map(|i| padded_record(i, BIG)).collect();
    push_pipelined(&mut client, ch, &more);
    let got = pop_until_empty(&mut client, ch, 2 * more.len());
    assert_same_records(&got, &more, "after the files were deleted");
    assert_eq!(node.client().pop(ch), Ok(Vec::new()));
}

#[test]
fn neo_pop_after_sigkill_reads_the_recovered_overflow() {
    // The same recovery seen through a neo Pop, on both shards.
    const N: usize = 1000;
    let data = tempfile::tempdir().expect("tempdir");
    let data_dir = data_dir_arg(data.path());
    let ring = ring_arg(RING);
    let names = names_on_each_shard("neo_crash", 1);
    let records = padded_records(0..N, LEN);
    let mut node = Node::start_neo(&[&data_dir, &ring]);
    let mut client = node.client();
    for ch in &names {
        push_pipelined(&mut client, ch, &records);
    }
    kill(&mut node);
    drop(client);

    let node = Node::start_neo(&[&data_dir, &ring]);
    let mut c = node.neo();
    for ch in &names {
        let mut got = Vec::new();
        // Bounded: at most N + 1 rounds.
        for _ in 0..=N {
            match c.pop(ch) {
                Pop::Popped(r) => got.push(r),
                Pop::Empty => break,
                other => panic!("{ch}: neo Pop answered {other:?}"),
            }
        }
        assert_contiguous_suffix(&got, N, N, &format!("{ch}: after SIGKILL"));
    }
}
