//! Ring size per channel: `channel_size_limit` and `[ChannelSizeById]`
//! (spec 4.1, 6.2).

/// Errors in the channel size configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeConfigError {
    /// The default ring size is 0 (`channel_size_limit` must be >= 1).
    #[error("the default channel size must be at least 1 byte")]
    ZeroDefaultSize,
    /// A `[ChannelSizeById]` key is the empty string.
    #[error("empty channel id prefix")]
    EmptyPrefix,
    /// A `[ChannelSizeById]` prefix has size 0.
    #[error("channel id prefix {prefix:?} has size 0")]
    ZeroSize {
        /// The offending prefix.
        prefix: String,
    },
    /// One prefix is a prefix of (or equal to) another.
    #[error("conflicting channel id prefixes {first:?} and {second:?}")]
    ConflictingPrefixes {
        /// The shorter (or first) prefix.
        first: String,
        /// The prefix that `first` is a prefix of.
        second: String,
    },
}

/// `channel_size_limit` plus the `[ChannelSizeById]` prefixes (spec 6.2).
/// Prefixes must not overlap (none is a prefix of another), so at most one
/// matches a channel name.
///
/// Built once from the configuration at startup; each shard keeps its own
/// copy inside its [`Channels`](crate::Channels).
#[derive(Debug, Clone)]
pub struct ChannelSizes {
    default_bytes: usize,
    prefixes: Vec<(String, usize)>,
}

impl ChannelSizes {
    /// Checks and stores the sizes. Errors: a default or prefix size of 0,
    /// an empty prefix, or two overlapping prefixes (naming both).
    pub fn new(
        default_bytes: usize,
        prefixes: impl IntoIterator<Item = (String, usize)>,
    ) -> Result<ChannelSizes, SizeConfigError> {
        if default_bytes == 0 {
            return Err(SizeConfigError::ZeroDefaultSize);
        }
        let mut checked: Vec<(String, usize)> = Vec::new();
        for (prefix, size) in prefixes {
            if prefix.is_empty() {
                return Err(SizeConfigError::EmptyPrefix);
            }
            if size == 0 {
                return Err(SizeConfigError::ZeroSize { prefix });
            }
            for (other, _) in &checked {
                let (first, second) = if other.len() <= prefix.len() {
                    (other, &prefix)
                } else {
                    (&prefix, other)
                };
                if second.starts_with(first.as_str()) {
                    return Err(SizeConfigError::ConflictingPrefixes {
                        first: first.clone(),
                        second: second.clone(),
                    });
                }
            }
            checked.push((prefix, size));
        }
        Ok(ChannelSizes {
            default_bytes,
            prefixes: checked,
        })
    }

    /// Ring size of every storage of `channel`: the size of the prefix that
    /// matches the channel name, or the default.
    pub fn size_for(&self, channel: &str) -> usize {
        self.prefixes
            .iter()
            .find(|(prefix, _)| channel.starts_with(prefix.as_str()))
            .map_or(self.default_bytes, |&(_, size)| size)
    }

    /// The default size (`channel_size_limit`).
    pub fn default_bytes(&self) -> usize {
        self.default_bytes
    }

    /// The configured prefixes with their sizes, in configuration order.
    pub fn prefixes(&self) -> impl Iterator<Item = (&str, usize)> {
        self.prefixes.iter().map(|(p, s)| (p.as_str(), *s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(list: &[(&str, usize)]) -> Vec<(String, usize)> {
        list.iter().map(|&(s, n)| (s.to_owned(), n)).collect()
    }

    #[test]
    fn lookup_by_prefix() {
        let sizes = ChannelSizes::new(1000, p(&[("admedia", 400), ("bid", 50)])).unwrap();
        assert_eq!(sizes.size_for("admedia"), 400);
        assert_eq!(sizes.size_for("admedia_clicks"), 400);
        assert_eq!(sizes.size_for("bids"), 50);
        assert_eq!(sizes.size_for("adm"), 1000);
        assert_eq!(sizes.size_for("xadmedia"), 1000);
        assert_eq!(sizes.size_for(""), 1000);
        assert_eq!(sizes.default_bytes(), 1000);
        assert_eq!(sizes.prefixes().count(), 2);
        let none = ChannelSizes::new(7, Vec::new()).unwrap();
        assert_eq!(none.size_for("anything"), 7);
    }

    #[test]
    fn conflicting_prefixes_name_both() {
        let err = ChannelSizes::new(1, p(&[("ab", 1), ("x", 1), ("abc", 2)])).unwrap_err();
        assert_eq!(
            err,
            SizeConfigError::ConflictingPrefixes {
                first: "ab".into(),
                second: "abc".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "conflicting channel id prefixes \"ab\" and \"abc\""
        );
        // Order does not matter; the shorter one is named first.
        let err = ChannelSizes::new(1, p(&[("abc", 1), ("ab", 2)])).unwrap_err();
        assert_eq!(
            err,
            SizeConfigError::ConflictingPrefixes {
                first: "ab".into(),
                second: "abc".into()
            }
        );
        // A duplicate is a conflict too.
        assert!(matches!(
            ChannelSizes::new(1, p(&[("a", 1), ("a", 1)])),
            Err(SizeConfigError::ConflictingPrefixes { .. })
        ));
        // Sharing a beginning is fine.
        assert!(ChannelSizes::new(1, p(&[("abc", 1), ("abd", 2)])).is_ok());
    }

    #[test]
    fn invalid_entries() {
        assert_eq!(
            ChannelSizes::new(1, p(&[("", 5)])).unwrap_err(),
            SizeConfigError::EmptyPrefix
        );
        assert_eq!(
            ChannelSizes::new(1, p(&[("a", 0)])).unwrap_err(),
            SizeConfigError::ZeroSize { prefix: "a".into() }
        );
        assert_eq!(
            ChannelSizes::new(0, Vec::new()).unwrap_err(),
            SizeConfigError::ZeroDefaultSize
        );
    }
}
