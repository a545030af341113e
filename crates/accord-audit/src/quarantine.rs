//! Quarantine: the operator's audited way to go on after damage.
//!
//! Damage inside the log is evidence: the store refuses to open on it and
//! nothing is cut. `quarantine` copies each damaged segment into
//! `<dir>/quarantine/` (with a `.sha256` file), appends a note of the gap
//! to the log — a record whose `quarantine` field names the segments (and
//! their SHA-256, so a later change is still caught), the unreadable
//! records and byte ranges, who and why — and signs a checkpoint over it.
//! Readers then count each quarantined record as a [`placeholder`] leaf,
//! and `verify` reports the gap instead of failing.

use std::fs;
use std::path::Path;

use time::OffsetDateTime;

use crate::merkle::sha256;
use crate::note::Signer;
use crate::record::{AuditRecord, DecisionKind};
use crate::store::read::{DamagedRange, read_log};
use crate::store::{AuditStore, StoreOptions, sync_dir};
use crate::{AuditError, segment};

// The note's types live in a leaf module the reader and the record use too.
pub use crate::gap::{Gap, Note, QuarantinedSegment, placeholder};

pub const QUARANTINE_DIR: &str = "quarantine";

/// What `quarantine` did.
#[derive(Debug, Clone)]
pub struct Report {
    /// The note's own record number.
    pub seq: u64,
    pub note: Note,
    /// The checkpoint signed over the note.
    pub checkpoint: String,
}

/// Sets the damaged records of the log in `dir` aside (see the module
/// docs); the store must not be running. `signed` is the largest size a
/// valid checkpoint signs: damage open to the end of the last segment is
/// taken to reach at least that far.
pub fn quarantine(
    dir: &Path,
    signer: Signer,
    operator: &str,
    reason: &str,
) -> Result<Report, AuditError> {
    let verifier = signer.verifier();
    let signed = crate::store::recover::signed_size(dir, &verifier)?;
    let log = read_log(dir)?;
    let mut evidence: Vec<DamagedRange> = log.unquarantined().cloned().collect();
    if let Some(torn) = log.torn.as_ref().filter(|t| t.seq <= signed) {
        evidence.push(DamagedRange {
            segment: torn.segment.clone(),
            first_seq: torn.seq,
            last_seq: None,
            offset: torn.offset,
            bytes: torn.bytes,
            what: "a record cut short inside the signed range".into(),
            quarantined: false,
        });
    }
    if evidence.is_empty() {
        return Err(AuditError::Corrupt(
            "nothing to quarantine: the log has no unreadable records".into(),
        ));
    }
    let last_segment = segment::list(dir)
        .map_err(|e| AuditError::io("list segments", e))?
        .map_err(|d| AuditError::Corrupt(d.to_string()))?
        .last()
        .map(|s| s.path.clone());
    let mut gaps = Vec::new();
    let mut segments: Vec<QuarantinedSegment> = Vec::new();
    for d in &evidence {
        let name = file_name(&d.segment);
        let last_seq = d.last_seq.unwrap_or_else(|| signed.max(d.first_seq));
        gaps.push(Gap {
            segment: name.clone(),
            first_seq: d.first_seq,
            last_seq,
            offset: d.offset,
            bytes: d.bytes,
            what: d.what.clone(),
        });
        if !segments.iter().any(|s| s.name == name) {
            segments.push(copy_aside(dir, &d.segment, &name)?);
        }
    }
    let top = gaps.iter().map(|g| g.last_seq).fold(log.last_seq, u64::max);
    let seq = top + 1;
    let starts_new = evidence
        .iter()
        .any(|d| Some(&d.segment) == last_segment.as_ref());
    let note = Note {
        operator: operator.to_owned(),
        reason: reason.to_owned(),
        segments,
        gaps,
    };
    match last_segment.filter(|_| !starts_new) {
        // The active segment is intact: the note goes after its records.
        Some(active) => write_note_after(&active, log.active_len, seq, &note)?,
        None => write_note_segment(dir, seq, &note)?,
    }
    let options = StoreOptions {
        signer: Some(signer),
        index: false,
        ..StoreOptions::default()
    };
    let (store, _) = AuditStore::open_with(dir, options)?;
    let checkpoint = store.checkpoint()?;
    store.close();
    Ok(Report {
        seq,
        note,
        checkpoint,
    })
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Copies `path` to `<dir>/quarantine/<name>` with `<name>.sha256`.
fn copy_aside(dir: &Path, path: &Path, name: &str) -> Result<QuarantinedSegment, AuditError> {
    let qdir = dir.join(QUARANTINE_DIR);
    fs::create_dir_all(&qdir).map_err(|e| AuditError::io("create quarantine directory", e))?;
    let bytes = segment::read_file(path).map_err(|e| AuditError::io("read segment", e))?;
    let hash = sha256(&bytes).to_hex();
    crate::store::write_durably(&qdir.join(name), &bytes)?;
    crate::store::write_durably(
        &qdir.join(format!("{name}.sha256")),
        format!("{hash}  {name}\n").as_bytes(),
    )?;
    sync_dir(dir);
    Ok(QuarantinedSegment {
        name: name.to_owned(),
        sha256: hash,
        copy: format!("{QUARANTINE_DIR}/{name}"),
    })
}

/// Starts segment `seq` with the quarantine note as its first record.
fn write_note_segment(dir: &Path, seq: u64, note: &Note) -> Result<(), AuditError> {
    let mut bytes = segment::header(seq).to_vec();
    segment::encode_frame(&note_record(seq, note)?, &mut bytes);
    let path = dir
        .join(segment::SEGMENTS_DIR)
        .join(segment::segment_name(seq));
    crate::store::write_durably(&path, &bytes)
}

/// Writes the note as record `seq` at `at` of the active segment, over
/// nothing but the zeros the writer reserved there.
fn write_note_after(path: &Path, at: u64, seq: u64, note: &Note) -> Result<(), AuditError> {
    use std::os::unix::fs::FileExt as _;
    let bytes = segment::read_file(path).map_err(|e| AuditError::io("read segment", e))?;
    let rest = bytes
        .get(usize::try_from(at).unwrap_or(usize::MAX)..)
        .unwrap_or_default();
    if rest.iter().any(|b| *b != 0) {
        return Err(AuditError::Corrupt(format!(
            "{}: an unfinished write follows byte offset {at}; open the store once to cut it, then quarantine",
            path.display()
        )));
    }
    let mut frame = Vec::new();
    segment::encode_frame(&note_record(seq, note)?, &mut frame);
    let file = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| AuditError::io("open segment", e))?;
    file.write_all_at(&frame, at)
        .and_then(|()| file.sync_all())
        .map_err(|e| AuditError::io("write quarantine note", e))
}

/// The quarantine note's record bytes.
fn note_record(seq: u64, note: &Note) -> Result<Vec<u8>, AuditError> {
    let first = note.gaps.first();
    let record = AuditRecord {
        seq,
        time: OffsetDateTime::now_utc(),
        request_id: format!("quarantine-{seq}"),
        peer: "local".into(),
        method: "QUARANTINE".into(),
        target: note
            .segments
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(","),
        decision: DecisionKind::Refuse,
        rule: match first {
            Some(g) => format!(
                "audit log quarantine: records {}–{} set aside by {}",
                g.first_seq, g.last_seq, note.operator
            ),
            None => format!("audit log quarantine by {}", note.operator),
        },
        quarantine: Some(note.clone()),
        ..AuditRecord::default()
    };
    let payload = serde_json::to_vec(&record)
        .map_err(|e| AuditError::io("encode quarantine note", std::io::Error::other(e)))?;
    AuditError::check_size(payload.len())?;
    Ok(payload)
}
