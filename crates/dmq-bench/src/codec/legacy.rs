//! The legacy protocol, encoded and decoded with `dmq_proto::legacy`: Push, Pop and
//! GetNumConnections (the ping: the node answers it 406 without touching a queue).
//! Replies come in request order.

use std::sync::Arc;
use std::time::Instant;

use dmq_proto::legacy::{parse_array, parse_status, DecodeError, Request};

use super::{stamp_value, Decoder, Encoder, Mix, Op, Reply, Route, Step};
use crate::size::ValuePool;
use crate::Error;

/// Legacy status 200.
pub const STATUS_OK: i32 = 200;
/// Legacy status 406, GetNumConnections' answer.
pub const STATUS_NOT_SUPPORTED: i32 = 406;

/// Legacy requests of one connection.
#[derive(Debug)]
pub struct LegacyEncoder {
    pub mix: Mix,
    pub route: Route,
    pub pool: Arc<ValuePool>,
    /// When set, the first 8 bytes of every pushed value are the send time (ns
    /// since this instant), for fanout's end-to-end latency.
    pub stamp_epoch: Option<Instant>,
}

impl Encoder for LegacyEncoder {
    fn encode(&self, seq: u64, out: &mut Vec<u8>) -> usize {
        let channel = self.route.channel(seq);
        match self.mix.at(seq) {
            Op::Push => {
                let value = self.pool.get(seq);
                Request::Push { channel, value }.encode(out);
                if let Some(epoch) = self.stamp_epoch {
                    stamp_value(out, value.len(), epoch);
                }
                value.len()
            }
            Op::Pop => {
                Request::Pop { channel }.encode(out);
                0
            }
            Op::Ping => {
                Request::GetNumConnections.encode(out);
                0
            }
        }
    }
}

/// Legacy replies, in request order.
#[derive(Debug)]
pub struct LegacyDecoder {
    pub mix: Mix,
    pub peer: String,
    /// Replies decoded so far: the next one answers request `index`.
    index: u64,
}

impl LegacyDecoder {
    /// A decoder for replies from `peer`.
    pub fn new(mix: Mix, peer: impl Into<String>) -> LegacyDecoder {
        LegacyDecoder {
            mix,
            peer: peer.into(),
            index: 0,
        }
    }

    fn error(&self, e: DecodeError) -> Error {
        Error::protocol(&self.peer, e)
    }
}

impl Decoder for LegacyDecoder {
    fn decode(&mut self, buf: &[u8]) -> Result<Step, Error> {
        let (status, mut used) = match parse_status(buf) {
            Ok(ok) => ok,
            Err(DecodeError::Incomplete { needed }) => return Ok(Step::Incomplete(Some(needed))),
            Err(e) => return Err(self.error(e)),
        };
        let reply = match self.mix.at(self.index) {
            Op::Push if status == STATUS_OK => Reply::Stored,
            Op::Push => Reply::Error(format!("Push answered status {status}")),
            Op::Pop if status == STATUS_OK => match parse_array(&buf[used..]) {
                Ok((value, n)) => {
                    used += n;
                    if value.is_empty() {
                        Reply::Empty
                    } else {
                        Reply::Record(value.len())
                    }
                }
                Err(DecodeError::Incomplete { needed }) => {
                    return Ok(Step::Incomplete(Some(used + needed)))
                }
                Err(e) => return Err(self.error(e)),
            },
            Op::Pop => Reply::Error(format!("Pop answered status {status}")),
            Op::Ping if status == STATUS_NOT_SUPPORTED || status == STATUS_OK => Reply::Round,
            Op::Ping => Reply::Error(format!("GetNumConnections answered status {status}")),
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
    use dmq_proto::legacy::{encode_array, encode_status, Status};

    fn encoder(mix: Mix) -> LegacyEncoder {
        LegacyEncoder {
            mix,
            route: Route {
                channels: Arc::new(channel_names("ch", 1)),
                conn: 0,
                conns: 1,
            },
            pool: Arc::new(ValuePool::new(SizeDist::Fixed(2), 1)),
            stamp_epoch: None,
        }
    }

    #[test]
    fn push_is_the_spec_bytes() {
        let mut out = Vec::new();
        assert_eq!(encoder(Mix::Push).encode(0, &mut out), 2);
        let (request, used) = dmq_proto::legacy::parse(&out).expect("parse");
        assert_eq!(used, out.len());
        assert_eq!(
            request,
            Request::Push {
                channel: b"ch0",
                value: b"xx"
            }
        );
    }

    #[test]
    fn push_pop_replies_in_order_even_when_split() {
        let mut wire = Vec::new();
        encode_status(&mut wire, Status::Ok); // push
        encode_status(&mut wire, Status::Ok); // pop: a value
        encode_array(&mut wire, b"abc");
        encode_status(&mut wire, Status::Ok); // push
        encode_status(&mut wire, Status::Ok); // pop: empty
        encode_array(&mut wire, b"");
        encode_status(&mut wire, Status::Error); // push refused
        let mut decoder = LegacyDecoder::new(Mix::PushPop, "test");
        let mut replies = Vec::new();
        let mut pos = 0;
        // Feed one byte more at a time: Incomplete until a reply is whole.
        let mut have = 0;
        while pos < wire.len() {
            match decoder.decode(&wire[pos..have]).expect("decode") {
                Step::Incomplete(needed) => {
                    assert!(needed.is_some_and(|n| n > have - pos));
                    have += 1;
                }
                Step::Reply { used, reply, .. } => {
                    pos += used;
                    replies.push(reply);
                }
                Step::Skip(_) => panic!("legacy has nothing to skip"),
            }
        }
        assert_eq!(
            replies,
            [
                Reply::Stored,
                Reply::Record(3),
                Reply::Stored,
                Reply::Empty,
                Reply::Error("Push answered status 500".into())
            ]
        );
    }

    #[test]
    fn ping_is_get_num_connections() {
        let mut out = Vec::new();
        assert_eq!(encoder(Mix::Ping).encode(0, &mut out), 0);
        assert_eq!(out, 8i32.to_le_bytes());
        let mut decoder = LegacyDecoder::new(Mix::Ping, "test");
        let step = decoder.decode(&406i32.to_le_bytes()).expect("decode");
        assert_eq!(
            step,
            Step::Reply {
                used: 4,
                seq: None,
                reply: Reply::Round
            }
        );
    }
}
