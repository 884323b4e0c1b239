//! The dmqtest neo checkers (spec 8.1): read `record(0)..record(count - 1)`
//! back from each channel, in order per channel.

use std::time::{Duration, Instant};

use crate::legacy::Client;
use crate::neo::{NeoClient, Pop};
use crate::records::{assert_records, record};
use crate::writers::PIPELINE;

/// Neo Pop of every record, pipelined, then one more Pop is Empty.
pub fn pop_all(c: &mut NeoClient, channels: &[String], count: usize) {
    for ch in channels {
        for start in (0..count).step_by(PIPELINE) {
            let end = (start + PIPELINE).min(count);
            let ids: Vec<_> = (start..end).map(|_| c.queue_pop(ch)).collect();
            c.flush();
            for (i, id) in (start..end).zip(ids) {
                assert_eq!(c.read_pop(id), Pop::Popped(record(i)), "{ch}: record {i}");
            }
        }
        assert_eq!(c.pop(ch), Pop::Empty, "{ch}: empty after all records");
    }
}

/// Legacy Pop of every record, pipelined, then one more Pop is empty.
pub fn legacy_pop_all(c: &mut Client, channels: &[String], count: usize) {
    for ch in channels {
        for start in (0..count).step_by(PIPELINE) {
            let end = (start + PIPELINE).min(count);
            for _ in start..end {
                c.queue_pop(ch);
            }
            c.flush();
            for i in start..end {
                assert_eq!(c.read_pop_reply(), Ok(record(i)), "{ch} record {i}");
            }
        }
        assert_eq!(c.pop(ch), Ok(Vec::new()), "{ch}: empty after all records");
    }
}

/// Polls neo Pop on every channel until `count` records came from each (in
/// order per channel) while a writer is still writing; gives up after
/// `limit`.
pub fn poll_pop_all(c: &mut NeoClient, channels: &[String], count: usize, limit: Duration) {
    let deadline = Instant::now() + limit;
    let mut next = vec![0usize; channels.len()];
    // Bounded by the deadline.
    while next.iter().any(|&n| n < count) {
        assert!(
            Instant::now() < deadline,
            "records still missing after {limit:?}: {next:?} of {count} per channel"
        );
        let mut ids = Vec::new();
        for (k, ch) in channels.iter().enumerate() {
            let want = (count - next[k]).min(PIPELINE / 2);
            for _ in 0..want {
                ids.push((k, c.queue_pop(ch)));
            }
        }
        c.flush();
        let mut progress = false;
        for (k, id) in ids {
            match c.read_pop(id) {
                Pop::Popped(v) => {
                    assert_eq!(
                        v,
                        record(next[k]),
                        "{}: record {} (polling)",
                        channels[k],
                        next[k]
                    );
                    next[k] += 1;
                    progress = true;
                }
                Pop::Empty => {}
                other => panic!("{}: Pop answered {other:?}", channels[k]),
            }
        }
        if !progress {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// One neo Consume (default subscriber) per channel, each on its own
/// connection; Started before this returns.
pub fn start_consumers(addr: std::net::SocketAddr, channels: &[String]) -> Vec<(NeoClient, u64)> {
    channels
        .iter()
        .map(|ch| {
            let mut c = NeoClient::connect(addr);
            let id = c.consume(ch, "");
            (c, id)
        })
        .collect()
}

/// How a consumer acknowledges batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    /// Continue right after each batch.
    AtOnce,
    /// Suspended after every other batch (at most `SUSPENDS` times): hold back
    /// Continue for a while, and check that nothing comes meanwhile; then
    /// resume.
    Suspend,
}

const SUSPENDS: usize = 20;
const SUSPEND_FOR: Duration = Duration::from_millis(20);

/// Receives `count` records on each consumer, in order, then stops them (no
/// record may come after the last one).
pub fn consume_all(
    consumers: &mut [(NeoClient, u64)],
    channels: &[String],
    count: usize,
    ack: Ack,
) {
    for (ch, (c, id)) in channels.iter().zip(consumers.iter_mut()) {
        let id = *id;
        let mut got = Vec::with_capacity(count);
        let mut batches = 0usize;
        let mut suspends = 0usize;
        // Bounded: every batch holds at least one record, and each wait for
        // one is bounded.
        while got.len() < count {
            let records = c.next_records(id);
            assert!(!records.is_empty(), "{ch}: an empty batch");
            got.extend(records);
            batches += 1;
            if ack == Ack::Suspend && batches % 2 == 1 && suspends < SUSPENDS {
                suspends += 1;
                assert_eq!(
                    c.try_next_event(id, SUSPEND_FOR),
                    None,
                    "{ch}: Records while suspended (no Continue sent)"
                );
            }
            c.send_continue(id);
        }
        assert_records(&got, count, ch);
        let late = c.stop_consume(id);
        assert!(
            late.is_empty(),
            "{ch}: {} records more than written",
            late.len()
        );
    }
}
