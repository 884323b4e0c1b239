//! Bad arguments give a clear message and exit status 2, before any connection.

use crate::support::dmq;

#[test]
fn bad_arguments_exit_2_with_a_clear_message() {
    for (args, expect) in [
        (&["frobnicate"][..], "unrecognized subcommand"),
        (&["push"][..], "CHANNEL"),
        (
            &["pop", "ch", "--count", "many"][..],
            "invalid value 'many'",
        ),
        (&["consume"][..], "CHANNEL"),
        (&["--timeout-ms", "soon", "pop", "ch"][..], "--timeout-ms"),
        (&[][..], "Usage"),
    ] {
        let out = dmq(args);
        assert_eq!(out.code(), Some(2), "dmq {args:?}: {}", out.stderr);
        assert!(out.stderr.contains(expect), "dmq {args:?}: {}", out.stderr);
    }
}

#[test]
fn help_lists_the_commands() {
    let out = dmq(&["--help"]);
    assert_eq!(out.code(), Some(0));
    for command in [
        "push", "pop", "produce", "consume", "remove", "channels", "stats",
    ] {
        assert!(out.text().contains(command), "{command}: {}", out.text());
    }
}

#[test]
fn arguments_the_nodes_would_refuse_exit_1_in_one_line() {
    let out = dmq(&["--node", "127.0.0.1:1", "push", "bad.name", "x"]);
    assert_eq!(out.code(), Some(1));
    assert!(
        out.stderr
            .starts_with("dmq: invalid argument: channel name"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    let out = dmq(&["--node", "127.0.0.1:1", "--neo", "pop", "ch"]);
    assert_eq!(out.code(), Some(1));
    assert!(out.stderr.contains("credentials"), "{}", out.stderr);
    let out = dmq(&["--node", "nonsense", "pop", "ch"]);
    assert_eq!(out.code(), Some(1));
    assert!(out.stderr.contains("node list"), "{}", out.stderr);
}
