//! The live console view (`stats.console`; `auto` = when stdout is a
//! terminal): redrawn every second on stdout with memory, connections,
//! throughput, stored records and the fullest channels. Runs on shard 0.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_lite::FutureExt;

use crate::config::ConsoleMode;
use crate::context::ShardContext;
use crate::shard::ShardSnapshot;

/// Channels shown, fullest first.
const TOP_CHANNELS: usize = 10;

/// Whether the view is on for this config and this stdout.
pub fn enabled(mode: ConsoleMode) -> bool {
    match mode {
        ConsoleMode::On => true,
        ConsoleMode::Off => false,
        ConsoleMode::Auto => std::io::stdout().is_terminal(),
    }
}

/// Redraws the view every second until shutdown.
pub async fn run(ctx: Rc<ShardContext>) {
    let started = Instant::now();
    let mut last: Option<(Instant, u64, u64, u64, u64)> = None;
    loop {
        let stop = async {
            ctx.shutdown().wait().await;
            true
        };
        if async {
            glommio::timer::sleep(Duration::from_secs(1)).await;
            false
        }
        .or(stop)
        .await
        {
            return;
        }
        let Ok(shards) = crate::metrics::gather(&ctx, false).await else {
            continue;
        };
        let now = Instant::now();
        let totals = totals(&shards);
        let rates = last.map(|(at, pushed, popped, received, sent)| {
            let secs = now.duration_since(at).as_secs_f64().max(1e-3);
            (
                (totals.0 - pushed) as f64 / secs,
                (totals.1 - popped) as f64 / secs,
                (totals.2 - received) as f64 / secs,
                (totals.3 - sent) as f64 / secs,
            )
        });
        last = Some((now, totals.0, totals.1, totals.2, totals.3));
        let screen = render(&ctx, &shards, rates.unwrap_or_default(), started.elapsed());
        let mut stdout = std::io::stdout().lock();
        // Home, clear, then the view.
        let _ = stdout.write_all(b"\x1b[H\x1b[2J");
        let _ = stdout.write_all(screen.as_bytes());
        let _ = stdout.flush();
    }
}

/// (pushed records, popped records, bytes received, bytes sent) since start.
fn totals(shards: &[ShardSnapshot]) -> (u64, u64, u64, u64) {
    shards.iter().fold((0, 0, 0, 0), |acc, s| {
        let p = &s.probes;
        (
            acc.0 + s.counters.pushed_records,
            acc.1 + s.counters.popped_records,
            acc.2 + p.legacy.bytes_received + p.neo.bytes_received,
            acc.3 + p.legacy.bytes_sent + p.neo.bytes_sent,
        )
    })
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// The view as text (one screen).
pub fn render(
    ctx: &ShardContext,
    shards: &[ShardSnapshot],
    rates: (f64, f64, f64, f64),
    uptime: Duration,
) -> String {
    let mut out = String::new();
    let secs = uptime.as_secs();
    let _ = writeln!(
        out,
        "dmqnode {} | {} shard(s) | up {:02}:{:02}:{:02}",
        env!("CARGO_PKG_VERSION"),
        shards.len(),
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    let storages: Vec<_> = shards.iter().flat_map(|s| &s.storages).collect();
    let used: u64 = storages.iter().map(|s| s.bytes_memory as u64).sum();
    let allocated: u64 = storages.iter().map(|s| s.capacity_bytes as u64).sum();
    let limit = match ctx.config.server.memory_limit {
        0 => "no limit".to_owned(),
        n => format!("limit {:.1} MiB", mib(n)),
    };
    let rss = super::process::sample().map_or(0, |s| s.rss_bytes);
    let _ = writeln!(
        out,
        "memory      rings {:.1} MiB used of {:.1} MiB allocated ({limit}); process RSS {:.1} MiB",
        mib(used),
        mib(allocated),
        mib(rss)
    );
    let limit = ctx.config.server.connection_limit;
    let _ = writeln!(
        out,
        "connections legacy {} / {limit}, neo {} / {limit}",
        ctx.node.legacy_connections.get(),
        ctx.node.neo_connections.get()
    );
    let _ = writeln!(
        out,
        "throughput  pushed {:.0} rec/s, popped {:.0} rec/s, in {:.2} MB/s, out {:.2} MB/s",
        rates.0,
        rates.1,
        rates.2 / 1e6,
        rates.3 / 1e6
    );
    let records: usize = storages
        .iter()
        .map(|s| s.records_memory + s.records_overflow)
        .sum();
    let overflow: usize = storages.iter().map(|s| s.bytes_overflow).sum();
    let channels: usize = shards.iter().map(|s| s.channels).sum();
    let _ = writeln!(
        out,
        "stored      {records} records in {channels} channel(s), {:.1} MiB in memory, {:.1} MiB in overflow",
        mib(used),
        mib(overflow as u64)
    );
    let _ = writeln!(out);
    let mut by_fullness = storages;
    by_fullness.sort_by(|a, b| {
        let fa = a.bytes_memory as f64 / a.capacity_bytes.max(1) as f64;
        let fb = b.bytes_memory as f64 / b.capacity_bytes.max(1) as f64;
        fb.total_cmp(&fa).then_with(|| a.name.cmp(&b.name))
    });
    let shown = by_fullness.len().min(TOP_CHANNELS);
    let _ = writeln!(
        out,
        "{:<40} {:>10} {:>12} {:>6}",
        if by_fullness.len() > TOP_CHANNELS {
            format!(
                "storage (top {TOP_CHANNELS} of {} by fullness)",
                by_fullness.len()
            )
        } else {
            "storage".to_owned()
        },
        "records",
        "bytes",
        "full%"
    );
    for s in &by_fullness[..shown] {
        let full = s.bytes_memory as f64 * 100.0 / s.capacity_bytes.max(1) as f64;
        let _ = writeln!(
            out,
            "{:<40} {:>10} {:>12} {:>5.1}%",
            s.name,
            s.records_memory + s.records_overflow,
            s.bytes_memory + s.bytes_overflow,
            full
        );
    }
    out
}
