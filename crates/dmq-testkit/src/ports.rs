//! Loopback ports for every server a test starts, from below the kernel's
//! ephemeral range.
//!
//! `bind(127.0.0.1:0)` hands out a port of the ephemeral range
//! (`/proc/sys/net/ipv4/ip_local_port_range`), the range the kernel also takes
//! the source ports of outgoing connections from: while a node restarts on its
//! port, any connection on the machine may take that port as its source port.
//! The ports here come from below that range (from [`FLOOR`] up), so nothing
//! takes them by chance.
//!
//! Within one process a port is handed out once (the node refuses a port in
//! use, and a retry costs time). Between processes — two suites running at
//! once, in this checkout or another one — ports are shared out in aligned
//! blocks of [`BLOCK_PORTS`]: a process claims a block by taking an advisory
//! `flock(2)` on a file named after it in the temporary directory, and holds it
//! until it ends (the kernel drops the lock then, however the process ends).
//! Every port is also checked by binding it, since other programs know
//! nothing of these locks.

use std::fs::{File, OpenOptions};
use std::net::{Ipv4Addr, TcpListener};
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The lowest port handed out: above the node's default ports (10000-10002),
/// which `no_arguments` uses on purpose.
pub const FLOOR: u16 = 20_000;

/// Ports per block a process claims at once.
pub const BLOCK_PORTS: u16 = 64;

/// Fewest blocks a range must hold to be used.
const MIN_BLOCKS: usize = 16;

/// A port that was free on 127.0.0.1 a moment ago (it bound), below the
/// ephemeral range, never handed out before by this process and not by any
/// other process using this kit while that process runs. A server may still
/// lose a race for it to a program that knows nothing of this kit; the node
/// harness retries then.
pub fn free_port() -> u16 {
    let mut guard = PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let ports = guard.get_or_insert_with(Ports::new);
    // Bounded: every round takes one port of the current block or claims a
    // new block; there are finitely many of both.
    loop {
        for port in ports.current.by_ref() {
            if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
                return port;
            }
        }
        if !ports.claim_block() {
            panic!(
                "no free port left: every block of {BLOCK_PORTS} ports in {:?} is used up by \
                 this process or held by another one (lock files in {})",
                ports.range,
                ports.lock_dir.display()
            );
        }
    }
}

/// A listener on 127.0.0.1 on a port from [`free_port`], for a test's own
/// server (a fake node, or a holder that keeps a port taken).
pub fn free_listener() -> TcpListener {
    let mut last = None;
    for _ in 0..100 {
        match TcpListener::bind((Ipv4Addr::LOCALHOST, free_port())) {
            Ok(listener) => return listener,
            Err(e) => last = Some(e),
        }
    }
    panic!("no port from free_port bound in 100 tries: {last:?}");
}

static PORTS: Mutex<Option<Ports>> = Mutex::new(None);

/// This process's share of the ports.
struct Ports {
    range: Range<u16>,
    /// Start ports of the aligned blocks inside `range`.
    blocks: Vec<u16>,
    /// Index of the block to try first (random per process, so that two
    /// processes do not contend for the same blocks).
    first: usize,
    /// Blocks tried so far (claimed or found held), from `first` on.
    tried: usize,
    /// The ports of the current block not handed out yet.
    current: Range<u16>,
    lock_dir: PathBuf,
    /// The locks of the claimed blocks, held until the process ends.
    held: Vec<File>,
}

impl Ports {
    fn new() -> Ports {
        let range = usable_range();
        let first_block = range.start.div_ceil(BLOCK_PORTS);
        let last_block = range.end / BLOCK_PORTS;
        let blocks: Vec<u16> = (first_block..last_block).map(|b| b * BLOCK_PORTS).collect();
        assert!(!blocks.is_empty(), "no whole block of ports in {range:?}");
        let lock_dir = std::env::temp_dir().join("dmq-testkit-ports");
        if std::fs::create_dir(&lock_dir).is_ok() {
            // Anyone may claim blocks; nobody may remove another's lock file.
            let _ = std::fs::set_permissions(&lock_dir, std::fs::Permissions::from_mode(0o1777));
        }
        Ports {
            first: fastrand::usize(..blocks.len()),
            blocks,
            range,
            tried: 0,
            current: 0..0,
            lock_dir,
            held: Vec::new(),
        }
    }

    /// Claims the next block no other process holds; false when none is left.
    fn claim_block(&mut self) -> bool {
        while self.tried < self.blocks.len() {
            let start = self.blocks[(self.first + self.tried) % self.blocks.len()];
            self.tried += 1;
            let path = self.lock_dir.join(format!("block-{start}.lock"));
            let file = open_lock(&path)
                .unwrap_or_else(|e| panic!("open the port lock {}: {e}", path.display()));
            // SAFETY: flock(2) on a descriptor this function owns; LOCK_NB
            // makes it return at once.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if rc == 0 {
                self.held.push(file);
                self.current = start..start + BLOCK_PORTS;
                return true;
            }
        }
        false
    }
}

/// Opens (or creates, readable by anyone: `flock` needs no write access) the
/// lock file at `path`.
fn open_lock(path: &Path) -> std::io::Result<File> {
    match File::open(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o644)
                .open(path)?;
            // Past the umask.
            let _ = file.set_permissions(std::fs::Permissions::from_mode(0o644));
            Ok(file)
        }
        other => other,
    }
}

/// The ports to hand out: from [`FLOOR`] up to the start of the ephemeral
/// range, or, where that is too small, above its end.
fn usable_range() -> Range<u16> {
    let (low, high) = ephemeral_range();
    let min = BLOCK_PORTS as usize * MIN_BLOCKS;
    let below = FLOOR..low;
    if below.len() >= min {
        return below;
    }
    let above = high.saturating_add(1)..u16::MAX;
    if above.len() >= min {
        return above;
    }
    panic!(
        "the ephemeral port range {low}-{high} leaves no room for test ports above {FLOOR}: \
         narrow /proc/sys/net/ipv4/ip_local_port_range"
    );
}

/// `/proc/sys/net/ipv4/ip_local_port_range`, or Linux's default where it
/// cannot be read.
fn ephemeral_range() -> (u16, u16) {
    const DEFAULT: (u16, u16) = (32768, 60999);
    let Ok(text) = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range") else {
        return DEFAULT;
    };
    let mut numbers = text.split_whitespace().map(str::parse::<u16>);
    match (numbers.next(), numbers.next()) {
        (Some(Ok(low)), Some(Ok(high))) if low <= high => (low, high),
        _ => DEFAULT,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_below_the_ephemeral_range_and_never_repeat() {
        let (low, high) = ephemeral_range();
        let mut seen = std::collections::BTreeSet::new();
        // More than one block, so a second block is claimed.
        for _ in 0..(BLOCK_PORTS as usize + 10) {
            let port = free_port();
            assert!(
                !(low..=high).contains(&port),
                "port {port} in the ephemeral range {low}-{high}"
            );
            assert!(port >= FLOOR || port > high, "port {port}");
            assert!(seen.insert(port), "port {port} handed out twice");
        }
    }

    #[test]
    fn free_listener_listens_on_a_free_port() {
        let listener = free_listener();
        let port = listener.local_addr().expect("addr").port();
        assert!(port >= FLOOR);
        // The port is taken while the listener lives.
        assert!(TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_err());
    }
}
