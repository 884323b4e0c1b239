//! Fields inside a neo message body (spec §3.3): values are their raw little-endian
//! bytes, arrays are a `u64` length and the bytes, laid out back to back. A body is
//! always whole when it is parsed (the frame told its length), so a short body is a
//! protocol error, not "read more"; like the original's `MessageParser`, trailing bytes
//! are an error too.

use std::iter::FusedIterator;

/// Width of the `u64` length prefix of an array.
pub const ARRAY_PREFIX_LEN: usize = 8;

/// Why a whole message body is not the fields it should be. Every case is a protocol
/// error: the original node shuts the connection down (spec §3.5, §3.9).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// The body ends before the fields do; `missing` counts the bytes that a field (or
    /// an array's announced length) needs beyond the end.
    #[error("message too short: {missing} byte(s) missing")]
    Truncated {
        /// Bytes needed beyond the end of the body.
        missing: u64,
    },
    /// Bytes are left after the last field.
    #[error("message too long: {count} extra byte(s)")]
    TrailingBytes {
        /// Number of bytes left over.
        count: usize,
    },
    /// A Request message carries request id 0, which clients never use (spec §3.5) and
    /// which the original's request machinery asserts against.
    #[error("request id 0 is not a valid request id")]
    ZeroRequestId,
    /// The first message of a request is shorter than the 2-byte command.
    #[error("first request message contains no command")]
    NoCommand,
    /// A status, message-type or result byte has a value the protocol does not define.
    #[error("unknown {what} code {code}")]
    UnknownCode {
        /// Which byte it was, for the log ("Push status", "Consume message type", …).
        what: &'static str,
        /// The byte as it came off the wire.
        code: u8,
    },
}

/// A cursor over the fields of one message body.
#[derive(Clone, Copy)]
pub(super) struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    pub(super) fn new(body: &'a [u8]) -> Self {
        Fields { rest: body }
    }

    fn truncated(&self, wanted: u64) -> BodyError {
        // usize is at most 64 bits on every target Rust supports.
        BodyError::Truncated {
            missing: wanted.saturating_sub(self.rest.len() as u64),
        }
    }

    pub(super) fn chunk<const N: usize>(&mut self) -> Result<&'a [u8; N], BodyError> {
        let Some((chunk, rest)) = self.rest.split_first_chunk::<N>() else {
            return Err(self.truncated(N as u64));
        };
        self.rest = rest;
        Ok(chunk)
    }

    pub(super) fn u8(&mut self) -> Result<u8, BodyError> {
        self.chunk::<1>().map(|&[byte]| byte)
    }

    pub(super) fn u64(&mut self) -> Result<u64, BodyError> {
        self.chunk().map(|bytes| u64::from_le_bytes(*bytes))
    }

    /// Reads an array. Its length is compared with what is left of the body before
    /// anything is sliced, so a huge length is just a short body.
    pub(super) fn array(&mut self) -> Result<&'a [u8], BodyError> {
        let len = self.u64()?;
        let split = usize::try_from(len)
            .ok()
            .and_then(|len| self.rest.split_at_checked(len));
        let Some((bytes, rest)) = split else {
            return Err(self.truncated(len));
        };
        self.rest = rest;
        Ok(bytes)
    }

    /// Reads `count` arrays back to back and returns them as one list.
    pub(super) fn arrays(&mut self, count: usize) -> Result<ArrayList<'a>, BodyError> {
        let start = self.rest;
        for _ in 0..count {
            self.array()?;
        }
        let used = start.len() - self.rest.len();
        Ok(ArrayList {
            encoded: start.get(..used).unwrap_or_default(),
            len: count,
        })
    }

    /// Ends the body: nothing may follow the last field.
    pub(super) fn finish(self) -> Result<(), BodyError> {
        match self.rest.len() {
            0 => Ok(()),
            count => Err(BodyError::TrailingBytes { count }),
        }
    }
}

/// A run of arrays (`u64` length + bytes each), borrowed from a message body and already
/// validated: Push's channel names, or the records of a Consume batch.
///
/// Iterating it cannot fail, and allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ArrayList<'a> {
    encoded: &'a [u8],
    len: usize,
}

impl<'a> ArrayList<'a> {
    /// Validates `encoded` as arrays that fill it exactly (a Consume records batch).
    /// A length that runs past the end is [`BodyError::Truncated`].
    pub fn parse(encoded: &'a [u8]) -> Result<Self, BodyError> {
        let mut fields = Fields::new(encoded);
        let mut len = 0;
        while !fields.rest.is_empty() {
            fields.array()?;
            len += 1;
        }
        Ok(ArrayList { encoded, len })
    }

    /// Number of arrays.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there is no array.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The arrays as they are on the wire, length prefixes included.
    pub fn encoded(&self) -> &'a [u8] {
        self.encoded
    }

    /// The arrays' contents, in wire order.
    pub fn iter(&self) -> ArrayListIter<'a> {
        ArrayListIter {
            rest: self.encoded,
            remaining: self.len,
        }
    }
}

impl<'a> IntoIterator for ArrayList<'a> {
    type Item = &'a [u8];
    type IntoIter = ArrayListIter<'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<'a> IntoIterator for &ArrayList<'a> {
    type Item = &'a [u8];
    type IntoIter = ArrayListIter<'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Iterator over the contents of an [`ArrayList`].
#[derive(Debug, Clone)]
pub struct ArrayListIter<'a> {
    rest: &'a [u8],
    remaining: usize,
}

impl<'a> Iterator for ArrayListIter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.remaining == 0 {
            return None;
        }
        // The bytes were validated when the list was made; the `ok()?`s only keep this
        // free of panics by construction.
        let mut fields = Fields::new(self.rest);
        let bytes = fields.array().ok()?;
        self.rest = fields.rest;
        self.remaining -= 1;
        Some(bytes)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for ArrayListIter<'_> {}

impl FusedIterator for ArrayListIter<'_> {}

/// Appends an array: its length as a `u64` and its bytes.
pub fn encode_array(out: &mut Vec<u8>, bytes: &[u8]) {
    // usize is at most 64 bits on every target Rust supports, so this is lossless.
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Encoded length of an array holding `len` bytes.
pub(super) const fn array_len(len: usize) -> usize {
    ARRAY_PREFIX_LEN + len
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arrays(items: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for item in items {
            encode_array(&mut out, item);
        }
        out
    }

    #[test]
    fn array_is_length_then_bytes() {
        let mut out = Vec::new();
        encode_array(&mut out, b"ch");
        assert_eq!(out, [2, 0, 0, 0, 0, 0, 0, 0, b'c', b'h']);
        assert_eq!(array_len(2), out.len());
        let mut fields = Fields::new(&out);
        assert_eq!(fields.array(), Ok(&b"ch"[..]));
        assert_eq!(fields.finish(), Ok(()));
    }

    #[test]
    fn huge_array_length_is_a_short_body() {
        for len in [3u64, 1 << 40, u64::MAX] {
            let mut body = len.to_le_bytes().to_vec();
            body.extend_from_slice(b"ab");
            assert_eq!(
                Fields::new(&body).array(),
                Err(BodyError::Truncated { missing: len - 2 })
            );
        }
        assert_eq!(
            Fields::new(&[1, 0, 0]).array(),
            Err(BodyError::Truncated { missing: 5 })
        );
    }

    #[test]
    fn trailing_bytes_are_counted() {
        let mut fields = Fields::new(&[7, 8, 9]);
        assert_eq!(fields.u8(), Ok(7));
        assert_eq!(fields.finish(), Err(BodyError::TrailingBytes { count: 2 }));
    }

    #[test]
    fn array_list_walks_whole_arrays() {
        let items: [&[u8]; 4] = [b"a", b"", b"record-2", &[0xFF; 300]];
        let bytes = arrays(&items);
        let list = ArrayList::parse(&bytes).expect("list");
        assert_eq!(list.len(), 4);
        assert!(!list.is_empty());
        assert_eq!(list.encoded(), &bytes[..]);
        assert_eq!(list.iter().len(), 4);
        assert_eq!(list.iter().collect::<Vec<_>>(), items);
        assert_eq!((&list).into_iter().count(), 4);
        let empty = ArrayList::parse(&[]).expect("empty list");
        assert!(empty.is_empty());
        assert_eq!(empty.iter().next(), None);
        for cut in 1..bytes.len() {
            let result = ArrayList::parse(&bytes[..cut]);
            // A cut right after a whole array is a shorter, valid list.
            if let Ok(list) = result {
                assert!(list.len() < 4);
            } else {
                assert!(matches!(result, Err(BodyError::Truncated { .. })), "{cut}");
            }
        }
    }

    #[test]
    fn counted_arrays_stop_after_count() {
        let bytes = arrays(&[b"x", b"yz", b"rest"]);
        let mut fields = Fields::new(&bytes);
        let list = fields.arrays(2).expect("two arrays");
        assert_eq!(list.iter().collect::<Vec<_>>(), [&b"x"[..], b"yz"]);
        assert_eq!(fields.array(), Ok(&b"rest"[..]));
        assert_eq!(
            Fields::new(&bytes).arrays(4),
            Err(BodyError::Truncated { missing: 8 })
        );
    }
}
