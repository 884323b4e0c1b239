//! `stats.log`: one line every `stats.interval` seconds, aligned to the wall
//! clock, with the original node's keys in the original's order (spec 7.1), so
//! existing log parsers keep working. Counters (bytes, requests, actions, log
//! events) cover the interval since the previous line, as in the original;
//! gauges are current values.
//!
//! Written by a task on shard 0, which asks every shard for a snapshot over the
//! mesh. The file is reopened on SIGHUP (logrotate).

pub mod console;
pub mod process;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_lite::FutureExt;

use crate::context::ShardContext;
use crate::metrics::probes::{Protocol, ProtocolSnapshot, RequestKind, RequestSnapshot};
use crate::shard::ShardSnapshot;
use process::ProcessSample;

/// Log events by level since start, counted by [`crate::logging`].
pub static LOGGED: [AtomicU64; 5] = [
    AtomicU64::new(0),
    AtomicU64::new(0),
    AtomicU64::new(0),
    AtomicU64::new(0),
    AtomicU64::new(0),
];
/// Index in [`LOGGED`] of a level: trace, debug, info, warn, error.
pub fn level_index(level: &tracing::Level) -> usize {
    match *level {
        tracing::Level::TRACE => 0,
        tracing::Level::DEBUG => 1,
        tracing::Level::INFO => 2,
        tracing::Level::WARN => 3,
        tracing::Level::ERROR => 4,
    }
}

/// Totals at the previous line, to turn counters into per-interval figures.
#[derive(Default)]
struct Previous {
    process: Option<ProcessSample>,
    bytes_sent: u64,
    bytes_received: u64,
    legacy: Option<ProtocolSnapshot>,
    neo: Option<ProtocolSnapshot>,
    pushed_records: u64,
    pushed_bytes: u64,
    popped_records: u64,
    popped_bytes: u64,
    logged: [u64; 5],
}

/// Writes the stats line every interval until shutdown.
pub async fn run(ctx: Rc<ShardContext>) {
    let path = ctx.config.stats.file_name.clone();
    let interval = u64::from(ctx.config.stats.interval).max(1);
    let mut previous = Previous {
        process: process::sample(),
        ..Previous::default()
    };
    loop {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let next = (now.as_secs() / interval + 1) * interval;
        let wait = Duration::from_secs(next).saturating_sub(now);
        let stop = async {
            ctx.shutdown().wait().await;
            true
        };
        if async {
            glommio::timer::sleep(wait).await;
            false
        }
        .or(stop)
        .await
        {
            return;
        }
        let shards = match crate::metrics::gather(&ctx, true).await {
            Ok(shards) => shards,
            Err(e) => {
                tracing::warn!("stats: {e}");
                continue;
            }
        };
        let line = format_line(&ctx, &shards, &mut previous);
        if let Err(e) = append(&path, &line) {
            tracing::warn!(path = %path.display(), "cannot write stats line: {e}");
        }
    }
}

/// Appends one line, opening the file each time: a file moved away by
/// logrotate is replaced at the next line without any signal.
fn append(path: &Path, line: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = OpenOptions::new().create(true).append(true).open(path)?;
    file.write_all(line.as_bytes())
}

/// The stats file path, for tests and tools.
pub fn path(ctx: &ShardContext) -> PathBuf {
    ctx.config.stats.file_name.clone()
}

fn percent(part: usize, whole: u32) -> u64 {
    if whole == 0 {
        0
    } else {
        (part as u64 * 100 / u64::from(whole)).min(255)
    }
}

/// `request/<Name>/...` or `neo_request/<name>/...` timing fields for one
/// request type over the interval.
fn timing_fields(
    out: &mut String,
    prefix: &str,
    now: &RequestSnapshot,
    before: Option<&RequestSnapshot>,
) {
    let zero = RequestSnapshot::default();
    let before = before.unwrap_or(&zero);
    let handled = now.handled().saturating_sub(before.handled());
    let timed = now.timed.saturating_sub(before.timed);
    let total_us = now.total_us.saturating_sub(before.total_us);
    let mean = if timed == 0 {
        "-nan".to_owned()
    } else {
        format!("{}", total_us as f64 / timed as f64)
    };
    let _ = write!(
        out,
        " {prefix}/max_active:{} {prefix}/handled:{handled} {prefix}/mean_handled_time_micros:{mean}",
        now.max_active
    );
    let names = [
        "handled_10_micros",
        "handled_100_micros",
        "handled_1_ms",
        "handled_10_ms",
        "handled_100_ms",
        "handled_over_100_ms",
    ];
    for (i, name) in names.iter().enumerate() {
        let n = now.buckets[i].saturating_sub(before.buckets[i]);
        let _ = write!(out, " {prefix}/{name}:{n}");
    }
}

fn merged(shards: &[ShardSnapshot], protocol: Protocol) -> ProtocolSnapshot {
    let mut total = ProtocolSnapshot::default();
    for shard in shards {
        total.merge(shard.probes.protocol(protocol));
    }
    total
}

/// The whole line, newline included: the original's fields, in its order.
fn format_line(ctx: &ShardContext, shards: &[ShardSnapshot], previous: &mut Previous) -> String {
    let mut out = local_timestamp(SystemTime::now());
    process_fields(&mut out, previous);
    let legacy = merged(shards, Protocol::Legacy);
    let neo = merged(shards, Protocol::Neo);
    traffic_fields(&mut out, ctx, &legacy, &neo, previous);
    channel_fields(&mut out, shards);
    // No request version is marked for removal.
    out.push_str(" old_request_versions_in_use:0");
    request_fields(&mut out, &legacy, &neo, previous);
    previous.legacy = Some(legacy);
    previous.neo = Some(neo);
    action_fields(&mut out, shards, previous);
    storage_fields(&mut out, shards);
    log_fields(&mut out, previous);
    out.push('\n');
    out
}

/// Field group 1: The process: CPU since the last line, memory.
fn process_fields(out: &mut String, previous: &mut Previous) {
    let sample = process::sample();
    let (user, system) = match (&previous.process, &sample) {
        (Some(before), Some(after)) => process::cpu_percent(before, after),
        _ => (0.0, 0.0),
    };
    let (vsz, rss) = sample.map_or((0, 0), |s| (s.vsz_bytes, s.rss_bytes));
    let mem_percentage = process::total_memory_bytes()
        .filter(|&t| t > 0)
        .map_or(0.0, |t| rss as f64 * 100.0 / t as f64);
    let _ = write!(
        out,
        " cpu_user:{user:.2} cpu_system:{system:.2} cpu_total:{:.2} vsz:{vsz} rss:{rss} mem_percentage:{mem_percentage:.2}",
        user + system
    );
    previous.process = sample;
}

/// Field group 2: Traffic since the last line, and connections.
fn traffic_fields(
    out: &mut String,
    ctx: &ShardContext,
    legacy: &ProtocolSnapshot,
    neo: &ProtocolSnapshot,
    previous: &mut Previous,
) {
    let sent = legacy.bytes_sent + neo.bytes_sent;
    let received = legacy.bytes_received + neo.bytes_received;
    let limit = ctx.config.server.connection_limit;
    let legacy_open = ctx.node.legacy_connections.get();
    let neo_open = ctx.node.neo_connections.get();
    let _ = write!(
        out,
        " bytes_sent:{} bytes_received:{} handling_connections:{legacy_open} handling_connections_pcnt:{} handling_neo_connections:{neo_open} handling_neo_connections_pcnt:{}",
        sent.saturating_sub(previous.bytes_sent),
        received.saturating_sub(previous.bytes_received),
        percent(legacy_open, limit),
        percent(neo_open, limit),
    );
    previous.bytes_sent = sent;
    previous.bytes_received = received;
}

/// Field groups 3 and 4: Totals and per-channel figures (memory bytes with headers, plus
/// overflow payload bytes).
fn channel_fields(out: &mut String, shards: &[ShardSnapshot]) {
    let mut channels: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for s in shards.iter().flat_map(|s| &s.storages) {
        let entry = channels.entry(s.channel.as_str()).or_default();
        entry.0 += s.bytes_memory + s.bytes_overflow;
        entry.1 += s.records_memory + s.records_overflow;
    }
    let total_bytes: usize = channels.values().map(|c| c.0).sum();
    let total_records: usize = channels.values().map(|c| c.1).sum();
    let _ = write!(
        out,
        " total_bytes:{total_bytes} total_records:{total_records}"
    );
    for (channel, (bytes, records)) in &channels {
        let _ = write!(
            out,
            " channel/{channel}/bytes:{bytes} channel/{channel}/records:{records}"
        );
    }
}

/// Field groups 6 and 7: Legacy and neo requests since the last line.
fn request_fields(
    out: &mut String,
    legacy: &ProtocolSnapshot,
    neo: &ProtocolSnapshot,
    previous: &Previous,
) {
    // 6. Legacy requests.
    for kind in [
        RequestKind::Push,
        RequestKind::PushMulti,
        RequestKind::Pop,
        RequestKind::Produce,
        RequestKind::ProduceMulti,
        RequestKind::Consume,
    ] {
        let prefix = format!("request/{}", kind.stats_name());
        timing_fields(
            out,
            &prefix,
            legacy.request(kind),
            previous.legacy.as_ref().map(|p| p.request(kind)),
        );
    }

    // 7. Neo requests.
    for kind in [RequestKind::Push, RequestKind::Pop] {
        let prefix = format!("neo_request/{}", kind.label());
        timing_fields(
            out,
            &prefix,
            neo.request(kind),
            previous.neo.as_ref().map(|p| p.request(kind)),
        );
    }
    let consume = neo.request(RequestKind::Consume);
    let consume_before = previous
        .neo
        .as_ref()
        .map_or(0, |p| p.request(RequestKind::Consume).handled());
    let _ = write!(
        out,
        " neo_request/consume/max_active:{} neo_request/consume/handled:{}",
        consume.max_active,
        consume.handled().saturating_sub(consume_before)
    );
}

/// Field group 8: Actions since the last line, per storage, as the original counts them.
fn action_fields(out: &mut String, shards: &[ShardSnapshot], previous: &mut Previous) {
    let pushed_records: u64 = shards.iter().map(|s| s.counters.pushed_records).sum();
    let pushed_bytes: u64 = shards.iter().map(|s| s.counters.pushed_bytes).sum();
    let popped_records: u64 = shards.iter().map(|s| s.counters.popped_records).sum();
    let popped_bytes: u64 = shards.iter().map(|s| s.counters.popped_bytes).sum();
    let _ = write!(
        out,
        " action/pushed/records:{} action/pushed/bytes:{} action/popped/records:{} action/popped/bytes:{}",
        pushed_records.saturating_sub(previous.pushed_records),
        pushed_bytes.saturating_sub(previous.pushed_bytes),
        popped_records.saturating_sub(previous.popped_records),
        popped_bytes.saturating_sub(previous.popped_bytes),
    );
    previous.pushed_records = pushed_records;
    previous.pushed_bytes = pushed_bytes;
    previous.popped_records = popped_records;
    previous.popped_bytes = popped_bytes;
}

/// Field group 9: Per storage; the id is the storage name without a leading '@'.
fn storage_fields(out: &mut String, shards: &[ShardSnapshot]) {
    let mut storages: Vec<_> = shards.iter().flat_map(|s| &s.storages).collect();
    storages.sort_by(|a, b| a.name.cmp(&b.name));
    for s in storages {
        let id = s.name.strip_prefix('@').unwrap_or(&s.name);
        let percent_memory = if s.capacity_bytes == 0 {
            0
        } else {
            (s.bytes_memory as u64 * 100 / s.capacity_bytes as u64).min(255)
        };
        let _ = write!(
            out,
            " channel/{id}/bytes_memory:{} channel/{id}/bytes_overflow:{} channel/{id}/records_memory:{} channel/{id}/records_overflow:{} channel/{id}/percent_memory:{percent_memory}",
            s.bytes_memory, s.bytes_overflow, s.records_memory, s.records_overflow
        );
    }
}

/// Field group 10: log events since the last line (verbose and fatal do not
/// exist here: always 0).
fn log_fields(out: &mut String, previous: &mut Previous) {
    let logged: [u64; 5] = std::array::from_fn(|i| LOGGED[i].load(Ordering::Relaxed));
    let delta = |i: usize| logged[i].saturating_sub(previous.logged[i]);
    let _ = write!(
        out,
        " logged_debug:{} logged_trace:{} logged_verbose:0 logged_info:{} logged_warn:{} logged_error:{} logged_fatal:0",
        delta(1),
        delta(0),
        delta(2),
        delta(3),
        delta(4)
    );
    previous.logged = logged;
}

/// `YYYY-MM-DD HH:MM:SS,mmm` in local time, as the original's stats log.
pub fn local_timestamp(at: SystemTime) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = libc::time_t::try_from(since.as_secs()).unwrap_or(0);
    // SAFETY: localtime_r writes into the `tm` we own and reads `seconds`.
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&seconds, &mut tm);
        tm
    };
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02},{:03}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_has_the_original_layout() {
        let text = local_timestamp(UNIX_EPOCH + Duration::from_millis(1_700_000_000_123));
        assert_eq!(text.len(), "2023-11-14 22:13:20,123".len(), "{text}");
        assert!(text.ends_with(",123"), "{text}");
        assert_eq!(&text[4..5], "-");
        assert_eq!(&text[10..11], " ");
    }

    #[test]
    fn timing_fields_cover_the_interval_only() {
        let before = RequestSnapshot {
            statuses: vec![("200", 5)],
            timed: 5,
            total_us: 50,
            buckets: [5, 0, 0, 0, 0, 0],
            active: 0,
            max_active: 0,
        };
        let now = RequestSnapshot {
            statuses: vec![("200", 7)],
            timed: 7,
            total_us: 450,
            buckets: [5, 2, 0, 0, 0, 0],
            active: 0,
            max_active: 1,
        };
        let mut out = String::new();
        timing_fields(&mut out, "request/Push", &now, Some(&before));
        assert_eq!(
            out,
            " request/Push/max_active:1 request/Push/handled:2 request/Push/mean_handled_time_micros:200 \
             request/Push/handled_10_micros:0 request/Push/handled_100_micros:2 request/Push/handled_1_ms:0 \
             request/Push/handled_10_ms:0 request/Push/handled_100_ms:0 request/Push/handled_over_100_ms:0"
        );
        let mut empty = String::new();
        timing_fields(&mut empty, "request/Pop", &RequestSnapshot::default(), None);
        assert!(
            empty.contains("request/Pop/mean_handled_time_micros:-nan"),
            "{empty}"
        );
    }
}
