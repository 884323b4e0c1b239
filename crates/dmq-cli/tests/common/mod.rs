//! The `dmq` tool's test harness: nodes from `dmq-testkit`, and runs of the
//! built `dmq` binary.

// Each test file uses only part of the harness.
#![allow(dead_code)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[allow(unused_imports)]
pub use dmq_testkit::*;

/// What a `dmq` run left behind.
pub struct Output {
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Output {
    /// Standard output as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// Runs the `dmq` binary with `args`, `stdin` as its standard input and extra
/// environment `env`; killed (and the test failed) after 60 s.
pub fn dmq_with(args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Output {
    use std::io::{Read, Write};
    let mut command = Command::new(env!("CARGO_BIN_EXE_dmq"));
    command
        .args(args)
        .env_remove("DMQ_CREDENTIALS")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("spawn dmq");
    let mut input = child.stdin.take().expect("stdin");
    let stdin = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = out.read_to_end(&mut bytes);
        bytes
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = err.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("dmq {args:?} did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let _ = writer.join();
    Output {
        code: status.code(),
        stdout: out.join().expect("stdout thread"),
        stderr: err.join().expect("stderr thread"),
    }
}

/// Runs `dmq` with `args` and no input.
pub fn dmq(args: &[&str]) -> Output {
    dmq_with(args, b"", &[])
}

/// Runs `dmq` and asserts it succeeded.
pub fn dmq_ok(args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Output {
    let output = dmq_with(args, stdin, env);
    assert_eq!(
        output.code,
        Some(0),
        "dmq {args:?} failed: {}",
        output.stderr
    );
    output
}
