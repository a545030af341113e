//! Cohorts: the shared population a grant is limited to.

use std::collections::BTreeSet;

use serde::Deserialize;

use crate::ids::{CohortId, PartnerId};

/// A named cohort from policies/cohorts/*.toml.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cohort {
    pub id: CohortId,
    pub description: String,
    pub members: CohortMembers,
    pub source: String,
}

/// Who is in a cohort.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CohortMembers {
    /// Listed patients (`Patient/123`).
    List(BTreeSet<String>),
    /// The members of a FHIR Group resource kept beside the cohort file.
    Group {
        file: String,
        patients: BTreeSet<String>,
    },
    /// Patients with a referral (ServiceRequest or Task) between these
    /// parties. Membership lives in the upstream server: the gateway resolves
    /// it (and caches it) and tells [`crate::PolicySet::check_resource`].
    ///
    /// Only referrals *made by* a referrer count: the parties listed in
    /// `referrers`, or when none are listed, every party of `between` (the
    /// members' own systems' referrals, in either direction: the referral
    /// loop). A referral a partner writes *through the gateway* never
    /// counts for that partner: its own writes never widen its own reach.
    Referral {
        between: BTreeSet<PartnerId>,
        referrers: Option<BTreeSet<PartnerId>>,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CohortFile {
    #[serde(default)]
    pub cohort: Vec<CohortEntry>,
}

/// Cohorts declared inside an agreement file (`[[cohort]]`); the rest of
/// the file is checked by the agreement schema.
#[derive(Debug, Deserialize)]
pub(crate) struct InlineCohorts {
    #[serde(default)]
    pub cohort: Vec<CohortEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CohortEntry {
    pub id: toml::Spanned<CohortId>,
    pub description: String,
    pub kind: toml::Spanned<String>,
    #[serde(default)]
    pub patients: Vec<String>,
    #[serde(default)]
    pub group: Option<toml::Spanned<String>>,
    #[serde(default)]
    pub between: Vec<toml::Spanned<PartnerId>>,
    #[serde(default)]
    pub referrers: Vec<toml::Spanned<PartnerId>>,
}

// === impl Cohort ===

impl Cohort {
    /// `Some(in or out)` when membership is known from the policy files;
    /// `None` for referral cohorts (resolved by the gateway).
    pub fn contains(&self, patient: &str) -> Option<bool> {
        match &self.members {
            CohortMembers::List(p) | CohortMembers::Group { patients: p, .. } => {
                Some(p.contains(patient))
            }
            CohortMembers::Referral { .. } => None,
        }
    }

    /// For a referral cohort, the parties whose referrals count when
    /// `recipient` asks: the listed referrers, or every party of `between`
    /// (the gateway separately ignores what `recipient` itself wrote
    /// through it). `None` for other cohorts.
    pub fn referral_senders(&self, _recipient: &PartnerId) -> Option<BTreeSet<PartnerId>> {
        let CohortMembers::Referral { between, referrers } = &self.members else {
            return None;
        };
        Some(referrers.clone().unwrap_or_else(|| between.clone()))
    }

    /// One line for explanations.
    pub fn describe(&self) -> String {
        match &self.members {
            CohortMembers::List(p) => format!("cohort `{}`: {} listed patients", self.id, p.len()),
            CohortMembers::Group { file, patients } => format!(
                "cohort `{}`: {} members of the FHIR Group in {file}",
                self.id,
                patients.len()
            ),
            CohortMembers::Referral { between, referrers } => {
                let names = |set: &BTreeSet<PartnerId>| {
                    set.iter()
                        .map(|p| format!("`{p}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let made_by = match referrers {
                    Some(listed) => format!("made by {}", names(listed)),
                    None => "made by any of them (not written through the gateway by the recipient itself)".to_owned(),
                };
                format!(
                    "cohort `{}`: patients with a referral between {}, {made_by}",
                    self.id,
                    names(between)
                )
            }
        }
    }
}
