//! Accord's audit log: one durable record per request, written before any
//! data is released.
//!
//! This crate owns the record format, the [`AuditSink`] trait the gateway
//! appends through, and a first durable implementation ([`JsonlAuditLog`]:
//! JSON lines, fsync with group commit, torn-tail recovery).
//!
//! It must never acknowledge a record that is not on stable storage: an
//! `Ok` from [`AuditSink::append`] means the record survived `fsync`.

pub mod jsonl;
pub mod record;

pub use jsonl::{JsonlAuditLog, OpenReport, read_records};
pub use record::{AgreementRef, AuditRecord, DecisionKind, RECORD_SCHEMA_VERSION, Receipt};

/// Where the gateway writes audit records. Implementations block until the
/// record is durable; callers in async code run them on a blocking thread.
pub trait AuditSink: Send + Sync + 'static {
    /// Appends `record` durably and returns its receipt. On `Err` nothing may
    /// be released to the partner.
    fn append(&self, record: &AuditRecord) -> Result<Receipt, AuditError>;
}

/// Why a record could not be appended.
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
}

impl AuditError {
    fn io(action: &'static str, source: std::io::Error) -> Self {
        AuditError::Io { action, source }
    }
}
