//! Process figures for stats.log and the console: CPU time, VSZ, RSS, from
//! `/proc/self/stat` and `/proc/meminfo`.

use std::time::Instant;

/// One reading of the process's resource use.
#[derive(Debug, Clone, Copy)]
pub struct ProcessSample {
    pub at: Instant,
    /// CPU time in user and system mode, in clock ticks.
    pub user_ticks: u64,
    pub system_ticks: u64,
    pub vsz_bytes: u64,
    pub rss_bytes: u64,
}

/// Reads `/proc/self/stat`; `None` if it cannot be read (not Linux, no /proc).
pub fn sample() -> Option<ProcessSample> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    parse_stat(&stat, page_size(), Instant::now())
}

/// Parses the fields after the command name (which may contain spaces and is
/// closed by the last `)`): utime is field 14, stime 15, vsize 23, rss 24.
fn parse_stat(stat: &str, page_size: u64, at: Instant) -> Option<ProcessSample> {
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3 (state).
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(ProcessSample {
        at,
        user_ticks: field(14)?,
        system_ticks: field(15)?,
        vsz_bytes: field(23)?,
        rss_bytes: field(24)?.saturating_mul(page_size),
    })
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).unwrap_or(4096)
}

/// Clock ticks per second (`_SC_CLK_TCK`).
pub fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// Total memory of the machine, from `/proc/meminfo`.
pub fn total_memory_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// CPU use between two samples, in percent of one CPU: (user, system).
pub fn cpu_percent(before: &ProcessSample, after: &ProcessSample) -> (f64, f64) {
    let seconds = after.at.duration_since(before.at).as_secs_f64();
    if seconds <= 0.0 {
        return (0.0, 0.0);
    }
    let scale = 100.0 / (seconds * ticks_per_second());
    (
        after.user_ticks.saturating_sub(before.user_ticks) as f64 * scale,
        after.system_ticks.saturating_sub(before.system_ticks) as f64 * scale,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_spaces_in_the_name() {
        let stat = "1234 (dmq node) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 100 104857600 2560 18446744073709551615";
        let s = parse_stat(stat, 4096, Instant::now()).expect("parse");
        assert_eq!((s.user_ticks, s.system_ticks), (250, 50));
        assert_eq!(s.vsz_bytes, 104_857_600);
        assert_eq!(s.rss_bytes, 2560 * 4096);
    }

    #[test]
    fn reads_this_process() {
        let s = sample().expect("/proc/self/stat");
        assert!(s.rss_bytes > 0 && s.vsz_bytes >= s.rss_bytes);
        assert!(total_memory_bytes().expect("meminfo") > 0);
    }
}
