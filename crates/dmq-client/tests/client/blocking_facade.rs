//! The blocking facade (async-io under `futures_lite::future::block_on`) does every
//! request: Push, PushMulti, Pop, Produce, Consume, RemoveChannel; and refuses bad
//! arguments before sending anything.

use dmq_client::{blocking, ClientConfig, Error, NodeAddr, Protocol};
use dmq_testkit::node::nodes;
use dmq_testkit::records::record;

use crate::support::{addrs, config, counts, receive};

#[test]
fn every_request_through_the_blocking_facade() {
    let nodes = nodes(3);
    let client = blocking::Client::new(addrs(&nodes), config(Protocol::Legacy)).expect("client");
    let channel = "facade";
    for i in 0..9 {
        client.push(channel, &record(i)).expect("push");
    }
    client
        .push_multi(&[channel, "facade2"], &record(9))
        .expect("push_multi");
    assert_eq!(client.pop("facade2").expect("pop"), Some(record(9)));
    assert_eq!(client.pop("facade2").expect("pop"), None);

    let mut producer = client.produce(channel).expect("produce");
    for i in 10..1010 {
        producer.send(&record(i)).expect("send");
    }
    producer.flush().expect("flush");
    assert_eq!(producer.finish().expect("finish"), 1000);

    let mut consumer = client.consume(channel, "").expect("consume");
    let seen = counts(receive(&mut consumer, 1010));
    assert_eq!(seen.len(), 1010);
    assert!((0..1010).all(|i| seen[&record(i)] == 1));
    drop(consumer.stop());
    client.remove_channel(channel).expect("remove");
    assert_eq!(client.pop(channel).expect("pop"), None);
}

#[test]
fn produce_spreads_over_nodes() {
    let nodes = nodes(3);
    let client = blocking::Client::new(addrs(&nodes), config(Protocol::Legacy)).expect("client");
    let mut producer = client.produce("produced").expect("produce");
    for i in 0..300 {
        producer.send(&record(i)).expect("send");
    }
    assert_eq!(producer.finish().expect("finish"), 300);
    let mut all = Vec::new();
    for node in 0..3 {
        let held = crate::support::drain_node(&client, node, "produced", 301);
        assert_eq!(held.len(), 100, "node {node}");
        all.extend(held);
    }
    assert_eq!(counts(all).len(), 300);
}

#[test]
fn bad_arguments_are_refused_before_sending() {
    // Nothing listens on this port: a request that got as far as connecting
    // would fail with a connection error instead.
    let port = dmq_testkit::ports::free_port();
    let client = blocking::Client::new(
        vec![NodeAddr::new("127.0.0.1", port).expect("node")],
        ClientConfig::default(),
    )
    .expect("client");
    for result in [
        client.push("bad.name", b"x"),
        client.push("", b"x"),
        client.push("ok", b""),
        client.push_multi(&[], b"x"),
    ] {
        assert!(
            matches!(result, Err(Error::InvalidArgument(_))),
            "{result:?}"
        );
    }
    assert!(matches!(
        client.consume("ok", "named"),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        blocking::Client::new(vec![], ClientConfig::default()),
        Err(Error::NodeList(_))
    ));
    let neo_without_credentials = ClientConfig {
        protocol: Protocol::Neo,
        ..ClientConfig::default()
    };
    assert!(matches!(
        blocking::Client::new(
            vec![NodeAddr::new("127.0.0.1", port).expect("node")],
            neo_without_credentials
        ),
        Err(Error::Credentials(_))
    ));
    // And an unreachable node is a one-line, typed failure.
    let err = client.push("ok", b"x").expect_err("nobody listens");
    assert!(matches!(err, Error::NodesFailed { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with("Push failed: 127.0.0.1:"),
        "{err}"
    );
    assert!(!err.to_string().contains('\n'));
}
