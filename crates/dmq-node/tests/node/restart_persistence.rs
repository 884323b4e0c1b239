//! Memory rings survive a clean restart: SIGTERM dumps every non-empty storage
//! to `<data_dir>/<storage>.rq`, the next start loads them (subscribers
//! included) and deletes the files. A data directory written by the original
//! node loads as its fixtures README says.

use std::path::Path;

use dmq_testkit::legacy::{Client, ERROR, OK};
use dmq_testkit::node::Node;
use dmq_testkit::records::record;

fn data_dir_override(dir: &Path) -> String {
    format!("server.data_dir={}", dir.display())
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn records_and_subscribers_survive_a_clean_restart() {
    let data = tempfile::tempdir().expect("tempdir");
    let data_dir = data_dir_override(data.path());
    let names = crate::support::names_on_each_shard("keep", 2);
    let (plain, subscribed) = (&names[0], &names[1]);

    let mut node = Node::start(&[&data_dir]);
    let mut client = node.client();
    // Subscribe the default subscriber of one channel, then leave.
    let mut consumer = node.client();
    assert_eq!(consumer.consume(subscribed), OK);
    assert_eq!(client.push(subscribed, record(0)), OK);
    assert_eq!(consumer.next_record(), Some(record(0)));
    drop(consumer);
    for i in 1..=100 {
        assert_eq!(client.push(plain, record(i)), OK);
        assert_eq!(client.push(subscribed, record(i)), OK);
    }
    for other in &names[2..] {
        assert_eq!(client.push(other, b"left"), OK);
    }
    drop(client);
    assert_eq!(node.stop().code(), Some(0));
    let dumped = files_in(data.path());
    assert!(dumped.contains(&format!("{plain}.rq")), "{dumped:?}");
    assert!(dumped.contains(&format!("@{subscribed}.rq")), "{dumped:?}");

    let node = Node::start(&[&data_dir]);
    assert!(
        files_in(data.path()).iter().all(|f| !f.ends_with(".rq")),
        "loaded dumps are deleted: {:?}",
        files_in(data.path())
    );
    let mut client = node.client();
    for i in 1..=100 {
        assert_eq!(client.pop(plain), Ok(record(i)));
    }
    assert_eq!(client.pop(plain), Ok(Vec::new()));
    for other in &names[2..] {
        assert_eq!(client.pop(other), Ok(b"left".to_vec()));
    }
    // Still subscribed: Pop is refused, Consume gets the records in order.
    assert_eq!(client.pop(subscribed), Err(ERROR));
    let mut consumer = node.client();
    assert_eq!(consumer.consume(subscribed), OK);
    for i in 1..=100 {
        assert_eq!(consumer.next_record(), Some(record(i)));
    }
}

#[test]
fn the_original_nodes_data_directory_loads() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/original-loadfiles/data");
    assert!(fixture.is_dir(), "fixture {} missing", fixture.display());
    let data = tempfile::tempdir().expect("tempdir");
    for entry in std::fs::read_dir(&fixture).expect("fixture dir") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), data.path().join(entry.file_name())).expect("copy");
    }
    let data_dir = data_dir_override(data.path());
    let node = Node::start(&[&data_dir, "server.channel_size_limit=100000"]);
    // Everything loaded is deleted once the node serves.
    assert_eq!(files_in(data.path()), Vec::<String>::new());

    let storages: Vec<(String, u64)> = node
        .admin()
        .channels()
        .into_iter()
        .map(|(name, figures)| (name, figures[0]))
        .collect();
    let expected: Vec<(String, u64)> = [
        ("@ch1", 2),
        ("@ch3", 1),
        ("@ch5", 1),
        ("ch2", 2),
        ("ch4", 1),
        ("sub1@ch1", 2),
        ("sub1@ch3", 1),
        ("sub2@ch1", 2),
    ]
    .into_iter()
    .map(|(n, r)| (n.to_owned(), r))
    .collect();
    assert_eq!(storages, expected);

    let mut client = node.client();
    for _ in 0..2 {
        assert_eq!(client.pop("ch2"), Ok(b"Hello ch2!".to_vec()));
    }
    assert_eq!(client.pop("ch2"), Ok(Vec::new()));
    assert_eq!(client.pop("ch4"), Ok(b"Hello ch4!".to_vec()));
    assert_eq!(client.pop("ch4"), Ok(Vec::new()));
    for subscribed in ["ch1", "ch3", "ch5"] {
        assert_eq!(
            client.pop(subscribed),
            Err(ERROR),
            "{subscribed} is subscribed"
        );
    }
    // The default subscriber's records, through a legacy Consume.
    let mut consumer = node.client();
    assert_eq!(consumer.consume("ch1"), OK);
    for _ in 0..2 {
        assert_eq!(consumer.next_record(), Some(b"Hello ch1!".to_vec()));
    }
    let mut consumer: Client = node.client();
    assert_eq!(consumer.consume("ch5"), OK);
    assert_eq!(consumer.next_record(), Some(b"Hello ch5!".to_vec()));
}

#[test]
fn a_dump_larger_than_its_ring_loads_with_the_excess_on_disk() {
    let data = tempfile::tempdir().expect("tempdir");
    // Three records of 100 bytes (108 each in a ring) for a 256-byte ring:
    // two fit in memory, the third goes to the disk overflow (Q7 fixed).
    let records: Vec<Vec<u8>> = (0..3u8).map(|i| vec![b'a' + i; 100]).collect();
    let dump = dmq_storage::files::encode_dump(records.iter().map(Vec::as_slice)).expect("encode");
    std::fs::write(data.path().join("big.rq"), &dump).expect("write");
    let data_dir = data_dir_override(data.path());
    let node = Node::start(&[&data_dir, "server.channel_size_limit=256"]);
    assert!(
        !data.path().join("big.rq").exists(),
        "the loaded dump is deleted: {:?}",
        files_in(data.path())
    );
    let mut admin = node.admin();
    assert_eq!(admin.storage("big"), Some([2, 216, 1, 100]));
    let mut client = node.client();
    for record in &records {
        assert_eq!(client.pop("big").as_ref(), Ok(record));
    }
    assert_eq!(client.pop("big"), Ok(Vec::new()));
}

#[test]
fn an_overflow_file_without_its_index_is_left_in_place() {
    // What the original leaves after a crash: records, but no index naming
    // their channels. They cannot be loaded; they must not be deleted either.
    let data = tempfile::tempdir().expect("tempdir");
    let mut writer = dmq_storage::files::OverflowWriter::new();
    writer.push(1, b"orphan");
    let bytes = writer.into_bytes();
    std::fs::write(data.path().join("overflow.dat"), &bytes).expect("write");
    let data_dir = data_dir_override(data.path());
    let mut node = Node::start(&[&data_dir]);
    assert_eq!(files_in(data.path()), vec!["overflow.dat".to_owned()]);
    assert_eq!(
        std::fs::read(data.path().join("overflow.dat")).expect("read"),
        bytes
    );
    assert!(
        node.log().contains("no index names their channels"),
        "{}",
        node.log()
    );
    assert_eq!(node.stop().code(), Some(0));
}

#[test]
fn unfinished_temporary_files_of_a_stop_are_deleted_at_start() {
    let data = tempfile::tempdir().expect("tempdir");
    std::fs::write(data.path().join(".half.rq.tmp"), b"partial").expect("write");
    let data_dir = data_dir_override(data.path());
    let node = Node::start(&[&data_dir]);
    assert!(
        !data.path().join(".half.rq.tmp").exists(),
        "{:?}",
        files_in(data.path())
    );
    let mut client = node.client();
    assert_eq!(client.pop("half"), Err(ERROR), "nothing was loaded from it");
}
