//! The lines of an explanation: partner, agreements, forbids, patient and
//! consent, each as the decision read it.

use accord_fhir::{InteractionKind, ResourceType};

use crate::PolicySet;
use crate::consent::{ConsentIndex, ConsentQuery, ConsentRule};
use crate::decide::AccessRequest;
use crate::ids::CategoryId;
use crate::obligations::Obligations;
use crate::render::{day, last_day};

// === impl PolicySet ===

impl PolicySet {
    /// Partner, agreements and forbids, as the decision weighs them.
    pub(super) fn agreement_steps(&self, access: &AccessRequest<'_>, steps: &mut Vec<String>) {
        let partner = access.partner;
        match self.partner(partner) {
            None => steps.push(format!("`{partner}` is not a partner in partners.toml")),
            Some(p) => steps.push(format!(
                "partner `{partner}` ({}) is {}",
                p.name,
                p.status.as_str()
            )),
        }
        let Some(ty) = access.resource_type else {
            return;
        };
        let mut any = false;
        for agreement in self.agreements() {
            let grants: Vec<_> = agreement
                .grants
                .iter()
                .filter(|g| g.covers_recipient(partner))
                .collect();
            if grants.is_empty() {
                continue;
            }
            any = true;
            let mut line = format!(
                "agreement `{}` v{} ({}): {}",
                agreement.id,
                agreement.version,
                agreement.source,
                agreement.status.as_str()
            );
            if !agreement.term.contains(access.at) {
                line.push_str(&format!(
                    ", outside its term ({} to {})",
                    day(agreement.term.effective),
                    last_day(agreement.term.expires)
                ));
            }
            if !agreement.purposes.contains(access.purpose) {
                line.push_str(&format!(
                    ", does not list purpose {}",
                    access.purpose.as_str()
                ));
            }
            for g in grants {
                line.push_str(&format!(
                    "; grant `{}` {}",
                    g.id,
                    grant_words(g, access, ty)
                ));
            }
            steps.push(line);
        }
        if !any {
            steps.push(format!("no agreement names `{partner}` as a recipient"));
        }
        self.forbid_steps(access, ty, steps);
    }

    fn forbid_steps(&self, access: &AccessRequest<'_>, ty: ResourceType, steps: &mut Vec<String>) {
        for agreement in self.agreements().iter().filter(|a| a.forbids_apply()) {
            for f in &agreement.forbids {
                if !f.matches(access.partner, ty, access.interaction, access.purpose) {
                    continue;
                }
                let effect = if f.sensitive.is_empty() {
                    " — the request is denied".to_owned()
                } else {
                    format!(" — withholds {}", quoted(f.sensitive.iter()))
                };
                steps.push(format!(
                    "forbid `{}` of agreement `{}` applies: {}{effect}",
                    f.id, agreement.id, f.reason
                ));
            }
        }
    }

    /// The patient's consent, read as the gateway reads it: the general
    /// rule for the partner and purpose, then each consent-only category
    /// the grant names. Returns the categories withheld for this patient.
    pub(super) fn consent_steps(
        &self,
        patient: &str,
        access: &AccessRequest<'_>,
        consents: &ConsentIndex,
        obligations: Option<&Obligations>,
        steps: &mut Vec<String>,
    ) -> Vec<(CategoryId, String)> {
        let (partner, purpose) = (access.partner, access.purpose);
        let q = ConsentQuery {
            partner,
            purpose,
            at: access.at,
        };
        let current = consents.current(patient, access.at);
        match current {
            None => steps.push(format!(
                "{patient} has no consent in force: the general record follows the agreements; consent-only categories (42 CFR Part 2) stay withheld"
            )),
            Some(c) => {
                let general = consents.general(patient, &q);
                steps.push(format!(
                    "{patient}'s consent in force is {} ({}, dated {}): for {} its general rule {} `{partner}`",
                    c.id,
                    c.source,
                    day(c.date_time),
                    purpose.as_str(),
                    permits(general.rule),
                ));
            }
        }
        let mut withheld = Vec::new();
        let granted =
            |id: &CategoryId| obligations.is_none_or(|o| o.sensitive_allowed.contains(id));
        for category in self
            .categories()
            .filter(|c| c.requires_consent && granted(&c.id))
        {
            let answer = consents.for_labels(patient, &category.security_labels, &q);
            let name = format!("`{}` ({})", category.id, category.name);
            match (answer.rule, &answer.consent) {
                (ConsentRule::Permit, Some(consent)) => steps.push(format!(
                    "{consent} permits {name} to `{partner}` for {}",
                    purpose.as_str()
                )),
                (_, Some(consent)) => {
                    steps.push(format!(
                        "{consent} does not permit {name} to `{partner}` for {}: that data is withheld",
                        purpose.as_str()
                    ));
                    withheld.push((category.id.clone(), format!("{consent} does not permit it")));
                }
                (_, None) => withheld.push((
                    category.id.clone(),
                    "no consent of the patient permits it".to_owned(),
                )),
            }
        }
        withheld
    }
}

fn permits(rule: ConsentRule) -> &'static str {
    if rule == ConsentRule::Permit {
        "permits"
    } else {
        "denies"
    }
}

fn grant_words(
    g: &crate::agreement::Grant,
    access: &AccessRequest<'_>,
    ty: ResourceType,
) -> String {
    let types = g.resources.contains(&ty);
    let interaction = g.covers_interaction(access.interaction, access.operation);
    let purpose = g.covers_purpose(access.purpose);
    match (types, interaction, purpose) {
        (true, true, true) => "covers this type and interaction".to_owned(),
        (true, true, false) => format!("covers {ty} but not purpose {}", access.purpose.as_str()),
        (true, false, _) => format!(
            "covers {ty} but not `{}`",
            interaction_name(access.interaction, access.operation)
        ),
        _ => format!("does not cover {ty}"),
    }
}

pub(super) fn interaction_name(kind: InteractionKind, operation: Option<&str>) -> String {
    match (kind, operation) {
        (InteractionKind::Operation, Some(op)) => format!("${op}"),
        _ => kind.as_str().to_owned(),
    }
}

pub(super) fn quoted<T: std::fmt::Display>(items: impl Iterator<Item = T>) -> String {
    items
        .map(|c| format!("`{c}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
