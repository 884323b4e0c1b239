//! Test support shared by the client and CLI test suites (not published): start,
//! kill and restart real `dmqnode` processes on free loopback ports, each in its
//! own temporary working directory. Every wait is bounded; a node is always
//! signalled by its own PID.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

/// Longest wait for a node to start or exit.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

/// The test client's name and key, as in the original test suite.
pub fn credentials_line() -> String {
    format!("test:{}", "0".repeat(256))
}

/// The `dmqnode` binary beside this test's binary (`target/debug/dmqnode`), built
/// with `cargo build -p dmq-node --bin dmqnode` if it is missing.
pub fn dmqnode() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let exe = std::env::current_exe().expect("current_exe");
        // target/debug/deps/<test> -> target/debug
        let dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test binary in target/<profile>/deps");
        let path = dir.join("dmqnode");
        if !path.exists() {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = Command::new(cargo)
                .args(["build", "-p", "dmq-node", "--bin", "dmqnode"])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .expect("run cargo build for dmqnode");
            assert!(status.success(), "cargo build -p dmq-node failed");
        }
        assert!(path.exists(), "no dmqnode at {}", path.display());
        path
    })
}

/// A port that was free a moment ago on 127.0.0.1, and that this process never
/// handed out before: the node binds with `SO_REUSEPORT`, so two nodes given the
/// same port would both start and share its connections.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    for _ in 0..1000 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local addr").port();
        if GIVEN
            .lock()
            .map(|mut given| given.insert(port))
            .unwrap_or(false)
        {
            return port;
        }
    }
    panic!("no new free port in 1000 tries");
}

/// A running (or killed) `dmqnode` with fixed ports and its own working directory.
pub struct Node {
    child: Option<Child>,
    port: u16,
    neo_port: u16,
    pub dir: tempfile::TempDir,
    /// Overrides after the harness's own (later keys win).
    extra: Vec<String>,
}

impl Node {
    /// A node on two free ports, serving.
    pub fn start() -> Node {
        Node::start_with(&[])
    }

    /// As [`Node::start`], with extra `-O` overrides.
    pub fn start_with(extra: &[String]) -> Node {
        let mut last = String::new();
        for _ in 0..10 {
            let dir = tempfile::tempdir().expect("tempdir");
            std::fs::create_dir_all(dir.path().join("etc")).expect("mkdir etc");
            std::fs::write(
                dir.path().join("etc/credentials"),
                format!("{}\n", credentials_line()),
            )
            .expect("write credentials");
            // free_port never hands out a port twice, so the two differ.
            let mut node = Node {
                child: None,
                port: free_port(),
                neo_port: free_port(),
                dir,
                extra: extra.to_vec(),
            };
            match node.spawn() {
                Ok(()) => return node,
                Err(e) => last = e,
            }
        }
        panic!("dmqnode did not start: {last}");
    }

    /// Starts the node again on the same ports, in the same directory (after
    /// [`Node::kill`]); retries while the ports are still taken.
    pub fn restart(&mut self) {
        let mut last = String::new();
        for _ in 0..50 {
            match self.spawn() {
                Ok(()) => return,
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("dmqnode did not restart: {last}");
    }

    fn spawn(&mut self) -> Result<(), String> {
        assert!(self.child.is_none(), "node already running");
        let overrides = [
            "server.address=127.0.0.1".to_string(),
            format!("server.port={}", self.port),
            format!("server.neoport={}", self.neo_port),
            "server.credentials=etc/credentials".into(),
            "metrics.address=".into(),
            "server.shards=1".into(),
            "stats.console=false".into(),
            "server.channel_size_limit=4194304".into(),
        ];
        let mut args = Vec::new();
        for o in overrides.into_iter().chain(self.extra.iter().cloned()) {
            args.push("-O".to_string());
            args.push(o);
        }
        let stderr_path = self.dir.path().join("stderr.txt");
        let stderr = std::fs::File::create(&stderr_path).map_err(|e| e.to_string())?;
        let mut child = Command::new(dmqnode())
            .args(&args)
            .current_dir(self.dir.path())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("spawn dmqnode: {e}"))?;
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // Drains stdout until the node exits.
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + START_TIMEOUT;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match rx.recv_timeout(left) {
                Ok(line) if line.starts_with("dmqnode: serving with ") => {
                    self.child = Some(child);
                    return Ok(());
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        Err(std::fs::read_to_string(&stderr_path).unwrap_or_default())
    }

    /// The legacy port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The neo port.
    pub fn neo_port(&self) -> u16 {
        self.neo_port
    }

    /// `127.0.0.1:port:neoport`, as the `dmq` tool's `--node` takes it.
    pub fn node_arg(&self) -> String {
        format!("127.0.0.1:{}:{}", self.port, self.neo_port)
    }

    /// The admin socket path.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("dmqnode.socket")
    }

    /// Sends `signal` to the node (by its PID) and reaps it; past
    /// [`START_TIMEOUT`] it is killed. `Err` says what went wrong; the node is
    /// reaped either way.
    fn signal(&mut self, signal: i32) -> Result<(), String> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let pid = i32::try_from(child.id()).expect("pid fits i32");
        // SAFETY: kill(2) on the PID of our own child, not yet reaped.
        let rc = unsafe { libc::kill(pid, signal) };
        let mut result = if rc == 0 {
            Ok(())
        } else {
            Err(format!("kill({pid}, {signal}) failed"))
        };
        let deadline = Instant::now() + START_TIMEOUT;
        // Bounded: at most START_TIMEOUT / 10 ms rounds.
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return result;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        if result.is_ok() {
            result = Err(format!("dmqnode {pid} did not exit after signal {signal}"));
        }
        result
    }

    /// SIGKILL, then reap: the node dies with whatever it held in memory.
    pub fn kill(&mut self) {
        self.signal(libc::SIGKILL).unwrap_or_else(|e| panic!("{e}"));
    }

    /// SIGTERM, then reap.
    pub fn stop(&mut self) {
        self.signal(libc::SIGTERM).unwrap_or_else(|e| panic!("{e}"));
    }

    /// The node's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // No panic here: a second one while the test unwinds would abort it.
        if let Err(e) = self.signal(libc::SIGTERM) {
            eprintln!("{e}");
        }
        if std::thread::panicking() {
            let stderr = std::fs::read_to_string(self.dir.path().join("stderr.txt"));
            eprintln!(
                "--- dmqnode :{} stderr ---\n{}",
                self.port,
                stderr.unwrap_or_default()
            );
        }
    }
}

/// `n` nodes, started one after the other.
pub fn nodes(n: usize) -> Vec<Node> {
    (0..n).map(|_| Node::start()).collect()
}
