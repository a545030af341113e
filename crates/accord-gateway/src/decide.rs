//! Phase 3, decide: ask the policy set, turn a denial into a 403.

use accord_fhir::{FhirRequest, Purpose};
use accord_policy::{AccessRequest, Decision, PartnerId, PolicySet};
use time::OffsetDateTime;

use crate::error::GatewayError;

/// Decides the request; `Err` carries the 403 a denial becomes, along with
/// the decision (for the audit record).
pub fn decide(
    policies: &PolicySet,
    partner: &PartnerId,
    purpose: &Purpose,
    request: &FhirRequest,
    at: OffsetDateTime,
) -> Decision {
    policies.decide(&AccessRequest::from_fhir(partner, purpose, request, at))
}

/// The refusal a partner sees for a denial. It says which rule refused, so a
/// partner's integrator can fix their request, but nothing about data.
pub fn denial(decision: &Decision) -> Option<GatewayError> {
    match decision {
        Decision::Permit(_) => None,
        Decision::Deny(deny) => Some(GatewayError::forbidden(format!(
            "access denied: {}",
            deny.reason
        ))),
    }
}
