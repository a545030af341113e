//! Data-use agreements, partners, cohorts, sensitivity and patient consent
//! for Accord.
//!
//! This crate owns the policy model: partners (who connects, by which
//! certificate key), agreements (parties, term, status, purposes, grants
//! with their obligations, forbids), cohorts, sensitivity categories, FHIR
//! Consent; loading them from TOML/JSON with JSON-Schema validation and
//! `file:line:col` errors; the decision (default deny, permit only through a
//! grant of an agreement in force, forbids and opt-outs win), the
//! per-resource check the gateway's filter applies, and the tools built on
//! them: explain, diff, table-driven tests, rendering.
//!
//! It must never do I/O on the decision path: [`PolicySet::decide`] and
//! [`PolicySet::check_resource`] are pure functions of the compiled
//! policies, the consent index, the request and the time. Only
//! [`PolicySources::read_dir`] (and the `*_dir` helpers that call it) touch
//! the filesystem.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

pub mod agreement;
pub mod coding;
pub mod cohort;
pub mod consent;
pub mod decide;
pub mod diff;
pub mod elements;
pub mod explain;
pub mod export;
pub mod facts;
pub mod ids;
pub mod lint;
pub mod load;
pub mod obligations;
pub mod origin;
pub mod outcome;
pub mod partner;
pub mod population;
pub mod referral;
pub mod render;
pub mod scan;
pub mod schema;
pub mod sensitivity;
pub mod source;
pub mod spans;
pub mod suggest;
pub mod testing;
pub mod version;

pub use agreement::{Agreement, AgreementStatus, Caps, Forbid, Grant, SearchConstraint, Term};
pub use cohort::{Cohort, CohortMembers};
pub use consent::{
    Consent, ConsentActors, ConsentAnswer, ConsentIndex, ConsentQuery, ConsentRule, PulledConsents,
    RejectedConsent, UnknownActor,
};
pub use decide::{AccessRequest, Decision, Deny, DenyReason, Permit};
pub use facts::{CodeText, ResourceFacts};
pub use ids::{AgreementId, CategoryId, CohortId, GrantId, InvalidPolicyId, PartnerId};
pub use load::{PolicyErrors, PolicySources};
pub use obligations::{Obligations, ResourceVerdict, RuleKind, RuleRef, WithholdReason};
pub use origin::Origin;
pub use outcome::{Access, Referral};
pub use partner::{Partner, PartnerStatus, SpkiPin};
pub use population::Population;
pub use sensitivity::{Category, Coding};
pub use source::{Location, PolicyError, SourceFile, Written};
pub use version::PolicyVersion;

/// A compiled, validated set of partners, agreements, cohorts, sensitivity
/// categories and the consents loaded with them.
#[derive(Debug, Clone)]
pub struct PolicySet {
    partners: BTreeMap<PartnerId, Partner>,
    by_pin: HashMap<SpkiPin, PartnerId>,
    agreements: Vec<Agreement>,
    /// INVARIANT: indexes into `agreements`, ascending (file-name order).
    by_recipient: HashMap<PartnerId, Vec<usize>>,
    /// Per recipient, per (purpose, type): (agreement, grant) of every grant
    /// that could permit it, whatever the status and term, in decision
    /// order (agreement file order, then grant order). The decision's fast
    /// path; see `decide.rs`.
    grant_index: GrantIndex,
    /// Per recipient, (agreement, forbid) of every forbid that binds it.
    /// INVARIANT: a compiled forbid always lists its recipients (no
    /// recipients in the file means every party), so this covers all.
    forbid_index: HashMap<PartnerId, Vec<(usize, usize)>>,
    cohorts: BTreeMap<CohortId, Cohort>,
    categories: BTreeMap<CategoryId, Category>,
    consents: Arc<ConsentIndex>,
    version: PolicyVersion,
}

/// Recipient → (purpose, type) → (agreement, grant) indexes.
type GrantIndex =
    HashMap<PartnerId, HashMap<(accord_fhir::Purpose, accord_fhir::ResourceType), Vec<(u32, u32)>>>;

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

    pub fn agreement(&self, id: &str) -> Option<&Agreement> {
        self.agreements.iter().find(|a| a.id.as_str() == id)
    }

    pub fn cohorts(&self) -> impl Iterator<Item = &Cohort> {
        self.cohorts.values()
    }

    pub fn cohort(&self, id: &CohortId) -> Option<&Cohort> {
        self.cohorts.get(id)
    }

    pub fn categories(&self) -> impl Iterator<Item = &Category> {
        self.categories.values()
    }

    /// The consents in force: the policy folder's, with those pulled from
    /// the upstream server layered over them.
    pub fn consents(&self) -> &Arc<ConsentIndex> {
        &self.consents
    }

    /// This set with `pulled` as its layer of consents from the upstream
    /// server (replacing the previous pull). Agreements and the policy
    /// version are unchanged: pulled consents are patients' data, not policy.
    #[must_use]
    pub fn with_pulled_consents(&self, pulled: Arc<PulledConsents>) -> PolicySet {
        PolicySet {
            consents: Arc::new(self.consents.with_pulled(pulled)),
            ..self.clone()
        }
    }

    /// The SHA-256 content hash of every source file.
    pub fn version(&self) -> &PolicyVersion {
        &self.version
    }
}
