//! Channel, subscriber and storage names (spec 2.6, 4.2, 5.2).

/// Bytes allowed in channel and subscriber names: C-locale `isalnum`, `_`, `-`.
fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// A valid channel name: non-empty, every byte `[A-Za-z0-9_-]` (spec 2.6).
pub fn is_valid_channel_name(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().copied().all(is_name_byte)
}

/// A valid subscriber name: empty (the default subscriber) or the channel
/// name charset. The original does not validate neo subscriber names; we do,
/// so that `@` cannot break the storage-name scheme (spec 4.2, Q3).
pub fn is_valid_subscriber_name(name: &[u8]) -> bool {
    name.iter().copied().all(is_name_byte)
}

/// Name of a storage: `channel` when unsubscribed (`None`), `subscriber@channel`
/// otherwise, so `@channel` for the default subscriber `""`.
pub fn storage_name(channel: &str, subscriber: Option<&str>) -> String {
    match subscriber {
        None => channel.to_owned(),
        Some(sub) => {
            let mut name = String::with_capacity(sub.len() + 1 + channel.len());
            name.push_str(sub);
            name.push('@');
            name.push_str(channel);
            name
        }
    }
}

/// Splits a storage name into `(subscriber, channel)`:
/// `"hello@world"` gives `(Some("hello"), "world")`, `"@world"` gives
/// `(Some(""), "world")`, `"ch"` gives `(None, "ch")`. Splits at the first `@`.
pub fn split_storage_name(name: &str) -> (Option<&str>, &str) {
    match name.split_once('@') {
        Some((sub, channel)) => (Some(sub), channel),
        None => (None, name),
    }
}

/// The file-name check of spec 5.2 for a dump file without its `.rq`
/// extension: non-empty, only `[A-Za-z0-9_-@]`, at most one `@`, and `@` not
/// last (it may be first).
pub fn is_valid_storage_file_stem(stem: &str) -> bool {
    let bytes = stem.as_bytes();
    let ats = bytes.iter().filter(|&&b| b == b'@').count();
    !bytes.is_empty()
        && bytes.iter().all(|&b| b == b'@' || is_name_byte(b))
        && ats <= 1
        && bytes.last() != Some(&b'@')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names() {
        assert!(is_valid_channel_name(b"ch"));
        assert!(is_valid_channel_name(b"A-z_09"));
        assert!(is_valid_channel_name(b"-"));
        assert!(!is_valid_channel_name(b""));
        for bad in [&b"a@b"[..], b"a.b", b"a/b", b"a b", b"\xc3\xa4", b"a\0"] {
            assert!(!is_valid_channel_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn subscriber_names() {
        assert!(is_valid_subscriber_name(b""));
        assert!(is_valid_subscriber_name(b"sub_1-x"));
        assert!(!is_valid_subscriber_name(b"a@b"));
        assert!(!is_valid_subscriber_name(b"@"));
        assert!(!is_valid_subscriber_name(b"a.b"));
    }

    #[test]
    fn storage_names_round_trip() {
        assert_eq!(storage_name("ch", None), "ch");
        assert_eq!(storage_name("ch1", Some("sub1")), "sub1@ch1");
        assert_eq!(storage_name("ch1", Some("")), "@ch1");
        assert_eq!(split_storage_name("hello@world"), (Some("hello"), "world"));
        assert_eq!(split_storage_name("@world"), (Some(""), "world"));
        assert_eq!(split_storage_name("ch"), (None, "ch"));
        for (ch, sub) in [("c", None), ("c", Some("")), ("c", Some("s"))] {
            assert_eq!(split_storage_name(&storage_name(ch, sub)), (sub, ch));
        }
    }

    #[test]
    fn storage_file_stems() {
        for good in ["ch2", "@ch1", "sub1@ch1", "a-b_c", "@x"] {
            assert!(is_valid_storage_file_stem(good), "{good}");
        }
        for bad in ["", "@", "ch@", "a@b@c", "@@a", "a.b", "a/b", "ä"] {
            assert!(!is_valid_storage_file_stem(bad), "{bad}");
        }
    }
}
