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
use crate::segment;
use crate::store::checkpoints::{CheckpointLog, read_checkpoint_log};
use crate::store::{DamagedRange, LATEST_CHECKPOINT_FILE, LogContents, TornTail, read_log};

mod witnessed;

/// What to check against.
#[derive(Debug, Default)]
pub struct VerifyOptions {
    /// Checkpoint notes the auditor kept (e.g. from an earlier run); a log
    /// rolled back or rewritten since then is caught against them.
    pub kept_checkpoints: Vec<(String, String)>,
    /// Witnesses whose cosignatures count.
    pub witness_keys: Vec<crate::CosignatureKey>,
    /// Valid cosignatures (by distinct `witness_keys`) the latest
    /// witnessed checkpoint must carry; 0 checks none.
    pub witnesses_required: usize,
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
    /// Records that could be read.
    pub readable: u64,
    /// Every unreadable stretch, quarantined or not.
    pub damaged: Vec<DamagedRange>,
    /// Signed checkpoints that cover unreadable records, so cannot be
    /// checked (reported once, with the damage).
    pub unchecked: usize,
    /// The latest witnessed checkpoint, when witnesses were asked for.
    pub witnessed: Option<witnessed::Witnessed>,
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
        readable: 0,
        damaged: Vec::new(),
        unchecked: 0,
        witnessed: None,
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
    let log = verify_segments(dir, &mut report)?;
    let tree = Placed {
        tree: &log.tree,
        log: &log,
    };
    report.records = log.last_seq;
    report.root = log.tree.root();

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
            if log.last_seq > 0 {
                report.problem(LATEST_CHECKPOINT_FILE, "missing: the log was never signed");
            }
        }
        Err(e) => return Err(AuditError::io("read latest checkpoint", e)),
    }
    for (name, note) in &options.kept_checkpoints {
        check_checkpoint(&tree, key, note, name, &mut report);
    }
    witnessed::check(dir, &tree, key, options, &mut report)?;
    if let Some(torn) = report.torn_tail.clone()
        && torn.seq <= report.signed_size.max(signed_claim(&notes, key))
    {
        report.problem(
            format!("{} offset {}", torn.segment.display(), torn.offset),
            format!(
                "record {} is cut short or garbled, but a signed checkpoint covers it: damage, not an interrupted write",
                torn.seq
            ),
        );
    }
    if report.unchecked > 0 && report.damaged.iter().any(|d| !d.quarantined) {
        report.problem(
            "checkpoints",
            format!(
                "{} signed checkpoints cover unreadable records and cannot be checked",
                report.unchecked
            ),
        );
    }
    Ok(report)
}

/// Reads the log, listing every unreadable stretch; the tree runs as far as
/// records can be placed.
fn verify_segments(dir: &Path, report: &mut VerifyReport) -> Result<LogContents, AuditError> {
    let log = match read_log(dir) {
        Ok(log) => log,
        Err(AuditError::Corrupt(what)) => {
            report.problem("segments", what);
            return Ok(LogContents::default());
        }
        Err(e) => return Err(e),
    };
    report.segments = segment::list(dir)
        .map_err(|e| AuditError::io("list segments", e))?
        .map_or(0, |s| s.len());
    for d in log.unquarantined() {
        report.problem(
            format!("{} offset {}", d.segment.display(), d.offset),
            d.to_string(),
        );
    }
    report.damaged = log.damaged.clone();
    report.readable = log.frames.len() as u64;
    report.torn_tail = log.torn.clone();
    Ok(log)
}

/// The largest size any correctly signed note claims.
fn signed_claim(notes: &[(u64, String)], key: &Verifier) -> u64 {
    notes
        .iter()
        .filter_map(|(_, n)| key.open(n).ok())
        .map(|cp| cp.size)
        .max()
        .unwrap_or(0)
}

/// The tree and the log it was read from (to tell damage from tampering).
struct Placed<'a> {
    tree: &'a Tree,
    log: &'a LogContents,
}

impl Placed<'_> {
    /// Whether a checkpoint of `size` cannot be checked because records it
    /// covers are unreadable (and that damage is reported on its own).
    fn unplaceable(&self, size: u64) -> bool {
        self.tree.size() < size && size <= self.log.last_seq
            || self.log.quarantines.iter().any(|(seq, _)| *seq > size)
                && self
                    .log
                    .damaged
                    .iter()
                    .any(|d| d.quarantined && d.first_seq <= size)
    }
}

fn check_checkpoint(
    placed: &Placed<'_>,
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
    let tree = placed.tree;
    match tree.root_at(cp.size) {
        Some(root) if root == cp.root => {
            report.signed_size = report.signed_size.max(cp.size);
            Some(cp)
        }
        _ if placed.unplaceable(cp.size) => {
            report.unchecked += 1;
            None
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
    placed: &Placed<'_>,
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
    let proved = placed
        .tree
        .consistency_proof(old.size, new.size)
        .map(|proof| verify_consistency(old.size, new.size, &old.root, &new.root, &proof));
    if !matches!(proved, Some(Ok(()))) {
        report.problem(
            location,
            format!("not consistent with the checkpoint of size {}", old.size),
        );
    }
}
