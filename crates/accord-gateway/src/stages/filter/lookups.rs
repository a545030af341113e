//! What the filter must know before it can judge an answer, asked of the
//! upstream: referral-cohort membership of the answer's patients, the
//! Encounters that say whose record a resource is (a shared server), and
//! the Medications prescriptions name by reference.

use crate::error::GatewayError;
use crate::request::RequestContext;
use crate::stages::{Gateway, Narrowed, Permitted};
use crate::upstream::client::{Upstream, UpstreamResponse};
use crate::upstream::lookup::read_by_ids;
use crate::upstream::medications::{
    read_medications, referenced_encounters, referenced_medications,
};
use crate::upstream::referral::patients_in_response;

// === impl Gateway ===

impl Gateway {
    /// Learns into the scope what judging `response` needs. An upstream
    /// failure resolving referrals fails the request; a Medication or
    /// Encounter not found leaves what names it unclassified (withheld).
    pub(super) async fn look_up_for_filter(
        &self,
        ctx: &mut RequestContext,
        permitted: &Permitted,
        narrowed: &Narrowed<'_>,
        response: &UpstreamResponse,
    ) -> Result<(), GatewayError> {
        let scope = &narrowed.scope;
        if let Some(parties) = &narrowed.referral_parties {
            let patients = patients_in_response(&response.body);
            self.resolve_referrals(scope, &permitted.policies, parties, patients, ctx)
                .await?;
        }
        if scope.needs_origins() && self.upstream_owner.is_none() && self.federation.is_none() {
            let encounters = referenced_encounters(&response.body);
            if !encounters.is_empty() {
                let found = read_by_ids(
                    &self.upstream,
                    "Encounter",
                    &encounters,
                    &ctx.request_id,
                    &mut ctx.upstream_wait,
                )
                .await;
                scope.learn_encounters(found);
            }
        }
        let medications = referenced_medications(&response.body);
        if !medications.is_empty() {
            // A Medication lives on the server of the prescription that
            // names it: ask every member's.
            for upstream in self.lookup_upstreams() {
                let found = read_medications(
                    upstream,
                    &medications,
                    &ctx.request_id,
                    &mut ctx.upstream_wait,
                )
                .await;
                scope.learn_medications(found);
            }
        }
        Ok(())
    }

    /// The servers the gateway's own lookups ask: every member's, or the
    /// one upstream.
    fn lookup_upstreams(&self) -> Vec<&Upstream> {
        match &self.federation {
            Some(federation) => federation.members().iter().map(|m| &m.upstream).collect(),
            None => vec![&self.upstream],
        }
    }
}
