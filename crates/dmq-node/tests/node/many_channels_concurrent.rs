//! Many producers on their own connections, each pushing to its own subset of
//! hundreds of channels spread over both shards, interleaved: every channel
//! still holds exactly its records, in the order they were pushed.

use std::sync::{Arc, Barrier};
use std::thread;

use dmq_testkit::legacy::OK;
use dmq_testkit::node::{Node, SHARDS};
use dmq_testkit::records::record;

use crate::support::names_on_each_shard;

const PRODUCERS: usize = 8;
const CHANNELS_PER_PRODUCER: usize = 40;
const RECORDS_PER_CHANNEL: usize = 50;

#[test]
fn per_channel_fifo_with_concurrent_producers() {
    let node = Node::start(&[]);
    let channels = names_on_each_shard("many", PRODUCERS * CHANNELS_PER_PRODUCER / SHARDS);
    assert_eq!(channels.len(), PRODUCERS * CHANNELS_PER_PRODUCER);
    let barrier = Arc::new(Barrier::new(PRODUCERS));
    let mut threads = Vec::new();
    for p in 0..PRODUCERS {
        // Producer p owns channels p, p + 8, p + 16, ...: both shards.
        let mine: Vec<String> = channels
            .iter()
            .skip(p)
            .step_by(PRODUCERS)
            .cloned()
            .collect();
        let mut c = node.client();
        let barrier = barrier.clone();
        threads.push(thread::spawn(move || {
            barrier.wait();
            let mut pending = 0;
            for r in 0..RECORDS_PER_CHANNEL {
                for ch in &mine {
                    // The value names its channel, so a misrouted record shows.
                    let mut value = record(r);
                    value.extend_from_slice(ch.as_bytes());
                    c.queue_push(ch, value);
                    pending += 1;
                    if pending == 100 {
                        c.flush();
                        for _ in 0..pending {
                            assert_eq!(c.read_status(), OK);
                        }
                        pending = 0;
                    }
                }
            }
            c.flush();
            for _ in 0..pending {
                assert_eq!(c.read_status(), OK);
            }
            mine.len() * RECORDS_PER_CHANNEL
        }));
    }
    let pushed: usize = threads
        .into_iter()
        .map(|t| t.join().expect("producer thread"))
        .sum();
    assert_eq!(
        pushed,
        PRODUCERS * CHANNELS_PER_PRODUCER * RECORDS_PER_CHANNEL
    );

    let mut c = node.client();
    for ch in &channels {
        for _ in 0..=RECORDS_PER_CHANNEL {
            c.queue_pop(ch);
        }
        c.flush();
        for r in 0..RECORDS_PER_CHANNEL {
            let mut expected = record(r);
            expected.extend_from_slice(ch.as_bytes());
            assert_eq!(c.read_pop_reply(), Ok(expected), "{ch} record {r}");
        }
        assert_eq!(c.read_pop_reply(), Ok(Vec::new()), "{ch}: no extra record");
    }
}
