//! Data-use agreements and partners for Accord.
//!
//! This crate owns the policy model: partners (who connects, by which
//! certificate key), agreements (parties, term, status, purposes, grants),
//! loading them from TOML with `file:line:col` errors, and the decision
//! itself: default deny, permit only through a grant of an agreement in force.
//!
//! It must never do I/O on the decision path: [`PolicySet::decide`] is a
//! pure function of the compiled policies and the request. Only
//! [`PolicySet::load_dir`] touches the filesystem.

use std::collections::{BTreeMap, HashMap};

pub mod agreement;
pub mod decide;
pub mod ids;
pub mod load;
pub mod partner;
pub mod source;

pub use agreement::{Agreement, AgreementStatus, Grant, Term};
pub use decide::{AccessRequest, Decision, Deny, DenyReason, Permit};
pub use ids::{AgreementId, GrantId, InvalidPolicyId, PartnerId};
pub use load::PolicyErrors;
pub use partner::{Partner, PartnerStatus, SpkiPin};
pub use source::{Location, PolicyError, SourceFile};

/// A compiled, validated set of partners and agreements.
#[derive(Debug, Clone)]
pub struct PolicySet {
    partners: BTreeMap<PartnerId, Partner>,
    by_pin: HashMap<SpkiPin, PartnerId>,
    agreements: Vec<Agreement>,
}

// === impl PolicySet ===

impl PolicySet {
    pub fn partner(&self, id: &PartnerId) -> Option<&Partner> {
        self.partners.get(id)
    }

    /// The partner whose certificate key has this SPKI pin.
    pub fn partner_by_pin(&self, pin: &SpkiPin) -> Option<&Partner> {
        self.by_pin.get(pin).and_then(|id| self.partners.get(id))
    }

    pub fn partners(&self) -> impl Iterator<Item = &Partner> {
        self.partners.values()
    }

    pub fn agreements(&self) -> &[Agreement] {
        &self.agreements
    }
}
