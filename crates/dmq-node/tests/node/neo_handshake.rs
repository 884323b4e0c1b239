//! The neo version handshake and message framing before authentication (spec
//! 3.2, 3.3, 3.9): the version byte goes both ways, nothing may come with the
//! client's, and a broken frame or a Request message before authentication
//! closes the connection.

use dmq_proto::neo::{header_bytes, MessageType, PROTOCOL_VERSION};
use dmq_testkit::neo::{now_secs, NeoClient, PUSHED};
use dmq_testkit::node::Node;

#[test]
fn handshake_and_authentication_succeed() {
    let node = Node::start_neo(&[]);
    let mut c = NeoClient::connect_raw(node.neo_addr());
    c.send_version(PROTOCOL_VERSION);
    assert_eq!(c.read_version(), 0x01);
    let ts = now_secs();
    c.send_timestamp(ts);
    let nonce = c.read_nonce();
    let code = dmq_proto::neo::hmac_code(&dmq_testkit::neo::TEST_KEY, ts, &nonce);
    c.send_identity(b"test", &code);
    assert!(c.read_auth_result(), "the test client is accepted");
    // The connection serves requests.
    assert_eq!(c.push(&["after_auth"], "v"), PUSHED);
    assert_eq!(
        c.pop("after_auth"),
        dmq_testkit::neo::Pop::Popped(b"v".to_vec())
    );
}

#[test]
fn wrong_version_byte_gets_the_nodes_version_then_a_close() {
    let node = Node::start_neo(&[]);
    for version in [0u8, 2, 0xFF] {
        let mut c = NeoClient::connect_raw(node.neo_addr());
        c.send_version(version);
        assert_eq!(c.read_version(), 0x01, "version {version}");
        c.expect_closed(&format!("after version byte {version}"));
    }
    // The node still serves.
    let mut c = node.neo();
    assert_eq!(c.push(&["still_fine"], "v"), PUSHED);
}

#[test]
fn data_sent_with_the_version_byte_closes() {
    let node = Node::start_neo(&[]);
    // The version byte and a whole timestamp message in one write.
    let mut bytes = vec![PROTOCOL_VERSION];
    dmq_proto::neo::encode_client_timestamp(&mut bytes, now_secs());
    let mut c = NeoClient::connect_raw(node.neo_addr());
    c.send_raw(&bytes);
    // The node must not get as far as a nonce (a version byte alone may or may
    // not come, depending on how it reads; it must then close).
    let seen = drain_raw(&mut c);
    assert!(
        seen.is_empty(),
        "the node answered data sent with the version byte: {seen:?}"
    );
    // A single extra byte too.
    let mut c = NeoClient::connect_raw(node.neo_addr());
    c.send_raw(&[PROTOCOL_VERSION, 0x02]);
    let seen = drain_raw(&mut c);
    assert!(seen.is_empty(), "extra byte: {seen:?}");
}

/// Everything raw the node sends until it closes.
fn drain_raw(c: &mut NeoClient) -> Vec<u8> {
    let mut seen = Vec::new();
    // Bounded: each round reads one byte or ends (close or timeout panics).
    for _ in 0..64 {
        match c.try_read_raw(1, dmq_testkit::IO_TIMEOUT) {
            Ok(Some(b)) => seen.extend(b),
            Ok(None) => panic!("the node did not close the connection"),
            Err(e) if dmq_testkit::is_disconnect(&e) => return seen,
            Err(e) => panic!("{e}"),
        }
    }
    panic!("the node kept sending: {seen:?}");
}

/// A connection after the version exchange.
fn after_version(node: &Node) -> NeoClient {
    let mut c = NeoClient::connect_raw(node.neo_addr());
    c.send_version(PROTOCOL_VERSION);
    assert_eq!(c.read_version(), PROTOCOL_VERSION);
    c
}

#[test]
fn bad_header_parity_closes() {
    let node = Node::start_neo(&[]);
    let mut c = after_version(&node);
    let mut msg = Vec::new();
    dmq_proto::neo::encode_client_timestamp(&mut msg, now_secs());
    msg[9] ^= 0x01; // the parity byte
    c.send_raw(&msg);
    c.expect_closed("bad parity in the timestamp message");

    // Also after authentication, in a Request message.
    let mut c = node.neo();
    let mut msg = Vec::new();
    let id = c.new_id();
    dmq_proto::neo::PopRequest { channel: b"ch" }.encode(&mut msg, id);
    msg[3] ^= 0x10; // a length byte: the parity no longer matches
    c.send_raw(&msg);
    c.expect_closed("bad parity in a Request message");
}

#[test]
fn unknown_message_type_closes() {
    let node = Node::start_neo(&[]);
    for kind in [0u8, 3, 0xFF] {
        let mut c = after_version(&node);
        // A correct parity for the bad type: type XOR the 8 length bytes.
        let body = now_secs().to_le_bytes();
        let mut header = [0u8; 10];
        header[0] = kind;
        header[1..9].copy_from_slice(&(body.len() as u64).to_le_bytes());
        header[9] = header[..9].iter().fold(0, |a, b| a ^ b);
        let mut msg = header.to_vec();
        msg.extend_from_slice(&body);
        c.send_raw(&msg);
        c.expect_closed(&format!("message type {kind}"));
    }
}

#[test]
fn auth_body_over_999_bytes_closes() {
    let node = Node::start_neo(&[]);
    // Header alone: the node judges the length from the header.
    let mut c = after_version(&node);
    c.send_raw(&header_bytes(MessageType::Authentication, 1000));
    c.expect_closed("an Authentication body of 1000 bytes");
    // With the body too, as message 3 (a long name).
    let mut c = after_version(&node);
    c.send_timestamp(now_secs());
    let nonce = c.read_nonce();
    let name = vec![b'n'; 1000 - 8 - 64 + 1];
    let code = dmq_proto::neo::hmac_code(&dmq_testkit::neo::TEST_KEY, now_secs(), &nonce);
    c.send_identity(&name, &code);
    c.expect_closed("an identity message of 1001 bytes");
    // 999 bytes is still a frame the node reads: a name of 927 bytes is
    // refused by authentication (result 0), not by the framing.
    let mut c = after_version(&node);
    c.send_timestamp(now_secs());
    let nonce = c.read_nonce();
    let name = vec![b'n'; 999 - 8 - 64];
    let code = dmq_proto::neo::hmac_code(&dmq_testkit::neo::TEST_KEY, now_secs(), &nonce);
    c.send_identity(&name, &code);
    assert!(!c.read_auth_result(), "a 927-byte name is refused");
    c.expect_closed("after the refusal");
}

#[test]
fn request_message_before_authentication_closes() {
    let node = Node::start_neo(&[]);
    // Instead of the timestamp.
    let mut c = after_version(&node);
    let id = c.new_id();
    c.queue_request(id, &[2, 1, 2, 0, 0, 0, 0, 0, 0, 0, b'c', b'h']);
    c.flush();
    c.expect_closed("a Pop instead of the timestamp");
    // Instead of the name and code.
    let mut c = after_version(&node);
    c.send_timestamp(now_secs());
    let _nonce = c.read_nonce();
    let id = c.new_id();
    c.queue_request(id, &[2, 1, 2, 0, 0, 0, 0, 0, 0, 0, b'c', b'h']);
    c.flush();
    c.expect_closed("a Pop instead of the identity");
}

#[test]
fn authentication_message_after_authentication_closes() {
    let node = Node::start_neo(&[]);
    let mut c = node.neo();
    assert_eq!(c.push(&["before"], "v"), PUSHED);
    c.queue_auth_message(&now_secs().to_le_bytes());
    c.flush();
    c.expect_closed("an Authentication message after authentication");
}
