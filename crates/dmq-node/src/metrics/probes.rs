//! Per-shard counters of what the shard's connections did: requests by type
//! and outcome with their timing, bytes in and out, concurrency. Plain `Cell`s
//! on the shard's own thread: counting costs a few adds, no atomics, no locks,
//! no cross-core traffic. A scrape or a stats line asks each shard for a
//! [`ProbesSnapshot`] over the mesh.
//!
//! Lives inside its shard's [`crate::shard::Shard`], for the life of the process.

use std::cell::Cell;
use std::time::Duration;

/// Upper bounds of the timing buckets, in µs: the original's stats.log buckets
/// (10 µs, 100 µs, 1 ms, 10 ms, 100 ms, more), also used for the Prometheus
/// histogram.
pub const BUCKET_BOUNDS_US: [u64; 5] = [10, 100, 1_000, 10_000, 100_000];

/// The wire protocol a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Legacy,
    Neo,
}

impl Protocol {
    pub const ALL: [Protocol; 2] = [Protocol::Legacy, Protocol::Neo];

    pub fn label(self) -> &'static str {
        match self {
            Protocol::Legacy => "legacy",
            Protocol::Neo => "neo",
        }
    }
}

/// Request types, the `request` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    Push,
    Pop,
    Consume,
    PushMulti,
    Produce,
    ProduceMulti,
    RemoveChannel,
    GetNumConnections,
    /// A code the node does not serve (legacy: connection closed; neo: −1/−2).
    Unsupported,
}

impl RequestKind {
    pub const COUNT: usize = 9;
    pub const ALL: [RequestKind; RequestKind::COUNT] = [
        RequestKind::Push,
        RequestKind::Pop,
        RequestKind::Consume,
        RequestKind::PushMulti,
        RequestKind::Produce,
        RequestKind::ProduceMulti,
        RequestKind::RemoveChannel,
        RequestKind::GetNumConnections,
        RequestKind::Unsupported,
    ];

    pub fn label(self) -> &'static str {
        match self {
            RequestKind::Push => "push",
            RequestKind::Pop => "pop",
            RequestKind::Consume => "consume",
            RequestKind::PushMulti => "push_multi",
            RequestKind::Produce => "produce",
            RequestKind::ProduceMulti => "produce_multi",
            RequestKind::RemoveChannel => "remove_channel",
            RequestKind::GetNumConnections => "get_num_connections",
            RequestKind::Unsupported => "unsupported",
        }
    }

    /// The original's stats.log name (`request/<Name>/...`).
    pub fn stats_name(self) -> &'static str {
        match self {
            RequestKind::Push => "Push",
            RequestKind::Pop => "Pop",
            RequestKind::Consume => "Consume",
            RequestKind::PushMulti => "PushMulti",
            RequestKind::Produce => "Produce",
            RequestKind::ProduceMulti => "ProduceMulti",
            RequestKind::RemoveChannel => "RemoveChannel",
            RequestKind::GetNumConnections => "GetNumConnections",
            RequestKind::Unsupported => "Unsupported",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// How a request ended, the `status` label: legacy status codes, neo status
/// names, `closed` for a legacy request that closed the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    S200,
    S400,
    S404,
    S406,
    S407,
    S408,
    S409,
    S410,
    S500,
    OtherCode,
    Closed,
    Pushed,
    Popped,
    Empty,
    Error,
    Subscribed,
    Started,
    NotSupported,
    VersionNotSupported,
}

impl Outcome {
    pub const COUNT: usize = 19;
    pub const ALL: [Outcome; Outcome::COUNT] = [
        Outcome::S200,
        Outcome::S400,
        Outcome::S404,
        Outcome::S406,
        Outcome::S407,
        Outcome::S408,
        Outcome::S409,
        Outcome::S410,
        Outcome::S500,
        Outcome::OtherCode,
        Outcome::Closed,
        Outcome::Pushed,
        Outcome::Popped,
        Outcome::Empty,
        Outcome::Error,
        Outcome::Subscribed,
        Outcome::Started,
        Outcome::NotSupported,
        Outcome::VersionNotSupported,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Outcome::S200 => "200",
            Outcome::S400 => "400",
            Outcome::S404 => "404",
            Outcome::S406 => "406",
            Outcome::S407 => "407",
            Outcome::S408 => "408",
            Outcome::S409 => "409",
            Outcome::S410 => "410",
            Outcome::S500 => "500",
            Outcome::OtherCode => "other",
            Outcome::Closed => "closed",
            Outcome::Pushed => "pushed",
            Outcome::Popped => "popped",
            Outcome::Empty => "empty",
            Outcome::Error => "error",
            Outcome::Subscribed => "subscribed",
            Outcome::Started => "started",
            Outcome::NotSupported => "not_supported",
            Outcome::VersionNotSupported => "version_not_supported",
        }
    }

    /// The outcome of a legacy status code.
    pub fn legacy(code: i32) -> Outcome {
        match code {
            200 => Outcome::S200,
            400 => Outcome::S400,
            404 => Outcome::S404,
            406 => Outcome::S406,
            407 => Outcome::S407,
            408 => Outcome::S408,
            409 => Outcome::S409,
            410 => Outcome::S410,
            500 => Outcome::S500,
            _ => Outcome::OtherCode,
        }
    }
}

/// Request counts by outcome, timing buckets and concurrency of one request
/// type on one protocol.
#[derive(Debug, Default)]
struct RequestProbe {
    statuses: [Cell<u64>; Outcome::COUNT],
    timed: Cell<u64>,
    total_us: Cell<u64>,
    /// Counts per bucket of [`BUCKET_BOUNDS_US`], plus the overflow bucket.
    buckets: [Cell<u64>; 6],
    active: Cell<u32>,
    /// Highest `active` since the last stats line.
    max_active: Cell<u32>,
}

#[derive(Debug, Default)]
struct ProtocolProbes {
    requests: [RequestProbe; RequestKind::COUNT],
    bytes_received: Cell<u64>,
    bytes_sent: Cell<u64>,
}

/// The probes of one shard.
#[derive(Debug, Default)]
pub struct Probes {
    legacy: ProtocolProbes,
    neo: ProtocolProbes,
    /// Operations for this shard's channels done inline by its own connections.
    pub ops_local: Cell<u64>,
    /// Operations sent to other shards.
    pub ops_remote: Cell<u64>,
    /// Messages sent to other shards.
    pub mesh_messages: Cell<u64>,
    /// Messages sent, per destination shard (for queue depths).
    mesh_sent_to: std::cell::RefCell<Vec<u64>>,
    /// Sends that found a mesh queue full and waited.
    pub mesh_full: Cell<u64>,
    /// Messages received from other shards.
    pub mesh_received: Cell<u64>,
}

fn add(cell: &Cell<u64>, n: u64) {
    cell.set(cell.get().wrapping_add(n));
}

impl Probes {
    fn protocol(&self, protocol: Protocol) -> &ProtocolProbes {
        match protocol {
            Protocol::Legacy => &self.legacy,
            Protocol::Neo => &self.neo,
        }
    }

    fn request(&self, protocol: Protocol, kind: RequestKind) -> &RequestProbe {
        &self.protocol(protocol).requests[kind.index()]
    }

    /// Counts one finished request with its outcome and, if given, its duration.
    pub fn request_done(
        &self,
        protocol: Protocol,
        kind: RequestKind,
        outcome: Outcome,
        took: Option<Duration>,
    ) {
        self.count(protocol, kind, outcome);
        if let Some(took) = took {
            self.time(protocol, kind, took, 1);
        }
    }

    /// Counts one finished request with its outcome (no timing).
    pub fn count(&self, protocol: Protocol, kind: RequestKind, outcome: Outcome) {
        add(&self.request(protocol, kind).statuses[outcome as usize], 1);
    }

    /// Adds `n` requests that each took `took` to the timing figures (a batch
    /// of pipelined requests is timed once, from its arrival to its replies).
    pub fn time(&self, protocol: Protocol, kind: RequestKind, took: Duration, n: u64) {
        let probe = self.request(protocol, kind);
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        add(&probe.timed, n);
        add(&probe.total_us, us.saturating_mul(n));
        let bucket = BUCKET_BOUNDS_US
            .iter()
            .position(|&bound| us <= bound)
            .unwrap_or(BUCKET_BOUNDS_US.len());
        add(&probe.buckets[bucket], n);
    }

    /// A request of this kind started (streams and neo requests that run a while).
    pub fn request_started(&self, protocol: Protocol, kind: RequestKind) {
        let probe = self.request(protocol, kind);
        probe.active.set(probe.active.get() + 1);
        probe
            .max_active
            .set(probe.max_active.get().max(probe.active.get()));
    }

    /// A request counted by [`Probes::request_started`] ended.
    pub fn request_ended(&self, protocol: Protocol, kind: RequestKind) {
        let probe = self.request(protocol, kind);
        probe.active.set(probe.active.get().saturating_sub(1));
    }

    /// Counts a message sent to shard `to`.
    pub fn mesh_sent(&self, to: usize) {
        add(&self.mesh_messages, 1);
        let mut sent = self.mesh_sent_to.borrow_mut();
        if sent.len() <= to {
            sent.resize(to + 1, 0);
        }
        sent[to] += 1;
    }

    pub fn received(&self, protocol: Protocol, bytes: usize) {
        add(&self.protocol(protocol).bytes_received, bytes as u64);
    }

    pub fn sent(&self, protocol: Protocol, bytes: usize) {
        add(&self.protocol(protocol).bytes_sent, bytes as u64);
    }

    /// Everything counted so far. `reset_max_active` starts a new max-active
    /// window (the stats line does; scrapes do not).
    pub fn snapshot(&self, reset_max_active: bool) -> ProbesSnapshot {
        let protocol = |p: &ProtocolProbes| ProtocolSnapshot {
            bytes_received: p.bytes_received.get(),
            bytes_sent: p.bytes_sent.get(),
            requests: RequestKind::ALL.map(|kind| {
                let r = &p.requests[kind.index()];
                let max_active = r.max_active.get();
                if reset_max_active {
                    r.max_active.set(r.active.get());
                }
                RequestSnapshot {
                    statuses: Outcome::ALL
                        .iter()
                        .zip(&r.statuses)
                        .filter(|(_, n)| n.get() > 0)
                        .map(|(o, n)| (o.label(), n.get()))
                        .collect(),
                    timed: r.timed.get(),
                    total_us: r.total_us.get(),
                    buckets: std::array::from_fn(|i| r.buckets[i].get()),
                    active: r.active.get(),
                    max_active,
                }
            }),
        };
        ProbesSnapshot {
            legacy: protocol(&self.legacy),
            neo: protocol(&self.neo),
            ops_local: self.ops_local.get(),
            ops_remote: self.ops_remote.get(),
            mesh_messages: self.mesh_messages.get(),
            mesh_sent_to: self.mesh_sent_to.borrow().clone(),
            mesh_full: self.mesh_full.get(),
            mesh_received: self.mesh_received.get(),
        }
    }
}

/// One request type's figures, as copied out of a shard.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestSnapshot {
    pub statuses: Vec<(&'static str, u64)>,
    pub timed: u64,
    pub total_us: u64,
    pub buckets: [u64; 6],
    pub active: u32,
    pub max_active: u32,
}

impl RequestSnapshot {
    pub fn handled(&self) -> u64 {
        self.statuses.iter().map(|(_, n)| n).sum()
    }

    /// Adds another shard's figures (for node-wide totals).
    pub fn merge(&mut self, other: &RequestSnapshot) {
        for &(status, n) in &other.statuses {
            match self.statuses.iter_mut().find(|(s, _)| *s == status) {
                Some((_, m)) => *m += n,
                None => self.statuses.push((status, n)),
            }
        }
        self.timed += other.timed;
        self.total_us += other.total_us;
        for (a, b) in self.buckets.iter_mut().zip(other.buckets) {
            *a += b;
        }
        self.active += other.active;
        self.max_active += other.max_active;
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProtocolSnapshot {
    pub bytes_received: u64,
    pub bytes_sent: u64,
    pub requests: [RequestSnapshot; RequestKind::COUNT],
}

impl ProtocolSnapshot {
    pub fn request(&self, kind: RequestKind) -> &RequestSnapshot {
        &self.requests[kind.index()]
    }

    pub fn merge(&mut self, other: &ProtocolSnapshot) {
        self.bytes_received += other.bytes_received;
        self.bytes_sent += other.bytes_sent;
        for (a, b) in self.requests.iter_mut().zip(&other.requests) {
            a.merge(b);
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProbesSnapshot {
    pub legacy: ProtocolSnapshot,
    pub neo: ProtocolSnapshot,
    pub ops_local: u64,
    pub ops_remote: u64,
    pub mesh_messages: u64,
    /// Messages sent, per destination shard.
    pub mesh_sent_to: Vec<u64>,
    pub mesh_full: u64,
    pub mesh_received: u64,
}

impl ProbesSnapshot {
    pub fn protocol(&self, protocol: Protocol) -> &ProtocolSnapshot {
        match protocol {
            Protocol::Legacy => &self.legacy,
            Protocol::Neo => &self.neo,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_statuses_buckets_and_max_active() {
        let probes = Probes::default();
        let push = RequestKind::Push;
        probes.request_done(
            Protocol::Legacy,
            push,
            Outcome::S200,
            Some(Duration::from_micros(5)),
        );
        probes.request_done(
            Protocol::Legacy,
            push,
            Outcome::S200,
            Some(Duration::from_micros(500)),
        );
        probes.request_done(
            Protocol::Legacy,
            push,
            Outcome::S409,
            Some(Duration::from_secs(1)),
        );
        probes.request_started(Protocol::Neo, RequestKind::Consume);
        probes.request_started(Protocol::Neo, RequestKind::Consume);
        probes.request_ended(Protocol::Neo, RequestKind::Consume);
        let snap = probes.snapshot(true);
        let r = snap.legacy.request(push);
        assert_eq!(r.statuses, vec![("200", 2), ("409", 1)]);
        assert_eq!(r.handled(), 3);
        assert_eq!(r.buckets, [1, 0, 1, 0, 0, 1]);
        assert_eq!(r.total_us, 1_000_505);
        let c = snap.neo.request(RequestKind::Consume);
        assert_eq!((c.active, c.max_active), (1, 2));
        // The window restarted at the current level.
        assert_eq!(
            probes
                .snapshot(false)
                .neo
                .request(RequestKind::Consume)
                .max_active,
            1
        );
    }
}
