//! Index key layout (format 2). Postings are grouped per indexed batch:
//! one key per field value and batch, `tag ‖ value ‖ first seq of the
//! batch (u64 BE)`, whose value is that batch's ascending sequence numbers
//! with that value, packed as delta varints (see [`pack_seqs`]). One prefix
//! scan still returns a field value's sequence numbers in order, but a
//! low-cardinality field (decision, purpose, partner, agreement, time
//! second) costs a few keys per batch instead of one per record.
//!
//! ```text
//! p ‖ HMAC-SHA-256(key, "Patient/123") ‖ batch    patient (no raw identifier)
//! r ‖ len:u16 ‖ partner ‖ batch                    partner id
//! a ‖ len:u16 ‖ agreement ‖ batch                  agreement id
//! u ‖ len:u16 ‖ purpose ‖ batch                    purpose of use
//! d ‖ decision byte ‖ batch                        permit / deny / refuse
//! t ‖ unix seconds (i64, sign flipped, BE) ‖ batch time
//!                                  → delta-varint seqs (first delta from `batch`)
//! o ‖ batch → (segment, offset) of records batch, batch+1, …  (zigzag-delta
//!             varints; record `seq` is under the greatest `o` key ≤ seq)
//! h ‖ batch → the Merkle leaf hashes (32 bytes each) of records batch,
//!             batch+1, … as indexed (the signed tree's leaves, checked
//!             against checkpoints by `integrity`)
//! m ‖ name → value                                 index bookkeeping
//! ```
//!
//! `batch` is the first sequence number of the batch being indexed, so keys
//! of different batches never collide and sort in log order.

use crate::record::DecisionKind;

pub const PATIENT: u8 = b'p';
pub const PARTNER: u8 = b'r';
pub const AGREEMENT: u8 = b'a';
pub const PURPOSE: u8 = b'u';
pub const DECISION: u8 = b'd';
pub const TIME: u8 = b't';
pub const LOCATION: u8 = b'o';
pub const META: u8 = b'm';
pub const LEAF: u8 = b'h';
/// `x ‖ len:u16 ‖ segment name ‖ offset (u64 BE)` → what is unreadable there.
pub const DAMAGE: u8 = b'x';

/// The next sequence number to index.
pub const META_NEXT: &[u8] = b"mnext";
/// How far the indexed leaves were checked against a signed checkpoint:
/// the tree's right edge at that size (see `merkle::RightEdge::encode`).
pub const META_CHECKED: &[u8] = b"mchecked";
/// The key layout version the index was written with.
pub const META_FORMAT: &[u8] = b"mformat";
/// The layout this code writes (1: one key per record and field, before
/// grouping; it carried no `mformat` key; 2: without leaf hashes). Any
/// other is rebuilt from the log.
pub const FORMAT: u64 = 3;

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

/// The value of a [`text_prefix`] key (`tag ‖ len ‖ value ‖ seq`).
pub fn text_of(key: &[u8]) -> Option<String> {
    let len = usize::from(u16::from_be_bytes([*key.get(1)?, *key.get(2)?]));
    let value = key.get(3..3 + len)?;
    String::from_utf8(value.to_vec()).ok()
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

pub fn leaf_key(seq: u64) -> Vec<u8> {
    with_seq(vec![LEAF], seq)
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    loop {
        let [low, ..] = n.to_le_bytes();
        if n < 0x80 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
        n >>= 7;
    }
}

/// Reads a varint at the front of `bytes`, advancing it.
fn take_varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut n = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = bytes.split_first()?;
        *bytes = rest;
        n |= u64::from(b & 0x7f).checked_shl(shift)?;
        if b & 0x80 == 0 {
            return Some(n);
        }
    }
    None
}

fn zigzag(n: u64) -> u64 {
    let n = n.cast_signed();
    ((n << 1) ^ (n >> 63)).cast_unsigned()
}

fn unzigzag(n: u64) -> u64 {
    (n >> 1) ^ (n & 1).wrapping_neg()
}

/// Ascending `seqs` (all ≥ `base`) as delta varints from `base`.
pub fn pack_seqs(base: u64, seqs: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(seqs.len() + 8);
    let mut prev = base;
    for &seq in seqs {
        put_varint(&mut out, seq.saturating_sub(prev));
        prev = seq;
    }
    out
}

/// The sequence numbers [`pack_seqs`] packed; `None` if the value is corrupt.
pub fn unpack_seqs(base: u64, mut value: &[u8], out: &mut Vec<u64>) -> Option<()> {
    let mut prev = base;
    while !value.is_empty() {
        prev = prev.checked_add(take_varint(&mut value)?)?;
        out.push(prev);
    }
    Some(())
}

/// `(segment, offset)` of consecutive records as zigzag-delta varints (the
/// segment repeats or grows, the offset grows or restarts: both small).
pub fn pack_locations(locations: &[(u64, u64)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(locations.len() * 3);
    let (mut segment, mut offset) = (0u64, 0u64);
    for &(s, o) in locations {
        put_varint(&mut out, zigzag(s.wrapping_sub(segment)));
        put_varint(&mut out, zigzag(o.wrapping_sub(offset)));
        (segment, offset) = (s, o);
    }
    out
}

/// The `n`th (from 0) location [`pack_locations`] packed.
pub fn nth_location(mut value: &[u8], n: u64) -> Option<(u64, u64)> {
    let (mut segment, mut offset) = (0u64, 0u64);
    for _ in 0..=n {
        segment = segment.wrapping_add(unzigzag(take_varint(&mut value)?));
        offset = offset.wrapping_add(unzigzag(take_varint(&mut value)?));
    }
    Some((segment, offset))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_seqs_round_trip() {
        let seqs = [7, 8, 9, 200, 70_000, 70_001, u64::MAX / 3];
        let packed = pack_seqs(7, &seqs);
        let mut out = Vec::new();
        unpack_seqs(7, &packed, &mut out).unwrap();
        assert_eq!(out, seqs);
        // One byte per close neighbour.
        assert_eq!(pack_seqs(100, &[100, 101, 102, 110]).len(), 4);
        assert!(unpack_seqs(1, &[0x80], &mut out).is_none());
    }

    #[test]
    fn packed_locations_find_each_record() {
        let locations = [(1, 8), (1, 700), (1, 64 << 20), (5000, 8), (5000, 1 << 40)];
        let packed = pack_locations(&locations);
        for (n, want) in locations.iter().enumerate() {
            assert_eq!(nth_location(&packed, n as u64), Some(*want));
        }
        assert_eq!(nth_location(&packed, locations.len() as u64), None);
    }
}
