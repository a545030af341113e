//! Accord's audit store: one durable, tamper-evident record per request,
//! written before any data is released.
//!
//! This crate owns the record format, the [`AuditSink`] trait the gateway
//! appends through, and the store ([`AuditStore`]): segment files of framed
//! records written with group commit, an RFC 9162 Merkle tree over every
//! record, Ed25519-signed checkpoints (C2SP tlog-checkpoint), inclusion and
//! consistency proofs, verification and log following, the rebuildable sled
//! indexes ([`index`]) and the privacy officer's queries and reports
//! ([`query`], [`report`]).
//!
//! It must never acknowledge a record that is not on stable storage: an
//! `Ok` from [`AuditSink::append`] means the record survived `fsync`. It
//! does no async I/O (no tokio, no hyper) and never rewrites a record.

pub mod cosign;
pub mod gap;
pub mod index;
pub mod integrity;
pub mod merkle;
pub mod note;
pub mod proof;
pub mod quarantine;
pub mod query;
pub mod record;
pub mod report;
pub mod segment;
pub mod store;
pub mod tail;
pub mod verify;
pub mod witness;

pub use cosign::{CosignatureKey, Cosigner};
pub use index::{Field, Index, IndexError};
pub use merkle::{Hash, Tree};
pub use note::{Checkpoint, NoteError, Signer, Verifier};
pub use proof::{InclusionProof, ProofCheckError};
pub use record::{
    AgreementRef, AuditRecord, DecisionKind, PatientRelease, RECORD_SCHEMA_VERSION, Receipt,
    TypeCounts,
};
pub use store::checkpoints::{CheckpointLog, read_checkpoint_log};
pub use store::{
    AuditStore, DamagedRange, LogContents, OpenReport, StoreOptions, TornTail, read_log,
    read_records,
};
pub use tail::Follower;
pub use verify::{Problem, VerifyOptions, VerifyReport, verify};

/// Where the gateway writes audit records. `append` blocks until the record
/// is durable; async callers use `append_detached` when the sink offers it,
/// else run `append` on a blocking thread.
pub trait AuditSink: Send + Sync + 'static {
    /// Appends `record` durably and returns its receipt. On `Err` nothing may
    /// be released to the partner.
    fn append(&self, record: &AuditRecord) -> Result<Receipt, AuditError>;

    /// Starts appending `record` and returns at once; `done` is called
    /// exactly once with what `append` would have returned (on another
    /// thread, possibly the store's writer: it must not block). A sink that
    /// cannot do this hands `done` back unused, and the caller uses `append`.
    fn append_detached(&self, record: &AuditRecord, done: AppendDone) -> Result<(), AppendDone> {
        let _ = record;
        Err(done)
    }
}

/// The callback of [`AuditSink::append_detached`].
pub type AppendDone = Box<dyn FnOnce(Result<Receipt, AuditError>) + Send>;

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("{action}: {source}")]
    Io {
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("audit log is closed")]
    Closed,
    #[error("audit log is corrupt: {0}")]
    Corrupt(String),
    #[error(
        "record {seq} is not covered by the latest checkpoint (size {size}); checkpoints follow within a second"
    )]
    NotCovered { seq: u64, size: u64 },
    #[error("signing key: {0}")]
    Key(String),
    /// The record is larger than the log accepts ([`segment::MAX_RECORD`]);
    /// nothing was written and the log goes on. The gateway answers 503
    /// and may append a smaller refusal record instead.
    #[error(
        "audit record of {bytes} bytes is over the limit of {limit} bytes; nothing was written"
    )]
    TooLarge { bytes: u64, limit: u64 },
}

impl AuditError {
    /// The refusal for a record payload of `bytes` bytes, if over the limit
    /// the reader also applies (one constant for both).
    pub(crate) fn check_size(bytes: usize) -> Result<(), AuditError> {
        let bytes = bytes as u64;
        let limit = u64::from(segment::MAX_RECORD);
        if bytes > limit {
            return Err(AuditError::TooLarge { bytes, limit });
        }
        Ok(())
    }

    pub(crate) fn io(action: &'static str, source: std::io::Error) -> Self {
        AuditError::Io { action, source }
    }
}
