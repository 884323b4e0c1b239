//! The dmqtest ParallelWriterChecker, neo part (spec 8.1): a writer thread
//! (neo Push to one channel, or to two channels on different shards) and a
//! checker (polling neo Pop, a neo Consume, a neo Consume that suspends now
//! and then) run at the same time on separate connections; every record
//! arrives, in order per channel.

use std::thread;
use std::time::Duration;

use dmq_testkit::checkers::{consume_all, poll_pop_all, start_consumers, Ack};
use dmq_testkit::neo::Pop;
use dmq_testkit::writers::{write_to, Writer, RECORDS};

use crate::support::start_neo_node_for;

#[derive(Debug, Clone, Copy)]
enum Checker {
    PollPop,
    Consume,
    SuspendConsume,
}

fn run(writer: Writer, checker: Checker) {
    let (node, channels) = start_neo_node_for(writer);
    let (legacy, neo) = (node.addr(), node.neo_addr_if_on());
    // Consumers start before the writer, so none misses a record.
    let mut consumers = match checker {
        Checker::PollPop => Vec::new(),
        Checker::Consume | Checker::SuspendConsume => start_consumers(node.neo_addr(), &channels),
    };
    let writer_channels = channels.clone();
    let writing = thread::spawn(move || write_to(legacy, neo, writer, &writer_channels, RECORDS));
    match checker {
        Checker::PollPop => {
            let mut c = node.neo();
            poll_pop_all(&mut c, &channels, RECORDS, Duration::from_secs(20));
            writing.join().expect("the writer thread");
            for ch in &channels {
                assert_eq!(c.pop(ch), Pop::Empty, "{ch}: nothing more");
            }
        }
        Checker::Consume => {
            consume_all(&mut consumers, &channels, RECORDS, Ack::AtOnce);
            writing.join().expect("the writer thread");
        }
        Checker::SuspendConsume => {
            consume_all(&mut consumers, &channels, RECORDS, Ack::Suspend);
            writing.join().expect("the writer thread");
        }
    }
}

#[test]
fn neo_push_parallel_poll_pop() {
    run(Writer::NeoPush, Checker::PollPop);
}

#[test]
fn neo_push_parallel_consume() {
    run(Writer::NeoPush, Checker::Consume);
}

#[test]
fn neo_push_parallel_suspend_consume() {
    run(Writer::NeoPush, Checker::SuspendConsume);
}

#[test]
fn neo_push_multi_parallel_poll_pop() {
    run(Writer::NeoPushMulti, Checker::PollPop);
}

#[test]
fn neo_push_multi_parallel_consume() {
    run(Writer::NeoPushMulti, Checker::Consume);
}

#[test]
fn neo_push_multi_parallel_suspend_consume() {
    run(Writer::NeoPushMulti, Checker::SuspendConsume);
}
