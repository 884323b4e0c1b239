//! Push/pop throughput of the memory ring (the work a shard does per record).
//!
//! Run: `cargo bench -p dmq-benches --bench ring`.

use std::hint::black_box;
use std::time::Instant;

use dmq_storage::Ring;

fn main() {
    for size in [16usize, 100, 1024, 16 * 1024] {
        let mut ring = Ring::with_capacity(64 * 1024 * 1024);
        let record = vec![7u8; size];
        let n = (512 * 1024 * 1024 / (size + 8)).min(5_000_000);
        // Keep about 1000 records queued so wrap-around happens.
        for _ in 0..1000 {
            ring.push(&record);
        }
        let start = Instant::now();
        for _ in 0..n {
            black_box(ring.push(black_box(&record)));
            black_box(ring.pop().map(<[u8]>::len));
        }
        let elapsed = start.elapsed();
        let ns = elapsed.as_nanos() as f64 / n as f64;
        let gbps = (n * size) as f64 / elapsed.as_secs_f64() / 1e9;
        println!("record {size:>6} B: {ns:>8.1} ns per push+pop, {gbps:>6.2} GB/s");
    }
}
