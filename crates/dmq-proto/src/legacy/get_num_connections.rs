//! GetNumConnections (8): no body. The original always answers 406 NotSupported, so the
//! reply the legacy client would expect after 200 is never sent.

use super::wire::Reader;
use super::{DecodeError, Request};

pub(super) fn decode<'a>(_reader: &mut Reader<'a>) -> Result<Request<'a>, DecodeError> {
    Ok(Request::GetNumConnections)
}

pub(super) fn encode(_out: &mut Vec<u8>) {}

#[cfg(test)]
mod tests {
    use super::super::test_util::assert_round_trip;
    use super::super::{check, parse};
    use super::*;

    #[test]
    fn is_only_the_code() {
        let bytes = assert_round_trip(&Request::GetNumConnections);
        assert_eq!(bytes, [8, 0, 0, 0]);
    }

    #[test]
    fn bytes_after_it_belong_to_the_next_request() {
        let buf = [8, 0, 0, 0, 8, 0, 0, 0, 0xFF];
        assert_eq!(parse(&buf), Ok((Request::GetNumConnections, 4)));
        assert_eq!(check(&buf[4..]), Ok(4));
        assert_eq!(check(&buf[8..]), Err(DecodeError::Incomplete { needed: 4 }));
    }
}
