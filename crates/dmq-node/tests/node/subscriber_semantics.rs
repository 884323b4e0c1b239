//! Legacy Consume subscribes as the default subscriber "" (spec 4.2): the first
//! Consume takes over the channel's backlog; several Consumes share that one
//! queue (each record goes to exactly one of them); the subscription outlives
//! its consumers (Pop stays refused, records are kept for the next Consume)
//! until RemoveChannel makes the channel unsubscribed again.

use std::sync::mpsc;
use std::thread;

use dmq_testkit::legacy::{Client, ERROR, OK};
use dmq_testkit::node::Node;
use dmq_testkit::records::record;
use dmq_testkit::IO_TIMEOUT;

use crate::support::names_on_each_shard;

#[test]
fn first_consume_takes_over_the_backlog() {
    let node = Node::start(&[]);
    let mut pusher = node.client();
    for ch in names_on_each_shard("backlog", 1) {
        for i in 0..10 {
            assert_eq!(pusher.push(&ch, record(i)), OK);
        }
        let mut consumer = node.client();
        assert_eq!(consumer.consume(&ch), OK);
        for i in 0..10 {
            assert_eq!(consumer.next_record(), Some(record(i)), "{ch}");
        }
        assert_eq!(pusher.pop(&ch), Err(ERROR), "{ch} is subscribed");
        assert_eq!(pusher.push(&ch, record(10)), OK);
        assert_eq!(consumer.next_record(), Some(record(10)), "{ch}");
        assert_eq!(pusher.remove(&ch), OK);
        assert_eq!(consumer.next_record(), None);
    }
}

/// Reads records until the end marker, sending each to `tx`; returns them all.
fn consume_in_thread(
    mut consumer: Client,
    tx: mpsc::Sender<Vec<u8>>,
) -> thread::JoinHandle<Vec<Vec<u8>>> {
    thread::spawn(move || {
        let mut seen = Vec::new();
        // Bounded: the test pushes a fixed number of records, then removes.
        for _ in 0..100_000 {
            match consumer.next_record() {
                Some(r) => {
                    seen.push(r.clone());
                    let _ = tx.send(r);
                }
                None => {
                    consumer.sync();
                    return seen;
                }
            }
        }
        panic!("no end marker after 100000 records");
    })
}

#[test]
fn consumers_of_one_channel_share_the_queue() {
    const N: usize = 2000;
    let node = Node::start(&[]);
    let mut pusher = node.client();
    for ch in names_on_each_shard("shared", 1) {
        let (tx, rx) = mpsc::channel();
        let mut threads = Vec::new();
        for _ in 0..3 {
            let mut consumer = node.client();
            assert_eq!(consumer.consume(&ch), OK);
            threads.push(consume_in_thread(consumer, tx.clone()));
        }
        for chunk in 0..N / 100 {
            for i in chunk * 100..(chunk + 1) * 100 {
                pusher.queue_push(&ch, record(i));
            }
            pusher.flush();
            for _ in 0..100 {
                assert_eq!(pusher.read_status(), OK);
            }
        }
        // Every record is delivered before the channel is removed (a removal
        // drops what is still queued).
        for n in 0..N {
            rx.recv_timeout(IO_TIMEOUT)
                .unwrap_or_else(|e| panic!("{ch}: only {n} of {N} records delivered: {e}"));
        }
        assert_eq!(pusher.remove(&ch), OK);
        let mut all = Vec::new();
        for t in threads {
            let seen = t.join().expect("consumer thread");
            // Each consumer sees its share in queue order.
            assert!(seen.windows(2).all(|w| w[0] < w[1]), "{ch}: out of order");
            all.extend(seen);
        }
        all.sort();
        let expected: Vec<_> = (0..N).map(record).collect();
        assert_eq!(all, expected, "{ch}: each record exactly once");
        assert!(rx.try_recv().is_err(), "{ch}: no extra record");
    }
}

/// With `server.connection_limit=2` a third connection is admitted only once
/// one of two open ones has ended on the node; this waits for that, which
/// proves that the node has unregistered a closed consumer.
fn admitted_client(node: &Node) -> Client {
    for _ in 0..400 {
        if let Ok(mut c) = Client::try_connect(node.addr()) {
            c.queue_get_num_connections();
            if c.try_flush().is_ok()
                && c.try_read_status().ok() == Some(dmq_testkit::legacy::NOT_SUPPORTED)
            {
                return c;
            }
        }
        thread::sleep(std::time::Duration::from_millis(25));
    }
    panic!("no connection admitted after 400 attempts");
}

#[test]
fn subscription_outlives_its_consumer_until_remove_channel() {
    let node = Node::start(&["server.connection_limit=2"]);
    let mut pusher = admitted_client(&node);
    for ch in names_on_each_shard("permanent", 1) {
        let mut first = admitted_client(&node);
        assert_eq!(first.consume(&ch), OK);
        assert_eq!(pusher.push(&ch, "seen by first"), OK);
        assert_eq!(first.next_record(), Some(b"seen by first".to_vec()));
        drop(first);
        // The next connection gets in only after the node ended the first.
        let mut second = admitted_client(&node);

        // Still subscribed: Pop is refused, pushes are kept.
        assert_eq!(pusher.pop(&ch), Err(ERROR), "{ch}");
        for i in 0..5 {
            assert_eq!(pusher.push(&ch, record(i)), OK);
        }
        assert_eq!(pusher.pop(&ch), Err(ERROR), "{ch}");

        assert_eq!(second.consume(&ch), OK);
        for i in 0..5 {
            assert_eq!(second.next_record(), Some(record(i)), "{ch}");
        }

        // RemoveChannel ends the Consume and makes the channel unsubscribed.
        assert_eq!(pusher.remove(&ch), OK);
        assert_eq!(second.next_record(), None);
        assert_eq!(pusher.pop(&ch), Err(ERROR), "{ch} was removed");
        assert_eq!(pusher.push(&ch, "unsubscribed"), OK);
        assert_eq!(second.pop(&ch), Ok(b"unsubscribed".to_vec()));
        assert_eq!(second.pop(&ch), Ok(Vec::new()));
        drop(second);
    }
}
