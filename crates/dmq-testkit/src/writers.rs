//! The dmqtest writers (spec 8.1): each writes the records `record(0)` ..
//! `record(count - 1)` to its channels with one kind of request, pipelined.

use std::net::SocketAddr;

use crate::legacy::{Client, OK};
use crate::neo::{NeoClient, PUSHED};
use crate::node::{Node, NodeOptions};
use crate::records::record;

/// Records per bulk test (dmqtest `bulk_test_record_count`).
pub const RECORDS: usize = 10_000;
/// Requests written before their replies are read.
pub const PIPELINE: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writer {
    /// Legacy Push, one channel.
    Push,
    /// Legacy PushMulti to two channels.
    PushMulti,
    /// One legacy Produce stream, one channel.
    Produce,
    /// One legacy ProduceMulti stream to two channels.
    ProduceMulti,
    /// Neo Push, one channel.
    NeoPush,
    /// Neo Push naming two channels.
    NeoPushMulti,
}

impl Writer {
    /// The channels this writer writes to, out of `two` (one per shard).
    pub fn channels(self, two: &[String]) -> Vec<String> {
        assert_eq!(two.len(), 2);
        match self {
            Writer::Push | Writer::Produce | Writer::NeoPush => two[..1].to_vec(),
            Writer::PushMulti | Writer::ProduceMulti | Writer::NeoPushMulti => two.to_vec(),
        }
    }
}

/// The options of a node for the neo writer/checker runs: neo port, Consume
/// batches flushed after 1 ms, 4 MiB rings.
pub fn neo_node_options() -> NodeOptions {
    NodeOptions::new().neo().overrides(&[
        "performance.write_flush_ms=1",
        "server.channel_size_limit=4194304",
    ])
}

/// Writes `record(0)..record(count - 1)` with `writer` to `channels` of `node`.
pub fn write(node: &Node, writer: Writer, channels: &[String], count: usize) {
    write_to(node.addr(), node.neo_addr_if_on(), writer, channels, count);
}

/// As [`write()`], from the node's addresses (for a writer thread). Returns once
/// every record was acknowledged (or, for the Produce streams, once a later
/// request on the same connection was answered).
pub fn write_to(
    legacy: SocketAddr,
    neo: Option<SocketAddr>,
    writer: Writer,
    channels: &[String],
    count: usize,
) {
    match writer {
        Writer::Push | Writer::PushMulti | Writer::Produce | Writer::ProduceMulti => {
            let mut c = Client::connect(legacy);
            write_legacy(&mut c, writer, channels, count);
            // Everything this connection sent has been applied once this is
            // answered.
            c.sync();
        }
        Writer::NeoPush | Writer::NeoPushMulti => {
            let mut c = NeoClient::connect(neo.expect("a neo writer needs the neo port"));
            write_neo(&mut c, writer, channels, count);
        }
    }
}

fn write_legacy(c: &mut Client, writer: Writer, channels: &[String], count: usize) {
    match writer {
        Writer::Push => {
            for start in (0..count).step_by(PIPELINE) {
                let end = (start + PIPELINE).min(count);
                for i in start..end {
                    for ch in channels {
                        c.queue_push(ch, record(i));
                    }
                }
                c.flush();
                for _ in 0..(end - start) * channels.len() {
                    assert_eq!(c.read_status(), OK);
                }
            }
        }
        Writer::PushMulti => {
            for start in (0..count).step_by(PIPELINE) {
                let end = (start + PIPELINE).min(count);
                for i in start..end {
                    c.queue_push_multi(channels, record(i));
                }
                c.flush();
                for _ in start..end {
                    assert_eq!(c.read_status(), OK);
                }
            }
        }
        Writer::Produce => {
            for ch in channels {
                assert_eq!(c.produce(ch), OK);
                for i in 0..count {
                    c.produce_record(record(i));
                }
                c.produce_end();
            }
        }
        Writer::ProduceMulti => {
            assert_eq!(c.produce_multi(channels), OK);
            for i in 0..count {
                c.produce_record(record(i));
            }
            c.produce_end();
        }
        Writer::NeoPush | Writer::NeoPushMulti => unreachable!("a neo writer"),
    }
}

fn write_neo(c: &mut NeoClient, writer: Writer, channels: &[String], count: usize) {
    for start in (0..count).step_by(PIPELINE) {
        let end = (start + PIPELINE).min(count);
        let mut ids = Vec::with_capacity(PIPELINE * channels.len());
        for i in start..end {
            match writer {
                Writer::NeoPush => {
                    for ch in channels {
                        ids.push((i, c.queue_push(&[ch], record(i))));
                    }
                }
                Writer::NeoPushMulti => ids.push((i, c.queue_push(channels, record(i)))),
                _ => unreachable!("a legacy writer"),
            }
        }
        c.flush();
        for (i, id) in ids {
            assert_eq!(c.read_push(id), PUSHED, "neo Push of record {i}");
        }
    }
}
