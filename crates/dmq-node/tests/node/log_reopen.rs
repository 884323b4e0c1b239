//! Log rotation (logrotate's move-then-signal): after root.log is moved away
//! and the node gets SIGHUP, new log lines go to a new root.log and none to
//! the moved file; stats.log, opened for each line, is recreated after being
//! moved away without any signal.

use std::path::Path;
use std::time::Duration;

use dmq_testkit::legacy::NOT_SUPPORTED;
use dmq_testkit::node::Node;
use dmq_testkit::stats::{parsed_stats_lines, stats_lines};
use dmq_testkit::wait::wait_for;

/// What the node logs for an invalid command code (a warning).
const INVALID: &str = "invalid command code";

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Sends an invalid command code on a new connection; the node closes it and
/// logs a warning.
fn cause_warning(node: &Node) {
    let mut c = node.client();
    c.send_raw(&99i32.to_le_bytes());
    c.expect_closed("invalid command code");
}

/// Moves root.log to `moved`, sends SIGHUP, and waits until the node writes
/// to a new root.log (it logs the reopening, so the new file gets a line).
fn rotate(node: &Node, moved: &Path) {
    let log = node.dir().join("root.log");
    std::fs::rename(&log, moved).expect("move root.log away");
    node.signal(libc::SIGHUP);
    wait_for(
        "a new root.log with a line after SIGHUP",
        Duration::from_secs(10),
        || {
            let text = read(&log);
            if text.ends_with('\n') {
                Ok(())
            } else {
                Err(format!("root.log holds {text:?}"))
            }
        },
    );
}

#[test]
fn sighup_reopens_root_log_after_it_was_moved() {
    let mut node = Node::start(&[]);
    let log = node.dir().join("root.log");
    wait_for("root.log with lines", Duration::from_secs(10), || {
        let text = read(&log);
        if text.ends_with('\n') {
            Ok(())
        } else {
            Err(format!("root.log holds {text:?}"))
        }
    });
    assert!(!read(&log).contains(INVALID), "{}", read(&log));

    let first = node.dir().join("root.log.1");
    rotate(&node, &first);
    let moved_before = read(&first);
    cause_warning(&node);
    assert!(
        node.wait_log(INVALID),
        "the warning did not reach the new root.log: {:?}",
        read(&log)
    );
    assert_eq!(
        read(&first),
        moved_before,
        "the moved root.log got lines after SIGHUP"
    );

    // A second rotation works the same.
    let second = node.dir().join("root.log.2");
    rotate(&node, &second);
    let moved_before = read(&second);
    assert_eq!(moved_before.matches(INVALID).count(), 1, "{moved_before}");
    cause_warning(&node);
    assert!(
        node.wait_log(INVALID),
        "the warning did not reach the newest root.log: {:?}",
        read(&log)
    );
    assert_eq!(read(&log).matches(INVALID).count(), 1, "{}", read(&log));
    assert_eq!(
        read(&second),
        moved_before,
        "the moved root.log.2 got lines"
    );
    assert!(
        !read(&first).contains(INVALID),
        "root.log.1 got the warnings"
    );

    // SIGHUP does not stop the node.
    assert!(node.is_running(), "the node exited on SIGHUP");
    assert_eq!(node.client().get_num_connections(), NOT_SUPPORTED);
    assert!(node.stop().success(), "clean exit after the rotations");
}

#[test]
fn stats_log_is_recreated_after_it_was_moved() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("stats.log");
    let file = format!("stats.file_name={}", path.display());
    let node = Node::start(&["stats.interval=1", &file]);
    wait_for(
        "a stats line",
        Duration::from_secs(10),
        || match stats_lines(&path).len() {
            0 => Err("no line".to_owned()),
            n => Ok(n),
        },
    );
    let moved = dir.path().join("stats.log.1");
    std::fs::rename(&path, &moved).expect("move stats.log away");

    // A new stats.log appears; once it has a line, the moved file gets no more.
    wait_for(
        "a new stats.log",
        Duration::from_secs(10),
        || match stats_lines(&path).len() {
            0 => Err("no line".to_owned()),
            n => Ok(n),
        },
    );
    let moved_lines = stats_lines(&moved);
    let now = stats_lines(&path).len();
    wait_for(
        "another line in the new stats.log",
        Duration::from_secs(10),
        || match stats_lines(&path).len() {
            n if n > now => Ok(n),
            n => Err(format!("{n} lines")),
        },
    );
    assert_eq!(
        stats_lines(&moved),
        moved_lines,
        "the moved stats.log got lines"
    );
    // The new file holds whole, well-formed lines.
    assert!(parsed_stats_lines(&path).len() >= 2);
    assert_eq!(node.client().get_num_connections(), NOT_SUPPORTED);
}
