//! Golden test: the files the original D node's `loadfiles` integration test
//! starts from (spec 8.2, `shared/fixtures/original-loadfiles`) decode to
//! exactly the channels its README lists. The fixtures are required: a
//! missing file fails the test instead of skipping it.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use dmq_storage::files::{
    check_magic, parse_dump_file_name, read_dump, read_index_file, read_indexed, reconstruct, scan,
    ChannelContent, ScanStop, DATA_FILE_NAME, INDEX_FILE_NAME,
};

fn data_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/original-loadfiles/data");
    assert!(
        dir.is_dir(),
        "fixture directory {} is missing",
        dir.display()
    );
    dir
}

fn read(name: &str) -> Vec<u8> {
    let path = data_dir().join(name);
    fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// The dumps in the data directory, by storage name, as the original's scan
/// finds them (`.dat`/`.csv` skipped, other names ignored).
fn dumps() -> BTreeMap<String, Vec<Vec<u8>>> {
    let mut dumps = BTreeMap::new();
    for entry in fs::read_dir(data_dir()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if let Some(storage) = parse_dump_file_name(&name) {
            let bytes = read(&name);
            let dump = read_dump(&bytes).unwrap_or_else(|e| panic!("{}", e.in_file(&name)));
            dumps.insert(storage.to_owned(), dump.to_vecs());
        }
    }
    dumps
}

/// The overflow channels through the index, in index order.
fn overflow_by_index() -> Vec<(String, Vec<Vec<u8>>)> {
    let entries = read_index_file(&data_dir().join(INDEX_FILE_NAME)).unwrap();
    assert_eq!(entries.len(), 7);
    read_indexed(&read(DATA_FILE_NAME), &entries).unwrap()
}

fn hello(ch: &str, count: usize) -> Vec<Vec<u8>> {
    vec![format!("Hello {ch}!").into_bytes(); count]
}

fn subscribed(subs: &[&str], ch: &str, count: usize) -> ChannelContent {
    ChannelContent::Subscribed(
        subs.iter()
            .map(|s| (s.to_string(), hello(ch, count)))
            .collect(),
    )
}

fn expected() -> BTreeMap<String, ChannelContent> {
    BTreeMap::from([
        (
            "ch1".to_owned(),
            subscribed(&["", "sub1", "sub2"], "ch1", 2),
        ),
        (
            "ch2".to_owned(),
            ChannelContent::Unsubscribed(hello("ch2", 2)),
        ),
        ("ch3".to_owned(), subscribed(&["", "sub1"], "ch3", 1)),
        (
            "ch4".to_owned(),
            ChannelContent::Unsubscribed(hello("ch4", 1)),
        ),
        ("ch5".to_owned(), subscribed(&[""], "ch5", 1)),
    ])
}

#[test]
fn every_dump_decodes() {
    let dumps = dumps();
    let names: Vec<&str> = dumps.keys().map(String::as_str).collect();
    assert_eq!(names, ["@ch1", "@ch3", "ch2", "sub1@ch1", "sub2@ch1"]);
    for (storage, records) in &dumps {
        let (_, channel) = storage.split_once('@').unwrap_or(("", storage));
        assert_eq!(records, &hello(channel, 1), "{storage}");
    }
}

#[test]
fn index_and_links_give_the_readme_content() {
    let overflow = overflow_by_index();
    // Dumps first: the original pops memory before the overflow.
    let got = reconstruct(dumps().into_iter().chain(overflow)).unwrap();
    assert_eq!(got, expected());
}

#[test]
fn scan_agrees_with_the_index() {
    let data = read(DATA_FILE_NAME);
    check_magic(&data).unwrap();
    let scanned = scan(&data);
    assert_eq!(scanned.stop, ScanStop::End);
    assert_eq!(scanned.valid_end, data.len() as u64);
    assert_eq!(scanned.filler_count, 0);
    assert_eq!(scanned.channels.len(), 7);

    // The scan has ids, the index has names: join them on the first offset.
    let entries = read_index_file(&data_dir().join(INDEX_FILE_NAME)).unwrap();
    let by_scan = entries.iter().map(|e| {
        let (_, records) = scanned
            .channels
            .iter()
            .find(|(_, records)| records[0].offset == e.first_offset)
            .unwrap_or_else(|| {
                panic!("{}: no scanned chain at {}", e.storage_name, e.first_offset)
            });
        assert_eq!(records.last().unwrap().offset, e.last_offset);
        let payloads: Vec<Vec<u8>> = records.iter().map(|r| r.payload(&data).to_vec()).collect();
        (e.storage_name.clone(), payloads)
    });
    let got = reconstruct(dumps().into_iter().chain(by_scan)).unwrap();
    assert_eq!(got, expected());

    // The ids the original assigned, in order of first sight (spec 5.3).
    let ids: BTreeMap<u32, u64> = scanned
        .channels
        .iter()
        .map(|(id, r)| (*id, r[0].offset))
        .collect();
    assert_eq!(
        ids,
        BTreeMap::from([
            (1, 50),
            (2, 92),
            (3, 8),
            (4, 176),
            (5, 260),
            (6, 134),
            (7, 218)
        ])
    );
}

#[test]
fn plain_and_subscriber_storage_of_one_channel_is_rejected() {
    // As if `ch2.rq` sat next to `sub@ch2` in the index: the original's
    // AddSubscriberException.
    let mut storages: Vec<(String, Vec<Vec<u8>>)> = dumps().into_iter().collect();
    storages.push(("sub@ch2".to_owned(), hello("ch2", 1)));
    assert!(reconstruct(storages).is_err());
}
