//! The raw loopback target (`dmq-bench echo-server`): a "null node" that decodes
//! legacy requests with `dmq_proto::legacy` and answers each with the bytes the
//! node would send, storing nothing. Push and PushMulti get a 4-byte 200, Pop a
//! 200 and an empty value, GetNumConnections 406, RemoveChannel 200; Produce and
//! ProduceMulti get 200 and their record streams are read and dropped; Consume
//! gets 200 and then nothing. One thread per connection, as the generator.
//!
//! It is the ceiling of a request pattern on this machine: the same system calls
//! and bytes as the node, with no queue and no cross-core hop behind them.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};

use dmq_proto::legacy::{
    encode_array, encode_status, parse, parse_stream_item, DecodeError, Request, Status, StreamItem,
};

use crate::codec::InBuf;
use crate::Error;

/// Binds `listen` and returns the listener and its address (port 0 picks one).
pub fn bind(listen: &str) -> Result<(TcpListener, SocketAddr), Error> {
    let listener = TcpListener::bind(listen).map_err(|e| Error::io(format!("bind {listen}"), e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::io("local address", e))?;
    Ok((listener, addr))
}

/// Serves connections until the process is stopped.
pub fn serve(listener: TcpListener) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        std::thread::spawn(move || {
            // A connection that breaks only ends its own thread.
            let _ = handle(stream);
        });
    }
}

/// Where a connection is in the protocol.
enum State {
    /// Requests.
    Requests,
    /// Inside a Produce record stream, until the empty record.
    Stream,
    /// After Consume: the client says nothing more that we answer.
    Consuming,
}

/// Serves one connection until the client closes it or sends garbage.
pub fn handle(mut stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut input = InBuf::new();
    let mut out = Vec::with_capacity(64 * 1024);
    let mut state = State::Requests;
    loop {
        let n = input.read_from(&mut stream)?;
        if n == 0 {
            return Ok(());
        }
        let mut needed = None;
        loop {
            let data = input.data();
            if data.is_empty() {
                break;
            }
            match state {
                State::Requests => match parse(data) {
                    Ok((request, used)) => {
                        state = answer(&request, &mut out);
                        input.consume(used);
                    }
                    Err(DecodeError::Incomplete { needed: n }) => {
                        needed = Some(n);
                        break;
                    }
                    Err(_) => return Ok(()),
                },
                State::Stream => match parse_stream_item(data) {
                    Ok((StreamItem::Record(_), used)) => input.consume(used),
                    Ok((StreamItem::End, used)) => {
                        input.consume(used);
                        state = State::Requests;
                    }
                    Err(DecodeError::Incomplete { needed: n }) => {
                        needed = Some(n);
                        break;
                    }
                    Err(_) => return Ok(()),
                },
                State::Consuming => {
                    let len = data.len();
                    input.consume(len);
                }
            }
        }
        if let Some(needed) = needed {
            if input.reserve(needed).is_err() {
                return Ok(());
            }
        }
        if !out.is_empty() {
            stream.write_all(&out)?;
            out.clear();
        }
    }
}

/// Appends the node's reply to `request` and tells what comes next.
fn answer(request: &Request<'_>, out: &mut Vec<u8>) -> State {
    match request {
        Request::Push { .. } | Request::PushMulti { .. } | Request::RemoveChannel { .. } => {
            encode_status(out, Status::Ok);
            State::Requests
        }
        Request::Pop { .. } => {
            encode_status(out, Status::Ok);
            encode_array(out, &[]);
            State::Requests
        }
        Request::GetNumConnections => {
            encode_status(out, Status::NotSupported);
            State::Requests
        }
        Request::Produce { .. } | Request::ProduceMulti { .. } => {
            encode_status(out, Status::Ok);
            State::Stream
        }
        Request::Consume { .. } => {
            encode_status(out, Status::Ok);
            State::Consuming
        }
    }
}
