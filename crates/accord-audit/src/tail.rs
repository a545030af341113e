//! Following a log as it grows (`accord audit tail`), reading only complete
//! frames and never changing anything.

use std::path::{Path, PathBuf};

use crate::AuditError;
use crate::record::AuditRecord;
use crate::segment::{self, SegmentFile};

/// Reads records appended since the last call.
#[derive(Debug)]
pub struct Follower {
    dir: PathBuf,
    next_seq: u64,
}

// === impl Follower ===

impl Follower {
    /// Starts after record `after` (0: from the beginning).
    pub fn new(dir: &Path, after: u64) -> Self {
        Follower {
            dir: dir.to_path_buf(),
            next_seq: after + 1,
        }
    }

    /// Starts after the last record now in the log.
    pub fn at_end(dir: &Path) -> Result<Self, AuditError> {
        let size = crate::store::read::read_log_leaves(dir)?.tree.size();
        Ok(Follower::new(dir, size))
    }

    /// Records written since the last call, in order. An unfinished final
    /// frame is left for the next call.
    pub fn poll(&mut self) -> Result<Vec<AuditRecord>, AuditError> {
        let segments = segment::list(&self.dir)
            .map_err(|e| AuditError::io("list segments", e))?
            .map_err(|d| AuditError::Corrupt(d.to_string()))?;
        let start = segments
            .iter()
            .rposition(|s| s.first_seq <= self.next_seq)
            .unwrap_or(0);
        let mut out = Vec::new();
        for seg in segments.iter().skip(start) {
            self.read_segment(seg, &mut out)?;
        }
        Ok(out)
    }

    fn read_segment(
        &mut self,
        seg: &SegmentFile,
        out: &mut Vec<AuditRecord>,
    ) -> Result<(), AuditError> {
        let bytes = segment::read_file(&seg.path).map_err(|e| AuditError::io("read segment", e))?;
        // Damaged records are skipped here; `verify` names them.
        let scan = segment::scan(seg, &bytes);
        let from = self.next_seq;
        for frame in scan.frames.iter().filter(|f| f.seq >= from) {
            let record = serde_json::from_slice(&frame.payload)
                .map_err(|e| AuditError::Corrupt(format!("record {}: {e}", frame.seq)))?;
            out.push(record);
            self.next_seq = frame.seq + 1;
        }
        Ok(())
    }
}
