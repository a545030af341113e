//! What the data path learns about one request, phase by phase; the audit
//! phase writes it down whatever the outcome.

use std::net::SocketAddr;
use std::time::Instant;

use accord_fhir::{InteractionKind, Purpose, ResourceType};
use accord_policy::{Decision, PartnerId, SpkiPin};

use crate::error::ErrorSource;
use crate::filter::ReleaseReport;

/// Per-request state, filled in as the phases run.
#[derive(Debug)]
pub struct RequestContext {
    pub request_id: String,
    pub started: Instant,
    pub peer: SocketAddr,
    pub method: String,
    pub target: String,
    pub client_pin: Option<SpkiPin>,
    pub client_cert_sha256: Option<String>,
    pub partner: Option<PartnerId>,
    pub purpose: Option<Purpose>,
    pub interaction: Option<InteractionKind>,
    pub resource_type: Option<ResourceType>,
    pub decision: Option<Decision>,
    pub error_source: Option<ErrorSource>,
    /// Why the request was refused before a decision, in the partner's words.
    pub refusal: Option<String>,
    /// What the filter phase released and withheld.
    pub report: ReleaseReport,
    /// The partner's legal name, from partners.toml.
    pub partner_name: Option<String>,
    /// The partner's postal address from partners.toml, for the audit
    /// record (the accounting of disclosures names it).
    pub partner_address: Option<String>,
    /// Content hash of the policy set that decided.
    pub policy_version: Option<String>,
    /// Bytes of the body released.
    pub bytes: u64,
}
