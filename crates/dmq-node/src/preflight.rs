//! Checks made before the node starts, so that a machine that cannot run it
//! gets one clear line saying what is wrong and how to fix it (exit status 1),
//! instead of an error from deep inside the runtime.

use std::io;
use std::path::Path;

/// Locked memory each glommio executor needs for its io_uring rings.
pub const MEMLOCK_NEEDED_BYTES: u64 = 512 * 1024;

/// A reason the node cannot start here.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    #[error("io_uring is not available ({0}): dmqnode needs Linux 5.8 or newer with io_uring enabled (check /proc/sys/kernel/io_uring_disabled)")]
    IoUringMissing(io::Error),
    #[error("io_uring is blocked ({0}): allow the io_uring_setup, io_uring_enter and io_uring_register system calls (container seccomp profile: e.g. docker run --security-opt seccomp=unconfined, or set /proc/sys/kernel/io_uring_disabled to 0)")]
    IoUringBlocked(io::Error),
    #[error("the locked-memory limit (RLIMIT_MEMLOCK) is {have} KiB, dmqnode needs at least {need} KiB for io_uring: raise it (systemd: LimitMEMLOCK=infinity; shell: ulimit -l unlimited; docker: --ulimit memlock=-1)", have = .0 / 1024, need = MEMLOCK_NEEDED_BYTES / 1024)]
    MemlockTooLow(u64),
    #[error("the data directory '{path}' is not writable: {source} (server.data_dir)")]
    DataDirNotWritable { path: String, source: io::Error },
}

/// Every check, in order.
pub fn check(data_dir: &Path) -> Result<(), PreflightError> {
    check_io_uring()?;
    check_memlock()?;
    check_data_dir(data_dir)
}

/// Sets up (and closes) a one-entry io_uring to see whether the kernel lets us.
pub fn check_io_uring() -> Result<(), PreflightError> {
    // SAFETY: io_uring_setup only writes into `params`, which we own and which
    // has the kernel's layout size (120 bytes, zeroed); the returned descriptor
    // is closed at once.
    let fd = unsafe {
        let mut params = [0u8; 120];
        libc::syscall(libc::SYS_io_uring_setup, 1u32, params.as_mut_ptr())
    };
    if fd >= 0 {
        // SAFETY: `fd` is the descriptor io_uring_setup just returned to us.
        unsafe { libc::close(fd as libc::c_int) };
        return Ok(());
    }
    let error = io::Error::last_os_error();
    match error.raw_os_error() {
        Some(libc::ENOSYS) => Err(PreflightError::IoUringMissing(error)),
        Some(libc::EPERM | libc::EACCES) => Err(PreflightError::IoUringBlocked(error)),
        // Anything else (e.g. ENOMEM) is left to the runtime to report.
        _ => Ok(()),
    }
}

/// The soft RLIMIT_MEMLOCK in bytes; `None` when unlimited or unknown.
pub fn memlock_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into `limit`, which we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) } != 0 {
        return None;
    }
    (limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
}

/// The soft RLIMIT_MEMLOCK must leave room for one executor's rings.
pub fn check_memlock() -> Result<(), PreflightError> {
    match memlock_limit() {
        Some(limit) if limit < MEMLOCK_NEEDED_BYTES => Err(PreflightError::MemlockTooLow(limit)),
        _ => Ok(()),
    }
}

/// Bytes of registered I/O buffers per executor: glommio's 10 MiB when
/// locked memory is unlimited, otherwise a share of the limit (registration
/// beyond it fails with a warning at every start, and the node needs no
/// registered buffers for its network I/O).
pub fn io_memory_per_shard(shards: usize) -> Option<usize> {
    const GLOMMIO_DEFAULT: u64 = 10 << 20;
    const FLOOR: u64 = 64 << 10;
    let limit = memlock_limit()?;
    let share = (limit / shards.max(1) as u64 / 2).clamp(FLOOR, GLOMMIO_DEFAULT);
    usize::try_from(share).ok()
}

/// Creates the data directory if missing and proves it writable.
pub fn check_data_dir(path: &Path) -> Result<(), PreflightError> {
    let fail = |source| PreflightError::DataDirNotWritable {
        path: path.display().to_string(),
        source,
    };
    std::fs::create_dir_all(path).map_err(fail)?;
    let probe = path.join(format!(".dmqnode-write-test-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(fail)?;
    std::fs::remove_file(&probe).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_machine_passes() {
        let dir = tempfile::tempdir().expect("tempdir");
        check(&dir.path().join("data")).expect("preflight");
        assert!(dir.path().join("data").is_dir());
    }

    #[test]
    fn a_file_in_the_way_of_the_data_dir_is_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("data");
        std::fs::write(&path, b"not a directory").expect("write");
        let err = check_data_dir(&path).expect_err("not a directory");
        assert!(err.to_string().contains("server.data_dir"), "{err}");
    }
}
