//! Stage 3, decide (→ `Permitted`): ask the policy set, turn a denial into a
//! 403.

use accord_fhir::{FhirRequest, Purpose};
use accord_policy::{AccessRequest, Decision, DenyReason, PartnerId, PolicySet};
use time::OffsetDateTime;

use crate::error::GatewayError;
use crate::request::RequestContext;
use crate::scope::Scope;
use crate::stages::count::cap_key;
use crate::stages::narrow::check_shape;
use crate::stages::respond::no_data;
use crate::stages::{Gateway, Identified, Parsed, Permitted, Step};

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

// === impl Gateway ===

impl Gateway {
    /// The decide stage: the policy set's decision (kept for the record);
    /// a denial is refused here, or answered as "no data" when saying
    /// more would tell something about the patient.
    pub(super) fn decide(
        &self,
        ctx: &mut RequestContext,
        identified: Identified,
        parsed: &Parsed,
    ) -> Result<Step<Permitted>, GatewayError> {
        let Identified { policies, partner } = identified;
        let at = OffsetDateTime::now_utc();
        let decision = decide(&policies, &partner, &parsed.purpose, &parsed.fhir, at);
        let refused = denial(&decision);
        let obligations = decision.obligations().cloned();
        let cap_key = cap_key(&decision);
        ctx.decision = Some(decision);
        let self_link = self.self_link(&parsed.fhir);
        match refused {
            None => {}
            Some(Refusal::Forbidden(error)) => return Err(error),
            Some(Refusal::AsIfNoData) => {
                // A request refused for its shape (an ungranted include, a
                // chain) is refused the same way whoever the patient is;
                // answering "no data" first would tell this patient apart.
                let scope = Scope::new(&policies, &partner, &parsed.purpose, at, None);
                check_shape(&parsed.fhir, &scope)?;
                return no_data(&parsed.fhir, &ctx.request_id, at, &self_link).map(Step::Answer);
            }
        }
        let caps = obligations.as_ref().map(|o| o.caps).unwrap_or_default();
        Ok(Step::Next(Permitted {
            policies,
            partner,
            purpose: parsed.purpose.clone(),
            at,
            obligations,
            cap_key,
            caps,
            self_link,
        }))
    }

    /// The partner's request as a gateway URL: the `self` link of any
    /// Bundle it gets back (before narrowing, so it reveals nothing).
    fn self_link(&self, request: &FhirRequest) -> String {
        let mut link = format!(
            "{}/{}",
            self.rewrite.gateway_base(),
            request.relative_path()
        );
        if !request.params.is_empty() {
            link.push('?');
            link.push_str(&request.params.to_query_string());
        }
        link
    }
}
