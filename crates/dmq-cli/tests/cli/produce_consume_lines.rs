//! `dmq produce CHANNEL < file` spreads the lines over the nodes, and
//! `dmq consume CHANNEL --count N` gives the same lines back; the same with
//! length-prefixed records (`--length-prefixed` / `--raw`).

use dmq_testkit::node::{credentials_line, nodes};

use crate::support::dmq_ok;

fn lines(count: usize) -> String {
    (0..count).map(|i| format!("line {i:05}\n")).collect()
}

#[test]
fn produce_a_file_and_consume_the_same_lines() {
    let nodes = nodes(2);
    let (a, b) = (nodes[0].node_arg(), nodes[1].node_arg());
    let input = lines(2000);
    dmq_ok(
        &["--node", &a, "--node", &b, "produce", "lines"],
        input.as_bytes(),
        &[],
    );
    // Both nodes got some.
    for node in [&a, &b] {
        let one = dmq_ok(&["--node", node, "pop", "lines"], b"", &[]).text();
        assert_eq!(one.lines().count(), 1, "{node} holds records");
        dmq_ok(&["--node", node, "push", "lines", one.trim_end()], b"", &[]);
    }
    // All of them come back, each once (order differs across nodes).
    let out = dmq_ok(
        &[
            "--node", &a, "--node", &b, "consume", "lines", "--count", "2000",
        ],
        b"",
        &[],
    );
    let mut got: Vec<String> = out.text().lines().map(str::to_owned).collect();
    got.sort();
    let want: Vec<String> = input.lines().map(str::to_owned).collect();
    assert_eq!(got, want);
    assert!(!out.stderr.contains("dropped"), "{}", out.stderr);
}

#[test]
fn produce_consume_round_trip_of_all_lines() {
    let nodes = nodes(2);
    let (a, b) = (nodes[0].node_arg(), nodes[1].node_arg());
    let input = lines(500);
    dmq_ok(
        &["--node", &a, "--node", &b, "produce", "all"],
        input.as_bytes(),
        &[],
    );
    let line = credentials_line();
    let out = dmq_ok(
        &[
            "--node", &a, "--node", &b, "--neo", "consume", "all", "--count", "500",
        ],
        b"",
        &[("DMQ_CREDENTIALS", &line)],
    );
    let text = out.text();
    let mut got: Vec<&str> = text.lines().collect();
    got.sort();
    let mut want: Vec<&str> = input.lines().collect();
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn length_prefixed_records_round_trip() {
    let nodes = nodes(1);
    let a = nodes[0].node_arg();
    let records: Vec<Vec<u8>> = vec![
        b"with\nnewline".to_vec(),
        vec![0, 1, 2, 255],
        b"plain".to_vec(),
    ];
    let mut input = Vec::new();
    for record in &records {
        input.extend_from_slice(&(record.len() as u64).to_le_bytes());
        input.extend_from_slice(record);
    }
    dmq_ok(
        &["--node", &a, "produce", "raw", "--length-prefixed"],
        &input,
        &[],
    );
    let out = dmq_ok(
        &["--node", &a, "consume", "raw", "--count", "3", "--raw"],
        b"",
        &[],
    );
    assert_eq!(out.stdout, input, "one node keeps the order");
}
