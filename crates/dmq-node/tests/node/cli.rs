//! The command line: `--check-config` prints the effective YAML, config errors
//! exit 2 naming the key, `--version` works, `-c` reads a YAML file.

use dmq_testkit::node::run_dmqnode;
use dmq_testkit::ports::free_listener;

#[test]
fn check_config_prints_yaml() {
    let (status, stdout, stderr) =
        run_dmqnode(&["--check-config", "-O", "server.port=12345"]).into_text();
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    assert!(stdout.contains("port:"), "{stdout}");
    assert!(
        stdout.contains("12345"),
        "the override is applied: {stdout}"
    );
    assert!(stdout.contains("channel_size_limit:"), "{stdout}");
}

#[test]
fn printed_config_file_loads_back() {
    let (status, yaml, stderr) = run_dmqnode(&[
        "--check-config",
        "-O",
        "server.shards=2",
        "-O",
        "server.channel_size_limit=4096",
    ])
    .into_text();
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("node.yaml");
    std::fs::write(&path, &yaml).expect("write config");
    let path = path.to_str().expect("utf-8 path");
    let (status, again, stderr) = run_dmqnode(&["-c", path, "--check-config"]).into_text();
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    assert_eq!(again, yaml);
}

#[test]
fn unknown_key_exits_2_naming_it() {
    let (status, _, stderr) = run_dmqnode(&["--check-config", "-O", "server.bogus=1"]).into_text();
    assert_eq!(status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains("bogus"), "{stderr}");
    // Also without --check-config: the node does not start.
    let (status, stdout, stderr) =
        run_dmqnode(&["-O", "server.bogus=1", "-O", "server.port=0"]).into_text();
    assert_eq!(status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains("bogus"), "{stderr}");
    assert!(!stdout.contains("serving"), "{stdout}");
}

#[test]
fn bad_value_exits_2_naming_the_key() {
    let (status, _, stderr) =
        run_dmqnode(&["--check-config", "-O", "server.address=nope"]).into_text();
    assert_eq!(status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains("server.address"), "{stderr}");
}

#[test]
fn version_is_printed() {
    let (status, stdout, stderr) = run_dmqnode(&["--version"]).into_text();
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    assert!(stdout.contains("dmqnode"), "{stdout}");
    assert!(stdout.contains(env!("CARGO_PKG_VERSION")), "{stdout}");
}

#[test]
fn port_in_use_fails_naming_the_port() {
    // Held without SO_REUSEPORT, so the node cannot join it.
    let holder = free_listener();
    let port = holder.local_addr().expect("addr").port();
    let (status, stdout, stderr) = run_dmqnode(&[
        "-O",
        &format!("server.port={port}"),
        "-O",
        "server.neoport=0",
        "-O",
        "server.shards=1",
        "-O",
        "metrics.address=",
        "-O",
        "log.file=",
    ])
    .into_text();
    assert_ne!(status.code(), Some(0), "stdout: {stdout}");
    assert!(stderr.contains("server.port"), "{stderr}");
    assert!(!stdout.contains("serving"), "{stdout}");
}
