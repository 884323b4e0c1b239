//! A blocking legacy-protocol client over `std::net::TcpStream`, built on the
//! `dmq_proto::legacy` codec: raw bytes, pipelined (queued) requests, one
//! request one reply, Produce and Consume streams; pipelined Push/Pop helpers;
//! and [`Wire`], the bytes of legacy requests as a client counts them.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};

use dmq_proto::legacy::{
    encode_array, encode_channel_list, encode_stream_end, parse_array, parse_status,
    Command as Cmd, Request, Status, MAX_ARRAY_LEN,
};

use crate::{is_disconnect, IO_TIMEOUT};

pub const OK: i32 = Status::Ok as i32;
pub const NOT_SUPPORTED: i32 = Status::NotSupported as i32;
pub const OUT_OF_MEMORY: i32 = Status::OutOfMemory as i32;
pub const EMPTY_VALUE: i32 = Status::EmptyValue as i32;
pub const BAD_CHANNEL_NAME: i32 = Status::BadChannelName as i32;
pub const ERROR: i32 = Status::Error as i32;

/// A blocking legacy-protocol client. Requests can be queued (`queue_*`) and
/// sent in one write with [`Client::flush`] to pipeline them; the one-shot
/// methods send one request and read its reply.
pub struct Client {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
    out: Vec<u8>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        Self::try_connect(addr).unwrap_or_else(|e| panic!("connect to {addr}: {e}"))
    }

    pub fn try_connect(addr: SocketAddr) -> io::Result<Client> {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        let reader = BufReader::with_capacity(64 * 1024, stream.try_clone()?);
        Ok(Client {
            writer: stream,
            reader,
            out: Vec::new(),
        })
    }

    // ---- raw bytes ----

    /// Appends raw bytes to the pending output.
    pub fn queue(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// Writes the pending output.
    pub fn try_flush(&mut self) -> io::Result<()> {
        let result = self.writer.write_all(&self.out);
        self.out.clear();
        result
    }

    pub fn flush(&mut self) {
        self.try_flush().expect("write to the node");
    }

    /// Writes `bytes` at once (after any pending output).
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.queue(bytes);
        self.flush();
    }

    pub fn try_read_exact(&mut self, n: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0; n];
        self.reader.read_exact(&mut buf)?;
        Ok(buf)
    }

    pub fn read_exact(&mut self, n: usize) -> Vec<u8> {
        self.try_read_exact(n)
            .unwrap_or_else(|e| panic!("reading {n} bytes from the node: {e}"))
    }

    pub fn try_read_status(&mut self) -> io::Result<i32> {
        let bytes = self.try_read_exact(4)?;
        let (status, _) = parse_status(&bytes).expect("4 bytes are a status");
        Ok(status)
    }

    pub fn read_status(&mut self) -> i32 {
        self.try_read_status()
            .unwrap_or_else(|e| panic!("reading a status: {e}"))
    }

    /// Reads one array (`u64` length + bytes).
    pub fn read_array(&mut self) -> Vec<u8> {
        let prefix = self.read_exact(8);
        let len = u64::from_le_bytes(prefix.clone().try_into().expect("8 bytes"));
        assert!(
            len <= MAX_ARRAY_LEN as u64,
            "the node sent an array of {len} bytes"
        );
        let mut whole = prefix;
        whole.extend(self.read_exact(len as usize));
        let (bytes, used) = parse_array(&whole).expect("array");
        assert_eq!(used, whole.len());
        bytes.to_vec()
    }

    /// A Pop reply: `Ok(value)` after 200 (empty = the channel was empty),
    /// `Err(status)` otherwise.
    pub fn read_pop_reply(&mut self) -> Result<Vec<u8>, i32> {
        match self.read_status() {
            OK => Ok(self.read_array()),
            other => Err(other),
        }
    }

    /// Asserts that the node closes the connection without sending anything
    /// more (EOF or reset within [`IO_TIMEOUT`]).
    pub fn expect_closed(&mut self, what: &str) {
        assert!(
            self.reader.buffer().is_empty(),
            "{what}: unexpected bytes from the node: {:?}",
            self.reader.buffer()
        );
        let mut buf = [0u8; 256];
        match self.reader.get_mut().read(&mut buf) {
            Ok(0) => {}
            Ok(n) => panic!(
                "{what}: expected the node to close the connection, got {n} bytes: {:?}",
                &buf[..n]
            ),
            Err(e) if is_disconnect(&e) => {}
            Err(e) => panic!("{what}: expected the node to close the connection, got {e}"),
        }
    }

    /// Reads and discards what the node sends until it closes the connection.
    /// Returns false if it was still open after [`IO_TIMEOUT`] or after
    /// `max_bytes` bytes.
    pub fn drain_until_closed(&mut self, max_bytes: usize) -> bool {
        let mut seen = self.reader.buffer().len();
        self.reader.consume(seen);
        let mut buf = vec![0u8; 64 * 1024];
        // Bounded: every round either ends or reads at least one byte.
        while seen <= max_bytes {
            match self.reader.get_mut().read(&mut buf) {
                Ok(0) => return true,
                Ok(n) => seen += n,
                Err(e) if is_disconnect(&e) => return true,
                Err(_) => return false,
            }
        }
        false
    }

    /// Half-closes: the node sees EOF, the reply direction stays open.
    pub fn shutdown_write(&mut self) {
        let _ = self.writer.shutdown(Shutdown::Write);
    }

    // ---- queued requests (pipelining) ----

    pub fn queue_request(&mut self, request: Request<'_>) {
        request.encode(&mut self.out);
    }

    pub fn queue_push(&mut self, channel: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        self.queue_request(Request::Push {
            channel: channel.as_ref(),
            value: value.as_ref(),
        });
    }

    pub fn queue_pop(&mut self, channel: impl AsRef<[u8]>) {
        self.queue_request(Request::Pop {
            channel: channel.as_ref(),
        });
    }

    pub fn queue_push_multi<C: AsRef<[u8]>>(&mut self, channels: &[C], value: impl AsRef<[u8]>) {
        self.out
            .extend_from_slice(&Cmd::PushMulti.code().to_le_bytes());
        encode_channel_list(&mut self.out, channels.iter().map(|c| c.as_ref()));
        encode_array(&mut self.out, value.as_ref());
    }

    pub fn queue_remove(&mut self, channel: impl AsRef<[u8]>) {
        self.queue_request(Request::RemoveChannel {
            channel: channel.as_ref(),
        });
    }

    pub fn queue_get_num_connections(&mut self) {
        self.queue_request(Request::GetNumConnections);
    }

    // ---- one request, one reply ----

    pub fn push(&mut self, channel: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> i32 {
        self.queue_push(channel, value);
        self.flush();
        self.read_status()
    }

    pub fn pop(&mut self, channel: impl AsRef<[u8]>) -> Result<Vec<u8>, i32> {
        self.queue_pop(channel);
        self.flush();
        self.read_pop_reply()
    }

    pub fn push_multi<C: AsRef<[u8]>>(&mut self, channels: &[C], value: impl AsRef<[u8]>) -> i32 {
        self.queue_push_multi(channels, value);
        self.flush();
        self.read_status()
    }

    pub fn remove(&mut self, channel: impl AsRef<[u8]>) -> i32 {
        self.queue_remove(channel);
        self.flush();
        self.read_status()
    }

    pub fn get_num_connections(&mut self) -> i32 {
        self.queue_get_num_connections();
        self.flush();
        self.read_status()
    }

    /// A round trip that proves every earlier request of this connection (a
    /// Produce stream included) has been handled.
    pub fn sync(&mut self) {
        assert_eq!(self.get_num_connections(), NOT_SUPPORTED);
    }

    // ---- Produce / ProduceMulti ----

    /// Starts a Produce; returns the status (200 = send records now).
    pub fn produce(&mut self, channel: impl AsRef<[u8]>) -> i32 {
        self.queue_request(Request::Produce {
            channel: channel.as_ref(),
        });
        self.flush();
        self.read_status()
    }

    pub fn produce_multi<C: AsRef<[u8]>>(&mut self, channels: &[C]) -> i32 {
        self.out
            .extend_from_slice(&Cmd::ProduceMulti.code().to_le_bytes());
        encode_channel_list(&mut self.out, channels.iter().map(|c| c.as_ref()));
        self.flush();
        self.read_status()
    }

    /// Queues one record of a Produce stream (written in 64 KiB chunks).
    pub fn produce_record(&mut self, record: impl AsRef<[u8]>) {
        assert!(
            !record.as_ref().is_empty(),
            "an empty record ends the stream"
        );
        encode_array(&mut self.out, record.as_ref());
        if self.out.len() >= 64 * 1024 {
            self.flush();
        }
    }

    /// Ends the Produce stream (no reply follows).
    pub fn produce_end(&mut self) {
        encode_stream_end(&mut self.out);
        self.flush();
    }

    // ---- Consume ----

    /// Starts a Consume; returns the status (200 = records follow).
    pub fn consume(&mut self, channel: impl AsRef<[u8]>) -> i32 {
        self.queue_request(Request::Consume {
            channel: channel.as_ref(),
        });
        self.flush();
        self.read_status()
    }

    /// The next record of a Consume stream; `None` is the end marker.
    pub fn next_record(&mut self) -> Option<Vec<u8>> {
        let record = self.read_array();
        (!record.is_empty()).then_some(record)
    }
}

/// Requests pipelined per write by [`push_pipelined`] and [`pop_pipelined`].
pub const PIPELINE_CHUNK: usize = 200;

/// Legacy Pushes of `values` to `channel`, sent [`PIPELINE_CHUNK`] per write;
/// asserts that every reply is 200.
pub fn push_pipelined(client: &mut Client, channel: &str, values: &[Vec<u8>]) {
    for (n, chunk) in values.chunks(PIPELINE_CHUNK).enumerate() {
        for value in chunk {
            client.queue_push(channel, value);
        }
        client.flush();
        for (k, value) in chunk.iter().enumerate() {
            let status = client.read_status();
            assert_eq!(
                status,
                OK,
                "{channel}: push {} ({:?})",
                n * PIPELINE_CHUNK + k,
                String::from_utf8_lossy(&value[..9.min(value.len())])
            );
        }
    }
}

/// `count` legacy Pops of `channel`, sent [`PIPELINE_CHUNK`] per write; every
/// reply must be a record (not empty, not an error). Returns them in order.
pub fn pop_pipelined(client: &mut Client, channel: &str, count: usize) -> Vec<Vec<u8>> {
    let mut got = Vec::with_capacity(count);
    while got.len() < count {
        let n = (count - got.len()).min(PIPELINE_CHUNK);
        for _ in 0..n {
            client.queue_pop(channel);
        }
        client.flush();
        for _ in 0..n {
            match client.read_pop_reply() {
                Ok(r) if !r.is_empty() => got.push(r),
                Ok(_) => panic!(
                    "{channel}: Pop answered empty after {} of {count} records",
                    got.len()
                ),
                Err(status) => panic!(
                    "{channel}: Pop answered {status} after {} of {count} records",
                    got.len()
                ),
            }
        }
    }
    got
}

/// Legacy Pops of `channel` until the node answers empty; fails the test on an
/// error status or after more than `max` records. Returns the records.
pub fn pop_until_empty(client: &mut Client, channel: &str, max: usize) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    // Bounded: at most max + 1 rounds.
    for _ in 0..=max {
        match client.pop(channel) {
            Ok(r) if r.is_empty() => return got,
            Ok(r) => got.push(r),
            Err(status) => panic!(
                "{channel}: Pop answered {status} after {} records",
                got.len()
            ),
        }
    }
    panic!("{channel}: still not empty after {max} records");
}

// ---- byte accounting ----

/// Legacy bytes as the client counts them: what it sent, what it received.
#[derive(Debug, Default)]
pub struct Wire {
    pub sent: u64,
    pub received: u64,
}

/// Bytes of one array on the wire: `u64` length + content.
pub fn array(len: usize) -> u64 {
    8 + len as u64
}

impl Wire {
    pub fn push(&mut self, c: &mut Client, channel: &str, value: &[u8]) -> i32 {
        self.sent += 4 + array(channel.len()) + array(value.len());
        self.received += 4;
        c.push(channel, value)
    }

    pub fn pop(&mut self, c: &mut Client, channel: &str) -> Result<Vec<u8>, i32> {
        self.sent += 4 + array(channel.len());
        let reply = c.pop(channel);
        self.received += match &reply {
            Ok(value) => 4 + array(value.len()),
            Err(_) => 4,
        };
        reply
    }

    pub fn push_multi(&mut self, c: &mut Client, channels: &[&str], value: &[u8]) -> i32 {
        self.sent += 4 + channels.iter().map(|ch| array(ch.len())).sum::<u64>() + 8;
        self.sent += array(value.len());
        self.received += 4;
        c.push_multi(channels, value)
    }

    pub fn remove(&mut self, c: &mut Client, channel: &str) -> i32 {
        self.sent += 4 + array(channel.len());
        self.received += 4;
        c.remove(channel)
    }

    pub fn get_num_connections(&mut self, c: &mut Client) -> i32 {
        self.sent += 4;
        self.received += 4;
        c.get_num_connections()
    }

    pub fn consume(&mut self, c: &mut Client, channel: &str) -> i32 {
        self.sent += 4 + array(channel.len());
        self.received += 4;
        c.consume(channel)
    }

    pub fn next_record(&mut self, c: &mut Client) -> Option<Vec<u8>> {
        let record = c.next_record();
        self.received += array(record.as_ref().map_or(0, Vec::len));
        record
    }
}
