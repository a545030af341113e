//! What the data path learns about one request, phase by phase; the audit
//! phase writes it down whatever the outcome.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use accord_fhir::{InteractionKind, Purpose, ResourceType};
use accord_policy::{Decision, PartnerId, SpkiPin};

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

use crate::error::{ErrorSource, GatewayError};

pub mod page;
pub mod report;

pub use report::ReleaseReport;

/// The system of the `meta.tag` the gateway stamps on what a partner
/// writes (`urn:accord:partner`, code = the partner's id).
pub const PARTNER_TAG_SYSTEM: &str = "urn:accord:partner";

/// What the gateway knows about a connection once TLS is up.
#[derive(Debug, Clone)]
pub struct Connection {
    pub peer: SocketAddr,
    /// Pin of the verified client certificate's key, if one was presented.
    pub client_pin: Option<SpkiPin>,
    /// SHA-256 fingerprint of that certificate (for the audit record).
    pub client_cert_sha256: Option<String>,
}

/// A response that passed the filter, ready to be audited and sent.
#[derive(Debug)]
pub struct Releasable {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// How long one partner request waited for the upstream, summed over the
/// calls it made (its forward, a transaction, referral lookups). `None`
/// until a call is made, so a request that never reached the upstream (a
/// denial) says so instead of claiming 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UpstreamWait(Option<Duration>);

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
    /// The volume cap that refused the request, in words (a denial).
    pub cap: Option<String>,
    /// Time spent waiting for the upstream, if it was called.
    pub upstream_wait: UpstreamWait,
    /// For a write: the sequence number of the intent record made durable
    /// before it was forwarded.
    pub intent_seq: Option<u64>,
    /// Patients the request named (`Patient/<id>`), released to or not:
    /// the record of an attempt is found by patient.
    pub subjects: std::collections::BTreeSet<String>,
    /// An existing resource answered as missing: why (a withhold code).
    pub withheld_as_missing: Option<&'static str>,
    /// The resource the interaction acted on (`Type/id`), when known.
    pub resource: Option<String>,
}

impl RequestContext {
    /// A request that has just arrived on `connection`: nothing decided yet.
    pub fn new(
        request_id: String,
        connection: &Connection,
        method: String,
        target: String,
    ) -> Self {
        RequestContext {
            request_id,
            started: Instant::now(),
            peer: connection.peer,
            method,
            target,
            client_pin: connection.client_pin.clone(),
            client_cert_sha256: connection.client_cert_sha256.clone(),
            partner: None,
            purpose: None,
            interaction: None,
            resource_type: None,
            decision: None,
            error_source: None,
            refusal: None,
            report: ReleaseReport::default(),
            partner_name: None,
            partner_address: None,
            policy_version: None,
            bytes: 0,
            cap: None,
            upstream_wait: UpstreamWait::default(),
            intent_seq: None,
            subjects: std::collections::BTreeSet::new(),
            withheld_as_missing: None,
            resource: None,
        }
    }

    /// The request ends in `error`. A resource withheld as if missing is a
    /// denial, not a partner's mistake: the record says so.
    pub fn refused(&mut self, error: &GatewayError) {
        self.withheld_as_missing = error.withheld;
        self.error_source = error.withheld.is_none().then_some(error.source);
        self.refusal = Some(error.message.clone());
    }

    /// A request carried inside this one (a batch or transaction entry),
    /// from the same connection.
    pub fn entry(&self, request_id: String, method: String, target: String) -> Self {
        let connection = Connection {
            peer: self.peer,
            client_pin: self.client_pin.clone(),
            client_cert_sha256: self.client_cert_sha256.clone(),
        };
        RequestContext::new(request_id, &connection, method, target)
    }
}

// === impl UpstreamWait ===

impl UpstreamWait {
    /// Counts one more call.
    pub fn add(&mut self, call: Duration) {
        self.0 = Some(self.0.unwrap_or_default().saturating_add(call));
    }

    /// Adds the calls of a request carried inside this one (a batch entry).
    pub fn include(&mut self, inner: UpstreamWait) {
        if let Some(call) = inner.0 {
            self.add(call);
        }
    }

    /// Microseconds waited, if the upstream was called at all.
    pub fn micros(self) -> Option<u64> {
        self.0
            .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
    }
}

// === impl Releasable ===

impl Releasable {
    /// An answer with no body (a checked transaction entry).
    pub fn empty(status: StatusCode) -> Self {
        Releasable {
            status,
            headers: HeaderMap::new(),
            body: Bytes::new(),
        }
    }
}
