//! Test harness shared by the crate tests: start and stop a real `dmqnode`
//! process on a free loopback port, and a small blocking legacy-protocol client
//! over `std::net::TcpStream`.
//!
//! Every wait is bounded (reads time out after [`IO_TIMEOUT`], loops have a
//! fixed number of rounds), and a node is always stopped by its own PID.

// Each test file uses only part of the harness.
#![allow(dead_code)]

pub mod checkers;
pub mod neo;
pub mod writers;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use dmq_proto::legacy::{
    encode_array, encode_channel_list, encode_stream_end, parse_array, parse_status,
    Command as Cmd, Request, Status, MAX_ARRAY_LEN,
};

/// Longest wait for any single reply, start-up or exit.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

pub const OK: i32 = Status::Ok as i32;
pub const NOT_SUPPORTED: i32 = Status::NotSupported as i32;
pub const OUT_OF_MEMORY: i32 = Status::OutOfMemory as i32;
pub const EMPTY_VALUE: i32 = Status::EmptyValue as i32;
pub const BAD_CHANNEL_NAME: i32 = Status::BadChannelName as i32;
pub const ERROR: i32 = Status::Error as i32;

/// The dmqtest record format: 9-digit zero-padded decimal.
pub fn record(i: usize) -> Vec<u8> {
    format!("{i:09}").into_bytes()
}

/// Number of shards of the nodes started by [`Node::start`].
pub const SHARDS: usize = 2;

/// The shard that owns `channel` on a node with `shards` shards.
pub fn shard_of(channel: &str, shards: usize) -> usize {
    dmq_node::route::shard_for(channel.as_bytes(), shards)
}

/// `per_shard` channel names `prefix0`, `prefix1`, ... owned by each shard of a
/// [`SHARDS`]-shard node, interleaved shard 0, shard 1, shard 0, ...
pub fn names_on_each_shard(prefix: &str, per_shard: usize) -> Vec<String> {
    let mut by_shard: Vec<Vec<String>> = vec![Vec::new(); SHARDS];
    for i in 0..100_000 {
        let name = format!("{prefix}{i}");
        let list = &mut by_shard[shard_of(&name, SHARDS)];
        if list.len() < per_shard {
            list.push(name);
        }
        if by_shard.iter().all(|l| l.len() == per_shard) {
            break;
        }
    }
    assert!(
        by_shard.iter().all(|l| l.len() == per_shard),
        "cannot find {per_shard} names per shard with prefix {prefix}"
    );
    (0..per_shard)
        .flat_map(|i| by_shard.iter().map(move |l| l[i].clone()))
        .collect()
}

/// A small deterministic PRNG (xorshift64*), so failures reproduce.
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> XorShift {
        XorShift(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }
}

/// A port that was free a moment ago on 127.0.0.1 (the node may still lose a
/// race for it; [`Node::start`] retries then).
pub fn free_port() -> u16 {
    // Never the same port twice in one test process: two nodes told the same
    // port would fail to start (the node refuses a port in use), and a retry
    // costs time.
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    for _ in 0..100 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local addr").port();
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
    panic!("no unused free port after 100 tries");
}

/// Overrides every test node gets before its own: no neo port, no metrics,
/// small rings, logs in the node's temporary directory.
fn base_overrides(port: u16, log_file: &std::path::Path) -> Vec<String> {
    vec![
        "server.address=127.0.0.1".into(),
        format!("server.port={port}"),
        "server.neoport=0".into(),
        format!("server.shards={SHARDS}"),
        "server.channel_size_limit=1048576".into(),
        "metrics.address=".into(),
        "stats.console=false".into(),
        format!("log.file={}", log_file.display()),
        "log.level=info".into(),
    ]
}

/// Where [`Node::start_neo`] writes the credentials file, relative to the
/// node's working directory (the original's hard-coded path).
pub const CREDENTIALS_PATH: &str = "etc/credentials";

/// The credentials file of the original test suite: client `test`, all-zero key.
pub fn test_credentials() -> String {
    format!("{}:{}\n", neo::TEST_NAME, "0".repeat(256))
}

/// A running `dmqnode` process in its own temporary working directory.
pub struct Node {
    child: Option<Child>,
    pub addr: SocketAddr,
    /// The neo port, for nodes started with [`Node::start_neo`].
    pub neo_addr: Option<SocketAddr>,
    pub dir: tempfile::TempDir,
    stderr_path: PathBuf,
}

impl Node {
    /// A node with 2 shards and 1 MiB rings plus `extra` overrides (later keys
    /// win), ready to serve: the start line was printed and a request answered.
    pub fn start(extra: &[&str]) -> Node {
        Self::try_start(extra, true, false)
    }

    /// As [`Node::start`], but returns as soon as the node printed its
    /// "serving" line, without a request to check that it serves.
    pub fn start_unprobed(extra: &[&str]) -> Node {
        Self::try_start(extra, false, false)
    }

    /// As [`Node::start`], plus the neo port on a free loopback port and the
    /// credentials file [`test_credentials`] at [`CREDENTIALS_PATH`]; `extra`
    /// overrides come after those. The neo port is checked with a whole
    /// handshake and authentication.
    pub fn start_neo(extra: &[&str]) -> Node {
        Self::try_start(extra, true, true)
    }

    fn try_start(extra: &[&str], probe: bool, with_neo: bool) -> Node {
        let mut last_error = String::new();
        for _attempt in 0..10 {
            let dir = tempfile::tempdir().expect("tempdir");
            let port = free_port();
            let log_file = dir.path().join("root.log");
            let stderr_path = dir.path().join("stderr.txt");
            let mut overrides = base_overrides(port, &log_file);
            let mut neo_port = None;
            if with_neo {
                let etc = dir.path().join("etc");
                std::fs::create_dir_all(&etc).expect("mkdir etc");
                std::fs::write(dir.path().join(CREDENTIALS_PATH), test_credentials())
                    .expect("write the credentials file");
                let p = free_port();
                neo_port = Some(p);
                overrides.push(format!("server.neoport={p}"));
                overrides.push(format!("server.credentials={CREDENTIALS_PATH}"));
            }
            let mut args = Vec::new();
            for o in overrides
                .into_iter()
                .chain(extra.iter().map(|s| s.to_string()))
            {
                args.push("-O".to_string());
                args.push(o);
            }
            let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
            let mut child = Command::new(env!("CARGO_BIN_EXE_dmqnode"))
                .args(&args)
                .current_dir(dir.path())
                .env_remove("RUST_LOG")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(stderr)
                .spawn()
                .expect("spawn dmqnode");
            let stdout = child.stdout.take().expect("stdout");
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                // Reads (and so drains) stdout until the node exits.
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        // Nobody listens any more; keep draining.
                        continue;
                    }
                }
            });
            let deadline = Instant::now() + IO_TIMEOUT;
            let mut serving = false;
            let mut saw_addr = None;
            let mut saw_neo_addr = None;
            while let Some(left) = deadline.checked_duration_since(Instant::now()) {
                match rx.recv_timeout(left) {
                    Ok(line) => {
                        if let Some(addr) = line.strip_prefix("dmqnode: legacy protocol on ") {
                            saw_addr = addr.trim().parse::<SocketAddr>().ok();
                        }
                        if let Some(addr) = line.strip_prefix("dmqnode: neo protocol on ") {
                            saw_neo_addr = addr.trim().parse::<SocketAddr>().ok();
                        }
                        if line.starts_with("dmqnode: serving with ") {
                            serving = true;
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
            let mut node = Node {
                child: Some(child),
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
                neo_addr: neo_port.map(|p| SocketAddr::from(([127, 0, 0, 1], p))),
                dir,
                stderr_path,
            };
            if serving {
                assert_eq!(
                    saw_addr,
                    Some(node.addr),
                    "the node must print its legacy address before it serves"
                );
                assert_eq!(
                    saw_neo_addr, node.neo_addr,
                    "the node must print its neo address (if enabled) before it serves"
                );
                if probe {
                    let mut client = node.client();
                    assert_eq!(client.get_num_connections(), NOT_SUPPORTED);
                    if node.neo_addr.is_some() {
                        let _neo = node.neo();
                    }
                }
                return node;
            }
            let status = node.wait_exit(IO_TIMEOUT);
            last_error = format!("{status}: {}", node.stderr());
            if !last_error.contains("cannot listen") {
                break;
            }
        }
        panic!("dmqnode did not start: {last_error}");
    }

    pub fn pid(&self) -> i32 {
        let child = self.child.as_ref().expect("node already reaped");
        i32::try_from(child.id()).expect("pid fits i32")
    }

    /// Sends `signal` to this node's process (by PID).
    pub fn signal(&self, signal: i32) {
        if self.child.is_some() {
            // SAFETY: kill(2) with a PID we spawned and have not reaped yet.
            let rc = unsafe { libc::kill(self.pid(), signal) };
            assert_eq!(rc, 0, "kill({}, {signal})", self.pid());
        }
    }

    /// Waits for the process to exit; past `timeout` it is killed with SIGKILL
    /// and the test fails.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let child = self.child.as_mut().expect("node already reaped");
        let deadline = Instant::now() + timeout;
        // Bounded: at most timeout / 10 ms rounds.
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                return status;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        self.child = None;
        panic!("dmqnode did not exit within {timeout:?}");
    }

    /// SIGTERM, then the exit status (a clean shutdown is status 0).
    pub fn stop(&mut self) -> ExitStatus {
        self.signal(libc::SIGTERM);
        self.wait_exit(IO_TIMEOUT)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => child.try_wait().expect("try_wait").is_none(),
            None => false,
        }
    }

    pub fn client(&self) -> Client {
        Client::connect(self.addr)
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("root.log")).unwrap_or_default()
    }

    /// Whether root.log contains `needle` within [`IO_TIMEOUT`] (the node may
    /// log a moment after it answered).
    pub fn wait_log(&self, needle: &str) -> bool {
        let deadline = Instant::now() + IO_TIMEOUT;
        // Bounded: at most IO_TIMEOUT / 20 ms rounds.
        loop {
            if self.log().contains(needle) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The neo address of a node started with [`Node::start_neo`].
    pub fn neo_addr(&self) -> SocketAddr {
        self.neo_addr
            .expect("this node has no neo port: start it with Node::start_neo")
    }

    /// A neo client authenticated as the test client.
    pub fn neo(&self) -> neo::NeoClient {
        neo::NeoClient::connect(self.neo_addr())
    }

    /// The path of the node's credentials file.
    pub fn credentials_file(&self) -> PathBuf {
        self.dir.path().join(CREDENTIALS_PATH)
    }

    /// A connection to the admin UNIX socket (default `dmqnode.socket` in the
    /// node's working directory).
    pub fn admin(&self) -> Admin {
        Admin::connect(&self.dir.path().join("dmqnode.socket"))
    }
}

/// A blocking client of the admin UNIX socket: one command line, one reply.
pub struct Admin {
    writer: UnixStream,
    reader: BufReader<UnixStream>,
}

impl Admin {
    pub fn connect(path: &Path) -> Admin {
        let stream = UnixStream::connect(path)
            .unwrap_or_else(|e| panic!("connect to the admin socket {}: {e}", path.display()));
        stream
            .set_read_timeout(Some(IO_TIMEOUT))
            .expect("read timeout");
        stream
            .set_write_timeout(Some(IO_TIMEOUT))
            .expect("write timeout");
        let reader = BufReader::new(stream.try_clone().expect("clone"));
        Admin {
            writer: stream,
            reader,
        }
    }

    fn send(&mut self, command: &str) {
        self.writer
            .write_all(format!("{command}\n").as_bytes())
            .unwrap_or_else(|e| panic!("admin command {command:?}: {e}"));
    }

    fn read_line(&mut self, command: &str) -> String {
        let mut line = String::new();
        let n = self
            .reader
            .read_line(&mut line)
            .unwrap_or_else(|e| panic!("admin command {command:?}: reading the reply: {e}"));
        assert!(
            n > 0 && line.ends_with('\n'),
            "admin command {command:?}: the reply ended early: {line:?}"
        );
        line.pop();
        line
    }

    /// A command with a one-line reply; the line without its newline.
    pub fn line(&mut self, command: &str) -> String {
        self.send(command);
        self.read_line(command)
    }

    /// A command with a multi-line reply: the lines before the terminating
    /// empty line.
    pub fn lines(&mut self, command: &str) -> Vec<String> {
        self.send(command);
        let mut lines = Vec::new();
        // Bounded: every round reads one line (or fails after IO_TIMEOUT).
        for _ in 0..1_000_000 {
            let line = self.read_line(command);
            if line.is_empty() {
                return lines;
            }
            lines.push(line);
        }
        panic!("admin command {command:?}: no end of the reply");
    }

    /// `channels` as `(name, [records_memory, bytes_memory, records_overflow,
    /// bytes_overflow])`, sorted by name.
    pub fn channels(&mut self) -> Vec<(String, [u64; 4])> {
        let mut storages: Vec<(String, [u64; 4])> = self
            .lines("channels")
            .into_iter()
            .map(|line| {
                let fields: Vec<&str> = line.split(' ').collect();
                assert_eq!(fields.len(), 5, "channels line {line:?}");
                let n = |i: usize| -> u64 {
                    fields[i]
                        .parse()
                        .unwrap_or_else(|e| panic!("channels line {line:?}: field {i}: {e}"))
                };
                (fields[0].to_owned(), [n(1), n(2), n(3), n(4)])
            })
            .collect();
        storages.sort();
        storages
    }

    /// The names `list-credentials` lists, sorted (after checking the
    /// header line).
    pub fn credential_names(&mut self) -> Vec<String> {
        let mut lines = self.lines("list-credentials");
        assert_eq!(
            lines.first().map(String::as_str),
            Some("Registered credentials:"),
            "list-credentials: {lines:?}"
        );
        lines.remove(0);
        lines.sort();
        lines
    }

    /// The `channels` figures of storage `name`, if listed.
    pub fn storage(&mut self, name: &str) -> Option<[u64; 4]> {
        self.channels()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, figures)| figures)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Ok(pid) = i32::try_from(child.id()) {
                // SAFETY: kill(2) with the PID of our own unreaped child.
                unsafe { libc::kill(pid, libc::SIGTERM) };
            }
            let deadline = Instant::now() + IO_TIMEOUT;
            let mut exited = false;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    exited = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            if !exited {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            eprintln!("--- dmqnode stderr ---\n{}", self.stderr());
            eprintln!("--- dmqnode root.log (last lines, newest first) ---");
            for line in tail {
                eprintln!("{line}");
            }
        }
    }
}

/// Runs the node binary with `args` (no node left running) and returns its exit
/// status, stdout and stderr.
pub fn run_dmqnode(args: &[&str]) -> (ExitStatus, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_dmqnode"))
        .args(args)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dmqnode");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + IO_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("dmqnode {args:?} did not exit within {IO_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    (
        status,
        out.join().expect("stdout thread"),
        err.join().expect("stderr thread"),
    )
}

/// Whether an I/O error means the peer closed or reset the connection.
pub fn is_disconnect(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
    )
}

/// A blocking legacy-protocol client. Requests can be queued (`queue_*`) and
/// sent in one write with [`Client::flush`] to pipeline them; the one-shot
/// methods send one request and read its reply.
pub struct Client {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
    out: Vec<u8>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        Self::try_connect(addr).unwrap_or_else(|e| panic!("connect to {addr}: {e}"))
    }

    pub fn try_connect(addr: SocketAddr) -> io::Result<Client> {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        let reader = BufReader::with_capacity(64 * 1024, stream.try_clone()?);
        Ok(Client {
            writer: stream,
            reader,
            out: Vec::new(),
        })
    }

    // ---- raw bytes ----

    /// Appends raw bytes to the pending output.
    pub fn queue(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// Writes the pending output.
    pub fn try_flush(&mut self) -> io::Result<()> {
        let result = self.writer.write_all(&self.out);
        self.out.clear();
        result
    }

    pub fn flush(&mut self) {
        self.try_flush().expect("write to the node");
    }

    /// Writes `bytes` at once (after any pending output).
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.queue(bytes);
        self.flush();
    }

    pub fn try_read_exact(&mut self, n: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0; n];
        self.reader.read_exact(&mut buf)?;
        Ok(buf)
    }

    pub fn read_exact(&mut self, n: usize) -> Vec<u8> {
        self.try_read_exact(n)
            .unwrap_or_else(|e| panic!("reading {n} bytes from the node: {e}"))
    }

    pub fn try_read_status(&mut self) -> io::Result<i32> {
        let bytes = self.try_read_exact(4)?;
        let (status, _) = parse_status(&bytes).expect("4 bytes are a status");
        Ok(status)
    }

    pub fn read_status(&mut self) -> i32 {
        self.try_read_status()
            .unwrap_or_else(|e| panic!("reading a status: {e}"))
    }

    /// Reads one array (`u64` length + bytes).
    pub fn read_array(&mut self) -> Vec<u8> {
        let prefix = self.read_exact(8);
        let len = u64::from_le_bytes(prefix.clone().try_into().expect("8 bytes"));
        assert!(
            len <= MAX_ARRAY_LEN as u64,
            "the node sent an array of {len} bytes"
        );
        let mut whole = prefix;
        whole.extend(self.read_exact(len as usize));
        let (bytes, used) = parse_array(&whole).expect("array");
        assert_eq!(used, whole.len());
        bytes.to_vec()
    }

    /// A Pop reply: `Ok(value)` after 200 (empty = the channel was empty),
    /// `Err(status)` otherwise.
    pub fn read_pop_reply(&mut self) -> Result<Vec<u8>, i32> {
        match self.read_status() {
            OK => Ok(self.read_array()),
            other => Err(other),
        }
    }

    /// Asserts that the node closes the connection without sending anything
    /// more (EOF or reset within [`IO_TIMEOUT`]).
    pub fn expect_closed(&mut self, what: &str) {
        assert!(
            self.reader.buffer().is_empty(),
            "{what}: unexpected bytes from the node: {:?}",
            self.reader.buffer()
        );
        let mut buf = [0u8; 256];
        match self.reader.get_mut().read(&mut buf) {
            Ok(0) => {}
            Ok(n) => panic!(
                "{what}: expected the node to close the connection, got {n} bytes: {:?}",
                &buf[..n]
            ),
            Err(e) if is_disconnect(&e) => {}
            Err(e) => panic!("{what}: expected the node to close the connection, got {e}"),
        }
    }

    /// Reads and discards what the node sends until it closes the connection.
    /// Returns false if it was still open after [`IO_TIMEOUT`] or after
    /// `max_bytes` bytes.
    pub fn drain_until_closed(&mut self, max_bytes: usize) -> bool {
        let mut seen = self.reader.buffer().len();
        self.reader.consume(seen);
        let mut buf = vec![0u8; 64 * 1024];
        // Bounded: every round either ends or reads at least one byte.
        while seen <= max_bytes {
            match self.reader.get_mut().read(&mut buf) {
                Ok(0) => return true,
                Ok(n) => seen += n,
                Err(e) if is_disconnect(&e) => return true,
                Err(_) => return false,
            }
        }
        false
    }

    /// Half-closes: the node sees EOF, the reply direction stays open.
    pub fn shutdown_write(&mut self) {
        let _ = self.writer.shutdown(Shutdown::Write);
    }

    // ---- queued requests (pipelining) ----

    pub fn queue_request(&mut self, request: Request<'_>) {
        request.encode(&mut self.out);
    }

    pub fn queue_push(&mut self, channel: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        self.queue_request(Request::Push {
            channel: channel.as_ref(),
            value: value.as_ref(),
        });
    }

    pub fn queue_pop(&mut self, channel: impl AsRef<[u8]>) {
        self.queue_request(Request::Pop {
            channel: channel.as_ref(),
        });
    }

    pub fn queue_push_multi<C: AsRef<[u8]>>(&mut self, channels: &[C], value: impl AsRef<[u8]>) {
        self.out
            .extend_from_slice(&Cmd::PushMulti.code().to_le_bytes());
        encode_channel_list(&mut self.out, channels.iter().map(|c| c.as_ref()));
        encode_array(&mut self.out, value.as_ref());
    }

    pub fn queue_remove(&mut self, channel: impl AsRef<[u8]>) {
        self.queue_request(Request::RemoveChannel {
            channel: channel.as_ref(),
        });
    }

    pub fn queue_get_num_connections(&mut self) {
        self.queue_request(Request::GetNumConnections);
    }

    // ---- one request, one reply ----

    pub fn push(&mut self, channel: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> i32 {
        self.queue_push(channel, value);
        self.flush();
        self.read_status()
    }

    pub fn pop(&mut self, channel: impl AsRef<[u8]>) -> Result<Vec<u8>, i32> {
        self.queue_pop(channel);
        self.flush();
        self.read_pop_reply()
    }

    pub fn push_multi<C: AsRef<[u8]>>(&mut self, channels: &[C], value: impl AsRef<[u8]>) -> i32 {
        self.queue_push_multi(channels, value);
        self.flush();
        self.read_status()
    }

    pub fn remove(&mut self, channel: impl AsRef<[u8]>) -> i32 {
        self.queue_remove(channel);
        self.flush();
        self.read_status()
    }

    pub fn get_num_connections(&mut self) -> i32 {
        self.queue_get_num_connections();
        self.flush();
        self.read_status()
    }

    /// A round trip that proves every earlier request of this connection (a
    /// Produce stream included) has been handled.
    pub fn sync(&mut self) {
        assert_eq!(self.get_num_connections(), NOT_SUPPORTED);
    }

    // ---- Produce / ProduceMulti ----

    /// Starts a Produce; returns the status (200 = send records now).
    pub fn produce(&mut self, channel: impl AsRef<[u8]>) -> i32 {
        self.queue_request(Request::Produce {
            channel: channel.as_ref(),
        });
        self.flush();
        self.read_status()
    }

    pub fn produce_multi<C: AsRef<[u8]>>(&mut self, channels: &[C]) -> i32 {
        self.out
            .extend_from_slice(&Cmd::ProduceMulti.code().to_le_bytes());
        encode_channel_list(&mut self.out, channels.iter().map(|c| c.as_ref()));
        self.flush();
        self.read_status()
    }

    /// Queues one record of a Produce stream (written in 64 KiB chunks).
    pub fn produce_record(&mut self, record: impl AsRef<[u8]>) {
        assert!(
            !record.as_ref().is_empty(),
            "an empty record ends the stream"
        );
        encode_array(&mut self.out, record.as_ref());
        if self.out.len() >= 64 * 1024 {
            self.flush();
        }
    }

    /// Ends the Produce stream (no reply follows).
    pub fn produce_end(&mut self) {
        encode_stream_end(&mut self.out);
        self.flush();
    }

    // ---- Consume ----

    /// Starts a Consume; returns the status (200 = records follow).
    pub fn consume(&mut self, channel: impl AsRef<[u8]>) -> i32 {
        self.queue_request(Request::Consume {
            channel: channel.as_ref(),
        });
        self.flush();
        self.read_status()
    }

    /// The next record of a Consume stream; `None` is the end marker.
    pub fn next_record(&mut self) -> Option<Vec<u8>> {
        let record = self.read_array();
        (!record.is_empty()).then_some(record)
    }
}

// ---- Disk overflow, restarts and the memory limit ----

/// `server.data_dir=<dir>`, for a node whose data directory the test owns (to
/// look at its files, or to start another node on it).
pub fn data_dir_arg(dir: &Path) -> String {
    format!("server.data_dir={}", dir.display())
}

/// [`record`]`(i)` padded with `.` to `len` bytes (at least 9), so a record's
/// size in a ring is known: 8 + `len` bytes.
pub fn padded_record(i: usize, len: usize) -> Vec<u8> {
    let mut r = record(i);
    assert!(
        len >= r.len(),
        "a padded record has at least {} bytes",
        r.len()
    );
    r.resize(len, b'.');
    r
}

/// `padded_record(i, len)` for every `i` of `range`.
pub fn padded_records(range: std::ops::Range<usize>, len: usize) -> Vec<Vec<u8>> {
    range.map(|i| padded_record(i, len)).collect()
}

/// The number of a record made by [`record`] or [`padded_record`].
pub fn record_index(r: &[u8]) -> usize {
    std::str::from_utf8(&r[..9.min(r.len())])
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a test record: {:?}", String::from_utf8_lossy(r)))
}

/// Asserts that `got` equals `expected`, naming the first difference (instead
/// of printing thousands of records).
pub fn assert_same_records(got: &[Vec<u8>], expected: &[Vec<u8>], what: &str) {
    if let Some(i) = (0..got.len().min(expected.len())).find(|&i| got[i] != expected[i]) {
        panic!(
            "{what}: record {i} of {} is {:?}, expected {:?}",
            got.len(),
            String::from_utf8_lossy(&got[i]),
            String::from_utf8_lossy(&expected[i])
        );
    }
    if got.len() != expected.len() {
        let extra = got
            .get(expected.len())
            .or_else(|| expected.get(got.len()))
            .map(|r| String::from_utf8_lossy(r).into_owned());
        panic!(
            "{what}: {} records, expected {} (first extra or missing: {extra:?})",
            got.len(),
            expected.len()
        );
    }
}

/// The overflow segment files (`overflow-*.dat`) in `dir`: name and size,
/// sorted by name. A missing directory has none.
pub fn overflow_files(dir: &Path) -> Vec<(String, u64)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<(String, u64)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            if !(name.starts_with("overflow-") && name.ends_with(".dat")) {
                return None;
            }
            // A file deleted between read_dir and metadata counts as gone.
            let len = e.metadata().ok()?.len();
            Some((name, len))
        })
        .collect();
    files.sort();
    files
}

/// The total size of the overflow segment files in `dir`.
pub fn overflow_bytes(dir: &Path) -> u64 {
    overflow_files(dir).iter().map(|(_, len)| len).sum()
}

/// Splits an overflow segment file name `overflow-<shard>of<nshards>-<seq>.dat`
/// into its three numbers; `None` if the name has another form.
pub fn parse_overflow_name(name: &str) -> Option<(u64, u64, u64)> {
    let middle = name.strip_prefix("overflow-")?.strip_suffix(".dat")?;
    let (shards, seq) = middle.split_once('-')?;
    let (shard, nshards) = shards.split_once("of")?;
    let number = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    Some((number(shard)?, number(nshards)?, number(seq)?))
}

/// Names of the files in `dir` ending in `suffix`, sorted.
pub fn files_ending_with(dir: &Path, suffix: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(suffix))
        .collect();
    names.sort();
    names
}

/// Requests pipelined per write by [`push_pipelined`] and [`pop_pipelined`].
pub const PIPELINE_CHUNK: usize = 200;

/// Legacy Pushes of `values` to `channel`, sent [`PIPELINE_CHUNK`] per write;
/// asserts that every reply is 200.
pub fn push_pipelined(client: &mut Client, channel: &str, values: &[Vec<u8>]) {
    for (n, chunk) in values.chunks(PIPELINE_CHUNK).enumerate() {
        for value in chunk {
            client.queue_push(channel, value);
        }
        client.flush();
        for (k, value) in chunk.iter().enumerate() {
            let status = client.read_status();
            assert_eq!(
                status,
                OK,
                "{channel}: push {} ({:?})",
                n * PIPELINE_CHUNK + k,
                String::from_utf8_lossy(&value[..9.min(value.len())])
            );
        }
    }
}

/// `count` legacy Pops of `channel`, sent [`PIPELINE_CHUNK`] per write; every
/// reply must be a record (not empty, not an error). Returns them in order.
pub fn pop_pipelined(client: &mut Client, channel: &str, count: usize) -> Vec<Vec<u8>> {
    let mut got = Vec::with_capacity(count);
    while got.len() < count {
        let n = (count - got.len()).min(PIPELINE_CHUNK);
        for _ in 0..n {
            client.queue_pop(channel);
        }
        client.flush();
        for _ in 0..n {
            match client.read_pop_reply() {
                Ok(r) if !r.is_empty() => got.push(r),
                Ok(_) => panic!(
                    "{channel}: Pop answered empty after {} of {count} records",
                    got.len()
                ),
                Err(status) => panic!(
                    "{channel}: Pop answered {status} after {} of {count} records",
                    got.len()
                ),
            }
        }
    }
    got
}

/// Legacy Pops of `channel` until the node answers empty; fails the test on an
/// error status or after more than `max` records. Returns the records.
pub fn pop_until_empty(client: &mut Client, channel: &str, max: usize) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    // Bounded: at most max + 1 rounds.
    for _ in 0..=max {
        match client.pop(channel) {
            Ok(r) if r.is_empty() => return got,
            Ok(r) => got.push(r),
            Err(status) => panic!(
                "{channel}: Pop answered {status} after {} records",
                got.len()
            ),
        }
    }
    panic!("{channel}: still not empty after {max} records");
}

/// Polls `cond` every `every` until it holds or `timeout` passed; whether it
/// held.
pub fn wait_until(timeout: Duration, every: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    // Bounded: at most timeout / every rounds.
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(every);
    }
}

/// The resident set size of process `pid`, in bytes (VmRSS of
/// `/proc/<pid>/status`).
pub fn rss_bytes(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/status: {e}"));
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status"));
    let kib: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{line:?}: {e}"));
    kib * 1024
}

/// Subscribes `subscriber` ("" = the default subscriber) to `channel` of a
/// node started with [`Node::start_neo`], without reading anything: a neo
/// Consume that is stopped at once (the subscription outlives its consumer).
/// Call it before records are pushed to the channel.
pub fn neo_subscribe(node: &Node, channel: &str, subscriber: &str) {
    let mut c = node.neo();
    let id = c.consume(channel, subscriber);
    let late = c.stop_consume(id);
    assert!(
        late.is_empty(),
        "{subscriber}@{channel}: subscribing received {} records",
        late.len()
    );
}

/// Reads batches of a neo Consume `id` (acknowledging each with Continue)
/// until at least `n` records came; returns them in arrival order.
pub fn neo_receive(c: &mut neo::NeoClient, id: u64, n: usize) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    // Bounded: every batch holds at least one record; each wait is bounded.
    while got.len() < n {
        let batch = c.next_records(id);
        assert!(!batch.is_empty(), "Consume {id}: an empty Records batch");
        got.extend(batch);
        c.send_continue(id);
    }
    got
}
