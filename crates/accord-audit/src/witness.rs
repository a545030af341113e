//! The C2SP tlog-witness protocol without the HTTP: the `add-checkpoint`
//! request body both sides use, and [`Witness`], the checks and state of a
//! witness (the server in `accord witness` only moves bytes).
//!
//! A witness keeps, per log origin, the latest checkpoint it cosigned. It
//! cosigns a new checkpoint only when the log's key signed it and a
//! consistency proof shows it extends that latest one; so a log rewritten
//! after a checkpoint was witnessed (a record deleted, the rest renumbered
//! and re-signed with the log's own key) can never be cosigned again.
//!
//! Answers, as the spec has them: 404 unknown origin, 403 no valid
//! signature by a trusted key, 400 malformed or an old size larger than the
//! checkpoint (a stale checkpoint), 409 + `text/x.tlog.size` when the old
//! size is not the size last cosigned, 422 when the consistency proof (or
//! an equal-size root) does not check.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::cosign::Cosigner;
use crate::merkle::{Hash, empty_root, sha256, verify_consistency};
use crate::note::{Checkpoint, NoteError, Verifier};

/// At most this many proof lines (the spec's limit).
pub const MAX_PROOF_LINES: usize = 63;
/// A request body longer than this is refused unread.
pub const MAX_BODY: usize = 16 << 10;
/// The content type of a 409's body.
pub const SIZE_CONTENT_TYPE: &str = "text/x.tlog.size";

/// An `add-checkpoint` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpoint {
    /// The size of the checkpoint the witness last cosigned, as the log
    /// believes it (0 the first time).
    pub old: u64,
    /// RFC 9162 consistency proof from `old` to the checkpoint's size.
    pub proof: Vec<Hash>,
    /// The signed checkpoint note.
    pub note: String,
}

/// Why a witness did not cosign; maps to the spec's status codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("malformed request: {0}")]
    Malformed(String),
    #[error("unknown log `{0}`")]
    UnknownLog(String),
    #[error("not signed by a trusted key of the log: {0}")]
    NotSigned(String),
    /// The old size is not the size last cosigned (which is this).
    #[error("the last checkpoint cosigned for this log has size {0}")]
    Conflict(u64),
    #[error("not consistent with the last cosigned checkpoint: {0}")]
    Inconsistent(String),
    #[error("cannot store the witness state: {0}")]
    Storage(String),
}

// === impl AddCheckpoint ===

impl AddCheckpoint {
    pub fn encode(&self) -> String {
        let mut out = format!("old {}\n", self.old);
        for h in &self.proof {
            out.push_str(&B64.encode(h.0));
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.note);
        out
    }

    pub fn parse(body: &[u8]) -> Result<AddCheckpoint, Refusal> {
        let bad = |what: &str| Refusal::Malformed(what.to_owned());
        if body.len() > MAX_BODY {
            return Err(bad("body too large"));
        }
        let text = std::str::from_utf8(body).map_err(|_| bad("not UTF-8"))?;
        let (head, note) = text
            .split_once("\n\n")
            .ok_or_else(|| bad("no empty line before the checkpoint"))?;
        let mut lines = head.split('\n');
        let old = lines
            .next()
            .and_then(|l| l.strip_prefix("old "))
            .filter(|n| *n == "0" || !n.starts_with('0'))
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| bad("first line must be `old <size>`"))?;
        let proof = lines
            .map(|l| {
                B64.decode(l)
                    .ok()
                    .and_then(|h| Hash::from_slice(&h))
                    .ok_or_else(|| bad("a proof line is not a base64 hash"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if proof.len() > MAX_PROOF_LINES {
            return Err(bad("more than 63 proof lines"));
        }
        Ok(AddCheckpoint {
            old,
            proof,
            note: note.to_owned(),
        })
    }
}

// === impl Refusal ===

impl Refusal {
    /// The HTTP status the spec gives this refusal.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::Malformed(_) => 400,
            Refusal::NotSigned(_) => 403,
            Refusal::UnknownLog(_) => 404,
            Refusal::Conflict(_) => 409,
            Refusal::Inconsistent(_) => 422,
            Refusal::Storage(_) => 500,
        }
    }

    /// The response body: the size for a 409, else the reason.
    pub fn body(&self) -> String {
        match self {
            Refusal::Conflict(size) => format!("{size}\n"),
            other => format!("{other}\n"),
        }
    }
}

/// A 409's body: the size the witness last cosigned.
pub fn parse_size(body: &str) -> Option<u64> {
    body.strip_suffix('\n')
        .filter(|n| *n == "0" || !n.starts_with('0'))?
        .parse()
        .ok()
}

/// The witness: its key, the logs it follows and where it keeps what it
/// cosigned (`<state>/<sha256(origin) hex>`: the latest cosigned note).
#[derive(Debug)]
pub struct Witness {
    cosigner: Cosigner,
    logs: BTreeMap<String, Vec<Verifier>>,
    state: PathBuf,
    // INVARIANT: checking the old size and storing the new checkpoint
    // happen under this lock, so two requests can never roll a log back.
    lock: Mutex<()>,
}

impl Witness {
    /// A witness with key `cosigner` for the logs of `keys` (each key's
    /// name is its log's origin), keeping its state in `state`.
    pub fn new(cosigner: Cosigner, keys: Vec<Verifier>, state: &Path) -> std::io::Result<Witness> {
        std::fs::create_dir_all(state)?;
        let mut logs: BTreeMap<String, Vec<Verifier>> = BTreeMap::new();
        for key in keys {
            logs.entry(key.name().to_owned()).or_default().push(key);
        }
        Ok(Witness {
            cosigner,
            logs,
            state: state.to_path_buf(),
            lock: Mutex::new(()),
        })
    }

    pub fn cosigner(&self) -> &Cosigner {
        &self.cosigner
    }

    fn state_file(&self, origin: &str) -> PathBuf {
        self.state.join(sha256(origin.as_bytes()).to_hex())
    }

    /// The latest cosigned checkpoint of the log whose origin hashes to
    /// `origin_hash` (lowercase hex), with the witness's cosignature.
    pub fn latest(&self, origin_hash: &str) -> Option<String> {
        if origin_hash.len() != 64 || !origin_hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        std::fs::read_to_string(self.state.join(origin_hash.to_ascii_lowercase())).ok()
    }

    /// Handles one `add-checkpoint` body at `now` (POSIX seconds): the
    /// cosignature line, or why not.
    pub fn add_checkpoint(&self, body: &[u8], now: u64) -> Result<String, Refusal> {
        let req = AddCheckpoint::parse(body)?;
        let claimed =
            Checkpoint::parse_note(&req.note).map_err(|e| Refusal::Malformed(e.to_string()))?;
        let keys = self
            .logs
            .get(&claimed.origin)
            .ok_or_else(|| Refusal::UnknownLog(claimed.origin.clone()))?;
        let cp = open_with_any(keys, &req.note)?;
        if req.old > cp.size {
            return Err(Refusal::Malformed(format!(
                "old size {} is larger than the checkpoint's {} (a stale checkpoint)",
                req.old, cp.size
            )));
        }
        if cp.size == 0 && cp.root != empty_root() {
            return Err(Refusal::Inconsistent(
                "an empty tree must have the empty root".into(),
            ));
        }
        let _guard = self
            .lock
            .lock()
            .map_err(|_| Refusal::Storage("lock poisoned".into()))?;
        let file = self.state_file(&cp.origin);
        let latest = match std::fs::read_to_string(&file) {
            Ok(note) => {
                Some(Checkpoint::parse_note(&note).map_err(|e| Refusal::Storage(e.to_string()))?)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Refusal::Storage(e.to_string())),
        };
        let (latest_size, latest_root) = latest.map_or((0, empty_root()), |l| (l.size, l.root));
        if req.old != latest_size {
            return Err(Refusal::Conflict(latest_size));
        }
        if req.old == 0 && !req.proof.is_empty() {
            return Err(self.refused(&cp, &req.note, "a proof from size 0 must be empty".into()));
        }
        if req.old > 0 {
            verify_consistency(req.old, cp.size, &latest_root, &cp.root, &req.proof)
                .map_err(|e| self.refused(&cp, &req.note, e.to_string()))?;
        }
        let line = self.cosigner.cosign(&cp, now.max(1));
        let stored = format!("{}{line}", note_with_newline(&req.note));
        write_state(&file, stored.as_bytes()).map_err(|e| Refusal::Storage(e.to_string()))?;
        Ok(line)
    }

    /// Keeps a refused, correctly signed checkpoint as evidence of the
    /// log's misbehaviour (`<state>/<origin hash>.refused`).
    fn refused(&self, cp: &Checkpoint, note: &str, why: String) -> Refusal {
        tracing::warn!(origin = %cp.origin, size = cp.size, reason = %why, "refused an inconsistent checkpoint");
        let path = self.state_file(&cp.origin).with_extension("refused");
        let kept = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| writeln!(f, "{}", note_with_newline(note)));
        if let Err(e) = kept {
            tracing::warn!(error = %e, "cannot keep the refused checkpoint");
        }
        Refusal::Inconsistent(why)
    }
}

fn note_with_newline(note: &str) -> String {
    if note.ends_with('\n') {
        note.to_owned()
    } else {
        format!("{note}\n")
    }
}

/// Opens `note` with whichever of the log's keys signed it.
fn open_with_any(keys: &[Verifier], note: &str) -> Result<Checkpoint, Refusal> {
    let mut last = None;
    for key in keys {
        match key.open(note) {
            Ok(cp) => return Ok(cp),
            Err(e @ NoteError::BadSignature(_)) => return Err(Refusal::NotSigned(e.to_string())),
            Err(e) => last = Some(e),
        }
    }
    Err(Refusal::NotSigned(
        last.map_or_else(|| "no key".into(), |e| e.to_string()),
    ))
}

/// Writes the state durably (temporary file, fsync, rename, fsync dir).
fn write_state(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    crate::store::write_durably(path, bytes).map_err(|e| std::io::Error::other(e.to_string()))
}

#[cfg(test)]
mod tests;
