//! Garbage on some connections (random bytes, truncated requests, huge length
//! prefixes, streams cut short) affects only those connections: a well-behaved
//! connection keeps getting correct answers meanwhile, every garbage connection
//! is closed by the node once the client half-closes it, and afterwards the node
//! still serves and shuts down cleanly.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use dmq_proto::legacy::{encode_array, encode_channel_list};
use dmq_testkit::legacy::{Client, OK};
use dmq_testkit::node::Node;
use dmq_testkit::records::{random_bytes, record};

use crate::support::names_on_each_shard;

const GARBAGE_THREADS: usize = 4;
const CONNECTIONS_PER_THREAD: usize = 40;

/// Channel names the garbage may use; the good connection uses others.
const GARBAGE_NAMES: [&[u8]; 4] = [b"g0", b"g1", b"g2", b"g3"];

/// One well-formed request on a garbage channel.
fn valid_request(rng: &mut fastrand::Rng, out: &mut Vec<u8>) {
    let ch = GARBAGE_NAMES[rng.usize(..GARBAGE_NAMES.len())];
    let codes = [1i32, 2, 6, 8, 9, 10, 11, 12];
    let code = codes[rng.usize(..codes.len())];
    out.extend_from_slice(&code.to_le_bytes());
    match code {
        1 => {
            encode_array(out, ch);
            let len = rng.usize(..64);
            encode_array(out, &random_bytes(rng, len));
        }
        9 => {
            encode_channel_list(out, [ch, GARBAGE_NAMES[0]]);
            encode_array(out, b"v");
        }
        11 => encode_channel_list(out, [ch]),
        8 => {}
        _ => encode_array(out, ch),
    }
}

/// A connection's worth of garbage.
fn garbage(rng: &mut fastrand::Rng) -> Vec<u8> {
    let mut out = Vec::new();
    match rng.usize(..6) {
        // Pure noise.
        0 => {
            let len = 1 + rng.usize(..2000);
            out = random_bytes(rng, len);
        }
        // Valid requests cut at a random point.
        1 => {
            for _ in 0..1 + rng.usize(..5) {
                valid_request(rng, &mut out);
            }
            let cut = rng.usize(..out.len());
            out.truncate(cut);
        }
        // A valid code, then a length prefix past the limit.
        2 => {
            out.extend_from_slice(&[1i32, 2, 6, 9, 10, 11, 12][rng.usize(..7)].to_le_bytes());
            let len = rng.u64(10 * 1024 * 1024 + 1..u64::MAX);
            out.extend_from_slice(&len.to_le_bytes());
        }
        // A length prefix under the limit, with too few bytes behind it.
        3 => {
            out.extend_from_slice(&1i32.to_le_bytes());
            encode_array(&mut out, GARBAGE_NAMES[1]);
            let len = 1 + rng.usize(..10 * 1024 * 1024);
            out.extend_from_slice(&(len as u64).to_le_bytes());
            let have = rng.usize(..len.min(1000));
            out.extend(random_bytes(rng, have));
        }
        // Some valid requests, then noise.
        4 => {
            for _ in 0..1 + rng.usize(..10) {
                valid_request(rng, &mut out);
            }
            let len = rng.usize(..500);
            out.extend(random_bytes(rng, len));
        }
        // A Produce stream with noise records, cut short or broken.
        _ => {
            out.extend_from_slice(&10i32.to_le_bytes());
            encode_array(&mut out, GARBAGE_NAMES[2]);
            for _ in 0..rng.usize(..20) {
                let len = 1 + rng.usize(..100);
                encode_array(&mut out, &random_bytes(rng, len));
            }
            let len = rng.usize(..50);
            out.extend(random_bytes(rng, len));
        }
    }
    out
}

#[test]
fn garbage_connections_do_not_disturb_a_good_one() {
    let mut node = Node::start(&[]);
    let done = Arc::new(AtomicUsize::new(0));
    let mut threads = Vec::new();
    for t in 0..GARBAGE_THREADS {
        let addr = node.addr();
        let done = done.clone();
        threads.push(thread::spawn(move || {
            let mut rng = fastrand::Rng::with_seed(0x6a7b_a9e0 + t as u64);
            let mut still_open = 0;
            for _ in 0..CONNECTIONS_PER_THREAD {
                let mut c = Client::connect(addr);
                c.queue(&garbage(&mut rng));
                // The node may close while we write.
                let _ = c.try_flush();
                c.shutdown_write();
                if !c.drain_until_closed(64 * 1024 * 1024) {
                    still_open += 1;
                }
            }
            done.fetch_add(1, Ordering::SeqCst);
            still_open
        }));
    }

    let mut good = node.client();
    let channels = names_on_each_shard("wellbehaved", 1);
    let mut rounds = 0;
    // Bounded: at least 100 rounds, and on until the garbage threads are done.
    for round in 0..20_000 {
        for ch in &channels {
            for i in 0..10 {
                good.queue_push(ch, record(round * 10 + i));
            }
        }
        good.flush();
        for _ in 0..10 * channels.len() {
            assert_eq!(good.read_status(), OK, "round {round}");
        }
        for ch in &channels {
            for i in 0..10 {
                assert_eq!(
                    good.pop(ch),
                    Ok(record(round * 10 + i)),
                    "{ch} round {round}"
                );
            }
        }
        rounds += 1;
        if round >= 100 && done.load(Ordering::SeqCst) == GARBAGE_THREADS {
            break;
        }
    }
    let still_open: usize = threads
        .into_iter()
        .map(|t| t.join().expect("garbage thread"))
        .sum();
    assert_eq!(
        still_open, 0,
        "garbage connections the node did not close after the client's EOF"
    );
    assert!(rounds > 100);
    for ch in &channels {
        assert_eq!(good.pop(ch), Ok(Vec::new()), "{ch}: no extra record");
    }

    // A fresh connection works, and the node stops cleanly.
    let mut fresh = node.client();
    assert_eq!(fresh.push("fresh", "v"), OK);
    assert_eq!(fresh.pop("fresh"), Ok(b"v".to_vec()));
    drop(fresh);
    drop(good);
    let status = node.stop();
    assert_eq!(status.code(), Some(0), "exit status {status}");
}
