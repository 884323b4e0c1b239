//! Feeds arbitrary bytes to the neo decoders the way a connection does: frame a
//! message, advance by the bytes it used, and hand its body to every body parser (the
//! four authentication bodies, the request id, a request's first message, every reply
//! and every Consume message). Checks that nothing panics, that `check_message` and
//! `parse_message` agree, that `Incomplete` always asks for more than was given and that
//! the limits hold, and that whatever parses re-encodes to exactly the bytes it came
//! from. The input is also read as a credentials file.
#![no_main]

use dmq_proto::neo::{
    check_header, check_message, encode_auth_result, encode_client_timestamp, encode_nonce,
    parse_auth_result, parse_client_timestamp, parse_message, parse_nonce, parse_start,
    split_request_body, verify, ClientIdentity, ConsumeClientMessage, ConsumeNodeMessage,
    ConsumeStatus, Credentials, FrameError, Message, MessageType, PopReply, PushStatus, Start,
    SupportedStatus, HEADER_LEN, MAX_AUTH_BODY, MAX_REQUEST_BODY,
};
use libfuzzer_sys::fuzz_target;

/// The body of the single message in `bytes`, which an encoder just wrote.
fn body_of(bytes: &[u8]) -> &[u8] {
    let (message, used) = parse_message(bytes).expect("an encoder wrote a whole message");
    assert_eq!(used, bytes.len());
    message.body
}

/// The payload after the request id of the single Request message in `bytes`.
fn payload_of(bytes: &[u8], id: u64) -> &[u8] {
    let (got, payload) = split_request_body(body_of(bytes)).expect("a request body");
    assert_eq!(got, id);
    payload
}

fn check_auth_body(body: &[u8]) {
    if let Ok(timestamp) = parse_client_timestamp(body) {
        let mut out = Vec::new();
        encode_client_timestamp(&mut out, timestamp);
        assert_eq!(body_of(&out), body);
    }
    if let Ok(nonce) = parse_nonce(body) {
        let mut out = Vec::new();
        encode_nonce(&mut out, &nonce);
        assert_eq!(body_of(&out), body);
    }
    if let Ok(identity) = ClientIdentity::parse(body) {
        let mut out = Vec::new();
        identity.encode(&mut out);
        assert_eq!(body_of(&out), body);
        let credentials = Credentials::default();
        assert!(verify(&credentials, identity.name, 1, &[0; 4], identity.code, 1).is_err());
    }
    if let Ok(accepted) = parse_auth_result(body) {
        let mut out = Vec::new();
        encode_auth_result(&mut out, accepted);
        assert_eq!(body_of(&out), body);
    }
}

fn check_request_body(body: &[u8]) {
    let Ok((id, payload)) = split_request_body(body) else {
        return;
    };
    assert_ne!(id, 0);
    let reencode = |encode: &dyn Fn(&mut Vec<u8>)| {
        let mut out = Vec::new();
        encode(&mut out);
        assert_eq!(payload_of(&out, id), payload);
    };
    match parse_start(payload) {
        Ok(Start::Supported(request)) => reencode(&|out| request.encode(out, id)),
        Ok(Start::Unsupported { command, status }) => {
            assert_ne!(status, SupportedStatus::RequestSupported);
            assert_eq!(command.supported_status(), status);
        }
        Err(_) => {}
    }
    if let Ok(status) = SupportedStatus::parse(payload) {
        reencode(&|out| status.encode(out, id));
    }
    if let Ok(status) = PushStatus::parse(payload) {
        reencode(&|out| status.encode(out, id));
    }
    if let Ok(reply) = PopReply::parse(payload) {
        reencode(&|out| reply.encode(out, id));
    }
    if let Ok(status) = ConsumeStatus::parse(payload) {
        reencode(&|out| status.encode(out, id));
    }
    if let Ok(message) = ConsumeNodeMessage::parse(payload) {
        reencode(&|out| message.encode(out, id));
        if let ConsumeNodeMessage::Records(records) = message {
            assert_eq!(records.iter().count(), records.len());
            let total: usize = records.iter().map(|record| 8 + record.len()).sum();
            assert_eq!(total, records.encoded().len());
        }
    }
    if let Ok(message) = ConsumeClientMessage::parse(payload) {
        reencode(&|out| message.encode(out, id));
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = Credentials::parse_bytes(data);
    let mut rest = data;
    loop {
        let parsed = parse_message(rest);
        assert_eq!(check_message(rest), parsed.clone().map(|(_, used)| used));
        let (Message { kind, body }, used) = match parsed {
            Ok(ok) => ok,
            Err(FrameError::Incomplete { needed }) => {
                assert!(needed > rest.len() && needed <= HEADER_LEN + MAX_REQUEST_BODY);
                return;
            }
            // Fatal for the connection: the node closes it.
            Err(_) => return,
        };
        assert!(used >= HEADER_LEN && used <= rest.len());
        assert_eq!(
            check_header(rest).map(|header| header.body_len),
            Ok(body.len())
        );
        match kind {
            MessageType::Authentication => {
                assert!(body.len() <= MAX_AUTH_BODY);
                check_auth_body(body);
            }
            MessageType::Request => {
                assert!(body.len() >= 8 && body.len() <= MAX_REQUEST_BODY);
                check_request_body(body);
            }
        }
        // Every parser sees every body, whatever the type said.
        check_auth_body(body);
        check_request_body(body);
        rest = &rest[used..];
    }
});
