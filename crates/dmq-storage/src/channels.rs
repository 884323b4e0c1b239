//! The channel registry of one shard (spec 4.1).

use std::collections::HashMap;

use crate::channel::Channel;
use crate::disk::DiskWriter;
use crate::ring::Ring;
use crate::sizes::ChannelSizes;

/// A ring smaller than this is not worth having: a storage short of budget
/// gets no ring at all and keeps its records on disk.
pub const MIN_RING_BYTES: usize = 4096;

/// All channels owned by one shard, keyed by channel name.
///
/// `Channels` lives on exactly one shard thread for the life of the node; it
/// is the only place where that shard's channels are created, changed and
/// removed. Unlike the original, channels are not pooled: a removed channel
/// is dropped, and a new one gets the ring size its name asks for (so quirk
/// Q6 does not apply).
///
/// With a memory budget (`server.memory_limit`, split between shards) every
/// ring is taken from it when made and given back when its channel is
/// removed; a storage made when the budget is short gets what is left (or no
/// ring below [`MIN_RING_BYTES`]) and works through the disk overflow. A
/// ring the system cannot allocate is treated the same way, so too many
/// channels never abort the node.
#[derive(Debug)]
pub struct Channels {
    sizes: ChannelSizes,
    map: HashMap<String, Channel>,
    /// Ring bytes still available; `None` = no budget.
    budget: Option<usize>,
    /// Storages that got a smaller ring than configured (budget or allocation).
    short_rings: u64,
}

impl Channels {
    /// An empty registry; new channels get their ring size from `sizes`.
    pub fn new(sizes: ChannelSizes) -> Channels {
        Channels::with_budget(sizes, None)
    }

    /// An empty registry whose rings together take at most `budget` bytes.
    pub fn with_budget(sizes: ChannelSizes, budget: Option<usize>) -> Channels {
        Channels {
            sizes,
            map: HashMap::new(),
            budget,
            short_rings: 0,
        }
    }

    /// Ring bytes left in the budget (`None`: no budget).
    pub fn budget_left(&self) -> Option<usize> {
        self.budget
    }

    /// Storages made with a smaller ring than configured.
    pub fn short_rings(&self) -> u64 {
        self.short_rings
    }

    /// A ring for a storage of channel `name`: the configured size if the
    /// budget and the system allow, otherwise smaller or none.
    pub fn make_ring(&mut self, name: &str) -> Ring {
        let wanted = self.sizes.size_for(name);
        let mut size = self.budget.map_or(wanted, |left| wanted.min(left));
        if size < wanted.min(MIN_RING_BYTES) {
            size = 0;
        }
        let ring = match Ring::try_with_capacity(size) {
            Some(ring) => ring,
            None => Ring::with_capacity(0),
        };
        if ring.capacity() < wanted {
            self.short_rings += 1;
        }
        if let Some(left) = &mut self.budget {
            *left -= ring.capacity();
        }
        ring
    }

    /// The channel called `name`, if it exists.
    pub fn get(&self, name: &str) -> Option<&Channel> {
        self.map.get(name)
    }

    /// The channel called `name`, mutable, if it exists.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Channel> {
        self.map.get_mut(name)
    }

    /// The channel called `name`, created (unsubscribed, empty, with a ring of
    /// [`ChannelSizes::size_for`] bytes) if it does not exist yet.
    pub fn get_or_create(&mut self, name: &str) -> &mut Channel {
        // Two lookups on a miss rather than the entry API, which would allocate
        // an owned key on every call, hits included (the push path).
        if !self.map.contains_key(name) {
            let ring = self.make_ring(name);
            let channel = Channel::with_ring(name, self.sizes.size_for(name), ring);
            self.map.insert(name.to_owned(), channel);
        }
        self.map
            .get_mut(name)
            .expect("the channel is in the map: it was there or was just inserted")
    }

    /// Subscribes `subscriber` to the channel (created if missing); a new
    /// subscriber storage takes its ring from the budget. True if a storage
    /// was created or taken over.
    pub fn subscribe(&mut self, name: &str, subscriber: &str, disk: &mut DiskWriter) -> bool {
        self.get_or_create(name);
        let Some(mut channel) = self.map.remove(name) else {
            return false;
        };
        let created = channel.subscribe(subscriber, disk, || self.make_ring(name));
        self.map.insert(name.to_owned(), channel);
        created
    }

    /// Removes the channel called `name`, with its records in memory and on
    /// disk, and gives its rings back to the budget.
    pub fn remove(&mut self, name: &str, disk: &mut DiskWriter) -> Option<Channel> {
        let mut channel = self.map.remove(name)?;
        channel.clear(disk);
        if let Some(left) = &mut self.budget {
            *left += channel.ring_bytes();
        }
        Some(channel)
    }

    /// Number of channels.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True if there is no channel.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// All channels, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Channel> {
        self.map.values()
    }

    /// All channels, mutable, in no particular order.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Channel> {
        self.map.values_mut()
    }

    /// The size configuration new channels are created with.
    pub fn sizes(&self) -> &ChannelSizes {
        &self.sizes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::disk::test_writer as w;

    fn channels() -> Channels {
        let sizes = ChannelSizes::new(100, vec![("big".to_owned(), 1000)]).unwrap();
        Channels::new(sizes)
    }

    #[test]
    fn create_on_first_use_with_prefix_size() {
        let mut chs = channels();
        assert!(chs.is_empty());
        assert!(chs.get("ch").is_none());
        assert_eq!(chs.get_or_create("ch").ring_capacity(), 100);
        assert_eq!(chs.get_or_create("bigger").ring_capacity(), 1000);
        assert_eq!(chs.len(), 2);
        chs.get_or_create("ch").push(b"v", &mut w()).unwrap();
        // Existing channel: same object, records kept.
        assert_eq!(chs.get_or_create("ch").records(), 1);
        assert_eq!(chs.get("ch").map(Channel::records), Some(1));
        assert_eq!(chs.sizes().default_bytes(), 100);
        let mut names: Vec<&str> = chs.iter().map(Channel::name).collect();
        names.sort_unstable();
        assert_eq!(names, ["bigger", "ch"]);
    }

    #[test]
    fn remove_then_recreate_is_unsubscribed_and_empty() {
        let mut chs = channels();
        chs.get_or_create("ch").push(b"a", &mut w()).unwrap();
        assert!(chs.subscribe("ch", "s", &mut w()));
        let removed = chs.remove("ch", &mut w()).unwrap();
        assert_eq!(removed.records(), 0, "removal clears");
        assert!(chs.remove("ch", &mut w()).is_none());
        assert!(chs.get_mut("ch").is_none());
        let ch = chs.get_or_create("ch");
        assert!(!ch.is_subscribed());
        assert_eq!(ch.records(), 0);
        assert_eq!(chs.iter_mut().count(), 1);
    }

    #[test]
    fn the_budget_shrinks_rings_and_comes_back_on_removal() {
        let sizes = ChannelSizes::new(10_000, Vec::new()).unwrap();
        let mut chs = Channels::with_budget(sizes, Some(25_000));
        assert_eq!(chs.get_or_create("a").ring_bytes(), 10_000);
        assert_eq!(chs.get_or_create("b").ring_bytes(), 10_000);
        // 5000 left: a smaller ring.
        assert_eq!(chs.get_or_create("c").ring_bytes(), 5_000);
        // Nothing left: no ring, records go to disk.
        assert_eq!(chs.get_or_create("d").ring_bytes(), 0);
        assert!(chs.subscribe("d", "x", &mut w()));
        assert!(chs.subscribe("d", "y", &mut w()));
        assert_eq!(chs.get("d").map(Channel::ring_bytes), Some(0));
        assert_eq!(chs.budget_left(), Some(0));
        assert_eq!(chs.short_rings(), 3);
        let mut disk = w();
        assert!(matches!(
            chs.get_or_create("d").push(b"v", &mut disk),
            Ok(crate::Stored::Disk(_))
        ));
        chs.remove("a", &mut disk);
        assert_eq!(chs.budget_left(), Some(10_000));
        assert_eq!(chs.get_or_create("e").ring_bytes(), 10_000);
    }
}
