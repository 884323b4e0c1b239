//! Past `server.connection_limit` open connections (over all shards), a new
//! connection is accepted and closed at once; the connections already open keep
//! working, and once one of them ends a new one is admitted again.

use std::thread;
use std::time::Duration;

use dmq_testkit::legacy::{Client, NOT_SUPPORTED, OK};
use dmq_testkit::node::Node;

const LIMIT: usize = 4;

/// A connection the node admitted (it answered a request), trying again while
/// the node still counts connections that were just closed.
fn admitted(node: &Node) -> Client {
    for _ in 0..400 {
        if let Ok(mut c) = Client::try_connect(node.addr()) {
            c.queue_get_num_connections();
            if c.try_flush().is_ok() && c.try_read_status().ok() == Some(NOT_SUPPORTED) {
                return c;
            }
        }
        thread::sleep(Duration::from_millis(25));
    }
    panic!("no connection admitted after 400 attempts");
}

#[test]
fn connection_past_the_limit_is_closed() {
    let node = Node::start(&[&format!("server.connection_limit={LIMIT}")]);
    let mut open: Vec<Client> = (0..LIMIT).map(|_| admitted(&node)).collect();

    // Several over the limit: each is accepted, then closed with no reply.
    for n in 0..3 {
        let mut extra = node.client();
        extra.queue_get_num_connections();
        let _ = extra.try_flush();
        extra.expect_closed(&format!("connection {} over the limit", n + 1));
    }

    // The admitted ones are unaffected.
    for (i, c) in open.iter_mut().enumerate() {
        let ch = format!("limit{i}");
        assert_eq!(c.push(&ch, "v"), OK);
        assert_eq!(c.pop(&ch), Ok(b"v".to_vec()));
    }

    // Closing one frees a slot.
    drop(open.pop());
    let mut again = admitted(&node);
    assert_eq!(again.push("again", "v"), OK);
    assert_eq!(again.pop("again"), Ok(b"v".to_vec()));
    open.push(again);

    // And the limit holds again.
    let mut extra = node.client();
    extra.queue_get_num_connections();
    let _ = extra.try_flush();
    extra.expect_closed("connection over the limit after a slot was reused");
}
