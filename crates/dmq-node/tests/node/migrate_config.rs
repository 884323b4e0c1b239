//! `dmqnode migrate-config` turns the original's config.ini files into YAML
//! that `dmqnode --check-config` accepts with the same values.

use std::path::{Path, PathBuf};

use dmq_testkit::node::run_dmqnode;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/original-config")
        .join(name)
}

fn dmqnode(args: &[&str]) -> (i32, String, String) {
    let (status, stdout, stderr) = run_dmqnode(args).into_text();
    (status.code().unwrap_or(-1), stdout, stderr)
}

/// Migrates `name`, checks the YAML with `--check-config`, returns the checked YAML.
fn migrate_and_check(name: &str) -> String {
    let ini = fixture(name);
    assert!(ini.exists(), "fixture {} missing", ini.display());
    let (code, yaml, warnings) = dmqnode(&["migrate-config", ini.to_str().expect("utf-8 path")]);
    assert_eq!(code, 0, "{warnings}");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, &yaml).expect("write");
    let (code, checked, stderr) =
        dmqnode(&["-c", path.to_str().expect("utf-8 path"), "--check-config"]);
    assert_eq!(code, 0, "{stderr}\n{yaml}");
    checked
}

#[test]
fn example_config_keeps_its_values() {
    let checked = migrate_and_check("example-config.ini");
    for line in [
        "address: 0.0.0.0",
        "port: 10000",
        "neoport: 10001",
        "channel_size_limit: 2000000000",
        "admedia: 400000000",
        "write_flush_ms: 250",
        "write_index_ms: 60000",
        "level: trace",
        "file: log/root.log",
    ] {
        assert!(checked.contains(line), "{line:?} missing from:\n{checked}");
    }
}

#[test]
fn test_suite_configs_keep_their_values() {
    let checked = migrate_and_check("dmqtest-config.ini");
    assert!(
        checked.contains("channel_size_limit: 10000000"),
        "{checked}"
    );
    assert!(checked.contains("write_flush_ms: 1"), "{checked}");
    let checked = migrate_and_check("loadfiles-config.ini");
    assert!(checked.contains("port: 11000"), "{checked}");
    assert!(checked.contains("channel_size_limit: 100000"), "{checked}");
    assert!(checked.contains("address: 127.0.0.1:11002"), "{checked}");
}

#[test]
fn keys_without_effect_are_warned_about() {
    let ini = fixture("example-config.ini");
    let (code, _, warnings) = dmqnode(&["migrate-config", ini.to_str().expect("utf-8 path")]);
    assert_eq!(code, 0);
    assert!(warnings.contains("[Server] cpu"), "{warnings}");
    assert!(warnings.contains("[PidLock] path"), "{warnings}");
}

#[test]
fn a_broken_file_exits_2_naming_the_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("config.ini");
    std::fs::write(&path, "[Server]\nport 10000\n").expect("write");
    let (code, _, stderr) = dmqnode(&["migrate-config", path.to_str().expect("utf-8 path")]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("line 2"), "{stderr}");
}
