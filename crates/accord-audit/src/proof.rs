//! Receipts anyone can check: an inclusion proof of one record against a
//! signed checkpoint, verifiable with the log's public key alone.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::AuditError;
use crate::merkle::{Hash, leaf_hash, verify_inclusion};
use crate::note::{Checkpoint, Verifier};
use crate::store::checkpoints::read_checkpoint_log;
use crate::store::{LATEST_CHECKPOINT_FILE, read_log};

/// A self-contained inclusion proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionProof {
    /// The record's sequence number (leaf index + 1).
    pub seq: u64,
    /// The record exactly as stored (its bytes are the Merkle leaf).
    pub record: String,
    pub tree_size: u64,
    /// Hex hashes, RFC 9162 order.
    pub proof: Vec<String>,
    /// The signed checkpoint the proof leads to.
    pub checkpoint: String,
}

/// Why a proof was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofCheckError {
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] crate::note::NoteError),
    #[error("the proof is for a tree of {claimed} records, the checkpoint signs {signed}")]
    SizeMismatch { claimed: u64, signed: u64 },
    #[error("the record's own `seq` is not {0}")]
    SeqMismatch(u64),
    #[error("a proof hash is not 32 bytes of hex")]
    BadHash,
    #[error("{0}")]
    Proof(#[from] crate::merkle::ProofError),
}

/// Proves record `seq` against the newest checkpoint in `dir` (the latest,
/// or one from `checkpoints.log`) whose root the log still reproduces: an
/// intact record is provable even when other records are damaged, as long
/// as a checkpoint covering it can be checked.
pub fn prove(dir: &Path, seq: u64) -> Result<InclusionProof, AuditError> {
    let latest = std::fs::read_to_string(dir.join(LATEST_CHECKPOINT_FILE))
        .map_err(|e| AuditError::io("read latest checkpoint", e))?;
    let latest_cp =
        Checkpoint::parse_note(&latest).map_err(|e| AuditError::Corrupt(e.to_string()))?;
    if seq == 0 || seq > latest_cp.size {
        return Err(AuditError::NotCovered {
            seq,
            size: latest_cp.size,
        });
    }
    let log = read_log(dir)?;
    if let Some(damage) = log.damage_at(seq) {
        return Err(AuditError::Corrupt(format!(
            "record {seq} cannot be proved: {damage}"
        )));
    }
    let mut notes = vec![latest];
    notes.extend(
        read_checkpoint_log(dir)?
            .notes
            .into_iter()
            .rev()
            .map(|(_, note)| note),
    );
    let signed: Vec<Checkpoint> = notes
        .iter()
        .filter_map(|note| Checkpoint::parse_note(note).ok())
        .collect();
    let usable = notes.into_iter().find_map(|note| {
        let cp = Checkpoint::parse_note(&note).ok()?;
        (cp.size >= seq && log.tree.root_at(cp.size) == Some(cp.root)).then_some((note, cp))
    });
    let Some((note, cp)) = usable else {
        let why = log
            .unquarantined()
            .next()
            .map_or_else(|| first_mismatch(&log.tree, signed), ToString::to_string);
        return Err(AuditError::Corrupt(format!(
            "record {seq} cannot be proved: no signed checkpoint covering it can be checked ({why})"
        )));
    };
    let frame = log
        .frames
        .iter()
        .find(|f| f.seq == seq)
        .ok_or(AuditError::NotCovered { seq, size: cp.size })?;
    let record = String::from_utf8(frame.payload.clone())
        .map_err(|_| AuditError::Corrupt(format!("record {seq} is not UTF-8")))?;
    let proof = log
        .tree
        .inclusion_proof(seq - 1, cp.size)
        .ok_or(AuditError::NotCovered { seq, size: cp.size })?;
    Ok(InclusionProof {
        seq,
        record,
        tree_size: cp.size,
        proof: proof.iter().map(Hash::to_hex).collect(),
        checkpoint: note,
    })
}

/// Names the records between the last checkpoint the log still matches
/// and the first it does not.
fn first_mismatch(tree: &crate::merkle::Tree, mut signed: Vec<Checkpoint>) -> String {
    signed.sort_by_key(|cp| cp.size);
    let mut matched = 0;
    for cp in signed {
        match tree.root_at(cp.size) {
            Some(root) if root == cp.root => matched = matched.max(cp.size),
            Some(_) => {
                return format!(
                    "records {}–{} do not match the signed checkpoint of {} records: one of them was changed, removed, added or reordered after it was signed",
                    matched + 1,
                    cp.size,
                    cp.size
                );
            }
            None => {
                return format!(
                    "the signed checkpoint of {} records covers more than the {} records the log holds (records removed or the log rolled back)",
                    cp.size,
                    tree.size()
                );
            }
        }
    }
    "the log does not match its signed checkpoints".to_owned()
}

/// Checks `proof` with the public key alone; returns the checkpoint it
/// leads to.
pub fn check(proof: &InclusionProof, key: &Verifier) -> Result<Checkpoint, ProofCheckError> {
    let cp = key.open(&proof.checkpoint)?;
    if cp.size != proof.tree_size {
        return Err(ProofCheckError::SizeMismatch {
            claimed: proof.tree_size,
            signed: cp.size,
        });
    }
    #[derive(Deserialize)]
    struct SeqOnly {
        seq: u64,
    }
    let own: Option<SeqOnly> = serde_json::from_str(&proof.record).ok();
    if own.map(|s| s.seq) != Some(proof.seq) {
        return Err(ProofCheckError::SeqMismatch(proof.seq));
    }
    let hashes = proof
        .proof
        .iter()
        .map(|h| Hash::from_hex(h).ok_or(ProofCheckError::BadHash))
        .collect::<Result<Vec<_>, _>>()?;
    let leaf = leaf_hash(proof.record.as_bytes());
    verify_inclusion(
        proof.seq.saturating_sub(1),
        cp.size,
        &leaf,
        &hashes,
        &cp.root,
    )?;
    Ok(cp)
}
