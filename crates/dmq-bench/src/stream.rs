//! The streaming workers: legacy Produce (no per-record acknowledgement), legacy
//! Consume and neo Consume (batches acknowledged with Continue); and the setup
//! they need: prefilling channels with records, removing channels.
//!
//! A Produce stream is synchronised at its end: after the empty record the worker
//! sends GetNumConnections, and the node's 406 answer proves that every record
//! before it was applied. Records are counted when they are written; the run's
//! end time is when the last worker has its 406, so every counted record is
//! stored by then.

use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use dmq_proto::legacy::{
    encode_array, encode_stream_end, parse_status, parse_stream_item, DecodeError, Request, Status,
    StreamItem,
};
use dmq_proto::neo::{
    parse_message, split_request_body, ArrayList, ConsumeClientMessage, ConsumeNodeMessage,
    ConsumeRequest, ConsumeStatus, FrameError, MessageType, SupportedStatus,
};
use hdrhistogram::Histogram;

use crate::codec::neo::{fill, handshake, NeoCredentials};
use crate::codec::redis::{encode_command, parse as parse_resp, Resp};
use crate::codec::{connect, is_timeout, read_stamp, stamp, InBuf};
use crate::driver::{closed, send, Shared, Tally};
use crate::latency::record;
use crate::size::ValuePool;
use crate::Error;

/// Bytes of records written per `write` in a Produce stream.
const PRODUCE_WRITE_BYTES: usize = 64 * 1024;

/// Records per Redis `LPUSH` when prefilling.
const REDIS_PREFILL_VALUES: usize = 100;

/// Redis `LPUSH` commands written before their replies are read, when prefilling.
const REDIS_PREFILL_PIPELINE: usize = 100;

/// A Produce write that failed: the node closes a stream whose records a full
/// ring refused, so say so.
fn produce_write(stream: &mut TcpStream, bytes: &[u8], peer: &str) -> Result<(), Error> {
    stream.write_all(bytes).map_err(|e| match e.kind() {
        std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset => Error::protocol(
            peer,
            format!(
                "the node closed the Produce stream ({e}); it does so when a channel's ring \
                 is full: raise server.channel_size_limit or shorten the run"
            ),
        ),
        _ => Error::io(format!("write to {peer}"), e),
    })
}

/// Reads until a whole legacy status is in, or `deadline`.
fn read_status(
    stream: &mut TcpStream,
    input: &mut InBuf,
    deadline: Instant,
    peer: &str,
) -> Result<i32, Error> {
    loop {
        match parse_status(input.data()) {
            Ok((status, used)) => {
                input.consume(used);
                return Ok(status);
            }
            Err(DecodeError::Incomplete { needed }) => fill(stream, input, needed, deadline, peer)?,
            Err(e) => return Err(Error::protocol(peer, e)),
        }
    }
}

/// Reads a legacy status like [`read_status`] and fails unless it is 200; `what`
/// names the request in the error.
fn read_ok(
    stream: &mut TcpStream,
    input: &mut InBuf,
    deadline: Instant,
    peer: &str,
    what: impl std::fmt::Display,
) -> Result<(), Error> {
    match read_status(stream, input, deadline, peer)? {
        status if Status::from_code(status) == Some(Status::Ok) => Ok(()),
        status => Err(Error::protocol(
            peer,
            format!("{what} answered status {status}"),
        )),
    }
}

/// Reads one 200 per channel, each within `timeout`, for requests `request`
/// sent to each of `channels` in order (the error names the request and channel).
fn read_ok_each(
    stream: &mut TcpStream,
    input: &mut InBuf,
    peer: &str,
    request: &str,
    channels: &[String],
    timeout: Duration,
) -> Result<(), Error> {
    for channel in channels {
        let deadline = Instant::now() + timeout;
        read_ok(
            stream,
            input,
            deadline,
            peer,
            format_args!("{request} {channel}"),
        )?;
    }
    Ok(())
}

/// Where one Produce connection writes.
#[derive(Debug, Clone)]
pub struct ProduceSpec {
    pub addr: String,
    /// This connection's channels: one long stream for one channel, runs of
    /// `run_records` records round-robin for several.
    pub channels: Vec<String>,
    pub run_records: usize,
    pub connect_timeout: Duration,
    pub reply_timeout: Duration,
}

/// Appends records from the pool, starting at `*next`, until `n` are written;
/// returns their bytes.
fn append_records(out: &mut Vec<u8>, pool: &ValuePool, next: &mut u64, n: u64) -> u64 {
    let mut bytes = 0;
    for _ in 0..n {
        let value = pool.get(*next);
        encode_array(out, value);
        bytes += value.len() as u64;
        *next += 1;
    }
    bytes
}

/// One Produce connection: streams records until the run stops or the budget is
/// spent, then ends the stream and waits for the node to confirm it.
pub fn produce(spec: &ProduceSpec, pool: &ValuePool, shared: &Shared) -> Result<(), Error> {
    let peer = spec.addr.as_str();
    let mut stream = connect(peer, spec.connect_timeout)?;
    let mut reader = stream
        .try_clone()
        .map_err(|e| Error::io("clone socket", e))?;
    let sync_sent = AtomicBool::new(false);
    let writer_failed = AtomicBool::new(false);
    let per_write = (PRODUCE_WRITE_BYTES / (pool.get(0).len() + 8)).max(1) as u64;
    shared.wait_for_start();

    std::thread::scope(|scope| {
        // Reads the statuses: 200 per Produce started, 406 for the final sync.
        let statuses = scope.spawn(|| -> Result<(), Error> {
            let mut input = InBuf::new();
            loop {
                let status = loop {
                    let deadline = Instant::now() + spec.reply_timeout;
                    match read_status(&mut reader, &mut input, deadline, peer) {
                        Err(Error::Timeout(_))
                            if !sync_sent.load(Ordering::Relaxed)
                                && !writer_failed.load(Ordering::Relaxed) =>
                        {
                            continue
                        }
                        other => break other?,
                    }
                };
                match Status::from_code(status) {
                    Some(Status::Ok) => {}
                    Some(Status::NotSupported) => return Ok(()),
                    _ => {
                        return Err(Error::protocol(
                            peer,
                            format!("Produce answered status {status}"),
                        ))
                    }
                }
            }
        });

        let written = (|| -> Result<(), Error> {
            let mut out = Vec::with_capacity(PRODUCE_WRITE_BYTES * 2);
            let mut next = 0u64;
            match spec.channels.as_slice() {
                [channel] => {
                    Request::Produce {
                        channel: channel.as_bytes(),
                    }
                    .encode(&mut out);
                    while !shared.stopped() {
                        let n = shared.claim(per_write);
                        if n == 0 {
                            break;
                        }
                        let bytes = append_records(&mut out, pool, &mut next, n);
                        produce_write(&mut stream, &out, peer)?;
                        out.clear();
                        let mut tally = Tally::default();
                        tally.streamed(n, bytes);
                        shared.add(&tally);
                    }
                    encode_stream_end(&mut out);
                }
                channels => {
                    let mut c = 0;
                    while !shared.stopped() {
                        let n = shared.claim(spec.run_records as u64);
                        if n == 0 {
                            break;
                        }
                        out.clear();
                        Request::Produce {
                            channel: channels[c % channels.len()].as_bytes(),
                        }
                        .encode(&mut out);
                        let bytes = append_records(&mut out, pool, &mut next, n);
                        encode_stream_end(&mut out);
                        produce_write(&mut stream, &out, peer)?;
                        let mut tally = Tally::default();
                        tally.streamed(n, bytes);
                        shared.add(&tally);
                        c += 1;
                    }
                    out.clear();
                }
            }
            Request::GetNumConnections.encode(&mut out);
            produce_write(&mut stream, &out, peer)?;
            sync_sent.store(true, Ordering::Relaxed);
            Ok(())
        })();
        if written.is_err() {
            writer_failed.store(true, Ordering::Relaxed);
            let _ = stream.shutdown(Shutdown::Both);
        }
        let read = statuses
            .join()
            .unwrap_or_else(|_| Err(Error::protocol(peer, "status reader panicked")));
        written.and(read)
    })
}

/// Where one consumer reads.
#[derive(Debug, Clone)]
pub struct ConsumeSpec {
    pub addr: String,
    pub channel: String,
    /// Neo only: the subscriber name ("" is the default subscriber).
    pub subscriber: String,
    pub connect_timeout: Duration,
    /// Longest wait for a record while the run goes on (count mode only).
    pub idle_timeout: Option<Duration>,
}

/// A legacy Consume: counts the records the node streams until the run stops or
/// the channel is removed.
pub fn legacy_consume(spec: &ConsumeSpec, shared: &Shared) -> Result<(), Error> {
    let peer = spec.addr.as_str();
    let mut stream = connect(peer, spec.connect_timeout)?;
    let mut input = InBuf::new();
    let mut out = Vec::new();
    shared.wait_for_start();
    Request::Consume {
        channel: spec.channel.as_bytes(),
    }
    .encode(&mut out);
    send(&mut stream, &out, peer)?;
    read_ok(
        &mut stream,
        &mut input,
        Instant::now() + spec.connect_timeout.max(Duration::from_secs(10)),
        peer,
        "Consume",
    )?;
    let mut last_record = Instant::now();
    loop {
        let mut tally = Tally::default();
        let mut needed = None;
        let mut ended = false;
        loop {
            match parse_stream_item(input.data()) {
                Ok((StreamItem::Record(value), used)) => {
                    tally.streamed(1, value.len() as u64);
                    input.consume(used);
                }
                Ok((StreamItem::End, used)) => {
                    input.consume(used);
                    ended = true;
                    break;
                }
                Err(DecodeError::Incomplete { needed: n }) => {
                    needed = Some(n);
                    break;
                }
                Err(e) => return Err(Error::protocol(peer, e)),
            }
        }
        if tally.records > 0 {
            last_record = Instant::now();
            shared.add(&tally);
        }
        if ended || shared.stopped() {
            return Ok(());
        }
        if let Some(needed) = needed {
            input.reserve(needed)?;
        }
        read_more(
            &mut stream,
            &mut input,
            peer,
            spec.idle_timeout,
            last_record,
        )?;
    }
}

/// The request id of a neo consumer's one Consume.
const CONSUME_ID: u64 = 1;

/// How long a neo consumer waits for Stopped after its Stop.
const STOP_WAIT: Duration = Duration::from_secs(2);

/// A neo Consume (v4) with Continue after every batch, until the run stops
/// (then Stop, and Stopped is awaited briefly) or the channel is removed. With
/// `stamped`, each record's first 8 bytes are its send time and the end-to-end
/// latency goes into `histogram`.
pub fn neo_consume(
    spec: &ConsumeSpec,
    credentials: &NeoCredentials,
    shared: &Shared,
    started: &AtomicUsize,
    stamped: bool,
    histogram: &mut Histogram<u64>,
) -> Result<(), Error> {
    let peer = spec.addr.as_str();
    let mut stream = connect(peer, spec.connect_timeout)?;
    let mut input = InBuf::new();
    handshake(
        &mut stream,
        &mut input,
        credentials,
        peer,
        spec.connect_timeout.max(Duration::from_secs(10)),
    )?;
    shared.wait_for_start();
    let mut consumer = NeoConsumer {
        peer,
        stream,
        input,
        out: Vec::new(),
        is_started: false,
        stop_deadline: None,
        records: RecordCounter {
            shared,
            stamped,
            histogram,
        },
    };
    ConsumeRequest {
        channel: spec.channel.as_bytes(),
        subscriber: spec.subscriber.as_bytes(),
    }
    .encode(&mut consumer.out, CONSUME_ID);
    send(&mut consumer.stream, &consumer.out, peer)?;

    let mut last_record = Instant::now();
    loop {
        let mut tally = Tally::default();
        let Some(needed) = consumer.take_messages(&mut tally, started)? else {
            shared.add(&tally);
            return Ok(());
        };
        if tally.records > 0 {
            last_record = Instant::now();
            shared.add(&tally);
        }
        if shared.stopped() && consumer.stop_deadline.is_none() {
            if !consumer.is_started {
                return Ok(());
            }
            consumer.send(ConsumeClientMessage::Stop)?;
            consumer.stop_deadline = Some(Instant::now() + STOP_WAIT);
        }
        if consumer
            .stop_deadline
            .is_some_and(|deadline| Instant::now() > deadline)
        {
            return Ok(());
        }
        consumer.input.reserve(needed)?;
        // Once Stop is sent, only the stop deadline ends the wait.
        let idle = spec
            .idle_timeout
            .filter(|_| consumer.stop_deadline.is_none());
        read_more(
            &mut consumer.stream,
            &mut consumer.input,
            peer,
            idle,
            last_record,
        )?;
    }
}

/// One neo Consume connection after its request was sent.
struct NeoConsumer<'a> {
    peer: &'a str,
    stream: TcpStream,
    input: InBuf,
    out: Vec<u8>,
    /// The node answered Started: records come from now on.
    is_started: bool,
    /// Set when Stop is sent: until when Stopped is awaited.
    stop_deadline: Option<Instant>,
    records: RecordCounter<'a>,
}

impl NeoConsumer<'_> {
    fn protocol(&self, detail: impl std::fmt::Display) -> Error {
        Error::protocol(self.peer, detail)
    }

    fn send(&mut self, message: ConsumeClientMessage) -> Result<(), Error> {
        self.out.clear();
        message.encode(&mut self.out, CONSUME_ID);
        send(&mut self.stream, &self.out, self.peer)
    }

    /// Takes every whole message off the input: the answers to the request
    /// (`started` counts the consumers the node has started), then record
    /// batches, counted into `tally` and each answered with Continue until Stop
    /// is sent. Returns the input length the next message needs, or `None` when
    /// the stream has ended (Stopped, or the channel was removed).
    fn take_messages(
        &mut self,
        tally: &mut Tally,
        started: &AtomicUsize,
    ) -> Result<Option<usize>, Error> {
        loop {
            let (message, used) = match parse_message(self.input.data()) {
                Ok(ok) => ok,
                Err(FrameError::Incomplete { needed }) => return Ok(Some(needed)),
                Err(e) => return Err(self.protocol(e)),
            };
            if message.kind != MessageType::Request {
                return Err(self.protocol(format!("{:?} message", message.kind)));
            }
            let (id, payload) = split_request_body(message.body).map_err(|e| self.protocol(e))?;
            if id != CONSUME_ID {
                return Err(self.protocol(format!("message for unknown request {id}")));
            }
            if !self.is_started {
                if request_started(payload).map_err(|e| self.protocol(e))? {
                    self.is_started = true;
                    started.fetch_add(1, Ordering::Relaxed);
                }
                self.input.consume(used);
                continue;
            }
            match ConsumeNodeMessage::parse(payload).map_err(|e| self.protocol(e))? {
                ConsumeNodeMessage::Records(records) => {
                    self.records.count(&records, tally);
                    self.input.consume(used);
                    if self.stop_deadline.is_none() {
                        self.send(ConsumeClientMessage::Continue)?;
                    }
                }
                ConsumeNodeMessage::Stopped | ConsumeNodeMessage::ChannelRemoved => {
                    return Ok(None);
                }
            }
        }
    }
}

/// Reads the node's answer to a neo Consume request before its first records:
/// `Ok(false)` for RequestSupported (Started follows), `Ok(true)` for Started;
/// anything else is the refusal's text.
fn request_started(payload: &[u8]) -> Result<bool, String> {
    if let [byte] = payload {
        match SupportedStatus::from_byte(*byte) {
            Some(SupportedStatus::RequestSupported) => return Ok(false),
            Some(other) => return Err(format!("Consume: {other:?}")),
            None => {}
        }
    }
    match ConsumeStatus::parse(payload).map_err(|e| e.to_string())? {
        ConsumeStatus::Started => Ok(true),
        ConsumeStatus::Error => Err("Consume answered Error".into()),
    }
}

/// Counts a neo consumer's records and, when they are stamped, their
/// end-to-end latency while the run measures.
struct RecordCounter<'a> {
    shared: &'a Shared,
    stamped: bool,
    histogram: &'a mut Histogram<u64>,
}

impl RecordCounter<'_> {
    fn count(&mut self, records: &ArrayList<'_>, tally: &mut Tally) {
        let now_ns = stamp(self.shared.epoch);
        let measuring = self.stamped && self.shared.measuring();
        let mut bytes = 0;
        for record_bytes in records.iter() {
            bytes += record_bytes.len() as u64;
            if measuring {
                if let Some(sent_ns) = read_stamp(record_bytes) {
                    record(
                        self.histogram,
                        Duration::from_nanos(now_ns.saturating_sub(sent_ns)),
                    );
                }
            }
        }
        tally.streamed(records.len() as u64, bytes);
    }
}

/// One read of a streaming consumer. A read timeout is no error unless `idle`
/// is set and no record came for that long.
fn read_more(
    stream: &mut TcpStream,
    input: &mut InBuf,
    peer: &str,
    idle: Option<Duration>,
    last_record: Instant,
) -> Result<(), Error> {
    match input.read_from(stream) {
        Ok(0) => Err(closed(peer)),
        Ok(_) => Ok(()),
        Err(e) if is_timeout(&e) => match idle {
            Some(idle) if last_record.elapsed() > idle => {
                Err(Error::Timeout(format!("{peer}: no record for {idle:?}")))
            }
            _ => Ok(()),
        },
        Err(e) => Err(Error::io(format!("read from {peer}"), e)),
    }
}

/// Fills each of `channels` on the node at `addr` with `counts[i]` records, with
/// one Produce stream per channel on one connection, and waits until the node
/// confirms them all.
pub fn prefill_legacy(
    addr: &str,
    channels: &[String],
    counts: &[u64],
    pool: &ValuePool,
    timeout: Duration,
) -> Result<(), Error> {
    let mut stream = connect(addr, timeout)?;
    let mut out = Vec::with_capacity(2 * 1024 * 1024);
    let mut next = 0;
    for (channel, &count) in channels.iter().zip(counts) {
        Request::Produce {
            channel: channel.as_bytes(),
        }
        .encode(&mut out);
        let mut left = count;
        while left > 0 {
            let n = left.min(10_000);
            append_records(&mut out, pool, &mut next, n);
            left -= n;
            if out.len() >= 1024 * 1024 {
                send(&mut stream, &out, addr)?;
                out.clear();
            }
        }
        encode_stream_end(&mut out);
    }
    Request::GetNumConnections.encode(&mut out);
    send(&mut stream, &out, addr)?;
    let mut input = InBuf::new();
    read_ok_each(&mut stream, &mut input, addr, "Produce", channels, timeout)?;
    match read_status(&mut stream, &mut input, Instant::now() + timeout, addr)? {
        status if Status::from_code(status) == Some(Status::NotSupported) => Ok(()),
        other => Err(Error::protocol(
            addr,
            format!("GetNumConnections answered {other}"),
        )),
    }
}

/// Reads one RESP reply.
fn read_resp(
    stream: &mut TcpStream,
    input: &mut InBuf,
    deadline: Instant,
    peer: &str,
) -> Result<(), Error> {
    loop {
        match parse_resp(input.data()).map_err(|e| Error::protocol(peer, e))? {
            Some((Resp::Error(text), _)) => {
                return Err(Error::protocol(peer, String::from_utf8_lossy(text)))
            }
            Some((_, used)) => {
                input.consume(used);
                return Ok(());
            }
            None => {
                let have = input.data().len();
                fill(stream, input, have + 1, deadline, peer)?;
            }
        }
    }
}

/// Fills each of `keys` on the Redis at `addr` with `counts[i]` records (`LPUSH`
/// of 100 values at a time, pipelined).
pub fn prefill_redis(
    addr: &str,
    keys: &[String],
    counts: &[u64],
    pool: &ValuePool,
    timeout: Duration,
) -> Result<(), Error> {
    let mut stream = connect(addr, timeout)?;
    let mut input = InBuf::new();
    let mut out = Vec::new();
    let mut next = 0u64;
    let mut unanswered = 0;
    for (key, &count) in keys.iter().zip(counts) {
        let mut left = count;
        while left > 0 {
            let n = left.min(REDIS_PREFILL_VALUES as u64);
            let mut args: Vec<&[u8]> = vec![b"LPUSH", key.as_bytes()];
            for _ in 0..n {
                args.push(pool.get(next));
                next += 1;
            }
            encode_command(&mut out, &args);
            left -= n;
            unanswered += 1;
            if unanswered == REDIS_PREFILL_PIPELINE {
                send(&mut stream, &out, addr)?;
                out.clear();
                for _ in 0..unanswered {
                    read_resp(&mut stream, &mut input, Instant::now() + timeout, addr)?;
                }
                unanswered = 0;
            }
        }
    }
    send(&mut stream, &out, addr)?;
    for _ in 0..unanswered {
        read_resp(&mut stream, &mut input, Instant::now() + timeout, addr)?;
    }
    Ok(())
}

/// Removes `channels` from the node at `addr` (legacy RemoveChannel), which also
/// ends their subscriptions.
pub fn remove_legacy(addr: &str, channels: &[String], timeout: Duration) -> Result<(), Error> {
    let mut stream = connect(addr, timeout)?;
    let mut out = Vec::new();
    for channel in channels {
        Request::RemoveChannel {
            channel: channel.as_bytes(),
        }
        .encode(&mut out);
    }
    send(&mut stream, &out, addr)?;
    read_ok_each(
        &mut stream,
        &mut InBuf::new(),
        addr,
        "RemoveChannel",
        channels,
        timeout,
    )
}

/// Deletes `keys` from the Redis at `addr`.
pub fn remove_redis(addr: &str, keys: &[String], timeout: Duration) -> Result<(), Error> {
    let mut stream = connect(addr, timeout)?;
    let mut out = Vec::new();
    let mut args: Vec<&[u8]> = vec![b"DEL"];
    args.extend(keys.iter().map(|k| k.as_bytes()));
    encode_command(&mut out, &args);
    send(&mut stream, &out, addr)?;
    read_resp(
        &mut stream,
        &mut InBuf::new(),
        Instant::now() + timeout,
        addr,
    )
}

/// `total` records split over `slots` as evenly as possible.
pub fn split_evenly(total: u64, slots: usize) -> Vec<u64> {
    let slots_u64 = slots.max(1) as u64;
    (0..slots_u64)
        .map(|i| total / slots_u64 + u64::from(i < total % slots_u64))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_evenly_adds_up() {
        assert_eq!(split_evenly(10, 3), [4, 3, 3]);
        assert_eq!(split_evenly(2, 4), [1, 1, 0, 0]);
        assert_eq!(split_evenly(2_000_000, 4).iter().sum::<u64>(), 2_000_000);
    }
}
