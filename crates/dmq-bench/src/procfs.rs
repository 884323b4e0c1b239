//! The server's CPU time and memory, read from `/proc/<pid>` (Linux), and the
//! harness's own file-descriptor limit.

use std::io;

/// CPU time (user + system) of `pid` so far, in clock ticks.
pub fn cpu_ticks(pid: u32) -> io::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_stat_cpu_ticks(&stat).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("/proc/{pid}/stat: cannot read utime and stime"),
        )
    })
}

/// `utime + stime` from the text of `/proc/<pid>/stat`. The command name (field 2)
/// is in parentheses and may hold spaces and parentheses itself, so the fields are
/// counted from the last `)`: after it come state (field 3) ... utime (14) and
/// stime (15).
pub fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`, 100 on Linux).
pub fn ticks_per_s() -> u64 {
    // SAFETY: sysconf has no preconditions; it only reads a constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|&t| t > 0).unwrap_or(100)
}

/// Resident memory of `pid`: (current `VmRSS`, peak `VmHWM`), in bytes.
pub fn rss_bytes(pid: u32) -> io::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| parse_status_kib(&status, name).map(|kib| kib * 1024);
    match (field("VmRSS:"), field("VmHWM:")) {
        (Some(rss), Some(hwm)) => Ok((rss, hwm)),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("/proc/{pid}/status: no VmRSS or VmHWM"),
        )),
    }
}

/// The value in kB of the line `name  N kB` of `/proc/<pid>/status`.
pub fn parse_status_kib(status: &str, name: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// Raises this process's soft limit of open files to its hard limit, so that a run
/// with a thousand idle connections does not fail on the default 1024.
pub fn raise_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write and read the struct we pass, nothing else.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let stat = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 500 0 0 0 \
                    1234 56 0 0 20 0 3 0 100 1000000 200 18446744073709551615";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(1234 + 56));
        assert_eq!(parse_stat_cpu_ticks("1 (x) S 1 2"), None);
        assert_eq!(parse_stat_cpu_ticks("garbage"), None);
    }

    #[test]
    fn status_lines_in_kib() {
        let status = "Name:\tdmqnode\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n";
        assert_eq!(parse_status_kib(status, "VmRSS:"), Some(10240));
        assert_eq!(parse_status_kib(status, "VmHWM:"), Some(20480));
        assert_eq!(parse_status_kib(status, "VmSwap:"), None);
    }

    #[test]
    fn reads_its_own_process() {
        let pid = std::process::id();
        assert!(cpu_ticks(pid).is_ok());
        let (rss, hwm) = rss_bytes(pid).expect("own status");
        assert!(rss > 0 && hwm >= rss);
        assert!(ticks_per_s() > 0);
    }
}
