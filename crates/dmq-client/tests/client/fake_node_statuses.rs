//! How Push treats each kind of answer, against fake legacy nodes that answer a
//! fixed status (or hang up after reading the request): fail-over on 500 and 407,
//! no retry on a refusal (409), "outcome unknown" when the connection breaks after
//! sending, unless the caller opted in to at-least-once.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dmq_client::{blocking, ClientConfig, Error, NodeAddr, RetryPolicy};
use dmq_proto::legacy::{check, DecodeError};
use dmq_testkit::ports::free_listener;

/// What a fake node does with each request.
#[derive(Clone, Copy)]
enum Answer {
    Status(i32),
    HangUp,
}

/// A fake legacy node; counts the requests it read. Its thread ends after 30 s.
fn fake(answer: Answer) -> (NodeAddr, Arc<AtomicUsize>) {
    let listener = free_listener();
    let addr: SocketAddr = listener.local_addr().expect("addr");
    listener.set_nonblocking(true).expect("nonblocking");
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let Ok((mut stream, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            };
            let counter = counter.clone();
            std::thread::spawn(move || {
                stream.set_nonblocking(false).expect("blocking");
                stream
                    .set_read_timeout(Some(Duration::from_secs(10)))
                    .expect("timeout");
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    match check(&buf) {
                        Ok(used) => {
                            buf.drain(..used);
                            counter.fetch_add(1, Ordering::SeqCst);
                            match answer {
                                Answer::Status(code) => {
                                    if stream.write_all(&code.to_le_bytes()).is_err() {
                                        return;
                                    }
                                }
                                Answer::HangUp => return,
                            }
                        }
                        Err(DecodeError::Incomplete { .. }) => match stream.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        },
                        Err(_) => return,
                    }
                }
            });
        }
    });
    (
        NodeAddr::new("127.0.0.1", addr.port()).expect("node"),
        requests,
    )
}

fn client(nodes: Vec<NodeAddr>, retry: RetryPolicy) -> blocking::Client {
    blocking::Client::new(
        nodes,
        ClientConfig {
            retry,
            request_timeout: Duration::from_secs(5),
            // Long enough that a node in back-off stays there for the whole test.
            backoff_initial: Duration::from_secs(60),
            backoff_max: Duration::from_secs(60),
            ..ClientConfig::default()
        },
    )
    .expect("client")
}

#[test]
fn error_and_full_nodes_fail_over() {
    for status in [500, 407] {
        let (bad, bad_count) = fake(Answer::Status(status));
        let (good, good_count) = fake(Answer::Status(200));
        let client = client(vec![bad, good], RetryPolicy::AtMostOnce);
        let pushed = client.push("ch", b"v").expect("fails over");
        assert_eq!(pushed.node, 1);
        assert!(!pushed.maybe_duplicated);
        assert_eq!(bad_count.load(Ordering::SeqCst), 1);
        assert_eq!(good_count.load(Ordering::SeqCst), 1);
    }
}

#[test]
fn a_refusal_is_not_retried_elsewhere() {
    let (refusing, _) = fake(Answer::Status(409));
    let (good, good_count) = fake(Answer::Status(200));
    let client = client(vec![refusing, good], RetryPolicy::AtLeastOnce);
    let err = client.push("ch", b"v").expect_err("refused");
    assert!(matches!(err, Error::Rejected { .. }), "{err:?}");
    assert!(err.to_string().contains("409"), "{err}");
    assert_eq!(good_count.load(Ordering::SeqCst), 0);
}

#[test]
fn a_broken_connection_after_sending_is_an_unknown_outcome() {
    let (hangs_up, hang_count) = fake(Answer::HangUp);
    let (good, good_count) = fake(Answer::Status(200));
    let at_most_once = client(
        vec![hangs_up.clone(), good.clone()],
        RetryPolicy::AtMostOnce,
    );
    let err = at_most_once.push("ch", b"v").expect_err("unknown");
    assert!(matches!(err, Error::OutcomeUnknown { .. }), "{err:?}");
    assert!(err.to_string().contains("outcome unknown"), "{err}");
    assert_eq!(hang_count.load(Ordering::SeqCst), 1);
    assert_eq!(good_count.load(Ordering::SeqCst), 0, "not retried");

    let at_least_once = client(vec![hangs_up, good], RetryPolicy::AtLeastOnce);
    let pushed = at_least_once.push("ch", b"v").expect("retried");
    assert_eq!(pushed.node, 1);
    assert!(pushed.maybe_duplicated);
    assert_eq!(good_count.load(Ordering::SeqCst), 1);
}

#[test]
fn every_node_failing_lists_each_failure() {
    let (error, _) = fake(Answer::Status(500));
    let closed = NodeAddr::new("127.0.0.1", dmq_testkit::ports::free_port()).expect("node");
    let client = client(vec![error, closed], RetryPolicy::AtMostOnce);
    let err = client.push("ch", b"v").expect_err("all failed");
    let Error::NodesFailed { request, failures } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(*request, "Push");
    assert_eq!(failures.len(), 2);
    let text = err.to_string();
    assert!(text.contains("status 500"), "{text}");
    assert!(text.contains("cannot connect"), "{text}");
    // The unreachable node is now in back-off: the next push skips it and says so.
    let err = client.push("ch", b"v").expect_err("all failed");
    assert!(err.to_string().contains("back-off"), "{err}");
}
