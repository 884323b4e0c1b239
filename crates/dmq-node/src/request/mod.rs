//! Request handlers, one file per request, per protocol.

pub mod legacy;
pub mod neo;

/// A valid channel name as `&str`, or `None` for a name the legacy protocol
/// rejects with 409 (empty, or any byte outside `[A-Za-z0-9_-]`).
pub fn channel_name(raw: &[u8]) -> Option<&str> {
    if dmq_storage::is_valid_channel_name(raw) {
        std::str::from_utf8(raw).ok()
    } else {
        None
    }
}
