//! Neo request errors (spec 3.5, 3.9): an unknown request code gets −1 (0xFF)
//! and a known code with another version −2 (0xFE), and the connection stays
//! up; request id 0, a body too short for the id, a first message without a
//! command, a malformed payload, or a message a running request cannot take
//! close the connection. Other connections are unaffected.

use dmq_proto::neo::{encode_push, header_bytes, ConsumeStatus, MessageType, PopRequest};
use dmq_testkit::neo::{NeoClient, Pop, PUSHED};
use dmq_testkit::node::Node;

use crate::support::names_on_each_shard;

const NOT_SUPPORTED: i8 = -1;
const VERSION_NOT_SUPPORTED: i8 = -2;

/// Sends a new request `code`/`version` + `rest` and returns the one-byte
/// answer; nothing else may follow for that id.
fn start_status(c: &mut NeoClient, code: u8, version: u8, rest: &[u8]) -> i8 {
    let id = c.new_id();
    let mut payload = vec![code, version];
    payload.extend_from_slice(rest);
    c.queue_request(id, &payload);
    c.flush();
    c.read_supported(id)
}

#[test]
fn unknown_code_is_minus_1_and_the_connection_stays_up() {
    let node = Node::start_neo(&[]);
    let mut c = node.neo();
    for code in [0u8, 3, 4, 5, 7, 8, 9, 13, 99, 255] {
        for version in [0u8, 1, 3, 4] {
            assert_eq!(
                start_status(&mut c, code, version, &[]),
                NOT_SUPPORTED,
                "code {code} version {version}"
            );
        }
        // Whatever follows the command is not looked at.
        assert_eq!(
            start_status(&mut c, code, 0, b"\xFF\xFF anything"),
            NOT_SUPPORTED,
            "code {code} with a payload"
        );
    }
    assert_eq!(c.push(&["still_up"], "v"), PUSHED);
    assert_eq!(c.pop("still_up"), Pop::Popped(b"v".to_vec()));
}

#[test]
fn known_code_with_another_version_is_minus_2_and_the_connection_stays_up() {
    let node = Node::start_neo(&[]);
    let mut c = node.neo();
    let cases: [(u8, &[u8]); 3] = [
        (1, &[0, 1, 2, 4, 255]),
        (2, &[0, 2, 3, 255]),
        (6, &[0, 1, 2, 3, 5, 255]),
    ];
    for (code, versions) in cases {
        for &version in versions {
            assert_eq!(
                start_status(&mut c, code, version, &[]),
                VERSION_NOT_SUPPORTED,
                "code {code} version {version}"
            );
            assert_eq!(
                start_status(&mut c, code, version, b"\x01\x02\x03"),
                VERSION_NOT_SUPPORTED,
                "code {code} version {version} with a payload"
            );
        }
    }
    // The supported versions are supported.
    assert_eq!(c.push(&["still_up"], "v"), PUSHED);
    assert_eq!(c.pop("still_up"), Pop::Popped(b"v".to_vec()));
    let id = c.consume("still_up", "");
    assert!(c.stop_consume(id).is_empty());
}

#[test]
fn an_id_is_free_again_after_an_unsupported_answer() {
    let node = Node::start_neo(&[]);
    let mut c = node.neo();
    c.queue_request(7, &[9, 0]);
    c.flush();
    assert_eq!(c.read_supported(7), NOT_SUPPORTED);
    c.queue_request(7, &[1, 0]);
    c.flush();
    assert_eq!(c.read_supported(7), VERSION_NOT_SUPPORTED);
    let mut msg = Vec::new();
    encode_push(&mut msg, 7, &[b"reused"], b"v").expect("push");
    c.send_raw(&msg);
    assert_eq!(c.read_push(7), PUSHED);
    // And after a finished Push and Pop.
    let mut msg = Vec::new();
    PopRequest { channel: b"reused" }.encode(&mut msg, 7);
    c.send_raw(&msg);
    assert_eq!(c.read_pop(7), Pop::Popped(b"v".to_vec()));
}

#[test]
fn request_id_0_closes() {
    let node = Node::start_neo(&[]);
    let mut other = node.neo();
    for payload in [&[2u8, 1, 1, 0, 0, 0, 0, 0, 0, 0, b'c'][..], &[9, 0]] {
        let mut c = node.neo();
        c.queue_request(0, payload);
        c.flush();
        c.expect_closed(&format!("request id 0 with payload {payload:?}"));
    }
    assert_eq!(other.push(&["other"], "v"), PUSHED);
}

#[test]
fn request_body_shorter_than_the_id_closes() {
    let node = Node::start_neo(&[]);
    for len in [0usize, 1, 7] {
        let mut c = node.neo();
        let mut msg = header_bytes(MessageType::Request, len).to_vec();
        msg.extend(std::iter::repeat_n(1u8, len));
        c.send_raw(&msg);
        c.expect_closed(&format!("a Request body of {len} bytes"));
    }
    assert_eq!(node.neo().push(&["other"], "v"), PUSHED);
}

#[test]
fn first_message_without_a_command_closes() {
    let node = Node::start_neo(&[]);
    for payload in [&[][..], &[1u8]] {
        let mut c = node.neo();
        let id = c.new_id();
        c.queue_request(id, payload);
        c.flush();
        c.expect_closed(&format!("a first message {payload:?}"));
    }
    assert_eq!(node.neo().push(&["other"], "v"), PUSHED);
}

/// `u64` LE bytes.
fn le(n: u64) -> [u8; 8] {
    n.to_le_bytes()
}

#[test]
fn malformed_payloads_close() {
    let node = Node::start_neo(&[]);
    let mut other = node.neo();
    let arr = |bytes: &[u8]| -> Vec<u8> {
        let mut v = le(bytes.len() as u64).to_vec();
        v.extend_from_slice(bytes);
        v
    };
    let cat = |parts: &[&[u8]]| -> Vec<u8> { parts.concat() };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "Push with a byte after the value",
            cat(&[&[1, 3, 1], &arr(b"ch"), &arr(b"v"), &[0]]),
        ),
        (
            "Push whose value is cut short",
            cat(&[&[1, 3, 1], &arr(b"ch"), &le(5), b"abc"]),
        ),
        (
            "Push with fewer channels than counted",
            cat(&[&[1, 3, 3], &arr(b"ch"), &arr(b"v")]),
        ),
        ("Push without a channel count", vec![1, 3]),
        (
            "Push with a 2^40-byte channel name in a small body",
            cat(&[&[1, 3, 1], &le(1 << 40), b"ch"]),
        ),
        (
            "Pop with a byte after the name",
            cat(&[&[2, 1], &arr(b"ch"), &[0]]),
        ),
        ("Pop without a name", vec![2, 1]),
        ("Pop with a short length prefix", vec![2, 1, 2, 0, 0]),
        (
            "Pop with a 2^63-byte name",
            cat(&[&[2, 1], &le(1 << 63), b"ch"]),
        ),
        ("Consume without a subscriber", cat(&[&[6, 4], &arr(b"ch")])),
        (
            "Consume with a byte after the subscriber",
            cat(&[&[6, 4], &arr(b"ch"), &arr(b""), &[0]]),
        ),
    ];
    for (what, payload) in cases {
        let mut c = node.neo();
        let id = c.new_id();
        c.queue_request(id, &payload);
        c.flush();
        c.expect_closed(what);
        // Another connection is unaffected.
        assert_eq!(other.push(&["other"], "v"), PUSHED, "after {what}");
    }
    assert!(
        node.admin().storage("ch").is_none(),
        "no malformed request created the channel"
    );
}

#[test]
fn consume_message_other_than_continue_or_stop_closes() {
    let node = Node::start_neo(&["performance.write_flush_ms=1"]);
    let cases: [(&str, &[u8]); 6] = [
        ("type 0", &[0]),
        ("type 3 (Records)", &[3]),
        ("type 4 (Stopped)", &[4]),
        ("type 5 (ChannelRemoved)", &[5]),
        ("Stop with a byte after it", &[2, 0]),
        ("nothing", &[]),
    ];
    for (what, payload) in cases {
        let mut c = node.neo();
        let id = c.consume("consumed", "");
        c.queue_request(id, payload);
        c.flush();
        c.expect_closed(what);
    }
    let mut c = node.neo();
    assert_eq!(c.push(&["consumed"], "v"), PUSHED);
}

#[test]
fn continue_without_a_batch_closes() {
    let node = Node::start_neo(&["performance.write_flush_ms=1"]);
    let mut c = node.neo();
    let id = c.consume("idle", "");
    c.send_continue(id);
    c.expect_closed("Continue with no batch to acknowledge");
    // A second Continue after an acknowledged batch is the same.
    let mut pusher = node.neo();
    let mut c = node.neo();
    let id = c.consume("idle", "");
    assert_eq!(pusher.push(&["idle"], "one"), PUSHED);
    assert_eq!(c.next_records(id), vec![b"one".to_vec()]);
    c.send_continue(id);
    c.send_continue(id);
    c.expect_closed("a second Continue for one batch");
    assert_eq!(pusher.push(&["idle"], "v"), PUSHED);
}

#[test]
fn second_message_for_a_running_push_or_pop_closes() {
    let node = Node::start_neo(&[]);
    // Both shards are named, so whichever shard serves the connection, the
    // request waits for the other one while its second message is read (both
    // go in one write).
    let both = names_on_each_shard("running", 1);
    let mut first = Vec::new();
    encode_push(
        &mut first,
        5,
        &[both[0].as_bytes(), both[1].as_bytes()],
        b"v",
    )
    .expect("push");
    let mut twice = first.clone();
    twice.extend_from_slice(&first);
    let mut c = node.neo();
    c.send_raw(&twice);
    let seen = c.drain_until_closed("a second Push message for a running Push");
    for (kind, body) in &seen {
        assert_eq!(*kind, MessageType::Request);
        assert_eq!(&body[..8], &5u64.to_le_bytes(), "only request 5 answers");
    }
    assert!(
        seen.len() <= 2,
        "at most SupportedStatus and a status: {seen:?}"
    );

    // A Pop of a channel on each shard, each followed by a second message.
    // On the connection's own shard a Pop is answered at once, so its second
    // message is a new Pop; on the other shard the first is still running
    // and the connection closes. Either way nothing but request 9's answers.
    let mut closed = 0;
    for ch in &names_on_each_shard("running_pop", 1) {
        let mut msg = Vec::new();
        PopRequest {
            channel: ch.as_bytes(),
        }
        .encode(&mut msg, 9);
        let mut twice = msg.clone();
        twice.extend_from_slice(&msg);
        let mut c = node.neo();
        c.send_raw(&twice);
        let mut answers = Vec::new();
        // Bounded: at most 4 messages, each within IO_TIMEOUT.
        let mut was_closed = false;
        for _ in 0..4 {
            match c.try_recv(9, dmq_testkit::IO_TIMEOUT) {
                Ok(Some(payload)) => answers.push(payload),
                Ok(None) => panic!("{ch}: neither an answer nor a close"),
                Err(e) if dmq_testkit::is_disconnect(&e) => {
                    was_closed = true;
                    break;
                }
                Err(e) => panic!("{ch}: {e}"),
            }
        }
        if was_closed {
            closed += 1;
            assert!(answers.len() <= 2, "{ch}: {answers:?}");
            // One close is enough (each one costs the node's 5 s wait, see
            // protocol_error_leaves_no_request_running).
            break;
        } else {
            // Two whole Pops: SupportedStatus and Empty, twice.
            assert_eq!(answers, [vec![0xFD], vec![2], vec![0xFD], vec![2]], "{ch}");
            assert_eq!(c.push(&[ch], "v"), PUSHED, "{ch}: still up");
        }
    }
    assert!(closed <= 1);
    let mut c = node.neo();
    assert_eq!(c.push(&both, "after"), PUSHED);
}

/// When a protocol error closes a connection while a Push for another shard
/// is still collected in the reader's batch (not yet sent to that shard), the
/// request must not stay registered as running: the node would otherwise wait
/// 5 s for it before it closes the socket and log "requests still running 5 s
/// after close".
#[test]
fn protocol_error_leaves_no_request_running() {
    let node = Node::start_neo(&[]);
    let both = names_on_each_shard("stuck", 1);
    let mut msg = Vec::new();
    encode_push(&mut msg, 5, &[both[0].as_bytes(), both[1].as_bytes()], b"v").expect("push");
    // The Push, then request id 0 (a protocol error) in the same write.
    let mut c = node.neo();
    c.queue_raw(&msg);
    c.queue_request(0, &[9, 0]);
    c.flush();
    let seen = c.drain_until_closed("request id 0 behind a Push for another shard");
    assert!(seen.len() <= 2, "{seen:?}");
    // Another request on a fresh connection proves the node handled the close
    // (the log line, if any, is written before the socket is closed).
    assert_eq!(node.neo().push(&both, "after"), PUSHED);
    assert!(
        !node.log().contains("requests still running"),
        "a request stayed registered after the protocol error:\n{}",
        node.log()
    );
}

#[test]
fn a_finished_consume_id_starts_a_new_request() {
    let node = Node::start_neo(&["performance.write_flush_ms=1"]);
    let mut c = node.neo();
    let id = c.consume("again", "");
    assert!(c.stop_consume(id).is_empty());
    // The same id, now a Pop.
    let mut msg = Vec::new();
    PopRequest { channel: b"again" }.encode(&mut msg, id);
    c.send_raw(&msg);
    assert_eq!(c.read_pop(id), Pop::Subscribed);
    // And a Consume again.
    let mut msg = Vec::new();
    dmq_proto::neo::ConsumeRequest {
        channel: b"again",
        subscriber: b"",
    }
    .encode(&mut msg, id);
    c.send_raw(&msg);
    assert_eq!(c.read_consume_start(id), ConsumeStatus::Started);
    assert!(c.stop_consume(id).is_empty());
}
