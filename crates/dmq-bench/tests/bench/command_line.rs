//! The binary's command line: bad arguments exit 2 with a message, helpers read
//! reports (median, plot), and an unreachable target fails cleanly.

use dmq_bench::report::Report;

use crate::support::run;

#[test]
fn bad_arguments_exit_2() {
    for args in [
        &["push", "--size", "100", "--size-dist", "uniform:1:2"][..],
        &["push", "--in-flight", "0"],
        &["consume"],
        &["fanout", "--target", "redis"],
        &["no-such-workload"],
    ] {
        let output = run(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(!output.stderr.is_empty(), "{args:?}: no message");
    }
    let help = run(&["--help"]);
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for workload in [
        "push",
        "pop",
        "push-pop",
        "produce",
        "consume",
        "fanout",
        "neo-push",
        "neo-pop",
        "neo-consume",
        "ping",
        "echo-server",
    ] {
        assert!(text.contains(workload), "--help lacks {workload}");
    }
}

#[test]
fn unreachable_target_fails_with_a_reason() {
    let port = dmq_testkit::ports::free_port();
    let output = run(&[
        "push",
        "--addr",
        &format!("127.0.0.1:{port}"),
        "--count",
        "10",
        "--no-progress",
        "--connect-timeout-ms",
        "500",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = output.stderr.clone();
    assert!(stderr.contains("cannot connect"), "{stderr}");
}

#[test]
fn median_and_plot_read_reports() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sample = r#"{"tool":"dmq-bench 0.1.0","label":null,"workload":"push","target":"dmq",
        "addrs":["127.0.0.1:10000"],"neo_addrs":[],"connections":1,"in_flight":1,"size":"100",
        "channels":1,"subscribers":null,"loop_kind":"closed","rate_per_s":null,"warmup_s":1.0,
        "duration_s":5.0,"count":null,"idle_connections":0,"started_unix_s":0,"elapsed_s":5.0,
        "requests":10,"records":10,"bytes":1000,"empty_count":0,"error_count":0,
        "first_error":null,"failures":[],"records_per_s":RATE,"mb_per_s":0.0002,
        "requests_per_s":2.0,"latency":null,"latency_percentiles":[],
        "timeline":[{"t_s":1.0,"records_per_s":2.0,"mb_per_s":0.0002}],"server":null,"extra":{}}"#;
    let mut files = Vec::new();
    for (i, rate) in ["3.0", "1.0", "2.0"].iter().enumerate() {
        let path = dir.path().join(format!("r{i}.json"));
        std::fs::write(&path, sample.replace("RATE", rate)).expect("write");
        assert!(Report::read_json(&path).is_ok());
        files.push(path.display().to_string());
    }
    let mut args = vec!["median", "records_per_s"];
    args.extend(files.iter().map(String::as_str));
    let output = run(&args);
    assert!(output.status.success());
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "2");
    args[1] = "latency.p99_us";
    assert_eq!(String::from_utf8_lossy(&run(&args).stdout).trim(), "-");

    let plots = dir.path().join("plots");
    let output = run(&[
        "plot",
        &files[0],
        "--plot-dir",
        &plots.display().to_string(),
        "--prefix",
        "push-",
    ]);
    assert!(output.status.success(), "{}", output.stderr.clone());
    assert!(plots.join("push-throughput.svg").exists());
    assert!(plots.join("push-latency.svg").exists());
}
