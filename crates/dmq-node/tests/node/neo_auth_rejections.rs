//! Neo authentication rejections (spec 3.4): each bad name, timestamp or code
//! gets the result byte 0, then the node closes the connection and logs
//! "Authentication failure for client '<name>': <reason>" in root.log. The
//! node goes on accepting correct clients.

use dmq_testkit::neo::{now_secs, Auth, NeoClient, PUSHED, TEST_KEY};
use dmq_testkit::node::Node;

/// Authenticates with `auth`, expects result 0 and a close, and the log line.
fn expect_rejected(node: &Node, auth: &Auth, log_name: &str, reason: &str) {
    let mut c = NeoClient::connect_raw(node.neo_addr());
    assert!(
        !c.authenticate(auth),
        "client {log_name:?} must be refused ({reason})"
    );
    c.expect_closed(&format!("after refusing {log_name:?}"));
    let line = format!("Authentication failure for client '{log_name}': {reason}");
    assert!(
        node.wait_log(&line),
        "root.log lacks {line:?}; it has:\n{}",
        node.log()
    );
}

fn test_auth() -> Auth {
    Auth::test()
}

#[test]
fn empty_name() {
    let node = Node::start_neo(&[]);
    let auth = Auth {
        name: Vec::new(),
        ..test_auth()
    };
    expect_rejected(&node, &auth, "", "Empty client name");
    assert_eq!(node.neo().push(&["ok"], "v"), PUSHED);
}

#[test]
fn name_over_100_bytes() {
    let node = Node::start_neo(&[]);
    let name = "n".repeat(101);
    let auth = Auth {
        name: name.clone().into_bytes(),
        ..test_auth()
    };
    expect_rejected(&node, &auth, &name, "Client name too long");
    // 100 bytes is not "too long", only unknown.
    let name = "n".repeat(100);
    let auth = Auth {
        name: name.clone().into_bytes(),
        ..test_auth()
    };
    expect_rejected(&node, &auth, &name, "Unknown client name");
    assert_eq!(node.neo().push(&["ok"], "v"), PUSHED);
}

#[test]
fn unknown_name() {
    let node = Node::start_neo(&[]);
    let auth = Auth::named("stranger", TEST_KEY);
    expect_rejected(&node, &auth, "stranger", "Unknown client name");
    // A prefix or a different case of a known name is unknown too.
    let auth = Auth::named("tes", TEST_KEY);
    expect_rejected(&node, &auth, "tes", "Unknown client name");
    let auth = Auth::named("TEST", TEST_KEY);
    expect_rejected(&node, &auth, "TEST", "Unknown client name");
    assert_eq!(node.neo().push(&["ok"], "v"), PUSHED);
}

#[test]
fn zero_timestamp() {
    let node = Node::start_neo(&[]);
    let auth = Auth {
        timestamp: 0,
        ..test_auth()
    };
    expect_rejected(&node, &auth, "test", "Zero client timestamp");
    assert_eq!(node.neo().push(&["ok"], "v"), PUSHED);
}

#[test]
fn timestamp_skew_over_1800_s_both_ways() {
    let node = Node::start_neo(&[]);
    let reason = "Client/node timestamp difference > 30 minutes";
    // A minute beyond the limit, so clock steps during the test do not matter.
    for timestamp in [now_secs() - 1800 - 60, now_secs() + 1800 + 60] {
        let auth = Auth {
            timestamp,
            ..test_auth()
        };
        expect_rejected(&node, &auth, "test", reason);
    }
    // Within the window (a minute inside it) both ways: accepted.
    for timestamp in [now_secs() - 1800 + 60, now_secs() + 1800 - 60] {
        let auth = Auth {
            timestamp,
            ..test_auth()
        };
        let mut c = NeoClient::connect_with(node.neo_addr(), &auth)
            .unwrap_or_else(|| panic!("timestamp {timestamp} is within 30 minutes"));
        assert_eq!(c.push(&["ok"], "v"), PUSHED);
    }
}

#[test]
fn timestamp_above_i64_max() {
    let node = Node::start_neo(&[]);
    for timestamp in [i64::MAX as u64 + 1, u64::MAX] {
        let auth = Auth {
            timestamp,
            ..test_auth()
        };
        expect_rejected(&node, &auth, "test", "Client timestamp above time_t.max");
    }
    assert_eq!(node.neo().push(&["ok"], "v"), PUSHED);
}

#[test]
fn wrong_hmac() {
    let node = Node::start_neo(&[]);
    let auth = Auth {
        corrupt_code: true,
        ..test_auth()
    };
    expect_rejected(&node, &auth, "test", "Client authentication rejected");
    // The right code made with another key.
    let auth = Auth::named("test", [0x5A; 128]);
    expect_rejected(&node, &auth, "test", "Client authentication rejected");
    // A code for another nonce (replayed from an earlier connection).
    let mut first = NeoClient::connect_raw(node.neo_addr());
    first.send_version(1);
    assert_eq!(first.read_version(), 1);
    let ts = now_secs();
    first.send_timestamp(ts);
    let nonce = first.read_nonce();
    let code = dmq_proto::neo::hmac_code(&TEST_KEY, ts, &nonce);
    first.send_identity(b"test", &code);
    assert!(first.read_auth_result());
    let mut replay = NeoClient::connect_raw(node.neo_addr());
    replay.send_version(1);
    assert_eq!(replay.read_version(), 1);
    replay.send_timestamp(ts);
    let other_nonce = replay.read_nonce();
    if other_nonce != nonce {
        replay.send_identity(b"test", &code);
        assert!(!replay.read_auth_result(), "a replayed code is refused");
        replay.expect_closed("after a replayed code");
    }
    // The accepted connection is unaffected.
    assert_eq!(first.push(&["ok"], "v"), PUSHED);
    assert_eq!(node.neo().push(&["ok"], "v"), PUSHED);
}

#[test]
fn non_printable_name_is_logged_escaped() {
    let node = Node::start_neo(&[]);
    // A name that would forge a log line if written raw.
    let auth = Auth::named(b"evil\nINFO forged", TEST_KEY);
    let mut c = NeoClient::connect_raw(node.neo_addr());
    assert!(!c.authenticate(&auth));
    c.expect_closed("after refusing a name with a newline");
    assert!(
        node.wait_log("Authentication failure for client 'evil"),
        "{}",
        node.log()
    );
    assert!(
        !node.log().lines().any(|l| l.starts_with("INFO forged")),
        "the name forged a log line:\n{}",
        node.log()
    );
    assert_eq!(node.neo().push(&["ok"], "v"), PUSHED);
}
