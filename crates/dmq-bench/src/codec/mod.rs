//! What the request/reply loops need from a protocol: an [`Encoder`] that appends
//! request number `seq`, and a [`Decoder`] that takes one reply off the front of
//! the input. Encoders are shared read-only (in open loop the writer thread has
//! it while the reader thread has the decoder).
//!
//! - `legacy.rs`: the node's legacy protocol, with `dmq_proto::legacy`.
//! - `neo.rs`: the neo protocol, with `dmq_proto::neo`: handshake, HMAC
//!   authentication, Push v3 and Pop v1 (pipelined, matched by request id), and
//!   the Consume v4 messages.
//! - `redis.rs`: RESP, by hand: LPUSH, RPOP, BLPOP, PING and a robust reply parser.
//!
//! This file also holds the connection helpers and [`InBuf`], the input buffer.

pub mod legacy;
pub mod neo;
pub mod redis;

use std::io::{self, Read};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::Error;

/// How long a blocking read waits before the loop looks at its stop flag again.
pub const READ_POLL: Duration = Duration::from_millis(100);

/// Largest input buffer: the biggest neo message (64 MiB) and then some.
pub const MAX_INPUT_BYTES: usize = 80 * 1024 * 1024;

/// One decoded reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A push was acknowledged: one record, of the request's size.
    Stored,
    /// A pop returned a record of this many bytes.
    Record(usize),
    /// A pop found nothing.
    Empty,
    /// A ping came back.
    Round,
    /// The server refused the request (counted, not fatal).
    Error(String),
}

/// What the decoder found at the front of the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// No whole reply yet; the input must hold at least this many bytes (if known)
    /// before the next try.
    Incomplete(Option<usize>),
    /// A message that answers nothing by itself (neo's SupportedStatus): drop it.
    Skip(usize),
    /// A reply, `used` bytes long. `seq` names the request it answers for
    /// protocols that may answer out of order (neo); in-order protocols give
    /// `None`, and the reply answers the oldest request in flight.
    Reply {
        used: usize,
        seq: Option<u64>,
        reply: Reply,
    },
}

/// Appends requests.
pub trait Encoder: Send + Sync {
    /// Appends request number `seq` (from 0 on each connection) and returns the
    /// record bytes it carries (0 for a pop or a ping).
    fn encode(&self, seq: u64, out: &mut Vec<u8>) -> usize;
}

/// Takes replies off the input.
pub trait Decoder: Send {
    /// Decodes the reply at the start of `buf`.
    fn decode(&mut self, buf: &[u8]) -> Result<Step, Error>;
}

/// The request mix of a request/reply workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mix {
    /// Every request is a push.
    Push,
    /// Every request is a pop.
    Pop,
    /// Push, pop, push, pop, ... (even requests push).
    PushPop,
    /// A request that does no queue work: legacy GetNumConnections, Redis PING.
    Ping,
}

/// One request of a [`Mix`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Push,
    Pop,
    Ping,
}

impl Mix {
    /// The operation of request number `seq`.
    pub fn at(self, seq: u64) -> Op {
        match self {
            Mix::Push => Op::Push,
            Mix::Pop => Op::Pop,
            Mix::Ping => Op::Ping,
            Mix::PushPop if seq.is_multiple_of(2) => Op::Push,
            Mix::PushPop => Op::Pop,
        }
    }
}

/// Which channel each request of one connection goes to: request `seq` of
/// connection `conn` (of `conns`) uses channel `(conn + seq * conns) % N`. With
/// N ≤ conns and N dividing conns, each connection keeps one channel; otherwise
/// every connection walks over its share of channels round-robin.
#[derive(Debug, Clone)]
pub struct Route {
    pub channels: Arc<Vec<String>>,
    pub conn: usize,
    pub conns: usize,
}

impl Route {
    /// The channel of request `seq`.
    pub fn channel(&self, seq: u64) -> &[u8] {
        let n = self.channels.len() as u64;
        let index = (self.conn as u64 + seq.wrapping_mul(self.conns as u64)) % n;
        self.channels[index as usize].as_bytes()
    }
}

/// The channel names `{prefix}0` .. `{prefix}{n-1}`.
pub fn channel_names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

/// Nanoseconds since `epoch`, as stamped into fanout records.
pub fn stamp(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Writes the stamp into the first 8 bytes of a value just appended to `out`
/// (`value_len` bytes long, at least 8).
pub fn stamp_value(out: &mut [u8], value_len: usize, epoch: Instant) {
    let start = out.len() - value_len;
    if let Some(slot) = out.get_mut(start..start + 8) {
        slot.copy_from_slice(&stamp(epoch).to_le_bytes());
    }
}

/// Reads the stamp of a fanout record.
pub fn read_stamp(record: &[u8]) -> Option<u64> {
    record
        .first_chunk::<8>()
        .map(|bytes| u64::from_le_bytes(*bytes))
}

/// Opens a TCP connection with `TCP_NODELAY`, a read timeout of [`READ_POLL`]
/// (reads wake up to look at the stop flag) and a write timeout.
pub fn connect(addr: &str, connect_timeout: Duration) -> Result<TcpStream, Error> {
    let connect_error = |source| Error::Connect {
        addr: addr.to_owned(),
        source,
    };
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    for sock_addr in addr.to_socket_addrs().map_err(connect_error)? {
        match TcpStream::connect_timeout(&sock_addr, connect_timeout) {
            Ok(stream) => {
                let setup = || -> io::Result<()> {
                    stream.set_nodelay(true)?;
                    stream.set_read_timeout(Some(READ_POLL))?;
                    stream.set_write_timeout(Some(Duration::from_secs(30)))
                };
                setup().map_err(connect_error)?;
                return Ok(stream);
            }
            Err(e) => last = e,
        }
    }
    Err(connect_error(last))
}

/// Whether a read error only means "nothing yet" (the read timeout).
pub fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// A connection's input: bytes read and not yet decoded, in one growable buffer.
#[derive(Debug)]
pub struct InBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Default for InBuf {
    fn default() -> Self {
        InBuf::new()
    }
}

impl InBuf {
    /// An empty buffer of 64 KiB.
    pub fn new() -> InBuf {
        InBuf {
            buf: vec![0; 64 * 1024],
            start: 0,
            end: 0,
        }
    }

    /// The undecoded bytes.
    pub fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Drops `n` decoded bytes from the front.
    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Makes room for a message of `needed` bytes from the start of the data.
    pub fn reserve(&mut self, needed: usize) -> Result<(), Error> {
        if needed > MAX_INPUT_BYTES {
            return Err(Error::protocol(
                "peer",
                format!("a reply of {needed} bytes is over the {MAX_INPUT_BYTES}-byte limit"),
            ));
        }
        if self.start + needed > self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if needed > self.buf.len() {
                self.buf
                    .resize(needed.next_power_of_two().min(MAX_INPUT_BYTES), 0);
            }
        }
        Ok(())
    }

    /// One `read` into the free space (made if there is none). `Ok(0)` is the end
    /// of the stream; a timeout is returned as the error it is.
    pub fn read_from(&mut self, reader: &mut impl Read) -> io::Result<usize> {
        if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else {
                let len = (self.buf.len() * 2)
                    .min(MAX_INPUT_BYTES)
                    .max(self.buf.len());
                if len == self.buf.len() {
                    return Err(io::Error::new(io::ErrorKind::OutOfMemory, "input full"));
                }
                self.buf.resize(len, 0);
            }
        }
        let n = reader.read(&mut self.buf[self.end..])?;
        self.end += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_keeps_or_spreads_channels() {
        let route = |n: usize, conn: usize, conns: usize| Route {
            channels: Arc::new(channel_names("c", n)),
            conn,
            conns,
        };
        // One channel per connection.
        let r = route(50, 7, 50);
        assert!((0..10).all(|s| r.channel(s) == b"c7"));
        // More channels than connections: a share each, round-robin.
        let r = route(64, 1, 4);
        let used: Vec<&[u8]> = (0..17).map(|s| r.channel(s)).collect();
        assert_eq!(used[0], b"c1");
        assert_eq!(used[1], b"c5");
        assert_eq!(used[16], b"c1");
        // One channel for everyone.
        let r = route(1, 3, 4);
        assert!((0..10).all(|s| r.channel(s) == b"c0"));
    }

    #[test]
    fn inbuf_grows_compacts_and_consumes() {
        let mut input = InBuf::new();
        let mut src: &[u8] = &[1, 2, 3, 4, 5];
        assert_eq!(input.read_from(&mut src).expect("read"), 5);
        input.consume(2);
        assert_eq!(input.data(), [3, 4, 5]);
        input.reserve(200_000).expect("reserve");
        assert_eq!(input.data(), [3, 4, 5]);
        input.consume(3);
        assert!(input.data().is_empty());
        assert!(input.reserve(MAX_INPUT_BYTES + 1).is_err());
    }

    #[test]
    fn mix_and_stamps() {
        assert_eq!(Mix::PushPop.at(0), Op::Push);
        assert_eq!(Mix::PushPop.at(1), Op::Pop);
        assert_eq!(Mix::Ping.at(5), Op::Ping);
        let epoch = Instant::now();
        let mut out = vec![0u8; 20];
        stamp_value(&mut out, 10, epoch);
        let value = &out[10..];
        assert!(read_stamp(value).is_some());
        assert_eq!(read_stamp(&[1, 2]), None);
    }
}
