//! The `dmqnode` process harness: a real node on loopback ports from
//! [`free_port`], in its own temporary working directory, started with
//! [`NodeOptions`] and signalled only by its own PID; and one-shot runs of the
//! binary ([`run_dmqnode`]).
//!
//! A node is started when it printed its "serving" line (after the address
//! lines, which are checked) and, unless unprobed, answered a request on each
//! port. A port lost to a race with another program is retried with new
//! ports. The node's standard output (a pipe, or a pseudo-terminal) is kept
//! for the test to read; its standard error goes to `stderr.txt` and its log
//! to `root.log` in its directory, both printed when a test fails.

use std::fs::File;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::admin::Admin;
use crate::legacy::{Client, NOT_SUPPORTED};
use crate::neo::{key_hex, NeoClient, TEST_KEY, TEST_NAME};
use crate::ports::free_port;
use crate::process::{self, Output};
use crate::{IO_TIMEOUT, START_TIMEOUT};

/// Shards of a node started with [`NodeOptions::new`]: two, so that requests
/// cross shards.
pub const SHARDS: usize = 2;

/// Where a node with the neo port gets its credentials file, relative to its
/// working directory (the original's hard-coded path).
pub const CREDENTIALS_PATH: &str = "etc/credentials";

/// Standard output kept per node; more is read and dropped.
const STDOUT_KEPT_BYTES: usize = 4 << 20;

/// Start attempts with new ports when a port was lost to a race.
const START_ATTEMPTS: usize = 10;

/// The test client's credentials line, as in the original test suite: client
/// `test`, all-zero key.
pub fn credentials_line() -> String {
    format!("{TEST_NAME}:{}", key_hex(&TEST_KEY))
}

/// The credentials file of the original test suite: [`credentials_line`] and
/// a newline.
pub fn test_credentials() -> String {
    format!("{}\n", credentials_line())
}

/// The `dmqnode` binary beside the running test's binary
/// (`target/<profile>/dmqnode`), built with `cargo build -p dmq-node --bin
/// dmqnode` if it is missing (a suite of another crate run on its own).
pub fn dmqnode() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let exe = std::env::current_exe().expect("current_exe");
        // target/<profile>/deps/<test> -> target/<profile>
        let dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test binary in target/<profile>/deps");
        let path = dir.join("dmqnode");
        if !path.exists() {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let output = process::run(
                Command::new(cargo)
                    .args(["build", "-p", "dmq-node", "--bin", "dmqnode"])
                    .current_dir(env!("CARGO_MANIFEST_DIR")),
                b"",
                Duration::from_secs(600),
            );
            assert!(
                output.status.success(),
                "cargo build -p dmq-node failed: {}",
                output.stderr
            );
        }
        assert!(path.exists(), "no dmqnode at {}", path.display());
        path
    })
}

/// Runs `dmqnode` with `args` in a temporary working directory (no node left
/// running) and returns what it printed; killed and the test failed if it
/// runs longer than [`START_TIMEOUT`].
pub fn run_dmqnode(args: &[&str]) -> Output {
    run_dmqnode_with(&mut Command::new(dmqnode()), args)
}

/// As [`run_dmqnode`], with a `command` for `dmqnode` the caller prepared
/// (environment, `pre_exec`).
pub fn run_dmqnode_with(command: &mut Command, args: &[&str]) -> Output {
    let dir = tempfile::tempdir().expect("tempdir");
    process::run(
        command
            .args(args)
            .current_dir(dir.path())
            .env_remove("RUST_LOG"),
        b"",
        START_TIMEOUT,
    )
}

/// How to start a node. [`NodeOptions::new`] is what the node's own suite
/// uses; [`NodeOptions::for_clients`] what the client, CLI and bench suites use.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    shards: usize,
    neo: bool,
    channel_size_limit_bytes: u64,
    metrics: bool,
    probe: bool,
    terminal: bool,
    overrides: Vec<String>,
}

impl Default for NodeOptions {
    fn default() -> NodeOptions {
        NodeOptions::new()
    }
}

impl NodeOptions {
    /// [`SHARDS`] shards, the legacy port only, 1 MiB rings, no metrics,
    /// probed, stdout a pipe.
    pub fn new() -> NodeOptions {
        NodeOptions {
            shards: SHARDS,
            neo: false,
            channel_size_limit_bytes: 1 << 20,
            metrics: false,
            probe: true,
            terminal: false,
            overrides: Vec::new(),
        }
    }

    /// One shard, both ports, 4 MiB rings: a node as the client suites see it.
    pub fn for_clients() -> NodeOptions {
        NodeOptions {
            shards: 1,
            neo: true,
            channel_size_limit_bytes: 4 << 20,
            ..NodeOptions::new()
        }
    }

    /// `server.shards`.
    pub fn shards(mut self, shards: usize) -> NodeOptions {
        self.shards = shards;
        self
    }

    /// The neo port on a free port too, and the credentials file
    /// [`test_credentials`] at [`CREDENTIALS_PATH`]; the probe then
    /// authenticates on it.
    pub fn neo(mut self) -> NodeOptions {
        self.neo = true;
        self
    }

    /// The Prometheus endpoint on a free port ([`Node::metrics_addr`]).
    pub fn metrics(mut self) -> NodeOptions {
        self.metrics = true;
        self
    }

    /// Started as soon as the node printed its "serving" line, without a
    /// request to check that it serves.
    pub fn unprobed(mut self) -> NodeOptions {
        self.probe = false;
        self
    }

    /// Standard output a pseudo-terminal instead of a pipe.
    pub fn terminal(mut self) -> NodeOptions {
        self.terminal = true;
        self
    }

    /// `-O` overrides after the harness's own (later keys win).
    pub fn overrides<S: AsRef<str>>(mut self, overrides: &[S]) -> NodeOptions {
        self.overrides
            .extend(overrides.iter().map(|o| o.as_ref().to_owned()));
        self
    }

    /// Starts the node.
    pub fn start(self) -> Node {
        Node::start_options(self)
    }
}

/// A running (or stopped) `dmqnode` process in its own temporary working
/// directory, on fixed ports for its life (a restart keeps them).
pub struct Node {
    child: Option<Child>,
    options: NodeOptions,
    port: u16,
    neo_port: Option<u16>,
    metrics_port: Option<u16>,
    stdout: Arc<Captured>,
    /// Where this run's standard error starts in `stderr.txt` (a restart
    /// appends).
    stderr_from: u64,
    dir: tempfile::TempDir,
}

impl Node {
    /// A node of [`NodeOptions::new`] plus `overrides`.
    pub fn start(overrides: &[&str]) -> Node {
        NodeOptions::new().overrides(overrides).start()
    }

    /// As [`Node::start`], but returned as soon as it printed its "serving"
    /// line.
    pub fn start_unprobed(overrides: &[&str]) -> Node {
        NodeOptions::new().unprobed().overrides(overrides).start()
    }

    /// As [`Node::start`], with the neo port ([`NodeOptions::neo`]).
    pub fn start_neo(overrides: &[&str]) -> Node {
        NodeOptions::new().neo().overrides(overrides).start()
    }

    fn start_options(options: NodeOptions) -> Node {
        let mut last = String::new();
        for _attempt in 0..START_ATTEMPTS {
            let dir = tempfile::tempdir().expect("tempdir");
            if options.neo {
                std::fs::create_dir_all(dir.path().join("etc")).expect("mkdir etc");
                std::fs::write(dir.path().join(CREDENTIALS_PATH), test_credentials())
                    .expect("write the credentials file");
            }
            // free_port never hands out a port twice, so the ports differ.
            let mut node = Node {
                child: None,
                port: free_port(),
                neo_port: options.neo.then(free_port),
                metrics_port: options.metrics.then(free_port),
                options: options.clone(),
                stdout: Arc::new(Captured::default()),
                stderr_from: 0,
                dir,
            };
            match node.spawn() {
                Ok(()) => return node,
                Err(e) if e.contains("cannot listen") => last = e,
                Err(e) => panic!("dmqnode did not start: {e}"),
            }
        }
        panic!("dmqnode did not start in {START_ATTEMPTS} attempts: {last}");
    }

    /// Starts the node again on the same ports, in the same directory (after
    /// [`Node::kill`] or [`Node::stop`]); retries while a port is still taken.
    pub fn restart(&mut self) {
        let mut last = String::new();
        // Bounded: 50 rounds of 100 ms.
        for _ in 0..50 {
            match self.spawn() {
                Ok(()) => return,
                Err(e) if e.contains("cannot listen") => last = e,
                Err(e) => panic!("dmqnode did not restart: {e}"),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("dmqnode did not restart: {last}");
    }

    /// The overrides the harness gives every node, before the caller's.
    fn base_overrides(&self) -> Vec<String> {
        let mut overrides = vec![
            "server.address=127.0.0.1".to_owned(),
            format!("server.port={}", self.port),
            format!("server.neoport={}", self.neo_port.unwrap_or(0)),
            format!("server.shards={}", self.options.shards),
            format!(
                "server.channel_size_limit={}",
                self.options.channel_size_limit_bytes
            ),
            match self.metrics_port {
                Some(port) => format!("metrics.address=127.0.0.1:{port}"),
                None => "metrics.address=".to_owned(),
            },
            "stats.console=false".to_owned(),
            format!("log.file={}", self.log_file().display()),
            "log.level=info".to_owned(),
        ];
        if self.neo_port.is_some() {
            overrides.push(format!("server.credentials={CREDENTIALS_PATH}"));
        }
        overrides
    }

    /// Spawns the process and waits until it serves; `Err` (with its
    /// standard error) when it exited or did not serve in time, and then it
    /// is reaped.
    fn spawn(&mut self) -> Result<(), String> {
        assert!(self.child.is_none(), "the node is already running");
        let mut command = Command::new(dmqnode());
        for o in self
            .base_overrides()
            .into_iter()
            .chain(self.options.overrides.iter().cloned())
        {
            command.arg("-O").arg(o);
        }
        let stderr_path = self.dir.path().join("stderr.txt");
        let stderr = File::options()
            .create(true)
            .append(true)
            .open(&stderr_path)
            .map_err(|e| format!("{}: {e}", stderr_path.display()))?;
        self.stderr_from = stderr.metadata().map(|m| m.len()).unwrap_or(0);
        let captured = Arc::new(Captured::default());
        let (stdout, source): (Stdio, Option<File>) = if self.options.terminal {
            let (master, slave) = process::open_pty();
            (Stdio::from(slave), Some(File::from(master)))
        } else {
            (Stdio::piped(), None)
        };
        let mut child = command
            .current_dir(self.dir.path())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("spawn dmqnode: {e}"))?;
        // `command` holds the parent's copy of a pseudo-terminal's slave end:
        // close it, so that the master reads the end when the node is gone.
        drop(command);
        match source {
            Some(master) => captured.drain(master),
            None => captured.drain(child.stdout.take().expect("stdout is piped")),
        }
        self.stdout = captured;
        self.child = Some(child);
        let serving = self
            .stdout
            .wait(START_TIMEOUT, |text| {
                text.lines()
                    .any(|l| l.starts_with("dmqnode: serving with "))
            })
            .is_ok();
        if !serving {
            // A node whose output ended is exiting; one that is still silent
            // after START_TIMEOUT is killed at once.
            let wait = if self.stdout.ended() {
                START_TIMEOUT
            } else {
                Duration::ZERO
            };
            let status = self.reap_within(wait);
            return Err(format!("exit status {status:?}: {}", self.stderr()));
        }
        let text = self.stdout();
        let printed = |prefix: &str| {
            text.lines().find_map(|l| {
                l.strip_prefix(prefix)
                    .and_then(|a| a.trim().parse::<SocketAddr>().ok())
            })
        };
        assert_eq!(
            printed("dmqnode: legacy protocol on "),
            Some(self.addr()),
            "the node must print its legacy address before it serves"
        );
        assert_eq!(
            printed("dmqnode: neo protocol on "),
            self.neo_addr_if_on(),
            "the node must print its neo address (if enabled) before it serves"
        );
        if self.options.probe {
            assert_eq!(self.client().get_num_connections(), NOT_SUPPORTED);
            if self.neo_port.is_some() {
                let _neo = self.neo();
            }
        }
        Ok(())
    }

    /// Waits up to `timeout` for the process to exit, then kills it; reaps it
    /// either way. `None` if it had to be killed (or was reaped already).
    fn reap_within(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let deadline = Instant::now() + timeout;
        // Bounded: at most timeout / 10 ms + 1 rounds.
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    // ---- addresses and files ----

    /// The legacy port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The legacy address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// The neo port of a node started with [`NodeOptions::neo`].
    pub fn neo_port(&self) -> u16 {
        self.neo_port
            .expect("this node has no neo port: start it with NodeOptions::neo")
    }

    /// The neo address of a node started with [`NodeOptions::neo`].
    pub fn neo_addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.neo_port()))
    }

    /// The neo address, if the node has the neo port.
    pub fn neo_addr_if_on(&self) -> Option<SocketAddr> {
        self.neo_port
            .map(|p| SocketAddr::from((Ipv4Addr::LOCALHOST, p)))
    }

    /// The Prometheus endpoint of a node started with [`NodeOptions::metrics`].
    pub fn metrics_addr(&self) -> SocketAddr {
        let port = self
            .metrics_port
            .expect("this node has no metrics endpoint: start it with NodeOptions::metrics");
        SocketAddr::from((Ipv4Addr::LOCALHOST, port))
    }

    /// `127.0.0.1:port:neoport`, as the `dmq` tool's `--node` takes it.
    pub fn node_arg(&self) -> String {
        format!("127.0.0.1:{}:{}", self.port, self.neo_port())
    }

    /// The node's working directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The path of the node's credentials file.
    pub fn credentials_file(&self) -> PathBuf {
        self.dir().join(CREDENTIALS_PATH)
    }

    /// The admin socket path (the default, `dmqnode.socket` in the working
    /// directory).
    pub fn socket(&self) -> PathBuf {
        self.dir().join("dmqnode.socket")
    }

    /// The node's log file, `root.log` in its directory.
    pub fn log_file(&self) -> PathBuf {
        self.dir().join("root.log")
    }

    // ---- clients ----

    /// A legacy client.
    pub fn client(&self) -> Client {
        Client::connect(self.addr())
    }

    /// A neo client authenticated as the test client.
    pub fn neo(&self) -> NeoClient {
        NeoClient::connect(self.neo_addr())
    }

    /// A connection to the admin socket.
    pub fn admin(&self) -> Admin {
        Admin::connect(&self.socket())
    }

    // ---- the process ----

    /// The process id; panics if the node is not running.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the node is not running").id()
    }

    /// Sends `signal` to the node's process (by its PID), if it runs.
    pub fn signal(&self, signal: i32) {
        if let Some(child) = &self.child {
            let pid = i32::try_from(child.id()).expect("pid fits i32");
            // SAFETY: kill(2) with the PID of our own child, not reaped yet.
            let rc = unsafe { libc::kill(pid, signal) };
            assert_eq!(rc, 0, "kill({pid}, {signal})");
        }
    }

    /// Waits for the process to exit; past `timeout` it is killed with SIGKILL
    /// and the test fails.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        assert!(self.child.is_some(), "the node is not running");
        self.reap_within(timeout)
            .unwrap_or_else(|| panic!("dmqnode did not exit within {timeout:?}"))
    }

    /// SIGTERM, then the exit status (a clean shutdown is status 0).
    pub fn stop(&mut self) -> ExitStatus {
        self.signal(libc::SIGTERM);
        self.wait_exit(START_TIMEOUT)
    }

    /// SIGKILL, then the exit status: the node dies with whatever it held in
    /// memory (and one killed already is reaped).
    pub fn kill(&mut self) -> ExitStatus {
        self.signal(libc::SIGKILL);
        self.wait_exit(START_TIMEOUT)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => child.try_wait().expect("try_wait").is_none(),
            None => false,
        }
    }

    // ---- what it wrote ----

    /// What the node wrote on standard error since it was last started.
    pub fn stderr(&self) -> String {
        let mut text = Vec::new();
        if let Ok(mut file) = File::open(self.dir().join("stderr.txt")) {
            use std::io::{Seek, SeekFrom};
            let _ = file.seek(SeekFrom::Start(self.stderr_from));
            let _ = file.read_to_end(&mut text);
        }
        String::from_utf8_lossy(&text).into_owned()
    }

    /// The whole `root.log`.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_file()).unwrap_or_default()
    }

    /// Whether root.log contains `needle` within [`IO_TIMEOUT`] (the node may
    /// log a moment after it answered).
    pub fn wait_log(&self, needle: &str) -> bool {
        crate::wait::wait_until(IO_TIMEOUT, Duration::from_millis(20), || {
            self.log().contains(needle)
        })
    }

    /// What the node wrote on standard output since it was last started
    /// (invalid UTF-8 replaced).
    pub fn stdout(&self) -> String {
        self.stdout.text()
    }

    /// Waits until `done` holds for the whole standard output so far; `Err`
    /// (with the output) past `timeout` or when the output ended first.
    pub fn wait_stdout(
        &self,
        timeout: Duration,
        done: impl Fn(&str) -> bool,
    ) -> Result<(), String> {
        self.stdout.wait(timeout, done)
    }

    /// The whole standard output once it ended (the node exited), or what
    /// came within `timeout`.
    pub fn stdout_to_end(&self, timeout: Duration) -> String {
        let _ = self.stdout.wait(timeout, |_| false);
        self.stdout()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // No panic here: a second one while the test unwinds would abort it.
        if let Some(child) = &self.child {
            if let Ok(pid) = i32::try_from(child.id()) {
                // SAFETY: kill(2) with the PID of our own unreaped child.
                unsafe { libc::kill(pid, libc::SIGTERM) };
            }
        }
        self.reap_within(START_TIMEOUT);
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            eprintln!("--- dmqnode :{} stderr ---\n{}", self.port, self.stderr());
            eprintln!(
                "--- dmqnode :{} root.log (last lines, newest first) ---",
                self.port
            );
            for line in tail {
                eprintln!("{line}");
            }
        }
    }
}

/// `n` nodes of [`NodeOptions::for_clients`], started one after the other.
pub fn nodes(n: usize) -> Vec<Node> {
    (0..n).map(|_| NodeOptions::for_clients().start()).collect()
}

/// A process's standard output, read by a thread of its own until it ends.
#[derive(Default)]
struct Captured {
    state: Mutex<CapturedState>,
    changed: Condvar,
}

#[derive(Default)]
struct CapturedState {
    /// The first [`STDOUT_KEPT_BYTES`] bytes.
    bytes: Vec<u8>,
    ended: bool,
}

impl Captured {
    /// Reads `source` in a thread until its end or an error (the master of a
    /// pseudo-terminal reads EIO once the node is gone).
    fn drain(self: &Arc<Self>, mut source: impl Read + Send + 'static) {
        let captured = Arc::clone(self);
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                let n = match source.read(&mut buf) {
                    Ok(0) | Err(_) => 0,
                    Ok(n) => n,
                };
                let mut state = captured.state.lock().unwrap_or_else(|e| e.into_inner());
                if n == 0 {
                    state.ended = true;
                    captured.changed.notify_all();
                    return;
                }
                let room = STDOUT_KEPT_BYTES.saturating_sub(state.bytes.len());
                state.bytes.extend_from_slice(&buf[..n.min(room)]);
                captured.changed.notify_all();
            }
        });
    }

    fn ended(&self) -> bool {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).ended
    }

    fn text(&self) -> String {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&state.bytes).into_owned()
    }

    fn wait(&self, timeout: Duration, done: impl Fn(&str) -> bool) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        // Bounded by the deadline.
        loop {
            let text = String::from_utf8_lossy(&state.bytes);
            if done(&text) {
                return Ok(());
            }
            if state.ended {
                return Err(format!("the output ended; output so far:\n{text}"));
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return Err(format!(
                    "not seen within {timeout:?}; output so far:\n{text}"
                ));
            };
            state = self
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}
