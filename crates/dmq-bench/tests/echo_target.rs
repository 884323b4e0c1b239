//! The echo target answers like the node: Push, ping and Produce run against it
//! with the same client code, and a Pop finds nothing.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

use common::{bench, run_report};

/// `dmq-bench echo-server` on a free port, killed on drop.
struct Echo {
    child: Child,
    addr: String,
}

impl Echo {
    fn start() -> Echo {
        let mut child = bench()
            .args(["echo-server", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn echo-server");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("first line");
        let addr = line
            .trim()
            .strip_prefix("dmq-bench echo-server: listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line}"))
            .to_owned();
        Echo { child, addr }
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn push_ping_produce_and_pop_against_the_echo_target() {
    let echo = Echo::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let a = echo.addr.as_str();
    let push = run_report(
        dir.path(),
        "push",
        &[
            "push",
            "--target",
            "echo",
            "--addr",
            a,
            "--connections",
            "3",
            "--in-flight",
            "16",
            "--count",
            "10000",
            "--server-pid",
            &echo.child.id().to_string(),
        ],
    );
    assert_eq!((push.records, push.bytes), (10_000, 1_000_000));
    assert!(push.server.is_some());
    let ping = run_report(
        dir.path(),
        "ping",
        &["ping", "--target", "echo", "--addr", a, "--count", "500"],
    );
    assert_eq!(ping.records, 500);
    let produce = run_report(
        dir.path(),
        "produce",
        &[
            "produce",
            "--target",
            "echo",
            "--addr",
            a,
            "--connections",
            "2",
            "--duration",
            "0.5",
            "--warmup",
            "0.1",
        ],
    );
    assert!(produce.records > 0 && produce.mb_per_s > 0.0);
    let pop = run_report(
        dir.path(),
        "pop",
        &["pop", "--target", "echo", "--addr", a, "--count", "10"],
    );
    assert_eq!((pop.records, pop.empty_count), (0, 1));
}
