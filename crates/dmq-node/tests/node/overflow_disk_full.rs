//! When the disk overflow cannot take a record — `overflow.disk_limit` reached,
//! or the file system really full — a Push is refused (legacy 500, neo Push
//! Error) instead of acknowledged, the node keeps running and serving, and
//! nothing acknowledged is lost: every record that got 200 is popped back
//! exactly once, in order. Once the overflow is drained, pushes succeed again.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use dmq_testkit::files::{data_dir_arg, overflow_bytes};
use dmq_testkit::legacy::{pop_until_empty, push_pipelined, ERROR, OK};
use dmq_testkit::neo::PUSH_ERROR;
use dmq_testkit::node::Node;
use dmq_testkit::records::{assert_same_records, padded_record};
use dmq_testkit::wait::wait_until;

/// Ring bytes per storage: four 1000-byte records.
const RING: u64 = 4096;
/// Bytes per overflow segment file.
const SEGMENT: u64 = 65536;
/// Payload bytes per record.
const BIG: usize = 1000;

/// Legacy Pushes of `padded_record(i, BIG)` for `i` in `0..max`, one at a time,
/// until the first refusal, which must be 500. Returns the records that got
/// 200; fails the test if none was refused.
fn push_until_refused(node: &Node, ch: &str, max: usize) -> Vec<Vec<u8>> {
    let mut client = node.client();
    let mut acked = Vec::new();
    for i in 0..max {
        let r = padded_record(i, BIG);
        match client.push(ch, &r) {
            OK => acked.push(r),
            ERROR => return acked,
            other => panic!("{ch}: push {i} answered {other}, expected 200 or 500"),
        }
    }
    panic!("{ch}: all {max} pushes of {BIG} bytes were accepted");
}

#[test]
fn the_disk_limit_refuses_pushes_and_keeps_serving() {
    let data = tempfile::tempdir().expect("tempdir");
    let data_dir = data_dir_arg(data.path());
    let ring = format!("server.channel_size_limit={RING}");
    let segment = format!("overflow.segment_size={SEGMENT}");
    // 128 KiB of overflow files per shard.
    let mut node = Node::start_neo(&[
        &data_dir,
        &ring,
        &segment,
        "overflow.disk_limit=262144",
        "overflow.write_index_ms=100",
    ]);
    let ch = "limited";

    let acked = push_until_refused(&node, ch, 1000);
    assert!(
        acked.len() > (RING as usize) / BIG,
        "{ch}: refused after {} pushes, before anything went to disk",
        acked.len()
    );
    assert!(node.is_running(), "the node survives a full overflow");

    // Still full: another legacy Push and a neo Push are refused too.
    let next = padded_record(acked.len(), BIG);
    assert_eq!(node.client().push(ch, &next), ERROR, "{ch}: still full");
    assert_eq!(
        node.neo().push(&[ch], &next),
        PUSH_ERROR,
        "{ch}: neo Push while full"
    );

    // Every acknowledged record comes back once, in order; the refused ones
    // never.
    let mut client = node.client();
    let got = pop_until_empty(&mut client, ch, acked.len() + 10);
    assert_same_records(&got, &acked, &format!("{ch}: the acknowledged records"));

    // Drained: the segment files go, and records spill to disk again.
    wait_until(Duration::from_secs(5), Duration::from_millis(100), || {
        overflow_bytes(data.path()) == 0
    });
    let again: Vec<Vec<u8>> = (10_000..10_050).map(|i| padded_record(i, BIG)).collect();
    push_pipelined(&mut client, ch, &again);
    let figures = node.admin().storage(ch).expect("listed");
    assert!(figures[2] > 0, "{ch}: on disk again: {figures:?}");
    let got = pop_until_empty(&mut client, ch, again.len() + 10);
    assert_same_records(&got, &again, &format!("{ch}: after draining"));
    assert_eq!(node.stop().code(), Some(0), "clean stop");
}

/// A tmpfs mounted on a directory, unmounted (by path) when dropped.
struct TmpfsMount {
    path: PathBuf,
}

impl TmpfsMount {
    /// Mounts a tmpfs of `size` (mount syntax, e.g. `1m`) on `path`; `None`
    /// with the reason when that is not possible here.
    fn mount(path: &Path, size: &str) -> Result<TmpfsMount, String> {
        // SAFETY: geteuid(2) has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("not running as root".into());
        }
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()
            .map_err(|e| format!("running mount: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "mount failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(TmpfsMount {
            path: path.to_owned(),
        })
    }
}

impl Drop for TmpfsMount {
    fn drop(&mut self) {
        match Command::new("umount").arg(&self.path).output() {
            Ok(o) if o.status.success() => {}
            Ok(o) => eprintln!(
                "umount {}: {}: {}",
                self.path.display(),
                o.status,
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            Err(e) => eprintln!("umount {}: {e}", self.path.display()),
        }
    }
}

#[test]
fn a_full_file_system_refuses_pushes_and_keeps_serving() {
    // Declared in this order so that they drop in reverse: the node stops
    // (closing its files) before the unmount, the unmount before the
    // directory is removed — also when the test fails.
    let data = tempfile::tempdir().expect("tempdir");
    let mount = match TmpfsMount::mount(data.path(), "1m") {
        Ok(m) => m,
        Err(reason) => {
            eprintln!("skipping the full file system test: {reason}");
            return;
        }
    };
    let data_dir = data_dir_arg(&mount.path);
    let ring = format!("server.channel_size_limit={RING}");
    let segment = format!("overflow.segment_size={SEGMENT}");
    let mut node = Node::start(&[&data_dir, &ring, &segment, "overflow.disk_limit=0"]);
    let ch = "full_disk";

    // 3 MB of records for a 1 MiB file system.
    let acked = push_until_refused(&node, ch, 3000);
    assert!(
        acked.len() > (RING as usize) / BIG,
        "{ch}: refused after {} pushes, before anything went to disk",
        acked.len()
    );
    assert!(node.is_running(), "the node survives a full file system");

    let mut client = node.client();
    let got = pop_until_empty(&mut client, ch, acked.len() + 10);
    assert_same_records(&got, &acked, &format!("{ch}: the acknowledged records"));
    drop(client);
    assert_eq!(node.stop().code(), Some(0), "clean stop");
}

#[test]
fn a_start_restores_everything_even_past_the_disk_limit() {
    // A full overflow, then a restart with a smaller ring: the ring's excess
    // must go to disk in front of what is there, past the limit for a while.
    let data = tempfile::tempdir().expect("tempdir");
    let data_dir = data_dir_arg(data.path());
    let segment = format!("overflow.segment_size={SEGMENT}");
    let limit = "overflow.disk_limit=262144";
    let ch = "restored";
    let mut node = Node::start(&[
        &data_dir,
        "server.channel_size_limit=65536",
        &segment,
        limit,
    ]);
    let acked = push_until_refused(&node, ch, 1000);
    assert!(acked.len() > 64, "some records on disk: {}", acked.len());
    assert_eq!(node.stop().code(), Some(0));

    let node = Node::start(&[
        &data_dir,
        &format!("server.channel_size_limit={RING}"),
        &segment,
        limit,
    ]);
    let mut client = node.client();
    let got = pop_until_empty(&mut client, ch, acked.len() + 1);
    assert_same_records(&got, &acked, "restored past the limit");
}
