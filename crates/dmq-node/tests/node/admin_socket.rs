//! The admin UNIX socket (node contract): `list-credentials`,
//! `update-credentials` (a bad file keeps the old credentials), `channels`,
//! `remove-channel NAME`, `stats`, and `Command not found` for anything else.
//! Several commands may be sent on one connection.

use dmq_testkit::legacy::OK;
use dmq_testkit::neo::{key_hex, Auth, ConsumeEvent, NeoClient, Pop, PUSHED, TEST_KEY};
use dmq_testkit::node::{test_credentials, Node};
use dmq_testkit::records::record;

use crate::support::names_on_each_shard;

#[test]
fn list_credentials_shows_the_test_client() {
    let node = Node::start_neo(&[]);
    let mut admin = node.admin();
    assert_eq!(
        admin.lines("list-credentials"),
        ["Registered credentials:", "test"]
    );
    assert_eq!(admin.credential_names(), ["test"]);
}

#[test]
fn update_credentials_lets_a_new_client_in() {
    let node = Node::start_neo(&[]);
    let alice_key = [0xA5; 128];
    let alice = Auth::named("alice", alice_key);
    assert!(
        NeoClient::connect_with(node.neo_addr(), &alice).is_none(),
        "alice is unknown at first"
    );
    std::fs::write(
        node.credentials_file(),
        format!("{}alice:{}\n", test_credentials(), key_hex(&alice_key)),
    )
    .expect("write the credentials file");
    let mut admin = node.admin();
    assert_eq!(admin.line("update-credentials"), "Credentials updated.");
    assert_eq!(admin.credential_names(), ["alice", "test"]);
    let mut c = NeoClient::connect_with(node.neo_addr(), &alice).expect("alice is known now");
    assert_eq!(c.push(&["from_alice"], "hi"), PUSHED);
    assert_eq!(c.pop("from_alice"), Pop::Popped(b"hi".to_vec()));
    // The test client still works.
    assert_eq!(node.neo().pop("from_alice"), Pop::Empty);

    // Removing a client: new connections of it are refused, the old one
    // keeps working (it is authenticated already).
    std::fs::write(node.credentials_file(), test_credentials()).expect("write");
    assert_eq!(admin.line("update-credentials"), "Credentials updated.");
    assert!(NeoClient::connect_with(node.neo_addr(), &alice).is_none());
    assert!(node.wait_log("Authentication failure for client 'alice': Unknown client name"));
    assert_eq!(c.push(&["from_alice"], "still"), PUSHED);
}

#[test]
fn a_bad_file_keeps_the_old_credentials() {
    let node = Node::start_neo(&[]);
    let mut admin = node.admin();
    let bad_files = [
        "x:y\n".to_string(),
        format!("test:{}\n", "0".repeat(255)),
        format!("test:{}g\n", "0".repeat(255)),
        format!("bad name:{}\n", "0".repeat(256)),
        format!(":{}\n", "0".repeat(256)),
    ];
    for content in &bad_files {
        std::fs::write(node.credentials_file(), content).expect("write");
        let reply = admin.line("update-credentials");
        assert!(reply.starts_with("Error: "), "{content:?}: {reply:?}");
        assert_eq!(admin.credential_names(), ["test"], "{content:?}");
        assert_eq!(node.neo().push(&["ok"], "v"), PUSHED, "{content:?}");
    }
    // A missing file on reload is an error too, and keeps them.
    std::fs::remove_file(node.credentials_file()).expect("rm");
    assert!(admin.line("update-credentials").starts_with("Error: "));
    assert_eq!(node.neo().push(&["ok"], "v"), PUSHED);
    // An empty (but present) file is valid: nobody may connect.
    std::fs::write(node.credentials_file(), "").expect("write");
    assert_eq!(admin.line("update-credentials"), "Credentials updated.");
    assert!(admin.credential_names().is_empty());
    assert!(NeoClient::connect_with(node.neo_addr(), &Auth::named("test", TEST_KEY)).is_none());
}

#[test]
fn channels_lists_storages_with_counts() {
    let node = Node::start_neo(&["performance.write_flush_ms=1"]);
    let mut admin = node.admin();
    assert!(admin.channels().is_empty(), "a new node has no channels");
    let both = names_on_each_shard("listed", 1);
    let mut legacy = node.client();
    for i in 0..3 {
        assert_eq!(legacy.push(&both[0], record(i)), OK);
    }
    let mut c = node.neo();
    for i in 0..2 {
        assert_eq!(c.push(&[&both[1]], format!("value{i}")), PUSHED);
    }
    let mut expected = vec![
        (both[0].clone(), [3, 3 * (8 + 9), 0, 0]),
        (both[1].clone(), [2, 2 * (8 + 6), 0, 0]),
    ];
    expected.sort();
    assert_eq!(
        admin.channels(),
        expected,
        "name records bytes (headers included)"
    );

    // A neo Consume with subscriber "sub" renames the storage to sub@channel
    // (with its records, now being sent); a second subscriber adds an empty
    // storage that receives only new records.
    let id = c.consume(&both[1], "sub");
    let mut got = c.next_records(id);
    assert_eq!(c.push(&["unrelated"], "x"), PUSHED);
    let other = c.consume(&both[1], "other");
    assert_eq!(c.push(&[&both[1]], "new"), PUSHED);
    let names: Vec<String> = admin.channels().into_iter().map(|(n, _)| n).collect();
    let mut expected_names = vec![
        both[0].clone(),
        format!("other@{}", both[1]),
        format!("sub@{}", both[1]),
        "unrelated".to_string(),
    ];
    expected_names.sort();
    assert_eq!(names, expected_names);
    assert_eq!(c.next_records(other), vec![b"new".to_vec()]);
    c.send_continue(id);
    c.send_continue(other);
    // Bounded: the backlog and "new" arrive in a few batches.
    while got.len() < 3 {
        got.extend(c.next_records(id));
        c.send_continue(id);
    }
    assert_eq!(
        got,
        [b"value0".to_vec(), b"value1".to_vec(), b"new".to_vec()]
    );
    assert_eq!(
        admin.storage(&format!("sub@{}", both[1])).map(|f| f[0]),
        Some(0)
    );
    assert_eq!(
        admin.storage(&format!("other@{}", both[1])),
        Some([0, 0, 0, 0])
    );
    // The default subscriber is "@channel".
    let default = c.consume(&both[0], "");
    assert_eq!(c.next_records(default).len(), 3);
    assert!(admin.storage(&format!("@{}", both[0])).is_some());
    assert!(admin.storage(&both[0]).is_none());
}

#[test]
fn remove_channel_removes_it_and_ends_its_consumes() {
    let node = Node::start_neo(&["performance.write_flush_ms=1"]);
    let mut admin = node.admin();
    let mut c = node.neo();
    for ch in names_on_each_shard("doomed", 1) {
        assert_eq!(c.push(&[&ch], "v"), PUSHED);
        let mut consumer = node.neo();
        let id = consumer.consume(&ch, "sub");
        assert_eq!(consumer.next_records(id), vec![b"v".to_vec()]);
        consumer.send_continue(id);
        let mut legacy_consumer = node.client();
        assert_eq!(legacy_consumer.consume(&ch), OK);
        assert!(admin.storage(&format!("sub@{ch}")).is_some());
        assert_eq!(
            admin.line(&format!("remove-channel {ch}")),
            format!("Channel {ch} removed.")
        );
        assert_eq!(
            consumer.next_event(id),
            ConsumeEvent::ChannelRemoved,
            "{ch}"
        );
        assert_eq!(
            legacy_consumer.next_record(),
            None,
            "{ch}: legacy end marker"
        );
        let names: Vec<String> = admin.channels().into_iter().map(|(n, _)| n).collect();
        assert!(
            names.iter().all(|n| !n.ends_with(&ch.to_string())),
            "{ch} still listed: {names:?}"
        );
        // Legacy Pop: the channel is missing.
        assert_eq!(
            node.client().pop(&ch),
            Err(dmq_testkit::legacy::ERROR),
            "{ch}"
        );
    }
    // A channel that does not exist: still "removed" (as legacy answers 200).
    assert_eq!(
        admin.line("remove-channel never_was"),
        "Channel never_was removed."
    );
    assert!(admin.storage("never_was").is_none(), "not created");
    // Invalid names and usage.
    assert!(admin.line("remove-channel bad.name").starts_with("Error: "));
    assert!(admin.line("remove-channel").starts_with("Error: "));
    assert!(admin.line("remove-channel a b").starts_with("Error: "));
}

#[test]
fn stats_has_keys() {
    let node = Node::start_neo(&[]);
    let mut c = node.neo();
    assert_eq!(c.push(&["counted"], "12345"), PUSHED);
    let mut admin = node.admin();
    let lines = admin.lines("stats");
    let stats: Vec<(String, u64)> = lines
        .iter()
        .map(|l| {
            let (k, v) = l
                .split_once(": ")
                .unwrap_or_else(|| panic!("stats line {l:?} is not 'key: value'"));
            (
                k.to_string(),
                v.parse()
                    .unwrap_or_else(|e| panic!("stats line {l:?}: {e}")),
            )
        })
        .collect();
    let get = |key: &str| {
        stats
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("no {key} in {lines:?}"))
    };
    assert_eq!(get("shards"), 2);
    assert_eq!(get("channels"), 1);
    assert_eq!(get("records_memory"), 1);
    assert_eq!(get("bytes_memory"), 8 + 5);
    assert!(get("neo_connections") >= 1);
    assert!(get("pushed_records") >= 1);
}

#[test]
fn unknown_commands_and_several_on_one_connection() {
    let node = Node::start_neo(&[]);
    let mut admin = node.admin();
    for command in [
        "help",
        "CHANNELS",
        "remove",
        "",
        "stats-now",
        "list credentials",
    ] {
        assert_eq!(admin.line(command), "Command not found", "{command:?}");
    }
    // The connection still takes known commands, in order.
    assert_eq!(admin.credential_names(), ["test"]);
    assert!(admin.channels().is_empty());
    assert_eq!(admin.line("bogus"), "Command not found");
    // Extra arguments to a command that takes none.
    assert!(admin.line("stats now").starts_with("Error: "));
}
