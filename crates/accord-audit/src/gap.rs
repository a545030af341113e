//! The quarantine note's types: what an operator set aside and where.
//!
//! A leaf module: the record format (`record`), the log reader
//! (`store::read`) and the quarantine command (`quarantine`) all use
//! these types, so they live here, below
//! all three, and import nothing of them (no module imports one that
//! imports it back).

use serde::{Deserialize, Serialize};

use crate::merkle::{Hash, leaf_hash};

/// The `quarantine` field of a quarantine note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Note {
    /// Who set the records aside.
    pub operator: String,
    pub reason: String,
    pub segments: Vec<QuarantinedSegment>,
    pub gaps: Vec<Gap>,
}

/// A damaged segment, left in place and copied aside.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuarantinedSegment {
    /// File name in `segments/`.
    pub name: String,
    /// SHA-256 of the file as quarantined (hex).
    pub sha256: String,
    /// The copy, relative to the audit directory.
    pub copy: String,
}

/// Records set aside.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gap {
    pub segment: String,
    pub first_seq: u64,
    pub last_seq: u64,
    pub offset: u64,
    pub bytes: u64,
    pub what: String,
}

/// The leaf a quarantined record counts as in the Merkle tree.
pub fn placeholder(seq: u64) -> Hash {
    leaf_hash(format!("accord audit: quarantined record {seq}").as_bytes())
}
