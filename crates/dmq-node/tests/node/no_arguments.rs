//! `dmqnode` with no arguments serves the legacy protocol on the embedded
//! defaults (127.0.0.1:10000), with its files under the working directory.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::time::Duration;

use dmq_testkit::legacy::{Client, OK};
use dmq_testkit::node::{dmqnode, run_dmqnode};
use dmq_testkit::IO_TIMEOUT;

#[test]
fn no_arguments_serves_on_the_default_port() {
    let default: SocketAddr = "127.0.0.1:10000".parse().expect("addr");
    let dir = tempfile::tempdir().expect("tempdir");
    // Another process may hold the default port on this machine; then the node
    // must fail cleanly (exit 1, naming the key) rather than serve.
    let port_free = TcpListener::bind(default).is_ok();
    if !port_free {
        let output = run_dmqnode(&[]);
        assert_eq!(output.code(), Some(1), "{}", output.stderr);
        assert!(output.stderr.contains("server.port"), "{}", output.stderr);
        return;
    }
    let mut child = Command::new(dmqnode())
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dmqnode");
    let pid = child.id() as i32;
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    while let Ok(line) = rx.recv_timeout(IO_TIMEOUT) {
        let serving = line.starts_with("dmqnode: serving with ");
        lines.push(line);
        if serving {
            break;
        }
    }
    assert!(
        lines
            .iter()
            .any(|l| l == "dmqnode: legacy protocol on 127.0.0.1:10000"),
        "{lines:?}"
    );

    let mut client = Client::connect(default);
    assert_eq!(client.push("first_run", "hello"), OK);
    assert_eq!(client.pop("first_run"), Ok(b"hello".to_vec()));
    drop(client);
    assert!(
        dir.path().join("log/root.log").exists(),
        "log/root.log in the working directory"
    );

    // SAFETY: plain kill(2) on our own child's PID.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let mut status = None;
    for _ in 0..200 {
        if let Some(s) = child.try_wait().expect("try_wait") {
            status = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = status.unwrap_or_else(|| {
        let _ = child.kill();
        child.wait().expect("wait after kill")
    });
    assert_eq!(status.code(), Some(0));
}
