//! The live console view, `stats.console=auto`: with stdout a terminal (a
//! pseudo-terminal here) the node redraws a view with its connections,
//! throughput and channels; with stdout a pipe it prints only its start-up
//! lines and no escape sequence.
//!
//! These tests start the node themselves (the harness always gives it a pipe
//! and `stats.console=false`) and stop it by its PID.

mod common;
mod obs;

use std::fs::File;
use std::io::Read;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use common::{free_port, names_on_each_shard, record, Client, IO_TIMEOUT, OK};
use obs::{stats_lines, wait_for};

/// A `dmqnode` started by this file, stopped by its PID when dropped.
struct OwnNode {
    child: Option<Child>,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl OwnNode {
    /// Spawns the node with `stdout`, the console on `auto`, stats.log every
    /// second in its directory, no neo port and no metrics.
    fn spawn(stdout: Stdio) -> OwnNode {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let overrides = [
            "server.address=127.0.0.1".to_owned(),
            format!("server.port={port}"),
            "server.neoport=0".to_owned(),
            format!("server.shards={}", common::SHARDS),
            "server.channel_size_limit=1048576".to_owned(),
            "metrics.address=".to_owned(),
            "stats.console=auto".to_owned(),
            "stats.interval=1".to_owned(),
            format!("stats.file_name={}", dir.path().join("stats.log").display()),
            format!("log.file={}", dir.path().join("root.log").display()),
            "log.level=info".to_owned(),
        ];
        let mut command = Command::new(env!("CARGO_BIN_EXE_dmqnode"));
        for o in &overrides {
            command.arg("-O").arg(o);
        }
        let stderr = File::create(dir.path().join("stderr.txt")).expect("stderr file");
        let child = command
            .current_dir(dir.path())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .expect("spawn dmqnode");
        // `command` holds the parent's copy of the stdout end: close it now.
        drop(command);
        OwnNode {
            child: Some(child),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            dir,
        }
    }

    fn stats_file(&self) -> std::path::PathBuf {
        self.dir.path().join("stats.log")
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.txt")).unwrap_or_default()
    }

    /// SIGTERM, then waits for the exit (SIGKILL past [`IO_TIMEOUT`]).
    fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        if let Ok(pid) = i32::try_from(child.id()) {
            // SAFETY: kill(2) on the PID of our own child, not reaped yet.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + IO_TIMEOUT;
        // Bounded: at most IO_TIMEOUT / 10 ms rounds.
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }
}

impl Drop for OwnNode {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("--- dmqnode stderr ---\n{}", self.stderr());
        }
    }
}

/// A pseudo-terminal: (master, slave), both close-on-exec.
fn open_pty() -> (OwnedFd, OwnedFd) {
    let mut master: libc::c_int = -1;
    let mut slave: libc::c_int = -1;
    // SAFETY: openpty writes two descriptors into the ints we own; the name,
    // termios and window-size arguments may be null.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    for fd in [master, slave] {
        // SAFETY: fcntl on a descriptor we just got; the child gets the slave
        // through dup2, which clears close-on-exec on its copy.
        let rc = unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        assert_eq!(rc, 0, "fcntl: {}", std::io::Error::last_os_error());
    }
    // SAFETY: both descriptors are open and owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) }
}

/// Reads `source` in a thread, passing chunks on until EOF or an error (the
/// master side of a pty reads EIO once the child is gone).
fn reader(mut source: impl Read + Send + 'static) -> Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            match source.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    rx
}

/// Accumulates the output in `seen` until `done` holds for it; an error
/// after `timeout` or when the output ends first.
fn read_until(
    rx: &Receiver<Vec<u8>>,
    seen: &mut Vec<u8>,
    timeout: Duration,
    done: impl Fn(&str) -> bool,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    // Bounded: every round waits for a chunk until the deadline.
    loop {
        if done(&String::from_utf8_lossy(seen)) {
            return Ok(());
        }
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            return Err(format!(
                "not seen within {timeout:?}; output so far:\n{}",
                String::from_utf8_lossy(seen)
            ));
        };
        match rx.recv_timeout(left) {
            Ok(chunk) => seen.extend(chunk),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(format!(
                    "the output ended; output so far:\n{}",
                    String::from_utf8_lossy(seen)
                ))
            }
        }
    }
}

/// Starts a node whose stdout is a pseudo-terminal (`pty`) or a pipe, and
/// reads it until the serving line; returns the node, the rest of its output
/// to come, and the output so far. A port lost to a race is retried.
fn start(pty: bool) -> (OwnNode, Receiver<Vec<u8>>, Vec<u8>) {
    let mut last = String::new();
    for _attempt in 0..3 {
        let (node, rx) = if pty {
            let (master, slave) = open_pty();
            let node = OwnNode::spawn(Stdio::from(slave));
            (node, reader(File::from(master)))
        } else {
            let mut node = OwnNode::spawn(Stdio::piped());
            let stdout = node
                .child
                .as_mut()
                .and_then(|c| c.stdout.take())
                .expect("stdout");
            (node, reader(stdout))
        };
        let mut seen = Vec::new();
        match read_until(&rx, &mut seen, IO_TIMEOUT, |out| {
            out.contains("dmqnode: serving with ")
        }) {
            Ok(()) => return (node, rx, seen),
            Err(e) => {
                last = format!("{e}\nstderr: {}", node.stderr());
                if !last.contains("cannot listen") {
                    break;
                }
            }
        }
    }
    panic!("dmqnode did not start: {last}");
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
    let (node, rx, mut seen) = start(true);
    let out = String::from_utf8_lossy(&seen).into_owned();
    assert!(
        out.contains(&format!("dmqnode: legacy protocol on {}", node.addr)),
        "{out}"
    );

    let channels = names_on_each_shard("console", 1);
    let mut c = Client::connect(node.addr);
    for (n, ch) in [3, 5].into_iter().zip(&channels) {
        for i in 0..n {
            assert_eq!(c.push(ch, record(i)), OK);
        }
    }
    // Each record is 9 bytes, 17 with its header.
    read_until(&rx, &mut seen, IO_TIMEOUT, |out| {
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
    let (mut node, rx, mut seen) = start(false);
    let mut c = Client::connect(node.addr);
    assert_eq!(c.push("consolepipe", "v"), OK);
    // Two stats lines after the push: the one-second tasks of shard 0 (the
    // view would be one of them) have run since.
    let path = node.stats_file();
    let before = stats_lines(&path).len();
    wait_for("two more stats lines", IO_TIMEOUT, || {
        match stats_lines(&path).len() {
            n if n >= before + 2 => Ok(()),
            n => Err(format!("{n} lines")),
        }
    });
    drop(c);
    let status = node.stop().expect("the node exits on SIGTERM");
    assert!(status.success(), "exit status {status}");
    // The whole output, up to the end of the pipe.
    let _ = read_until(&rx, &mut seen, IO_TIMEOUT, |_| false);
    let out = String::from_utf8_lossy(&seen);
    assert!(!out.contains('\x1b'), "escape sequences on a pipe: {out:?}");
    assert_eq!(
        out,
        format!(
            "dmqnode: legacy protocol on {}\ndmqnode: serving with {} shard(s)\n",
            node.addr,
            common::SHARDS
        ),
        "stdout"
    );
}
