//! Rebuilding channels and their modes from storage names at startup (spec
//! 5.4): `ch` alone is an unsubscribed channel; `@ch` or `sub@ch` make it
//! subscribed; a plain `ch` next to subscriber storages of the same channel
//! is the original's `AddSubscriberException`, and startup fails.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

use super::FileError;
use crate::names::{is_valid_storage_file_stem, split_storage_name};

/// What one channel holds after loading: its mode, and the records of each
/// storage in pop order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelContent {
    /// Only a plain `ch` storage: one queue, no subscribers.
    Unsubscribed(Vec<Vec<u8>>),
    /// Subscriber storages (`""` is the default subscriber), by subscriber name.
    Subscribed(BTreeMap<String, Vec<Vec<u8>>>),
}

/// Name used in errors: the storages come from several files.
const SOURCE: &str = "data directory";

/// Groups storages into channels. Each item is a storage name and records;
/// a name may appear more than once (a dump and an overflow chain), and its
/// records are appended in the order given. Pass the dumps first: the
/// original pops memory before the overflow (spec 4.5), so that is the order
/// a client reads them in. Fails on an invalid storage name or when a plain
/// `ch` storage meets a `sub@ch` storage, in either order.
pub fn reconstruct<S, I>(storages: I) -> Result<BTreeMap<String, ChannelContent>, FileError>
where
    S: AsRef<str>,
    I: IntoIterator<Item = (S, Vec<Vec<u8>>)>,
{
    let mut channels: BTreeMap<String, ChannelContent> = BTreeMap::new();
    for (name, records) in storages {
        let name = name.as_ref();
        let error = |reason: &str| FileError::Storage {
            file: SOURCE.to_owned(),
            storage: name.to_owned(),
            reason: reason.to_owned(),
        };
        if !is_valid_storage_file_stem(name) {
            return Err(error("invalid storage name"));
        }
        let (subscriber, channel) = split_storage_name(name);
        let mixed = "a channel cannot have both a plain storage and subscriber storages \
                     (AddSubscriberException)";
        match (channels.entry(channel.to_owned()), subscriber) {
            (Entry::Vacant(v), None) => {
                v.insert(ChannelContent::Unsubscribed(records));
            }
            (Entry::Vacant(v), Some(sub)) => {
                v.insert(ChannelContent::Subscribed(BTreeMap::from([(
                    sub.to_owned(),
                    records,
                )])));
            }
            (Entry::Occupied(mut o), None) => match o.get_mut() {
                ChannelContent::Unsubscribed(queue) => queue.extend(records),
                ChannelContent::Subscribed(_) => return Err(error(mixed)),
            },
            (Entry::Occupied(mut o), Some(sub)) => match o.get_mut() {
                ChannelContent::Subscribed(subs) => {
                    subs.entry(sub.to_owned()).or_default().extend(records)
                }
                ChannelContent::Unsubscribed(_) => return Err(error(mixed)),
            },
        }
    }
    Ok(channels)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recs(items: &[&str]) -> Vec<Vec<u8>> {
        items.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    #[test]
    fn modes_from_names() {
        let got = reconstruct([
            ("ch", recs(&["a"])),
            ("@sub", recs(&["d1"])),
            ("x@sub", recs(&[])),
            ("ch", recs(&["b"])),
            ("@sub", recs(&["d2"])),
            ("y@only", recs(&["y"])),
        ])
        .unwrap();
        assert_eq!(got["ch"], ChannelContent::Unsubscribed(recs(&["a", "b"])));
        let ChannelContent::Subscribed(subs) = &got["sub"] else {
            panic!("sub should be subscribed");
        };
        assert_eq!(subs[""], recs(&["d1", "d2"]));
        assert_eq!(subs["x"], recs(&[]));
        // `sub@ch` without `@ch` is subscribed too.
        let ChannelContent::Subscribed(subs) = &got["only"] else {
            panic!("only should be subscribed");
        };
        assert_eq!(subs.keys().collect::<Vec<_>>(), ["y"]);
        assert!(reconstruct(Vec::<(String, _)>::new()).unwrap().is_empty());
    }

    #[test]
    fn mixing_plain_and_subscribers_fails_either_way() {
        for order in [["ch", "@ch"], ["@ch", "ch"], ["s@ch", "ch"], ["ch", "s@ch"]] {
            let err = reconstruct(order.map(|n| (n, recs(&["r"])))).unwrap_err();
            assert!(
                err.to_string().contains("AddSubscriberException"),
                "{order:?}: {err}"
            );
        }
    }

    #[test]
    fn invalid_names_fail() {
        for bad in ["", "@", "ch@", "a@b@c", "a.b"] {
            assert!(
                matches!(reconstruct([(bad, vec![])]), Err(FileError::Storage { .. })),
                "{bad}"
            );
        }
    }
}
