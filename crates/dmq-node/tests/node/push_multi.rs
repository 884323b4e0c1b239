//! PushMulti: all names are checked before anything is pushed (409), an empty
//! value is 408, duplicates in the list push twice, an empty list is 200.

use dmq_testkit::legacy::{BAD_CHANNEL_NAME, EMPTY_VALUE, ERROR, OK};
use dmq_testkit::node::Node;

use crate::support::names_on_each_shard;

#[test]
fn any_bad_name_is_409_and_nothing_is_pushed() {
    let node = Node::start(&[]);
    let mut c = node.client();
    let names = names_on_each_shard("pm_bad", 2);
    let (existing, fresh) = (&names[..2], &names[2..]);
    for ch in existing {
        assert_eq!(c.push(ch, "before"), OK);
    }
    for bad in [&b"a.b"[..], b"x y", b"@"] {
        let list: Vec<&[u8]> = vec![
            existing[0].as_bytes(),
            fresh[0].as_bytes(),
            bad,
            existing[1].as_bytes(),
            fresh[1].as_bytes(),
        ];
        assert_eq!(c.push_multi(&list, "value"), BAD_CHANNEL_NAME, "{bad:?}");
        // The bad name last, too.
        let list: Vec<&[u8]> = vec![existing[0].as_bytes(), existing[1].as_bytes(), bad];
        assert_eq!(c.push_multi(&list, "value"), BAD_CHANNEL_NAME, "{bad:?}");
    }
    for ch in existing {
        assert_eq!(c.pop(ch), Ok(b"before".to_vec()), "{ch}");
        assert_eq!(c.pop(ch), Ok(Vec::new()), "{ch}");
    }
    for ch in fresh {
        assert_eq!(c.pop(ch), Err(ERROR), "{ch} must not have been created");
    }
}

#[test]
fn empty_value_is_408_and_nothing_is_pushed() {
    let node = Node::start(&[]);
    let mut c = node.client();
    let names = names_on_each_shard("pm_empty", 2);
    assert_eq!(c.push(&names[0], "before"), OK);
    assert_eq!(c.push(&names[1], "before"), OK);
    assert_eq!(c.push_multi(&names, ""), EMPTY_VALUE);
    for ch in &names[..2] {
        assert_eq!(c.pop(ch), Ok(b"before".to_vec()));
        assert_eq!(c.pop(ch), Ok(Vec::new()));
    }
    // The value is checked before any channel is created.
    for ch in &names[2..] {
        assert_eq!(c.pop(ch), Err(ERROR), "{ch}");
    }
    // A bad name wins over an empty value.
    assert_eq!(
        c.push_multi(&[names[0].as_bytes(), b"bad.name"], ""),
        BAD_CHANNEL_NAME
    );
}

#[test]
fn duplicates_push_twice_on_both_shards() {
    let node = Node::start(&[]);
    let mut c = node.client();
    let names = names_on_each_shard("pm_dup", 1);
    let (a, b) = (&names[0], &names[1]);
    let list = [a, a, b, a, b];
    assert_eq!(c.push_multi(&list, "v1"), OK);
    assert_eq!(c.push_multi(&[b], "v2"), OK);
    for _ in 0..3 {
        assert_eq!(c.pop(a), Ok(b"v1".to_vec()));
    }
    assert_eq!(c.pop(a), Ok(Vec::new()));
    assert_eq!(c.pop(b), Ok(b"v1".to_vec()));
    assert_eq!(c.pop(b), Ok(b"v1".to_vec()));
    assert_eq!(c.pop(b), Ok(b"v2".to_vec()));
    assert_eq!(c.pop(b), Ok(Vec::new()));
}

#[test]
fn empty_list_is_200_and_does_nothing() {
    let node = Node::start(&[]);
    let mut c = node.client();
    let none: [&str; 0] = [];
    assert_eq!(c.push_multi(&none, "value"), OK);
    assert_eq!(c.push_multi(&none, ""), EMPTY_VALUE);
    // Still in sync.
    assert_eq!(c.push("after", "x"), OK);
    assert_eq!(c.pop("after"), Ok(b"x".to_vec()));
}

#[test]
fn creates_missing_channels() {
    let node = Node::start(&[]);
    let mut c = node.client();
    let names = names_on_each_shard("pm_new", 3);
    for ch in &names {
        assert_eq!(c.pop(ch), Err(ERROR));
    }
    assert_eq!(c.push_multi(&names, "hello"), OK);
    for ch in &names {
        assert_eq!(c.pop(ch), Ok(b"hello".to_vec()), "{ch}");
        assert_eq!(c.pop(ch), Ok(Vec::new()), "{ch}");
    }
}

#[test]
fn a_long_list_over_both_shards() {
    let node = Node::start(&[]);
    let mut c = node.client();
    let names = names_on_each_shard("pm_long", 150);
    for i in 0..3 {
        assert_eq!(c.push_multi(&names, format!("v{i}")), OK);
    }
    for ch in &names {
        for i in 0..3 {
            assert_eq!(c.pop(ch), Ok(format!("v{i}").into_bytes()), "{ch}");
        }
        assert_eq!(c.pop(ch), Ok(Vec::new()), "{ch}");
    }
}
