//! The version handshake and the HMAC authentication (spec §3.2, §3.4).
//!
//! After the two version bytes, four Authentication messages (ordinary 10-byte-header
//! messages of type 2) are exchanged:
//!
//! | # | direction | body | here |
//! |---|---|---|---|
//! | 1 | C → N | `u64` client timestamp (Unix seconds) | [`encode_client_timestamp`], [`parse_client_timestamp`] |
//! | 2 | N → C | 4-byte nonce | [`encode_nonce`], [`parse_nonce`] |
//! | 3 | C → N | name as an array, then the 64-byte code | [`ClientIdentity`] |
//! | 4 | N → C | 1 byte: 1 accepted, 0 rejected | [`encode_auth_result`], [`parse_auth_result`] |
//!
//! The code is HMAC-SHA-512 over the timestamp and the nonce ([`hmac_code`]), with the
//! client's 128-byte key from the node's credentials file ([`Credentials`]); the node
//! decides with [`verify`]. The nonce is random, so the caller makes it: this crate has
//! no random-number source.

use std::collections::BTreeMap;
use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha512;
use subtle::ConstantTimeEq;

use super::frame::{encode_header, encode_message, MessageType};
use super::wire::{array_len, encode_array, BodyError, Fields};

/// The protocol version byte each side sends first.
pub const PROTOCOL_VERSION: u8 = 1;

/// Length of a client key: 1024 bits, the SHA-512 block size.
pub const KEY_LEN: usize = 128;

/// Length of an HMAC-SHA-512 code.
pub const CODE_LEN: usize = 64;

/// Length of the node's nonce.
pub const NONCE_LEN: usize = 4;

/// Longest client name.
pub const MAX_NAME_LEN: usize = 100;

/// Largest credentials file, in bytes.
pub const MAX_CREDENTIALS_FILE_LEN: usize = 10_000_000;

/// Largest accepted difference between the client's and the node's clock: 30 minutes.
/// (The original's comment says 30 s; its code says 30 min, spec §10 Q11.)
pub const MAX_CLOCK_SKEW_SECS: u64 = 30 * 60;

/// A client key.
pub type Key = [u8; KEY_LEN];

/// The peer's protocol version byte is not ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the peer uses protocol version {theirs:#04X}, which is incompatible with version {:#04X}",
    PROTOCOL_VERSION
)]
pub struct VersionMismatch {
    /// The byte the peer sent.
    pub theirs: u8,
}

/// Checks the peer's version byte. (The node must also refuse any byte that arrives
/// after the version and before it sent its own; that is the caller's I/O.)
pub fn check_version(theirs: u8) -> Result<(), VersionMismatch> {
    if theirs == PROTOCOL_VERSION {
        Ok(())
    } else {
        Err(VersionMismatch { theirs })
    }
}

/// HMAC-SHA-512 of `timestamp` (8 bytes, little-endian) followed by `nonce`, keyed with
/// `key`: the code a client sends and the node recomputes.
pub fn hmac_code(key: &Key, timestamp: u64, nonce: &[u8; NONCE_LEN]) -> [u8; CODE_LEN] {
    let mut mac = <Hmac<Sha512> as Mac>::new(key.into());
    mac.update(&timestamp.to_le_bytes());
    mac.update(nonce);
    mac.finalize().into_bytes().into()
}

/// Whether `byte` is an ASCII graph character (0x21–0x7E), as C's `isgraph`.
fn is_graph(byte: u8) -> bool {
    byte.is_ascii_graphic()
}

/// Whether `byte` is white space as C's `isspace` in the C locale (which, unlike
/// [`u8::is_ascii_whitespace`], includes the vertical tab).
fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r')
}

fn trim(mut bytes: &[u8]) -> &[u8] {
    while let Some((&first, rest)) = bytes.split_first() {
        if !is_space(first) {
            break;
        }
        bytes = rest;
    }
    while let Some((&last, rest)) = bytes.split_last() {
        if !is_space(last) {
            break;
        }
        bytes = rest;
    }
    bytes
}

fn hex_digit(byte: u8) -> Option<u8> {
    char::from(byte)
        .to_digit(16)
        .and_then(|digit| u8::try_from(digit).ok())
}

/// Why a client name cannot be in a credentials file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is empty (or white space only).
    #[error("Empty name")]
    Empty,
    /// The name is longer than [`MAX_NAME_LEN`] bytes.
    #[error("Name too long ({len} bytes, at most {} allowed)", MAX_NAME_LEN)]
    TooLong {
        /// The name's length in bytes.
        len: usize,
    },
    /// A byte of the name is not an ASCII graph character (0x21–0x7E).
    #[error("Invalid name letter at position {position}")]
    BadCharacter {
        /// 0-based index of the first bad byte.
        position: usize,
    },
}

/// Checks a client name as the credentials file parser does.
pub fn check_name(name: &[u8]) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong { len: name.len() });
    }
    match name.iter().position(|&byte| !is_graph(byte)) {
        Some(position) => Err(NameError::BadCharacter { position }),
        None => Ok(()),
    }
}

/// Why a credentials file was refused. The node refuses to start on it (and keeps the
/// old credentials on a reload). Line numbers count from 1 and include empty lines.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    /// The file is larger than [`MAX_CREDENTIALS_FILE_LEN`].
    #[error("Key registry file too large: {len} bytes")]
    FileTooLarge {
        /// The file's length in bytes.
        len: usize,
    },
    /// A name is empty, too long or has a non-graph byte.
    #[error("{error} at line {line}")]
    Name {
        /// The line.
        line: usize,
        /// What is wrong with the name.
        error: NameError,
    },
    /// A key is not exactly 256 characters long (a line with no `:` has an empty key).
    #[error("Invalid key length {len} (should be {}) at line {line}", 2 * KEY_LEN)]
    KeyLength {
        /// The line.
        line: usize,
        /// Length of the hex key text.
        len: usize,
    },
    /// A key character is not a hex digit.
    #[error("Invalid key letter at position {position} at line {line}")]
    KeyCharacter {
        /// The line.
        line: usize,
        /// 0-based index of the character in the key text.
        position: usize,
    },
}

/// The node's credentials: client names and their 128-byte keys.
///
/// Parsed from the credentials file (`etc/credentials`). `Debug` prints names only,
/// never keys.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    keys: BTreeMap<String, Key>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("names", &self.keys.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// Parses a credentials file; see [`Credentials::parse_bytes`].
    pub fn parse(content: &str) -> Result<Credentials, CredentialsError> {
        Credentials::parse_bytes(content.as_bytes())
    }

    /// Parses a credentials file as the original does: at most
    /// [`MAX_CREDENTIALS_FILE_LEN`] bytes; lines split on `\n`; each non-empty line
    /// split at its first `:` into name and key, both trimmed of white space; the name
    /// 1 to 100 ASCII graph characters; the key exactly 256 hex digits, any case.
    ///
    /// Empty lines are skipped, but a line of white space only is an empty name (an
    /// error), as in the original. A name given twice keeps its last key, as in the
    /// original. Checks run in the original's order: empty name, name length, key
    /// length, name characters, key characters.
    pub fn parse_bytes(content: &[u8]) -> Result<Credentials, CredentialsError> {
        if content.len() > MAX_CREDENTIALS_FILE_LEN {
            return Err(CredentialsError::FileTooLarge { len: content.len() });
        }
        let mut keys = BTreeMap::new();
        for (index, raw_line) in content.split(|&byte| byte == b'\n').enumerate() {
            let line = index + 1;
            if raw_line.is_empty() {
                continue;
            }
            let mut parts = raw_line.splitn(2, |&byte| byte == b':');
            let name = trim(parts.next().unwrap_or_default());
            let hex_key = trim(parts.next().unwrap_or_default());
            let name_error = |error| CredentialsError::Name { line, error };
            if name.is_empty() {
                return Err(name_error(NameError::Empty));
            }
            if name.len() > MAX_NAME_LEN {
                return Err(name_error(NameError::TooLong { len: name.len() }));
            }
            if hex_key.len() != 2 * KEY_LEN {
                return Err(CredentialsError::KeyLength {
                    line,
                    len: hex_key.len(),
                });
            }
            check_name(name).map_err(name_error)?;
            let mut key = [0; KEY_LEN];
            for (index, (byte, pair)) in key.iter_mut().zip(hex_key.chunks_exact(2)).enumerate() {
                let digit = |offset: usize| {
                    pair.get(offset).copied().and_then(hex_digit).ok_or(
                        CredentialsError::KeyCharacter {
                            line,
                            position: 2 * index + offset,
                        },
                    )
                };
                *byte = (digit(0)? << 4) | digit(1)?;
            }
            // check_name let only ASCII through, so this is the name unchanged.
            let name: String = name.iter().map(|&byte| char::from(byte)).collect();
            keys.insert(name, key);
        }
        Ok(Credentials { keys })
    }

    /// The client names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> + '_ {
        self.keys.keys().map(String::as_str)
    }

    /// The key of client `name`, if it is known.
    pub fn key(&self, name: impl AsRef<[u8]>) -> Option<&Key> {
        let name = std::str::from_utf8(name.as_ref()).ok()?;
        self.keys.get(name)
    }

    /// Number of clients.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no client is known (no client can then connect).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// The line `name:hexkey` (lower-case hex, no newline) for a credentials file, as a
/// key generator writes it. The name is checked as the parser would, and may not
/// contain `:` (the parser splits the line at the first one).
pub fn format_credentials_line(name: &str, key: &Key) -> Result<String, NameError> {
    check_name(name.as_bytes())?;
    // The file is split at the first ':', so a name holding one cannot be read
    // back: refuse to write it.
    if let Some(position) = name.bytes().position(|b| b == b':') {
        return Err(NameError::BadCharacter { position });
    }
    let mut line = String::with_capacity(name.len() + 1 + 2 * KEY_LEN);
    line.push_str(name);
    line.push(':');
    for byte in key {
        line.push_str(&format!("{byte:02x}"));
    }
    Ok(line)
}

/// Why the node refused a client. `Display` gives the original's reason text, for the
/// log line `Authentication failure for client '<name>': <reason>` (see
/// [`failure_log_line`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthRejection {
    /// The client sent an empty name.
    #[error("Empty client name")]
    EmptyName,
    /// The name is longer than [`MAX_NAME_LEN`] bytes.
    #[error("Client name too long")]
    NameTooLong {
        /// The name's length in bytes.
        len: usize,
    },
    /// The name is unknown and has non-graph bytes (it could never be in a file).
    #[error("Invalid character in client name")]
    InvalidNameCharacter,
    /// The name is not in the credentials.
    #[error("Unknown client name")]
    UnknownName,
    /// The timestamp does not fit an `i64` (`time_t`).
    #[error("Client timestamp above time_t.max")]
    TimestampTooLarge,
    /// The timestamp is 0.
    #[error("Zero client timestamp")]
    ZeroTimestamp,
    /// The clocks differ by more than [`MAX_CLOCK_SKEW_SECS`].
    #[error("Client/node timestamp difference > 30 minutes")]
    ClockSkew {
        /// The client's timestamp.
        client_secs: u64,
        /// The node's clock.
        node_secs: u64,
    },
    /// The code is not [`CODE_LEN`] bytes (cannot come from a well-formed message).
    #[error("Client authentication code has {len} bytes instead of {}", CODE_LEN)]
    WrongCodeLength {
        /// The code's length.
        len: usize,
    },
    /// The code does not match the key.
    #[error("Client authentication rejected")]
    WrongCode,
}

/// Decides whether a client may connect (node side), with the rules of the original
/// and in its order: empty name, too-long name; then, for a known name, the timestamp
/// (not above `i64::MAX`, not 0, within [`MAX_CLOCK_SKEW_SECS`] of `now_unix_secs`) and
/// the code, compared in constant time; for an unknown name, a separate reason if it
/// has non-graph bytes.
pub fn verify(
    credentials: &Credentials,
    name: &[u8],
    timestamp: u64,
    nonce: &[u8; NONCE_LEN],
    code: &[u8],
    now_unix_secs: u64,
) -> Result<(), AuthRejection> {
    if name.is_empty() {
        return Err(AuthRejection::EmptyName);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(AuthRejection::NameTooLong { len: name.len() });
    }
    let Some(key) = credentials.key(name) else {
        return Err(if name.iter().all(|&byte| is_graph(byte)) {
            AuthRejection::UnknownName
        } else {
            AuthRejection::InvalidNameCharacter
        });
    };
    if i64::try_from(timestamp).is_err() {
        return Err(AuthRejection::TimestampTooLarge);
    }
    if timestamp == 0 {
        return Err(AuthRejection::ZeroTimestamp);
    }
    if timestamp.abs_diff(now_unix_secs) > MAX_CLOCK_SKEW_SECS {
        return Err(AuthRejection::ClockSkew {
            client_secs: timestamp,
            node_secs: now_unix_secs,
        });
    }
    if code.len() != CODE_LEN {
        return Err(AuthRejection::WrongCodeLength { len: code.len() });
    }
    let expected = hmac_code(key, timestamp, nonce);
    if bool::from(expected.ct_eq(code)) {
        Ok(())
    } else {
        Err(AuthRejection::WrongCode)
    }
}

/// A client name made safe for a log line: printable ASCII as it is, backslash and
/// every other byte as `\xNN`, so a name cannot forge log lines.
#[derive(Debug, Clone, Copy)]
pub struct LogName<'a>(pub &'a [u8]);

impl fmt::Display for LogName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &byte in self.0 {
            if byte == b' ' || (is_graph(byte) && byte != b'\\') {
                write!(f, "{}", char::from(byte))?;
            } else {
                write!(f, "\\x{byte:02X}")?;
            }
        }
        Ok(())
    }
}

/// The original's warning for a refused client:
/// `Authentication failure for client '<name>': <reason>`.
pub fn failure_log_line(name: &[u8], rejection: &AuthRejection) -> String {
    format!(
        "Authentication failure for client '{}': {rejection}",
        LogName(name)
    )
}

/// Appends message 1 (client side): the client's timestamp, Unix seconds.
pub fn encode_client_timestamp(out: &mut Vec<u8>, timestamp: u64) {
    encode_message(
        out,
        MessageType::Authentication,
        &[&timestamp.to_le_bytes()],
    );
}

/// Parses the body of message 1 (node side): exactly a `u64`.
pub fn parse_client_timestamp(body: &[u8]) -> Result<u64, BodyError> {
    let mut fields = Fields::new(body);
    let timestamp = fields.u64()?;
    fields.finish()?;
    Ok(timestamp)
}

/// Appends message 2 (node side): the nonce, 4 raw bytes (no length prefix).
pub fn encode_nonce(out: &mut Vec<u8>, nonce: &[u8; NONCE_LEN]) {
    encode_message(out, MessageType::Authentication, &[nonce]);
}

/// Parses the body of message 2 (client side): exactly 4 bytes.
pub fn parse_nonce(body: &[u8]) -> Result<[u8; NONCE_LEN], BodyError> {
    let mut fields = Fields::new(body);
    let nonce = *fields.chunk::<NONCE_LEN>()?;
    fields.finish()?;
    Ok(nonce)
}

/// Message 3: the client's name and code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIdentity<'a> {
    /// The name, raw bytes; judged by [`verify`], not by the parser.
    pub name: &'a [u8],
    /// The HMAC code.
    pub code: &'a [u8; CODE_LEN],
}

impl<'a> ClientIdentity<'a> {
    /// Parses the body of message 3 (node side): the name as an array, then exactly 64
    /// bytes. The name length is checked against the body before it is trusted; a name
    /// longer than [`MAX_NAME_LEN`] parses, and [`verify`] refuses it.
    pub fn parse(body: &'a [u8]) -> Result<Self, BodyError> {
        let mut fields = Fields::new(body);
        let name = fields.array()?;
        let code = fields.chunk::<CODE_LEN>()?;
        fields.finish()?;
        Ok(ClientIdentity { name, code })
    }

    /// Appends message 3 (client side).
    pub fn encode(&self, out: &mut Vec<u8>) {
        encode_header(
            out,
            MessageType::Authentication,
            array_len(self.name.len()) + CODE_LEN,
        );
        encode_array(out, self.name);
        out.extend_from_slice(self.code);
    }
}

/// Appends message 4 (node side): 1 if the client is accepted, 0 if not.
pub fn encode_auth_result(out: &mut Vec<u8>, accepted: bool) {
    encode_message(out, MessageType::Authentication, &[&[u8::from(accepted)]]);
}

/// Parses the body of message 4 (client side): exactly one byte, 1 (accepted) or 0
/// (rejected); any other byte is an error.
pub fn parse_auth_result(body: &[u8]) -> Result<bool, BodyError> {
    let mut fields = Fields::new(body);
    let code = fields.u8()?;
    fields.finish()?;
    match code {
        0 => Ok(false),
        1 => Ok(true),
        code => Err(BodyError::UnknownCode {
            what: "authentication result",
            code,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::super::frame::{HEADER_LEN, MAX_AUTH_BODY};
    use super::super::test_util::{assert_exact, auth_body, XorShift};
    use super::*;

    /// HMAC-SHA-512, all-zero 128-byte key, over 08 07 06 05 04 03 02 01 01 02 03 04
    /// (timestamp 0x0102030405060708 LE, nonce 1 2 3 4), computed independently with
    /// Python's `hmac` module.
    const ZERO_KEY_CODE: &str = "6358e09cd7fb4274e6fbef34fbf4a2ef40b9ebf54f38b77641b031e550ec5b17\
                                 14ef1ef12093080b729a7311881910a2c2f726ced65e6b997e37e6feead63495";

    /// Same, key 00 01 02 … 7F, timestamp 1 700 000 000, nonce DE AD BE EF.
    const COUNTING_KEY_CODE: &str = "2fedee5b1cd346335b92ae0253c442a1e3f20c463b9d7d9ec7b9ee19ac05b9c2\
                                     19f53d4d5f224ad5247431645febd527ffa6eeffe9e095362feeef8336ce64ca";

    const NOW: u64 = 1_700_000_000;
    const NONCE: [u8; 4] = [9, 8, 7, 6];

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    fn counting_key() -> Key {
        let mut key = [0; KEY_LEN];
        for (index, byte) in key.iter_mut().enumerate() {
            *byte = index as u8;
        }
        key
    }

    fn credentials() -> Credentials {
        let zero = format_credentials_line("test", &[0; KEY_LEN]).expect("name");
        let counting = format_credentials_line("count", &counting_key()).expect("name");
        Credentials::parse(&format!("{zero}\n{counting}\n")).expect("credentials")
    }

    #[test]
    fn hmac_known_answers() {
        let code = hmac_code(&[0; KEY_LEN], 0x0102_0304_0506_0708, &[1, 2, 3, 4]);
        assert_eq!(hex(&code), ZERO_KEY_CODE);
        let code = hmac_code(&counting_key(), NOW, &[0xDE, 0xAD, 0xBE, 0xEF]);
        assert_eq!(hex(&code), COUNTING_KEY_CODE);
    }

    #[test]
    fn version_byte() {
        assert_eq!(check_version(1), Ok(()));
        for theirs in [0, 2, 0xFF] {
            assert_eq!(check_version(theirs), Err(VersionMismatch { theirs }));
        }
        assert_eq!(
            VersionMismatch { theirs: 2 }.to_string(),
            "the peer uses protocol version 0x02, which is incompatible with version 0x01"
        );
    }

    #[test]
    fn accepts_the_right_code() {
        let credentials = credentials();
        let code = hmac_code(&[0; KEY_LEN], NOW, &NONCE);
        assert_eq!(
            verify(&credentials, b"test", NOW, &NONCE, &code, NOW),
            Ok(())
        );
        // At the edges of the clock window.
        for node in [NOW - MAX_CLOCK_SKEW_SECS, NOW + MAX_CLOCK_SKEW_SECS] {
            assert_eq!(
                verify(&credentials, b"test", NOW, &NONCE, &code, node),
                Ok(())
            );
        }
        let code = hmac_code(&counting_key(), NOW, &NONCE);
        assert_eq!(
            verify(&credentials, b"count", NOW, &NONCE, &code, NOW),
            Ok(())
        );
    }

    #[test]
    fn every_rejection_rule() {
        let credentials = credentials();
        let code = hmac_code(&[0; KEY_LEN], NOW, &NONCE);
        let check = |name: &[u8], timestamp: u64, code: &[u8], now: u64| {
            verify(&credentials, name, timestamp, &NONCE, code, now)
        };
        assert_eq!(check(b"", NOW, &code, NOW), Err(AuthRejection::EmptyName));
        assert_eq!(
            check(&[b'a'; 101], NOW, &code, NOW),
            Err(AuthRejection::NameTooLong { len: 101 })
        );
        assert_eq!(
            check(b"nobody", NOW, &code, NOW),
            Err(AuthRejection::UnknownName)
        );
        assert_eq!(
            check(&[b'a'; 100], NOW, &code, NOW),
            Err(AuthRejection::UnknownName)
        );
        for name in [&b"te st"[..], b"test\n", b"\xFFtest", b"t\x00"] {
            assert_eq!(
                check(name, NOW, &code, NOW),
                Err(AuthRejection::InvalidNameCharacter)
            );
        }
        assert_eq!(
            check(b"test", i64::MAX as u64 + 1, &code, NOW),
            Err(AuthRejection::TimestampTooLarge)
        );
        assert_eq!(
            check(b"test", u64::MAX, &code, NOW),
            Err(AuthRejection::TimestampTooLarge)
        );
        assert_eq!(
            check(b"test", 0, &code, NOW),
            Err(AuthRejection::ZeroTimestamp)
        );
        for now in [NOW + MAX_CLOCK_SKEW_SECS + 1, NOW - MAX_CLOCK_SKEW_SECS - 1] {
            assert_eq!(
                check(b"test", NOW, &code, now),
                Err(AuthRejection::ClockSkew {
                    client_secs: NOW,
                    node_secs: now
                })
            );
        }
        assert_eq!(
            check(b"test", NOW, &code[..63], NOW),
            Err(AuthRejection::WrongCodeLength { len: 63 })
        );
        assert_eq!(
            check(b"test", NOW, &[0; 65], NOW),
            Err(AuthRejection::WrongCodeLength { len: 65 })
        );
        // Another key, another timestamp, another nonce, one flipped bit.
        let other_key = hmac_code(&counting_key(), NOW, &NONCE);
        assert_eq!(
            check(b"test", NOW, &other_key, NOW),
            Err(AuthRejection::WrongCode)
        );
        let code_for_later = hmac_code(&[0; KEY_LEN], NOW + 1, &NONCE);
        assert_eq!(
            check(b"test", NOW, &code_for_later, NOW),
            Err(AuthRejection::WrongCode)
        );
        let other_nonce = hmac_code(&[0; KEY_LEN], NOW, &[9, 8, 7, 7]);
        assert_eq!(
            check(b"test", NOW, &other_nonce, NOW),
            Err(AuthRejection::WrongCode)
        );
        let mut flipped = code;
        flipped[63] ^= 1;
        assert_eq!(
            check(b"test", NOW, &flipped, NOW),
            Err(AuthRejection::WrongCode)
        );
        // Timestamps are only judged for known names, as in the original.
        assert_eq!(
            check(b"nobody", 0, &code, NOW),
            Err(AuthRejection::UnknownName)
        );
    }

    #[test]
    fn rejection_log_lines() {
        assert_eq!(
            failure_log_line(b"app", &AuthRejection::WrongCode),
            "Authentication failure for client 'app': Client authentication rejected"
        );
        assert_eq!(
            failure_log_line(b"a b\n\\'\xFF", &AuthRejection::InvalidNameCharacter),
            "Authentication failure for client 'a b\\x0A\\x5C'\\xFF': \
             Invalid character in client name"
        );
        let reasons = [
            (AuthRejection::EmptyName, "Empty client name"),
            (
                AuthRejection::NameTooLong { len: 101 },
                "Client name too long",
            ),
            (AuthRejection::UnknownName, "Unknown client name"),
            (
                AuthRejection::TimestampTooLarge,
                "Client timestamp above time_t.max",
            ),
            (AuthRejection::ZeroTimestamp, "Zero client timestamp"),
            (
                AuthRejection::ClockSkew {
                    client_secs: 1,
                    node_secs: 5000,
                },
                "Client/node timestamp difference > 30 minutes",
            ),
        ];
        for (rejection, reason) in reasons {
            assert_eq!(rejection.to_string(), reason);
        }
    }

    #[test]
    fn example_credentials_fixture_parses() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/fixtures/original-config/example-credentials"
        );
        let content = std::fs::read(path).unwrap_or_else(|error| panic!("{path}: {error}"));
        let credentials = Credentials::parse_bytes(&content).expect("the fixture parses");
        assert_eq!(credentials.names().collect::<Vec<_>>(), ["myapp"]);
        assert_eq!(credentials.key("myapp"), Some(&[0; KEY_LEN]));
        assert_eq!(credentials.key(b"myapp"), Some(&[0; KEY_LEN]));
        assert_eq!(credentials.key("other"), None);
        assert_eq!(credentials.len(), 1);
    }

    #[test]
    fn credentials_file_format() {
        let zeros = "0".repeat(256);
        let mixed: String = "aB".repeat(128);
        let content = format!(
            "\n\nalpha:{zeros}\n  beta\t:  {mixed}\r\n\n\x0Bgamma!~:{zeros}\x0B\ndup:{zeros}\ndup:{mixed}"
        );
        let credentials = Credentials::parse(&content).expect("credentials");
        assert_eq!(
            credentials.names().collect::<Vec<_>>(),
            ["alpha", "beta", "dup", "gamma!~"]
        );
        assert_eq!(credentials.key("beta"), Some(&[0xAB; KEY_LEN]));
        // A name given twice keeps its last key.
        assert_eq!(credentials.key("dup"), Some(&[0xAB; KEY_LEN]));
        assert!(!credentials.is_empty());
        assert_eq!(Credentials::parse(""), Ok(Credentials::default()));
        assert!(Credentials::parse("\n\n").expect("empty lines").is_empty());
        // Debug shows names, never keys.
        let debug = format!("{credentials:?}");
        assert!(debug.contains("alpha") && !debug.contains("ab, ab") && !debug.contains("171"));
    }

    #[test]
    fn credentials_errors_name_their_line() {
        let zeros = "0".repeat(256);
        let ok = format!("ok:{zeros}\n");
        let cases = [
            (
                format!("{ok}:{zeros}"),
                CredentialsError::Name {
                    line: 2,
                    error: NameError::Empty,
                },
            ),
            (
                format!("{ok}\n   \n"),
                CredentialsError::Name {
                    line: 3,
                    error: NameError::Empty,
                },
            ),
            (
                format!("{ok}{}:{zeros}", "n".repeat(101)),
                CredentialsError::Name {
                    line: 2,
                    error: NameError::TooLong { len: 101 },
                },
            ),
            (
                format!("{ok}x:{}", "0".repeat(255)),
                CredentialsError::KeyLength { line: 2, len: 255 },
            ),
            (
                format!("{ok}x"),
                CredentialsError::KeyLength { line: 2, len: 0 },
            ),
            (
                format!("x:{zeros}0"),
                CredentialsError::KeyLength { line: 1, len: 257 },
            ),
            (
                format!("a b:{zeros}"),
                CredentialsError::Name {
                    line: 1,
                    error: NameError::BadCharacter { position: 1 },
                },
            ),
            (
                format!("é:{}", "0".repeat(256)),
                CredentialsError::Name {
                    line: 1,
                    error: NameError::BadCharacter { position: 0 },
                },
            ),
            (
                format!("{ok}{ok}x:{}g{}", "0".repeat(10), "0".repeat(245)),
                CredentialsError::KeyCharacter {
                    line: 3,
                    position: 10,
                },
            ),
            (
                format!("x:{}:", "0".repeat(255)),
                CredentialsError::KeyCharacter {
                    line: 1,
                    position: 255,
                },
            ),
        ];
        for (content, expected) in cases {
            assert_eq!(Credentials::parse(&content), Err(expected), "{content:?}");
        }
        assert_eq!(
            CredentialsError::KeyLength { line: 4, len: 3 }.to_string(),
            "Invalid key length 3 (should be 256) at line 4"
        );
        assert_eq!(
            CredentialsError::Name {
                line: 2,
                error: NameError::Empty
            }
            .to_string(),
            "Empty name at line 2"
        );
    }

    #[test]
    fn credentials_file_size_limit() {
        let big = vec![b'\n'; MAX_CREDENTIALS_FILE_LEN + 1];
        assert_eq!(
            Credentials::parse_bytes(&big),
            Err(CredentialsError::FileTooLarge {
                len: MAX_CREDENTIALS_FILE_LEN + 1
            })
        );
        let at_limit = vec![b'\n'; MAX_CREDENTIALS_FILE_LEN];
        assert!(Credentials::parse_bytes(&at_limit).is_ok());
    }

    #[test]
    fn formatted_lines_parse_back() {
        let key = counting_key();
        let line = format_credentials_line("client-1", &key).expect("valid name");
        assert_eq!(line.len(), "client-1:".len() + 256);
        assert!(line.starts_with("client-1:000102"));
        let credentials = Credentials::parse(&line).expect("parses");
        assert_eq!(credentials.key("client-1"), Some(&key));
        assert_eq!(format_credentials_line("", &key), Err(NameError::Empty));
        assert_eq!(
            format_credentials_line("a:b c", &key),
            Err(NameError::BadCharacter { position: 3 })
        );
        assert_eq!(
            format_credentials_line(&"x".repeat(101), &key),
            Err(NameError::TooLong { len: 101 })
        );
    }

    #[test]
    fn auth_messages_round_trip() {
        let mut out = Vec::new();
        encode_client_timestamp(&mut out, 0x0102_0304_0506_0708);
        assert_eq!(out, [2, 8, 0, 0, 0, 0, 0, 0, 0, 10, 8, 7, 6, 5, 4, 3, 2, 1]);
        let body = auth_body(&out);
        assert_eq!(parse_client_timestamp(body), Ok(0x0102_0304_0506_0708));
        assert_exact(body, |body| parse_client_timestamp(body).map(drop));

        let mut out = Vec::new();
        encode_nonce(&mut out, &[1, 2, 3, 4]);
        assert_eq!(out, [2, 4, 0, 0, 0, 0, 0, 0, 0, 6, 1, 2, 3, 4]);
        assert_exact(auth_body(&out), |body| parse_nonce(body).map(drop));
        assert_eq!(parse_nonce(auth_body(&out)), Ok([1, 2, 3, 4]));

        let code = hmac_code(&[0; KEY_LEN], NOW, &NONCE);
        let identity = ClientIdentity {
            name: b"myapp",
            code: &code,
        };
        let mut out = Vec::new();
        identity.encode(&mut out);
        assert_eq!(out.len(), HEADER_LEN + 8 + 5 + 64);
        let body = auth_body(&out);
        assert_eq!(
            body[..13],
            [5, 0, 0, 0, 0, 0, 0, 0, b'm', b'y', b'a', b'p', b'p']
        );
        assert_eq!(ClientIdentity::parse(body), Ok(identity));
        assert_exact(body, |body| ClientIdentity::parse(body).map(drop));

        for (accepted, byte) in [(true, 1), (false, 0)] {
            let mut out = Vec::new();
            encode_auth_result(&mut out, accepted);
            assert_eq!(auth_body(&out), [byte]);
            assert_exact(&[byte], |body| parse_auth_result(body).map(drop));
            assert_eq!(parse_auth_result(&[byte]), Ok(accepted));
        }
        assert_eq!(
            parse_auth_result(&[2]),
            Err(BodyError::UnknownCode {
                what: "authentication result",
                code: 2
            })
        );
    }

    #[test]
    fn identity_name_length_is_checked_against_the_body() {
        let mut body = (1u64 << 40).to_le_bytes().to_vec();
        body.extend_from_slice(&[0; 64]);
        assert_eq!(
            ClientIdentity::parse(&body),
            Err(BodyError::Truncated {
                missing: (1 << 40) - 64
            })
        );
        // The longest name an Authentication body can carry still parses.
        let name = vec![b'n'; MAX_AUTH_BODY - 8 - CODE_LEN];
        let code = [0; CODE_LEN];
        let mut out = Vec::new();
        ClientIdentity {
            name: &name,
            code: &code,
        }
        .encode(&mut out);
        let body = auth_body(&out);
        assert_eq!(body.len(), MAX_AUTH_BODY);
        assert_eq!(ClientIdentity::parse(body).map(|id| id.name.len()), Ok(927));
    }

    #[test]
    fn random_input_never_panics() {
        let mut rng = XorShift::new(0xA117);
        let credentials = credentials();
        for _ in 0..20_000 {
            let body = rng.neo_bytes(6);
            let _ = parse_client_timestamp(&body);
            let _ = parse_nonce(&body);
            let _ = parse_auth_result(&body);
            if let Ok(identity) = ClientIdentity::parse(&body) {
                let mut out = Vec::new();
                identity.encode(&mut out);
                assert_eq!(auth_body(&out), &body[..]);
                let now = rng.next();
                let _ = verify(
                    &credentials,
                    identity.name,
                    rng.next(),
                    &NONCE,
                    identity.code,
                    now,
                );
            }
            let mut text = rng.bytes(300);
            text.extend_from_slice(b":");
            text.extend(
                rng.bytes(300)
                    .iter()
                    .map(|byte| b"0123456789abcdefG \n:"[usize::from(*byte) % 20]),
            );
            let _ = Credentials::parse_bytes(&text);
        }
    }

    #[test]
    fn credentials_line_refuses_a_colon_in_the_name() {
        let key = [7u8; KEY_LEN];
        assert_eq!(
            format_credentials_line("a:b", &key),
            Err(NameError::BadCharacter { position: 1 })
        );
        let line = format_credentials_line("ab", &key).expect("valid name");
        let parsed = Credentials::parse(&line).expect("parses back");
        assert_eq!(parsed.key("ab"), Some(&key));
    }
}
