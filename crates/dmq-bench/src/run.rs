//! One run, from setup to report.
//!
//! 1. Setup: workloads that subscribe remove their channels first (fresh
//!    subscriptions); consume workloads prefill `--count` records.
//! 2. Idle connections (`--idle-connections`) are opened and held.
//! 3. Workers start, one thread per connection. With a duration the run warms
//!    up, then a window opens (counters snapshotted, latencies recorded from
//!    then on) and closes after `--duration`; with `--count` the window opens at
//!    once and closes when the count is reached.
//! 4. Produce's window closes only when every stream is confirmed by the node
//!    (see `stream.rs`), so its rate counts stored records.
//! 5. Teardown removes what the subscribing workloads created.
//!
//! The main thread samples the counters every 20 ms: a timeline point per second,
//! a progress line on stderr at most four times a second (on a terminal only).

use std::io::{IsTerminal, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{Scope, ScopedJoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;

use crate::cli::{Plan, StopRule, Target, Workload};
use crate::codec::legacy::{LegacyDecoder, LegacyEncoder};
use crate::codec::neo::{handshake, NeoCredentials, NeoDecoder, NeoEncoder};
use crate::codec::redis::{RedisDecoder, RedisEncoder};
use crate::codec::{channel_names, connect, Decoder, Encoder, InBuf, Mix, Route};
use crate::driver::{closed_loop, open_loop, Conn, LoopOpts, Shared, Tally};
use crate::latency::{merge, new_histogram, spectrum, LatencySummary};
use crate::procfs;
use crate::report::{group, Report, ServerStats, TimelinePoint};
use crate::size::ValuePool;
use crate::stream::{
    legacy_consume, neo_consume, prefill_legacy, prefill_redis, produce, remove_legacy,
    remove_redis, split_evenly, ConsumeSpec, ProduceSpec,
};
use crate::Error;

/// How often the main thread looks at the counters.
const TICK: Duration = Duration::from_millis(20);
/// How often the progress line is redrawn.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// Fanout: how long consumers may take to catch up after the producers stop.
const FANOUT_DRAIN: Duration = Duration::from_secs(2);

/// What a worker thread hands back.
struct Outcome {
    histogram: Histogram<u64>,
    error: Option<Error>,
}

impl Outcome {
    /// A worker's end: counted in `shared` (for the run's end time), then its
    /// histogram and error handed back.
    fn finished(shared: &Shared, histogram: Histogram<u64>, result: Result<(), Error>) -> Outcome {
        shared.worker_finished();
        Outcome {
            histogram,
            error: result.err(),
        }
    }
}

/// The request mix of a request/reply workload.
fn mix_of(workload: Workload) -> Mix {
    match workload {
        Workload::Push | Workload::NeoPush | Workload::Produce | Workload::Fanout => Mix::Push,
        Workload::Pop | Workload::NeoPop | Workload::Consume | Workload::NeoConsume => Mix::Pop,
        Workload::PushPop => Mix::PushPop,
        Workload::Ping => Mix::Ping,
    }
}

/// How the workload's workers are organised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Request/reply loops.
    RequestReply,
    /// Legacy Produce streams.
    Produce,
    /// Legacy Consume streams after a prefill.
    LegacyConsume,
    /// Neo Consume streams after a prefill.
    NeoConsume,
    /// Neo consumers and legacy Push producers.
    Fanout,
}

fn shape(plan: &Plan) -> Shape {
    match (plan.workload, plan.target) {
        (Workload::Produce, Target::Dmq | Target::Echo) => Shape::Produce,
        (Workload::Consume, Target::Dmq) => Shape::LegacyConsume,
        (Workload::NeoConsume, _) => Shape::NeoConsume,
        (Workload::Fanout, _) => Shape::Fanout,
        _ => Shape::RequestReply,
    }
}

/// The credentials of a neo workload (the plan has them: `cli.rs` checks).
fn neo_credentials(plan: &Plan) -> Result<&NeoCredentials, Error> {
    plan.credentials
        .as_ref()
        .ok_or_else(|| Error::Usage("neo needs credentials".into()))
}

/// Connects request/reply connection `i` with the route and mix given.
fn open_request_reply(
    plan: &Plan,
    i: usize,
    route: Route,
    mix: Mix,
    stamp: Option<Instant>,
) -> Result<Conn, Error> {
    let pool = Arc::new(ValuePool::new(plan.size, i as u64 + 1));
    let neo = matches!(plan.workload, Workload::NeoPush | Workload::NeoPop);
    let nodes = if neo { &plan.neo_addrs } else { &plan.addrs };
    let peer = nodes[i % nodes.len()].clone();
    let mut stream = connect(&peer, plan.connect_timeout)?;
    let mut input = InBuf::new();
    let (encoder, decoder): (Box<dyn Encoder>, Box<dyn Decoder>) = match plan.target {
        Target::Dmq if neo => {
            let credentials = neo_credentials(plan)?;
            handshake(
                &mut stream,
                &mut input,
                credentials,
                &peer,
                plan.reply_timeout,
            )?;
            (
                Box::new(NeoEncoder { mix, route, pool }),
                Box::new(NeoDecoder {
                    mix,
                    peer: peer.clone(),
                }),
            )
        }
        Target::Dmq | Target::Echo => (
            Box::new(LegacyEncoder {
                mix,
                route,
                pool,
                stamp_epoch: stamp,
            }),
            Box::new(LegacyDecoder::new(mix, peer.clone())),
        ),
        Target::Redis => (
            Box::new(RedisEncoder {
                mix,
                route,
                pool,
                blocking_pop: plan.redis_blocking_pop,
            }),
            Box::new(RedisDecoder::new(mix, peer.clone())),
        ),
    };
    Ok(Conn {
        stream,
        input,
        encoder,
        decoder,
        peer,
    })
}

/// A request/reply worker: connect, then a closed or open loop.
fn request_reply_worker(
    plan: &Plan,
    i: usize,
    route: Route,
    stamp: Option<Instant>,
    shared: &Shared,
) -> Outcome {
    let mut histogram = new_histogram();
    let mix = mix_of(plan.workload);
    let drained = matches!(plan.stop, StopRule::Count(_)) && mix == Mix::Pop;
    let opts = LoopOpts {
        in_flight: plan.in_flight,
        reply_timeout: plan.reply_timeout,
        stop_when_drained: drained,
    };
    let result = open_request_reply(plan, i, route, mix, stamp).and_then(|mut conn| {
        shared.wait_for_start();
        match plan.rate {
            None => closed_loop(&mut conn, shared, &opts, &mut histogram),
            Some(rate) => {
                let per_conn = rate / plan.connections as f64;
                // Stagger the connections' schedules over one interval.
                let phase = Duration::from_secs_f64(i as f64 / plan.connections as f64 / per_conn);
                let (h, result) =
                    open_loop(&mut conn, shared, &opts, per_conn, Instant::now() + phase);
                histogram = h;
                result
            }
        }
    });
    Outcome::finished(shared, histogram, result)
}

fn sum_rss(pids: &[u32]) -> Result<(u64, u64), Error> {
    let mut total = (0, 0);
    for &pid in pids {
        let (rss, peak) =
            procfs::rss_bytes(pid).map_err(|e| Error::io(format!("server pid {pid}"), e))?;
        total.0 += rss;
        total.1 += peak;
    }
    Ok(total)
}

fn sum_cpu(pids: &[u32]) -> Result<u64, Error> {
    pids.iter().try_fold(0, |sum, &pid| {
        procfs::cpu_ticks(pid)
            .map(|t| sum + t)
            .map_err(|e| Error::io(format!("server pid {pid}"), e))
    })
}

/// The progress line on stderr, if it is a terminal.
struct Progress {
    on: bool,
    last_draw: Option<Instant>,
    last_records: u64,
}

impl Progress {
    fn new(plan: &Plan) -> Progress {
        Progress {
            on: plan.progress && std::io::stderr().is_terminal(),
            last_draw: None,
            last_records: 0,
        }
    }

    fn draw(&mut self, phase: &str, elapsed: Duration, tally: &Tally) {
        if !self.on {
            return;
        }
        let now = Instant::now();
        let since = match self.last_draw {
            Some(t) if now - t < PROGRESS_EVERY => return,
            Some(t) => now - t,
            None => elapsed,
        };
        let rate =
            tally.records.saturating_sub(self.last_records) as f64 / since.as_secs_f64().max(1e-9);
        self.last_draw = Some(now);
        self.last_records = tally.records;
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[K{phase} {:>6.1} s  {:>12} records  {:>11} records/s  {} empty  {} refused",
            elapsed.as_secs_f64(),
            group(tally.records as f64),
            group(rate),
            group(tally.empty as f64),
            group(tally.errors as f64)
        );
        let _ = err.flush();
    }

    fn clear(&self) {
        if self.on {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
        }
    }

    fn note(&self, text: &str) {
        if self.on {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K{text}");
            let _ = err.flush();
        }
    }
}

/// Samples the counters into 1-second timeline points.
struct Timeline {
    t0: Instant,
    last_at: Instant,
    last: Tally,
    points: Vec<TimelinePoint>,
}

impl Timeline {
    fn new(t0: Instant, start: Tally) -> Timeline {
        Timeline {
            t0,
            last_at: t0,
            last: start,
            points: Vec::new(),
        }
    }

    fn sample(&mut self, now: Instant, tally: Tally, force: bool) {
        let span = now.saturating_duration_since(self.last_at);
        if span >= Duration::from_secs(1) || (force && span >= Duration::from_millis(200)) {
            let d = tally.since(&self.last);
            let s = span.as_secs_f64();
            self.points.push(TimelinePoint {
                t_s: (now - self.t0).as_secs_f64(),
                records_per_s: d.records as f64 / s,
                mb_per_s: d.bytes as f64 / s / 1e6,
            });
            self.last_at = now;
            self.last = tally;
        }
    }
}

/// What the measurement loop found.
struct Window {
    elapsed: Duration,
    totals: Tally,
    timeline: Vec<TimelinePoint>,
    cpu_ticks: Option<u64>,
    rss_end: Option<(u64, u64)>,
    extra: Vec<(String, f64)>,
}

fn all_done<T>(handles: &[ScopedJoinHandle<'_, T>]) -> bool {
    handles.iter().all(ScopedJoinHandle::is_finished)
}

/// The workers of a run as the main thread watches them: their shared state
/// and threads, fanout's producers with theirs, and when they were started.
struct Watch<'a, 's> {
    plan: &'a Plan,
    shared: &'a Shared,
    handles: &'a [ScopedJoinHandle<'s, Outcome>],
    producers: Option<(&'a Shared, &'a [ScopedJoinHandle<'s, Outcome>])>,
    begin: Instant,
}

impl<'a, 's> Watch<'a, 's> {
    /// Starts the workers once every one has connected (or failed), so that
    /// connecting is not timed.
    fn start(
        plan: &'a Plan,
        shared: &'a Shared,
        handles: &'a [ScopedJoinHandle<'s, Outcome>],
        producers: Option<(&'a Shared, &'a [ScopedJoinHandle<'s, Outcome>])>,
    ) -> Watch<'a, 's> {
        let deadline = Instant::now() + plan.connect_timeout + plan.reply_timeout;
        let ready = |s: &Shared, h: &[ScopedJoinHandle<'_, Outcome>]| {
            s.ready_count() + h.iter().filter(|h| h.is_finished()).count() >= h.len()
        };
        while !(ready(shared, handles) && producers.is_none_or(|(p, h)| ready(p, h)))
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(2));
        }
        shared.start();
        if let Some((p, _)) = producers {
            p.start();
        }
        Watch {
            plan,
            shared,
            handles,
            producers,
            begin: Instant::now(),
        }
    }

    /// A time no run reaches: for waits that only `done` ends.
    fn far(&self) -> Instant {
        self.begin + Duration::from_secs(365 * 24 * 3600)
    }

    fn all_done(&self) -> bool {
        all_done(self.handles)
    }

    fn producers_done(&self) -> bool {
        self.producers.is_some_and(|(_, h)| all_done(h))
    }

    fn producer_snapshot(&self) -> Tally {
        self.producers
            .map(|(p, _)| p.snapshot())
            .unwrap_or_default()
    }

    /// Waits until `until`, drawing progress and sampling `timeline`; returns
    /// early when `done()` says so.
    fn wait(
        &self,
        progress: &mut Progress,
        until: Instant,
        phase: &str,
        mut timeline: Option<&mut Timeline>,
        mut done: impl FnMut() -> bool,
    ) {
        loop {
            let now = Instant::now();
            let tally = self.shared.snapshot();
            if let Some(t) = timeline.as_deref_mut() {
                t.sample(now, tally, false);
            }
            progress.draw(phase, now - self.begin, &tally);
            if now >= until || done() {
                return;
            }
            std::thread::sleep(TICK.min(until - now));
        }
    }

    /// Produce: waits until every stream is confirmed by the node.
    fn sync_produce(&self, progress: &mut Progress) {
        self.wait(progress, self.far(), "syncing", None, || self.all_done());
    }

    /// Closes a window of `duration_s` opened at `t0`; returns its end and the
    /// consumers' and producers' tallies then (`p0`: the producers' at `t0`).
    fn close_after(
        &self,
        progress: &mut Progress,
        timeline: &mut Timeline,
        t0: Instant,
        duration_s: f64,
        p0: Tally,
    ) -> (Instant, Tally, Tally) {
        let until = t0 + Duration::from_secs_f64(duration_s);
        self.wait(progress, until, "measuring", Some(timeline), || {
            self.all_done()
        });
        let shared = self.shared;
        if shape(self.plan) == Shape::Produce {
            // The window closes when every stream is confirmed.
            shared.set_measuring(false);
            shared.stop();
            self.sync_produce(progress);
            let t1 = shared
                .last_finished_at()
                .unwrap_or_else(Instant::now)
                .max(t0);
            return (t1, shared.snapshot(), p0);
        }
        let t1 = Instant::now();
        let s1 = shared.snapshot();
        let p1 = self.producer_snapshot();
        shared.set_measuring(false);
        self.drain_fanout(progress);
        shared.stop();
        (t1, s1, p1)
    }

    /// Fanout: stops the producers and lets the subscribers take what was
    /// pushed (for a clean end).
    fn drain_fanout(&self, progress: &mut Progress) {
        let Some((p, _)) = self.producers else {
            return;
        };
        p.stop();
        let want = p.snapshot().records * self.plan.subscribers as u64;
        self.wait(
            progress,
            Instant::now() + FANOUT_DRAIN,
            "draining",
            None,
            || self.shared.snapshot().records >= want || self.all_done(),
        );
    }

    /// Closes a window opened at `t0` when `count` records are done (every
    /// subscriber's, for fanout), or every worker ended, or fanout's
    /// producers ended and the consumers got nothing more for a reply
    /// timeout; returns its end and the consumers' and producers' tallies.
    fn close_at_count(
        &self,
        progress: &mut Progress,
        timeline: &mut Timeline,
        t0: Instant,
        count: u64,
    ) -> (Instant, Tally, Tally) {
        let shared = self.shared;
        let target = match self.producers {
            Some(_) => count * self.plan.subscribers as u64,
            None => count,
        };
        let mut producers_done_at: Option<Instant> = None;
        self.wait(progress, self.far(), "measuring", Some(timeline), || {
            if self.producers_done() && producers_done_at.is_none() {
                producers_done_at = Some(Instant::now());
            }
            let stuck = producers_done_at.is_some_and(|t| t.elapsed() > self.plan.reply_timeout);
            shared.snapshot().records >= target || self.all_done() || stuck
        });
        shared.stop();
        shared.set_measuring(false);
        let end = shared
            .reached_at()
            .or_else(|| {
                if shape(self.plan) == Shape::Produce {
                    self.sync_produce(progress);
                }
                shared.last_finished_at()
            })
            .unwrap_or_else(Instant::now)
            .max(t0);
        let mut s1 = shared.snapshot();
        if shared.reached_at().is_some() {
            // Overshoot past the count is not part of the measurement.
            s1.records = s1.records.min(target);
        }
        (end, s1, self.producer_snapshot())
    }
}

/// The measurement: warm-up, window, end rule. `producers` is fanout's second
/// set of workers.
fn measure(
    plan: &Plan,
    shared: &Shared,
    handles: &[ScopedJoinHandle<'_, Outcome>],
    producers: Option<(&Shared, &[ScopedJoinHandle<'_, Outcome>])>,
    progress: &mut Progress,
) -> Window {
    let watch = Watch::start(plan, shared, handles, producers);
    if let StopRule::Duration { warmup_s, .. } = plan.stop {
        let until = watch.begin + Duration::from_secs_f64(warmup_s);
        watch.wait(progress, until, "warm-up", None, || watch.all_done());
    }
    let s0 = shared.snapshot();
    let p0 = watch.producer_snapshot();
    let cpu0 = sum_cpu(&plan.server_pids).ok();
    let t0 = Instant::now();
    shared.set_measuring(true);
    let mut timeline = Timeline::new(t0, s0);
    let (t1, s1, p1) = match plan.stop {
        StopRule::Duration { duration_s, .. } => {
            watch.close_after(progress, &mut timeline, t0, duration_s, p0)
        }
        StopRule::Count(count) => watch.close_at_count(progress, &mut timeline, t0, count),
    };
    if let Some((p, _)) = producers {
        p.stop();
    }
    timeline.sample(t1.max(timeline.last_at), s1, true);
    let cpu1 = sum_cpu(&plan.server_pids).ok();
    let rss_end = sum_rss(&plan.server_pids).ok();
    progress.clear();
    let mut extra = Vec::new();
    if producers.is_some() {
        extra.push(("pushed_records".to_owned(), p1.since(&p0).records as f64));
    }
    Window {
        elapsed: t1 - t0,
        totals: s1.since(&s0),
        timeline: timeline.points,
        cpu_ticks: cpu0.zip(cpu1).map(|(a, b)| b.saturating_sub(a)),
        rss_end,
        extra,
    }
}

/// Removes the run's channels on every node (legacy RemoveChannel) or Redis
/// (`DEL`).
fn remove_channels(plan: &Plan, channels: &[String]) -> Result<(), Error> {
    for addr in &plan.addrs {
        match plan.target {
            Target::Redis => remove_redis(addr, channels, plan.reply_timeout)?,
            Target::Dmq => remove_legacy(addr, channels, plan.reply_timeout)?,
            Target::Echo => {}
        }
    }
    Ok(())
}

/// Prefills `count` records over every channel of every node.
fn prefill(plan: &Plan, channels: &[String], count: u64) -> Result<(), Error> {
    let counts = split_evenly(count, plan.addrs.len() * channels.len());
    let pool = ValuePool::new(plan.size, 0xF111);
    for (n, addr) in plan.addrs.iter().enumerate() {
        let mine = &counts[n * channels.len()..(n + 1) * channels.len()];
        match plan.target {
            Target::Redis => prefill_redis(addr, channels, mine, &pool, plan.reply_timeout)?,
            _ => prefill_legacy(addr, channels, mine, &pool, plan.reply_timeout)?,
        }
    }
    Ok(())
}

/// Connection `i` of a consume workload: node `i % nodes`, channel
/// `(i / nodes) % channels`.
fn consumer_slot(plan: &Plan, i: usize) -> (usize, usize) {
    let nodes = plan.addrs.len();
    (i % nodes, (i / nodes) % plan.channels)
}

/// Step 1: workloads that subscribe remove their channels first (fresh
/// subscriptions); consume workloads prefill `count` records. Returns the
/// prefill's time for the report.
fn setup(
    plan: &Plan,
    channels: &[String],
    count: Option<u64>,
    progress: &Progress,
) -> Result<Vec<(String, f64)>, Error> {
    let mut extra = Vec::new();
    if plan.workload.subscribes() {
        remove_channels(plan, channels)?;
    }
    if plan.workload.prefills() {
        let n = count.unwrap_or(0);
        progress.note(&format!("prefilling {} records ...", group(n as f64)));
        let t = Instant::now();
        prefill(plan, channels, n)?;
        extra.push(("prefill_s".to_owned(), t.elapsed().as_secs_f64()));
    }
    Ok(extra)
}

/// The server's memory before the run and once the idle connections were open.
struct Baseline {
    rss_start_bytes: u64,
    rss_idle_bytes: Option<u64>,
}

/// Step 2: the server's baseline memory, and the idle connections, which the
/// caller holds until the run ends.
fn open_idle_connections(plan: &Plan) -> Result<(Vec<TcpStream>, Baseline), Error> {
    let (rss_start_bytes, _) = sum_rss(&plan.server_pids)?;
    let mut idle = Vec::with_capacity(plan.idle_connections);
    for i in 0..plan.idle_connections {
        idle.push(connect(
            &plan.addrs[i % plan.addrs.len()],
            plan.connect_timeout,
        )?);
    }
    let rss_idle_bytes = if plan.idle_connections > 0 && !plan.server_pids.is_empty() {
        // Let the server accept them all.
        std::thread::sleep(Duration::from_millis(500));
        Some(sum_rss(&plan.server_pids)?.0)
    } else {
        None
    };
    let baseline = Baseline {
        rss_start_bytes,
        rss_idle_bytes,
    };
    Ok((idle, baseline))
}

/// Requests (or Produce records) the workers may send in all: `--count` for
/// the workloads that send it; pops run until the target or a drained queue.
fn budget(plan: &Plan, shape: Shape, count: Option<u64>) -> Option<u64> {
    match (shape, count) {
        (Shape::RequestReply, Some(n)) if mix_of(plan.workload) != Mix::Pop => Some(n),
        (Shape::Produce, Some(n)) => Some(n),
        _ => None,
    }
}

/// The records after which the run stops.
fn target_records(plan: &Plan, shape: Shape, count: Option<u64>) -> Option<u64> {
    match shape {
        // Produce's end is its confirmation, not a count of writes.
        Shape::Produce => None,
        // Every pushed record reaches every subscriber of its node.
        Shape::Fanout => count.map(|n| n * plan.subscribers as u64),
        _ => count,
    }
}

type Handles<'scope> = Vec<ScopedJoinHandle<'scope, Outcome>>;

/// Step 3: starts the workers of `shape`, measures, stops them and collects
/// what each hands back.
fn run_workers(
    plan: &Plan,
    shape: Shape,
    channels: &Arc<Vec<String>>,
    shared: &Shared,
    producer_shared: &Shared,
    progress: &mut Progress,
) -> (Window, Vec<Outcome>) {
    let started = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let (handles, producer_handles) = match shape {
            Shape::RequestReply => (
                spawn_request_reply(scope, plan, channels, shared),
                Vec::new(),
            ),
            Shape::Produce => (spawn_produce(scope, plan, channels, shared), Vec::new()),
            Shape::LegacyConsume | Shape::NeoConsume => {
                let neo = shape == Shape::NeoConsume;
                let handles = spawn_consume(scope, plan, channels, shared, &started, neo);
                (handles, Vec::new())
            }
            Shape::Fanout => spawn_fanout(scope, plan, channels, shared, producer_shared, &started),
        };
        let producers =
            (shape == Shape::Fanout).then_some((producer_shared, producer_handles.as_slice()));
        let window = measure(plan, shared, &handles, producers, progress);
        producer_shared.stop();
        shared.stop();
        let outcomes = handles
            .into_iter()
            .chain(producer_handles)
            .map(join_worker)
            .collect();
        (window, outcomes)
    })
}

fn join_worker(handle: ScopedJoinHandle<'_, Outcome>) -> Outcome {
    handle.join().unwrap_or_else(|_| Outcome {
        histogram: new_histogram(),
        error: Some(Error::Protocol {
            peer: "worker".into(),
            detail: "thread panicked".into(),
        }),
    })
}

/// One request/reply worker per connection, each over all channels (Redis
/// consume: one key per connection, as legacy Consume).
fn spawn_request_reply<'scope, 'env>(
    scope: &'scope Scope<'scope, 'env>,
    plan: &'env Plan,
    channels: &Arc<Vec<String>>,
    shared: &'env Shared,
) -> Handles<'scope> {
    (0..plan.connections)
        .map(|i| {
            let route = if plan.workload == Workload::Consume {
                let (_, c) = consumer_slot(plan, i);
                Route {
                    channels: Arc::new(vec![channels[c].clone()]),
                    conn: 0,
                    conns: 1,
                }
            } else {
                Route {
                    channels: channels.clone(),
                    conn: i,
                    conns: plan.connections,
                }
            };
            scope.spawn(move || request_reply_worker(plan, i, route, None, shared))
        })
        .collect()
}

/// One Produce stream per connection: one channel each, or with more
/// channels than connections every `connections`-th channel in turn.
fn spawn_produce<'scope, 'env>(
    scope: &'scope Scope<'scope, 'env>,
    plan: &'env Plan,
    channels: &[String],
    shared: &'env Shared,
) -> Handles<'scope> {
    (0..plan.connections)
        .map(|i| {
            let mine: Vec<String> = if plan.channels <= plan.connections {
                vec![channels[i % plan.channels].clone()]
            } else {
                (i..plan.channels)
                    .step_by(plan.connections)
                    .map(|c| channels[c].clone())
                    .collect()
            };
            let spec = ProduceSpec {
                addr: plan.addrs[i % plan.addrs.len()].clone(),
                channels: mine,
                run_records: plan.produce_run,
                connect_timeout: plan.connect_timeout,
                reply_timeout: plan.reply_timeout,
            };
            scope.spawn(move || {
                let pool = ValuePool::new(plan.size, i as u64 + 1);
                let result = produce(&spec, &pool, shared);
                Outcome::finished(shared, new_histogram(), result)
            })
        })
        .collect()
}

/// One consumer per connection, on its [`consumer_slot`], as the default
/// subscriber: legacy Consume, or neo Consume with `neo`.
fn spawn_consume<'scope, 'env>(
    scope: &'scope Scope<'scope, 'env>,
    plan: &'env Plan,
    channels: &[String],
    shared: &'env Shared,
    started: &'env AtomicUsize,
    neo: bool,
) -> Handles<'scope> {
    (0..plan.connections)
        .map(|i| {
            let (node, c) = consumer_slot(plan, i);
            let spec = ConsumeSpec {
                addr: if neo {
                    plan.neo_addrs[node].clone()
                } else {
                    plan.addrs[node].clone()
                },
                channel: channels[c].clone(),
                subscriber: String::new(),
                connect_timeout: plan.connect_timeout,
                idle_timeout: Some(plan.reply_timeout),
            };
            scope.spawn(move || {
                let mut histogram = new_histogram();
                let result = if neo {
                    neo_credentials(plan).and_then(|credentials| {
                        neo_consume(&spec, credentials, shared, started, false, &mut histogram)
                    })
                } else {
                    legacy_consume(&spec, shared)
                };
                Outcome::finished(shared, histogram, result)
            })
        })
        .collect()
}

/// Fanout: `--subscribers` neo consumers per channel and node, then, once
/// every subscription exists (a record pushed before reaches fewer
/// subscribers), one legacy Push producer per connection with stamped
/// records. Returns the consumers and the producers.
fn spawn_fanout<'scope, 'env>(
    scope: &'scope Scope<'scope, 'env>,
    plan: &'env Plan,
    channels: &Arc<Vec<String>>,
    shared: &'env Shared,
    producer_shared: &'env Shared,
    started: &'env AtomicUsize,
) -> (Handles<'scope>, Handles<'scope>) {
    let mut consumers = Vec::new();
    for addr in &plan.neo_addrs {
        for channel in channels.iter() {
            for s in 0..plan.subscribers {
                let spec = ConsumeSpec {
                    addr: addr.clone(),
                    channel: channel.clone(),
                    subscriber: format!("sub{s}"),
                    connect_timeout: plan.connect_timeout,
                    idle_timeout: None,
                };
                consumers.push(scope.spawn(move || {
                    let mut histogram = new_histogram();
                    let result = neo_credentials(plan).and_then(|credentials| {
                        neo_consume(&spec, credentials, shared, started, true, &mut histogram)
                    });
                    Outcome::finished(shared, histogram, result)
                }));
            }
        }
    }
    shared.start();
    let deadline = Instant::now() + plan.reply_timeout;
    while started.load(Ordering::Relaxed) < consumers.len()
        && !all_done(&consumers)
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    let producers = (0..plan.connections)
        .map(|i| {
            let route = Route {
                channels: channels.clone(),
                conn: i,
                conns: plan.connections,
            };
            let epoch = shared.epoch;
            scope.spawn(move || request_reply_worker(plan, i, route, Some(epoch), producer_shared))
        })
        .collect();
    (consumers, producers)
}

/// Merges the workers' histograms and keeps the text of their failures (at
/// most ten, each once). When every worker failed, the first one's error is
/// the run's.
fn merge_outcomes(outcomes: Vec<Outcome>) -> Result<(Histogram<u64>, Vec<String>), Error> {
    let mut histogram = new_histogram();
    let mut failures = Vec::new();
    for outcome in &outcomes {
        merge(&mut histogram, &outcome.histogram);
        if let Some(e) = &outcome.error {
            let text = e.to_string();
            if failures.len() < 10 && !failures.contains(&text) {
                failures.push(text);
            }
        }
    }
    if outcomes.iter().all(|o| o.error.is_some()) {
        if let Some(Some(e)) = outcomes.into_iter().map(|o| o.error).next() {
            return Err(e);
        }
    }
    Ok((histogram, failures))
}

/// Runs `plan` and returns its report; printing and writing it is `main.rs`'s
/// business. Fails only when no connection at all could run.
pub fn run(plan: &Plan) -> Result<Report, Error> {
    procfs::raise_fd_limit();
    let started_unix_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut progress = Progress::new(plan);
    let channels = Arc::new(channel_names(&plan.channel_prefix, plan.channels));
    let shape = shape(plan);
    let count = plan.stop.count();

    // 1. Setup.
    let extra = setup(plan, &channels, count, &progress)?;
    // 2. Server baseline and idle connections.
    let (idle, baseline) = open_idle_connections(plan)?;
    // 3. Workers and measurement (4. Produce's end is inside).
    let shared = Shared::new(
        budget(plan, shape, count),
        target_records(plan, shape, count),
    );
    let producer_shared = Shared::new(count, None);
    let (window, outcomes) = run_workers(
        plan,
        shape,
        &channels,
        &shared,
        &producer_shared,
        &mut progress,
    );
    drop(idle);

    // 5. Teardown.
    if plan.workload.subscribes() {
        if let Err(e) = remove_channels(plan, &channels) {
            eprintln!("dmq-bench: removing the channels after the run failed: {e}");
        }
    }

    let (histogram, failures) = merge_outcomes(outcomes)?;
    let server = server_stats(plan, &window, &baseline);
    let first_error = shared
        .first_error()
        .or_else(|| producer_shared.first_error());
    Ok(report(
        plan,
        Findings {
            started_unix_s,
            window,
            histogram,
            failures,
            first_error,
            server,
            extra,
        },
    ))
}

/// What a run found, for its report.
struct Findings {
    started_unix_s: u64,
    window: Window,
    histogram: Histogram<u64>,
    /// The failed connections' texts.
    failures: Vec<String>,
    /// The first refusal's text.
    first_error: Option<String>,
    server: Option<ServerStats>,
    /// Workload-specific figures of the setup (the prefill's time); the
    /// window's own are added to them.
    extra: Vec<(String, f64)>,
}

/// The server's CPU time per record and memory, with `--server-pid`.
fn server_stats(plan: &Plan, window: &Window, baseline: &Baseline) -> Option<ServerStats> {
    (!plan.server_pids.is_empty()).then(|| {
        let cpu_s = window
            .cpu_ticks
            .map(|t| t as f64 / procfs::ticks_per_s() as f64)
            .unwrap_or(0.0);
        let (rss_end, peak) = window.rss_end.unwrap_or((0, 0));
        let records = window.totals.records;
        ServerStats {
            pids: plan.server_pids.clone(),
            cpu_s,
            cpu_us_per_record: (records > 0 && window.cpu_ticks.is_some())
                .then(|| cpu_s * 1e6 / records as f64),
            rss_start_bytes: baseline.rss_start_bytes,
            rss_idle_bytes: baseline.rss_idle_bytes,
            rss_end_bytes: rss_end,
            rss_peak_bytes: peak,
        }
    })
}

/// The report of what `plan` asked and the run found.
fn report(plan: &Plan, found: Findings) -> Report {
    let window = found.window;
    let elapsed_s = window.elapsed.as_secs_f64();
    let per_s = |n: u64| {
        if elapsed_s > 0.0 {
            n as f64 / elapsed_s
        } else {
            0.0
        }
    };
    let totals = window.totals;
    let (warmup_s, duration_s) = match plan.stop {
        StopRule::Duration {
            warmup_s,
            duration_s,
        } => (warmup_s, Some(duration_s)),
        StopRule::Count(_) => (0.0, None),
    };
    Report {
        tool: format!("dmq-bench {}", env!("CARGO_PKG_VERSION")),
        label: plan.label.clone(),
        workload: plan.workload.name().to_owned(),
        target: plan.target.name().to_owned(),
        addrs: plan.addrs.clone(),
        neo_addrs: plan.neo_addrs.clone(),
        connections: plan.connections,
        in_flight: plan.in_flight,
        size: plan.size.to_string(),
        channels: plan.channels,
        subscribers: (plan.workload == Workload::Fanout).then_some(plan.subscribers),
        loop_kind: if plan.rate.is_some() {
            "open"
        } else {
            "closed"
        }
        .to_owned(),
        rate_per_s: plan.rate,
        warmup_s,
        duration_s,
        count: plan.stop.count(),
        idle_connections: plan.idle_connections,
        started_unix_s: found.started_unix_s,
        elapsed_s,
        requests: totals.requests,
        records: totals.records,
        bytes: totals.bytes,
        empty_count: totals.empty,
        error_count: totals.errors,
        first_error: found.first_error,
        failures: found.failures,
        records_per_s: per_s(totals.records),
        mb_per_s: per_s(totals.bytes) / 1e6,
        requests_per_s: per_s(totals.requests),
        latency: LatencySummary::from_histogram(&found.histogram),
        latency_percentiles: spectrum(&found.histogram),
        timeline: window.timeline,
        server: found.server,
        extra: found.extra.into_iter().chain(window.extra).collect(),
    }
}
