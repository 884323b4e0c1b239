//! The live console view, `stats.console=auto`: with stdout a terminal (a
//! pseudo-terminal here) the node redraws a view with its connections,
//! throughput and channels; with stdout a pipe it prints only its start-up
//! lines and no escape sequence.

use dmq_testkit::legacy::{Client, OK};
use dmq_testkit::node::{Node, NodeOptions, SHARDS};
use dmq_testkit::records::record;
use dmq_testkit::stats::stats_lines;
use dmq_testkit::wait::wait_for;
use dmq_testkit::IO_TIMEOUT;

use crate::support::names_on_each_shard;

/// A node with the console on `auto` and stats.log every second in its
/// directory, its stdout a pseudo-terminal (`terminal`) or a pipe; not
/// probed, so that no connection but the test's own is ever counted.
fn start(terminal: bool) -> Node {
    let options = NodeOptions::new().unprobed().overrides(&[
        "stats.console=auto",
        "stats.interval=1",
        "stats.file_name=stats.log",
    ]);
    if terminal {
        options.terminal().start()
    } else {
        options.start()
    }
}

/// The last complete screen of the view (between the last two clears).
fn last_screen(output: &str) -> &str {
    let screens: Vec<&str> = output.split("\x1b[2J").collect();
    match screens.len() {
        0 | 1 => "",
        // The last one may still be arriving.
        n => screens[n - 2],
    }
}

/// Whether `screen` lists storage `name` with `records` records and `bytes` bytes.
fn lists(screen: &str, name: &str, records: usize, bytes: usize) -> bool {
    screen.lines().any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields.len() >= 3
            && fields[0] == name
            && fields[1] == records.to_string()
            && fields[2] == bytes.to_string()
    })
}

#[test]
fn console_view_on_a_terminal_shows_connections_throughput_and_channels() {
    let node = start(true);
    let out = node.stdout();
    assert!(
        out.contains(&format!("dmqnode: legacy protocol on {}", node.addr())),
        "{out}"
    );

    let channels = names_on_each_shard("console", 1);
    let mut c = Client::connect(node.addr());
    for (n, ch) in [3, 5].into_iter().zip(&channels) {
        for i in 0..n {
            assert_eq!(c.push(ch, record(i)), OK);
        }
    }
    // Each record is 9 bytes, 17 with its header.
    node.wait_stdout(IO_TIMEOUT, |out| {
        let screen = last_screen(out);
        screen.contains("connections legacy 1 /")
            && screen.contains("throughput")
            && lists(screen, &channels[0], 3, 51)
            && lists(screen, &channels[1], 5, 85)
    })
    .unwrap_or_else(|e| panic!("a view with both channels: {e}"));
    drop(c);
}

#[test]
fn console_auto_with_stdout_a_pipe_prints_only_the_start_up_lines() {
    let mut node = start(false);
    let mut c = Client::connect(node.addr());
    assert_eq!(c.push("consolepipe", "v"), OK);
    // Two stats lines after the push: the one-second tasks of shard 0 (the
    // view would be one of them) have run since.
    let path = node.dir().join("stats.log");
    let before = stats_lines(&path).len();
    wait_for("two more stats lines", IO_TIMEOUT, || {
        match stats_lines(&path).len() {
            n if n >= before + 2 => Ok(()),
            n => Err(format!("{n} lines")),
        }
    });
    drop(c);
    let status = node.stop();
    assert!(status.success(), "exit status {status}");
    // The whole output, up to the end of the pipe.
    let out = node.stdout_to_end(IO_TIMEOUT);
    assert!(!out.contains('\x1b'), "escape sequences on a pipe: {out:?}");
    assert_eq!(
        out,
        format!(
            "dmqnode: legacy protocol on {}\ndmqnode: serving with {SHARDS} shard(s)\n",
            node.addr(),
        ),
        "stdout"
    );
}
