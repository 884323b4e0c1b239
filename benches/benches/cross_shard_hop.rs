//! The cost of one cross-shard hop, both ways, as the node makes it: a request
//! over glommio's bounded shared channel to the owner executor, the answer back
//! through a futures oneshot (a foreign wake-up of the asking task).
//!
//! Run: `cargo bench -p dmq-benches --bench cross_shard_hop` (optional args:
//! round trips per case, default 20000). Prints µs per round trip and per op for
//! one op per message and for batches, with the executors parking at once and
//! spinning 50 µs before parking.

use std::time::{Duration, Instant};

use futures_channel::oneshot;
use glommio::channels::shared_channel::{self, ConnectedReceiver, ConnectedSender};
use glommio::{LocalExecutorBuilder, Placement};

struct Msg {
    ops: Vec<u64>,
    reply: oneshot::Sender<u64>,
}

fn placement(cpu: usize) -> Placement {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus >= 2 {
        Placement::Fixed(cpu)
    } else {
        Placement::Unbound
    }
}

/// Round trips from an executor on `from_cpu` to one on `to_cpu`; returns the
/// mean time per round trip.
fn run_case(
    from_cpu: usize,
    to_cpu: usize,
    batch: usize,
    spin: Duration,
    trips: usize,
) -> Duration {
    let (tx, rx) = shared_channel::new_bounded::<Msg>(1024);
    let owner = LocalExecutorBuilder::new(placement(to_cpu))
        .name("owner")
        .spin_before_park(spin)
        .spawn(move || async move {
            let rx: ConnectedReceiver<Msg> = rx.connect().await;
            while let Some(msg) = rx.recv().await {
                let sum = msg.ops.iter().sum();
                let _ = msg.reply.send(sum);
            }
        })
        .expect("owner executor");
    let asker = LocalExecutorBuilder::new(placement(from_cpu))
        .name("asker")
        .spin_before_park(spin)
        .spawn(move || async move {
            let tx: ConnectedSender<Msg> = tx.connect().await;
            // Warm up both executors and the allocator.
            for _ in 0..1000 {
                let (reply, answer) = oneshot::channel();
                let _ = tx
                    .send(Msg {
                        ops: vec![1; batch],
                        reply,
                    })
                    .await;
                let _ = answer.await;
            }
            let start = Instant::now();
            for i in 0..trips {
                let (reply, answer) = oneshot::channel();
                let ops = vec![i as u64; batch];
                if tx.send(Msg { ops, reply }).await.is_err() {
                    break;
                }
                let _ = answer.await;
            }
            let elapsed = start.elapsed();
            drop(tx);
            elapsed / trips as u32
        })
        .expect("asker executor");
    let per_trip = asker.join().expect("asker");
    owner.join().expect("owner");
    per_trip
}

fn main() {
    let trips: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(20_000);
    println!("cross-shard hop: {trips} round trips per case");
    println!(
        "{:<10} {:>6} {:>9} {:>14} {:>12}",
        "direction", "batch", "spin_us", "us/round-trip", "us/op"
    );
    for spin_us in [0u64, 50] {
        for batch in [1usize, 16, 128] {
            for (from, to, name) in [(0, 1, "0->1->0"), (1, 0, "1->0->1")] {
                let t = run_case(from, to, batch, Duration::from_micros(spin_us), trips);
                let us = t.as_secs_f64() * 1e6;
                println!(
                    "{name:<10} {batch:>6} {spin_us:>9} {us:>14.2} {:>12.3}",
                    us / batch as f64
                );
            }
        }
    }
}
