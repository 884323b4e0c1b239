//! The dmqtest WriterChecker matrix, legacy half (spec 8.1): 10 000 records
//! `record(0)..record(9999)` written by each writer and read back by each
//! checker, in order per channel. Every case runs on its own 2-shard node with
//! one channel on each shard, so both the local and the cross-shard paths are
//! used whichever shard accepted the connections.

mod common;

use common::{names_on_each_shard, record, Client, Node, OK};

const RECORDS: usize = 10_000;
/// Requests written before their replies are read.
const PIPELINE: usize = 100;

#[derive(Debug, Clone, Copy)]
enum Writer {
    /// One Push per record and channel.
    Push,
    /// One PushMulti per record to both channels.
    PushMulti,
    /// One Produce stream per channel, one after the other on one connection.
    Produce,
    /// One ProduceMulti stream to both channels.
    ProduceMulti,
}

#[derive(Debug, Clone, Copy)]
enum Checker {
    /// Pop every record, then one more Pop returns empty.
    Pop,
    /// A Consume per channel started before writing.
    PreConsume,
    /// A Consume per channel started after writing.
    PostConsume,
}

fn write(node: &Node, writer: Writer, channels: &[String]) {
    let mut c = node.client();
    match writer {
        Writer::Push => {
            for start in (0..RECORDS).step_by(PIPELINE) {
                for i in start..start + PIPELINE {
                    for ch in channels {
                        c.queue_push(ch, record(i));
                    }
                }
                c.flush();
                for _ in 0..PIPELINE * channels.len() {
                    assert_eq!(c.read_status(), OK);
                }
            }
        }
        Writer::PushMulti => {
            for start in (0..RECORDS).step_by(PIPELINE) {
                for i in start..start + PIPELINE {
                    c.queue_push_multi(channels, record(i));
                }
                c.flush();
                for _ in 0..PIPELINE {
                    assert_eq!(c.read_status(), OK);
                }
            }
        }
        Writer::Produce => {
            for ch in channels {
                assert_eq!(c.produce(ch), OK);
                for i in 0..RECORDS {
                    c.produce_record(record(i));
                }
                c.produce_end();
            }
        }
        Writer::ProduceMulti => {
            assert_eq!(c.produce_multi(channels), OK);
            for i in 0..RECORDS {
                c.produce_record(record(i));
            }
            c.produce_end();
        }
    }
    // The connection is usable after the streams, and everything it sent has
    // been applied once this is answered.
    c.sync();
}

fn pop_all(node: &Node, channels: &[String]) {
    let mut c = node.client();
    for ch in channels {
        for start in (0..RECORDS).step_by(PIPELINE) {
            for _ in 0..PIPELINE {
                c.queue_pop(ch);
            }
            c.flush();
            for i in start..start + PIPELINE {
                assert_eq!(c.read_pop_reply(), Ok(record(i)), "{ch} record {i}");
            }
        }
        assert_eq!(c.pop(ch), Ok(Vec::new()), "{ch}: empty after all records");
    }
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

fn run(writer: Writer, checker: Checker) {
    let node = Node::start(&[]);
    let channels = names_on_each_shard("test_channel", 1);
    match checker {
        Checker::Pop => {
            write(&node, writer, &channels);
            pop_all(&node, &channels);
        }
        Checker::PreConsume => {
            let mut consumers = start_consumers(&node, &channels);
            write(&node, writer, &channels);
            consume_all(&node, &channels, &mut consumers);
        }
        Checker::PostConsume => {
            write(&node, writer, &channels);
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
