//! `dmqnode gen-key NAME` prints a credentials line `NAME:<256 hex digits>`
//! with a random key; written into the credentials file and loaded with
//! `update-credentials`, it lets client NAME authenticate with that key. An
//! invalid name exits 2.

use dmq_testkit::neo::{parse_key_hex, Auth, NeoClient, Pop, PUSHED};
use dmq_testkit::node::{run_dmqnode, test_credentials, Node};

fn gen_key(name: &str) -> (String, [u8; 128]) {
    let (status, stdout, stderr) = run_dmqnode(&["gen-key", name]).into_text();
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {stdout:?}");
    let (got_name, hex) = lines[0]
        .split_once(':')
        .unwrap_or_else(|| panic!("not name:key: {stdout:?}"));
    assert_eq!(got_name, name);
    assert_eq!(hex.len(), 256, "{hex}");
    assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()), "{hex}");
    (lines[0].to_string(), parse_key_hex(hex))
}

#[test]
fn generated_line_lets_the_client_authenticate() {
    let (line, key) = gen_key("alice");
    let node = Node::start_neo(&[]);
    let alice = Auth::named("alice", key);
    assert!(NeoClient::connect_with(node.neo_addr(), &alice).is_none());
    std::fs::write(
        node.credentials_file(),
        format!("{}{line}\n", test_credentials()),
    )
    .expect("write the credentials file");
    let mut admin = node.admin();
    assert_eq!(admin.line("update-credentials"), "Credentials updated.");
    assert_eq!(admin.credential_names(), ["alice", "test"]);
    let mut c = NeoClient::connect_with(node.neo_addr(), &alice).expect("alice authenticates");
    assert_eq!(c.push(&["gen_key"], "v"), PUSHED);
    assert_eq!(c.pop("gen_key"), Pop::Popped(b"v".to_vec()));
    // Another key for the same name does not work.
    let mut wrong = key;
    wrong[0] ^= 1;
    assert!(NeoClient::connect_with(node.neo_addr(), &Auth::named("alice", wrong)).is_none());
}

#[test]
fn keys_are_random() {
    let (_, a) = gen_key("bob");
    let (_, b) = gen_key("bob");
    assert_ne!(a, b, "two runs gave the same key");
    assert_ne!(a, [0; 128]);
}

#[test]
fn names_allowed_in_credentials_files() {
    // Any printable ASCII without spaces, up to 100 bytes.
    for name in [
        "a",
        "app-1.example",
        &"n".repeat(100),
        "!#$%&'()*+,-./~;<=>?@[]^_`{|}",
    ] {
        let (line, _) = gen_key(name);
        assert!(line.starts_with(&format!("{name}:")), "{line}");
    }
}

#[test]
fn invalid_name_exits_2() {
    let long = "n".repeat(101);
    for name in ["", "with space", "tab\there", "new\nline", "é", &long] {
        let (status, stdout, stderr) = run_dmqnode(&["gen-key", name]).into_text();
        assert_eq!(
            status.code(),
            Some(2),
            "{name:?}: stdout {stdout:?} stderr {stderr:?}"
        );
        assert!(stdout.is_empty(), "{name:?}: no key printed: {stdout:?}");
        assert!(!stderr.is_empty(), "{name:?}: a reason on stderr");
    }
}

/// A name with `:` cannot be in a credentials file (a line is split at its
/// first `:`), so gen-key must refuse it rather than print a line that makes
/// the whole file invalid: `a:b:<256 hex>` gives `update-credentials` the
/// answer "Error: etc/credentials: Invalid key length 258 (should be 256)".
#[test]
fn name_with_a_colon_exits_2() {
    for name in ["a:b", ":", "app:"] {
        let (status, stdout, stderr) = run_dmqnode(&["gen-key", name]).into_text();
        assert_eq!(
            status.code(),
            Some(2),
            "{name:?}: gen-key printed {stdout:?} (stderr {stderr:?}); that line does not parse \
             back as a credentials line"
        );
        assert!(stdout.is_empty(), "{name:?}: {stdout:?}");
    }
}
