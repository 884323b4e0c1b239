//! The neo protocol with `dmq_proto::neo`: the version handshake and HMAC
//! authentication over a blocking socket, and Push v3 / Pop v1 requests, pipelined
//! on one connection and matched to their replies by request id (request `seq` has
//! id `seq + 1`; ids start at 1).

use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dmq_proto::neo::{
    check_version, encode_client_timestamp, encode_push, hmac_code, parse_auth_result,
    parse_message, parse_nonce, split_request_body, ClientIdentity, Credentials, FrameError, Key,
    MessageType, PopReply, PopRequest, PushStatus, SupportedStatus, PROTOCOL_VERSION,
};

use super::{is_timeout, Decoder, Encoder, InBuf, Mix, Op, Reply, Route, Step};
use crate::size::ValuePool;
use crate::Error;

/// A neo client's name and key.
#[derive(Clone)]
pub struct NeoCredentials {
    pub name: String,
    pub key: Key,
}

impl std::fmt::Debug for NeoCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("NeoCredentials")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl NeoCredentials {
    /// The first client of a credentials text (`name:hexkey` lines, the node's
    /// credentials file format).
    pub fn parse(text: &str) -> Result<NeoCredentials, String> {
        let credentials = Credentials::parse(text).map_err(|e| e.to_string())?;
        let name = credentials
            .names()
            .next()
            .ok_or("no name:hexkey line in the credentials")?;
        let key = *credentials.key(name).ok_or("no key")?;
        Ok(NeoCredentials {
            name: name.to_owned(),
            key,
        })
    }
}

/// Reads until the input holds `needed` bytes, or fails at `deadline`.
pub fn fill(
    stream: &mut TcpStream,
    input: &mut InBuf,
    needed: usize,
    deadline: Instant,
    peer: &str,
) -> Result<(), Error> {
    input.reserve(needed)?;
    while input.data().len() < needed {
        match input.read_from(stream) {
            Ok(0) => {
                return Err(Error::protocol(peer, "connection closed by the server"));
            }
            Ok(_) => {}
            Err(e) if is_timeout(&e) => {
                if Instant::now() >= deadline {
                    return Err(Error::Timeout(format!("{peer}: no answer in time")));
                }
            }
            Err(e) => return Err(Error::io(format!("read from {peer}"), e)),
        }
    }
    Ok(())
}

/// Reads one whole message and returns its type and a copy of its body.
fn read_message(
    stream: &mut TcpStream,
    input: &mut InBuf,
    deadline: Instant,
    peer: &str,
) -> Result<(MessageType, Vec<u8>), Error> {
    loop {
        match parse_message(input.data()) {
            Ok((message, used)) => {
                let result = (message.kind, message.body.to_vec());
                input.consume(used);
                return Ok(result);
            }
            Err(FrameError::Incomplete { needed }) => fill(stream, input, needed, deadline, peer)?,
            Err(e) => return Err(Error::protocol(peer, e)),
        }
    }
}

/// Runs the version handshake and authenticates as `credentials`.
pub fn handshake(
    stream: &mut TcpStream,
    input: &mut InBuf,
    credentials: &NeoCredentials,
    peer: &str,
    timeout: Duration,
) -> Result<(), Error> {
    let deadline = Instant::now() + timeout;
    let write = |stream: &mut TcpStream, bytes: &[u8]| {
        stream
            .write_all(bytes)
            .map_err(|e| Error::io(format!("write to {peer}"), e))
    };
    // The version byte goes alone: the node refuses bytes sent together with it.
    write(stream, &[PROTOCOL_VERSION])?;
    fill(stream, input, 1, deadline, peer)?;
    let theirs = input.data()[0];
    input.consume(1);
    check_version(theirs).map_err(|e| Error::protocol(peer, e))?;

    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(1);
    let mut out = Vec::new();
    encode_client_timestamp(&mut out, timestamp);
    write(stream, &out)?;
    let auth_body = |stream: &mut TcpStream, input: &mut InBuf| {
        let (kind, body) = read_message(stream, input, deadline, peer)?;
        if kind != MessageType::Authentication {
            return Err(Error::protocol(
                peer,
                format!("{kind:?} message during authentication"),
            ));
        }
        Ok(body)
    };
    let nonce = parse_nonce(&auth_body(stream, input)?).map_err(|e| Error::protocol(peer, e))?;
    let code = hmac_code(&credentials.key, timestamp, &nonce);
    out.clear();
    ClientIdentity {
        name: credentials.name.as_bytes(),
        code: &code,
    }
    .encode(&mut out);
    write(stream, &out)?;
    let accepted =
        parse_auth_result(&auth_body(stream, input)?).map_err(|e| Error::protocol(peer, e))?;
    if !accepted {
        return Err(Error::protocol(
            peer,
            format!("authentication of client '{}' rejected", credentials.name),
        ));
    }
    Ok(())
}

/// Neo Push v3 / Pop v1 requests of one connection.
#[derive(Debug)]
pub struct NeoEncoder {
    pub mix: Mix,
    pub route: Route,
    pub pool: Arc<ValuePool>,
}

impl Encoder for NeoEncoder {
    fn encode(&self, seq: u64, out: &mut Vec<u8>) -> usize {
        let id = seq + 1;
        let channel = self.route.channel(seq);
        match self.mix.at(seq) {
            Op::Push => {
                let value = self.pool.get(seq);
                // One channel is always within the 255-channel limit.
                if encode_push(out, id, &[channel], value).is_err() {
                    unreachable!("one channel fits a Push");
                }
                value.len()
            }
            // Neo has no ping; a ping mix is refused when the plan is made.
            Op::Pop | Op::Ping => {
                PopRequest { channel }.encode(out, id);
                0
            }
        }
    }
}

/// Neo replies: a SupportedStatus message, then the request's status.
#[derive(Debug)]
pub struct NeoDecoder {
    pub mix: Mix,
    pub peer: String,
}

impl Decoder for NeoDecoder {
    fn decode(&mut self, buf: &[u8]) -> Result<Step, Error> {
        let (message, used) = match parse_message(buf) {
            Ok(ok) => ok,
            Err(FrameError::Incomplete { needed }) => return Ok(Step::Incomplete(Some(needed))),
            Err(e) => return Err(Error::protocol(&self.peer, e)),
        };
        let protocol = |detail: String| Error::protocol(&self.peer, detail);
        if message.kind != MessageType::Request {
            return Err(protocol(format!(
                "{:?} message after authentication",
                message.kind
            )));
        }
        let (id, payload) =
            split_request_body(message.body).map_err(|e| protocol(e.to_string()))?;
        let seq = Some(id - 1);
        let reply = |reply| Ok(Step::Reply { used, seq, reply });
        if let [byte] = payload {
            if let Some(status) = SupportedStatus::from_byte(*byte) {
                return match status {
                    SupportedStatus::RequestSupported => Ok(Step::Skip(used)),
                    other => reply(Reply::Error(format!("request not supported: {other:?}"))),
                };
            }
        }
        match self.mix.at(id - 1) {
            Op::Push => match PushStatus::parse(payload).map_err(|e| protocol(e.to_string()))? {
                PushStatus::Pushed => reply(Reply::Stored),
                PushStatus::Error => reply(Reply::Error("Push answered Error".into())),
            },
            Op::Pop | Op::Ping => {
                match PopReply::parse(payload).map_err(|e| protocol(e.to_string()))? {
                    PopReply::Popped(value) => reply(Reply::Record(value.len())),
                    PopReply::Empty => reply(Reply::Empty),
                    PopReply::Error => reply(Reply::Error("Pop answered Error".into())),
                    PopReply::Subscribed => reply(Reply::Error("Pop answered Subscribed".into())),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::channel_names;
    use crate::size::SizeDist;

    #[test]
    fn credentials_take_the_first_line() {
        let line = format!("bench:{}", "0f".repeat(128));
        let credentials = NeoCredentials::parse(&line).expect("credentials");
        assert_eq!(credentials.name, "bench");
        assert_eq!(credentials.key, [0x0f; 128]);
        assert!(!format!("{credentials:?}").contains("15"));
        assert!(NeoCredentials::parse("").is_err());
        assert!(NeoCredentials::parse("bench:abc").is_err());
    }

    #[test]
    fn replies_match_requests_by_id_in_any_order() {
        let encoder = NeoEncoder {
            mix: Mix::PushPop,
            route: Route {
                channels: Arc::new(channel_names("ch", 1)),
                conn: 0,
                conns: 1,
            },
            pool: Arc::new(ValuePool::new(SizeDist::Fixed(5), 1)),
        };
        let mut requests = Vec::new();
        assert_eq!(encoder.encode(0, &mut requests), 5); // id 1: push
        assert_eq!(encoder.encode(1, &mut requests), 0); // id 2: pop
        let (first, used) = parse_message(&requests).expect("framed");
        assert_eq!(
            used + parse_message(&requests[used..]).expect("second").1,
            requests.len()
        );
        assert_eq!(first.kind, MessageType::Request);

        // The node answers the pop first, then the push.
        let mut wire = Vec::new();
        SupportedStatus::RequestSupported.encode(&mut wire, 2);
        PopReply::Popped(b"value").encode(&mut wire, 2);
        SupportedStatus::RequestSupported.encode(&mut wire, 1);
        PushStatus::Pushed.encode(&mut wire, 1);
        let mut decoder = NeoDecoder {
            mix: Mix::PushPop,
            peer: "test".into(),
        };
        let mut steps = Vec::new();
        let mut rest = &wire[..];
        while !rest.is_empty() {
            let step = decoder.decode(rest).expect("decode");
            let used = match &step {
                Step::Skip(used) | Step::Reply { used, .. } => *used,
                Step::Incomplete(_) => panic!("whole messages"),
            };
            rest = &rest[used..];
            steps.push(step);
        }
        assert!(matches!(steps[0], Step::Skip(_)));
        assert!(matches!(
            steps[1],
            Step::Reply {
                seq: Some(1),
                reply: Reply::Record(5),
                ..
            }
        ));
        assert!(matches!(
            steps[3],
            Step::Reply {
                seq: Some(0),
                reply: Reply::Stored,
                ..
            }
        ));
        assert_eq!(
            decoder.decode(&wire[..5]).expect("partial"),
            Step::Incomplete(Some(10))
        );
    }
}
