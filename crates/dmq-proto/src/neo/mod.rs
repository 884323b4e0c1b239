//! The neo protocol of the original DMQ node (spec §3): a version byte each way, an
//! HMAC authentication, then full-duplex, multiplexed requests (Push v3, Pop v1,
//! Consume v4), every message framed by a 10-byte header.
//!
//! # Layout
//!
//! - `frame.rs`: the header and message framing ([`check_header`], [`parse_message`],
//!   [`encode_message`]) and [`FrameError`].
//! - `wire.rs`: fields inside a body (arrays, [`ArrayList`]) and [`BodyError`].
//! - `auth.rs`: the version byte, the four authentication messages, HMAC codes,
//!   [`Credentials`] and the node's [`verify`].
//! - `request.rs`: what every request shares: the request id, the command,
//!   [`SupportedStatus`], and [`parse_start`] for a request's first message.
//! - `push.rs`, `pop.rs`, `consume.rs`: one file per request, with its fields, its
//!   replies and, for Consume, its later messages; named as their handlers in
//!   `dmq-node`.
//!
//! Decoding is done in two steps, as in mini-redis: [`check_message`] tells whether a
//! whole message is at the start of a buffer, judging the header from its 10 bytes
//! alone, and [`parse_message`] returns it borrowed; neither allocates. The body is
//! then parsed by the parser of what it should be, which borrows from it, refuses
//! short bodies and trailing bytes, and checks every length prefix against what is
//! left of the body before trusting it. Encoders append whole messages (header
//! included) to a `Vec<u8>`, for both sides: the node's replies and a client's
//! requests. `README.md` beside this file has the protocol notes checked against the
//! original sources.

mod auth;
mod consume;
mod frame;
mod pop;
mod push;
mod request;
#[cfg(test)]
mod test_util;
mod wire;

pub use auth::{
    check_name, check_version, encode_auth_result, encode_client_timestamp, encode_nonce,
    failure_log_line, format_credentials_line, hmac_code, parse_auth_result,
    parse_client_timestamp, parse_nonce, verify, AuthRejection, ClientIdentity, Credentials,
    CredentialsError, Key, LogName, NameError, VersionMismatch, CODE_LEN, KEY_LEN,
    MAX_CLOCK_SKEW_SECS, MAX_CREDENTIALS_FILE_LEN, MAX_NAME_LEN, NONCE_LEN, PROTOCOL_VERSION,
};
pub use consume::{
    append_record, encode_records, ConsumeClientMessage, ConsumeNodeMessage, ConsumeRequest,
    ConsumeStatus, BATCH_SEND_THRESHOLD, MAX_RECORDS_BATCH,
};
pub use frame::{
    check_header, check_message, encode_header, encode_message, header_bytes, parse_message,
    FrameError, Header, Message, MessageType, HEADER_LEN, MAX_AUTH_BODY, MAX_REQUEST_BODY,
    MIN_REQUEST_BODY,
};
pub use pop::{PopReply, PopRequest};
pub use push::{encode_push, PushRequest, PushStatus, TooManyChannels, MAX_PUSH_CHANNELS};
pub use request::{
    encode_request_header, encode_request_message, parse_command, parse_start, split_request_body,
    supported, Command, NewRequest, RequestCode, RequestId, Start, SupportedStatus, COMMAND_LEN,
    REQUEST_ID_LEN,
};
pub use wire::{encode_array, ArrayList, ArrayListIter, BodyError, ARRAY_PREFIX_LEN};

/// Any error of the neo codec, for callers that handle them alike: every one is a
/// protocol error after which the original closes the connection (spec §3.9), except
/// [`FrameError::Incomplete`], which means "read more".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NeoError {
    /// The byte stream cannot be framed (or needs more bytes).
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// A message body is not what it should be.
    #[error(transparent)]
    Body(#[from] BodyError),
    /// The peer speaks another protocol version.
    #[error(transparent)]
    Version(#[from] VersionMismatch),
}

#[cfg(test)]
mod tests {
    use super::test_util::XorShift;
    use super::*;

    /// A whole client session on the wire: handshake, authentication, then one of each
    /// request, decoded the way the node does.
    #[test]
    fn client_session_decodes_like_the_node_does() {
        let key = [0x11; KEY_LEN];
        let credentials = Credentials::parse(&format_credentials_line("app", &key).expect("name"))
            .expect("credentials");
        let (now, nonce) = (1_750_000_000, [4, 3, 2, 1]);

        let mut client = Vec::new();
        encode_client_timestamp(&mut client, now);
        let code = hmac_code(&key, now, &nonce);
        ClientIdentity {
            name: b"app",
            code: &code,
        }
        .encode(&mut client);
        encode_push(&mut client, 1, &[b"ch"], b"value").expect("one channel");
        PopRequest { channel: b"ch" }.encode(&mut client, 2);
        ConsumeRequest {
            channel: b"ch",
            subscriber: b"",
        }
        .encode(&mut client, 3);
        ConsumeClientMessage::Stop.encode(&mut client, 3);

        let mut rest = &client[..];
        let mut next = || -> Result<Message<'_>, NeoError> {
            let (message, used) = parse_message(rest)?;
            rest = rest.get(used..).unwrap_or_default();
            Ok(message)
        };
        let timestamp = parse_client_timestamp(next().expect("ts").body).expect("ts");
        let identity = ClientIdentity::parse(next().expect("id").body).expect("id");
        assert_eq!(
            verify(
                &credentials,
                identity.name,
                timestamp,
                &nonce,
                identity.code,
                now
            ),
            Ok(())
        );
        let mut codes = Vec::new();
        for _ in 0..3 {
            let message = next().expect("request");
            assert_eq!(message.kind, MessageType::Request);
            let (id, payload) = split_request_body(message.body).expect("id");
            let Ok(Start::Supported(request)) = parse_start(payload) else {
                panic!("request {id}");
            };
            codes.push((id, request.code()));
        }
        assert_eq!(
            codes,
            [
                (1, RequestCode::Push),
                (2, RequestCode::Pop),
                (3, RequestCode::Consume)
            ]
        );
        let (id, payload) = split_request_body(next().expect("stop").body).expect("id");
        assert_eq!(
            (id, ConsumeClientMessage::parse(payload)),
            (3, Ok(ConsumeClientMessage::Stop))
        );
        assert_eq!(
            next(),
            Err(NeoError::Frame(FrameError::Incomplete {
                needed: HEADER_LEN
            }))
        );
    }

    /// The stream-level property: feeding pseudo-random neo-like bytes through the
    /// framing and then every body parser never panics, and `Incomplete` always asks
    /// for more than was given.
    #[test]
    fn random_streams_never_panic() {
        let mut rng = XorShift::new(42);
        for _ in 0..20_000 {
            let buf = rng.neo_bytes(24);
            let mut rest = &buf[..];
            loop {
                match parse_message(rest) {
                    Ok((message, used)) => {
                        assert!(used >= HEADER_LEN && used <= rest.len());
                        assert_eq!(check_message(rest), Ok(used));
                        let body = message.body;
                        let _ = parse_client_timestamp(body);
                        let _ = parse_nonce(body);
                        let _ = ClientIdentity::parse(body);
                        let _ = parse_auth_result(body);
                        if let Ok((_, payload)) = split_request_body(body) {
                            let _ = parse_start(payload);
                            let _ = SupportedStatus::parse(payload);
                            let _ = PushStatus::parse(payload);
                            let _ = PopReply::parse(payload);
                            let _ = ConsumeStatus::parse(payload);
                            let _ = ConsumeNodeMessage::parse(payload);
                            let _ = ConsumeClientMessage::parse(payload);
                        }
                        rest = rest.get(used..).unwrap_or_default();
                    }
                    Err(FrameError::Incomplete { needed }) => {
                        assert!(needed > rest.len());
                        break;
                    }
                    Err(_) => break,
                }
            }
        }
    }
}
