//! Stage 3, decide (→ `Permitted`): ask the policy set, turn a denial into a
//! 403.

use accord_fhir::{FhirRequest, Purpose};
use accord_policy::{AccessRequest, Decision, DenyReason, PartnerId, PolicySet};
use time::OffsetDateTime;

use crate::error::GatewayError;

mod permitted;

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

/// How a denial is answered.
#[derive(Debug)]
pub enum Refusal {
    /// A 403 that says which rule refused, so a partner's integrator can
    /// fix their request, but nothing about data.
    Forbidden(GatewayError),
    /// The patient is outside the cohort or opted out: answer exactly as
    /// for a patient with no data, so the refusal reveals nothing about the
    /// patient (the audit record still says why).
    AsIfNoData,
}

/// The refusal a partner sees for a denial, if the decision is one.
pub fn denial(decision: &Decision) -> Option<Refusal> {
    match decision {
        Decision::Permit(_) => None,
        Decision::Deny(deny) => Some(match deny.reason {
            DenyReason::OutsideCohort { .. } | DenyReason::PatientOptedOut { .. } => {
                Refusal::AsIfNoData
            }
            _ => Refusal::Forbidden(GatewayError::forbidden(format!(
                "access denied: {}",
                deny.reason
            ))),
        }),
    }
}
