//! Primitive encodings of the legacy protocol (spec §2.2): `i32` codes and statuses,
//! `u64`-prefixed arrays, string lists and record streams, all little-endian.

use std::iter::FusedIterator;

use super::{DecodeError, Status, MAX_ARRAY_LEN, MAX_LIST_BYTES};

/// Width of a command code or a status.
pub(super) const CODE_LEN: usize = 4;
/// Width of the `u64` length prefix of an array.
pub(super) const ARRAY_PREFIX_LEN: usize = 8;

/// A cursor over an input buffer that fails with [`DecodeError::Incomplete`] when the
/// buffer ends too early.
///
/// `pos` counts the bytes consumed since the start of the buffer, so `needed` is always
/// a total length. Sums never overflow: a slice is at most `isize::MAX` bytes long and
/// no single step adds more than `MAX_ARRAY_LEN + ARRAY_PREFIX_LEN`.
#[derive(Clone, Copy)]
pub(super) struct Reader<'a> {
    rest: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Self {
        Reader { rest: buf, pos: 0 }
    }

    /// Bytes consumed so far.
    pub(super) fn pos(&self) -> usize {
        self.pos
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        let needed = self.pos + len;
        let (taken, rest) = self
            .rest
            .split_at_checked(len)
            .ok_or(DecodeError::Incomplete { needed })?;
        self.rest = rest;
        self.pos = needed;
        Ok(taken)
    }

    fn take_chunk<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let needed = self.pos + N;
        let (chunk, rest) = self
            .rest
            .split_first_chunk::<N>()
            .ok_or(DecodeError::Incomplete { needed })?;
        self.rest = rest;
        self.pos = needed;
        Ok(*chunk)
    }

    pub(super) fn i32(&mut self) -> Result<i32, DecodeError> {
        self.take_chunk().map(i32::from_le_bytes)
    }

    /// Reads an array's length prefix and refuses it at once if it is over the limit.
    fn array_len(&mut self) -> Result<usize, DecodeError> {
        let len = u64::from_le_bytes(self.take_chunk()?);
        usize::try_from(len)
            .ok()
            .filter(|&len| len <= MAX_ARRAY_LEN)
            .ok_or(DecodeError::ArrayTooLong { len })
    }

    pub(super) fn array(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.array_len()?;
        self.take(len)
    }

    /// Reads a string list up to and including its terminating empty array.
    pub(super) fn channel_list(&mut self) -> Result<ChannelList<'a>, DecodeError> {
        // Walk the list on a copy first: then the elements can be taken as one slice.
        let mut scan = *self;
        let mut len = 0;
        loop {
            let array_len = scan.array_len()?;
            if array_len == 0 {
                break;
            }
            // Refuse before waiting for the element: after it there must still be room
            // for the terminator. Each pass keeps that room, so a prefix always fits.
            let list_bytes = scan.pos - self.pos + array_len + ARRAY_PREFIX_LEN;
            if list_bytes > MAX_LIST_BYTES {
                return Err(DecodeError::ListTooLong);
            }
            scan.take(array_len)?;
            len += 1;
        }
        let encoded = self.take(scan.pos - ARRAY_PREFIX_LEN - self.pos)?;
        *self = scan;
        Ok(ChannelList { encoded, len })
    }
}

/// A channel string list (spec §2.2), borrowed from the input.
///
/// It holds the encoded arrays *without* the terminating empty array, as they came off
/// the wire, so decoding it allocates nothing. Only the decoder makes one, so the bytes
/// are always well-formed. Channel names are raw bytes: whether they are valid (status
/// 409) is for the node to decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelList<'a> {
    encoded: &'a [u8],
    len: usize,
}

impl<'a> ChannelList<'a> {
    /// Decodes a whole string list, terminator included, at the start of `buf`, and
    /// returns it with the number of bytes it used. Clients use it to build the
    /// `channels` of a request from [`encode_channel_list`] output.
    pub fn parse(buf: &'a [u8]) -> Result<(Self, usize), DecodeError> {
        let mut reader = Reader::new(buf);
        let list = reader.channel_list()?;
        Ok((list, reader.pos()))
    }

    /// Number of channel names.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the list names no channel (legal: PushMulti then does nothing).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The channel names, in wire order, duplicates included.
    pub fn iter(&self) -> ChannelListIter<'a> {
        ChannelListIter {
            rest: self.encoded,
            remaining: self.len,
        }
    }

    /// Writes the list back in wire form, terminator included.
    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.encoded);
        encode_array(out, &[]);
    }
}

impl<'a> IntoIterator for ChannelList<'a> {
    type Item = &'a [u8];
    type IntoIter = ChannelListIter<'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<'a> IntoIterator for &ChannelList<'a> {
    type Item = &'a [u8];
    type IntoIter = ChannelListIter<'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Iterator over the channel names of a [`ChannelList`].
#[derive(Debug, Clone)]
pub struct ChannelListIter<'a> {
    rest: &'a [u8],
    remaining: usize,
}

impl<'a> Iterator for ChannelListIter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        // The bytes were validated when the list was decoded; the `?`s only keep this
        // free of panics by construction.
        let (prefix, rest) = self.rest.split_first_chunk::<ARRAY_PREFIX_LEN>()?;
        let len = usize::try_from(u64::from_le_bytes(*prefix)).ok()?;
        let (name, rest) = rest.split_at_checked(len)?;
        self.rest = rest;
        self.remaining = self.remaining.saturating_sub(1);
        Some(name)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for ChannelListIter<'_> {}

impl FusedIterator for ChannelListIter<'_> {}

/// One item of a record stream: Produce and ProduceMulti (client to node) and Consume
/// (node to client) send records until an empty array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamItem<'a> {
    /// A non-empty record.
    Record(&'a [u8]),
    /// The empty array that ends the stream; the connection then carries requests again.
    End,
}

/// Decodes one stream item at the start of `buf` and returns it with the number of bytes
/// it used. Records are limited to [`MAX_ARRAY_LEN`] like any array.
pub fn parse_stream_item(buf: &[u8]) -> Result<(StreamItem<'_>, usize), DecodeError> {
    let (record, used) = parse_array(buf)?;
    let item = if record.is_empty() {
        StreamItem::End
    } else {
        StreamItem::Record(record)
    };
    Ok((item, used))
}

/// Decodes a status at the start of `buf` (client side). It returns the raw `i32`, since
/// any code the client does not know must still be seen (and treated as fatal, spec
/// §2.4); use [`Status::from_code`] to interpret it.
pub fn parse_status(buf: &[u8]) -> Result<(i32, usize), DecodeError> {
    let mut reader = Reader::new(buf);
    let code = reader.i32()?;
    Ok((code, reader.pos()))
}

/// Decodes one array at the start of `buf` and returns its bytes and the number of bytes
/// it used. Like the node, it refuses more than [`MAX_ARRAY_LEN`] bytes.
pub fn parse_array(buf: &[u8]) -> Result<(&[u8], usize), DecodeError> {
    let mut reader = Reader::new(buf);
    let bytes = reader.array()?;
    Ok((bytes, reader.pos()))
}

/// Appends an array: its length as a `u64` and its bytes. The length is not checked
/// against [`MAX_ARRAY_LEN`]: the caller knows what the peer accepts.
pub fn encode_array(out: &mut Vec<u8>, bytes: &[u8]) {
    // usize is at most 64 bits on every target Rust supports, so this is lossless.
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Appends a status as an `i32`.
pub fn encode_status(out: &mut Vec<u8>, status: Status) {
    out.extend_from_slice(&status.to_le_bytes());
}

/// Appends the empty array that ends a record stream (a `u64` 0).
pub fn encode_stream_end(out: &mut Vec<u8>) {
    encode_array(out, &[]);
}

/// Appends a string list: one array per channel, then the terminating empty array.
///
/// An empty name cannot be sent inside a list: the peer would read it as the end of the
/// list and the rest as other data. Empty names are invalid channel names anyway (409),
/// so a client validates names before encoding.
pub fn encode_channel_list<'c>(out: &mut Vec<u8>, channels: impl IntoIterator<Item = &'c [u8]>) {
    for channel in channels {
        encode_array(out, channel);
    }
    encode_array(out, &[]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::legacy::test_util::{assert_prefix_consistency, list_bytes, XorShift};

    #[test]
    fn array_encoding_is_length_then_bytes() {
        let mut out = Vec::new();
        encode_array(&mut out, b"ch");
        assert_eq!(out, [2, 0, 0, 0, 0, 0, 0, 0, b'c', b'h']);
        assert_eq!(parse_array(&out), Ok((&b"ch"[..], 10)));
    }

    #[test]
    fn array_prefix_over_the_limit_is_refused_before_its_bytes_arrive() {
        let too_long = MAX_ARRAY_LEN as u64 + 1;
        let buf = too_long.to_le_bytes();
        assert_eq!(
            parse_array(&buf),
            Err(DecodeError::ArrayTooLong { len: too_long })
        );
        let huge = u64::MAX.to_le_bytes();
        assert_eq!(
            parse_array(&huge),
            Err(DecodeError::ArrayTooLong { len: u64::MAX })
        );
        let at_limit = (MAX_ARRAY_LEN as u64).to_le_bytes();
        assert_eq!(
            parse_array(&at_limit),
            Err(DecodeError::Incomplete {
                needed: ARRAY_PREFIX_LEN + MAX_ARRAY_LEN
            })
        );
    }

    #[test]
    fn array_of_exactly_the_limit_is_accepted() {
        let mut out = Vec::new();
        encode_array(&mut out, &vec![7; MAX_ARRAY_LEN]);
        let (bytes, used) = parse_array(&out).expect("array at the limit");
        assert_eq!((bytes.len(), used), (MAX_ARRAY_LEN, out.len()));
    }

    #[test]
    fn spec_status_replies() {
        // Spec §2.7: 200, 500 and 409 replies.
        let mut out = Vec::new();
        encode_status(&mut out, Status::Ok);
        assert_eq!(out, [0xC8, 0, 0, 0]);
        assert_eq!(parse_status(&[0xC8, 0, 0, 0]), Ok((200, 4)));
        assert_eq!(
            parse_status(&[0xF4, 0x01, 0, 0]).map(|(code, _)| Status::from_code(code)),
            Ok(Some(Status::Error))
        );
        assert_eq!(
            parse_status(&[0x99, 0x01, 0, 0]).map(|(code, _)| Status::from_code(code)),
            Ok(Some(Status::BadChannelName))
        );
        assert_eq!(
            parse_status(&[0xC8, 0]),
            Err(DecodeError::Incomplete { needed: 4 })
        );
    }

    #[test]
    fn spec_pop_reply_on_an_empty_channel() {
        // Spec §2.7: `C8 00 00 00 | 00 00 00 00 00 00 00 00`.
        let wire = [0xC8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let mut out = Vec::new();
        encode_status(&mut out, Status::Ok);
        encode_array(&mut out, b"");
        assert_eq!(out, wire);
        let (status, used) = parse_status(&wire).expect("status");
        assert_eq!((status, used), (200, 4));
        assert_eq!(parse_array(&wire[used..]), Ok((&b""[..], 8)));
    }

    #[test]
    fn unknown_status_codes_are_returned_raw() {
        assert_eq!(parse_status(&0i32.to_le_bytes()), Ok((0, 4)));
        assert_eq!(parse_status(&(-7i32).to_le_bytes()), Ok((-7, 4)));
        assert_eq!(Status::from_code(0), None);
    }

    #[test]
    fn stream_items_end_with_the_empty_array() {
        let mut out = Vec::new();
        encode_array(&mut out, b"r1");
        encode_array(&mut out, b"record-2");
        encode_stream_end(&mut out);
        let mut items = Vec::new();
        let mut rest = &out[..];
        loop {
            let (item, used) = parse_stream_item(rest).expect("item");
            rest = &rest[used..];
            items.push(item);
            if item == StreamItem::End {
                break;
            }
        }
        assert!(rest.is_empty());
        assert_eq!(
            items,
            [
                StreamItem::Record(b"r1"),
                StreamItem::Record(b"record-2"),
                StreamItem::End
            ]
        );
        assert_eq!(
            parse_stream_item(&out[..9]),
            Err(DecodeError::Incomplete { needed: 10 })
        );
        let too_long = (MAX_ARRAY_LEN as u64 + 1).to_le_bytes();
        assert!(matches!(
            parse_stream_item(&too_long),
            Err(DecodeError::ArrayTooLong { .. })
        ));
    }

    #[test]
    fn channel_list_iterates_in_wire_order() {
        let buf = list_bytes(&[b"a", b"bc", b"a"]);
        let (list, used) = ChannelList::parse(&buf).expect("list");
        assert_eq!(used, buf.len());
        assert_eq!(list.len(), 3);
        assert!(!list.is_empty());
        assert_eq!(list.iter().len(), 3);
        assert_eq!(list.iter().collect::<Vec<_>>(), [&b"a"[..], b"bc", b"a"]);
        let mut reencoded = Vec::new();
        list.encode(&mut reencoded);
        assert_eq!(reencoded, buf);
    }

    #[test]
    fn empty_channel_list_is_just_the_terminator() {
        let buf = list_bytes(&[]);
        assert_eq!(buf, [0; 8]);
        let (list, used) = ChannelList::parse(&buf).expect("list");
        assert_eq!((list.len(), used), (0, 8));
        assert!(list.is_empty());
        assert_eq!(list.iter().next(), None);
    }

    #[test]
    fn first_empty_array_ends_a_list() {
        let mut buf = list_bytes(&[b"a"]);
        encode_array(&mut buf, b"b");
        let (list, used) = ChannelList::parse(&buf).expect("list");
        assert_eq!(list.iter().collect::<Vec<_>>(), [&b"a"[..]]);
        assert_eq!(used, 8 + 1 + 8);
    }

    #[test]
    fn channel_list_at_the_size_limit_is_accepted() {
        // One element filling the list: prefix + name + terminator == MAX_LIST_BYTES.
        let name = vec![b'x'; MAX_LIST_BYTES - 2 * ARRAY_PREFIX_LEN];
        let buf = list_bytes(&[&name]);
        assert_eq!(buf.len(), MAX_LIST_BYTES);
        assert_eq!(
            ChannelList::parse(&buf).map(|(_, used)| used),
            Ok(buf.len())
        );
        // Only its prefix present: waiting for the name is fine.
        assert_eq!(
            ChannelList::parse(&buf[..8]),
            Err(DecodeError::Incomplete {
                needed: MAX_LIST_BYTES - ARRAY_PREFIX_LEN
            })
        );
    }

    #[test]
    fn channel_list_over_the_size_limit_is_refused_on_the_prefix() {
        let len = (MAX_LIST_BYTES - 2 * ARRAY_PREFIX_LEN + 1) as u64;
        assert_eq!(
            ChannelList::parse(&len.to_le_bytes()),
            Err(DecodeError::ListTooLong)
        );
    }

    #[test]
    fn many_elements_add_up_to_the_size_limit() {
        // Ten elements of 1 MiB each (prefix included) leave no room for the terminator.
        let mib = 1024 * 1024;
        let name = vec![b'n'; mib - ARRAY_PREFIX_LEN];
        let mut buf = Vec::new();
        for _ in 0..10 {
            encode_array(&mut buf, &name);
        }
        encode_array(&mut buf, &[]);
        assert_eq!(ChannelList::parse(&buf), Err(DecodeError::ListTooLong));
        // One byte less in the last name and the list fits exactly.
        let mut buf = Vec::new();
        for _ in 0..9 {
            encode_array(&mut buf, &name);
        }
        encode_array(&mut buf, &name[..name.len() - ARRAY_PREFIX_LEN]);
        encode_array(&mut buf, &[]);
        assert_eq!(buf.len(), MAX_LIST_BYTES);
        let (list, used) = ChannelList::parse(&buf).expect("list at the limit");
        assert_eq!((list.len(), used), (10, MAX_LIST_BYTES));
    }

    #[test]
    fn every_truncated_list_is_incomplete() {
        let buf = list_bytes(&[b"a", b"bcd", b"ef"]);
        for len in 0..buf.len() {
            match ChannelList::parse(&buf[..len]) {
                Err(DecodeError::Incomplete { needed }) => {
                    assert!(needed > len && needed <= buf.len(), "len {len}");
                }
                other => panic!("len {len}: {other:?}"),
            }
        }
    }

    #[test]
    fn random_bytes_never_panic_and_primitives_are_consistent() {
        let mut rng = XorShift::new(0x5eed_1234);
        for _ in 0..2_000 {
            let buf = rng.fragments(6);
            assert_prefix_consistency(&buf, |b| parse_array(b).map(|(_, used)| used));
            assert_prefix_consistency(&buf, |b| ChannelList::parse(b).map(|(_, used)| used));
            for len in 0..=buf.len() {
                let prefix = &buf[..len];
                let array = parse_array(prefix);
                let item = parse_stream_item(prefix);
                assert_eq!(
                    item,
                    array.map(|(bytes, used)| match bytes {
                        [] => (StreamItem::End, used),
                        bytes => (StreamItem::Record(bytes), used),
                    })
                );
                if let Ok((list, used)) = ChannelList::parse(prefix) {
                    let mut reencoded = Vec::new();
                    encode_channel_list(&mut reencoded, list.iter());
                    assert_eq!(reencoded, &prefix[..used]);
                    assert_eq!(list.iter().count(), list.len());
                }
            }
        }
    }
}
