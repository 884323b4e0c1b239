//! The channel registry of one shard (spec 4.1).

use std::collections::HashMap;

use crate::channel::Channel;
use crate::sizes::ChannelSizes;

/// All channels owned by one shard, keyed by channel name.
///
/// `Channels` lives on exactly one shard thread for the life of the node; it
/// is the only place where that shard's channels are created, changed and
/// removed. Unlike the original, channels are not pooled: a removed channel
/// is dropped, and a new one gets the ring size its name asks for (so quirk
/// Q6 does not apply).
#[derive(Debug)]
pub struct Channels {
    sizes: ChannelSizes,
    map: HashMap<String, Channel>,
}

impl Channels {
    /// An empty registry; new channels get their ring size from `sizes`.
    pub fn new(sizes: ChannelSizes) -> Channels {
        Channels {
            sizes,
            map: HashMap::new(),
        }
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
            let channel = Channel::new(name, self.sizes.size_for(name));
            self.map.insert(name.to_owned(), channel);
        }
        self.map
            .get_mut(name)
            .expect("the channel is in the map: it was there or was just inserted")
    }

    /// Removes the channel called `name` and returns it (with its storages).
    pub fn remove(&mut self, name: &str) -> Option<Channel> {
        self.map.remove(name)
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
        chs.get_or_create("ch").push(b"v").unwrap();
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
        let ch = chs.get_or_create("ch");
        ch.push(b"a").unwrap();
        ch.subscribe("s");
        let removed = chs.remove("ch").unwrap();
        assert_eq!(removed.records(), 1);
        assert!(chs.remove("ch").is_none());
        assert!(chs.get_mut("ch").is_none());
        let ch = chs.get_or_create("ch");
        assert!(!ch.is_subscribed());
        assert_eq!(ch.records(), 0);
        assert_eq!(chs.iter_mut().count(), 1);
    }
}
