//! Index key layout. Every key is `tag ‖ value ‖ seq (u64 BE)`, so one
//! prefix scan returns a field value's sequence numbers in order.
//!
//! ```text
//! p ‖ HMAC-SHA-256(key, "Patient/123") ‖ seq     patient (no raw identifier)
//! r ‖ len:u16 ‖ partner ‖ seq                     partner id
//! a ‖ len:u16 ‖ agreement ‖ seq                   agreement id
//! u ‖ len:u16 ‖ purpose ‖ seq                     purpose of use
//! d ‖ decision byte ‖ seq                         permit / deny / refuse
//! t ‖ unix seconds (i64, sign flipped, BE) ‖ seq  time
//! o ‖ seq → segment first seq ‖ offset            where the record is
//! m ‖ name → value                                index bookkeeping
//! ```

use crate::record::DecisionKind;

pub const PATIENT: u8 = b'p';
pub const PARTNER: u8 = b'r';
pub const AGREEMENT: u8 = b'a';
pub const PURPOSE: u8 = b'u';
pub const DECISION: u8 = b'd';
pub const TIME: u8 = b't';
pub const LOCATION: u8 = b'o';
pub const META: u8 = b'm';

/// The next sequence number to index.
pub const META_NEXT: &[u8] = b"mnext";

/// `tag ‖ len ‖ value` (a prefix of the full key).
pub fn text_prefix(tag: u8, value: &str) -> Vec<u8> {
    let bytes = value.as_bytes();
    let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
    let mut key = Vec::with_capacity(3 + bytes.len() + 8);
    key.push(tag);
    key.extend_from_slice(&len.to_be_bytes());
    key.extend(bytes.iter().take(usize::from(len)));
    key
}

pub fn bytes_prefix(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + value.len() + 8);
    key.push(tag);
    key.extend_from_slice(value);
    key
}

pub fn decision_byte(decision: DecisionKind) -> u8 {
    match decision {
        DecisionKind::Permit => b'p',
        DecisionKind::Deny => b'd',
        DecisionKind::Refuse => b'r',
    }
}

/// Seconds as bytes that sort like the numbers (negative before positive).
pub fn time_bytes(unix_seconds: i64) -> [u8; 8] {
    (unix_seconds.cast_unsigned() ^ (1 << 63)).to_be_bytes()
}

pub fn time_key(unix_seconds: i64, seq: u64) -> Vec<u8> {
    let mut key = vec![TIME];
    key.extend_from_slice(&time_bytes(unix_seconds));
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

pub fn with_seq(mut prefix: Vec<u8>, seq: u64) -> Vec<u8> {
    prefix.extend_from_slice(&seq.to_be_bytes());
    prefix
}

/// The sequence number a key ends with.
pub fn seq_of(key: &[u8]) -> Option<u64> {
    let start = key.len().checked_sub(8)?;
    let tail: [u8; 8] = key.get(start..)?.try_into().ok()?;
    Some(u64::from_be_bytes(tail))
}

pub fn location_key(seq: u64) -> Vec<u8> {
    with_seq(vec![LOCATION], seq)
}

pub fn location_value(segment: u64, offset: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(16);
    v.extend_from_slice(&segment.to_be_bytes());
    v.extend_from_slice(&offset.to_be_bytes());
    v
}

pub fn parse_location(value: &[u8]) -> Option<(u64, u64)> {
    let segment: [u8; 8] = value.get(..8)?.try_into().ok()?;
    let offset: [u8; 8] = value.get(8..16)?.try_into().ok()?;
    Some((u64::from_be_bytes(segment), u64::from_be_bytes(offset)))
}

/// The smallest key greater than every key starting with `prefix`, or
/// `None` when there is none (a prefix of 0xff bytes).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}
