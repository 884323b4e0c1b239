//! Helpers shared by the harness's tests: run the `dmq-bench` binary and read
//! its JSON report, and stop the servers the tests start.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Output};

use dmq_bench::report::Report;

/// The binary under test.
pub fn bench() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dmq-bench"));
    command.env("DMQ_CREDENTIALS", dmq_testkit::credentials_line());
    command
}

/// Runs `dmq-bench ARGS` and returns its output.
pub fn run(args: &[&str]) -> Output {
    bench().args(args).output().expect("run dmq-bench")
}

/// Runs `dmq-bench LINE --json FILE --no-progress` (LINE split at whitespace:
/// no argument of these tests holds a space) with the report in `dir`, asserts
/// that it succeeded, and returns the report.
pub fn run_report(dir: &Path, name: &str, line: &str) -> Report {
    let args: Vec<&str> = line.split_whitespace().collect();
    let path = dir.join(format!("{name}.json"));
    let output = bench()
        .args(&args)
        .args(["--no-progress", "--json"])
        .arg(&path)
        .output()
        .expect("run dmq-bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "dmq-bench {args:?} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(stdout.contains("records/s"), "no summary:\n{stdout}");
    let report = Report::read_json(&path).expect("report");
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    report
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
