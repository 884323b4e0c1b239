//! The dmqtest WriterChecker matrix, legacy half (spec 8.1): 10 000 records
//! `record(0)..record(9999)` written by each writer and read back by each
//! checker, in order per channel. Every case runs on its own 2-shard node with
//! one channel on each shard, so both the local and the cross-shard paths are
//! used whichever shard accepted the connections.

use dmq_testkit::checkers::legacy_pop_all;
use dmq_testkit::legacy::{Client, OK};
use dmq_testkit::node::Node;
use dmq_testkit::records::record;
use dmq_testkit::writers::{write, Writer, RECORDS};

use crate::support::names_on_each_shard;

#[derive(Debug, Clone, Copy)]
enum Checker {
    /// Pop every record, then one more Pop returns empty.
    Pop,
    /// A Consume per channel started before writing.
    PreConsume,
    /// A Consume per channel started after writing.
    PostConsume,
}

fn start_consumers(node: &Node, channels: &[String]) -> Vec<Client> {
    channels
        .iter()
        .map(|ch| {
            let mut c = node.client();
            assert_eq!(c.consume(ch), OK, "{ch}");
            c
        })
        .collect()
}

fn consume_all(node: &Node, channels: &[String], consumers: &mut [Client]) {
    for (ch, consumer) in channels.iter().zip(consumers.iter_mut()) {
        for i in 0..RECORDS {
            assert_eq!(consumer.next_record(), Some(record(i)), "{ch} record {i}");
        }
    }
    // Nothing more: removing the channels ends each stream right away.
    let mut c = node.client();
    for (ch, consumer) in channels.iter().zip(consumers.iter_mut()) {
        assert_eq!(c.remove(ch), OK);
        assert_eq!(consumer.next_record(), None, "{ch}: end marker");
    }
}

/// Every writer writes to both channels: Push and Produce one request or
/// stream per channel, PushMulti and ProduceMulti one for both.
fn run(writer: Writer, checker: Checker) {
    let node = Node::start(&[]);
    let channels = names_on_each_shard("test_channel", 1);
    match checker {
        Checker::Pop => {
            write(&node, writer, &channels, RECORDS);
            legacy_pop_all(&mut node.client(), &channels, RECORDS);
        }
        Checker::PreConsume => {
            let mut consumers = start_consumers(&node, &channels);
            write(&node, writer, &channels, RECORDS);
            consume_all(&node, &channels, &mut consumers);
        }
        Checker::PostConsume => {
            write(&node, writer, &channels, RECORDS);
            let mut consumers = start_consumers(&node, &channels);
            consume_all(&node, &channels, &mut consumers);
        }
    }
}

#[test]
fn push_pop() {
    run(Writer::Push, Checker::Pop);
}

#[test]
fn push_pre_consume() {
    run(Writer::Push, Checker::PreConsume);
}

#[test]
fn push_post_consume() {
    run(Writer::Push, Checker::PostConsume);
}

#[test]
fn push_multi_pop() {
    run(Writer::PushMulti, Checker::Pop);
}

#[test]
fn push_multi_pre_consume() {
    run(Writer::PushMulti, Checker::PreConsume);
}

#[test]
fn push_multi_post_consume() {
    run(Writer::PushMulti, Checker::PostConsume);
}

#[test]
fn produce_pop() {
    run(Writer::Produce, Checker::Pop);
}

#[test]
fn produce_pre_consume() {
    run(Writer::Produce, Checker::PreConsume);
}

#[test]
fn produce_post_consume() {
    run(Writer::Produce, Checker::PostConsume);
}

#[test]
fn produce_multi_pop() {
    run(Writer::ProduceMulti, Checker::Pop);
}

#[test]
fn produce_multi_pre_consume() {
    run(Writer::ProduceMulti, Checker::PreConsume);
}

#[test]
fn produce_multi_post_consume() {
    run(Writer::ProduceMulti, Checker::PostConsume);
}
