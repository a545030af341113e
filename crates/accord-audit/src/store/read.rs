//! Reading the whole log without changing it, stepping past damage.
//!
//! Every readable record is returned; every unreadable stretch is named
//! (segment, record numbers, byte offset, what is wrong). The Merkle tree
//! runs as far as the records can be placed: up to the first unreadable
//! record, or further where an operator quarantined the damage (its
//! records then count as [`placeholder`] leaves, which the
//! checkpoints signed after the quarantine cover).

use std::fmt;
use std::path::{Path, PathBuf};

use crate::AuditError;
use crate::gap::{Note, placeholder};
use crate::merkle::{Tree, sha256};
use crate::record::AuditRecord;
use crate::segment::{self, Damaged, Frame, Tail};

/// An interrupted write found at the end of the active segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    pub segment: PathBuf,
    /// The record number the unfinished write would have had.
    pub seq: u64,
    pub offset: u64,
    pub bytes: u64,
}

/// Records the log holds but cannot read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DamagedRange {
    pub segment: PathBuf,
    pub first_seq: u64,
    /// `None`: to the end of the log (how many records is unknown).
    pub last_seq: Option<u64>,
    pub offset: u64,
    pub bytes: u64,
    pub what: String,
    /// Set aside by an operator, with a signed note in the log.
    pub quarantined: bool,
}

/// Everything in a log, read without changing it.
#[derive(Debug, Default)]
pub struct LogContents {
    /// Every readable record, in order.
    pub frames: Vec<Frame>,
    pub tree: Tree,
    pub torn: Option<TornTail>,
    /// Where the last segment's records end (zeros reserved by the writer
    /// and a torn tail follow); 0 when there is no segment.
    pub active_len: u64,
    /// Unreadable stretches, in log order.
    pub damaged: Vec<DamagedRange>,
    /// The highest record number the log accounts for (readable or not).
    pub last_seq: u64,
    /// Quarantine notes found in the log, with their record numbers.
    pub quarantines: Vec<(u64, Note)>,
}

// === impl DamagedRange ===

impl DamagedRange {
    /// Whether record `seq` is inside this range.
    pub fn covers(&self, seq: u64) -> bool {
        seq >= self.first_seq && self.last_seq.is_none_or(|last| seq <= last)
    }
}

impl fmt::Display for DamagedRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.segment.file_name().map_or_else(
            || self.segment.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        match self.last_seq {
            Some(last) if last < self.first_seq => write!(f, "bytes that are no record")?,
            Some(last) => write!(f, "records {}–{last} unreadable", self.first_seq)?,
            None => write!(f, "records {} to the end unreadable", self.first_seq)?,
        }
        write!(
            f,
            ": {} in segment {name}, byte offset {}",
            self.what, self.offset
        )?;
        if self.quarantined {
            write!(f, " (quarantined)")?;
        }
        Ok(())
    }
}

impl LogContents {
    /// Damage no operator has quarantined: the store will not open on it.
    pub fn unquarantined(&self) -> impl Iterator<Item = &DamagedRange> {
        self.damaged.iter().filter(|d| !d.quarantined)
    }

    /// The damaged range holding record `seq`, if any.
    pub fn damage_at(&self, seq: u64) -> Option<&DamagedRange> {
        self.damaged.iter().find(|d| d.covers(seq))
    }
}

/// Reads every segment. Only a file in `segments/` that is no segment is
/// an error; damage inside segments is listed in [`LogContents::damaged`].
pub fn read_log(dir: &Path) -> Result<LogContents, AuditError> {
    read_log_with(dir, Payloads::Keep)
}

/// [`read_log`] keeping each frame's number, place and leaf but not its
/// bytes: what opening the store needs. One segment at a time is in
/// memory, not the whole log (≈ 140 bytes a record stay: the frame's
/// place and leaf, and the Merkle tree).
pub(crate) fn read_log_leaves(dir: &Path) -> Result<LogContents, AuditError> {
    read_log_with(dir, Payloads::Drop)
}

/// Whether [`read_log_with`] keeps the records' bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Payloads {
    Keep,
    Drop,
}

fn read_log_with(dir: &Path, payloads: Payloads) -> Result<LogContents, AuditError> {
    let segments = segment::list(dir)
        .map_err(|e| AuditError::io("list segments", e))?
        .map_err(|d| AuditError::Corrupt(d.to_string()))?;
    let mut out = LogContents::default();
    let count = segments.len();
    for (i, seg) in segments.iter().enumerate() {
        let damage = |d: Damaged| DamagedRange {
            segment: seg.path.clone(),
            first_seq: d.first_seq,
            last_seq: d.count.map(|c| d.first_seq + c - 1),
            offset: d.offset,
            bytes: d.bytes,
            what: d.what,
            quarantined: false,
        };
        let expected = out.last_seq + 1;
        if seg.first_seq > expected {
            out.damaged.push(DamagedRange {
                segment: seg.path.clone(),
                first_seq: expected,
                last_seq: Some(seg.first_seq - 1),
                offset: 0,
                bytes: 0,
                what: "missing: no segment holds them".into(),
                quarantined: false,
            });
        }
        let bytes = segment::read_file(&seg.path).map_err(|e| AuditError::io("read segment", e))?;
        let scan = segment::scan(seg, &bytes);
        let last = i + 1 == count;
        if last {
            out.active_len = scan.good_len;
        }
        for d in scan.damaged {
            out.damaged.push(damage(d));
        }
        let mut top = out.last_seq.max(seg.first_seq - 1);
        for frame in scan.frames {
            if frame.seq <= out.last_seq {
                out.damaged.push(DamagedRange {
                    segment: seg.path.clone(),
                    first_seq: frame.seq,
                    last_seq: Some(frame.seq - 1),
                    offset: frame.offset,
                    bytes: frame.payload.len() as u64 + 8,
                    what: format!("record {} appears a second time", frame.seq),
                    quarantined: false,
                });
                continue;
            }
            if let Some(note) = note_in(&frame.payload) {
                out.quarantines.push((frame.seq, note));
            }
            top = frame.seq;
            let mut frame = frame;
            if payloads == Payloads::Drop {
                frame.payload = Vec::new();
            }
            out.frames.push(frame);
        }
        let next_first = segments.get(i + 1).map(|s| s.first_seq);
        let tail_bytes = match scan.tail {
            Tail::Torn { offset, bytes } if last => {
                out.torn = Some(TornTail {
                    segment: seg.path.clone(),
                    seq: top + 1,
                    offset,
                    bytes,
                });
                None
            }
            Tail::Torn { offset, bytes } => Some((offset, bytes, "a record cut short")),
            Tail::Reserved { offset, bytes } if !last => Some((
                offset,
                bytes,
                "zero bytes where a sealed segment should end",
            )),
            Tail::Reserved { .. } | Tail::Clean => None,
        };
        // A sealed segment whose end is unreadable reaches to the next
        // segment; otherwise a gap before the next is reported there.
        let mut open_ended = tail_bytes.is_some();
        if let Some((offset, bytes, what)) = tail_bytes {
            out.damaged.push(DamagedRange {
                segment: seg.path.clone(),
                first_seq: top + 1,
                last_seq: next_first.map(|n| n - 1),
                offset,
                bytes,
                what: what.into(),
                quarantined: false,
            });
        }
        // An open-ended range in a sealed segment ends where the next begins.
        for d in out.damaged.iter_mut().filter(|d| d.segment == seg.path) {
            if d.last_seq.is_none() {
                open_ended = true;
                d.last_seq = next_first.map(|n| n - 1);
            }
        }
        out.last_seq = match next_first {
            Some(n) if open_ended => top.max(n - 1),
            _ => top,
        };
    }
    mark_quarantined(&mut out)?;
    out.tree = build_tree(&out);
    Ok(out)
}

/// The quarantine note in a record's bytes, if it is one.
fn note_in(payload: &[u8]) -> Option<Note> {
    const FIELD: &[u8] = b"\"quarantine\":{";
    payload
        .windows(FIELD.len())
        .any(|w| w == FIELD)
        .then_some(())?;
    serde_json::from_slice::<AuditRecord>(payload)
        .ok()?
        .quarantine
}

/// Marks the damage in segments a quarantine note names (and whose bytes
/// are still those quarantined) as quarantined.
fn mark_quarantined(log: &mut LogContents) -> Result<(), AuditError> {
    for (_, note) in &log.quarantines {
        for seg in &note.segments {
            let path = log.damaged.iter().map(|d| d.segment.clone()).find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy() == seg.name)
            });
            let Some(path) = path else { continue };
            let bytes = segment::read_file(&path).map_err(|e| AuditError::io("read segment", e))?;
            if sha256(&bytes).to_hex() != seg.sha256 {
                continue;
            }
            for d in log.damaged.iter_mut().filter(|d| d.segment == path) {
                d.quarantined = true;
            }
        }
    }
    Ok(())
}

/// The tree over records 1, 2, … as far as each can be placed.
fn build_tree(log: &LogContents) -> Tree {
    let mut tree = Tree::new();
    for frame in &log.frames {
        while tree.size() + 1 < frame.seq {
            let seq = tree.size() + 1;
            if !log.damaged.iter().any(|d| d.quarantined && d.covers(seq)) {
                return tree;
            }
            tree.push(placeholder(seq));
        }
        tree.push(frame.leaf);
    }
    tree
}

/// Every readable record of the log in `dir`, in order. Damaged records
/// are left out; [`read_log`] names them.
pub fn read_records(dir: &Path) -> Result<Vec<AuditRecord>, AuditError> {
    read_log(dir)?
        .frames
        .iter()
        .map(|f| {
            serde_json::from_slice(&f.payload)
                .map_err(|e| AuditError::Corrupt(format!("record {}: {e}", f.seq)))
        })
        .collect()
}
