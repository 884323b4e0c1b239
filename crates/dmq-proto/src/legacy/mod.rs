//! The legacy ("classic swarm") protocol of the original DMQ node (spec §2).
//!
//! A connection carries requests back to back with no framing of their own: each is an
//! `i32` command code followed by that command's fields, so the only way to find where
//! a request ends is to decode it. [`check`] does that without allocating; [`parse`]
//! returns the request borrowed from the buffer. Produce, ProduceMulti and Consume are
//! followed, after the node's status, by a record stream read with
//! [`parse_stream_item`]. Replies are written with the `encode_*` functions.

mod consume;
mod error;
mod get_num_connections;
mod pop;
mod produce;
mod produce_multi;
mod push;
mod push_multi;
mod remove_channel;
#[cfg(test)]
mod test_util;
mod wire;

pub use error::DecodeError;
pub use wire::{
    encode_array, encode_channel_list, encode_status, encode_stream_end, parse_array, parse_status,
    parse_stream_item, ChannelList, ChannelListIter, StreamItem,
};

use wire::{Reader, ARRAY_PREFIX_LEN, CODE_LEN};

/// Longest array the node accepts: a channel name, a value, a list element or a stream
/// record (spec §2.6, 10 MiB). Longer ones close the connection.
pub const MAX_ARRAY_LEN: usize = 10 * 1024 * 1024;

/// Longest encoded channel string list, length prefixes and terminator included. The
/// original has no such limit; ours keeps every request, and so every read buffer,
/// bounded.
pub const MAX_LIST_BYTES: usize = 10 * 1024 * 1024;

/// No request can be longer, so a connection never needs a bigger buffer.
///
/// A request is a code, then one channel array or one channel list, then at most one
/// value array (Push, PushMulti). A single channel array (`8 + MAX_ARRAY_LEN`) is 8
/// bytes longer than the longest list, so it sets the bound.
pub const MAX_REQUEST_LEN: usize = CODE_LEN
    + max(ARRAY_PREFIX_LEN + MAX_ARRAY_LEN, MAX_LIST_BYTES)
    + ARRAY_PREFIX_LEN
    + MAX_ARRAY_LEN;

const fn max(a: usize, b: usize) -> usize {
    if a > b {
        a
    } else {
        b
    }
}

/// The legacy commands the node recognises (spec §2.3). Codes 3, 4, 5 (removed Get*
/// requests), 7 and 13 (never public) and 0 are deliberately absent: the original drops
/// the connection on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum Command {
    /// Push one value to one channel.
    Push = 1,
    /// Pop one value from one channel.
    Pop = 2,
    /// Subscribe to a channel and receive its records as a stream.
    Consume = 6,
    /// Recognised but always answered 406 NotSupported.
    GetNumConnections = 8,
    /// Push one value to several channels.
    PushMulti = 9,
    /// Push a stream of records to one channel.
    Produce = 10,
    /// Push a stream of records to several channels.
    ProduceMulti = 11,
    /// Remove a channel and all its data.
    RemoveChannel = 12,
}

impl Command {
    /// The command with this wire code, if the node serves it.
    pub fn from_code(code: i32) -> Option<Command> {
        Some(match code {
            1 => Command::Push,
            2 => Command::Pop,
            6 => Command::Consume,
            8 => Command::GetNumConnections,
            9 => Command::PushMulti,
            10 => Command::Produce,
            11 => Command::ProduceMulti,
            12 => Command::RemoveChannel,
            _ => return None,
        })
    }

    /// The wire code.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// The name used in `stats.log` (`request/<Name>/…`, spec §7.1) and in logs.
    pub fn name(self) -> &'static str {
        match self {
            Command::Push => "Push",
            Command::Pop => "Pop",
            Command::Consume => "Consume",
            Command::GetNumConnections => "GetNumConnections",
            Command::PushMulti => "PushMulti",
            Command::Produce => "Produce",
            Command::ProduceMulti => "ProduceMulti",
            Command::RemoveChannel => "RemoveChannel",
        }
    }
}

/// Status codes (spec §2.4). The node sends 200, 406, 408, 409 and 500; the others
/// exist so that clients can name every code the original defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum Status {
    /// The request succeeded (and, for Pop, a value follows).
    Ok = 200,
    /// Never sent by the node; clients skip it.
    InvalidRequest = 400,
    /// Never sent by the node; clients skip it.
    WrongNode = 404,
    /// The command is recognised but not implemented (GetNumConnections).
    NotSupported = 406,
    /// Never sent: a full memory queue spills to disk instead.
    OutOfMemory = 407,
    /// Push or PushMulti with an empty value.
    EmptyValue = 408,
    /// A channel name is not `[A-Za-z0-9_-]+`.
    BadChannelName = 409,
    /// Never sent: too-long arrays close the connection instead.
    ValueTooBig = 410,
    /// The request failed; legacy clients treat it as fatal for the connection.
    Error = 500,
}

impl Status {
    /// The wire code.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// The status with this wire code, if it is one the original defines (0, Undefined,
    /// is not: clients treat it, like any unknown code, as fatal).
    pub fn from_code(code: i32) -> Option<Status> {
        Some(match code {
            200 => Status::Ok,
            400 => Status::InvalidRequest,
            404 => Status::WrongNode,
            406 => Status::NotSupported,
            407 => Status::OutOfMemory,
            408 => Status::EmptyValue,
            409 => Status::BadChannelName,
            410 => Status::ValueTooBig,
            500 => Status::Error,
            _ => return None,
        })
    }

    /// The status as it goes on the wire.
    pub fn to_le_bytes(self) -> [u8; 4] {
        self.code().to_le_bytes()
    }
}

/// A legacy request, borrowed from the buffer it was decoded from (spec §2.5).
///
/// Channel names are raw bytes: their validity (status 409) is the node's business.
/// Produce, ProduceMulti and Consume carry only their channels; their record streams
/// follow the node's status and are read with [`parse_stream_item`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request<'a> {
    /// Push `value` to `channel`.
    Push {
        /// Channel name.
        channel: &'a [u8],
        /// The value; empty is decodable and answered 408 by the node.
        value: &'a [u8],
    },
    /// Pop one value from `channel`.
    Pop {
        /// Channel name.
        channel: &'a [u8],
    },
    /// Consume `channel` as its default subscriber.
    Consume {
        /// Channel name.
        channel: &'a [u8],
    },
    /// Ask for the connection count (always answered 406).
    GetNumConnections,
    /// Push `value` to every channel in `channels`.
    PushMulti {
        /// Channel names, duplicates included.
        channels: ChannelList<'a>,
        /// The value; empty is decodable and answered 408 by the node.
        value: &'a [u8],
    },
    /// Start a record stream into `channel`.
    Produce {
        /// Channel name.
        channel: &'a [u8],
    },
    /// Start a record stream into every channel in `channels`.
    ProduceMulti {
        /// Channel names, duplicates included.
        channels: ChannelList<'a>,
    },
    /// Remove `channel`.
    RemoveChannel {
        /// Channel name.
        channel: &'a [u8],
    },
}

impl Request<'_> {
    /// The command of this request.
    pub fn command(&self) -> Command {
        match self {
            Request::Push { .. } => Command::Push,
            Request::Pop { .. } => Command::Pop,
            Request::Consume { .. } => Command::Consume,
            Request::GetNumConnections => Command::GetNumConnections,
            Request::PushMulti { .. } => Command::PushMulti,
            Request::Produce { .. } => Command::Produce,
            Request::ProduceMulti { .. } => Command::ProduceMulti,
            Request::RemoveChannel { .. } => Command::RemoveChannel,
        }
    }

    /// Appends the request as a client sends it: the code, then its fields; channel
    /// lists end with the empty array. Lengths are not checked against the limits.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.command().code().to_le_bytes());
        match *self {
            Request::Push { channel, value } => push::encode(out, channel, value),
            Request::Pop { channel } => pop::encode(out, channel),
            Request::Consume { channel } => consume::encode(out, channel),
            Request::GetNumConnections => get_num_connections::encode(out),
            Request::PushMulti { channels, value } => push_multi::encode(out, channels, value),
            Request::Produce { channel } => produce::encode(out, channel),
            Request::ProduceMulti { channels } => produce_multi::encode(out, channels),
            Request::RemoveChannel { channel } => remove_channel::encode(out, channel),
        }
    }
}

/// Step 1: is a whole request at the start of `buf`? Returns its length in bytes.
///
/// It never allocates, reads each length prefix once (O(number of arrays)) and never
/// panics. Unknown codes and over-long arrays or lists are reported as soon as their
/// first bytes are there, not after waiting for the rest.
pub fn check(buf: &[u8]) -> Result<usize, DecodeError> {
    parse(buf).map(|(_, used)| used)
}

/// Step 2: decodes the request at the start of `buf`, borrowing from it, and returns it
/// with the number of bytes it used; the next request starts right after.
///
/// It validates as it goes, with the same answers as [`check`], so a caller need not
/// call [`check`] first; neither allocates.
pub fn parse(buf: &[u8]) -> Result<(Request<'_>, usize), DecodeError> {
    let mut reader = Reader::new(buf);
    let code = reader.i32()?;
    let command = Command::from_code(code).ok_or(DecodeError::UnknownCommand(code))?;
    let request = match command {
        Command::Push => push::decode(&mut reader)?,
        Command::Pop => pop::decode(&mut reader)?,
        Command::Consume => consume::decode(&mut reader)?,
        Command::GetNumConnections => get_num_connections::decode(&mut reader)?,
        Command::PushMulti => push_multi::decode(&mut reader)?,
        Command::Produce => produce::decode(&mut reader)?,
        Command::ProduceMulti => produce_multi::decode(&mut reader)?,
        Command::RemoveChannel => remove_channel::decode(&mut reader)?,
    };
    Ok((request, reader.pos()))
}

#[cfg(test)]
mod tests {
    use super::test_util::{assert_prefix_consistency, XorShift};
    use super::*;

    const COMMANDS: [Command; 8] = [
        Command::Push,
        Command::Pop,
        Command::Consume,
        Command::GetNumConnections,
        Command::PushMulti,
        Command::Produce,
        Command::ProduceMulti,
        Command::RemoveChannel,
    ];

    #[test]
    fn command_codes_and_names() {
        for command in COMMANDS {
            assert_eq!(Command::from_code(command.code()), Some(command));
        }
        let names: Vec<_> = COMMANDS.iter().map(|c| c.name()).collect();
        assert_eq!(
            names,
            [
                "Push",
                "Pop",
                "Consume",
                "GetNumConnections",
                "PushMulti",
                "Produce",
                "ProduceMulti",
                "RemoveChannel"
            ]
        );
        let known = (-1000..1000).filter(|&c| Command::from_code(c).is_some());
        assert_eq!(known.count(), COMMANDS.len());
    }

    #[test]
    fn status_codes() {
        let all = [
            (Status::Ok, 200),
            (Status::InvalidRequest, 400),
            (Status::WrongNode, 404),
            (Status::NotSupported, 406),
            (Status::OutOfMemory, 407),
            (Status::EmptyValue, 408),
            (Status::BadChannelName, 409),
            (Status::ValueTooBig, 410),
            (Status::Error, 500),
        ];
        for (status, code) in all {
            assert_eq!(status.code(), code);
            assert_eq!(Status::from_code(code), Some(status));
            assert_eq!(status.to_le_bytes(), code.to_le_bytes());
        }
        let known = (-1000..1000).filter(|&c| Status::from_code(c).is_some());
        assert_eq!(known.count(), all.len());
        assert_eq!(Status::Ok.to_le_bytes(), [0xC8, 0, 0, 0]);
        assert_eq!(Status::Error.to_le_bytes(), [0xF4, 0x01, 0, 0]);
        assert_eq!(Status::BadChannelName.to_le_bytes(), [0x99, 0x01, 0, 0]);
    }

    #[test]
    fn unknown_codes_are_refused_on_the_code_alone() {
        for code in [0, 3, 4, 5, 7, 13, 99, -1, i32::MIN, i32::MAX] {
            let mut buf = code.to_le_bytes().to_vec();
            assert_eq!(check(&buf), Err(DecodeError::UnknownCommand(code)));
            // Whatever follows is not interpreted.
            buf.extend_from_slice(&[0xFF; 20]);
            assert_eq!(parse(&buf), Err(DecodeError::UnknownCommand(code)));
        }
    }

    #[test]
    fn short_code_is_incomplete() {
        for len in 0..4 {
            assert_eq!(
                check(&[1, 0, 0, 0][..len]),
                Err(DecodeError::Incomplete { needed: 4 })
            );
        }
    }

    #[test]
    fn oversized_array_is_refused_with_only_its_prefix_present() {
        let too_long = MAX_ARRAY_LEN as u64 + 1;
        for command in [
            Command::Push,
            Command::Pop,
            Command::Consume,
            Command::Produce,
            Command::RemoveChannel,
        ] {
            let mut buf = command.code().to_le_bytes().to_vec();
            buf.extend_from_slice(&too_long.to_le_bytes());
            assert_eq!(buf.len(), 12);
            assert_eq!(
                check(&buf),
                Err(DecodeError::ArrayTooLong { len: too_long })
            );
        }
        // Also in a list, and for the PushMulti value after a list.
        let mut buf = Command::ProduceMulti.code().to_le_bytes().to_vec();
        buf.extend_from_slice(&too_long.to_le_bytes());
        assert_eq!(
            check(&buf),
            Err(DecodeError::ArrayTooLong { len: too_long })
        );
        let mut buf = Command::PushMulti.code().to_le_bytes().to_vec();
        encode_channel_list(&mut buf, [&b"ch"[..]]);
        buf.extend_from_slice(&too_long.to_le_bytes());
        assert_eq!(
            check(&buf),
            Err(DecodeError::ArrayTooLong { len: too_long })
        );
        // Push value after a valid channel.
        let mut buf = Command::Push.code().to_le_bytes().to_vec();
        encode_array(&mut buf, b"ch");
        buf.extend_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(
            check(&buf),
            Err(DecodeError::ArrayTooLong { len: u64::MAX })
        );
    }

    #[test]
    fn longest_requests_fit_max_request_len() {
        let big = vec![b'v'; MAX_ARRAY_LEN];
        let push = Request::Push {
            channel: &big,
            value: &big,
        };
        let mut buf = Vec::new();
        push.encode(&mut buf);
        assert_eq!(check(&buf), Ok(buf.len()));
        assert_eq!(buf.len(), MAX_REQUEST_LEN);

        let mut list = Vec::new();
        encode_channel_list(&mut list, [&big[..MAX_LIST_BYTES - 2 * ARRAY_PREFIX_LEN]]);
        let (channels, _) = ChannelList::parse(&list).expect("list at the limit");
        let push_multi = Request::PushMulti {
            channels,
            value: &big,
        };
        let mut buf = Vec::new();
        push_multi.encode(&mut buf);
        assert_eq!(check(&buf), Ok(buf.len()));
        assert!(buf.len() <= MAX_REQUEST_LEN);
    }

    #[test]
    fn pipelined_requests_parse_one_after_another() {
        let mut list = Vec::new();
        encode_channel_list(&mut list, [&b"a"[..], b"b"]);
        let (channels, _) = ChannelList::parse(&list).expect("list");
        let requests = [
            Request::Push {
                channel: b"ch",
                value: b"ab",
            },
            Request::Pop { channel: b"ch" },
            Request::GetNumConnections,
            Request::PushMulti {
                channels,
                value: b"v",
            },
            Request::RemoveChannel { channel: b"ch" },
        ];
        let mut buf = Vec::new();
        for request in &requests {
            request.encode(&mut buf);
        }
        // A partial sixth request at the end.
        buf.extend_from_slice(&Command::Pop.code().to_le_bytes());
        let mut rest = &buf[..];
        for expected in &requests {
            let (request, used) = parse(rest).expect("pipelined request");
            assert_eq!(&request, expected);
            assert_eq!(check(rest), Ok(used));
            rest = &rest[used..];
        }
        assert_eq!(parse(rest), Err(DecodeError::Incomplete { needed: 4 + 8 }));
    }

    #[test]
    fn produce_request_then_its_stream_then_the_next_request() {
        let mut buf = Vec::new();
        Request::Produce { channel: b"ch" }.encode(&mut buf);
        encode_array(&mut buf, b"r1");
        encode_stream_end(&mut buf);
        Request::Pop { channel: b"ch" }.encode(&mut buf);

        let (request, mut used) = parse(&buf).expect("produce");
        assert_eq!(request, Request::Produce { channel: b"ch" });
        let (item, n) = parse_stream_item(&buf[used..]).expect("record");
        assert_eq!(item, StreamItem::Record(b"r1"));
        used += n;
        let (item, n) = parse_stream_item(&buf[used..]).expect("end");
        assert_eq!(item, StreamItem::End);
        used += n;
        assert_eq!(
            parse(&buf[used..]),
            Ok((Request::Pop { channel: b"ch" }, buf.len() - used))
        );
    }

    #[test]
    fn random_bytes_never_panic_and_check_agrees_with_parse() {
        let mut rng = XorShift::new(0xd3a_2024);
        let mut decoded = 0;
        for _ in 0..3_000 {
            let buf = rng.fragments(8);
            assert_prefix_consistency(&buf, check);
            for len in 0..=buf.len() {
                let prefix = &buf[..len];
                let parsed = parse(prefix);
                assert_eq!(check(prefix), parsed.clone().map(|(_, used)| used));
                if let Ok((request, used)) = parsed {
                    // There is one encoding of each request, so it must come back.
                    let mut reencoded = Vec::new();
                    request.encode(&mut reencoded);
                    assert_eq!(reencoded, &prefix[..used]);
                    assert!(used <= MAX_REQUEST_LEN);
                    decoded += 1;
                }
                if let Err(DecodeError::Incomplete { needed }) = parsed {
                    assert!(needed <= MAX_REQUEST_LEN);
                }
            }
        }
        assert!(decoded > 1_000, "generator too rarely makes requests");
    }
}
