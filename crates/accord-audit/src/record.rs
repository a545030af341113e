//! The audit record: one per request, permitted or denied.
//!
//! Every field is documented in `docs/audit-record.md`. Fields added after
//! the first version carry `#[serde(default)]` so older records still read.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Version of the record layout, written into every record so readers of old
/// logs know what they hold. Version 2 added partner name and address, policy
/// hash, agreements and rules, normalized path and query, per-patient counts,
/// bytes and upstream latency. Version 3 added the write intent (`phase`,
/// `intent_seq`) and `withheld` counts; version 4 `subjects` (attempted
/// access, findable by patient) and `resource` (what a write acted on).
pub const RECORD_SCHEMA_VERSION: u32 = 4;

/// Everything the audit log keeps about one request.
///
/// Ids are plain strings here: this crate sits below the policy crate and
/// records what the gateway decided, in the gateway's words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRecord {
    pub schema: u32,
    /// Assigned by the log when the record is appended (0 before); the first
    /// record of a log is 1 and numbers continue across restarts.
    pub seq: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    pub request_id: String,
    /// The partner the client certificate identified, if any.
    pub partner: Option<String>,
    /// The partner organization's display name, from `partners.*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner_name: Option<String>,
    /// The partner's postal or electronic address (HIPAA §164.528 asks for
    /// the recipient's address when known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner_address: Option<String>,
    /// SHA-256 pin of the presented certificate's key, if any.
    pub client_spki: Option<String>,
    /// SHA-256 fingerprint of the presented certificate itself (DER), if
    /// any: which certificate, where `client_spki` says which key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert_sha256: Option<String>,
    /// Client socket address.
    pub peer: String,
    pub purpose: Option<String>,
    pub method: String,
    /// Path and query as received (percent-encoded, as sent).
    pub target: String,
    /// The path as the parser understood it, e.g. `/Patient/123`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The query as forwarded (after narrowing), parameters in a fixed order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    pub interaction: Option<String>,
    pub resource_type: Option<String>,
    pub decision: DecisionKind,
    /// The rule that produced the decision, in words.
    pub rule: String,
    /// Ids of every rule that contributed (grants, forbids, consent, caps).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<String>,
    /// The agreement a permit relied on (the first of `agreements`).
    pub agreement: Option<AgreementRef>,
    /// Every agreement applied, with versions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agreements: Vec<AgreementRef>,
    /// Hash of the active policy set, so the decision can be replayed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_hash: Option<String>,
    /// Patients whose data the response carried (or whose data was withheld),
    /// with counts per resource type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patients: Vec<PatientRelease>,
    /// HTTP status returned to the partner.
    pub status: u16,
    /// Who failed, when the request failed: `partner`, `upstream`, `gateway`.
    pub error_source: Option<String>,
    /// Response body bytes sent to the partner.
    #[serde(default)]
    pub bytes: u64,
    /// Time spent waiting for the upstream FHIR server, summed over every
    /// call the request made; absent when it made none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_latency_us: Option<u64>,
    /// Total time from request to audit.
    pub latency_us: u64,
    /// Set only on a quarantine note: the log's own record that an operator
    /// set damaged records aside (`accord audit quarantine`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantine: Option<crate::gap::Note>,
    /// `intent` on the record a write leaves *before* it is forwarded (no
    /// record, no effect: a write whose intent cannot be recorded is never
    /// sent); its outcome is the request's own record, which names the
    /// intent's sequence number in `intent_seq`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// On a write's outcome record: the sequence number of its intent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent_seq: Option<u64>,
    /// (schema 3) Resources the filter withheld from this response, by
    /// reason code (`sensitive_category`, `consent`, `outside_cohort`,
    /// `grant_constraint`, `other_source`, ...): how many, never whose.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub withheld: std::collections::BTreeMap<String, u32>,
    /// (schema 4) Patients the request named — in its path, its search
    /// parameters or the body it sent — whether or not anything was
    /// released: a denied or refused attempt is found by patient, but it is
    /// never a disclosure (that is `patients` with something released).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subjects: Vec<String>,
    /// (schema 4) The resource the interaction acted on, `Type/id` (with
    /// `/_history/<v>` for a vread): for a create, the id the upstream gave
    /// the new resource. Absent for searches and when nothing was reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
}

/// One patient's share of a response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatientRelease {
    /// `Patient/<id>`.
    pub patient: String,
    /// Sensitivity category ids of what was released, sorted (e.g. `part2`,
    /// `mental-health`); `part2` marks 42 CFR Part 2 data.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sensitivity: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<TypeCounts>,
}

/// Counts for one resource type of one patient.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypeCounts {
    pub resource_type: String,
    #[serde(default)]
    pub released: u32,
    #[serde(default)]
    pub withheld: u32,
    #[serde(default)]
    pub redacted: u32,
}

/// Whether the request was let through.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DecisionKind {
    Permit,
    Deny,
    /// Refused before a decision could be made (bad request, no identity).
    #[default]
    Refuse,
}

impl DecisionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionKind::Permit => "permit",
            DecisionKind::Deny => "deny",
            DecisionKind::Refuse => "refuse",
        }
    }
}

impl std::str::FromStr for DecisionKind {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s.to_ascii_lowercase().as_str() {
            "permit" => Ok(DecisionKind::Permit),
            "deny" => Ok(DecisionKind::Deny),
            "refuse" => Ok(DecisionKind::Refuse),
            _ => Err(()),
        }
    }
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

// === impl AuditRecord ===

impl Default for AuditRecord {
    fn default() -> Self {
        AuditRecord {
            schema: RECORD_SCHEMA_VERSION,
            seq: 0,
            time: OffsetDateTime::UNIX_EPOCH,
            request_id: String::new(),
            partner: None,
            partner_name: None,
            partner_address: None,
            client_spki: None,
            client_cert_sha256: None,
            peer: String::new(),
            purpose: None,
            method: String::new(),
            target: String::new(),
            path: None,
            query: None,
            interaction: None,
            resource_type: None,
            decision: DecisionKind::Refuse,
            rule: String::new(),
            rules: Vec::new(),
            agreement: None,
            agreements: Vec::new(),
            policy_hash: None,
            patients: Vec::new(),
            status: 0,
            error_source: None,
            bytes: 0,
            upstream_latency_us: None,
            latency_us: 0,
            quarantine: None,
            phase: None,
            intent_seq: None,
            withheld: std::collections::BTreeMap::new(),
            subjects: Vec::new(),
            resource: None,
        }
    }
}

impl AuditRecord {
    /// Every agreement the record names (`agreement` and `agreements`).
    pub fn agreement_ids(&self) -> impl Iterator<Item = &str> {
        self.agreement
            .iter()
            .chain(self.agreements.iter())
            .map(|a| a.id.as_str())
    }

    /// Whether the record concerns `patient` (`Patient/<id>`): data of the
    /// patient was released or withheld, or the request named the patient.
    pub fn concerns(&self, patient: &str) -> bool {
        self.patients.iter().any(|r| r.patient == patient)
            || self.subjects.iter().any(|s| s == patient)
    }

    /// Every patient the record concerns, each once, in order.
    pub fn concerned_patients(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        let all = self.patients.iter().map(|p| p.patient.as_str());
        for patient in all.chain(self.subjects.iter().map(String::as_str)) {
            if !out.contains(&patient) {
                out.push(patient);
            }
        }
        out
    }

    /// A write whose response only echoed what the partner itself sent:
    /// a create answered 201, an update or patch answered 200/201, a
    /// delete. Its echo is not a disclosure to that partner (a conditional
    /// create answered 200 returned an existing resource, and is one).
    pub fn is_own_write(&self) -> bool {
        match self.interaction.as_deref() {
            Some("create") => self.status == 201,
            Some("update" | "patch") => matches!(self.status, 200 | 201),
            Some("delete") => true,
            _ => false,
        }
    }

    /// Whether the response released any resource of `patient`.
    pub fn released_to(&self, patient: &str) -> Option<&PatientRelease> {
        self.patients
            .iter()
            .find(|p| p.patient == patient && p.resources.iter().any(|r| r.released > 0))
    }
}
