//! What the harness's tests share beyond dmq-testkit: bounded runs of the
//! `dmq-bench` binary and its JSON report, and stopping the servers the tests
//! start.

use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use dmq_bench::report::Report;
use dmq_testkit::node::{credentials_line, Node, NodeOptions};
use dmq_testkit::process::{self, Output};

/// Longest run of the binary: the workloads of these tests take a few
/// seconds at most.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// The binary under test.
pub fn bench() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dmq-bench"));
    command.env("DMQ_CREDENTIALS", credentials_line());
    command
}

/// Runs `dmq-bench ARGS` and returns its output.
pub fn run(args: &[&str]) -> Output {
    process::run(bench().args(args), b"", RUN_TIMEOUT)
}

/// Runs `dmq-bench LINE --json FILE --no-progress` (LINE split at whitespace:
/// no argument of these tests holds a space) with the report in `dir`, asserts
/// that it succeeded, and returns the report.
pub fn run_report(dir: &Path, name: &str, line: &str) -> Report {
    let args: Vec<&str> = line.split_whitespace().collect();
    let path = dir.join(format!("{name}.json"));
    let output = process::run(
        bench()
            .args(&args)
            .args(["--no-progress", "--json"])
            .arg(&path),
        b"",
        RUN_TIMEOUT,
    );
    let stdout = output.text();
    assert!(
        output.status.success(),
        "dmq-bench {args:?} failed ({}):\n{stdout}\n{}",
        output.status,
        output.stderr
    );
    assert!(stdout.contains("records/s"), "no summary:\n{stdout}");
    let report = Report::read_json(&path).expect("report");
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    report
}

/// A node for a workload: as the client suites start it, with 64 MiB rings
/// (a whole workload's records fit in memory), plus `overrides`.
pub fn workload_node(overrides: &[&str]) -> Node {
    NodeOptions::for_clients()
        .overrides(&["server.channel_size_limit=67108864"])
        .overrides(overrides)
        .start()
}

/// `127.0.0.1:PORT`.
pub fn local(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

/// A server process the test started, killed through its own handle (so by its
/// PID) and reaped when the test ends, however it ends.
pub struct KillOnDrop(pub Child);

impl KillOnDrop {
    pub fn id(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
