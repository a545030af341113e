//! `checkpoint.witnessed`: the latest checkpoint that witnesses cosigned,
//! with their cosignatures (C2SP tlog-cosignature lines after the log's
//! signature). Written by the gateway's witness client; read by `verify`
//! and `accord audit checkpoint export`.
//!
//! The file is a convenience copy: an insider can delete or roll it back,
//! but cannot forge a witness's cosignature, and each witness keeps its own
//! copy (served at `GET <witness>/<origin hash>/checkpoint`).

use std::io;
use std::path::Path;

use crate::AuditError;
use crate::note::Checkpoint;
use crate::store::write_durably;

pub const WITNESSED_FILE: &str = "checkpoint.witnessed";

/// The latest witnessed checkpoint, if any.
pub fn read_witnessed(dir: &Path) -> Result<Option<String>, AuditError> {
    match std::fs::read_to_string(dir.join(WITNESSED_FILE)) {
        Ok(note) => Ok(Some(note)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(AuditError::io("read witnessed checkpoint", e)),
    }
}

/// Keeps `note` (a checkpoint with cosignatures) as the latest witnessed
/// one, unless the one kept covers more records.
pub fn store_witnessed(dir: &Path, note: &str) -> Result<(), AuditError> {
    let size = |n: &str| Checkpoint::parse_note(n).map(|cp| cp.size);
    let new = size(note).map_err(|e| AuditError::Corrupt(e.to_string()))?;
    if let Some(old) = read_witnessed(dir)?
        && size(&old).is_ok_and(|old| old > new)
    {
        return Ok(());
    }
    write_durably(&dir.join(WITNESSED_FILE), note.as_bytes())
}
