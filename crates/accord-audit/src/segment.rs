//! Segment files: the authoritative log.
//!
//! ```text
//! segment = header frame*
//! header  = "ACCSEG01" first_seq:u64le                      (16 bytes)
//! frame   = len:u32le crc32(payload):u32le payload[len]     (payload = record JSON)
//! ```
//!
//! Segments live in `segments/` and are named after their first sequence
//! number (`seg-00000000000000000001.log`); every one but the last is sealed
//! and never written again.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::merkle::Hash;

mod scan;

pub use scan::scan;

pub const SEGMENTS_DIR: &str = "segments";
pub const MAGIC: &[u8; 8] = b"ACCSEG01";
pub const HEADER_LEN: u64 = 16;
pub const FRAME_OVERHEAD: u64 = 8;
/// Largest record accepted; a length above it is damage, not a record.
pub const MAX_RECORD: u32 = 1 << 24;

/// One segment file on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentFile {
    pub first_seq: u64,
    pub path: PathBuf,
}

/// One record read back from a segment.
#[derive(Debug, Clone)]
pub struct Frame {
    pub seq: u64,
    /// Byte offset of the frame in its segment.
    pub offset: u64,
    pub payload: Vec<u8>,
    pub leaf: Hash,
}

/// How a segment ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tail {
    /// Every byte belongs to a complete, valid frame.
    Clean,
    /// The bytes from `offset` on look like an interrupted write: a frame
    /// that runs past the end of the file, or a final frame whose checksum
    /// fails, or zeros to the end.
    Torn { offset: u64, bytes: u64 },
    /// Every record is complete and the bytes from `offset` on are zeros
    /// the writer reserved ahead of its writes (see `store::writer`): the
    /// active segment's normal state, damage in a sealed one.
    Reserved { offset: u64, bytes: u64 },
}

/// Damage that is not a torn tail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: offset {offset}: {what}", path.display())]
pub struct Damage {
    pub path: PathBuf,
    pub offset: u64,
    pub what: String,
}

/// Records a segment holds but that cannot be read back: evidence, never
/// cut. Readers step past them and name them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damaged {
    /// The first record number the damage hides.
    pub first_seq: u64,
    /// How many records it hides (0: bytes that are no record, such as a
    /// record repeated out of place); `None`: every record from
    /// `first_seq` to the end of the segment, whose count the segment
    /// cannot tell.
    pub count: Option<u64>,
    /// Byte offset where the damage starts, and how many bytes it spans.
    pub offset: u64,
    pub bytes: u64,
    /// What is wrong, in words.
    pub what: String,
}

/// What a full read of one segment found.
#[derive(Debug, Clone)]
pub struct Scan {
    /// Every readable record, in order.
    pub frames: Vec<Frame>,
    /// Where the last readable record ends (or the header).
    pub good_len: u64,
    pub tail: Tail,
    /// Unreadable stretches, in order.
    pub damaged: Vec<Damaged>,
}

pub fn segment_name(first_seq: u64) -> String {
    format!("seg-{first_seq:020}.log")
}

pub fn header(first_seq: u64) -> [u8; 16] {
    let mut h = [0u8; 16];
    let (magic, seq) = h.split_at_mut(8);
    magic.copy_from_slice(MAGIC);
    seq.copy_from_slice(&first_seq.to_le_bytes());
    h
}

/// Appends the frame for `payload` to `out`.
pub fn encode_frame(payload: &[u8], out: &mut Vec<u8>) {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// Lists `dir/segments/*`, sorted by first sequence number. A file whose
/// name is not a segment name is damage (something was put there).
pub fn list(dir: &Path) -> io::Result<Result<Vec<SegmentFile>, Damage>> {
    let seg_dir = dir.join(SEGMENTS_DIR);
    let entries = match fs::read_dir(&seg_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Ok(Vec::new())),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let first_seq = name
            .strip_prefix("seg-")
            .and_then(|n| n.strip_suffix(".log"))
            .filter(|n| n.len() == 20)
            .and_then(|n| n.parse::<u64>().ok());
        match first_seq {
            Some(first_seq) if segment_name(first_seq) == name => out.push(SegmentFile {
                first_seq,
                path: entry.path(),
            }),
            _ if name.ends_with(".tmp") => {}
            _ => {
                return Ok(Err(Damage {
                    path: entry.path(),
                    offset: 0,
                    what: "not a segment file".into(),
                }));
            }
        }
    }
    out.sort_by_key(|s| s.first_seq);
    Ok(Ok(out))
}

/// Reads no more than the file's length (a device may never end).
pub fn read_file(path: &Path) -> io::Result<Vec<u8>> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    Read::by_ref(&mut file).take(len).read_to_end(&mut bytes)?;
    Ok(bytes)
}

pub(crate) fn word(bytes: &[u8], at: usize) -> Option<u32> {
    let b: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_le_bytes(b))
}

/// The `seq` field of a record, read without building the whole record.
pub(crate) fn record_seq(payload: &[u8]) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct SeqOnly {
        seq: u64,
    }
    if let Some(seq) = leading_seq(payload) {
        return Some(seq);
    }
    serde_json::from_slice::<SeqOnly>(payload)
        .ok()
        .map(|s| s.seq)
}

/// The `seq` of a record as the store writes it (`{"schema":N,"seq":N,`…),
/// read from its first bytes: parsing the whole record only to find the
/// number dominated `verify`. Anything else returns `None` and is parsed.
/// The record's bytes stay covered by its checksum and the Merkle tree.
pub(crate) fn leading_seq(payload: &[u8]) -> Option<u64> {
    let rest = payload.strip_prefix(b"{\"schema\":")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let rest = rest.get(digits..)?.strip_prefix(b",\"seq\":")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    // JSON numbers have no leading zeros; a u64 has at most 20 digits.
    let leading_zero = digits > 1 && rest.first() == Some(&b'0');
    if digits == 0 || digits > 20 || leading_zero || rest.get(digits) != Some(&b',') {
        return None;
    }
    std::str::from_utf8(rest.get(..digits)?).ok()?.parse().ok()
}
