//! One neo client connection: the version handshake and authentication,
//! then the reader, which frames messages and starts or feeds requests,
//! next to the writer task that sends the outbox.
//!
//! Lives in the connection's task (and its writer and request tasks) on the
//! shard that accepted it.

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dmq_proto::neo::{
    self, check_version, encode_auth_result, failure_log_line, parse_message, parse_start,
    split_request_body, BodyError, ClientIdentity, ConsumeClientMessage, FrameError, MessageType,
    NewRequest, Start, SupportedStatus, NONCE_LEN, PROTOCOL_VERSION,
};
use futures_lite::{AsyncWriteExt, FutureExt};
use glommio::net::TcpStream;

use super::batch::NeoBatch;
use super::outbox::{Outbox, OUTBOX_HIGH_WATER_BYTES};
use super::shared::{Active, ActiveRequests, ConnShared, MAX_ACTIVE_REQUESTS};
use crate::context::ShardContext;
use crate::legacy::input::Input;
use crate::metrics::probes::{Outcome, Protocol, RequestKind};
use crate::request::neo as handlers;
use crate::route::ShardGone;

/// How long a client may take to finish the handshake and authentication.
const AUTH_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a neo connection ended other than by a clean disconnect.
#[derive(Debug, thiserror::Error)]
pub enum NeoConnError {
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error(transparent)]
    ShardGone(#[from] ShardGone),
    #[error("handshake or authentication not finished within {0:?}")]
    AuthTimeout(Duration),
}

impl NeoConnError {
    fn protocol(what: impl std::fmt::Display) -> NeoConnError {
        NeoConnError::Protocol(what.to_string())
    }

    fn is_disconnect(&self) -> bool {
        matches!(self, NeoConnError::Io(e) if matches!(
            e.kind(),
            io::ErrorKind::ConnectionReset
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::UnexpectedEof
                | io::ErrorKind::ConnectionAborted
        ))
    }
}

impl From<FrameError> for NeoConnError {
    fn from(e: FrameError) -> Self {
        NeoConnError::protocol(e)
    }
}

impl From<BodyError> for NeoConnError {
    fn from(e: BodyError) -> Self {
        NeoConnError::protocol(e)
    }
}

/// One neo client connection.
pub struct Connection {
    stream: TcpStream,
    ctx: Rc<ShardContext>,
    peer: Option<SocketAddr>,
    input: Input,
}

impl Connection {
    pub fn new(stream: TcpStream, ctx: Rc<ShardContext>) -> Connection {
        let peer = stream.peer_addr().ok();
        Connection {
            stream,
            ctx,
            peer,
            input: Input::new(),
        }
    }

    /// Serves the connection until it ends; logs why if that was not ordinary.
    pub async fn run(mut self) {
        let peer = self.peer;
        let client = match self.authenticate().await {
            Ok(Some(name)) => name,
            Ok(None) => return,
            Err(e) if e.is_disconnect() => {
                tracing::debug!(peer = ?peer, "neo connection closed during authentication: {e}");
                return;
            }
            Err(e) => {
                tracing::warn!(peer = ?peer, "neo connection: {e}");
                return;
            }
        };
        let client = match peer {
            Some(peer) => format!("{client}@{peer}"),
            None => client,
        };
        let shared = Rc::new(ConnShared {
            ctx: self.ctx.clone(),
            outbox: Outbox::default(),
            active: ActiveRequests::default(),
            client,
            aborted: RefCell::new(None),
            abort_event: event_listener::Event::new(),
        });
        let (mut reader, mut writer) = futures_lite::io::split(self.stream);
        let writer_shared = shared.clone();
        let writer_task = glommio::spawn_local(async move {
            let ctx = writer_shared.ctx.clone();
            let result = writer_shared
                .outbox
                .write_to(&mut writer, |n| ctx.probes().sent(Protocol::Neo, n))
                .await;
            let _ = writer.close().await;
            result
        });
        let result = serve(&shared, &mut reader, self.input).await;
        // Stop every request (a Consume stops its consumer on the way out), send
        // what they left, then close.
        shared.active.close_all();
        let drained = async {
            shared.active.wait_empty().await;
            true
        };
        let timeout = async {
            glommio::timer::sleep(Duration::from_secs(5)).await;
            false
        };
        if !drained.or(timeout).await {
            tracing::warn!(client = %shared.client, "neo connection: requests still running 5 s after close");
        }
        shared.outbox.close();
        let written = writer_task.await;
        match result.and(written.map_err(NeoConnError::from)) {
            Ok(()) => tracing::debug!(client = %shared.client, "neo connection closed"),
            Err(e) if e.is_disconnect() => {
                tracing::debug!(client = %shared.client, "neo connection closed: {e}")
            }
            Err(e) => tracing::warn!(client = %shared.client, "neo connection: {e}"),
        }
    }

    /// The version handshake and the authentication (spec 3.2, 3.4). Returns the
    /// client's name, or `None` when the client was refused (already logged).
    async fn authenticate(&mut self) -> Result<Option<String>, NeoConnError> {
        let ctx = self.ctx.clone();
        let handshake = async { self.handshake().await.map(Some) };
        let timeout = async {
            glommio::timer::sleep(AUTH_TIMEOUT).await;
            Err(NeoConnError::AuthTimeout(AUTH_TIMEOUT))
        };
        let shutdown = async {
            ctx.shutdown().wait().await;
            Ok(None)
        };
        handshake.or(timeout).or(shutdown).await
    }

    async fn handshake(&mut self) -> Result<String, NeoConnError> {
        // 1. The client's version byte, alone: anything sent with it is an error.
        while self.input.data().is_empty() {
            if self.input.read_from(&mut self.stream, 1).await? == 0 {
                return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
            }
        }
        if self.input.data().len() > 1 {
            return Err(NeoConnError::protocol(
                "client sent data immediately after the protocol version",
            ));
        }
        let version = self.input.data()[0];
        self.input.consume(1);
        self.stream.write_all(&[PROTOCOL_VERSION]).await?;
        check_version(version).map_err(NeoConnError::protocol)?;

        // 2. Timestamp, nonce, name and code.
        let body = self.read_auth_message().await?;
        let timestamp = neo::parse_client_timestamp(&body)?;
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::getrandom(&mut nonce)
            .map_err(|e| io::Error::other(format!("no random nonce: {e}")))?;
        let mut out = Vec::with_capacity(16);
        neo::encode_nonce(&mut out, &nonce);
        self.stream.write_all(&out).await?;

        let body = self.read_auth_message().await?;
        let identity = ClientIdentity::parse(&body)?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let credentials = self.ctx.node.credentials.get();
        let verdict = neo::verify(
            &credentials,
            identity.name,
            timestamp,
            &nonce,
            identity.code,
            now,
        );
        out.clear();
        encode_auth_result(&mut out, verdict.is_ok());
        self.stream.write_all(&out).await?;
        match verdict {
            Ok(()) => Ok(String::from_utf8_lossy(identity.name).into_owned()),
            Err(rejection) => {
                tracing::warn!(
                    peer = ?self.peer,
                    "{}",
                    failure_log_line(identity.name, &rejection)
                );
                let _ = self.stream.close().await;
                Err(io::Error::from(io::ErrorKind::ConnectionAborted).into())
            }
        }
    }

    /// Reads one Authentication message and returns its body.
    async fn read_auth_message(&mut self) -> Result<Vec<u8>, NeoConnError> {
        loop {
            match parse_message(self.input.data()) {
                Ok((message, used)) => {
                    if message.kind != MessageType::Authentication {
                        return Err(NeoConnError::protocol(
                            "request message before authentication",
                        ));
                    }
                    let body = message.body.to_vec();
                    self.input.consume(used);
                    return Ok(body);
                }
                Err(FrameError::Incomplete { needed }) => {
                    if self.input.read_from(&mut self.stream, needed).await? == 0 {
                        return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// The reader after authentication: frames messages and dispatches them, until
/// the client disconnects, breaks the protocol, or the node shuts down.
async fn serve<R>(
    shared: &Rc<ConnShared>,
    reader: &mut R,
    mut input: Input,
) -> Result<(), NeoConnError>
where
    R: futures_lite::AsyncRead + Unpin,
{
    let ctx = shared.ctx.clone();
    loop {
        // Everything complete in the buffer, then one message per owner shard.
        let mut batch = NeoBatch::default();
        let needed = loop {
            match parse_message(input.data()) {
                Ok((message, used)) => {
                    if message.kind != MessageType::Request {
                        return Err(NeoConnError::protocol(
                            "authentication message after authentication",
                        ));
                    }
                    if let Err(e) = dispatch(shared, &mut batch, message.body) {
                        // Requests before the bad message are valid: run them
                        // (their answers may not reach the client any more).
                        batch.submit(shared).await?;
                        return Err(e);
                    }
                    input.consume(used);
                }
                Err(FrameError::Incomplete { needed }) => break needed,
                Err(e) => return Err(e.into()),
            }
        };
        batch.submit(shared).await?;
        // Backpressure: a client that does not read its answers gets no new ones.
        shared.outbox.wait_below(OUTBOX_HIGH_WATER_BYTES).await;

        let read = async { Some(input.read_from(reader, needed).await) };
        let shutdown = async {
            ctx.shutdown().wait().await;
            None
        };
        let abort = async { Some(Err(io::Error::other(shared.wait_abort().await))) };
        match read.or(abort).or(shutdown).await {
            Some(Ok(0)) => return Ok(()),
            Some(Ok(n)) => ctx.probes().received(Protocol::Neo, n),
            Some(Err(e))
                if e.kind() == io::ErrorKind::Other && shared.aborted.borrow().is_some() =>
            {
                return Err(NeoConnError::Protocol(e.to_string()))
            }
            Some(Err(e)) => return Err(e.into()),
            None => {
                // Let running requests finish (a Consume stops and says so),
                // then close.
                shared.active.wait_empty().await;
                return Ok(());
            }
        }
    }
}

/// Handles one Request message: a new request, or a message for a running one.
fn dispatch(
    shared: &Rc<ConnShared>,
    batch: &mut NeoBatch,
    body: &[u8],
) -> Result<(), NeoConnError> {
    let (id, payload) = split_request_body(body)?;
    let running = {
        let map = shared.active.map.borrow();
        match map.get(&id) {
            None => None,
            Some(Active::Waiting) => {
                return Err(NeoConnError::protocol(format!(
                    "request {id}: message received while the request runs"
                )))
            }
            Some(Active::Consume { inbox, .. }) => Some(inbox.clone()),
        }
    };
    if let Some(inbox) = running {
        let message = ConsumeClientMessage::parse(payload)?;
        return inbox
            .deliver(message)
            .map_err(|e| NeoConnError::protocol(format!("request {id}: {e}")));
    }
    if shared.active.len() >= MAX_ACTIVE_REQUESTS {
        return Err(NeoConnError::protocol(
            "limit of requests per connection exceeded",
        ));
    }
    let request = match parse_start(payload)? {
        Start::Unsupported { command, status } => {
            let label = match status {
                SupportedStatus::RequestVersionNotSupported => Outcome::VersionNotSupported,
                _ => Outcome::NotSupported,
            };
            shared
                .ctx
                .probes()
                .request_done(Protocol::Neo, RequestKind::Unsupported, label, None);
            tracing::debug!(
                client = %shared.client,
                code = command.code,
                version = command.version,
                "unsupported neo request"
            );
            shared.outbox.push(|out| status.encode(out, id));
            return Ok(());
        }
        Start::Supported(request) => request,
    };
    shared
        .outbox
        .push(|out| SupportedStatus::RequestSupported.encode(out, id));
    let start = batch.started;
    match request {
        NewRequest::Push(_) | NewRequest::Pop(_) => {
            let kind = match request {
                NewRequest::Push(_) => RequestKind::Push,
                _ => RequestKind::Pop,
            };
            shared.ctx.probes().request_started(Protocol::Neo, kind);
        }
        NewRequest::Consume(_) => {}
    }
    match request {
        NewRequest::Push(push) => handlers::push::handle(shared, batch, id, &push, start),
        NewRequest::Pop(pop) => handlers::pop::handle(shared, batch, id, &pop, start),
        NewRequest::Consume(consume) => handlers::consume::start(shared, id, &consume),
    }
    Ok(())
}
