//! The decide stage as the runner calls it: the policy set's decision,
//! refused or answered here when it is a denial, else [`Permitted`].

use time::OffsetDateTime;

use super::{Refusal, decide, denial};
use crate::error::GatewayError;
use crate::request::RequestContext;
use crate::scope::Scope;
use crate::stages::count::cap_key;
use crate::stages::filter::self_link;
use crate::stages::narrow::check_shape;
use crate::stages::respond::no_data;
use crate::stages::{Gateway, Identified, Parsed, Permitted, Step};

// === impl Gateway ===

impl Gateway {
    /// The decide stage: the policy set's decision (kept for the record);
    /// a denial is refused here, or answered as "no data" when saying
    /// more would tell something about the patient.
    pub(in crate::stages) fn decide(
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
        let self_link = self_link(&self.rewrite, &parsed.fhir);
        match refused {
            None => {}
            Some(Refusal::Forbidden(error)) => return Err(error),
            Some(Refusal::AsIfNoData) => {
                // A request refused for its shape (an ungranted include, a
                // chain) is refused the same way whoever the patient is;
                // answering "no data" first would tell this patient apart.
                // Checked under the grant that permits the request for a
                // patient in reach, so its redactions (refused search
                // parameters) and included types count here too.
                let mut type_level = accord_policy::AccessRequest::from_fhir(
                    &partner,
                    &parsed.purpose,
                    &parsed.fhir,
                    at,
                );
                type_level.patient = None;
                let type_level = policies.decide(&type_level);
                let scope = Scope::new(
                    &policies,
                    &partner,
                    &parsed.purpose,
                    at,
                    type_level.obligations(),
                );
                check_shape(&parsed.fhir, &scope)?;
                return no_data(&parsed.fhir, &self_link).map(Step::Answer);
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
}
