//! Full verification of a log: every frame's checksum and sequence number,
//! segment order, the Merkle root against every signed checkpoint (the
//! store's own and any the auditor kept), signatures, and consistency
//! between successive checkpoints.
//!
//! Verification never stops at the first problem it can step past; it says
//! what is wrong and where.

use std::fmt;
use std::path::Path;

use crate::AuditError;
use crate::merkle::{Hash, Tree, verify_consistency};
use crate::note::{Checkpoint, Verifier};
use crate::segment::{self, Tail};
use crate::store::checkpoints::{CheckpointLog, read_checkpoint_log};
use crate::store::{LATEST_CHECKPOINT_FILE, TornTail};

/// What to check against.
#[derive(Debug, Default)]
pub struct VerifyOptions {
    /// Checkpoint notes the auditor kept (e.g. from an earlier run); a log
    /// rolled back or rewritten since then is caught against them.
    pub kept_checkpoints: Vec<(String, String)>,
}

/// One thing wrong, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub location: String,
    pub what: String,
}

/// The outcome of a verification.
#[derive(Debug, Clone)]
pub struct VerifyReport {
    pub records: u64,
    pub segments: usize,
    pub root: Hash,
    /// Signed checkpoints checked (store's and kept).
    pub checkpoints: usize,
    /// Largest tree size covered by a valid checkpoint.
    pub signed_size: u64,
    pub torn_tail: Option<TornTail>,
    pub problems: Vec<Problem>,
}

// === impl VerifyReport ===

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }

    fn problem(&mut self, location: impl Into<String>, what: impl Into<String>) {
        self.problems.push(Problem {
            location: location.into(),
            what: what.into(),
        });
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.what)
    }
}

/// Verifies the log in `dir` against `key`.
pub fn verify(
    dir: &Path,
    key: &Verifier,
    options: &VerifyOptions,
) -> Result<VerifyReport, AuditError> {
    let mut report = VerifyReport {
        records: 0,
        segments: 0,
        root: Hash::default(),
        checkpoints: 0,
        signed_size: 0,
        torn_tail: None,
        problems: Vec::new(),
    };
    // Checkpoints before segments: a checkpoint is written only after the
    // records it signs are durable, so a log still being written (a running
    // gateway) never shows a checkpoint larger than the segments read.
    let CheckpointLog {
        notes,
        torn,
        skipped,
        ..
    } = read_checkpoint_log(dir)?;
    for (offset, bytes) in skipped {
        report.problem(
            format!("checkpoints.log offset {offset}"),
            format!("{bytes} bytes that are not a checkpoint, with checkpoints after them (a failed write, or damage)"),
        );
    }
    let latest_note = std::fs::read_to_string(dir.join(LATEST_CHECKPOINT_FILE));
    let tree = verify_segments(dir, &mut report)?;
    report.records = tree.size();
    report.root = tree.root();

    if torn > 0 {
        report.problem(
            "checkpoints.log",
            format!("{torn} bytes of an unfinished checkpoint at the end"),
        );
    }
    let mut store_checkpoints = Vec::new();
    for (offset, note) in &notes {
        let location = format!("checkpoints.log offset {offset}");
        if let Some(cp) = check_checkpoint(&tree, key, note, &location, &mut report) {
            store_checkpoints.push((location, cp));
        }
    }
    // Successive checkpoints must describe one growing log.
    for pair in store_checkpoints.windows(2) {
        if let [(_, old), (location, new)] = pair {
            check_consistent(&tree, old, new, location, &mut report);
        }
    }
    match latest_note {
        Ok(note) => {
            let latest = check_checkpoint(&tree, key, &note, LATEST_CHECKPOINT_FILE, &mut report);
            let logged = store_checkpoints.last().map(|(_, cp)| cp);
            if let (Some(latest), Some(logged)) = (latest, logged)
                && latest.size < logged.size
            {
                report.problem(
                    LATEST_CHECKPOINT_FILE,
                    format!(
                        "older ({}) than the last in checkpoints.log ({})",
                        latest.size, logged.size
                    ),
                );
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if tree.size() > 0 {
                report.problem(LATEST_CHECKPOINT_FILE, "missing: the log was never signed");
            }
        }
        Err(e) => return Err(AuditError::io("read latest checkpoint", e)),
    }
    for (name, note) in &options.kept_checkpoints {
        check_checkpoint(&tree, key, note, name, &mut report);
    }
    Ok(report)
}

/// Reads every segment into a tree, recording damage. The tree stops at the
/// first damage: nothing after it can be placed.
fn verify_segments(dir: &Path, report: &mut VerifyReport) -> Result<Tree, AuditError> {
    let mut tree = Tree::new();
    let segments = match segment::list(dir).map_err(|e| AuditError::io("list segments", e))? {
        Ok(segments) => segments,
        Err(damage) => {
            report.problem(damage.path.display().to_string(), damage.what);
            return Ok(tree);
        }
    };
    report.segments = segments.len();
    let count = segments.len();
    for (i, seg) in segments.iter().enumerate() {
        let location = seg.path.display().to_string();
        let expected = tree.size() + 1;
        if seg.first_seq != expected {
            report.problem(
                location,
                format!("starts at record {} but record {expected} comes next (segment missing, swapped or renamed)", seg.first_seq),
            );
            return Ok(tree);
        }
        let bytes = segment::read_file(&seg.path).map_err(|e| AuditError::io("read segment", e))?;
        let scan = match segment::scan(seg, &bytes) {
            Ok(scan) => scan,
            Err(damage) => {
                report.problem(format!("{location} offset {}", damage.offset), damage.what);
                return Ok(tree);
            }
        };
        let sealed = i + 1 < count;
        for frame in &scan.frames {
            tree.push(frame.leaf);
        }
        match scan.tail {
            Tail::Clean if sealed && scan.frames.is_empty() => {
                report.problem(location, "sealed segment holds no record");
                return Ok(tree);
            }
            Tail::Clean => {}
            Tail::Torn { offset, bytes } if sealed => {
                report.problem(
                    format!("{location} offset {offset}"),
                    format!("sealed segment ends in {bytes} bytes that are not a record"),
                );
                return Ok(tree);
            }
            Tail::Reserved { offset, bytes } if sealed => {
                report.problem(
                    format!("{location} offset {offset}"),
                    format!("sealed segment ends in {bytes} zero bytes"),
                );
                return Ok(tree);
            }
            // Space the writer reserved ahead of the active segment's records.
            Tail::Reserved { .. } => {}
            Tail::Torn { offset, bytes } => {
                report.torn_tail = Some(TornTail {
                    segment: seg.path.clone(),
                    offset,
                    bytes,
                });
            }
        }
    }
    Ok(tree)
}

fn check_checkpoint(
    tree: &Tree,
    key: &Verifier,
    note: &str,
    location: &str,
    report: &mut VerifyReport,
) -> Option<Checkpoint> {
    report.checkpoints += 1;
    let cp = match key.open(note) {
        Ok(cp) => cp,
        Err(e) => {
            report.problem(location, e.to_string());
            return None;
        }
    };
    if cp.origin != key.name() {
        report.problem(
            location,
            format!(
                "origin `{}` is not the key's log `{}`",
                cp.origin,
                key.name()
            ),
        );
        return None;
    }
    match tree.root_at(cp.size) {
        Some(root) if root == cp.root => {
            report.signed_size = report.signed_size.max(cp.size);
            Some(cp)
        }
        Some(_) => {
            report.problem(
                location,
                format!("records 1..={} do not hash to the signed root (a record was changed, removed, added or reordered)", cp.size),
            );
            None
        }
        None => {
            report.problem(
                location,
                format!("signed for {} records but the log holds {} (records removed or log rolled back)", cp.size, tree.size()),
            );
            None
        }
    }
}

fn check_consistent(
    tree: &Tree,
    old: &Checkpoint,
    new: &Checkpoint,
    location: &str,
    report: &mut VerifyReport,
) {
    if new.size < old.size {
        report.problem(
            location,
            format!("tree shrank from {} to {} records", old.size, new.size),
        );
        return;
    }
    let proved = tree
        .consistency_proof(old.size, new.size)
        .map(|proof| verify_consistency(old.size, new.size, &old.root, &new.root, &proof));
    if !matches!(proved, Some(Ok(()))) {
        report.problem(
            location,
            format!("not consistent with the checkpoint of size {}", old.size),
        );
    }
}
