//! The part every neo request shares (spec §3.5): the request id in front of every
//! Request body, the 2-byte command that opens a request, the node's SupportedStatus
//! reply, and the dispatch of a new request's payload to its parser.

use super::consume::ConsumeRequest;
use super::frame::{encode_header, MessageType};
use super::pop::PopRequest;
use super::push::PushRequest;
use super::wire::{BodyError, Fields};

/// The id a client gives a request; every Request body starts with it.
pub type RequestId = u64;

/// Width of the request id.
pub const REQUEST_ID_LEN: usize = 8;

/// Width of the command (`u8` code, `u8` version) that opens a request.
pub const COMMAND_LEN: usize = 2;

/// Splits a Request body into its request id and the payload after it.
///
/// Id 0 is refused ([`BodyError::ZeroRequestId`]): clients number requests from 1, and
/// the original's request machinery asserts that an id is not 0, so a 0 never worked
/// there. We make it a protocol error, which closes the connection, rather than give it
/// meaning.
pub fn split_request_body(body: &[u8]) -> Result<(RequestId, &[u8]), BodyError> {
    let mut fields = Fields::new(body);
    let id = fields.u64()?;
    if id == 0 {
        return Err(BodyError::ZeroRequestId);
    }
    Ok((id, body.get(REQUEST_ID_LEN..).unwrap_or_default()))
}

/// Appends the header and request id of a Request message whose payload (what follows
/// the id) will be `payload_len` bytes; the caller appends the payload.
pub fn encode_request_header(out: &mut Vec<u8>, id: RequestId, payload_len: usize) {
    encode_header(out, MessageType::Request, REQUEST_ID_LEN + payload_len);
    out.extend_from_slice(&id.to_le_bytes());
}

/// Appends a whole Request message: header, request id, then `payload_parts`.
pub fn encode_request_message(out: &mut Vec<u8>, id: RequestId, payload_parts: &[&[u8]]) {
    let payload_len = payload_parts.iter().map(|part| part.len()).sum();
    encode_request_header(out, id, payload_len);
    for part in payload_parts {
        out.extend_from_slice(part);
    }
}

/// The requests the node serves (codes from `dmqproto` `RequestCodes.d`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RequestCode {
    /// Push a value to one or more channels.
    Push = 1,
    /// Pop one value from a channel.
    Pop = 2,
    /// Stream a channel's records to a subscriber.
    Consume = 6,
}

impl RequestCode {
    /// The request with this code, if the node serves it.
    pub fn from_code(code: u8) -> Option<RequestCode> {
        match code {
            1 => Some(RequestCode::Push),
            2 => Some(RequestCode::Pop),
            6 => Some(RequestCode::Consume),
            _ => None,
        }
    }

    /// The wire code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The one version of this request the node serves: Push 3, Pop 1, Consume 4.
    /// Older versions were removed from the original and are answered
    /// [`SupportedStatus::RequestVersionNotSupported`].
    pub fn version(self) -> u8 {
        match self {
            RequestCode::Push => 3,
            RequestCode::Pop => 1,
            RequestCode::Consume => 4,
        }
    }

    /// The command a client sends to start this request.
    pub fn command(self) -> Command {
        Command {
            code: self.code(),
            version: self.version(),
        }
    }

    /// The name used in `stats.log` and in logs (`push`, `pop`, `consume`).
    pub fn name(self) -> &'static str {
        match self {
            RequestCode::Push => "push",
            RequestCode::Pop => "pop",
            RequestCode::Consume => "consume",
        }
    }
}

/// The 2 bytes that open a request: code and version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Command {
    /// Request code.
    pub code: u8,
    /// Request version.
    pub version: u8,
}

impl Command {
    /// What the node answers to this command.
    pub fn supported_status(self) -> SupportedStatus {
        supported(self.code, self.version)
    }

    /// The wire bytes.
    pub fn to_bytes(self) -> [u8; COMMAND_LEN] {
        [self.code, self.version]
    }
}

/// Reads the command at the start of a new request's payload and returns it with the
/// request's own fields after it. Fewer than 2 bytes is [`BodyError::NoCommand`].
pub fn parse_command(payload: &[u8]) -> Result<(Command, &[u8]), BodyError> {
    match payload.split_first_chunk::<COMMAND_LEN>() {
        Some((&[code, version], fields)) => Ok((Command { code, version }, fields)),
        None => Err(BodyError::NoCommand),
    }
}

/// The node's first answer to every new request: one `i8` in a message of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i8)]
pub enum SupportedStatus {
    /// The request runs; its own messages follow.
    RequestSupported = -3,
    /// The code is known, the version is not; the request ends.
    RequestVersionNotSupported = -2,
    /// The code is unknown; the request ends.
    RequestNotSupported = -1,
}

impl SupportedStatus {
    /// The status as an `i8`.
    pub fn code(self) -> i8 {
        self as i8
    }

    /// The wire byte (0xFD, 0xFE, 0xFF).
    pub fn to_byte(self) -> u8 {
        self.code() as u8
    }

    /// The status with this wire byte, if any.
    pub fn from_byte(byte: u8) -> Option<SupportedStatus> {
        match byte {
            0xFD => Some(SupportedStatus::RequestSupported),
            0xFE => Some(SupportedStatus::RequestVersionNotSupported),
            0xFF => Some(SupportedStatus::RequestNotSupported),
            _ => None,
        }
    }

    /// Parses the payload (after the request id) of a SupportedStatus message
    /// (client side): exactly one byte.
    pub fn parse(payload: &[u8]) -> Result<SupportedStatus, BodyError> {
        let mut fields = Fields::new(payload);
        let byte = fields.u8()?;
        fields.finish()?;
        SupportedStatus::from_byte(byte).ok_or(BodyError::UnknownCode {
            what: "supported status",
            code: byte,
        })
    }

    /// Appends the whole SupportedStatus message for request `id` (node side).
    pub fn encode(self, out: &mut Vec<u8>, id: RequestId) {
        encode_request_message(out, id, &[&[self.to_byte()]]);
    }
}

/// What the node answers to `code`/`version`: Push 1/3, Pop 2/1 and Consume 6/4 are
/// supported; another version of one of these codes is
/// [`SupportedStatus::RequestVersionNotSupported`]; any other code is
/// [`SupportedStatus::RequestNotSupported`].
pub fn supported(code: u8, version: u8) -> SupportedStatus {
    match RequestCode::from_code(code) {
        Some(request) if request.version() == version => SupportedStatus::RequestSupported,
        Some(_) => SupportedStatus::RequestVersionNotSupported,
        None => SupportedStatus::RequestNotSupported,
    }
}

/// A new, supported request, borrowed from the message it came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewRequest<'a> {
    /// Push v3.
    Push(PushRequest<'a>),
    /// Pop v1.
    Pop(PopRequest<'a>),
    /// Consume v4.
    Consume(ConsumeRequest<'a>),
}

impl NewRequest<'_> {
    /// Which request it is.
    pub fn code(&self) -> RequestCode {
        match self {
            NewRequest::Push(_) => RequestCode::Push,
            NewRequest::Pop(_) => RequestCode::Pop,
            NewRequest::Consume(_) => RequestCode::Consume,
        }
    }

    /// Appends the whole first message of this request with id `id`, as a client sends
    /// it.
    pub fn encode(&self, out: &mut Vec<u8>, id: RequestId) {
        match self {
            NewRequest::Push(request) => request.encode(out, id),
            NewRequest::Pop(request) => request.encode(out, id),
            NewRequest::Consume(request) => request.encode(out, id),
        }
    }
}

/// The first message of a request, as the node judges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start<'a> {
    /// Supported and well-formed: answer [`SupportedStatus::RequestSupported`] and run
    /// it.
    Supported(NewRequest<'a>),
    /// Not supported: answer `status`; the request ends and the connection stays up.
    /// The rest of the payload is not looked at.
    Unsupported {
        /// The command as received.
        command: Command,
        /// [`SupportedStatus::RequestNotSupported`] or
        /// [`SupportedStatus::RequestVersionNotSupported`].
        status: SupportedStatus,
    },
}

/// Parses the payload (after the request id) of a request's first message: the
/// command, then, if the node serves it, the request's fields, which must fill the
/// payload exactly.
///
/// An error is a protocol error (the original shuts the connection down); an
/// unsupported command is not an error but [`Start::Unsupported`].
pub fn parse_start(payload: &[u8]) -> Result<Start<'_>, BodyError> {
    let (command, fields) = parse_command(payload)?;
    let status = command.supported_status();
    let (SupportedStatus::RequestSupported, Some(code)) =
        (status, RequestCode::from_code(command.code))
    else {
        return Ok(Start::Unsupported { command, status });
    };
    let request = match code {
        RequestCode::Push => NewRequest::Push(PushRequest::parse(fields)?),
        RequestCode::Pop => NewRequest::Pop(PopRequest::parse(fields)?),
        RequestCode::Consume => NewRequest::Consume(ConsumeRequest::parse(fields)?),
    };
    Ok(Start::Supported(request))
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{request_payload, XorShift};
    use super::super::{encode_push, ConsumeClientMessage, ConsumeNodeMessage, ConsumeStatus};
    use super::super::{PopReply, PushStatus, HEADER_LEN};
    use super::*;

    #[test]
    fn request_codes_versions_and_names() {
        let all = [
            (RequestCode::Push, 1, 3, "push"),
            (RequestCode::Pop, 2, 1, "pop"),
            (RequestCode::Consume, 6, 4, "consume"),
        ];
        for (request, code, version, name) in all {
            assert_eq!(RequestCode::from_code(code), Some(request));
            assert_eq!((request.code(), request.version()), (code, version));
            assert_eq!(request.name(), name);
            assert_eq!(request.command().to_bytes(), [code, version]);
        }
        assert_eq!((0..=255).filter_map(RequestCode::from_code).count(), 3);
    }

    #[test]
    fn supported_matrix() {
        use SupportedStatus::*;
        for code in 0..=255u8 {
            for version in 0..=255u8 {
                let expected = match (code, version) {
                    (1, 3) | (2, 1) | (6, 4) => RequestSupported,
                    (1 | 2 | 6, _) => RequestVersionNotSupported,
                    _ => RequestNotSupported,
                };
                assert_eq!(supported(code, version), expected, "{code}/{version}");
            }
        }
        // Spec §11 check 5.
        assert_eq!(supported(1, 2).to_byte(), 0xFE);
        assert_eq!(supported(9, 0).to_byte(), 0xFF);
        assert_eq!(supported(6, 4).to_byte(), 0xFD);
    }

    #[test]
    fn supported_status_message_bytes() {
        for status in [
            SupportedStatus::RequestSupported,
            SupportedStatus::RequestVersionNotSupported,
            SupportedStatus::RequestNotSupported,
        ] {
            let mut out = Vec::new();
            status.encode(&mut out, 0x0102);
            // A message of its own: header, id, one byte.
            assert_eq!(out.len(), HEADER_LEN + 8 + 1);
            assert_eq!(out[HEADER_LEN..HEADER_LEN + 8], 0x0102u64.to_le_bytes());
            let (id, payload) = request_payload(&out);
            assert_eq!((id, payload), (0x0102, &[status.to_byte()][..]));
            assert_eq!(SupportedStatus::parse(payload), Ok(status));
            assert_eq!(SupportedStatus::from_byte(status.to_byte()), Some(status));
            assert_eq!(status.code() as u8, status.to_byte());
        }
        assert_eq!(
            SupportedStatus::parse(&[0]),
            Err(BodyError::UnknownCode {
                what: "supported status",
                code: 0
            })
        );
        assert_eq!(
            SupportedStatus::parse(&[0xFD, 0]),
            Err(BodyError::TrailingBytes { count: 1 })
        );
        assert_eq!(
            SupportedStatus::parse(&[]),
            Err(BodyError::Truncated { missing: 1 })
        );
    }

    #[test]
    fn request_id_is_split_off_and_zero_is_refused() {
        let mut body = 7u64.to_le_bytes().to_vec();
        assert_eq!(split_request_body(&body), Ok((7, &[][..])));
        body.extend_from_slice(b"payload");
        assert_eq!(split_request_body(&body), Ok((7, &b"payload"[..])));
        let zero = [0; 9];
        assert_eq!(split_request_body(&zero), Err(BodyError::ZeroRequestId));
        assert_eq!(
            split_request_body(&[1, 0, 0]),
            Err(BodyError::Truncated { missing: 5 })
        );
        let mut out = Vec::new();
        encode_request_message(&mut out, u64::MAX, &[b"ab", b"", b"c"]);
        assert_eq!(request_payload(&out), (u64::MAX, &b"abc"[..]));
    }

    #[test]
    fn command_needs_two_bytes() {
        assert_eq!(parse_command(&[]), Err(BodyError::NoCommand));
        assert_eq!(parse_command(&[1]), Err(BodyError::NoCommand));
        assert_eq!(
            parse_command(&[1, 3, 9]),
            Ok((
                Command {
                    code: 1,
                    version: 3
                },
                &[9][..]
            ))
        );
        assert_eq!(parse_start(&[6]), Err(BodyError::NoCommand));
    }

    #[test]
    fn unsupported_commands_ignore_the_rest() {
        for (code, version, status) in [
            (1, 2, SupportedStatus::RequestVersionNotSupported),
            (6, 3, SupportedStatus::RequestVersionNotSupported),
            (2, 0, SupportedStatus::RequestVersionNotSupported),
            (9, 0, SupportedStatus::RequestNotSupported),
            (0, 0, SupportedStatus::RequestNotSupported),
        ] {
            for rest in [&b""[..], b"garbage"] {
                let mut payload = vec![code, version];
                payload.extend_from_slice(rest);
                assert_eq!(
                    parse_start(&payload),
                    Ok(Start::Unsupported {
                        command: Command { code, version },
                        status
                    })
                );
            }
        }
    }

    #[test]
    fn supported_request_with_malformed_fields_is_an_error() {
        assert_eq!(
            parse_start(&[2, 1]),
            Err(BodyError::Truncated { missing: 8 })
        );
        assert!(parse_start(&[1, 3]).is_err());
        assert!(parse_start(&[6, 4, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
    }

    #[test]
    fn new_requests_round_trip_through_parse_start() {
        let mut out = Vec::new();
        encode_push(&mut out, 5, &[b"a", b"b"], b"v").expect("two channels");
        let (id, payload) = request_payload(&out);
        let Ok(Start::Supported(request)) = parse_start(payload) else {
            panic!("push");
        };
        assert_eq!((id, request.code()), (5, RequestCode::Push));
        let mut again = Vec::new();
        request.encode(&mut again, 5);
        assert_eq!(again, out);

        for request in [
            NewRequest::Pop(PopRequest { channel: b"ch" }),
            NewRequest::Consume(ConsumeRequest {
                channel: b"ch",
                subscriber: b"sub",
            }),
        ] {
            let mut out = Vec::new();
            request.encode(&mut out, 9);
            let (id, payload) = request_payload(&out);
            assert_eq!(id, 9);
            assert_eq!(parse_start(payload), Ok(Start::Supported(request)));
        }
    }

    /// Every parser of the module, on pseudo-random bodies: none may panic, and what
    /// parses must re-encode to the same payload.
    #[test]
    fn random_payloads_never_panic_and_reencode() {
        let mut rng = XorShift::new(0xDEC0DE);
        for _ in 0..50_000 {
            let payload = rng.neo_bytes(8);
            let _ = split_request_body(&payload);
            if let Ok(Start::Supported(request)) = parse_start(&payload) {
                let mut out = Vec::new();
                request.encode(&mut out, 1);
                assert_eq!(request_payload(&out).1, &payload[..]);
            }
            let reencode = |encode: &dyn Fn(&mut Vec<u8>)| {
                let mut out = Vec::new();
                encode(&mut out);
                assert_eq!(request_payload(&out).1, &payload[..]);
            };
            if let Ok(status) = SupportedStatus::parse(&payload) {
                reencode(&|out| status.encode(out, 1));
            }
            if let Ok(status) = PushStatus::parse(&payload) {
                reencode(&|out| status.encode(out, 1));
            }
            if let Ok(reply) = PopReply::parse(&payload) {
                reencode(&|out| reply.encode(out, 1));
            }
            if let Ok(status) = ConsumeStatus::parse(&payload) {
                reencode(&|out| status.encode(out, 1));
            }
            if let Ok(message) = ConsumeNodeMessage::parse(&payload) {
                reencode(&|out| message.encode(out, 1));
                if let ConsumeNodeMessage::Records(records) = message {
                    assert_eq!(records.iter().count(), records.len());
                }
            }
            if let Ok(message) = ConsumeClientMessage::parse(&payload) {
                reencode(&|out| message.encode(out, 1));
            }
        }
    }
}
