//! Against a real Redis: LPUSH/RPOP move every record, Consume's RPOP drain and
//! its BRPOP form take exactly the prefill, PING round-trips.
//!
//! Redis is not part of the Rust toolchain, so this runs only when asked:
//! `DMQ_BENCH_REDIS=1 cargo test -p dmq-bench --test redis_target`. Then
//! `redis-server` must be on PATH (the test fails if it is not); without the
//! variable the test prints that it was not requested and passes.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{local, run, run_report};

struct Redis {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Redis {
    fn start() -> Redis {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = dmq_testkit::free_port();
        let mut child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn redis-server");
        let stdout = child.stdout.take().expect("stdout");
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

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
    let addr = local(redis.port);
    let pid = redis.child.id().to_string();
    let redis_args = ["--target", "redis", "--addr", addr.as_str()];
    let with = |extra: &[&'static str]| -> Vec<String> {
        let mut v: Vec<String> = extra[..1].iter().map(|s| s.to_string()).collect();
        v.extend(redis_args.iter().map(|s| s.to_string()));
        v.extend(extra[1..].iter().map(|s| s.to_string()));
        v
    };
    let report = |name: &str, args: Vec<String>| {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        run_report(dir.path(), name, &refs)
    };
    let mut push_args = with(&[
        "push",
        "--connections",
        "4",
        "--in-flight",
        "16",
        "--count",
        "20000",
    ]);
    push_args.extend(["--server-pid".to_string(), pid]);
    let push = report("push", push_args);
    assert_eq!((push.records, push.bytes), (20_000, 2_000_000));
    assert!(push.server.as_ref().is_some_and(|s| s.rss_end_bytes > 0));
    let pop = report(
        "pop",
        with(&[
            "pop",
            "--connections",
            "4",
            "--in-flight",
            "16",
            "--count",
            "20000",
        ]),
    );
    assert_eq!((pop.records, pop.bytes), (20_000, 2_000_000));
    let consume = report(
        "consume",
        with(&[
            "consume",
            "--connections",
            "2",
            "--in-flight",
            "1000",
            "--count",
            "50000",
        ]),
    );
    assert_eq!(consume.records, 50_000);
    let blocking = report(
        "brpop",
        with(&[
            "consume",
            "--connections",
            "2",
            "--in-flight",
            "10",
            "--count",
            "5000",
            "--redis-blocking-pop",
        ]),
    );
    assert_eq!(blocking.records, 5000);
    let ping = report("ping", with(&["ping", "--count", "100"]));
    assert_eq!(ping.records, 100);
}
