//! Reading one segment, stepping past damage.
//!
//! A frame that fails (bad length, checksum, not a record, wrong number)
//! is damage; the reader looks for the next valid frame — every record's
//! payload starts `{"schema":`, and its own `seq` says where reading
//! resumed — so one damaged record hides only itself. Only the shape of an
//! interrupted append (a short or garbled final frame with nothing valid
//! after it) is reported as a torn tail; whether it may be cut is decided
//! by recovery, against the signed checkpoints.

use crate::merkle::leaf_hash;
use crate::segment::{
    Damaged, Frame, HEADER_LEN, MAX_RECORD, Scan, SegmentFile, Tail, header, record_seq, word,
};

/// Why the bytes at an offset are not a frame.
enum Bad {
    /// Fewer than 8 bytes left: a frame header cut short.
    Short,
    Length(u32),
    /// The frame runs past the last written byte.
    PastEnd(u32),
    /// The checksum fails; `end` is where the frame would end.
    Checksum(usize),
    NotRecord,
}

/// Parses a whole segment. `first_seq` comes from the file name; the header
/// and every record's own `seq` must agree with it.
pub fn scan(seg: &SegmentFile, bytes: &[u8]) -> Scan {
    let file_len = bytes.len();
    let mut out = Scan {
        frames: Vec::new(),
        good_len: 0,
        tail: Tail::Clean,
        damaged: Vec::new(),
    };
    // The writer fills the active segment's tail with zeros ahead of its
    // writes, so a segment's records end at its last non-zero byte (a
    // record's JSON ends in `}`).
    let data_end = bytes.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    if bytes.is_empty() {
        // Created but the first write never landed.
        return out;
    }
    let Some(head) = bytes.get(..16).filter(|_| data_end > 0) else {
        // Space reserved, but not even the header landed.
        out.tail = Tail::Torn {
            offset: 0,
            bytes: file_len as u64,
        };
        return out;
    };
    if head != header(seg.first_seq) {
        out.damaged.push(Damaged {
            first_seq: seg.first_seq,
            count: None,
            offset: 0,
            bytes: data_end as u64,
            what: format!(
                "the segment header does not say first record {}",
                seg.first_seq
            ),
        });
        return out;
    }
    // Past the header (whose sequence number may end in zero bytes).
    let total = data_end.max(16);
    let data = bytes.get(..total).unwrap_or_default();
    let mut pos = 16usize;
    out.good_len = HEADER_LEN;
    let mut expected = seg.first_seq;
    while pos < total {
        let bad = match frame_at(data, pos) {
            Ok((payload, end)) => {
                let found = record_seq(payload).unwrap_or(0);
                if found < expected {
                    out.damaged.push(Damaged {
                        first_seq: expected,
                        count: Some(0),
                        offset: pos as u64,
                        bytes: (end - pos) as u64,
                        what: format!("record {found} appears where record {expected} belongs"),
                    });
                    pos = end;
                    continue;
                }
                if found > expected {
                    out.damaged.push(Damaged {
                        first_seq: expected,
                        count: Some(found - expected),
                        offset: pos as u64,
                        bytes: 0,
                        what: format!("missing: the next record here is {found}"),
                    });
                }
                out.frames.push(Frame {
                    seq: found,
                    offset: pos as u64,
                    payload: payload.to_vec(),
                    leaf: leaf_hash(payload),
                });
                out.good_len = end as u64;
                expected = found + 1;
                pos = end;
                continue;
            }
            Err(bad) => bad,
        };
        if let Some((next, found)) = resync(data, pos + 1, expected) {
            out.damaged.push(Damaged {
                first_seq: expected,
                count: Some(found - expected),
                offset: pos as u64,
                bytes: (next - pos) as u64,
                what: describe(&bad),
            });
            expected = found;
            pos = next;
            continue;
        }
        let torn = match bad {
            Bad::Short | Bad::PastEnd(_) => true,
            Bad::Checksum(end) => end == total,
            Bad::Length(_) | Bad::NotRecord => false,
        };
        if torn {
            out.tail = Tail::Torn {
                offset: pos as u64,
                bytes: (file_len - pos) as u64,
            };
            return out;
        }
        out.damaged.push(Damaged {
            first_seq: expected,
            count: None,
            offset: pos as u64,
            bytes: (total - pos) as u64,
            what: format!("{}; no readable record follows", describe(&bad)),
        });
        break;
    }
    if file_len > total {
        out.tail = Tail::Reserved {
            offset: total as u64,
            bytes: (file_len - total) as u64,
        };
    }
    out
}

fn describe(bad: &Bad) -> String {
    match bad {
        Bad::Short => "a record header cut short".into(),
        Bad::Length(len) => format!("impossible record length {len}"),
        Bad::PastEnd(len) => format!("a record of {len} bytes runs past the end of the data"),
        Bad::Checksum(_) => "checksum mismatch".into(),
        Bad::NotRecord => "the record is not a JSON audit record".into(),
    }
}

/// The payload of the valid frame at `pos` and where the frame ends.
fn frame_at(data: &[u8], pos: usize) -> Result<(&[u8], usize), Bad> {
    let rest = data.get(pos..).unwrap_or_default();
    let (Some(len), Some(crc)) = (word(rest, 0), word(rest, 4)) else {
        return Err(Bad::Short);
    };
    if len > MAX_RECORD || len == 0 {
        return Err(Bad::Length(len));
    }
    let end = pos + 8 + len as usize;
    let payload = data.get(pos + 8..end).ok_or(Bad::PastEnd(len))?;
    if crc32fast::hash(payload) != crc {
        return Err(Bad::Checksum(end));
    }
    if record_seq(payload).is_none() {
        return Err(Bad::NotRecord);
    }
    Ok((payload, end))
}

/// The first valid frame at or after `from` holding a record numbered
/// `expected` or later: (offset, its number).
fn resync(data: &[u8], from: usize, expected: u64) -> Option<(usize, u64)> {
    const START: &[u8] = b"{\"schema\":";
    let mut at = from + 8;
    while let Some(found) = data
        .get(at..)?
        .windows(START.len())
        .position(|w| w == START)
    {
        let payload_at = at + found;
        at = payload_at + 1;
        let pos = payload_at - 8;
        if let Ok((payload, _)) = frame_at(data, pos)
            && let Some(seq) = record_seq(payload).filter(|s| *s >= expected)
        {
            return Some((pos, seq));
        }
    }
    None
}
