//! A node nobody listens on: a one-line error on standard error and a non-zero
//! exit status, for every command that talks to nodes.

use dmq_testkit::ports::free_port;

use crate::support::dmq;

#[test]
fn unreachable_node_is_a_one_line_error() {
    let node = format!("127.0.0.1:{}", free_port());
    let socket = std::env::temp_dir().join(format!("no-such-dmq-{}.socket", std::process::id()));
    let socket = socket.to_str().expect("utf8");
    for args in [
        vec!["--node", &node, "push", "ch", "value"],
        vec!["--node", &node, "pop", "ch"],
        vec!["--node", &node, "produce", "ch"],
        vec!["--node", &node, "consume", "ch"],
        vec!["--node", &node, "remove", "ch"],
        vec!["channels", "--socket", socket],
        vec!["stats", "--socket", socket],
    ] {
        let out = dmq(&args);
        assert_eq!(out.code(), Some(1), "dmq {args:?}: {}", out.stderr);
        assert!(
            out.stderr.starts_with("dmq: "),
            "dmq {args:?}: {}",
            out.stderr
        );
        assert_eq!(
            out.stderr.lines().count(),
            1,
            "dmq {args:?}: {}",
            out.stderr
        );
        assert!(out.stdout.is_empty());
    }
    let out = dmq(&["--node", &node, "push", "ch", "value"]);
    assert!(out.stderr.contains("cannot connect"), "{}", out.stderr);
}
