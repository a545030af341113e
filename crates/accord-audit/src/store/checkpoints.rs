//! `checkpoints.log`: every signed checkpoint, framed like a record
//! (`len:u32le crc32:u32le note`).
//!
//! Reading steps past an entry that is not a checkpoint when complete
//! checkpoints follow it (an old writer appended after a failed write),
//! and reports it; only an unfinished *last* entry is a torn tail, and only
//! that is ever cut (on open, before the writer appends). The writer writes
//! at the end of the good entries and cuts a failed write back before the
//! next one, so no checkpoint is ever appended after garbage.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

use crate::AuditError;
use crate::segment;
use crate::store::CHECKPOINTS_FILE;

/// A checkpoint note is a few hundred bytes; a longer length is damage.
const MAX_NOTE: usize = 64 << 10;

/// What `checkpoints.log` holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckpointLog {
    /// Every readable note and its byte offset, in order.
    pub notes: Vec<(u64, String)>,
    /// Bytes of an unfinished last entry (a torn write), cut on open.
    pub torn: u64,
    /// Entries that are not checkpoints but have checkpoints after them:
    /// (byte offset, bytes). Kept, never cut; `verify` reports them.
    pub skipped: Vec<(u64, u64)>,
    /// Where the good entries end (the file's length less `torn`).
    pub good_len: u64,
}

/// Reads `dir/checkpoints.log` without changing it.
pub fn read_checkpoint_log(dir: &Path) -> Result<CheckpointLog, AuditError> {
    let path = dir.join(CHECKPOINTS_FILE);
    let bytes = match segment::read_file(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(CheckpointLog::default()),
        Err(e) => return Err(AuditError::io("read checkpoints", e)),
    };
    let mut log = CheckpointLog::default();
    let mut pos = 0usize;
    while pos < bytes.len() {
        if let Some((note, end)) = entry_at(&bytes, pos) {
            log.notes.push((pos as u64, note));
            pos = end;
            continue;
        }
        match (pos + 1..bytes.len()).find(|&p| entry_at(&bytes, p).is_some()) {
            Some(next) => {
                log.skipped.push((pos as u64, (next - pos) as u64));
                pos = next;
            }
            None => {
                log.torn = (bytes.len() - pos) as u64;
                break;
            }
        }
    }
    log.good_len = bytes.len() as u64 - log.torn;
    Ok(log)
}

/// The note framed at `pos` and where its frame ends, if it is one.
fn entry_at(bytes: &[u8], pos: usize) -> Option<(String, usize)> {
    let head: [u8; 8] = bytes.get(pos..pos + 8)?.try_into().ok()?;
    let [l0, l1, l2, l3, c0, c1, c2, c3] = head;
    let len = u32::from_le_bytes([l0, l1, l2, l3]) as usize;
    if len == 0 || len > MAX_NOTE {
        return None;
    }
    let payload = bytes.get(pos + 8..pos + 8 + len)?;
    if crc32fast::hash(payload) != u32::from_le_bytes([c0, c1, c2, c3]) {
        return None;
    }
    let note = String::from_utf8(payload.to_vec()).ok()?;
    Some((note, pos + 8 + len))
}

/// Cuts an unfinished last entry; returns where the next entry goes.
pub(crate) fn recover(dir: &Path) -> Result<CheckpointLog, AuditError> {
    let log = read_checkpoint_log(dir)?;
    for (offset, bytes) in &log.skipped {
        tracing::warn!(
            offset,
            bytes,
            "checkpoints.log holds bytes that are not a checkpoint, followed by checkpoints; kept as they are (see `accord audit verify`)"
        );
    }
    if log.torn > 0 {
        let file = OpenOptions::new()
            .write(true)
            .open(dir.join(CHECKPOINTS_FILE))
            .map_err(|e| AuditError::io("open checkpoints", e))?;
        file.set_len(log.good_len)
            .and_then(|()| file.sync_all())
            .map_err(|e| AuditError::io("cut torn checkpoint", e))?;
        tracing::warn!(
            offset = log.good_len,
            bytes = log.torn,
            "cut an unfinished checkpoint entry from the end of checkpoints.log"
        );
    }
    Ok(log)
}

/// Appends checkpoint entries at the end of the good ones.
#[derive(Debug)]
pub(crate) struct Appender {
    file: File,
    /// Where the good entries end.
    len: u64,
    /// A write failed; the file may hold part of it past `len`.
    dirty: bool,
    /// Fault injection: a small disk (tests).
    disk: Option<std::sync::Arc<crate::store::space::DiskBudget>>,
}

impl Appender {
    pub fn open(
        dir: &Path,
        len: u64,
        disk: Option<std::sync::Arc<crate::store::space::DiskBudget>>,
    ) -> Result<Self, AuditError> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(CHECKPOINTS_FILE))
            .map_err(|e| AuditError::io("open checkpoints", e))?;
        Ok(Appender {
            file,
            len,
            dirty: false,
            disk,
        })
    }

    /// Writes `frame` durably after the last good entry. A failed write is
    /// cut back (now, or before the next append): the next entry never
    /// lands after a partial one.
    pub fn append(&mut self, frame: &[u8]) -> Result<(), AuditError> {
        if self.dirty {
            self.cut()
                .map_err(|e| AuditError::io("cut failed checkpoint", e))?;
        }
        let growth = frame.len() as u64;
        let written =
            crate::store::space::write_at(self.disk.as_ref(), &self.file, frame, self.len, growth)
                .and_then(|()| self.file.sync_data());
        match written {
            Ok(()) => {
                self.len += frame.len() as u64;
                Ok(())
            }
            Err(e) => {
                self.dirty = true;
                let _ = self.cut();
                Err(AuditError::io("append checkpoint", e))
            }
        }
    }

    fn cut(&mut self) -> io::Result<()> {
        self.file.set_len(self.len)?;
        self.file.sync_data()?;
        self.dirty = false;
        Ok(())
    }
}
