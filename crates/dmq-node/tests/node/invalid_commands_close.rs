//! Command codes the node does not serve (0, the removed Get* requests 3, 4, 5,
//! the never-public 7 and 13, and anything unknown) close the connection with
//! no reply; GetNumConnections (8) is answered 406 and the connection goes on.

use dmq_testkit::legacy::{NOT_SUPPORTED, OK};
use dmq_testkit::node::Node;

const CLOSING_CODES: [i32; 9] = [0, 3, 4, 5, 7, 13, 99, -1, i32::MAX];

#[test]
fn each_invalid_code_closes_without_reply() {
    let node = Node::start(&[]);
    for code in CLOSING_CODES {
        let mut c = node.client();
        c.send_raw(&code.to_le_bytes());
        c.expect_closed(&format!("code {code}"));
    }
}

#[test]
fn invalid_code_with_trailing_bytes_closes_after_earlier_replies() {
    let node = Node::start(&[]);
    for code in CLOSING_CODES {
        let mut c = node.client();
        // A valid Push, then the invalid code followed by what looks like a
        // Pop: the Push is answered, nothing after the invalid code is.
        c.queue_push("kept", "v");
        c.queue(&code.to_le_bytes());
        c.queue_pop("kept");
        c.flush();
        assert_eq!(c.read_status(), OK, "code {code}");
        c.expect_closed(&format!("code {code}"));
    }
    // Every Push was done, and no Pop after an invalid code was.
    let mut c = node.client();
    for _ in CLOSING_CODES {
        assert_eq!(c.pop("kept"), Ok(b"v".to_vec()));
    }
    assert_eq!(c.pop("kept"), Ok(Vec::new()));
}

#[test]
fn get_num_connections_is_406_and_the_connection_stays_usable() {
    let node = Node::start(&[]);
    let mut c = node.client();
    assert_eq!(c.get_num_connections(), NOT_SUPPORTED);
    assert_eq!(c.push("after406", "v"), OK);
    assert_eq!(c.get_num_connections(), NOT_SUPPORTED);
    assert_eq!(c.pop("after406"), Ok(b"v".to_vec()));
    // Raw bytes: the code alone, no request data.
    c.send_raw(&8i32.to_le_bytes());
    assert_eq!(c.read_exact(4), 406i32.to_le_bytes());
}
