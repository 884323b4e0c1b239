//! `server.memory_limit` caps the bytes of all rings of all shards together:
//! with many channels, the storages beyond the budget get tiny rings or none
//! and their records go to the disk overflow. Every push is still accepted and
//! every record comes back, and the node's memory stays bounded.

use dmq_testkit::files::data_dir_arg;
use dmq_testkit::legacy::{OK, PIPELINE_CHUNK};
use dmq_testkit::node::Node;
use dmq_testkit::process::rss_bytes;
use dmq_testkit::records::padded_record;

const CHANNELS: usize = 3000;
const LEN: usize = 100;
const MEMORY_LIMIT: u64 = 1024 * 1024;
/// A loose bound: 3000 full 64 KiB rings alone would be 187 MiB.
const MAX_RSS: u64 = 200 * 1024 * 1024;

fn channel(i: usize) -> String {
    format!("memlimit{i}")
}

#[test]
fn many_channels_within_the_memory_limit() {
    let data = tempfile::tempdir().expect("tempdir");
    let data_dir = data_dir_arg(data.path());
    let limit = format!("server.memory_limit={MEMORY_LIMIT}");
    let node = Node::start(&[&data_dir, &limit, "server.channel_size_limit=65536"]);
    let mut client = node.client();

    // One record into each channel, pipelined.
    let all: Vec<usize> = (0..CHANNELS).collect();
    for chunk in all.chunks(PIPELINE_CHUNK) {
        for &i in chunk {
            client.queue_push(channel(i), padded_record(i, LEN));
        }
        client.flush();
        for &i in chunk {
            assert_eq!(client.read_status(), OK, "{}: push", channel(i));
        }
    }

    let rss = rss_bytes(node.pid());
    assert!(
        rss < MAX_RSS,
        "the node's RSS is {} MiB with {CHANNELS} channels",
        rss >> 20
    );

    let storages = node.admin().channels();
    let ours: Vec<&(String, [u64; 4])> = storages
        .iter()
        .filter(|(name, _)| name.starts_with("memlimit"))
        .collect();
    assert_eq!(ours.len(), CHANNELS, "one storage per channel");
    for (name, figures) in &ours {
        assert_eq!(
            figures[0] + figures[2],
            1,
            "{name}: one record in memory or overflow: {figures:?}"
        );
    }
    let memory_bytes: u64 = ours.iter().map(|(_, f)| f[1]).sum();
    assert!(
        memory_bytes <= MEMORY_LIMIT,
        "{memory_bytes} bytes in rings, over the limit of {MEMORY_LIMIT}"
    );
    let spilled = ours.iter().filter(|(_, f)| f[2] > 0).count();
    assert!(
        spilled >= CHANNELS / 3,
        "only {spilled} of {CHANNELS} storages have their record in overflow"
    );

    // Every record comes back, then each channel is empty.
    for chunk in all.chunks(PIPELINE_CHUNK) {
        for &i in chunk {
            client.queue_pop(channel(i));
        }
        client.flush();
        for &i in chunk {
            let got = client
                .read_pop_reply()
                .unwrap_or_else(|s| panic!("{}: Pop {s}", channel(i)));
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&padded_record(i, LEN)),
                "{}: pop",
                channel(i)
            );
        }
    }
    for i in (0..CHANNELS).step_by(97) {
        assert_eq!(client.pop(channel(i)), Ok(Vec::new()), "{}", channel(i));
    }
}
