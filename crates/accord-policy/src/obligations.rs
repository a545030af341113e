//! What a permit obliges the gateway to do, and the per-resource check the
//! filter phase calls for every resource it is about to release.
//!
//! A [`Permit::Grant`](crate::Permit) carries [`Obligations`]:
//! - **narrow** (before forwarding): add [`Obligations::constraints`] for the
//!   searched type; refuse `_include`/`_revinclude` of types outside
//!   [`Obligations::resource_types`];
//! - **filter** (every resource leaving, Bundle entries, includes, contained,
//!   history versions): call [`PolicySet::check_resource`] and release,
//!   redact or withhold as it says;
//! - **count**: enforce [`Obligations::caps`] per recipient per day (the
//!   counters live in the gateway);
//! - **audit**: record [`Obligations::rules`] and
//!   [`Obligations::policy_version`].

use std::collections::BTreeSet;

use accord_fhir::{Purpose, ResourceType};
use serde::Serialize;
use time::OffsetDateTime;

use crate::PolicySet;
use crate::agreement::{Agreement, Caps, Forbid, Grant, SearchConstraint};
use crate::cohort::CohortMembers;
use crate::consent::{ConsentIndex, ConsentQuery, ConsentRule};
use crate::facts::ResourceFacts;
use crate::ids::{AgreementId, CategoryId, CohortId, PartnerId};
use crate::origin::Origin;
use crate::sensitivity::Category;
use crate::version::PolicyVersion;

/// The conditions attached to a permit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Obligations {
    pub partner: PartnerId,
    #[serde(serialize_with = "ser_display")]
    pub purpose: Purpose,
    /// Types this grant shares (a Bundle may hold only these).
    #[serde(serialize_with = "ser_types")]
    pub resource_types: BTreeSet<ResourceType>,
    pub cohort: Option<CohortId>,
    /// Search narrowing for the requested type (and the others granted).
    pub constraints: Vec<SearchConstraint>,
    /// Element paths to remove (`Patient.address`).
    pub redactions: Vec<String>,
    /// Sensitive categories that may be released (consent permitting, for
    /// consent-only categories).
    pub sensitive_allowed: BTreeSet<CategoryId>,
    /// Categories a forbid withholds whatever the grant says.
    pub sensitive_forbidden: BTreeSet<CategoryId>,
    pub caps: Caps,
    pub population_search: bool,
    /// The grant's `source`: only this member's records are released.
    pub source: Option<PartnerId>,
    /// Types whose resources are withheld when none of their codes is in
    /// a code system the sensitivity tables cover (the agreement's
    /// `[unclassified]`, or the built-in default).
    #[serde(serialize_with = "ser_types")]
    pub unclassified_withheld: BTreeSet<ResourceType>,
    /// The rules that produced this decision, grant first.
    pub rules: Vec<RuleRef>,
    pub policy_version: PolicyVersion,
}

/// One rule, precisely enough to find it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleRef {
    pub kind: RuleKind,
    pub file: String,
    pub agreement: Option<AgreementId>,
    pub version: Option<u32>,
    /// Grant or forbid id, or `Consent/<id>`.
    pub rule: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleKind {
    Grant,
    Forbid,
    Consent,
}

/// What to do with one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", content = "detail", rename_all = "lowercase")]
pub enum ResourceVerdict {
    Release,
    /// Release after removing these element paths.
    Redact(Vec<String>),
    Withhold(WithholdReason),
}

/// Why a resource is withheld (audited, never told to the partner).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WithholdReason {
    TypeNotGranted,
    OutsideCohort,
    CohortUnresolved,
    PatientOptedOut {
        consent: String,
    },
    SensitiveNotGranted {
        category: CategoryId,
    },
    SensitiveForbidden {
        category: CategoryId,
    },
    SensitiveWithoutConsent {
        category: CategoryId,
    },
    /// A prescription names its drug by a `Medication` the gateway could
    /// not read: it cannot be classified.
    MedicationUnknown,
    /// Another member's record, under a grant that names its source.
    OtherSource {
        source: PartnerId,
    },
    /// Whose record it is cannot be determined, under a grant that names
    /// a source.
    SourceUndetermined,
    /// None of its codes is in a code system the sensitivity tables cover,
    /// and the agreement withholds such resources of this type.
    Unclassified,
}

fn ser_display<S: serde::Serializer, T: std::fmt::Debug + AsStr>(
    v: &T,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(v.as_str())
}

fn ser_types<S: serde::Serializer>(v: &BTreeSet<ResourceType>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(ResourceType::as_str))
}

trait AsStr {
    fn as_str(&self) -> &str;
}

impl AsStr for Purpose {
    fn as_str(&self) -> &str {
        Purpose::as_str(self)
    }
}

// === impl RuleRef ===

impl RuleRef {
    pub(crate) fn grant(agreement: &Agreement, grant: &Grant) -> Self {
        RuleRef {
            kind: RuleKind::Grant,
            file: agreement.source.clone(),
            agreement: Some(agreement.id.clone()),
            version: Some(agreement.version),
            rule: grant.id.to_string(),
        }
    }

    pub(crate) fn forbid(agreement: &Agreement, forbid: &Forbid) -> Self {
        RuleRef {
            kind: RuleKind::Forbid,
            file: agreement.source.clone(),
            agreement: Some(agreement.id.clone()),
            version: Some(agreement.version),
            rule: forbid.id.to_string(),
        }
    }
}

impl std::fmt::Display for RuleRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            RuleKind::Grant => "grant",
            RuleKind::Forbid => "forbid",
            RuleKind::Consent => "consent",
        };
        match (&self.agreement, self.version) {
            (Some(a), Some(v)) => write!(
                f,
                "{kind} `{}` of agreement `{a}` v{v} ({})",
                self.rule, self.file
            ),
            _ => write!(f, "{kind} `{}` ({})", self.rule, self.file),
        }
    }
}

// === impl Obligations ===

impl Obligations {
    pub(crate) fn of(
        set: &PolicySet,
        (partner, purpose): (&PartnerId, &Purpose),
        agreement: &Agreement,
        grant: &Grant,
        forbidden: BTreeSet<CategoryId>,
        rules: Vec<RuleRef>,
    ) -> Self {
        Obligations {
            partner: partner.clone(),
            purpose: purpose.clone(),
            resource_types: grant.resources.clone(),
            cohort: grant.cohort.clone(),
            constraints: grant.constraints.clone(),
            redactions: grant.redact.clone(),
            sensitive_allowed: grant
                .sensitive
                .iter()
                .filter(|c| !forbidden.contains(*c))
                .cloned()
                .collect(),
            sensitive_forbidden: forbidden,
            caps: grant.caps,
            population_search: grant.population_search,
            source: grant.source.clone(),
            unclassified_withheld: agreement.unclassified_withheld.clone(),
            rules,
            policy_version: set.version.clone(),
        }
    }

    /// The search parameters to add when searching `ty`.
    pub fn constraints_for(&self, ty: ResourceType) -> impl Iterator<Item = &(String, String)> {
        self.constraints
            .iter()
            .filter(move |c| c.resource == ty)
            .flat_map(|c| &c.params)
    }
}

// === impl PolicySet ===

impl PolicySet {
    /// Checks one resource about to leave under a permit: cohort, consent,
    /// sensitivity, then redaction. Pure; `consents` is the index in force
    /// for this request (usually [`PolicySet::consents`]).
    ///
    /// Order: a type outside the grant, a patient outside the cohort, an
    /// opted-out patient, a forbidden category, a category the grant does
    /// not name, and a consent-only category without consent each withhold;
    /// otherwise the grant's redactions for this type apply.
    pub fn check_resource(
        &self,
        obligations: &Obligations,
        facts: &ResourceFacts,
        consents: &ConsentIndex,
        at: OffsetDateTime,
    ) -> ResourceVerdict {
        use ResourceVerdict::Withhold;
        let Some(ty) = facts.resource_type else {
            return Withhold(WithholdReason::TypeNotGranted);
        };
        if !obligations.resource_types.contains(&ty) {
            return Withhold(WithholdReason::TypeNotGranted);
        }
        if let Some(source) = &obligations.source {
            match &facts.origin {
                Origin::Of(of) if of == source => {}
                Origin::Of(of) => {
                    return Withhold(WithholdReason::OtherSource { source: of.clone() });
                }
                Origin::Unresolved | Origin::Undetermined => {
                    return Withhold(WithholdReason::SourceUndetermined);
                }
            }
        }
        if let Some(cohort) = obligations
            .cohort
            .as_ref()
            .and_then(|c| self.cohorts.get(c))
        {
            let inside = match &cohort.members {
                CohortMembers::Referral { .. } => match facts.in_referral_cohort {
                    Some(inside) => inside,
                    None => return Withhold(WithholdReason::CohortUnresolved),
                },
                _ => {
                    !facts.patients.is_empty()
                        && facts
                            .patients
                            .iter()
                            .all(|p| cohort.contains(p).unwrap_or(false))
                }
            };
            if !inside {
                return Withhold(WithholdReason::OutsideCohort);
            }
        }
        let query = ConsentQuery {
            partner: &obligations.partner,
            purpose: &obligations.purpose,
            at,
        };
        for patient in &facts.patients {
            let answer = consents.general(patient, &query);
            if answer.rule == ConsentRule::Deny {
                return Withhold(WithholdReason::PatientOptedOut {
                    consent: answer.consent.unwrap_or_default(),
                });
            }
        }
        if facts.medication_unknown() {
            return Withhold(WithholdReason::MedicationUnknown);
        }
        if obligations.unclassified_withheld.contains(&ty) && !self.classifiable(facts) {
            return Withhold(WithholdReason::Unclassified);
        }
        for category in self.categories.values() {
            if !category.matches(facts) {
                continue;
            }
            let id = category.id.clone();
            if obligations.sensitive_forbidden.contains(&id) {
                return Withhold(WithholdReason::SensitiveForbidden { category: id });
            }
            if !obligations.sensitive_allowed.contains(&id) {
                return Withhold(WithholdReason::SensitiveNotGranted { category: id });
            }
            if category.requires_consent {
                let consented = !facts.patients.is_empty()
                    && facts.patients.iter().all(|p| {
                        consents
                            .for_labels(p, &category.security_labels, &query)
                            .rule
                            == ConsentRule::Permit
                    });
                if !consented {
                    return Withhold(WithholdReason::SensitiveWithoutConsent { category: id });
                }
            }
        }
        let prefix = format!("{}.", ty.as_str());
        let paths: Vec<String> = obligations
            .redactions
            .iter()
            .filter(|p| p.starts_with(&prefix))
            .cloned()
            .collect();
        if paths.is_empty() {
            ResourceVerdict::Release
        } else {
            ResourceVerdict::Redact(paths)
        }
    }
}

impl PolicySet {
    /// Whether the sensitivity tables can classify a resource: one of its
    /// codes is in a code system some category covers, or it carries a
    /// category's security label. Otherwise its sensitivity is unknown.
    pub fn classifiable(&self, facts: &ResourceFacts) -> bool {
        let categories = || self.categories.values();
        facts
            .codes
            .iter()
            .any(|c| categories().any(|cat| cat.systems().any(|s| s == c.system)))
            || facts
                .security_labels
                .iter()
                .any(|l| categories().any(|cat| cat.security_labels.contains(l)))
    }

    /// The sensitivity categories a resource falls in (for the audit
    /// record and the sensitivity scan), in category order.
    pub fn categories_of(&self, facts: &ResourceFacts) -> Vec<&Category> {
        self.categories
            .values()
            .filter(|c| c.matches(facts))
            .collect()
    }
}

#[cfg(test)]
mod tests;
