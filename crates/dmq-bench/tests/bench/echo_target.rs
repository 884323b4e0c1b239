//! The echo target answers like the node: Push, ping and Produce run against it
//! with the same client code, and a Pop finds nothing.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;

use dmq_testkit::ports::free_port;
use dmq_testkit::IO_TIMEOUT;

use crate::support::{bench, run_report, KillOnDrop};

/// `dmq-bench echo-server` on a free port, killed on drop.
struct Echo {
    child: KillOnDrop,
    addr: String,
}

impl Echo {
    /// Starts the server and reads its first line; a port lost to a race (the
    /// server exits without that line) is retried with another one.
    fn start() -> Echo {
        let mut last = String::new();
        for _attempt in 0..5 {
            let listen = format!("127.0.0.1:{}", free_port());
            let mut child = bench()
                .args(["echo-server", "--listen", &listen])
                .stdout(Stdio::piped())
                .spawn()
                .expect("spawn echo-server");
            let stdout = child.stdout.take().expect("stdout");
            let child = KillOnDrop(child);
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                let mut line = String::new();
                let _ = BufReader::new(stdout).read_line(&mut line);
                let _ = tx.send(line);
            });
            let line = rx.recv_timeout(IO_TIMEOUT).unwrap_or_default();
            if let Some(addr) = line
                .trim()
                .strip_prefix("dmq-bench echo-server: listening on ")
            {
                assert_eq!(addr, listen, "echo-server listens where it was told");
                return Echo {
                    child,
                    addr: addr.to_owned(),
                };
            }
            // Its reason, if any, went to the test's standard error.
            last = format!("first line {line:?}");
        }
        panic!("echo-server did not start: {last}");
    }
}

#[test]
fn push_ping_produce_and_pop_against_the_echo_target() {
    let echo = Echo::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let echo_args = format!("--target echo --addr {}", echo.addr);
    let push = run_report(
        dir.path(),
        "push",
        &format!(
            "push {echo_args} --connections 3 --in-flight 16 --count 10000 --server-pid {}",
            echo.child.id()
        ),
    );
    assert_eq!((push.records, push.bytes), (10_000, 1_000_000));
    assert!(push.server.is_some());
    let ping = run_report(dir.path(), "ping", &format!("ping {echo_args} --count 500"));
    assert_eq!(ping.records, 500);
    let produce = run_report(
        dir.path(),
        "produce",
        &format!("produce {echo_args} --connections 2 --duration 0.5 --warmup 0.1"),
    );
    assert!(produce.records > 0 && produce.mb_per_s > 0.0);
    let pop = run_report(dir.path(), "pop", &format!("pop {echo_args} --count 10"));
    assert_eq!((pop.records, pop.empty_count), (0, 1));
}
