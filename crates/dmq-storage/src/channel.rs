//! A channel and its subscribers (spec 4.2).

use std::collections::BTreeMap;

use crate::disk::DiskWriter;
use crate::names::storage_name;
use crate::ring::Ring;
use crate::storage::{Storage, StorageError, Stored};

/// Why a Pop was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PopError {
    /// The channel has subscribers; records are taken with Consume only
    /// (legacy status 500, neo Subscribed).
    #[error("the channel has subscribers; Pop is refused")]
    Subscribed,
}

/// The storages of a channel in its two modes.
#[derive(Debug)]
enum Mode {
    /// One storage, named after the channel; Pop works.
    Unsubscribed(Storage),
    /// One storage per subscriber name; never empty. Sorted by name so that
    /// iteration (stats, dumps) is deterministic.
    Subscribed(BTreeMap<String, Storage>),
}

/// A channel: unsubscribed (one storage, Pop works) or subscribed (one
/// storage per subscriber name, Pop refused). Spec 4.2.
///
/// Subscriptions are permanent: a channel goes back to unsubscribed only by
/// being removed and created again. Every storage has a ring of the same
/// capacity, fixed when the channel is created.
///
/// A `Channel` lives on exactly one shard thread, in that shard's
/// [`Channels`](crate::Channels): it is created on first use and dropped on
/// RemoveChannel.
#[derive(Debug)]
pub struct Channel {
    name: String,
    ring_capacity: usize,
    mode: Mode,
}

impl Channel {
    /// An unsubscribed channel with one empty storage of `ring_capacity_bytes`.
    pub fn new(name: &str, ring_capacity_bytes: usize) -> Channel {
        Channel::with_ring(
            name,
            ring_capacity_bytes,
            Ring::with_capacity(ring_capacity_bytes),
        )
    }

    /// An unsubscribed channel whose storage has `ring` (smaller than the
    /// configured `ring_capacity_bytes` when the memory budget is short).
    pub fn with_ring(name: &str, ring_capacity_bytes: usize, ring: Ring) -> Channel {
        Channel {
            name: name.to_owned(),
            ring_capacity: ring_capacity_bytes,
            mode: Mode::Unsubscribed(Storage::with_ring(ring)),
        }
    }

    /// The channel name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Ring capacity of each of the channel's storages.
    pub fn ring_capacity(&self) -> usize {
        self.ring_capacity
    }

    /// True once some subscriber has subscribed.
    pub fn is_subscribed(&self) -> bool {
        matches!(self.mode, Mode::Subscribed(_))
    }

    /// Fan-out push: the value goes to every storage, to its ring or to the
    /// disk overflow. If some storage cannot take it (the overflow is full
    /// or failing) the others still do, and the error is returned.
    pub fn push(&mut self, value: &[u8], disk: &mut DiskWriter) -> Result<Stored, StorageError> {
        let channel = self.name.as_str();
        match &mut self.mode {
            Mode::Unsubscribed(storage) => {
                storage.push(value, disk, &|| storage_name(channel, None))
            }
            Mode::Subscribed(subs) => {
                let mut result = Ok(Stored::Memory);
                for (sub, storage) in subs.iter_mut() {
                    let pushed = storage.push(value, disk, &|| storage_name(channel, Some(sub)));
                    result = match (result, pushed) {
                        (Ok(a), Ok(b)) => Ok(a.max(b)),
                        (Err(e), _) | (Ok(_), Err(e)) => Err(e),
                    };
                }
                result
            }
        }
    }

    /// True when the channel is unsubscribed and its memory is empty while
    /// records wait on disk.
    pub fn waits_on_disk(&self) -> bool {
        match &self.mode {
            Mode::Unsubscribed(storage) => storage.waits_on_disk(),
            Mode::Subscribed(_) => false,
        }
    }

    /// Pops the oldest record of an unsubscribed channel; `Ok(None)` if it is
    /// empty, [`PopError::Subscribed`] if the channel has subscribers.
    pub fn pop(&mut self) -> Result<Option<&[u8]>, PopError> {
        match &mut self.mode {
            Mode::Unsubscribed(storage) => Ok(storage.pop()),
            Mode::Subscribed(_) => Err(PopError::Subscribed),
        }
    }

    /// Subscribes `subscriber`, per the table in spec 4.2:
    /// - unsubscribed: the existing storage, with its records, becomes
    ///   `subscriber`'s and the channel is subscribed from now on;
    /// - subscribed, known name: the same storage (consumers with the same
    ///   name share one queue);
    /// - subscribed, new name: a new empty storage of the channel's ring
    ///   capacity, which gets only records pushed from now on.
    ///
    /// Returns true if a storage was newly created or taken over (for logging).
    pub fn subscribe(
        &mut self,
        subscriber: &str,
        disk: &mut DiskWriter,
        new_ring: impl FnOnce() -> Ring,
    ) -> bool {
        match &mut self.mode {
            Mode::Subscribed(subs) => {
                if subs.contains_key(subscriber) {
                    return false;
                }
                subs.insert(subscriber.to_owned(), Storage::with_ring(new_ring()));
                true
            }
            Mode::Unsubscribed(_) => {
                let old = std::mem::replace(&mut self.mode, Mode::Subscribed(BTreeMap::new()));
                if let (Mode::Unsubscribed(storage), Mode::Subscribed(subs)) = (old, &mut self.mode)
                {
                    disk.rename(storage.disk(), storage_name(&self.name, Some(subscriber)));
                    subs.insert(subscriber.to_owned(), storage);
                }
                true
            }
        }
    }

    /// The storage of `subscriber`, if the channel is subscribed and knows
    /// that name.
    pub fn subscriber_storage(&self, subscriber: &str) -> Option<&Storage> {
        match &self.mode {
            Mode::Subscribed(subs) => subs.get(subscriber),
            Mode::Unsubscribed(_) => None,
        }
    }

    /// The storage of `subscriber`, mutable; see
    /// [`subscriber_storage`](Channel::subscriber_storage).
    pub fn subscriber_storage_mut(&mut self, subscriber: &str) -> Option<&mut Storage> {
        match &mut self.mode {
            Mode::Subscribed(subs) => subs.get_mut(subscriber),
            Mode::Unsubscribed(_) => None,
        }
    }

    /// The single storage of an unsubscribed channel (for loading a dump).
    pub fn unsubscribed_storage_mut(&mut self) -> Option<&mut Storage> {
        match &mut self.mode {
            Mode::Unsubscribed(storage) => Some(storage),
            Mode::Subscribed(_) => None,
        }
    }

    /// Subscriber names, sorted; none while unsubscribed.
    pub fn subscribers(&self) -> impl Iterator<Item = &str> {
        self.subscriber_map()
            .into_iter()
            .flat_map(|subs| subs.keys().map(String::as_str))
    }

    /// Every storage with its storage name: `channel` when unsubscribed,
    /// `subscriber@channel` otherwise (`@channel` for the default subscriber
    /// `""`).
    pub fn storages(&self) -> impl Iterator<Item = (String, &Storage)> {
        let name = self.name.as_str();
        let single = match &self.mode {
            Mode::Unsubscribed(storage) => Some((storage_name(name, None), storage)),
            Mode::Subscribed(_) => None,
        };
        let subs = self
            .subscriber_map()
            .into_iter()
            .flat_map(move |subs| subs.iter())
            .map(move |(sub, storage)| (storage_name(name, Some(sub)), storage));
        single.into_iter().chain(subs)
    }

    /// How many storages a push writes to (1 when unsubscribed).
    pub fn storage_count(&self) -> usize {
        match &self.mode {
            Mode::Unsubscribed(_) => 1,
            Mode::Subscribed(subs) => subs.len(),
        }
    }

    /// Records summed over all storages.
    pub fn records(&self) -> usize {
        self.storage_values().map(Storage::len).sum()
    }

    /// Used ring bytes (headers included) summed over all storages.
    pub fn bytes(&self) -> usize {
        self.storage_values().map(|s| s.ring().used_bytes()).sum()
    }

    /// Empties every storage, in memory and on disk. The subscriptions stay.
    pub fn clear(&mut self, disk: &mut DiskWriter) {
        self.storages_mut().for_each(|s| s.clear(disk));
    }

    /// Every storage, mutable, in no particular order.
    pub fn storages_mut(&mut self) -> impl Iterator<Item = &mut Storage> {
        let (single, subs) = match &mut self.mode {
            Mode::Unsubscribed(storage) => (Some(storage), None),
            Mode::Subscribed(subs) => (None, Some(subs)),
        };
        single
            .into_iter()
            .chain(subs.into_iter().flat_map(|s| s.values_mut()))
    }

    /// The storage whose disk part has overflow channel id `id`.
    pub fn storage_by_disk_id(&self, id: u32) -> Option<&Storage> {
        if id == 0 {
            return None;
        }
        self.storage_values().find(|s| s.disk().id() == id)
    }

    /// The storage whose disk part has overflow channel id `id`, mutable.
    pub fn storage_by_disk_id_mut(&mut self, id: u32) -> Option<&mut Storage> {
        if id == 0 {
            return None;
        }
        self.storages_mut().find(|s| s.disk().id() == id)
    }

    /// Bytes of all the channel's rings (what it takes from the memory budget).
    pub fn ring_bytes(&self) -> usize {
        self.storage_values().map(|s| s.ring().capacity()).sum()
    }

    fn subscriber_map(&self) -> Option<&BTreeMap<String, Storage>> {
        match &self.mode {
            Mode::Subscribed(subs) => Some(subs),
            Mode::Unsubscribed(_) => None,
        }
    }

    /// Every storage, without building its name, in no particular order.
    pub fn storage_values(&self) -> impl Iterator<Item = &Storage> {
        let single = match &self.mode {
            Mode::Unsubscribed(storage) => Some(storage),
            Mode::Subscribed(_) => None,
        };
        single
            .into_iter()
            .chain(self.subscriber_map().into_iter().flat_map(|s| s.values()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::disk::test_writer as w;

    fn pop_all(storage: &mut Storage) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(p) = storage.pop() {
            out.push(p.to_vec());
        }
        out
    }

    fn names(ch: &Channel) -> Vec<String> {
        ch.storages().map(|(n, _)| n).collect()
    }

    #[test]
    fn unsubscribed_push_pop() {
        let mut ch = Channel::new("ch", 100);
        assert_eq!(ch.name(), "ch");
        assert_eq!(ch.ring_capacity(), 100);
        assert!(!ch.is_subscribed());
        assert_eq!(ch.pop(), Ok(None));
        ch.push(b"a", &mut w()).unwrap();
        ch.push(b"bc", &mut w()).unwrap();
        assert_eq!((ch.records(), ch.bytes()), (2, 8 + 1 + 8 + 2));
        assert_eq!(ch.pop(), Ok(Some(&b"a"[..])));
        assert_eq!(ch.pop(), Ok(Some(&b"bc"[..])));
        assert_eq!(ch.pop(), Ok(None));
        assert_eq!(names(&ch), ["ch"]);
        assert_eq!(ch.subscribers().count(), 0);
        assert!(ch.subscriber_storage_mut("").is_none());
    }

    #[test]
    fn first_subscriber_takes_over_the_backlog() {
        let mut ch = Channel::new("ch", 100);
        ch.push(b"old1", &mut w()).unwrap();
        ch.push(b"old2", &mut w()).unwrap();
        assert!(ch.subscribe("sub", &mut w(), || Ring::with_capacity(100)));
        assert!(ch.is_subscribed());
        assert!(ch.unsubscribed_storage_mut().is_none());
        assert_eq!(names(&ch), ["sub@ch"]);
        let storage = ch.subscriber_storage_mut("sub").unwrap();
        assert_eq!(pop_all(storage), [b"old1", b"old2"]);
    }

    #[test]
    fn same_name_shares_one_queue() {
        let mut ch = Channel::new("ch", 100);
        assert!(ch.subscribe("", &mut w(), || Ring::with_capacity(100)));
        assert!(!ch.subscribe("", &mut w(), || Ring::with_capacity(100)));
        ch.push(b"x", &mut w()).unwrap();
        assert_eq!(ch.subscribers().collect::<Vec<_>>(), [""]);
        assert_eq!(names(&ch), ["@ch"]);
        // Two consumers of "" see the same storage: a pop by one is gone for the other.
        assert_eq!(
            ch.subscriber_storage_mut("").unwrap().pop(),
            Some(&b"x"[..])
        );
        assert_eq!(ch.subscriber_storage("").unwrap().len(), 0);
    }

    #[test]
    fn new_name_gets_a_new_empty_queue_and_fan_out() {
        let mut ch = Channel::new("ch", 100);
        ch.push(b"backlog", &mut w()).unwrap();
        assert!(ch.subscribe("a", &mut w(), || Ring::with_capacity(100)));
        assert!(ch.subscribe("b", &mut w(), || Ring::with_capacity(100)));
        assert_eq!(ch.subscriber_storage("b").unwrap().len(), 0);
        assert_eq!(ch.subscriber_storage("b").unwrap().ring().capacity(), 100);
        ch.push(b"new", &mut w()).unwrap();
        assert_eq!(ch.records(), 3);
        assert_eq!(ch.bytes(), (8 + 7) + (8 + 3) * 2);
        assert_eq!(names(&ch), ["a@ch", "b@ch"]);
        assert_eq!(ch.subscribers().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(
            pop_all(ch.subscriber_storage_mut("a").unwrap()),
            [&b"backlog"[..], b"new"]
        );
        assert_eq!(pop_all(ch.subscriber_storage_mut("b").unwrap()), [b"new"]);
        assert!(ch.subscriber_storage_mut("c").is_none());
    }

    #[test]
    fn pop_refused_when_subscribed() {
        let mut ch = Channel::new("ch", 100);
        ch.push(b"a", &mut w()).unwrap();
        ch.subscribe("s", &mut w(), || Ring::with_capacity(100));
        assert_eq!(ch.pop(), Err(PopError::Subscribed));
        assert_eq!(ch.records(), 1);
        assert_eq!(
            PopError::Subscribed.to_string(),
            "the channel has subscribers; Pop is refused"
        );
    }

    #[test]
    fn fan_out_spills_each_storage_on_its_own() {
        let mut ch = Channel::new("ch", 30);
        let mut disk = w();
        ch.push(b"0123456789", &mut disk).unwrap(); // 18 of 30 bytes
        ch.subscribe("full", &mut disk, || Ring::with_capacity(30));
        ch.subscribe("empty", &mut disk, || Ring::with_capacity(30));
        // 12 free bytes in "full", 30 in "empty": a 10-byte value (18 bytes)
        // spills in "full" only.
        assert!(matches!(
            ch.push(b"abcdefghij", &mut disk),
            Ok(Stored::Disk(_))
        ));
        let full = ch.subscriber_storage("full").unwrap();
        assert_eq!((full.memory_len(), full.disk().records()), (1, 1));
        let empty = ch.subscriber_storage("empty").unwrap();
        assert_eq!((empty.memory_len(), empty.disk().records()), (1, 0));
        // The disk part is named after the new storage name.
        assert_eq!(disk.segments().live_records(), 1);
        // A 4-byte value (12 bytes) fits both rings but goes behind the
        // spilled record in "full".
        ch.push(b"abcd", &mut disk).unwrap();
        assert_eq!(ch.subscriber_storage("full").unwrap().disk().records(), 2);
        assert_eq!(ch.subscriber_storage("empty").unwrap().memory_len(), 2);
        assert!(!ch.waits_on_disk(), "subscribed channels are not popped");
    }

    #[test]
    fn clear_keeps_subscriptions() {
        let mut ch = Channel::new("ch", 100);
        ch.subscribe("a", &mut w(), || Ring::with_capacity(100));
        ch.subscribe("b", &mut w(), || Ring::with_capacity(100));
        ch.push(b"x", &mut w()).unwrap();
        ch.clear(&mut w());
        assert_eq!((ch.records(), ch.bytes()), (0, 0));
        assert!(ch.is_subscribed());
        assert_eq!(names(&ch), ["a@ch", "b@ch"]);
        let mut ch = Channel::new("ch", 100);
        ch.push(b"x", &mut w()).unwrap();
        ch.clear(&mut w());
        assert_eq!(ch.pop(), Ok(None));
    }
}
