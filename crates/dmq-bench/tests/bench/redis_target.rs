//! Against a real Redis: LPUSH/RPOP move every record, Consume's RPOP drain and
//! its BRPOP form take exactly the prefill, PING round-trips.
//!
//! Redis is not part of the Rust toolchain, so this runs only when asked:
//! `DMQ_BENCH_REDIS=1 cargo test -p dmq-bench --test bench redis_target`. Then
//! `redis-server` must be on PATH (the test fails if it is not); without the
//! variable the test prints that it was not requested and passes.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{local, run, run_report, KillOnDrop};

struct Redis {
    child: KillOnDrop,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Redis {
    fn start() -> Redis {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = dmq_testkit::ports::free_port();
        let mut child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn redis-server");
        let stdout = child.stdout.take().expect("stdout");
        let child = KillOnDrop(child);
        std::thread::spawn(move || {
            // Drain the log so the server never blocks on it.
            for _ in BufReader::new(stdout).lines() {}
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ping = run(&[
                "ping",
                "--target",
                "redis",
                "--addr",
                &local(port),
                "--count",
                "1",
            ]);
            if ping.status.success() {
                break;
            }
            assert!(Instant::now() < deadline, "redis-server did not answer");
            std::thread::sleep(Duration::from_millis(50));
        }
        Redis {
            child,
            port,
            _dir: dir,
        }
    }
}

#[test]
fn redis_push_pop_consume_and_ping() {
    if std::env::var("DMQ_BENCH_REDIS").as_deref() != Ok("1") {
        println!(
            "redis_target: not requested (set DMQ_BENCH_REDIS=1 to run it against redis-server)"
        );
        return;
    }
    let found = Command::new("redis-server").arg("--version").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "DMQ_BENCH_REDIS=1 but redis-server is not on PATH"
    );
    let redis = Redis::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let report = |name: &str, line: String| run_report(dir.path(), name, &line);
    let target = format!("--target redis --addr {}", local(redis.port));
    let move_all = format!("{target} --connections 4 --in-flight 16 --count 20000");
    let push = report(
        "push",
        format!("push {move_all} --server-pid {}", redis.child.id()),
    );
    assert_eq!((push.records, push.bytes), (20_000, 2_000_000));
    assert!(push.server.as_ref().is_some_and(|s| s.rss_end_bytes > 0));
    let pop = report("pop", format!("pop {move_all}"));
    assert_eq!((pop.records, pop.bytes), (20_000, 2_000_000));
    let consume = report(
        "consume",
        format!("consume {target} --connections 2 --in-flight 1000 --count 50000"),
    );
    assert_eq!(consume.records, 50_000);
    let blocking = report(
        "brpop",
        format!(
            "consume {target} --connections 2 --in-flight 10 --count 5000 --redis-blocking-pop"
        ),
    );
    assert_eq!(blocking.records, 5000);
    let ping = report("ping", format!("ping {target} --count 100"));
    assert_eq!(ping.records, 100);
}
