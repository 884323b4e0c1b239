//! The Prometheus text exposition of the node, built from the shards'
//! snapshots at scrape time (nothing is registered or updated on the hot path).
//!
//! Names and labels: `node-contract.md` (Metrics), plus `dmq_shard_*` runtime
//! figures and a few node totals.

use std::collections::BTreeMap;

use prometheus::proto::{
    Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType,
};
use prometheus::{Encoder, TextEncoder};

use crate::context::NodeShared;
use crate::metrics::probes::{Protocol, RequestKind, BUCKET_BOUNDS_US};
use crate::shard::ShardSnapshot;

/// One metric family being built.
struct Family {
    family: MetricFamily,
    metrics: Vec<Metric>,
}

impl Family {
    fn new(name: &str, help: &str, kind: MetricType) -> Family {
        let mut family = MetricFamily::default();
        family.set_name(name.to_owned());
        family.set_help(help.to_owned());
        family.set_field_type(kind);
        Family {
            family,
            metrics: Vec::new(),
        }
    }

    fn metric(labels: &[(&str, &str)]) -> Metric {
        let mut metric = Metric::default();
        metric.set_label(
            labels
                .iter()
                .map(|(name, value)| {
                    let mut pair = LabelPair::default();
                    pair.set_name((*name).to_owned());
                    pair.set_value((*value).to_owned());
                    pair
                })
                .collect(),
        );
        metric
    }

    fn gauge(&mut self, labels: &[(&str, &str)], value: f64) {
        let mut metric = Self::metric(labels);
        let mut gauge = Gauge::default();
        gauge.set_value(value);
        metric.set_gauge(gauge);
        self.metrics.push(metric);
    }

    fn counter(&mut self, labels: &[(&str, &str)], value: f64) {
        let mut metric = Self::metric(labels);
        let mut counter = Counter::default();
        counter.set_value(value);
        metric.set_counter(counter);
        self.metrics.push(metric);
    }

    fn histogram(
        &mut self,
        labels: &[(&str, &str)],
        buckets: &[u64; 6],
        count: u64,
        sum_seconds: f64,
    ) {
        let mut metric = Self::metric(labels);
        let mut histogram = Histogram::default();
        let mut cumulative = 0;
        let mut out = Vec::with_capacity(BUCKET_BOUNDS_US.len());
        for (bound, n) in BUCKET_BOUNDS_US.iter().zip(buckets) {
            cumulative += n;
            let mut bucket = Bucket::default();
            bucket.set_upper_bound(*bound as f64 / 1e6);
            bucket.set_cumulative_count(cumulative);
            out.push(bucket);
        }
        histogram.set_bucket(out);
        histogram.set_sample_count(count);
        histogram.set_sample_sum(sum_seconds);
        metric.set_histogram(histogram);
        self.metrics.push(metric);
    }

    fn done(mut self) -> MetricFamily {
        self.family.set_metric(self.metrics);
        self.family
    }
}

/// Per-channel totals summed over the channel's storages.
#[derive(Default)]
struct ChannelTotals {
    pushed_records: u64,
    pushed_bytes: u64,
    popped_records: u64,
    popped_bytes: u64,
}

/// The whole exposition text.
pub fn render(node: &NodeShared, shards: &[ShardSnapshot]) -> String {
    let (mut families, channels) = storage_families(shards);
    families.extend(channel_families(&channels));
    families.push(connection_family(node));
    families.extend(request_families(shards));
    families.extend(shard_families(shards));
    families.extend(shard_overflow_families(shards));
    encode(families)
}

/// Per storage: records, bytes, ring fullness and capacity; and the
/// storages' push and pop totals per channel.
fn storage_families(
    shards: &[ShardSnapshot],
) -> (Vec<MetricFamily>, BTreeMap<&str, ChannelTotals>) {
    let mut records = Family::new(
        "dmq_records",
        "Records stored, per storage and location.",
        MetricType::GAUGE,
    );
    let mut bytes = Family::new(
        "dmq_bytes",
        "Bytes stored, per storage and location (memory: ring bytes including 8-byte record headers; overflow: payload bytes).",
        MetricType::GAUGE,
    );
    let mut ratio = Family::new(
        "dmq_channel_memory_ratio",
        "Fullness of the storage's memory ring, 0 to 1.",
        MetricType::GAUGE,
    );
    let mut capacity = Family::new(
        "dmq_channel_memory_capacity_bytes",
        "Size of the storage's memory ring.",
        MetricType::GAUGE,
    );
    let mut channels: BTreeMap<&str, ChannelTotals> = BTreeMap::new();
    let mut storages: Vec<_> = shards.iter().flat_map(|s| &s.storages).collect();
    storages.sort_by(|a, b| (&a.channel, &a.subscriber).cmp(&(&b.channel, &b.subscriber)));
    for storage in storages {
        let subscriber = storage.subscriber.as_deref().unwrap_or("");
        let base = [
            ("channel", storage.channel.as_str()),
            ("subscriber", subscriber),
        ];
        let with = |location| [base[0], base[1], ("location", location)];
        records.gauge(&with("memory"), storage.records_memory as f64);
        records.gauge(&with("overflow"), storage.records_overflow as f64);
        bytes.gauge(&with("memory"), storage.bytes_memory as f64);
        bytes.gauge(&with("overflow"), storage.bytes_overflow as f64);
        let fullness = if storage.capacity_bytes == 0 {
            0.0
        } else {
            storage.bytes_memory as f64 / storage.capacity_bytes as f64
        };
        ratio.gauge(&base, fullness);
        capacity.gauge(&base, storage.capacity_bytes as f64);
        let totals = channels.entry(storage.channel.as_str()).or_default();
        totals.pushed_records += storage.pushed_records;
        totals.pushed_bytes += storage.pushed_bytes;
        totals.popped_records += storage.popped_records;
        totals.popped_bytes += storage.popped_bytes;
    }
    let families = vec![records.done(), bytes.done(), ratio.done(), capacity.done()];
    (families, channels)
}

/// Per channel: records and bytes pushed and popped.
fn channel_families(channels: &BTreeMap<&str, ChannelTotals>) -> Vec<MetricFamily> {
    let per_storage = "counted per storage: a record pushed to a channel with 3 subscribers counts 3, as in the original's stats";
    let mut pushed_records = Family::new(
        "dmq_pushed_records_total",
        &format!("Records pushed, {per_storage}."),
        MetricType::COUNTER,
    );
    let mut pushed_bytes = Family::new(
        "dmq_pushed_bytes_total",
        &format!("Payload bytes pushed, {per_storage}."),
        MetricType::COUNTER,
    );
    let mut popped_records = Family::new(
        "dmq_popped_records_total",
        "Records popped (by Pop and Consume).",
        MetricType::COUNTER,
    );
    let mut popped_bytes = Family::new(
        "dmq_popped_bytes_total",
        "Payload bytes popped (by Pop and Consume).",
        MetricType::COUNTER,
    );
    for (channel, t) in channels {
        let labels = [("channel", *channel)];
        pushed_records.counter(&labels, t.pushed_records as f64);
        pushed_bytes.counter(&labels, t.pushed_bytes as f64);
        popped_records.counter(&labels, t.popped_records as f64);
        popped_bytes.counter(&labels, t.popped_bytes as f64);
    }
    vec![
        pushed_records.done(),
        pushed_bytes.done(),
        popped_records.done(),
        popped_bytes.done(),
    ]
}

/// Open connections per protocol.
fn connection_family(node: &NodeShared) -> MetricFamily {
    let mut connections = Family::new(
        "dmq_connections",
        "Open client connections.",
        MetricType::GAUGE,
    );
    connections.gauge(
        &[("protocol", "legacy")],
        node.legacy_connections.get() as f64,
    );
    connections.gauge(&[("protocol", "neo")], node.neo_connections.get() as f64);
    connections.done()
}

/// Per protocol and request: outcomes, timing, bytes, requests running.
fn request_families(shards: &[ShardSnapshot]) -> Vec<MetricFamily> {
    let mut requests = Family::new(
        "dmq_requests_total",
        "Requests handled, by outcome (legacy: the status code or `closed`; neo: the status name).",
        MetricType::COUNTER,
    );
    let mut duration = Family::new(
        "dmq_request_duration_seconds",
        "Time from a request's arrival to its reply (requests answered once; streams are not timed). Pipelined requests of one read are timed together.",
        MetricType::HISTOGRAM,
    );
    let mut received = Family::new(
        "dmq_bytes_received_total",
        "Bytes read from clients.",
        MetricType::COUNTER,
    );
    let mut sent = Family::new(
        "dmq_bytes_sent_total",
        "Bytes written to clients.",
        MetricType::COUNTER,
    );
    let mut active = Family::new(
        "dmq_active_requests",
        "Streaming and neo requests running now.",
        MetricType::GAUGE,
    );
    for protocol in Protocol::ALL {
        let mut total = shards
            .first()
            .map(|s| s.probes.protocol(protocol).clone())
            .unwrap_or_default();
        for shard in shards.iter().skip(1) {
            total.merge(shard.probes.protocol(protocol));
        }
        let p = protocol.label();
        received.counter(&[("protocol", p)], total.bytes_received as f64);
        sent.counter(&[("protocol", p)], total.bytes_sent as f64);
        for kind in RequestKind::ALL {
            let r = total.request(kind);
            let k = kind.label();
            let mut statuses = r.statuses.clone();
            statuses.sort();
            for (status, n) in statuses {
                requests.counter(
                    &[("protocol", p), ("request", k), ("status", status)],
                    n as f64,
                );
            }
            if r.timed > 0 {
                duration.histogram(
                    &[("protocol", p), ("request", k)],
                    &r.buckets,
                    r.timed,
                    r.total_us as f64 / 1e6,
                );
            }
            if r.active > 0 {
                active.gauge(&[("protocol", p), ("request", k)], f64::from(r.active));
            }
        }
    }
    vec![
        requests.done(),
        duration.done(),
        received.done(),
        sent.done(),
        active.done(),
    ]
}

/// Per shard: busy time, routing, the mesh, channels and consumers.
fn shard_families(shards: &[ShardSnapshot]) -> Vec<MetricFamily> {
    let mut busy = Family::new(
        "dmq_shard_busy_seconds_total",
        "Time the shard's executor spent running tasks.",
        MetricType::COUNTER,
    );
    let mut ops = Family::new(
        "dmq_shard_ops_total",
        "Operations on channels started by this shard's connections, by route (local: done inline; remote: sent to the owner shard).",
        MetricType::COUNTER,
    );
    let mut messages = Family::new(
        "dmq_shard_mesh_messages_total",
        "Cross-shard messages, by direction.",
        MetricType::COUNTER,
    );
    let mut full = Family::new(
        "dmq_shard_mesh_full_total",
        "Cross-shard sends that found the queue full and waited (backpressure).",
        MetricType::COUNTER,
    );
    let mut depth = Family::new(
        "dmq_shard_queue_depth",
        "Cross-shard messages sent to the shard and not yet taken by it (all senders; read at slightly different instants, so approximate).",
        MetricType::GAUGE,
    );
    let mut owned = Family::new(
        "dmq_shard_channels",
        "Channels owned by the shard.",
        MetricType::GAUGE,
    );
    let mut consumers = Family::new(
        "dmq_shard_consumers",
        "Consumers registered on the shard's channels.",
        MetricType::GAUGE,
    );
    for (id_num, shard) in shards.iter().enumerate() {
        let id = id_num.to_string();
        let labels = [("shard", id.as_str())];
        busy.counter(&labels, shard.busy_seconds);
        ops.counter(
            &[labels[0], ("route", "local")],
            shard.probes.ops_local as f64,
        );
        ops.counter(
            &[labels[0], ("route", "remote")],
            shard.probes.ops_remote as f64,
        );
        messages.counter(
            &[labels[0], ("direction", "sent")],
            shard.probes.mesh_messages as f64,
        );
        messages.counter(
            &[labels[0], ("direction", "received")],
            shard.probes.mesh_received as f64,
        );
        full.counter(&labels, shard.probes.mesh_full as f64);
        let to_here: u64 = shards
            .iter()
            .map(|s| s.probes.mesh_sent_to.get(id_num).copied().unwrap_or(0))
            .sum();
        depth.gauge(
            &labels,
            to_here.saturating_sub(shard.probes.mesh_received) as f64,
        );
        owned.gauge(&labels, shard.channels as f64);
        consumers.gauge(&labels, shard.consumers as f64);
    }
    vec![
        busy.done(),
        ops.done(),
        messages.done(),
        full.done(),
        depth.done(),
        owned.done(),
        consumers.done(),
    ]
}

/// Per shard: the disk overflow and the memory budget.
fn shard_overflow_families(shards: &[ShardSnapshot]) -> Vec<MetricFamily> {
    let mut refused = Family::new(
        "dmq_shard_overflow_refused_total",
        "Pushes refused because the disk overflow could not take the record (overflow.disk_limit reached, disk full or I/O error).",
        MetricType::COUNTER,
    );
    let mut spilled = Family::new(
        "dmq_shard_overflow_written_records_total",
        "Records written to the disk overflow because they did not fit in memory (or older records were on disk).",
        MetricType::COUNTER,
    );
    let mut refilled = Family::new(
        "dmq_shard_overflow_read_records_total",
        "Records read back from the disk overflow into memory.",
        MetricType::COUNTER,
    );
    let mut disk_errors = Family::new(
        "dmq_shard_overflow_errors_total",
        "Disk overflow writes or reads that failed.",
        MetricType::COUNTER,
    );
    let mut disk_lost = Family::new(
        "dmq_shard_overflow_lost_records_total",
        "Records given up: taken by a failed write (their pushes were answered with an error) or unreadable on disk.",
        MetricType::COUNTER,
    );
    let mut segments = Family::new(
        "dmq_shard_overflow_segments",
        "Disk overflow segment files of the shard.",
        MetricType::GAUGE,
    );
    let mut file_bytes = Family::new(
        "dmq_shard_overflow_file_bytes",
        "Bytes in the shard's disk overflow segment files.",
        MetricType::GAUGE,
    );
    let mut budget = Family::new(
        "dmq_shard_memory_budget_left_bytes",
        "Ring bytes left in the shard's share of server.memory_limit (absent without a limit).",
        MetricType::GAUGE,
    );
    let mut short = Family::new(
        "dmq_shard_short_rings_total",
        "Storages that got a smaller ring than configured (memory budget spent, or allocation failed).",
        MetricType::COUNTER,
    );
    for (id_num, shard) in shards.iter().enumerate() {
        let id = id_num.to_string();
        let labels = [("shard", id.as_str())];
        refused.counter(&labels, shard.counters.refused_disk as f64);
        spilled.counter(&labels, shard.overflow.written_records as f64);
        refilled.counter(&labels, shard.counters.refilled_records as f64);
        disk_errors.counter(&labels, shard.counters.disk_errors as f64);
        disk_lost.counter(&labels, shard.counters.disk_lost_records as f64);
        segments.gauge(&labels, shard.overflow.segments as f64);
        file_bytes.gauge(&labels, shard.overflow.file_bytes as f64);
        if let Some(left) = shard.overflow.memory_budget_left {
            budget.gauge(&labels, left as f64);
        }
        short.counter(&labels, shard.overflow.short_rings as f64);
    }
    vec![
        refused.done(),
        spilled.done(),
        refilled.done(),
        disk_errors.done(),
        disk_lost.done(),
        segments.done(),
        file_bytes.done(),
        budget.done(),
        short.done(),
    ]
}

/// The text format of the non-empty families.
fn encode(families: Vec<MetricFamily>) -> String {
    let mut out = Vec::new();
    // Encoding only fails for families without metrics of their declared type,
    // which `Family` never builds; an empty family is skipped by the encoder.
    let families: Vec<MetricFamily> = families
        .into_iter()
        .filter(|f| !f.get_metric().is_empty())
        .collect();
    if let Err(e) = TextEncoder::new().encode(&families, &mut out) {
        tracing::error!("metrics encoding failed: {e}");
    }
    String::from_utf8(out).unwrap_or_default()
}
