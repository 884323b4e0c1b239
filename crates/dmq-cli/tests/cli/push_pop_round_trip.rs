//! `dmq push` then `dmq pop` give the records back, over two nodes, with the
//! legacy and the neo protocol (credentials from a file and from DMQ_CREDENTIALS).

use dmq_testkit::node::{credentials_line, nodes};

use crate::support::dmq_ok;

#[test]
fn legacy_push_pop_round_trip() {
    let nodes = nodes(2);
    let (a, b) = (nodes[0].node_arg(), nodes[1].node_arg());
    let base = ["--node", a.as_str(), "--node", b.as_str()];
    let with =
        |rest: &[&str]| -> Vec<String> { base.iter().chain(rest).map(|s| s.to_string()).collect() };
    let run = |rest: &[&str], stdin: &[u8]| {
        let args = with(rest);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        dmq_ok(&args, stdin, &[])
    };
    run(&["push", "cli", "first"], b"");
    run(&["push", "cli", "-"], b"second");
    run(&["push", "cli"], b"third");
    let popped = run(&["pop", "cli", "--count", "10"], b"").text();
    let mut lines: Vec<&str> = popped.lines().collect();
    lines.sort();
    assert_eq!(lines, ["first", "second", "third"]);
    // Empty now: nothing printed, still success.
    assert_eq!(run(&["pop", "cli"], b"").text(), "");
}

#[test]
fn neo_push_pop_round_trip() {
    let nodes = nodes(2);
    let (a, b) = (nodes[0].node_arg(), nodes[1].node_arg());
    let file = nodes[0].credentials_file();
    let file = file.to_str().expect("utf8 path");
    let line = credentials_line();
    dmq_ok(
        &[
            "--neo",
            "--credentials",
            file,
            "--node",
            &a,
            "--node",
            &b,
            "push",
            "neocli",
            "x1",
        ],
        b"",
        &[],
    );
    dmq_ok(
        &["--node", &a, "--node", &b, "--neo", "push", "neocli", "x2"],
        b"",
        &[("DMQ_CREDENTIALS", &line)],
    );
    let popped = dmq_ok(
        &[
            "--node", &a, "--node", &b, "--neo", "pop", "neocli", "--count", "3",
        ],
        b"",
        &[("DMQ_CREDENTIALS", &line)],
    )
    .text();
    let mut lines: Vec<&str> = popped.lines().collect();
    lines.sort();
    assert_eq!(lines, ["x1", "x2"]);
}
