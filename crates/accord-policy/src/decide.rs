//! The decision: default deny; permit only through a grant of an agreement in
//! force that covers this partner, purpose, interaction and resource type.

use std::fmt;

use accord_fhir::{InteractionKind, Purpose, ResourceType};
use time::OffsetDateTime;

use crate::PolicySet;
use crate::agreement::{Agreement, AgreementStatus};
use crate::ids::{AgreementId, GrantId, PartnerId};
use crate::partner::PartnerStatus;

/// What is being asked, in policy terms.
#[derive(Debug, Clone, Copy)]
pub struct AccessRequest<'a> {
    pub partner: &'a PartnerId,
    pub purpose: &'a Purpose,
    pub interaction: InteractionKind,
    /// `None` for system-level interactions (system search, history, batch).
    pub resource_type: Option<ResourceType>,
    pub at: OffsetDateTime,
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
}

// === impl Decision ===

impl Decision {
    pub fn is_permit(&self) -> bool {
        matches!(self, Decision::Permit(_))
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
        }
    }
}

// === impl PolicySet ===

impl PolicySet {
    /// Decides `request`. Pure: same policies, same request, same answer.
    pub fn decide(&self, request: &AccessRequest<'_>) -> Decision {
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

        let mut closest: Option<(u8, DenyReason)> = None;
        for agreement in self.agreements_for(request.partner) {
            match evaluate(agreement, request, ty) {
                Ok(permit) => return Decision::Permit(permit),
                Err((rank, reason)) => {
                    if closest.as_ref().is_none_or(|(best, _)| rank > *best) {
                        closest = Some((rank, reason));
                    }
                }
            }
        }
        deny(closest.map_or(DenyReason::NoAgreement, |(_, reason)| reason))
    }

    /// Agreements with a grant naming `partner` as a recipient.
    fn agreements_for<'a>(&'a self, partner: &'a PartnerId) -> impl Iterator<Item = &'a Agreement> {
        self.agreements
            .iter()
            .filter(move |a| a.grants.iter().any(|g| g.covers_recipient(partner)))
    }
}

/// Checks one agreement; on failure returns how close it came (higher is
/// closer) and why it does not permit.
///
/// Closeness weighs what the agreement is *about* first: an agreement whose
/// grant covers this type and interaction but is suspended explains a denial
/// better than an unrelated agreement that merely lacks the purpose.
fn evaluate(
    agreement: &Agreement,
    request: &AccessRequest<'_>,
    ty: ResourceType,
) -> Result<Permit, (u8, DenyReason)> {
    let agreement_id = agreement.id.clone();
    let version = agreement.version;
    let grants = || {
        agreement
            .grants
            .iter()
            .filter(|g| g.covers_recipient(request.partner) && g.resources.contains(&ty))
    };
    let matching_grant = grants().find(|g| g.interactions.contains(&request.interaction));
    let type_granted = grants().next().is_some();
    let active = agreement.status == AgreementStatus::Active;
    let in_term = agreement.term.contains(request.at);
    let purpose_ok = agreement.purposes.contains(request.purpose);

    let closeness = 8 * u8::from(type_granted)
        + 8 * u8::from(matching_grant.is_some())
        + 4 * u8::from(purpose_ok)
        + 2 * u8::from(in_term)
        + u8::from(active);
    let reason = if !active {
        DenyReason::AgreementNotActive {
            agreement: agreement_id,
            version,
            status: agreement.status,
        }
    } else if !in_term {
        DenyReason::OutsideTerm {
            agreement: agreement_id,
            version,
        }
    } else if !purpose_ok {
        DenyReason::PurposeNotPermitted {
            agreement: agreement_id,
            version,
        }
    } else if let Some(grant) = matching_grant {
        return Ok(Permit::Grant {
            agreement: agreement_id,
            agreement_version: version,
            grant: grant.id.clone(),
        });
    } else if type_granted {
        DenyReason::InteractionNotGranted {
            agreement: agreement_id,
            version,
        }
    } else {
        DenyReason::ResourceTypeNotGranted {
            agreement: agreement_id,
            version,
        }
    };
    Err((closeness, reason))
}

#[cfg(test)]
mod tests;
