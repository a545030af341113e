//! Referral cohorts: membership is resolved against the upstream, for the
//! patients a request names before narrowing (and, from the filter stage,
//! for the patients of the response); a population search is narrowed to
//! the cohort's listed members.

use std::collections::BTreeSet;

use accord_fhir::{FhirRequest, Interaction};
use accord_policy::{PartnerId, PolicySet};

use super::{Narrowing, named_patients};
use crate::error::GatewayError;
use crate::request::RequestContext;
use crate::scope::Scope;
use crate::stages::Gateway;
use crate::upstream::referral::MAX_PATIENTS_PER_REQUEST;

// === impl Gateway ===

impl Gateway {
    /// Resolves referral-cohort membership of `patients` into `scope`. At
    /// most [`MAX_PATIENTS_PER_REQUEST`] are looked up; the rest stay
    /// unresolved, so their data is withheld. An upstream failure fails the
    /// request: nothing is released.
    pub(in crate::stages) async fn resolve_referrals(
        &self,
        scope: &Scope<'_>,
        policies: &PolicySet,
        parties: &BTreeSet<PartnerId>,
        patients: BTreeSet<String>,
        ctx: &mut RequestContext,
    ) -> Result<(), GatewayError> {
        let unresolved: BTreeSet<String> = scope
            .unresolved_referrals(patients)
            .into_iter()
            .take(MAX_PATIENTS_PER_REQUEST)
            .collect();
        if unresolved.is_empty() {
            return Ok(());
        }
        let answers = self
            .referrals
            .resolve(
                &self.upstream,
                policies,
                (parties, &scope.referral_senders()),
                &unresolved,
                &ctx.request_id,
                &mut ctx.upstream_wait,
            )
            .await?;
        scope.learn_referrals(answers);
        Ok(())
    }

    /// Resolves the referral cohort for what the request names; a
    /// population search is narrowed to the cohort's listed members, like a
    /// search that names its patients (`NoMatch` when there are none).
    pub(super) async fn narrow_to_referrals(
        &self,
        fhir: &mut FhirRequest,
        scope: &Scope<'_>,
        policies: &PolicySet,
        parties: &BTreeSet<PartnerId>,
        ctx: &mut RequestContext,
    ) -> Result<Narrowing, GatewayError> {
        let named = named_patients(fhir);
        let Interaction::SearchType { ty } = fhir.interaction else {
            self.resolve_referrals(scope, policies, parties, named, ctx)
                .await?;
            return Ok(Narrowing::Forward);
        };
        if !named.is_empty() || !scope.population_search(ty) {
            self.resolve_referrals(scope, policies, parties, named, ctx)
                .await?;
            return Ok(Narrowing::Forward);
        }
        let members = self
            .referral_population(scope, policies, parties, ctx)
            .await?;
        if members.is_empty() {
            return Ok(Narrowing::NoMatch);
        }
        let (name, values) = if ty == accord_fhir::ResourceType::PATIENT {
            ("_id", members.iter().cloned().collect::<Vec<_>>())
        } else {
            (
                "patient",
                members.iter().map(|p| format!("Patient/{p}")).collect(),
            )
        };
        fhir.params.push(name, &values.join(","));
        Ok(Narrowing::Forward)
    }

    /// Every member of a referral cohort, for a population search, learned
    /// into `scope`; refused when the list cannot be read whole or is too
    /// long to send as one search.
    async fn referral_population(
        &self,
        scope: &Scope<'_>,
        policies: &PolicySet,
        parties: &BTreeSet<PartnerId>,
        ctx: &mut RequestContext,
    ) -> Result<BTreeSet<String>, GatewayError> {
        let members = self
            .referrals
            .all_members(
                &self.upstream,
                policies,
                (parties, &scope.referral_senders()),
                &ctx.request_id,
                &mut ctx.upstream_wait,
            )
            .await?
            .filter(|m| m.len() <= MAX_PATIENTS_PER_REQUEST)
            .ok_or_else(|| {
                GatewayError::forbidden(
                    "the agreement's referral cohort cannot be listed whole: name a patient (e.g. `?patient=Patient/123`)",
                )
            })?;
        scope.learn_referrals(members.iter().map(|p| (p.clone(), true)).collect());
        Ok(members)
    }
}
