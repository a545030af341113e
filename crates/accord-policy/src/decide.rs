//! The decision: default deny; permit only through a grant of an agreement in
//! force that covers this partner, purpose, interaction and resource type.

//!
//! Order of evaluation (the one place the semantics live; policies/README.md
//! says the same in words):
//! 1. unknown or inactive partner: deny; capabilities: permit;
//! 2. the first grant (agreements in file-name order, grants in file order)
//!    of an agreement in force that covers partner, purpose (the
//!    agreement's, and the grant's own `purposes` if it lists any), type and
//!    interaction; none: deny, explained by the closest agreement. That one
//!    grant's obligations apply: grants are not merged (`accord policy
//!    check` warns when two agreements in force grant the same partner,
//!    purpose and type with different obligations);
//! 3. a forbid (of any agreement not in draft) matching the request without
//!    naming categories: deny — forbids win over grants;
//! 4. a search or history without a patient needs `population_search`:
//!    carried as an obligation and enforced where searches are narrowed
//!    (the gateway's narrow phase, which knows every spelling of a patient
//!    search); [`PolicySet::decide_with_narrowing`] applies it for the tools;
//! 5. a known patient outside a listed cohort: deny;
//! 6. a known patient whose consent in force denies this partner and
//!    purpose: deny — an opt-out wins over grants;
//! 7. permit, with the grant's obligations (cohort, constraints, redactions,
//!    categories less those forbidden, caps) and the rules that produced it.

use std::collections::BTreeSet;
use std::fmt;

use accord_fhir::{InteractionKind, Purpose, ResourceType};
use time::OffsetDateTime;

use crate::PolicySet;
use crate::agreement::{Agreement, AgreementStatus, Grant};
use crate::consent::{ConsentIndex, ConsentQuery, ConsentRule};
use crate::ids::{AgreementId, GrantId, PartnerId};
use crate::obligations::{Obligations, RuleKind, RuleRef};
use crate::partner::PartnerStatus;

/// What is being asked, in policy terms.
#[derive(Debug, Clone)]
pub struct AccessRequest<'a> {
    pub partner: &'a PartnerId,
    pub purpose: &'a Purpose,
    pub interaction: InteractionKind,
    /// `None` for system-level interactions (system search, history, batch).
    pub resource_type: Option<ResourceType>,
    pub at: OffsetDateTime,
    /// The one patient the request is about (`Patient/123`), when the
    /// request names one: a Patient read, a compartment search, a search
    /// with a single `patient`/`subject`. `None` for a search or history
    /// makes it a population-level request.
    pub patient: Option<String>,
    /// The operation name for `Operation` (`everything`).
    pub operation: Option<&'a str>,
}

/// The outcome of [`PolicySet::decide`], with the rule that produced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Permit(Permit),
    Deny(Deny),
}

/// What permits the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Permit {
    /// The CapabilityStatement describes the server, not patients: any
    /// active partner may read it.
    Capabilities,
    /// A grant of an agreement in force.
    Grant {
        agreement: AgreementId,
        agreement_version: u32,
        grant: GrantId,
        /// What the gateway must still do: narrow, filter, redact, count.
        obligations: Box<Obligations>,
    },
}

/// Why the request is denied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deny {
    pub reason: DenyReason,
}

/// The most specific reason nothing permits the request.
///
/// When several agreements come close, the one that got furthest (status,
/// then term, purpose, resource type, interaction) explains the denial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DenyReason {
    UnknownPartner,
    PartnerNotActive {
        status: PartnerStatus,
    },
    SystemLevel,
    NoAgreement,
    AgreementNotActive {
        agreement: AgreementId,
        version: u32,
        status: AgreementStatus,
    },
    OutsideTerm {
        agreement: AgreementId,
        version: u32,
    },
    PurposeNotPermitted {
        agreement: AgreementId,
        version: u32,
    },
    ResourceTypeNotGranted {
        agreement: AgreementId,
        version: u32,
    },
    InteractionNotGranted {
        agreement: AgreementId,
        version: u32,
    },
    Forbidden {
        agreement: AgreementId,
        version: u32,
        forbid: GrantId,
        reason: String,
    },
    PopulationSearchNotGranted {
        agreement: AgreementId,
        version: u32,
        grant: GrantId,
    },
    OutsideCohort {
        agreement: AgreementId,
        version: u32,
        cohort: String,
    },
    PatientOptedOut {
        consent: String,
    },
}

// === impl Decision ===

impl Decision {
    pub fn is_permit(&self) -> bool {
        matches!(self, Decision::Permit(_))
    }

    /// The obligations of a permit through a grant.
    pub fn obligations(&self) -> Option<&Obligations> {
        match self {
            Decision::Permit(Permit::Grant { obligations, .. }) => Some(obligations),
            _ => None,
        }
    }

    /// A short, stable description of the rule, for audit records and logs.
    pub fn rule(&self) -> String {
        match self {
            Decision::Permit(Permit::Capabilities) => {
                "permit: capabilities carry no patient data".to_owned()
            }
            Decision::Permit(Permit::Grant {
                agreement,
                agreement_version,
                grant,
                ..
            }) => format!("permit: agreement `{agreement}` v{agreement_version} grant `{grant}`"),
            Decision::Deny(d) => format!("deny: {}", d.reason),
        }
    }
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DenyReason::UnknownPartner => f.write_str("partner is not in partners.toml"),
            DenyReason::PartnerNotActive { status } => {
                write!(f, "partner is {}", status.as_str())
            }
            DenyReason::SystemLevel => {
                f.write_str("system-level interactions are not granted by any agreement")
            }
            DenyReason::NoAgreement => f.write_str("no agreement names this partner as recipient"),
            DenyReason::AgreementNotActive {
                agreement,
                version,
                status,
            } => {
                write!(
                    f,
                    "agreement `{agreement}` v{version} is {}",
                    status.as_str()
                )
            }
            DenyReason::OutsideTerm { agreement, version } => {
                write!(f, "agreement `{agreement}` v{version} is not in its term")
            }
            DenyReason::PurposeNotPermitted { agreement, version } => {
                write!(
                    f,
                    "agreement `{agreement}` v{version} does not permit this purpose of use"
                )
            }
            DenyReason::ResourceTypeNotGranted { agreement, version } => {
                write!(
                    f,
                    "agreement `{agreement}` v{version} grants this partner no access to this resource type"
                )
            }
            DenyReason::InteractionNotGranted { agreement, version } => {
                write!(
                    f,
                    "agreement `{agreement}` v{version} does not grant this interaction on this resource type"
                )
            }
            DenyReason::Forbidden {
                agreement,
                version,
                forbid,
                reason,
            } => write!(
                f,
                "forbidden by agreement `{agreement}` v{version} rule `{forbid}`: {reason}"
            ),
            DenyReason::PopulationSearchNotGranted {
                agreement,
                version,
                grant,
            } => write!(
                f,
                "agreement `{agreement}` v{version} grant `{grant}` does not allow searches without a patient"
            ),
            DenyReason::OutsideCohort {
                agreement,
                version,
                cohort,
            } => write!(
                f,
                "the patient is not in cohort `{cohort}` of agreement `{agreement}` v{version}"
            ),
            DenyReason::PatientOptedOut { consent } => {
                write!(
                    f,
                    "the patient's consent `{consent}` does not permit this disclosure"
                )
            }
        }
    }
}

// === impl PolicySet ===

impl PolicySet {
    /// Decides `request` against the policies and the consents loaded with
    /// them. Pure: same policies, same request, same answer.
    pub fn decide(&self, request: &AccessRequest<'_>) -> Decision {
        self.decide_with(request, &self.consents)
    }

    /// Decides `request` with a consent index kept apart from the policy
    /// set (consents change more often than agreements). Pure.
    pub fn decide_with(&self, request: &AccessRequest<'_>, consents: &ConsentIndex) -> Decision {
        let deny = |reason| Decision::Deny(Deny { reason });
        let Some(partner) = self.partner(request.partner) else {
            return deny(DenyReason::UnknownPartner);
        };
        if partner.status != PartnerStatus::Active {
            return deny(DenyReason::PartnerNotActive {
                status: partner.status,
            });
        }
        if request.interaction == InteractionKind::Capabilities {
            return Decision::Permit(Permit::Capabilities);
        }
        let Some(ty) = request.resource_type else {
            return deny(DenyReason::SystemLevel);
        };

        let (agreement, grant) = match self.first_grant_in_force(request, ty) {
            Some(found) => found,
            // Nothing permits: evaluate the partner's agreements one by one
            // to find the one that came closest, to say why.
            None => match self.closest_agreement(request, ty) {
                Ok(found) => found,
                Err(reason) => return deny(reason),
            },
        };

        let mut rules = vec![RuleRef::grant(agreement, grant)];
        let mut withheld = BTreeSet::new();
        for (forbidding, forbid) in self.forbids_for(request.partner) {
            // Found through the per-recipient index: the recipient matches.
            if !forbid.matches_request(ty, request.interaction, request.purpose) {
                continue;
            }
            if forbid.sensitive.is_empty() {
                return deny(DenyReason::Forbidden {
                    agreement: forbidding.id.clone(),
                    version: forbidding.version,
                    forbid: forbid.id.clone(),
                    reason: forbid.reason.clone(),
                });
            }
            // Each withheld category is attributed to the first forbid that
            // withholds it: a network of agreements repeating the same
            // forbid names it once, not once per agreement.
            let mut adds = false;
            for category in &forbid.sensitive {
                if !withheld.contains(category) {
                    withheld.insert(category.clone());
                    adds = true;
                }
            }
            if adds {
                rules.push(RuleRef::forbid(forbidding, forbid));
            }
        }
        if let (Some(patient), Some(cohort)) = (&request.patient, &grant.cohort) {
            let inside = self.cohorts.get(cohort).and_then(|c| c.contains(patient));
            if inside == Some(false) {
                return deny(DenyReason::OutsideCohort {
                    agreement: agreement.id.clone(),
                    version: agreement.version,
                    cohort: cohort.to_string(),
                });
            }
        }
        if let Some(patient) = &request.patient {
            let query = ConsentQuery {
                partner: request.partner,
                purpose: request.purpose,
                at: request.at,
            };
            let answer = consents.general(patient, &query);
            if let Some(consent) = answer.consent {
                if answer.rule == ConsentRule::Deny {
                    return deny(DenyReason::PatientOptedOut { consent });
                }
                rules.push(RuleRef {
                    kind: RuleKind::Consent,
                    file: consents
                        .current(patient, request.at)
                        .map(|c| c.source.clone())
                        .unwrap_or_default(),
                    agreement: None,
                    version: None,
                    rule: consent,
                });
            }
        }
        let obligations = Obligations::of(
            self,
            (request.partner, request.purpose),
            agreement,
            grant,
            withheld,
            rules,
        );
        Decision::Permit(Permit::Grant {
            agreement: agreement.id.clone(),
            agreement_version: agreement.version,
            grant: grant.id.clone(),
            obligations: Box::new(obligations),
        })
    }

    /// [`PolicySet::decide_with`] plus the narrowing rule the gateway applies
    /// right after it: a population-level search under a grant without
    /// `population_search` is refused. What `explain`, `test` and `diff`
    /// report, so they agree with what a partner sees.
    pub fn decide_with_narrowing(
        &self,
        request: &AccessRequest<'_>,
        consents: &ConsentIndex,
    ) -> Decision {
        let decision = self.decide_with(request, consents);
        match &decision {
            Decision::Permit(Permit::Grant {
                agreement,
                agreement_version,
                grant,
                obligations,
            }) if request.is_population_level() && !obligations.population_search => {
                Decision::Deny(Deny {
                    reason: DenyReason::PopulationSearchNotGranted {
                        agreement: agreement.clone(),
                        version: *agreement_version,
                        grant: grant.clone(),
                    },
                })
            }
            _ => decision,
        }
    }

    /// The first grant (agreement file order, then grant order) of an
    /// agreement in force that covers the request, through the index by
    /// recipient, purpose and type: the same answer as evaluating every
    /// agreement of the recipient in order, without visiting the ones that
    /// grant it nothing for this purpose and type.
    fn first_grant_in_force<'a>(
        &'a self,
        request: &AccessRequest<'_>,
        ty: ResourceType,
    ) -> Option<(&'a Agreement, &'a Grant)> {
        let candidates = self
            .grant_index
            .get(request.partner)?
            .get(&(request.purpose.clone(), ty))?;
        candidates.iter().find_map(|(a, g)| {
            let agreement = self.agreements.get(usize::try_from(*a).ok()?)?;
            let grant = agreement.grants.get(usize::try_from(*g).ok()?)?;
            (agreement.in_force(request.at)
                && grant.covers_interaction(request.interaction, request.operation))
            .then_some((agreement, grant))
        })
    }

    /// The slow path: every agreement of the partner in order; the first
    /// that permits (the index already said none does), else the reason of
    /// the one that came closest.
    fn closest_agreement<'a>(
        &'a self,
        request: &AccessRequest<'_>,
        ty: ResourceType,
    ) -> Result<(&'a Agreement, &'a Grant), DenyReason> {
        let mut closest: Option<(u8, DenyReason)> = None;
        for agreement in self.agreements_for(request.partner) {
            match evaluate(agreement, request, ty) {
                Ok(grant) => return Ok((agreement, grant)),
                Err((rank, reason)) => {
                    if closest.as_ref().is_none_or(|(best, _)| rank > *best) {
                        closest = Some((rank, reason));
                    }
                }
            }
        }
        Err(closest.map_or(DenyReason::NoAgreement, |(_, reason)| reason))
    }

    /// Agreements with a grant naming `partner` as a recipient, in
    /// file-name order.
    fn agreements_for<'a>(&'a self, partner: &PartnerId) -> impl Iterator<Item = &'a Agreement> {
        self.by_recipient
            .get(partner)
            .into_iter()
            .flatten()
            .filter_map(|i| self.agreements.get(*i))
    }

    /// Every forbid that binds `partner`, with its agreement.
    fn forbids_for<'a>(
        &'a self,
        partner: &PartnerId,
    ) -> impl Iterator<Item = (&'a Agreement, &'a crate::agreement::Forbid)> {
        self.forbid_index
            .get(partner)
            .into_iter()
            .flatten()
            .filter_map(|(a, f)| {
                let agreement = self.agreements.get(*a)?;
                Some((agreement, agreement.forbids.get(*f)?))
            })
    }
}

/// Checks one agreement; on failure returns how close it came (higher is
/// closer) and why it does not permit.
///
/// Closeness weighs what the agreement is *about* first: an agreement whose
/// grant covers this type and interaction but is suspended explains a denial
/// better than an unrelated agreement that merely lacks the purpose.
fn evaluate<'g>(
    agreement: &'g Agreement,
    request: &AccessRequest<'_>,
    ty: ResourceType,
) -> Result<&'g Grant, (u8, DenyReason)> {
    let version = agreement.version;
    let grants = || {
        agreement
            .grants
            .iter()
            .filter(|g| g.covers_recipient(request.partner) && g.resources.contains(&ty))
    };
    let matching_grant = grants().find(|g| {
        g.covers_purpose(request.purpose)
            && g.covers_interaction(request.interaction, request.operation)
    });
    let type_granted = grants().next().is_some();
    let active = agreement.status == AgreementStatus::Active;
    let in_term = agreement.term.contains(request.at);
    // A grant limited to other purposes is, for this request, a purpose the
    // agreement does not permit.
    let purpose_ok = agreement.purposes.contains(request.purpose)
        && (!type_granted || grants().any(|g| g.covers_purpose(request.purpose)));

    let closeness = 8 * u8::from(type_granted)
        + 8 * u8::from(matching_grant.is_some())
        + 4 * u8::from(purpose_ok)
        + 2 * u8::from(in_term)
        + u8::from(active);
    let agreement_id = || agreement.id.clone();
    let reason = if !active {
        DenyReason::AgreementNotActive {
            agreement: agreement_id(),
            version,
            status: agreement.status,
        }
    } else if !in_term {
        DenyReason::OutsideTerm {
            agreement: agreement_id(),
            version,
        }
    } else if !purpose_ok {
        DenyReason::PurposeNotPermitted {
            agreement: agreement_id(),
            version,
        }
    } else if let Some(grant) = matching_grant {
        return Ok(grant);
    } else if type_granted {
        DenyReason::InteractionNotGranted {
            agreement: agreement_id(),
            version,
        }
    } else {
        DenyReason::ResourceTypeNotGranted {
            agreement: agreement_id(),
            version,
        }
    };
    Err((closeness, reason))
}

mod request;

#[cfg(test)]
mod tests;
