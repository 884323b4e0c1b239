//! What the `dmq` tool's tests share beyond dmq-testkit: bounded runs of the
//! built `dmq` binary.

use std::process::Command;
use std::time::Duration;

use dmq_testkit::process::{self, Output};

/// Runs the `dmq` binary with `args`, `stdin` as its standard input and extra
/// environment `env` (DMQ_CREDENTIALS only from there); killed (and the test
/// failed) after 60 s.
pub fn dmq_with(args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dmq"));
    command.args(args).env_remove("DMQ_CREDENTIALS");
    for (key, value) in env {
        command.env(key, value);
    }
    process::run(&mut command, stdin, Duration::from_secs(60))
}

/// Runs `dmq` with `args` and no input.
pub fn dmq(args: &[&str]) -> Output {
    dmq_with(args, b"", &[])
}

/// Runs `dmq` and asserts it succeeded.
pub fn dmq_ok(args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Output {
    let output = dmq_with(args, stdin, env);
    assert_eq!(
        output.code(),
        Some(0),
        "dmq {args:?} failed: {}",
        output.stderr
    );
    output
}
