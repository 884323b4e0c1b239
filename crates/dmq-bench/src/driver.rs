//! The request/reply loops and the state all workers of a run share.
//!
//! - [`closed_loop`]: write `in_flight` requests in one `write`, read their
//!   replies, repeat. Latency is from that write to the `read` that brought each
//!   reply.
//! - [`open_loop`]: requests at a fixed rate, each with an intended send time
//!   `start + seq / rate`; a writer thread sends what is due (at most `in_flight`
//!   outstanding) and a reader thread takes the replies. Latency is from the
//!   intended time, so a server (or generator) that falls behind shows up in the
//!   latency instead of slowing the schedule down: coordinated omission is not
//!   hidden.
//!
//! Workers add to [`Shared`]'s atomic counters once per burst or read, not per
//! request, and keep their own histogram, merged when they end.

use std::collections::VecDeque;
use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::codec::{is_timeout, Decoder, Encoder, InBuf, Reply, Step, READ_POLL};
use crate::latency::{new_histogram, record};
use crate::Error;

/// Most requests the open-loop writer sends in one `write`.
const MAX_OPEN_LOOP_BATCH: u64 = 1024;

/// What a run has done so far.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Replies (or streamed records) received.
    pub requests: u64,
    /// Records moved: pushes acknowledged, values popped, records streamed.
    pub records: u64,
    /// Record bytes moved (values only, no protocol overhead).
    pub bytes: u64,
    /// Pops that found nothing.
    pub empty: u64,
    /// Requests the server refused.
    pub errors: u64,
}

impl Tally {
    /// Counts one reply to a request that carried `request_bytes`.
    pub fn reply(&mut self, reply: &Reply, request_bytes: usize) {
        self.requests += 1;
        match reply {
            Reply::Stored => {
                self.records += 1;
                self.bytes += request_bytes as u64;
            }
            Reply::Record(bytes) => {
                self.records += 1;
                self.bytes += *bytes as u64;
            }
            Reply::Round => self.records += 1,
            Reply::Empty => self.empty += 1,
            Reply::Error(_) => self.errors += 1,
        }
    }

    /// Counts `records` streamed records of `bytes` bytes in all.
    pub fn streamed(&mut self, records: u64, bytes: u64) {
        self.requests += records;
        self.records += records;
        self.bytes += bytes;
    }

    /// `self - earlier`, field by field.
    pub fn since(&self, earlier: &Tally) -> Tally {
        Tally {
            requests: self.requests.saturating_sub(earlier.requests),
            records: self.records.saturating_sub(earlier.records),
            bytes: self.bytes.saturating_sub(earlier.bytes),
            empty: self.empty.saturating_sub(earlier.empty),
            errors: self.errors.saturating_sub(earlier.errors),
        }
    }
}

/// The counters, flags and limits every worker of a run shares.
#[derive(Debug)]
pub struct Shared {
    /// The run's time origin (for stamps and the end time).
    pub epoch: Instant,
    requests: AtomicU64,
    records: AtomicU64,
    bytes: AtomicU64,
    empty: AtomicU64,
    errors: AtomicU64,
    measuring: AtomicBool,
    stop: AtomicBool,
    /// Workers connected and waiting for the start.
    ready: AtomicUsize,
    /// The start: workers send nothing before it is open.
    gate: AtomicBool,
    /// Requests (or records, for Produce) not yet claimed; `None`: no limit.
    budget: Option<AtomicU64>,
    /// Stop when this many records are done.
    target_records: Option<u64>,
    /// When `target_records` was reached, ns since `epoch` (0: not yet).
    reached_ns: AtomicU64,
    /// When the last worker ended, ns since `epoch`.
    finished_ns: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Shared {
    /// Shared state with an optional request budget and record target.
    pub fn new(budget: Option<u64>, target_records: Option<u64>) -> Shared {
        Shared {
            epoch: Instant::now(),
            requests: AtomicU64::new(0),
            records: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            empty: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            measuring: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            ready: AtomicUsize::new(0),
            gate: AtomicBool::new(false),
            budget: budget.map(AtomicU64::new),
            target_records,
            reached_ns: AtomicU64::new(0),
            finished_ns: AtomicU64::new(0),
            first_error: Mutex::new(None),
        }
    }

    /// Whether workers should end.
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Tells workers to end.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// A worker calls this once connected: it counts as ready and waits until the
    /// run starts (or stops), so that connecting is not part of the measurement.
    pub fn wait_for_start(&self) {
        self.ready.fetch_add(1, Ordering::Relaxed);
        while !self.gate.load(Ordering::Acquire) && !self.stopped() {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Workers waiting for the start.
    pub fn ready_count(&self) -> usize {
        self.ready.load(Ordering::Relaxed)
    }

    /// Starts the run.
    pub fn start(&self) {
        self.gate.store(true, Ordering::Release);
    }

    /// Whether latencies are recorded now (after the warm-up, before the end).
    pub fn measuring(&self) -> bool {
        self.measuring.load(Ordering::Relaxed)
    }

    /// Starts or ends the measurement window.
    pub fn set_measuring(&self, on: bool) {
        self.measuring.store(on, Ordering::Relaxed);
    }

    /// Claims up to `want` requests from the budget; 0 when it is spent.
    pub fn claim(&self, want: u64) -> u64 {
        let Some(budget) = &self.budget else {
            return want;
        };
        let mut got = 0;
        let _ = budget.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
            got = left.min(want);
            Some(left - got)
        });
        got
    }

    /// Adds a worker's progress; the worker that reaches the record target
    /// stamps the time and stops the run.
    pub fn add(&self, t: &Tally) {
        self.requests.fetch_add(t.requests, Ordering::Relaxed);
        let before = self.records.fetch_add(t.records, Ordering::Relaxed);
        // Every worker adds here after each burst: skip the usually-zero
        // counters rather than contend for their cache line for nothing.
        for (counter, n) in [
            (&self.bytes, t.bytes),
            (&self.empty, t.empty),
            (&self.errors, t.errors),
        ] {
            if n > 0 {
                counter.fetch_add(n, Ordering::Relaxed);
            }
        }
        if let Some(target) = self.target_records {
            if before < target && before + t.records >= target {
                let now = self.since_epoch_ns();
                let _ =
                    self.reached_ns
                        .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
                self.stop();
            }
        }
    }

    /// Everything added so far.
    pub fn snapshot(&self) -> Tally {
        Tally {
            requests: self.requests.load(Ordering::Relaxed),
            records: self.records.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            empty: self.empty.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
        }
    }

    /// Keeps the first refusal's text for the report.
    pub fn note_error(&self, text: &str) {
        let mut first = self
            .first_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if first.is_none() {
            *first = Some(text.to_owned());
        }
    }

    /// The first refusal's text.
    pub fn first_error(&self) -> Option<String> {
        self.first_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A worker calls this when it ends.
    pub fn worker_finished(&self) {
        self.finished_ns
            .fetch_max(self.since_epoch_ns(), Ordering::Relaxed);
    }

    /// When the record target was reached.
    pub fn reached_at(&self) -> Option<Instant> {
        match self.reached_ns.load(Ordering::Relaxed) {
            0 => None,
            ns => Some(self.epoch + Duration::from_nanos(ns)),
        }
    }

    /// When the last worker ended.
    pub fn last_finished_at(&self) -> Option<Instant> {
        match self.finished_ns.load(Ordering::Relaxed) {
            0 => None,
            ns => Some(self.epoch + Duration::from_nanos(ns)),
        }
    }

    fn since_epoch_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos())
            .unwrap_or(u64::MAX)
            .max(1)
    }
}

/// How a request/reply loop runs.
#[derive(Debug, Clone, Copy)]
pub struct LoopOpts {
    /// Requests outstanding per connection (a burst in closed loop, a cap in open
    /// loop).
    pub in_flight: usize,
    /// Longest wait for a reply before the connection is given up.
    pub reply_timeout: Duration,
    /// End the loop after a burst that moved no record (a pop on a drained queue).
    pub stop_when_drained: bool,
}

/// Removes the in-flight entry a reply answers: the oldest one for in-order
/// protocols, the one with that `seq` otherwise.
fn take<T>(pending: &mut VecDeque<(u64, T)>, seq: Option<u64>, peer: &str) -> Result<T, Error> {
    let index = match seq {
        None => (!pending.is_empty()).then_some(0),
        Some(seq) => pending.iter().position(|(s, _)| *s == seq),
    };
    index
        .and_then(|i| pending.remove(i))
        .map(|(_, value)| value)
        .ok_or_else(|| Error::protocol(peer, "a reply to no request in flight"))
}

/// The error of a connection the server closed.
pub(crate) fn closed(peer: &str) -> Error {
    Error::protocol(peer, "connection closed by the server")
}

fn no_reply(peer: &str, reply_timeout: Duration) -> Error {
    Error::Timeout(format!("{peer}: no reply for {reply_timeout:?}"))
}

/// Writes all of `bytes` to `peer`.
pub(crate) fn send(stream: &mut TcpStream, bytes: &[u8], peer: &str) -> Result<(), Error> {
    stream
        .write_all(bytes)
        .map_err(|e| Error::io(format!("write to {peer}"), e))
}

/// An open request/reply connection with its codec, as the loops below drive it.
pub struct Conn {
    pub stream: TcpStream,
    pub input: InBuf,
    pub encoder: Box<dyn Encoder>,
    pub decoder: Box<dyn Decoder>,
    pub peer: String,
}

/// Takes every whole reply off `input`: notes a refusal's text, removes the
/// request it answers from `pending` and hands both to `answered`. Returns when
/// the input holds no whole reply, with room made for the next one.
fn decode_replies<T>(
    input: &mut InBuf,
    decoder: &mut dyn Decoder,
    pending: &mut VecDeque<(u64, T)>,
    shared: &Shared,
    peer: &str,
    mut answered: impl FnMut(&Reply, T),
) -> Result<(), Error> {
    loop {
        match decoder.decode(input.data())? {
            Step::Incomplete(needed) => {
                if let Some(needed) = needed {
                    input.reserve(needed)?;
                }
                return Ok(());
            }
            Step::Skip(used) => input.consume(used),
            Step::Reply { used, seq, reply } => {
                input.consume(used);
                if let Reply::Error(text) = &reply {
                    shared.note_error(text);
                }
                answered(&reply, take(pending, seq, peer)?);
            }
        }
    }
}

/// A closed loop on one connection until the run stops, the budget is spent or
/// (with `stop_when_drained`) a burst comes back empty.
pub fn closed_loop(
    conn: &mut Conn,
    shared: &Shared,
    opts: &LoopOpts,
    histogram: &mut Histogram<u64>,
) -> Result<(), Error> {
    let mut out = Vec::with_capacity(opts.in_flight * 128);
    let mut pending: VecDeque<(u64, usize)> = VecDeque::with_capacity(opts.in_flight);
    let mut seq = 0u64;
    while !shared.stopped() {
        let n = shared.claim(opts.in_flight as u64);
        if n == 0 {
            break;
        }
        out.clear();
        for _ in 0..n {
            let bytes = conn.encoder.encode(seq, &mut out);
            pending.push_back((seq, bytes));
            seq += 1;
        }
        let sent = Instant::now();
        send(&mut conn.stream, &out, &conn.peer)?;
        let (tally, answered) = read_burst(conn, shared, opts, &mut pending, sent, histogram)?;
        shared.add(&tally);
        if !answered || (opts.stop_when_drained && tally.records == 0) {
            break;
        }
    }
    Ok(())
}

/// Reads the replies to a closed-loop burst written at `sent`, each with its
/// latency from `sent` to the `read` that brought it, and returns their tally
/// and whether every reply came (`false`: the run stopped first).
fn read_burst(
    conn: &mut Conn,
    shared: &Shared,
    opts: &LoopOpts,
    pending: &mut VecDeque<(u64, usize)>,
    sent: Instant,
    histogram: &mut Histogram<u64>,
) -> Result<(Tally, bool), Error> {
    let peer = conn.peer.as_str();
    let mut tally = Tally::default();
    let mut now = sent;
    let mut last_data = sent;
    loop {
        let measuring = shared.measuring();
        decode_replies(
            &mut conn.input,
            conn.decoder.as_mut(),
            pending,
            shared,
            peer,
            |reply, bytes| {
                tally.reply(reply, bytes);
                if measuring {
                    record(histogram, now - sent);
                }
            },
        )?;
        if pending.is_empty() {
            return Ok((tally, true));
        }
        match conn.input.read_from(&mut conn.stream) {
            Ok(0) => return Err(closed(peer)),
            Ok(_) => {
                now = Instant::now();
                last_data = now;
            }
            Err(e) if is_timeout(&e) => {
                if shared.stopped() {
                    return Ok((tally, false));
                }
                if last_data.elapsed() > opts.reply_timeout {
                    return Err(no_reply(peer, opts.reply_timeout));
                }
            }
            Err(e) => return Err(Error::io(format!("read from {peer}"), e)),
        }
    }
}

/// A request in flight in open loop.
struct Pending {
    intended: Instant,
    bytes: usize,
}

/// What the writer and the reader of one open loop share: the schedule, the
/// requests in flight (at most `in_flight`) and whether writing has ended.
struct OpenLoop<'a> {
    shared: &'a Shared,
    opts: &'a LoopOpts,
    peer: &'a str,
    /// When the first request is due.
    start: Instant,
    rate_per_s: f64,
    pending: Mutex<VecDeque<(u64, Pending)>>,
    /// Signalled when replies free room in `pending`, or when writing ends.
    room: Condvar,
    /// No more requests will be written: the writer ended, or the reader did
    /// (then the writer must not wait for room that will not come).
    writer_done: AtomicBool,
}

impl OpenLoop<'_> {
    /// When request `seq` is due: `start + seq / rate`.
    fn intended(&self, seq: u64) -> Instant {
        self.start + Duration::from_secs_f64(seq as f64 / self.rate_per_s)
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<(u64, Pending)>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn writer_done(&self) -> bool {
        self.writer_done.load(Ordering::Relaxed)
    }

    /// Ends writing and wakes a writer waiting for room.
    fn end_writing(&self) {
        self.writer_done.store(true, Ordering::Relaxed);
        self.room.notify_all();
    }

    /// Writing has ended and every request written is answered.
    fn all_answered(&self) -> bool {
        self.writer_done() && self.lock().is_empty()
    }

    /// The reader: takes replies until every request is answered, the run
    /// stops, or the oldest request waits longer than the reply timeout.
    fn read(
        &self,
        stream: &mut TcpStream,
        input: &mut InBuf,
        decoder: &mut dyn Decoder,
        histogram: &mut Histogram<u64>,
    ) -> Result<(), Error> {
        loop {
            match input.read_from(stream) {
                Ok(0) if self.all_answered() => return Ok(()),
                Ok(0) => return Err(closed(self.peer)),
                Ok(_) => self.take_replies(input, decoder, histogram)?,
                Err(e) if is_timeout(&e) => {
                    if self.shared.stopped() {
                        return Ok(());
                    }
                    let pending = self.lock();
                    if self.writer_done() && pending.is_empty() {
                        return Ok(());
                    }
                    if pending
                        .front()
                        .is_some_and(|(_, p)| p.intended.elapsed() > self.opts.reply_timeout)
                    {
                        return Err(no_reply(self.peer, self.opts.reply_timeout));
                    }
                }
                Err(e) => return Err(Error::io(format!("read from {}", self.peer), e)),
            }
            if self.all_answered() {
                return Ok(());
            }
        }
    }

    /// Decodes the replies one read brought, each with its latency from its
    /// request's intended time, and frees their room.
    fn take_replies(
        &self,
        input: &mut InBuf,
        decoder: &mut dyn Decoder,
        histogram: &mut Histogram<u64>,
    ) -> Result<(), Error> {
        let now = Instant::now();
        let measuring = self.shared.measuring();
        let mut tally = Tally::default();
        let mut pending = self.lock();
        decode_replies(
            input,
            decoder,
            &mut pending,
            self.shared,
            self.peer,
            |reply, request: Pending| {
                tally.reply(reply, request.bytes);
                if measuring {
                    record(histogram, now.saturating_duration_since(request.intended));
                }
            },
        )?;
        drop(pending);
        self.room.notify_all();
        self.shared.add(&tally);
        Ok(())
    }

    /// The writer: sends every request whose time has come, as room allows,
    /// until the run stops or the budget is spent.
    fn write(&self, stream: &mut TcpStream, encoder: &dyn Encoder) -> Result<(), Error> {
        let mut out = Vec::new();
        let mut next = 0u64;
        loop {
            if self.shared.stopped() {
                return Ok(());
            }
            let now = Instant::now();
            let due_at = self.intended(next);
            if due_at > now {
                std::thread::sleep((due_at - now).min(READ_POLL));
                continue;
            }
            // Every request whose intended time has come, within the window.
            let due = ((now - self.start).as_secs_f64() * self.rate_per_s) as u64 + 1;
            let Some(mut pending) = self.wait_for_room() else {
                return Ok(());
            };
            let free = (self.opts.in_flight - pending.len()) as u64;
            let n = self.shared.claim(
                due.saturating_sub(next)
                    .clamp(1, MAX_OPEN_LOOP_BATCH)
                    .min(free),
            );
            if n == 0 {
                return Ok(());
            }
            out.clear();
            for seq in next..next + n {
                let bytes = encoder.encode(seq, &mut out);
                let intended = self.intended(seq);
                pending.push_back((seq, Pending { intended, bytes }));
            }
            drop(pending);
            next += n;
            send(stream, &out, self.peer)?;
        }
    }

    /// The requests in flight once there is room for one more; `None` when the
    /// run stops or writing ends first.
    fn wait_for_room(&self) -> Option<MutexGuard<'_, VecDeque<(u64, Pending)>>> {
        let mut pending = self.lock();
        while pending.len() >= self.opts.in_flight {
            if self.shared.stopped() || self.writer_done() {
                return None;
            }
            pending = self
                .room
                .wait_timeout(pending, READ_POLL)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        Some(pending)
    }
}

/// An open loop on one connection at `rate_per_s` requests per second, the first
/// due at `start`. Returns the reader's histogram.
pub fn open_loop(
    conn: &mut Conn,
    shared: &Shared,
    opts: &LoopOpts,
    rate_per_s: f64,
    start: Instant,
) -> (Histogram<u64>, Result<(), Error>) {
    let Conn {
        stream,
        input,
        encoder,
        decoder,
        peer,
    } = conn;
    let mut reader_stream = match stream.try_clone() {
        Ok(s) => s,
        Err(e) => return (new_histogram(), Err(Error::io("clone socket", e))),
    };
    let open = OpenLoop {
        shared,
        opts,
        peer,
        start,
        rate_per_s,
        pending: Mutex::new(VecDeque::new()),
        room: Condvar::new(),
        writer_done: AtomicBool::new(false),
    };
    std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            let mut histogram = new_histogram();
            let result = open.read(&mut reader_stream, input, decoder.as_mut(), &mut histogram);
            open.end_writing();
            (histogram, result)
        });
        let written = open.write(stream, encoder.as_ref());
        open.end_writing();
        if written.is_err() {
            // Wake the reader out of its read.
            let _ = stream.shutdown(Shutdown::Both);
        }
        let (histogram, read) = reader.join().unwrap_or_else(|_| {
            (
                new_histogram(),
                Err(Error::protocol(open.peer, "reader thread panicked")),
            )
        });
        (histogram, written.and(read))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tally_counts_each_kind_of_reply() {
        let mut t = Tally::default();
        t.reply(&Reply::Stored, 100);
        t.reply(&Reply::Record(30), 0);
        t.reply(&Reply::Empty, 0);
        t.reply(&Reply::Error("x".into()), 0);
        t.reply(&Reply::Round, 0);
        t.streamed(10, 1000);
        assert_eq!(
            t,
            Tally {
                requests: 15,
                records: 13,
                bytes: 1130,
                empty: 1,
                errors: 1
            }
        );
        assert_eq!(t.since(&t), Tally::default());
    }

    #[test]
    fn budget_is_claimed_exactly_and_target_stops_the_run() {
        let shared = Shared::new(Some(10), Some(10));
        assert_eq!(shared.claim(4), 4);
        assert_eq!(shared.claim(4), 4);
        assert_eq!(shared.claim(4), 2);
        assert_eq!(shared.claim(4), 0);
        assert!(!shared.stopped());
        shared.add(&Tally {
            records: 9,
            ..Tally::default()
        });
        assert!(!shared.stopped() && shared.reached_at().is_none());
        shared.add(&Tally {
            records: 1,
            ..Tally::default()
        });
        assert!(shared.stopped() && shared.reached_at().is_some());
        let unlimited = Shared::new(None, None);
        assert_eq!(unlimited.claim(7), 7);
        unlimited.note_error("first");
        unlimited.note_error("second");
        assert_eq!(unlimited.first_error().as_deref(), Some("first"));
    }

    #[test]
    fn replies_take_their_request() {
        let mut pending: VecDeque<(u64, usize)> = [(0, 10), (1, 11), (2, 12)].into();
        assert_eq!(take(&mut pending, Some(2), "p").expect("by seq"), 12);
        assert_eq!(take(&mut pending, None, "p").expect("oldest"), 10);
        assert!(take(&mut pending, Some(9), "p").is_err());
        assert_eq!(pending.len(), 1);
    }
}
