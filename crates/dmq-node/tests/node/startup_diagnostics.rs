//! Each start-up failure an operator can meet gives exit status 1 and one line
//! on stderr that says what is wrong and how to fix it: io_uring blocked, the
//! locked-memory limit too low, the data directory not writable, a port taken.

use std::os::unix::process::CommandExt;
use std::process::Command;

use dmq_testkit::node::{dmqnode, run_dmqnode_with};
use dmq_testkit::ports::free_listener;
use dmq_testkit::process::Output;

/// Runs `dmqnode` in a temporary directory with `pre` applied in the child
/// just before exec.
fn run(args: &[&str], pre: Option<fn() -> std::io::Result<()>>) -> Output {
    let mut command = Command::new(dmqnode());
    if let Some(pre) = pre {
        // SAFETY: `pre` only makes async-signal-safe system calls (setrlimit,
        // prctl) between fork and exec.
        unsafe {
            command.pre_exec(pre);
        }
    }
    let mut all = vec![
        "-O",
        "server.port=0",
        "-O",
        "server.neoport=0",
        "-O",
        "metrics.address=",
        "-O",
        "stats.console=false",
    ];
    all.extend_from_slice(args);
    run_dmqnode_with(&mut command, &all)
}

fn assert_one_line_failure(output: &Output, needle: &str) {
    let stderr = &output.stderr;
    assert_eq!(output.code(), Some(1), "stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line expected: {stderr}");
    assert!(lines[0].contains(needle), "{needle:?} not in {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn low_memlock_limit_is_named_with_the_fix() {
    fn low_memlock() -> std::io::Result<()> {
        let limit = libc::rlimit {
            rlim_cur: 64 * 1024,
            rlim_max: 64 * 1024,
        };
        // SAFETY: setrlimit reads `limit`, which lives for the call.
        if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &limit) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
    let output = run(&[], Some(low_memlock));
    assert_one_line_failure(&output, "RLIMIT_MEMLOCK");
    assert!(output.stderr.contains("LimitMEMLOCK"));
}

#[test]
fn io_uring_blocked_by_seccomp_is_named_with_the_fix() {
    // A seccomp filter that answers EPERM to io_uring_setup, as a container
    // runtime's default profile does.
    fn block_io_uring() -> std::io::Result<()> {
        const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
        const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
        let nr = libc::SYS_io_uring_setup as u32;
        let filter = [
            // Load the system call number (offset 0 of seccomp_data).
            libc::sock_filter {
                code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16,
                jt: 0,
                jf: 0,
                k: 0,
            },
            libc::sock_filter {
                code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
                jt: 0,
                jf: 1,
                k: nr,
            },
            libc::sock_filter {
                code: (libc::BPF_RET | libc::BPF_K) as u16,
                jt: 0,
                jf: 0,
                k: SECCOMP_RET_ERRNO | libc::EPERM as u32,
            },
            libc::sock_filter {
                code: (libc::BPF_RET | libc::BPF_K) as u16,
                jt: 0,
                jf: 0,
                k: SECCOMP_RET_ALLOW,
            },
        ];
        let program = libc::sock_fprog {
            len: filter.len() as u16,
            filter: filter.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: prctl reads `program` and `filter`, which live for the call.
        unsafe {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::prctl(
                    libc::PR_SET_SECCOMP,
                    libc::SECCOMP_MODE_FILTER,
                    &program as *const libc::sock_fprog,
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    }
    let output = run(&[], Some(block_io_uring));
    assert_one_line_failure(&output, "io_uring is blocked");
    assert!(output.stderr.contains("seccomp"));
}

#[test]
fn data_dir_that_is_not_a_writable_directory_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("in-the-way");
    std::fs::write(&path, b"a file where the data directory should be").expect("write");
    let data_dir = format!("server.data_dir={}", path.display());
    let output = run(&["-O", &data_dir], None);
    assert_one_line_failure(&output, "server.data_dir");
}

#[test]
fn taken_port_is_named_with_the_key() {
    // Held without SO_REUSEPORT, so the node cannot share it.
    let holder = free_listener();
    let port = holder.local_addr().expect("addr").port();
    let output = run(&["-O", &format!("server.port={port}")], None);
    assert_one_line_failure(&output, "server.port");
    assert!(output.stderr.contains("another process holds the port"));
}
