//! Every reader's check of the records it returns against the signed
//! checkpoints, so a query on a tampered log never answers silently.
//!
//! The index keeps each record's Merkle leaf hash as it was indexed. Two
//! checks cover the two ways a signed record can be changed:
//!
//! - changed *before* it was indexed (e.g. `reindex` after the edit): the
//!   indexed leaves no longer hash to a signed checkpoint's root. The
//!   check runs incrementally: the index keeps the tree's right edge at the
//!   last checkpoint it matched, and each reader extends it over the leaves
//!   since, up to the latest checkpoint. A mismatch names the records
//!   between the last matching checkpoint and the first that fails.
//! - changed *after* it was indexed: the record's bytes no longer hash to
//!   its indexed leaf; the query module's `checked` compares them for every
//!   record it returns.
//!
//! Readers still answer every record; these checks only add warnings.

use std::fmt;
use std::fs;
use std::io;

use crate::gap::placeholder;
use crate::index::{Index, IndexError, keys};
use crate::merkle::RightEdge;
use crate::note::{Checkpoint, Verifier};
use crate::store::checkpoints::read_checkpoint_log;
use crate::store::{LATEST_CHECKPOINT_FILE, PUBLIC_KEY_FILE};

/// What the indexed records were checked against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Integrity {
    /// Records the latest signed checkpoint covers (0: none yet).
    pub latest: u64,
    /// Records 1 to `checked` match a signed checkpoint.
    pub checked: u64,
    /// What does not match, in plain words.
    pub problems: Vec<Mismatch>,
}

/// Records that do not match the signed tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub first_seq: u64,
    /// Inclusive; `first_seq - 1` when the problem names no record.
    pub last_seq: u64,
    /// The signed checkpoint (its size) they were checked against.
    pub checkpoint: u64,
    pub what: String,
}

// === impl Integrity ===

impl Integrity {
    /// The mismatch covering record `seq`, if any.
    pub fn mismatch_at(&self, seq: u64) -> Option<&Mismatch> {
        self.problems
            .iter()
            .find(|m| seq >= m.first_seq && seq <= m.last_seq)
    }

    /// Whether record `seq` could not be checked: after a mismatch, every
    /// later checkpoint covers the mismatch too.
    pub fn unchecked(&self, seq: u64) -> bool {
        self.problems.iter().any(|m| m.last_seq >= m.first_seq) && seq > self.checked
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.last_seq < self.first_seq {
            return f.write_str(&self.what);
        }
        if self.first_seq == self.last_seq {
            write!(f, "record {}", self.first_seq)?;
        } else {
            write!(f, "records {}–{}", self.first_seq, self.last_seq)?;
        }
        write!(
            f,
            " do not match the signed checkpoint of {} records: {}",
            self.checkpoint, self.what
        )
    }
}

/// Checks the index's leaves against the signed checkpoints of its log
/// (see the module docs), remembering how far they matched.
pub fn check(index: &Index) -> Result<Integrity, IndexError> {
    let dir = index.dir();
    let mut out = Integrity::default();
    let Some(checkpoints) = signed_checkpoints(dir, &mut out)? else {
        return Ok(out);
    };
    out.latest = checkpoints.iter().map(|cp| cp.size).max().unwrap_or(0);
    let indexed = index.next_seq()?.saturating_sub(1);
    let mut edge = index
        .backend_get(keys::META_CHECKED)?
        .and_then(|bytes| RightEdge::decode(&bytes))
        .filter(|edge| edge.size() <= indexed)
        .unwrap_or_default();
    let start = edge.size();
    for cp in &checkpoints {
        if cp.size <= edge.size() {
            continue;
        }
        if cp.size > indexed {
            out.problems.push(Mismatch {
                first_seq: indexed + 1,
                last_seq: cp.size,
                checkpoint: cp.size,
                what: format!(
                    "the log holds only {indexed} readable records (records removed or the log rolled back)"
                ),
            });
            break;
        }
        let mut next = edge.clone();
        let mut unreadable = false;
        for (seq, leaf) in index.leaves(next.size() + 1, cp.size)? {
            unreadable |= leaf.is_none();
            next.push(leaf.unwrap_or_else(|| placeholder(seq)));
        }
        if next.root() == cp.root {
            edge = next;
            continue;
        }
        out.problems.push(Mismatch {
            first_seq: edge.size() + 1,
            last_seq: cp.size,
            checkpoint: cp.size,
            what: if unreadable {
                "some of them are unreadable, so the rest cannot be checked (see the damage named above)".into()
            } else {
                "one of them was changed, removed, added or reordered after it was signed".into()
            },
        });
        break;
    }
    out.checked = edge.size();
    if edge.size() > start {
        index.backend_put(keys::META_CHECKED, edge.encode())?;
    }
    Ok(out)
}

/// The correctly signed checkpoints of the log, by size; `None` (with a
/// problem noted when there should be some) if they cannot be read.
fn signed_checkpoints(
    dir: &std::path::Path,
    out: &mut Integrity,
) -> Result<Option<Vec<Checkpoint>>, IndexError> {
    let latest = match fs::read_to_string(dir.join(LATEST_CHECKPOINT_FILE)) {
        Ok(note) => note,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(IndexError::Io {
                action: "read the latest checkpoint",
                source,
            });
        }
    };
    let note_only = |what: String| Mismatch {
        first_seq: 1,
        last_seq: 0,
        checkpoint: 0,
        what,
    };
    let Some(verifier) = fs::read_to_string(dir.join(PUBLIC_KEY_FILE))
        .ok()
        .and_then(|text| Verifier::parse(&text).ok())
    else {
        out.problems.push(note_only(format!(
            "the records were not checked: {PUBLIC_KEY_FILE} is missing or unreadable, so no checkpoint can be verified"
        )));
        return Ok(None);
    };
    let log = read_checkpoint_log(dir).map_err(|e| IndexError::Log(e.to_string()))?;
    let mut checkpoints: Vec<Checkpoint> = log
        .notes
        .iter()
        .filter_map(|(_, note)| verifier.open(note).ok())
        .collect();
    match verifier.open(&latest) {
        Ok(cp) => checkpoints.push(cp),
        Err(e) => out.problems.push(note_only(format!(
            "the latest checkpoint does not verify with {PUBLIC_KEY_FILE} ({e}); the records were checked against the older ones only"
        ))),
    }
    checkpoints.sort_by_key(|cp| cp.size);
    checkpoints.dedup();
    Ok(Some(checkpoints))
}
