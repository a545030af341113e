//! The audit record: one per request, permitted or denied.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Version of the record layout, written into every record so readers of old
/// logs know what they hold.
pub const RECORD_SCHEMA_VERSION: u32 = 1;

/// Everything the audit log keeps about one request.
///
/// Ids are plain strings here: this crate sits below the policy crate and
/// records what the gateway decided, in the gateway's words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRecord {
    pub schema: u32,
    /// Assigned by the log when the record is appended (0 before).
    pub seq: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    pub request_id: String,
    /// The partner the client certificate identified, if any.
    pub partner: Option<String>,
    /// SHA-256 pin of the presented certificate's key, if any.
    pub client_spki: Option<String>,
    pub peer: String,
    pub purpose: Option<String>,
    pub method: String,
    /// Path and query as received (percent-encoded, as sent).
    pub target: String,
    pub interaction: Option<String>,
    pub resource_type: Option<String>,
    pub decision: DecisionKind,
    /// The rule that produced the decision, in words.
    pub rule: String,
    pub agreement: Option<AgreementRef>,
    /// HTTP status returned to the partner.
    pub status: u16,
    /// Who failed, when the request failed: `partner`, `upstream`, `gateway`.
    pub error_source: Option<String>,
    pub latency_us: u64,
}

/// Whether the request was let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DecisionKind {
    Permit,
    Deny,
    /// Refused before a decision could be made (bad request, no identity).
    Refuse,
}

/// The agreement (and its version) a permit relied on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgreementRef {
    pub id: String,
    pub version: u32,
    pub grant: String,
}

/// Proof of append handed back to the caller: the record's sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    pub seq: u64,
}
