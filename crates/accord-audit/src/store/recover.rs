//! Opening the log for writing: what may be cut and what is evidence.
//!
//! Recovery cuts only a torn tail: the unfinished final frame of the last
//! segment, with nothing valid after it, holding a record number no signed
//! checkpoint covers (so it was never acknowledged and never signed). Any
//! other damage — a bad record inside the log, a record a checkpoint
//! signs, more than the last frame — is evidence: nothing is cut, moved or
//! rewritten, and the store refuses to open, naming the segment, record
//! number and byte offset. `accord audit quarantine` is the way on.

use std::fs::{self, OpenOptions};
use std::path::Path;

use crate::AuditError;
use crate::merkle::Tree;
use crate::note::Verifier;
use crate::segment::{self, SEGMENTS_DIR, SegmentFile, segment_name};
use crate::store::read::{LogContents, TornTail, read_log_leaves};
use crate::store::{LATEST_CHECKPOINT_FILE, sync_dir};

/// What the writer starts from.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub tree: Tree,
    pub active: SegmentFile,
    pub active_len: u64,
    pub segments: usize,
    pub torn: Option<TornTail>,
    pub checkpoint_size: u64,
    /// Where the next entry of `checkpoints.log` goes.
    pub checkpoints_len: u64,
}

fn corrupt(what: impl Into<String>) -> AuditError {
    AuditError::Corrupt(what.into())
}

const WAY_ON: &str = "nothing was cut or changed; run `accord audit verify` to see the damage and `accord audit quarantine` to set it aside and go on";

/// The largest tree size a checkpoint signed by `verifier` covers (the
/// latest checkpoint or any in `checkpoints.log`).
pub fn signed_size(dir: &Path, verifier: &Verifier) -> Result<u64, AuditError> {
    let log = crate::store::checkpoints::read_checkpoint_log(dir)?;
    let latest = match fs::read_to_string(dir.join(LATEST_CHECKPOINT_FILE)) {
        Ok(note) => Some(note),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(AuditError::io("read latest checkpoint", e)),
    };
    Ok(log
        .notes
        .iter()
        .map(|(_, note)| note.as_str())
        .chain(latest.as_deref())
        .filter_map(|note| verifier.open(note).ok())
        .map(|cp| cp.size)
        .max()
        .unwrap_or(0))
}

/// Opens for writing: refuses evidence, cuts a torn tail, checks the latest
/// checkpoint.
pub(crate) fn recover(dir: &Path, verifier: &Verifier) -> Result<Recovered, AuditError> {
    // Leaves only: the records' bytes are not kept while the log is read.
    let log = read_log_leaves(dir)?;
    if let Some(damage) = log.unquarantined().next() {
        return Err(corrupt(format!(
            "the audit log is damaged: {} ({} more damaged ranges); {WAY_ON}",
            describe(damage),
            log.unquarantined().count() - 1
        )));
    }
    let signed = signed_size(dir, verifier)?;
    if let Some(torn) = log.torn.as_ref().filter(|t| t.seq <= signed) {
        return Err(corrupt(format!(
            "the audit log is damaged: segment {}, record {}, byte offset {}: the last record is cut short or garbled, but a signed checkpoint covers it, so it is not an interrupted write; {WAY_ON}",
            torn.segment.display(),
            torn.seq,
            torn.offset
        )));
    }
    let segments = segment::list(dir)
        .map_err(|e| AuditError::io("list segments", e))?
        .map_err(|d| corrupt(d.to_string()))?;
    let active = match segments.last() {
        Some(last) => last.clone(),
        None => {
            let first = SegmentFile {
                first_seq: 1,
                path: dir.join(SEGMENTS_DIR).join(segment_name(1)),
            };
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&first.path)
                .map_err(|e| AuditError::io("create segment", e))?;
            sync_dir(&dir.join(SEGMENTS_DIR));
            first
        }
    };
    // Records end here; the writer keeps any zeros reserved after them.
    let mut active_len = log.active_len;
    if let Some(torn) = &log.torn {
        let file = OpenOptions::new()
            .write(true)
            .open(&torn.segment)
            .map_err(|e| AuditError::io("open torn segment", e))?;
        file.set_len(torn.offset)
            .and_then(|()| file.sync_all())
            .map_err(|e| AuditError::io("cut torn tail", e))?;
        tracing::warn!(
            segment = %torn.segment.display(),
            record = torn.seq,
            offset = torn.offset,
            bytes = torn.bytes,
            "cut an interrupted, unsigned write from the end of the audit log"
        );
        active_len = torn.offset;
    }
    let checkpoints = crate::store::checkpoints::recover(dir)?;
    let checkpoint_size = check_latest(dir, verifier, &log)?;
    Ok(Recovered {
        tree: log.tree,
        active,
        active_len,
        segments: segments.len().max(1),
        torn: log.torn,
        checkpoint_size,
        checkpoints_len: checkpoints.good_len,
    })
}

/// A damaged range in plain words, segment first.
fn describe(d: &crate::store::read::DamagedRange) -> String {
    format!(
        "segment {}, record {}, byte offset {}: {}",
        d.segment.display(),
        d.first_seq,
        d.offset,
        d
    )
}

/// The latest checkpoint must be signed by our key and describe a prefix of
/// the log we just read: otherwise records were lost or changed. One signed
/// before a quarantine over records it covers cannot be checked (their
/// bytes are gone); the quarantine's own checkpoint follows it.
fn check_latest(dir: &Path, verifier: &Verifier, log: &LogContents) -> Result<u64, AuditError> {
    let note = match fs::read_to_string(dir.join(LATEST_CHECKPOINT_FILE)) {
        Ok(note) => note,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(AuditError::io("read latest checkpoint", e)),
    };
    let cp = verifier
        .open(&note)
        .map_err(|e| corrupt(format!("latest checkpoint: {e}")))?;
    let matches = log.tree.root_at(cp.size) == Some(cp.root);
    if matches {
        return Ok(cp.size);
    }
    let superseded = log.quarantines.iter().any(|(seq, _)| *seq > cp.size)
        && log
            .damaged
            .iter()
            .any(|d| d.quarantined && d.first_seq <= cp.size);
    if superseded {
        return Ok(0);
    }
    match log.tree.root_at(cp.size) {
        Some(_) => Err(corrupt(format!(
            "the first {} records do not match the latest signed checkpoint (a record was changed, removed, added or reordered); {WAY_ON}",
            cp.size
        ))),
        None => Err(corrupt(format!(
            "the latest signed checkpoint covers {} records but the log holds {}; {WAY_ON}",
            cp.size,
            log.tree.size()
        ))),
    }
}
