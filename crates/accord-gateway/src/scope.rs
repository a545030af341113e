//! What a permitted request may reach, asked of the policies once per
//! question and remembered for the rest of the request.
//!
//! Narrowing (before forwarding) and filtering (after) both ask the same
//! questions — may this partner read this type, is this patient within
//! reach — so they share one [`Scope`] and cannot disagree.

use std::collections::HashMap;
use std::sync::Mutex;

use accord_fhir::{InteractionKind, Purpose, ResourceType};
use accord_policy::{AccessRequest, PartnerId, PolicySet};
use time::OffsetDateTime;

/// The reach of one permitted request.
#[derive(Debug)]
pub struct Scope<'a> {
    policies: &'a PolicySet,
    partner: &'a PartnerId,
    purpose: &'a Purpose,
    at: OffsetDateTime,
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
    ) -> Self {
        Scope {
            policies,
            partner,
            purpose,
            at,
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

    /// Whether searches of `ty` without a patient are allowed.
    ///
    /// Agreements cannot grant population searches yet, so none are.
    pub fn population_search(&self, _ty: ResourceType) -> bool {
        false
    }

    /// Whether data of the patient with this id may be released.
    ///
    /// Agreements cannot name cohorts or consult consent yet: every patient
    /// is within reach, and the per-resource checks still apply.
    pub fn patient_in_reach(&self, _patient_id: &str) -> bool {
        true
    }
}
