//! Clients that connect to the metrics port and stall (half a request, or
//! nothing at all) do not hold up other scrapes nor the legacy port: those are
//! served while the stalled connections are still open. The node closes a
//! stalled connection itself after a while.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use dmq_testkit::legacy::OK;
use dmq_testkit::metrics::scrape;
use dmq_testkit::node::NodeOptions;
use dmq_testkit::IO_TIMEOUT;

use crate::support::names_on_each_shard;

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
        .unwrap_or_else(|e| panic!("connect to the metrics endpoint {addr}: {e}"));
    stream.set_write_timeout(Some(IO_TIMEOUT)).expect("timeout");
    stream
}

/// Whether the node has neither answered nor closed `stream` yet.
fn still_open(stream: &TcpStream) -> bool {
    stream.set_nonblocking(true).expect("nonblocking");
    let mut buf = [0u8; 64];
    let open = match (&*stream).read(&mut buf) {
        Err(e) => e.kind() == ErrorKind::WouldBlock,
        Ok(_) => false,
    };
    stream.set_nonblocking(false).expect("blocking");
    open
}

#[test]
fn stalled_metrics_clients_do_not_block_scrapes_or_legacy_requests() {
    let node = NodeOptions::new().metrics().start();
    let metrics = node.metrics_addr();

    // Half a request line; half a header block; a connection that says nothing.
    let mut half_line = connect(metrics);
    half_line.write_all(b"GET /metr").expect("send");
    let mut half_head = connect(metrics);
    half_head
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .expect("send");
    let silent = connect(metrics);
    let stalled = [&half_line, &half_head, &silent];

    // Another scrape is answered in full, and the legacy port serves, while
    // the stalled connections are still open (so nothing waited for them).
    let before = scrape(metrics);
    assert!(before.family("dmq_connections").is_some());
    let channels = names_on_each_shard("slow", 1);
    let mut c = node.client();
    for ch in &channels {
        assert_eq!(c.push(ch, "v"), OK);
    }
    for ch in &channels {
        assert_eq!(c.pop(ch), Ok(b"v".to_vec()));
    }
    let after = scrape(metrics);
    for ch in &channels {
        assert_eq!(
            after.value("dmq_pushed_records_total", &[("channel", ch)]),
            1.0,
            "{ch}"
        );
    }
    for (i, stream) in stalled.iter().enumerate() {
        assert!(
            still_open(stream),
            "stalled connection {i} was closed before the other requests were served"
        );
    }

    // The node does not keep a stalled connection for ever: each one ends
    // (closed, possibly with an error answer) within a bounded time.
    for (i, stream) in stalled.iter().enumerate() {
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .expect("timeout");
        let mut rest = Vec::new();
        let mut reader: &TcpStream = stream;
        match reader.read_to_end(&mut rest) {
            Ok(_) => {}
            Err(e) if dmq_testkit::is_disconnect(&e) => {}
            Err(e) => panic!("stalled connection {i} still open: {e}"),
        }
        if !rest.is_empty() {
            let text = String::from_utf8_lossy(&rest);
            assert!(
                text.starts_with("HTTP/1.1 4") || text.starts_with("HTTP/1.0 4"),
                "stalled connection {i}: unexpected answer {text:?}"
            );
        }
    }
    // Still serving afterwards.
    scrape(metrics);
    drop(half_line);
    drop(half_head);
}
