//! A small blocking neo-protocol client over `std::net::TcpStream`, built on the
//! `dmq_proto::neo` codec: the version handshake and the HMAC authentication
//! (with knobs to break every step), raw messages, and Push, Pop and Consume
//! with request ids managed by the client.
//!
//! Several requests may be in flight on one connection: messages are read in
//! arrival order and kept per request id until someone asks for them
//! ([`NeoClient::recv`]), or taken in arrival order ([`NeoClient::next_any`]).
//! Every wait is bounded: a read gives up after [`IO_TIMEOUT`] unless a shorter
//! timeout is given.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dmq_proto::neo::{
    encode_client_timestamp, encode_message, encode_push, encode_request_message, hmac_code,
    parse_auth_result, parse_message, parse_nonce, ClientIdentity, ConsumeClientMessage,
    ConsumeNodeMessage, ConsumeRequest, ConsumeStatus, FrameError, Key, MessageType, PopReply,
    PopRequest, PushStatus, RequestId, SupportedStatus, CODE_LEN, KEY_LEN, NONCE_LEN,
    PROTOCOL_VERSION,
};

use crate::{is_disconnect, IO_TIMEOUT};

/// The client name of the original test suite.
pub const TEST_NAME: &str = "test";
/// Its key: all zeros.
pub const TEST_KEY: Key = [0; KEY_LEN];

/// Push status bytes.
pub const PUSHED: u8 = PushStatus::Pushed as u8;
pub const PUSH_ERROR: u8 = PushStatus::Error as u8;

/// The current Unix time in seconds.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// A key written as 256 hex digits, as in a credentials file.
pub fn key_hex(key: &Key) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

/// A key read back from 256 hex digits.
pub fn parse_key_hex(hex: &str) -> Key {
    assert_eq!(hex.len(), 2 * KEY_LEN, "key {hex:?}");
    let mut key = [0; KEY_LEN];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
            .unwrap_or_else(|e| panic!("key {hex:?}: {e}"));
    }
    key
}

/// What a client sends during authentication; every field can be broken.
#[derive(Clone)]
pub struct Auth {
    /// The name sent in message 3.
    pub name: Vec<u8>,
    /// The key the code is made with.
    pub key: Key,
    /// The timestamp sent in message 1 (and used for the code).
    pub timestamp: u64,
    /// Flip one bit of the code.
    pub corrupt_code: bool,
}

impl Auth {
    /// The test client, now.
    pub fn test() -> Auth {
        Auth::named(TEST_NAME, TEST_KEY)
    }

    pub fn named(name: impl AsRef<[u8]>, key: Key) -> Auth {
        Auth {
            name: name.as_ref().to_vec(),
            key,
            timestamp: now_secs(),
            corrupt_code: false,
        }
    }
}

/// A neo Pop reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pop {
    Popped(Vec<u8>),
    Empty,
    Error,
    Subscribed,
}

/// A message from the node to a running Consume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumeEvent {
    /// A batch: its length on the wire (`batch_len`) and its records.
    Records {
        batch_len: usize,
        records: Vec<Vec<u8>>,
    },
    Stopped,
    ChannelRemoved,
}

impl ConsumeEvent {
    pub fn parse(payload: &[u8]) -> ConsumeEvent {
        match ConsumeNodeMessage::parse(payload) {
            Ok(ConsumeNodeMessage::Records(records)) => ConsumeEvent::Records {
                batch_len: records.encoded().len(),
                records: records.iter().map(<[u8]>::to_vec).collect(),
            },
            Ok(ConsumeNodeMessage::Stopped) => ConsumeEvent::Stopped,
            Ok(ConsumeNodeMessage::ChannelRemoved) => ConsumeEvent::ChannelRemoved,
            Err(e) => panic!("malformed Consume message from the node {payload:?}: {e}"),
        }
    }
}

/// A blocking neo client.
pub struct NeoClient {
    stream: TcpStream,
    /// Received bytes not parsed yet: `buf[head..]`.
    buf: Vec<u8>,
    head: usize,
    out: Vec<u8>,
    next_id: RequestId,
    /// Request messages read while waiting for another id.
    stash: HashMap<RequestId, VecDeque<Vec<u8>>>,
    stashed: usize,
}

impl NeoClient {
    /// Connects and authenticates as the test client; panics if refused.
    pub fn connect(addr: SocketAddr) -> NeoClient {
        let mut c = NeoClient::connect_raw(addr);
        assert!(
            c.authenticate(&Auth::test()),
            "the node refused the test client"
        );
        c
    }

    /// Connects and authenticates with `auth`; `None` when the node refused.
    pub fn connect_with(addr: SocketAddr, auth: &Auth) -> Option<NeoClient> {
        let mut c = NeoClient::connect_raw(addr);
        c.authenticate(auth).then_some(c)
    }

    /// A TCP connection with nothing sent yet.
    pub fn connect_raw(addr: SocketAddr) -> NeoClient {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        stream.set_nodelay(true).expect("nodelay");
        stream.set_write_timeout(Some(IO_TIMEOUT)).expect("timeout");
        NeoClient {
            stream,
            buf: Vec::new(),
            head: 0,
            out: Vec::new(),
            next_id: 1,
            stash: HashMap::new(),
            stashed: 0,
        }
    }

    // ---- raw bytes ----

    /// Appends raw bytes to the pending output.
    pub fn queue_raw(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    pub fn try_flush(&mut self) -> io::Result<()> {
        let result = self.stream.write_all(&self.out);
        self.out.clear();
        result
    }

    /// Writes the pending output.
    pub fn flush(&mut self) {
        self.try_flush().expect("write to the node");
    }

    /// Writes `bytes` at once (after any pending output).
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.queue_raw(bytes);
        self.flush();
    }

    fn pending(&self) -> &[u8] {
        &self.buf[self.head..]
    }

    fn consume_buf(&mut self, n: usize) {
        self.head += n;
        if self.head == self.buf.len() {
            self.buf.clear();
            self.head = 0;
        } else if self.head > 64 * 1024 && self.head > self.buf.len() / 2 {
            self.buf.drain(..self.head);
            self.head = 0;
        }
    }

    /// Reads once, waiting at most until `deadline`. `Ok(false)`: nothing came
    /// in time. A closed connection is an error ([`is_disconnect`]).
    fn fill(&mut self, deadline: Instant) -> io::Result<bool> {
        let Some(left) = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
        else {
            return Ok(false);
        };
        self.stream.set_read_timeout(Some(left))?;
        let mut chunk = [0u8; 64 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(true)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Ok(false)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// `n` raw bytes (the version byte), within `timeout`; `Ok(None)` on timeout.
    pub fn try_read_raw(&mut self, n: usize, timeout: Duration) -> io::Result<Option<Vec<u8>>> {
        let deadline = Instant::now() + timeout;
        // Bounded: every round reads at least one byte or ends at the deadline.
        while self.pending().len() < n {
            if !self.fill(deadline)? && Instant::now() >= deadline {
                return Ok(None);
            }
        }
        let bytes = self.pending()[..n].to_vec();
        self.consume_buf(n);
        Ok(Some(bytes))
    }

    /// The next whole message within `timeout`; `Ok(None)` on timeout. The
    /// node sending a malformed frame fails the test.
    pub fn try_read_message(
        &mut self,
        timeout: Duration,
    ) -> io::Result<Option<(MessageType, Vec<u8>)>> {
        let deadline = Instant::now() + timeout;
        // Bounded: every round reads at least one byte or ends at the deadline.
        loop {
            match parse_message(self.pending()) {
                Ok((message, used)) => {
                    let result = (message.kind, message.body.to_vec());
                    self.consume_buf(used);
                    return Ok(Some(result));
                }
                Err(FrameError::Incomplete { .. }) => {}
                Err(e) => panic!("the node sent a malformed frame: {e}"),
            }
            if !self.fill(deadline)? && Instant::now() >= deadline {
                return Ok(None);
            }
        }
    }

    /// The next whole message; fails the test after [`IO_TIMEOUT`] or on close.
    pub fn read_message(&mut self) -> (MessageType, Vec<u8>) {
        match self.try_read_message(IO_TIMEOUT) {
            Ok(Some(m)) => m,
            Ok(None) => panic!("no message from the node within {IO_TIMEOUT:?}"),
            Err(e) => panic!("reading a message from the node: {e}"),
        }
    }

    /// Asserts that the node closes the connection without sending anything
    /// more (EOF or reset within [`IO_TIMEOUT`]).
    pub fn expect_closed(&mut self, what: &str) {
        assert!(
            self.stashed == 0,
            "{what}: unread messages from the node: {:?}",
            self.stash
        );
        let deadline = Instant::now() + IO_TIMEOUT;
        // Bounded by the deadline.
        loop {
            assert!(
                self.pending().is_empty(),
                "{what}: expected the node to close the connection, got bytes {:?}",
                self.pending()
            );
            match self.fill(deadline) {
                Ok(true) => {}
                Ok(false) if Instant::now() >= deadline => {
                    panic!("{what}: the node did not close the connection within {IO_TIMEOUT:?}")
                }
                Ok(false) => {}
                Err(e) if is_disconnect(&e) => return,
                Err(e) => panic!("{what}: expected the node to close the connection, got {e}"),
            }
        }
    }

    /// Reads and returns whatever the node sends until it closes the
    /// connection (messages stashed earlier included, as Request bodies);
    /// fails the test if it is still open after [`IO_TIMEOUT`].
    pub fn drain_until_closed(&mut self, what: &str) -> Vec<(MessageType, Vec<u8>)> {
        let mut seen: Vec<(MessageType, Vec<u8>)> = Vec::new();
        for (id, queue) in self.stash.drain() {
            for payload in queue {
                let mut body = id.to_le_bytes().to_vec();
                body.extend(payload);
                seen.push((MessageType::Request, body));
            }
        }
        self.stashed = 0;
        let deadline = Instant::now() + IO_TIMEOUT;
        // Bounded by the deadline.
        loop {
            loop {
                match parse_message(self.pending()) {
                    Ok((message, used)) => {
                        seen.push((message.kind, message.body.to_vec()));
                        self.consume_buf(used);
                    }
                    Err(FrameError::Incomplete { .. }) => break,
                    Err(e) => panic!("{what}: the node sent a malformed frame: {e}"),
                }
            }
            match self.fill(deadline) {
                Ok(true) => {}
                Ok(false) if Instant::now() >= deadline => {
                    panic!("{what}: the node did not close the connection within {IO_TIMEOUT:?}")
                }
                Ok(false) => {}
                Err(e) if is_disconnect(&e) => {
                    assert!(
                        self.pending().is_empty(),
                        "{what}: a partial message before the close: {:?}",
                        self.pending()
                    );
                    return seen;
                }
                Err(e) => panic!("{what}: expected the node to close the connection, got {e}"),
            }
        }
    }

    // ---- handshake and authentication, step by step ----

    pub fn send_version(&mut self, version: u8) {
        self.send_raw(&[version]);
    }

    /// The node's version byte.
    pub fn read_version(&mut self) -> u8 {
        match self.try_read_raw(1, IO_TIMEOUT) {
            Ok(Some(b)) => b[0],
            Ok(None) => panic!("no version byte within {IO_TIMEOUT:?}"),
            Err(e) => panic!("reading the version byte: {e}"),
        }
    }

    /// Message 1: the timestamp.
    pub fn send_timestamp(&mut self, timestamp: u64) {
        let mut out = Vec::new();
        encode_client_timestamp(&mut out, timestamp);
        self.send_raw(&out);
    }

    /// Message 2: the nonce.
    pub fn read_nonce(&mut self) -> [u8; NONCE_LEN] {
        let (kind, body) = self.read_message();
        assert_eq!(kind, MessageType::Authentication, "the nonce message");
        parse_nonce(&body).unwrap_or_else(|e| panic!("nonce {body:?}: {e}"))
    }

    /// Message 3: the name and code.
    pub fn send_identity(&mut self, name: &[u8], code: &[u8; CODE_LEN]) {
        let mut out = Vec::new();
        ClientIdentity { name, code }.encode(&mut out);
        self.send_raw(&out);
    }

    /// Message 4: accepted or not.
    pub fn read_auth_result(&mut self) -> bool {
        let (kind, body) = self.read_message();
        assert_eq!(kind, MessageType::Authentication, "the result message");
        parse_auth_result(&body).unwrap_or_else(|e| panic!("auth result {body:?}: {e}"))
    }

    /// The whole version handshake and authentication; whether the node
    /// accepted. Every connection of the tests that is not about the
    /// handshake itself authenticates here, so this is the one place to
    /// switch to another implementation of the client's side.
    pub fn authenticate(&mut self, auth: &Auth) -> bool {
        self.send_version(PROTOCOL_VERSION);
        assert_eq!(self.read_version(), PROTOCOL_VERSION, "the node's version");
        self.send_timestamp(auth.timestamp);
        let nonce = self.read_nonce();
        let mut code = hmac_code(&auth.key, auth.timestamp, &nonce);
        if auth.corrupt_code {
            code[17] ^= 0x04;
        }
        self.send_identity(&auth.name, &code);
        self.read_auth_result()
    }

    // ---- requests ----

    /// A fresh request id (from 1 up).
    pub fn new_id(&mut self) -> RequestId {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Queues a Request message `id` + `payload`.
    pub fn queue_request(&mut self, id: RequestId, payload: &[u8]) {
        encode_request_message(&mut self.out, id, &[payload]);
    }

    /// Queues an Authentication message with `body`.
    pub fn queue_auth_message(&mut self, body: &[u8]) {
        encode_message(&mut self.out, MessageType::Authentication, &[body]);
    }

    /// The next payload for request `id`, within `timeout`; `Ok(None)` on
    /// timeout. Messages for other ids read meanwhile are kept for later.
    pub fn try_recv(&mut self, id: RequestId, timeout: Duration) -> io::Result<Option<Vec<u8>>> {
        if let Some(payload) = self.unstash(id) {
            return Ok(Some(payload));
        }
        let deadline = Instant::now() + timeout;
        // Bounded: every round takes one message or ends at the deadline.
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some((got, payload)) = self.try_next_request_message(left)? else {
                return Ok(None);
            };
            if got == id {
                return Ok(Some(payload));
            }
            self.stash.entry(got).or_default().push_back(payload);
            self.stashed += 1;
        }
    }

    /// The next payload for request `id`; fails the test after [`IO_TIMEOUT`]
    /// or on close.
    pub fn recv(&mut self, id: RequestId) -> Vec<u8> {
        match self.try_recv(id, IO_TIMEOUT) {
            Ok(Some(payload)) => payload,
            Ok(None) => panic!("no message for request {id} within {IO_TIMEOUT:?}"),
            Err(e) => panic!("waiting for request {id}: {e}"),
        }
    }

    /// The next Request message of any id: first those kept by [`NeoClient::recv`], then
    /// new ones in arrival order. `None` on timeout; fails the test on close.
    pub fn next_any(&mut self, timeout: Duration) -> Option<(RequestId, Vec<u8>)> {
        if self.stashed > 0 {
            let id = *self
                .stash
                .iter()
                .find(|(_, q)| !q.is_empty())
                .map(|(id, _)| id)
                .expect("stashed messages");
            let payload = self.unstash(id).expect("stashed message");
            return Some((id, payload));
        }
        match self.try_next_request_message(timeout) {
            Ok(m) => m,
            Err(e) => panic!("reading from the node: {e}"),
        }
    }

    fn unstash(&mut self, id: RequestId) -> Option<Vec<u8>> {
        let queue = self.stash.get_mut(&id)?;
        let payload = queue.pop_front();
        if queue.is_empty() {
            self.stash.remove(&id);
        }
        if payload.is_some() {
            self.stashed -= 1;
        }
        payload
    }

    fn try_next_request_message(
        &mut self,
        timeout: Duration,
    ) -> io::Result<Option<(RequestId, Vec<u8>)>> {
        let Some((kind, body)) = self.try_read_message(timeout)? else {
            return Ok(None);
        };
        assert_eq!(
            kind,
            MessageType::Request,
            "an Authentication message after authentication: {body:?}"
        );
        let id = u64::from_le_bytes(body[..8].try_into().expect("8 bytes"));
        assert_ne!(id, 0, "the node used request id 0");
        Ok(Some((id, body[8..].to_vec())))
    }

    /// The SupportedStatus byte of request `id`, as an `i8`.
    pub fn read_supported(&mut self, id: RequestId) -> i8 {
        let payload = self.recv(id);
        assert_eq!(
            payload.len(),
            1,
            "request {id}: SupportedStatus must be one byte: {payload:?}"
        );
        payload[0] as i8
    }

    fn expect_supported(&mut self, id: RequestId) {
        assert_eq!(
            self.read_supported(id),
            SupportedStatus::RequestSupported.code(),
            "request {id}: SupportedStatus"
        );
    }

    // ---- Push ----

    /// Queues a Push of `value` to `channels`; returns its id.
    pub fn queue_push<C: AsRef<[u8]>>(
        &mut self,
        channels: &[C],
        value: impl AsRef<[u8]>,
    ) -> RequestId {
        let id = self.new_id();
        let channels: Vec<&[u8]> = channels.iter().map(|c| c.as_ref()).collect();
        encode_push(&mut self.out, id, &channels, value.as_ref()).expect("at most 255 channels");
        id
    }

    /// The status byte of Push `id` ([`PUSHED`] or [`PUSH_ERROR`]), after
    /// SupportedStatus.
    pub fn read_push(&mut self, id: RequestId) -> u8 {
        self.expect_supported(id);
        let payload = self.recv(id);
        match PushStatus::parse(&payload) {
            Ok(status) => status.code() as u8,
            Err(e) => panic!("Push {id}: bad status {payload:?}: {e}"),
        }
    }

    pub fn push<C: AsRef<[u8]>>(&mut self, channels: &[C], value: impl AsRef<[u8]>) -> u8 {
        let id = self.queue_push(channels, value);
        self.flush();
        self.read_push(id)
    }

    // ---- Pop ----

    pub fn queue_pop(&mut self, channel: impl AsRef<[u8]>) -> RequestId {
        let id = self.new_id();
        PopRequest {
            channel: channel.as_ref(),
        }
        .encode(&mut self.out, id);
        id
    }

    pub fn read_pop(&mut self, id: RequestId) -> Pop {
        self.expect_supported(id);
        let payload = self.recv(id);
        match PopReply::parse(&payload) {
            Ok(PopReply::Popped(value)) => Pop::Popped(value.to_vec()),
            Ok(PopReply::Empty) => Pop::Empty,
            Ok(PopReply::Error) => Pop::Error,
            Ok(PopReply::Subscribed) => Pop::Subscribed,
            Err(e) => panic!("Pop {id}: bad reply {payload:?}: {e}"),
        }
    }

    pub fn pop(&mut self, channel: impl AsRef<[u8]>) -> Pop {
        let id = self.queue_pop(channel);
        self.flush();
        self.read_pop(id)
    }

    // ---- Consume ----

    pub fn queue_consume(
        &mut self,
        channel: impl AsRef<[u8]>,
        subscriber: impl AsRef<[u8]>,
    ) -> RequestId {
        let id = self.new_id();
        ConsumeRequest {
            channel: channel.as_ref(),
            subscriber: subscriber.as_ref(),
        }
        .encode(&mut self.out, id);
        id
    }

    /// The start status of Consume `id`, after SupportedStatus.
    pub fn read_consume_start(&mut self, id: RequestId) -> ConsumeStatus {
        self.expect_supported(id);
        let payload = self.recv(id);
        ConsumeStatus::parse(&payload)
            .unwrap_or_else(|e| panic!("Consume {id}: bad start status {payload:?}: {e}"))
    }

    /// Starts a Consume and waits for Started; returns its id.
    pub fn consume(
        &mut self,
        channel: impl AsRef<[u8]>,
        subscriber: impl AsRef<[u8]>,
    ) -> RequestId {
        let id = self.queue_consume(channel, subscriber);
        self.flush();
        assert_eq!(
            self.read_consume_start(id),
            ConsumeStatus::Started,
            "Consume {id}"
        );
        id
    }

    pub fn queue_consume_message(&mut self, id: RequestId, message: ConsumeClientMessage) {
        message.encode(&mut self.out, id);
    }

    /// Sends Continue for Consume `id`.
    pub fn send_continue(&mut self, id: RequestId) {
        self.queue_consume_message(id, ConsumeClientMessage::Continue);
        self.flush();
    }

    /// Sends Stop for Consume `id`.
    pub fn send_stop(&mut self, id: RequestId) {
        self.queue_consume_message(id, ConsumeClientMessage::Stop);
        self.flush();
    }

    /// The next message for Consume `id` within `timeout`; `None` on timeout.
    pub fn try_next_event(&mut self, id: RequestId, timeout: Duration) -> Option<ConsumeEvent> {
        match self.try_recv(id, timeout) {
            Ok(payload) => payload.map(|p| ConsumeEvent::parse(&p)),
            Err(e) => panic!("Consume {id}: reading from the node: {e}"),
        }
    }

    /// The next message for Consume `id`.
    pub fn next_event(&mut self, id: RequestId) -> ConsumeEvent {
        ConsumeEvent::parse(&self.recv(id))
    }

    /// The next Records batch of Consume `id` (not acknowledged yet).
    pub fn next_records(&mut self, id: RequestId) -> Vec<Vec<u8>> {
        match self.next_event(id) {
            ConsumeEvent::Records { records, .. } => records,
            other => panic!("Consume {id}: expected Records, got {other:?}"),
        }
    }

    /// Sends Stop and returns the records that still came before Stopped.
    pub fn stop_consume(&mut self, id: RequestId) -> Vec<Vec<u8>> {
        self.send_stop(id);
        let mut late = Vec::new();
        // Bounded: at most one batch outstanding plus one poll's worth.
        for _ in 0..1000 {
            match self.next_event(id) {
                ConsumeEvent::Records { records, .. } => late.extend(records),
                ConsumeEvent::Stopped => return late,
                ConsumeEvent::ChannelRemoved => {
                    panic!("Consume {id}: ChannelRemoved after Stop")
                }
            }
        }
        panic!("Consume {id}: no Stopped after 1000 messages");
    }
}

/// Subscribes `subscriber` ("" = the default subscriber) to `channel` of the
/// node at `addr` without reading anything: a neo Consume that is stopped at
/// once (the subscription outlives its consumer). Call it before records are
/// pushed to the channel.
pub fn subscribe(addr: SocketAddr, channel: &str, subscriber: &str) {
    let mut c = NeoClient::connect(addr);
    let id = c.consume(channel, subscriber);
    let late = c.stop_consume(id);
    assert!(
        late.is_empty(),
        "{subscriber}@{channel}: subscribing received {} records",
        late.len()
    );
}

/// Reads batches of Consume `id` (acknowledging each with Continue) until at
/// least `n` records came; returns them in arrival order.
pub fn receive(c: &mut NeoClient, id: RequestId, n: usize) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    // Bounded: every batch holds at least one record; each wait is bounded.
    while got.len() < n {
        let batch = c.next_records(id);
        assert!(!batch.is_empty(), "Consume {id}: an empty Records batch");
        got.extend(batch);
        c.send_continue(id);
    }
    got
}
