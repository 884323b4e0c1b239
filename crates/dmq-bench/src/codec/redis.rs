//! Redis as the side-by-side peer: RESP2 written by hand (a command is an array of
//! bulk strings) and a reply parser that checks every length and terminator, so a
//! reply split anywhere is simply incomplete and a malformed one is an error, never
//! a panic.
//!
//! Requests: `LPUSH key value` (push), `RPOP key` (pop; `BRPOP key 1`, the blocking
//! form, when asked), `PING`. `LPUSH` + `RPOP` make each list a FIFO queue, as a dmq
//! channel is (`BLPOP` would take from the end `LPUSH` pushes to, a stack).

use std::io::Write;
use std::sync::Arc;

use super::{Decoder, Encoder, Mix, Op, Reply, Route, Step};
use crate::size::ValuePool;
use crate::Error;

/// Longest bulk string Redis sends (its `proto-max-bulk-len` default).
pub const MAX_BULK_BYTES: usize = 512 * 1024 * 1024;
/// Longest line of a simple string, error or length.
const MAX_LINE_BYTES: usize = 64 * 1024;
/// Deepest nesting of arrays accepted.
const MAX_DEPTH: usize = 8;
/// Most elements in one array reply.
const MAX_ARRAY_LEN: usize = 1 << 20;

/// One RESP2 value, borrowed from the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resp<'a> {
    Simple(&'a [u8]),
    Error(&'a [u8]),
    Int(i64),
    /// `None` is the null bulk string `$-1`.
    Bulk(Option<&'a [u8]>),
    /// `None` is the null array `*-1`.
    Array(Option<Vec<Resp<'a>>>),
}

/// Why a reply cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RespError {
    #[error("unknown RESP type byte {0:#04x}")]
    UnknownType(u8),
    #[error("bad length or integer '{0}'")]
    BadNumber(String),
    #[error("line longer than {MAX_LINE_BYTES} bytes")]
    LineTooLong,
    #[error("bulk string of {0} bytes is too long")]
    BulkTooLong(i64),
    #[error("bulk string not ended by CRLF")]
    BadTerminator,
    #[error("array too long or nested too deep")]
    ArrayTooBig,
}

/// Parses the value at the start of `buf`: `Ok(None)` if it is not all there yet,
/// else the value and its length in bytes.
pub fn parse(buf: &[u8]) -> Result<Option<(Resp<'_>, usize)>, RespError> {
    parse_at(buf, 0, 0)
}

/// The line starting at `pos` (without its CRLF) and the position after the CRLF.
fn line(buf: &[u8], pos: usize) -> Result<Option<(&[u8], usize)>, RespError> {
    let rest = &buf[pos..];
    match rest.windows(2).position(|w| w == b"\r\n") {
        Some(end) => Ok(Some((&rest[..end], pos + end + 2))),
        None if rest.len() > MAX_LINE_BYTES => Err(RespError::LineTooLong),
        None => Ok(None),
    }
}

fn number(text: &[u8]) -> Result<i64, RespError> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| RespError::BadNumber(String::from_utf8_lossy(text).into_owned()))
}

fn parse_at(buf: &[u8], pos: usize, depth: usize) -> Result<Option<(Resp<'_>, usize)>, RespError> {
    let Some(&kind) = buf.get(pos) else {
        return Ok(None);
    };
    let Some((text, next)) = line(buf, pos + 1)? else {
        return Ok(None);
    };
    let value = match kind {
        b'+' => Resp::Simple(text),
        b'-' => Resp::Error(text),
        b':' => Resp::Int(number(text)?),
        b'$' => {
            let len = number(text)?;
            if len == -1 {
                return Ok(Some((Resp::Bulk(None), next)));
            }
            let len_ok = usize::try_from(len)
                .ok()
                .filter(|&l| l <= MAX_BULK_BYTES)
                .ok_or(RespError::BulkTooLong(len))?;
            let end = next + len_ok;
            if buf.len() < end + 2 {
                return Ok(None);
            }
            if &buf[end..end + 2] != b"\r\n" {
                return Err(RespError::BadTerminator);
            }
            return Ok(Some((Resp::Bulk(Some(&buf[next..end])), end + 2)));
        }
        b'*' => {
            let len = number(text)?;
            if len == -1 {
                return Ok(Some((Resp::Array(None), next)));
            }
            let len = usize::try_from(len)
                .ok()
                .filter(|&l| l <= MAX_ARRAY_LEN && depth < MAX_DEPTH)
                .ok_or(RespError::ArrayTooBig)?;
            let mut items = Vec::with_capacity(len.min(16));
            let mut at = next;
            for _ in 0..len {
                let Some((item, after)) = parse_at(buf, at, depth + 1)? else {
                    return Ok(None);
                };
                items.push(item);
                at = after;
            }
            return Ok(Some((Resp::Array(Some(items)), at)));
        }
        other => return Err(RespError::UnknownType(other)),
    };
    Ok(Some((value, next)))
}

/// Appends a command: an array of bulk strings. Runs once per request, so the
/// lengths are formatted straight into `out`, not through a `String` each.
pub fn encode_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    // Writing to a Vec cannot fail.
    let _ = write!(out, "*{}\r\n", args.len());
    for arg in args {
        let _ = write!(out, "${}\r\n", arg.len());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

/// Redis requests of one connection.
#[derive(Debug)]
pub struct RedisEncoder {
    pub mix: Mix,
    pub route: Route,
    pub pool: Arc<ValuePool>,
    /// Pop with `BRPOP key 1` instead of `RPOP key`.
    pub blocking_pop: bool,
}

impl Encoder for RedisEncoder {
    fn encode(&self, seq: u64, out: &mut Vec<u8>) -> usize {
        let key = self.route.channel(seq);
        match self.mix.at(seq) {
            Op::Push => {
                let value = self.pool.get(seq);
                encode_command(out, &[b"LPUSH", key, value]);
                value.len()
            }
            Op::Pop if self.blocking_pop => {
                encode_command(out, &[b"BRPOP", key, b"1"]);
                0
            }
            Op::Pop => {
                encode_command(out, &[b"RPOP", key]);
                0
            }
            Op::Ping => {
                encode_command(out, &[b"PING"]);
                0
            }
        }
    }
}

/// Redis replies, in request order.
#[derive(Debug)]
pub struct RedisDecoder {
    pub mix: Mix,
    pub peer: String,
    index: u64,
}

impl RedisDecoder {
    /// A decoder for replies from `peer`.
    pub fn new(mix: Mix, peer: impl Into<String>) -> RedisDecoder {
        RedisDecoder {
            mix,
            peer: peer.into(),
            index: 0,
        }
    }
}

impl Decoder for RedisDecoder {
    fn decode(&mut self, buf: &[u8]) -> Result<Step, Error> {
        let Some((value, used)) = parse(buf).map_err(|e| Error::protocol(&self.peer, e))? else {
            return Ok(Step::Incomplete(None));
        };
        let op = self.mix.at(self.index);
        let reply = match (op, value) {
            (_, Resp::Error(text)) => Reply::Error(String::from_utf8_lossy(text).into_owned()),
            (Op::Push, Resp::Int(_)) => Reply::Stored,
            (Op::Pop, Resp::Bulk(Some(v))) => Reply::Record(v.len()),
            (Op::Pop, Resp::Bulk(None) | Resp::Array(None)) => Reply::Empty,
            (Op::Pop, Resp::Array(Some(items))) => match items.as_slice() {
                [_key, Resp::Bulk(Some(v))] => Reply::Record(v.len()),
                _ => {
                    return Err(Error::protocol(
                        &self.peer,
                        "BRPOP reply is not [key, value]",
                    ))
                }
            },
            (Op::Ping, Resp::Simple(b"PONG")) => Reply::Round,
            (op, other) => {
                return Err(Error::protocol(
                    &self.peer,
                    format!("unexpected reply to {op:?}: {other:?}"),
                ))
            }
        };
        self.index += 1;
        Ok(Step::Reply {
            used,
            seq: None,
            reply,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::channel_names;
    use crate::size::SizeDist;

    #[test]
    fn command_encoding() {
        let mut out = Vec::new();
        encode_command(&mut out, &[b"LPUSH", b"k", b"hello"]);
        assert_eq!(out, b"*3\r\n$5\r\nLPUSH\r\n$1\r\nk\r\n$5\r\nhello\r\n");
        let encoder = RedisEncoder {
            mix: Mix::PushPop,
            route: Route {
                channels: Arc::new(channel_names("q", 2)),
                conn: 1,
                conns: 2,
            },
            pool: Arc::new(ValuePool::new(SizeDist::Fixed(3), 1)),
            blocking_pop: false,
        };
        let mut out = Vec::new();
        assert_eq!(encoder.encode(0, &mut out), 3);
        assert_eq!(encoder.encode(1, &mut out), 0);
        assert_eq!(
            out,
            b"*3\r\n$5\r\nLPUSH\r\n$2\r\nq1\r\n$3\r\nxxx\r\n*2\r\n$4\r\nRPOP\r\n$2\r\nq1\r\n"
        );
    }

    #[test]
    fn every_reply_kind_parses_and_every_prefix_is_incomplete() {
        let cases: [(&[u8], Resp<'_>); 8] = [
            (b"+PONG\r\n", Resp::Simple(b"PONG")),
            (b"-ERR wrong\r\n", Resp::Error(b"ERR wrong")),
            (b":12345\r\n", Resp::Int(12345)),
            (b"$5\r\nhe\r\no\r\n", Resp::Bulk(Some(b"he\r\no"))),
            (b"$0\r\n\r\n", Resp::Bulk(Some(b""))),
            (b"$-1\r\n", Resp::Bulk(None)),
            (b"*-1\r\n", Resp::Array(None)),
            (
                b"*2\r\n$1\r\nk\r\n$3\r\nabc\r\n",
                Resp::Array(Some(vec![Resp::Bulk(Some(b"k")), Resp::Bulk(Some(b"abc"))])),
            ),
        ];
        for (wire, value) in cases {
            assert_eq!(parse(wire), Ok(Some((value, wire.len()))));
            for len in 0..wire.len() {
                assert_eq!(parse(&wire[..len]), Ok(None), "{wire:?} cut at {len}");
            }
        }
    }

    #[test]
    fn malformed_replies_are_errors() {
        assert_eq!(parse(b"?x\r\n"), Err(RespError::UnknownType(b'?')));
        assert!(matches!(parse(b":12a\r\n"), Err(RespError::BadNumber(_))));
        assert!(matches!(parse(b"$-5\r\n"), Err(RespError::BulkTooLong(-5))));
        assert_eq!(parse(b"$2\r\nabXY"), Err(RespError::BadTerminator));
        assert!(matches!(
            parse(b"$99999999999\r\n"),
            Err(RespError::BulkTooLong(_))
        ));
        let long = vec![b'+'; MAX_LINE_BYTES + 10];
        assert_eq!(parse(&long), Err(RespError::LineTooLong));
        let deep = "*1\r\n".repeat(MAX_DEPTH + 2);
        assert_eq!(parse(deep.as_bytes()), Err(RespError::ArrayTooBig));
    }

    #[test]
    fn decoder_maps_replies_in_order() {
        let mut decoder = RedisDecoder::new(Mix::PushPop, "redis");
        let wire = b":1\r\n$3\r\nabc\r\n:1\r\n$-1\r\n-OOM full\r\n";
        let mut rest = &wire[..];
        let mut replies = Vec::new();
        while !rest.is_empty() {
            match decoder.decode(rest).expect("decode") {
                Step::Reply { used, reply, .. } => {
                    rest = &rest[used..];
                    replies.push(reply);
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(
            replies,
            [
                Reply::Stored,
                Reply::Record(3),
                Reply::Stored,
                Reply::Empty,
                Reply::Error("OOM full".into())
            ]
        );
        let mut ping = RedisDecoder::new(Mix::Ping, "redis");
        assert!(ping.decode(b"+OK\r\n").is_err());
    }
}
