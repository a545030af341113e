//! What one partner receives of one patient's resources: the gateway's
//! two calls, [`PolicySet::decide_with`] on the request and
//! [`PolicySet::check_resource`] on each resource's facts, with the one
//! fact the policy files do not hold — referral-cohort membership — taken
//! from evidence when the caller has it, and reported unknown otherwise.
//!
//! `explain` and `diff` read decisions only through here, so they say what
//! the gateway does.

use std::collections::{BTreeMap, BTreeSet};

use time::OffsetDateTime;

use crate::PolicySet;
use crate::cohort::CohortMembers;
use crate::consent::ConsentIndex;
use crate::decide::{AccessRequest, Decision, Deny, DenyReason, Permit};
use crate::ids::{CategoryId, PartnerId};
use crate::obligations::{Obligations, ResourceVerdict, WithholdReason};
use crate::population::Record;
use crate::referral::ReferralEvidence;

/// Referral-cohort membership of the request's patient, as far as known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Referral {
    /// The permitting grant has no referral cohort (or no patient is named).
    NotAsked,
    Member,
    NotMember,
    /// A referral cohort, but nothing to look membership up in: the gateway
    /// asks its upstream; the tools cannot guess.
    Unknown,
}

/// What the partner receives of the resources it was shown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    /// Whether the request is permitted at all.
    pub permitted: bool,
    /// Resources released (`Type/id`).
    pub released: BTreeSet<String>,
    /// Resources withheld, and why.
    pub withheld: BTreeMap<String, WithholdReason>,
    /// Element paths removed from released resources.
    pub redacted: BTreeSet<String>,
    /// Sensitive categories of released resources.
    pub categories: BTreeSet<CategoryId>,
}

// === impl PolicySet ===

impl PolicySet {
    /// The gateway's decision on a request about one patient: the decision,
    /// then — for a grant limited to a referral cohort — membership, which
    /// denies as the gateway's narrowing does when the patient is outside.
    pub fn decide_known(
        &self,
        request: &AccessRequest<'_>,
        consents: &ConsentIndex,
        evidence: Option<&ReferralEvidence>,
    ) -> (Decision, Referral) {
        let decision = self.decide_with_narrowing(request, consents);
        let referral = match (&request.patient, decision.obligations()) {
            (Some(patient), Some(obligations)) => self.referral(obligations, patient, evidence),
            _ => Referral::NotAsked,
        };
        if referral == Referral::NotMember
            && let Decision::Permit(Permit::Grant {
                agreement,
                agreement_version,
                obligations,
                ..
            }) = &decision
        {
            let cohort = obligations
                .cohort
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default();
            let deny = Decision::Deny(Deny {
                reason: DenyReason::OutsideCohort {
                    agreement: agreement.clone(),
                    version: *agreement_version,
                    cohort,
                },
            });
            return (deny, referral);
        }
        (decision, referral)
    }

    /// The parties of the obligations' referral cohort, when it has one.
    pub fn referral_parties(&self, obligations: &Obligations) -> Option<&BTreeSet<PartnerId>> {
        let cohort = obligations.cohort.as_ref().and_then(|c| self.cohort(c))?;
        match &cohort.members {
            CohortMembers::Referral { between, .. } => Some(between),
            _ => None,
        }
    }

    /// Membership of `patient` in the obligations' referral cohort.
    pub fn referral(
        &self,
        obligations: &Obligations,
        patient: &str,
        evidence: Option<&ReferralEvidence>,
    ) -> Referral {
        let Some(between) = self.referral_parties(obligations) else {
            return Referral::NotAsked;
        };
        match evidence {
            None => Referral::Unknown,
            Some(e) if self.referral_member(obligations, between, e, patient) => Referral::Member,
            Some(_) => Referral::NotMember,
        }
    }

    /// Whether `patient` is in the referral cohort as it counts for the
    /// obligations' partner: referrals by the cohort's referrers (every
    /// party when it lists none), never the partner's own writes.
    fn referral_member(
        &self,
        obligations: &Obligations,
        between: &BTreeSet<PartnerId>,
        evidence: &ReferralEvidence,
        patient: &str,
    ) -> bool {
        let senders = obligations
            .cohort
            .as_ref()
            .and_then(|c| self.cohort(c))
            .and_then(|c| c.referral_senders(&obligations.partner))
            .unwrap_or_else(|| between.clone());
        evidence.member(self, between, &senders, &obligations.partner, patient)
    }

    /// Checks each record as the gateway's filter does, with referral
    /// membership from `evidence` (unknown without it: withheld, as the
    /// gateway withholds what it could not resolve).
    pub fn release_records(
        &self,
        obligations: &Obligations,
        records: &[Record],
        consents: &ConsentIndex,
        at: OffsetDateTime,
        evidence: Option<&ReferralEvidence>,
    ) -> Access {
        let mut access = Access {
            permitted: true,
            ..Access::default()
        };
        for record in records {
            let mut facts = record.facts.clone();
            if obligations.source.is_some() {
                // As the gateway does on a shared server.
                facts.origin = self.origin_of(&record.resource, record.encounter.as_deref());
            }
            if let Some(between) = self.referral_parties(obligations) {
                facts.in_referral_cohort = evidence.map(|e| {
                    !facts.patients.is_empty()
                        && facts
                            .patients
                            .iter()
                            .all(|p| self.referral_member(obligations, between, e, p))
                });
            }
            match self.check_resource(obligations, &facts, consents, at) {
                ResourceVerdict::Withhold(reason) => {
                    access.withheld.insert(record.key.clone(), reason);
                }
                verdict => {
                    if let ResourceVerdict::Redact(paths) = verdict {
                        access.redacted.extend(paths);
                    }
                    access.released.insert(record.key.clone());
                    access
                        .categories
                        .extend(self.categories_of(&facts).into_iter().map(|c| c.id.clone()));
                }
            }
        }
        access
    }

    /// What `partner` receives for `purpose` when it asks for `patient`'s
    /// resources of the records' type (a search naming the patient): the
    /// decision, then every record checked.
    pub fn access(
        &self,
        request: &AccessRequest<'_>,
        records: &[Record],
        consents: &ConsentIndex,
        evidence: Option<&ReferralEvidence>,
    ) -> Access {
        let (decision, _) = self.decide_known(request, consents, evidence);
        match decision.obligations() {
            Some(obligations) => {
                self.release_records(obligations, records, consents, request.at, evidence)
            }
            None => Access::default(),
        }
    }
}

/// The request `diff` asks for each cell: a search of `ty` naming `patient`
/// (for Patient itself, by `_id`).
pub fn patient_search<'a>(
    partner: &'a PartnerId,
    purpose: &'a accord_fhir::Purpose,
    ty: accord_fhir::ResourceType,
    patient: &str,
    at: OffsetDateTime,
) -> AccessRequest<'a> {
    AccessRequest {
        partner,
        purpose,
        interaction: accord_fhir::InteractionKind::Search,
        resource_type: Some(ty),
        at,
        patient: Some(patient.to_owned()),
        operation: None,
    }
}
