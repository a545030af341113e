//! What a permitted request may reach, asked of the policies once per
//! question and remembered for the rest of the request.
//!
//! Narrowing (before forwarding) and filtering (after) both ask the same
//! questions — may this partner read this type, is this patient within
//! reach — so they share one [`Scope`] and cannot disagree.

use std::collections::HashMap;
use std::sync::Mutex;

use accord_fhir::{InteractionKind, Purpose, ResourceType};
use accord_policy::{
    AccessRequest, CohortMembers, ConsentQuery, ConsentRule, Obligations, PartnerId, PolicySet,
    ResourceFacts, ResourceVerdict,
};
use serde_json::Value;
use time::OffsetDateTime;

/// The reach of one permitted request.
#[derive(Debug)]
pub struct Scope<'a> {
    policies: &'a PolicySet,
    partner: &'a PartnerId,
    purpose: &'a Purpose,
    at: OffsetDateTime,
    /// What the permit obliges (none for capabilities).
    obligations: Option<&'a Obligations>,
    // A Mutex, not a RefCell: the scope lives across the upstream await,
    // so it must be Sync for the request future to be Send.
    permitted: Mutex<HashMap<(InteractionKind, ResourceType), bool>>,
}

// === impl Scope ===

impl<'a> Scope<'a> {
    pub fn new(
        policies: &'a PolicySet,
        partner: &'a PartnerId,
        purpose: &'a Purpose,
        at: OffsetDateTime,
        obligations: Option<&'a Obligations>,
    ) -> Self {
        Scope {
            policies,
            partner,
            purpose,
            at,
            obligations,
            permitted: Mutex::new(HashMap::new()),
        }
    }

    /// Whether an agreement in force lets this partner read resources of
    /// `ty` for this purpose. Every resource released, in any position of a
    /// response, must pass this.
    pub fn may_read(&self, ty: ResourceType) -> bool {
        self.permits(InteractionKind::Read, ty)
    }

    /// Whether an agreement in force grants `kind` on `ty` to this partner
    /// for this purpose.
    pub fn permits(&self, kind: InteractionKind, ty: ResourceType) -> bool {
        let cached = self
            .permitted
            .lock()
            .ok()
            .and_then(|cache| cache.get(&(kind, ty)).copied());
        if let Some(known) = cached {
            return known;
        }
        let permitted = self
            .policies
            .decide(&AccessRequest {
                partner: self.partner,
                purpose: self.purpose,
                interaction: kind,
                resource_type: Some(ty),
                at: self.at,
                patient: None,
                operation: None,
            })
            .is_permit();
        if let Ok(mut cache) = self.permitted.lock() {
            cache.insert((kind, ty), permitted);
        }
        permitted
    }

    /// Whether searches without a patient are allowed: only when the
    /// permitting grant says so.
    pub fn population_search(&self, _ty: ResourceType) -> bool {
        self.obligations.is_some_and(|o| o.population_search)
    }

    /// Search parameters the grant adds to every search of `ty` (e.g.
    /// `category=laboratory`).
    pub fn constraints(&self, ty: ResourceType) -> Vec<(String, String)> {
        self.obligations
            .map(|o| o.constraints_for(ty).cloned().collect())
            .unwrap_or_default()
    }

    /// Whether data of the patient with this id may be asked for: inside a
    /// listed or Group cohort, and not opted out by consent. (Referral
    /// cohorts are not resolved by the gateway yet; see `release`.)
    pub fn patient_in_reach(&self, patient_id: &str) -> bool {
        if self.obligations.is_none() {
            return true;
        }
        if !self.patient_in_cohort(patient_id) {
            return false;
        }
        let reference = format!("Patient/{patient_id}");
        let query = ConsentQuery {
            partner: self.partner,
            purpose: self.purpose,
            at: self.at,
        };
        self.policies.consents().general(&reference, &query).rule != ConsentRule::Deny
    }

    /// Whether the patient is inside the grant's listed or Group cohort
    /// (writes need this; consent governs disclosure, not a referral sent
    /// about the patient).
    pub fn patient_in_cohort(&self, patient_id: &str) -> bool {
        let Some(obligations) = self.obligations else {
            return true;
        };
        let reference = format!("Patient/{patient_id}");
        let cohort = obligations
            .cohort
            .as_ref()
            .and_then(|c| self.policies.cohort(c));
        cohort.and_then(|c| c.contains(&reference)) != Some(false)
    }

    /// The policy's verdict on one resource of patient data belonging to
    /// `patients` (ids): cohort, consent, sensitive categories, redactions.
    pub fn release(&self, resource: &Value, patients: &[String]) -> ResourceVerdict {
        let Some(obligations) = self.obligations else {
            return ResourceVerdict::Release;
        };
        let mut facts = ResourceFacts::from_json(resource);
        // The compartment table finds patients on every path R4 defines,
        // more than the policy's own reader looks at.
        facts.patients = patients.iter().map(|p| format!("Patient/{p}")).collect();
        // Every coding counts for sensitivity, not only the usual elements
        // the policy's own reader looks at (`Encounter.reasonCode`, contained).
        facts.codes = crate::filter::every_coding(resource);
        let referral_cohort = obligations
            .cohort
            .as_ref()
            .and_then(|c| self.policies.cohort(c))
            .is_some_and(|c| matches!(c.members, CohortMembers::Referral { .. }));
        if referral_cohort {
            // GAP: the gateway does not resolve referral cohorts yet; the
            // rest of the checks (consent, sensitivity, redaction) still run.
            facts.in_referral_cohort = Some(true);
        }
        self.policies
            .check_resource(obligations, &facts, self.policies.consents(), self.at)
    }
}
