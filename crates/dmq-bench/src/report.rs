//! The report of a run: what was asked, what was measured. Written as JSON
//! (`--json FILE`), printed as a one-screen summary, and read back by
//! `dmq-bench median` for `benches/compare`.
//!
//! Units are in the field names: `_s` seconds, `_us` microseconds, `_bytes`,
//! `_per_s`. MB are 10^6 bytes of record values (no protocol overhead); MiB
//! (2^20) are used for memory only.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::latency::{LatencySummary, PercentilePoint};
use crate::Error;

/// One second of the measurement window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelinePoint {
    /// End of the bucket, seconds after the window opened.
    pub t_s: f64,
    pub records_per_s: f64,
    pub mb_per_s: f64,
}

/// The server's resources over the run (`--server-pid`, summed over the PIDs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerStats {
    pub pids: Vec<u32>,
    /// CPU time (user + system) spent in the measurement window.
    pub cpu_s: f64,
    /// `cpu_s` per record moved, in microseconds.
    pub cpu_us_per_record: Option<f64>,
    /// Resident memory before the run started (before idle connections).
    pub rss_start_bytes: u64,
    /// Resident memory once the idle connections were open (if any).
    pub rss_idle_bytes: Option<u64>,
    /// Resident memory at the end of the window.
    pub rss_end_bytes: u64,
    /// Peak resident memory (VmHWM) at the end.
    pub rss_peak_bytes: u64,
}

/// Everything about one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub tool: String,
    pub label: Option<String>,
    pub workload: String,
    pub target: String,
    pub addrs: Vec<String>,
    pub neo_addrs: Vec<String>,
    pub connections: usize,
    pub in_flight: usize,
    /// `N` (bytes) or `uniform:MIN:MAX`.
    pub size: String,
    pub channels: usize,
    pub subscribers: Option<usize>,
    /// `closed` or `open`.
    pub loop_kind: String,
    pub rate_per_s: Option<f64>,
    pub warmup_s: f64,
    pub duration_s: Option<f64>,
    pub count: Option<u64>,
    pub idle_connections: usize,
    /// Seconds since the Unix epoch when the run started.
    pub started_unix_s: u64,
    /// Length of the measurement window.
    pub elapsed_s: f64,
    pub requests: u64,
    pub records: u64,
    pub bytes: u64,
    pub empty_count: u64,
    pub error_count: u64,
    pub first_error: Option<String>,
    /// Connections that failed (their text), at most ten.
    pub failures: Vec<String>,
    pub records_per_s: f64,
    pub mb_per_s: f64,
    pub requests_per_s: f64,
    pub latency: Option<LatencySummary>,
    pub latency_percentiles: Vec<PercentilePoint>,
    pub timeline: Vec<TimelinePoint>,
    pub server: Option<ServerStats>,
    /// Workload-specific figures (e.g. fanout's `pushed_records`).
    pub extra: BTreeMap<String, f64>,
}

impl Report {
    /// Writes the report as pretty JSON.
    pub fn write_json(&self, path: &Path) -> Result<(), Error> {
        let text =
            serde_json::to_string_pretty(self).map_err(|e| report_error(path, e.to_string()))?;
        std::fs::write(path, text + "\n").map_err(|e| report_error(path, e.to_string()))
    }

    /// Reads a report written by [`Report::write_json`].
    pub fn read_json(path: &Path) -> Result<Report, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| report_error(path, e.to_string()))?;
        serde_json::from_str(&text).map_err(|e| report_error(path, e.to_string()))
    }

    /// The one-screen summary printed on stdout: one line per section, the
    /// optional ones only when they have something to say.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        self.write_title(&mut s);
        self.write_setup(&mut s);
        self.write_window(&mut s);
        self.write_throughput(&mut s);
        self.write_not_moved(&mut s);
        self.write_extra(&mut s);
        self.write_latency(&mut s);
        self.write_server(&mut s);
        for failure in &self.failures {
            let _ = writeln!(s, "  FAILED       {failure}");
        }
        s
    }

    /// Workload, target, addresses and label.
    fn write_title(&self, s: &mut String) {
        let _ = writeln!(
            s,
            "dmq-bench {} → {} {}{}",
            self.workload,
            self.target,
            self.addrs.join(","),
            self.label
                .as_ref()
                .map(|l| format!("  [{l}]"))
                .unwrap_or_default()
        );
    }

    /// Connections, record size, channels and the kind of loop.
    fn write_setup(&self, s: &mut String) {
        let loop_text = match self.rate_per_s {
            Some(rate) => format!("open loop at {} records/s", group(rate)),
            None => "closed loop".to_owned(),
        };
        let size = if self.size.contains(':') {
            self.size.clone()
        } else {
            format!("{} B", self.size)
        };
        let _ = writeln!(
            s,
            "  setup        {} connection(s) × {} in flight, {size}, {} channel(s){}, {loop_text}{}",
            self.connections,
            self.in_flight,
            self.channels,
            self.subscribers
                .map(|n| format!(", {n} subscriber(s)"))
                .unwrap_or_default(),
            if self.idle_connections > 0 {
                format!(", {} idle connections", self.idle_connections)
            } else {
                String::new()
            }
        );
    }

    /// What the measurement window was: a count, or a duration after a warm-up.
    fn write_window(&self, s: &mut String) {
        let window = match (self.count, self.duration_s) {
            (Some(count), _) => {
                format!("{} records in {:.3} s", group(count as f64), self.elapsed_s)
            }
            _ => format!(
                "{:.2} s after {:.2} s warm-up",
                self.elapsed_s, self.warmup_s
            ),
        };
        let _ = writeln!(s, "  measured     {window}");
    }

    fn write_throughput(&self, s: &mut String) {
        let _ = writeln!(
            s,
            "  throughput   {} records/s   {:.2} MB/s   ({} records, {} requests/s)",
            group(self.records_per_s),
            self.mb_per_s,
            group(self.records as f64),
            group(self.requests_per_s)
        );
    }

    /// Empty pops and refusals, if there were any.
    fn write_not_moved(&self, s: &mut String) {
        if self.empty_count > 0 || self.error_count > 0 {
            let _ = writeln!(
                s,
                "  not moved    {} empty pops, {} refused{}",
                group(self.empty_count as f64),
                group(self.error_count as f64),
                self.first_error
                    .as_ref()
                    .map(|e| format!(" (first: {e})"))
                    .unwrap_or_default()
            );
        }
    }

    /// The workload-specific figures, one line each (seconds to the ms).
    fn write_extra(&self, s: &mut String) {
        for (key, value) in &self.extra {
            let text = if key.ends_with("_s") {
                format!("{value:.3}")
            } else {
                group(*value)
            };
            let _ = writeln!(s, "  {key:<12} {text}");
        }
    }

    fn write_latency(&self, s: &mut String) {
        match &self.latency {
            Some(l) => {
                let _ = writeln!(
                    s,
                    "  latency µs   p50 {}  p90 {}  p99 {}  p99.9 {}  p99.99 {}  max {}  ({} samples)",
                    us(l.p50_us),
                    us(l.p90_us),
                    us(l.p99_us),
                    us(l.p99_9_us),
                    us(l.p99_99_us),
                    us(l.max_us),
                    group(l.count as f64)
                );
            }
            None => {
                let _ = writeln!(s, "  latency      not measured by this workload");
            }
        }
    }

    /// Server CPU and memory, with `--server-pid`.
    fn write_server(&self, s: &mut String) {
        let Some(server) = &self.server else {
            return;
        };
        let per_record = server
            .cpu_us_per_record
            .map(|v| format!("{v:.2} µs/record, "))
            .unwrap_or_default();
        let idle = server
            .rss_idle_bytes
            .map(|b| format!(", {} with idle connections", mib(b)))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "  server       cpu {per_record}{:.2} s   rss {} at start{idle}, {} at end (peak {})",
            server.cpu_s,
            mib(server.rss_start_bytes),
            mib(server.rss_end_bytes),
            mib(server.rss_peak_bytes)
        );
    }
}

fn report_error(path: &Path, detail: String) -> Error {
    Error::Report {
        path: path.display().to_string(),
        detail,
    }
}

/// A number with thin groups of three digits: `1 234 567`.
pub fn group(value: f64) -> String {
    if !value.is_finite() {
        return "-".into();
    }
    let rounded = value.round() as i64;
    let digits = rounded.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    if rounded < 0 {
        out.insert(0, '-');
    }
    out
}

fn us(value: f64) -> String {
    if value < 100.0 {
        format!("{value:.1}")
    } else {
        group(value)
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// The number at a dotted path (`latency.p99_us`, `server.cpu_us_per_record`) of a
/// report's JSON.
pub fn field(json: &serde_json::Value, path: &str) -> Option<f64> {
    let mut node = json;
    for part in path.split('.') {
        node = node.get(part)?;
    }
    node.as_f64()
}

/// The median (mean of the middle two for an even count); `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::latency::{new_histogram, record, spectrum};
    use std::time::Duration;

    pub(crate) fn sample() -> Report {
        let mut h = new_histogram();
        for us in [10, 20, 30, 40, 1000] {
            record(&mut h, Duration::from_micros(us));
        }
        Report {
            tool: "dmq-bench 0.1.0".into(),
            label: Some("round 1".into()),
            workload: "push".into(),
            target: "dmq".into(),
            addrs: vec!["127.0.0.1:10000".into()],
            neo_addrs: vec!["127.0.0.1:10001".into()],
            connections: 50,
            in_flight: 16,
            size: "100".into(),
            channels: 50,
            subscribers: None,
            loop_kind: "closed".into(),
            rate_per_s: None,
            warmup_s: 0.5,
            duration_s: Some(3.0),
            count: None,
            idle_connections: 0,
            started_unix_s: 1_700_000_000,
            elapsed_s: 3.000_123_456_789,
            requests: 2_547_001,
            records: 2_547_000,
            bytes: 254_700_000,
            empty_count: 0,
            error_count: 1,
            first_error: Some("Push answered status 500".into()),
            failures: vec![],
            records_per_s: 848_965.1234567891,
            mb_per_s: 84.896_512_345_678_91,
            requests_per_s: 848_965.456_7,
            latency: LatencySummary::from_histogram(&h),
            latency_percentiles: spectrum(&h),
            timeline: vec![TimelinePoint {
                t_s: 1.0,
                records_per_s: 850_000.5,
                mb_per_s: 85.000_05,
            }],
            server: Some(ServerStats {
                pids: vec![4242],
                cpu_s: 2.93,
                cpu_us_per_record: Some(1.150_372_988_614_056_8),
                rss_start_bytes: 10 << 20,
                rss_idle_bytes: None,
                rss_end_bytes: 300 << 20,
                rss_peak_bytes: 310 << 20,
            }),
            extra: BTreeMap::from([("pushed_records".to_owned(), 12.0)]),
        }
    }

    #[test]
    fn json_round_trips_exactly() {
        let report = sample();
        let text = serde_json::to_string(&report).expect("serialise");
        let back: Report = serde_json::from_str(&text).expect("deserialise");
        assert_eq!(back, report);
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("r.json");
        report.write_json(&path).expect("write");
        assert_eq!(Report::read_json(&path).expect("read"), report);
        let value: serde_json::Value = serde_json::from_str(&text).expect("value");
        assert_eq!(field(&value, "records_per_s"), Some(report.records_per_s));
        assert_eq!(
            field(&value, "server.cpu_us_per_record"),
            Some(1.150_372_988_614_056_8)
        );
        let p99 = report.latency.as_ref().map(|l| l.p99_us);
        assert_eq!(field(&value, "latency.p99_us"), p99);
        assert_eq!(field(&value, "latency.nope"), None);
        assert!(Report::read_json(&dir.path().join("missing.json")).is_err());
    }

    #[test]
    fn summary_fits_one_screen_and_says_what_was_measured() {
        let text = sample().summary();
        assert!(text.lines().count() <= 24, "{text}");
        assert!(text.contains("848 965 records/s"), "{text}");
        assert!(text.contains("84.90 MB/s"), "{text}");
        assert!(text.contains("p99"), "{text}");
        assert!(text.contains("1.15 µs/record"), "{text}");
        assert!(text.contains("first: Push answered status 500"), "{text}");
    }

    #[test]
    fn median_and_grouping() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[f64::NAN, 5.0]), Some(5.0));
        assert_eq!(group(1_234_567.4), "1 234 567");
        assert_eq!(group(999.0), "999");
        assert_eq!(group(-1000.0), "-1 000");
    }
}
