//! SIGINT, SIGTERM and SIGQUIT each stop the node cleanly (exit status 0), also
//! while a Consume, a Produce stream and a half-sent request are open; the open
//! connections are closed.

use dmq_testkit::legacy::OK;
use dmq_testkit::node::Node;
use dmq_testkit::records::record;
use dmq_testkit::IO_TIMEOUT;

fn stops_cleanly_on(signal: i32) {
    let mut node = Node::start(&[]);
    let mut pusher = node.client();

    let mut consumer = node.client();
    assert_eq!(consumer.consume("consumed"), OK);
    assert_eq!(pusher.push("consumed", record(0)), OK);
    assert_eq!(consumer.next_record(), Some(record(0)));

    let mut producer = node.client();
    assert_eq!(producer.produce("produced"), OK);
    producer.produce_record(record(1));
    producer.flush();

    // A Push cut in the middle of its value.
    let mut half = node.client();
    let mut bytes = Vec::new();
    dmq_proto::legacy::Request::Push {
        channel: b"half",
        value: b"0123456789",
    }
    .encode(&mut bytes);
    half.send_raw(&bytes[..bytes.len() - 4]);

    let mut idle = node.client();
    idle.sync();

    node.signal(signal);
    let status = node.wait_exit(IO_TIMEOUT);
    assert_eq!(
        status.code(),
        Some(0),
        "signal {signal}: exit status {status}"
    );
    for (what, c) in [
        ("consumer", &mut consumer),
        ("producer", &mut producer),
        ("half request", &mut half),
        ("idle", &mut idle),
        ("pusher", &mut pusher),
    ] {
        assert!(c.drain_until_closed(1024 * 1024), "{what} still open");
    }
}

#[test]
fn sigint_exits_0() {
    stops_cleanly_on(libc::SIGINT);
}

#[test]
fn sigterm_exits_0() {
    stops_cleanly_on(libc::SIGTERM);
}

#[test]
fn sigquit_exits_0() {
    stops_cleanly_on(libc::SIGQUIT);
}

/// The node announces that it serves ("dmqnode: serving with N shard(s)"), so
/// a supervisor may stop it right after that line: this must be a clean stop,
/// not death by the signal's default action.
#[test]
fn sigterm_right_after_the_serving_line_exits_0() {
    for attempt in 0..5 {
        let mut node = Node::start_unprobed(&[]);
        node.signal(libc::SIGTERM);
        let status = node.wait_exit(IO_TIMEOUT);
        assert_eq!(
            status.code(),
            Some(0),
            "attempt {attempt}: exit status {status}"
        );
    }
}

/// SIGHUP is for logrotate: the log file is reopened at its path and the node
/// goes on serving.
#[test]
fn sighup_reopens_the_log_and_keeps_serving() {
    let mut node = Node::start(&[]);
    let log = node.dir().join("root.log");
    let rotated = node.dir().join("root.log.1");
    std::fs::rename(&log, &rotated).expect("rotate the log");
    node.signal(libc::SIGHUP);
    let mut reopened = false;
    // Bounded wait for the signal thread.
    for _ in 0..400 {
        if std::fs::read_to_string(&log).is_ok_and(|text| text.contains("reopened")) {
            reopened = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    assert!(reopened, "no new log file after SIGHUP");
    assert!(node.is_running());
    let mut c = node.client();
    assert_eq!(c.push("after_hup", "v"), OK);
    assert_eq!(c.pop("after_hup"), Ok(b"v".to_vec()));
    drop(c);
    let status = node.stop();
    assert_eq!(status.code(), Some(0), "exit status {status}");
}

/// A consumer that stops reading leaves the node blocked writing to it; the
/// shutdown still completes (after the node's drain timeout) with status 0.
#[test]
fn a_consumer_that_does_not_read_does_not_block_shutdown() {
    let mut node = Node::start(&["server.channel_size_limit=16777216"]);
    let mut pusher = node.client();
    let mut consumer = node.client();
    assert_eq!(consumer.consume("unread"), OK);
    // 15 MB: more than the socket buffers between node and consumer hold.
    let mut value = vec![b'x'; 100_000];
    for i in 0..150 {
        value[..9].copy_from_slice(&record(i));
        assert_eq!(pusher.push("unread", &value), OK, "push {i}");
    }
    node.signal(libc::SIGTERM);
    let status = node.wait_exit(IO_TIMEOUT * 2);
    assert_eq!(status.code(), Some(0), "exit status {status}");
    drop(consumer);
}
