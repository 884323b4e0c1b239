//! The client runs inside a `glommio::LocalExecutor` with `glommio::net::TcpStream`
//! (through `GlommioConnector`): Push, Pop, PushMulti, Produce and a merged Consume,
//! with several requests in flight at once on one thread. Needs the `glommio`
//! feature (on by default).
#![cfg(feature = "glommio")]

use std::time::Duration;

use dmq_client::{Client, GlommioConnector, Protocol};
use dmq_testkit::node::nodes;
use dmq_testkit::records::record;
use futures_lite::future;

use crate::support::{addrs, config, counts};

fn on_glommio(protocol: Protocol) {
    let nodes = nodes(3);
    let addrs = addrs(&nodes);
    let executor = glommio::LocalExecutorBuilder::default()
        .make()
        .expect("glommio executor");
    executor.run(async move {
        let client = Client::new(addrs, config(protocol), GlommioConnector).expect("client");
        let channel = "glommio";
        // Two pushes in flight at once on this one thread share the client.
        for i in (0..60).step_by(2) {
            let (a, b) = future::zip(
                client.push(channel, &record(i)),
                client.push(channel, &record(i + 1)),
            )
            .await;
            a.expect("push");
            b.expect("push");
        }
        client
            .push_multi(&[channel, "glommio2"], &record(60))
            .await
            .expect("push_multi");
        assert_eq!(client.pop("glommio2").await.expect("pop"), Some(record(60)));

        let mut producer = client.produce(channel).await.expect("produce");
        for i in 61..120 {
            producer.send(&record(i)).await.expect("send");
        }
        assert_eq!(producer.finish().await.expect("finish"), 59);

        let mut consumer = client.consume(channel, "").await.expect("consume");
        let mut got = Vec::new();
        while got.len() < 120 {
            let next = glommio::timer::timeout(Duration::from_secs(10), async {
                Ok(consumer.next().await)
            })
            .await
            .expect("a record within 10 s");
            got.push(next.expect("consume").expect("not ended"));
        }
        assert!(consumer.stop().await.is_empty());
        let seen = counts(got);
        assert_eq!(seen.len(), 120);
        assert!((0..120).all(|i| seen[&record(i)] == 1));
        // The channel is subscribed now (neo Pop would be refused); remove it.
        client.remove_channel(channel).await.expect("remove");
        assert_eq!(client.pop(channel).await.expect("pop"), None);
    });
}

#[test]
fn legacy_client_on_glommio() {
    on_glommio(Protocol::Legacy);
}

#[test]
fn neo_client_on_glommio() {
    on_glommio(Protocol::Neo);
}
