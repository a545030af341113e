//! Reading the log back: on open (cutting a torn tail) and for the tools
//! (read only).

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use crate::AuditError;
use crate::merkle::Tree;
use crate::note::Verifier;
use crate::record::AuditRecord;
use crate::segment::{self, Frame, SEGMENTS_DIR, SegmentFile, Tail, segment_name};
use crate::store::{LATEST_CHECKPOINT_FILE, sync_dir};

/// An interrupted write found at the end of the active segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    pub segment: PathBuf,
    pub offset: u64,
    pub bytes: u64,
}

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

/// Everything in a log, read without changing it.
#[derive(Debug, Default)]
pub struct LogContents {
    pub frames: Vec<Frame>,
    pub tree: Tree,
    pub torn: Option<TornTail>,
    /// Where the last segment's records end (zeros reserved by the writer
    /// and a torn tail follow); 0 when there is no segment.
    pub active_len: u64,
}

fn corrupt(what: impl Into<String>) -> AuditError {
    AuditError::Corrupt(what.into())
}

/// Reads every segment. Damage other than a torn tail on the last segment
/// is an error naming the file and offset.
pub fn read_log(dir: &Path) -> Result<LogContents, AuditError> {
    let segments = segment::list(dir)
        .map_err(|e| AuditError::io("list segments", e))?
        .map_err(|d| corrupt(d.to_string()))?;
    let mut out = LogContents::default();
    let count = segments.len();
    for (i, seg) in segments.iter().enumerate() {
        let expected = out.tree.size() + 1;
        if seg.first_seq != expected {
            return Err(corrupt(format!(
                "{}: starts at record {}, but record {expected} comes next",
                seg.path.display(),
                seg.first_seq
            )));
        }
        let bytes = segment::read_file(&seg.path).map_err(|e| AuditError::io("read segment", e))?;
        let scan = segment::scan(seg, &bytes).map_err(|d| corrupt(d.to_string()))?;
        let last = i + 1 == count;
        if !last && (scan.frames.is_empty() || scan.tail != Tail::Clean) {
            return Err(corrupt(format!(
                "{}: sealed segment is empty or ends in a partial record",
                seg.path.display()
            )));
        }
        if last {
            out.active_len = scan.good_len;
        }
        if let Tail::Torn { offset, bytes } = scan.tail {
            out.torn = Some(TornTail {
                segment: seg.path.clone(),
                offset,
                bytes,
            });
        }
        for frame in scan.frames {
            out.tree.push(frame.leaf);
            out.frames.push(frame);
        }
    }
    Ok(out)
}

/// Reads every record of the log in `dir`, in order.
pub fn read_records(dir: &Path) -> Result<Vec<AuditRecord>, AuditError> {
    read_log(dir)?
        .frames
        .iter()
        .map(|f| {
            serde_json::from_slice(&f.payload)
                .map_err(|e| corrupt(format!("record {}: {e}", f.seq)))
        })
        .collect()
}

/// Opens for writing: cuts a torn tail, checks the latest checkpoint.
pub(crate) fn recover(dir: &Path, verifier: &Verifier) -> Result<Recovered, AuditError> {
    let log = read_log(dir)?;
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
            offset = torn.offset,
            bytes = torn.bytes,
            "cut an interrupted write from the end of the audit log"
        );
        active_len = torn.offset;
    }
    let checkpoints = crate::store::checkpoints::recover(dir)?;
    let checkpoint_size = check_latest(dir, verifier, &log.tree)?;
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

/// The latest checkpoint must be signed by our key and describe a prefix of
/// the log we just read: otherwise records were lost or changed.
fn check_latest(dir: &Path, verifier: &Verifier, tree: &Tree) -> Result<u64, AuditError> {
    let note = match fs::read_to_string(dir.join(LATEST_CHECKPOINT_FILE)) {
        Ok(note) => note,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(AuditError::io("read latest checkpoint", e)),
    };
    let cp = verifier
        .open(&note)
        .map_err(|e| corrupt(format!("latest checkpoint: {e}")))?;
    match tree.root_at(cp.size) {
        Some(root) if root == cp.root => Ok(cp.size),
        Some(_) => Err(corrupt(format!(
            "the first {} records do not match the latest signed checkpoint",
            cp.size
        ))),
        None => Err(corrupt(format!(
            "the latest signed checkpoint covers {} records but the log holds {}",
            cp.size,
            tree.size()
        ))),
    }
}
