//! `accord policy explain`: a decision, rule by rule, in plain words.

use accord_fhir::{FhirRequest, InteractionKind, Method, Purpose};
use serde::Serialize;
use time::OffsetDateTime;

use crate::PolicySet;
use crate::consent::{ConsentIndex, ConsentQuery, ConsentRule};
use crate::decide::{AccessRequest, Decision, Permit};
use crate::ids::PartnerId;
use crate::obligations::Obligations;

/// A decision with the reasoning that led to it.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub request: String,
    pub partner: String,
    pub purpose: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub policy_version: String,
    /// `permit` or `deny`.
    pub decision: &'static str,
    /// The decision's rule, as audit records write it.
    pub rule: String,
    /// One line per agreement, forbid, cohort and consent considered.
    pub steps: Vec<String>,
    pub obligations: Option<Obligations>,
}

/// Why a request line could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestLineError {
    #[error(
        "write the request as `METHOD /path?query`, e.g. `GET /Observation?patient=Patient/123`"
    )]
    Shape,
    #[error("unknown method `{0}` (GET, POST, PUT, PATCH, DELETE)")]
    Method(String),
    #[error("{0}")]
    Fhir(#[from] accord_fhir::RequestError),
}

/// Parses `GET /Observation?patient=Patient/123`.
pub fn parse_request_line(line: &str) -> Result<FhirRequest, RequestLineError> {
    let (method, target) = line.trim().split_once(' ').ok_or(RequestLineError::Shape)?;
    let method = match method.to_ascii_uppercase().as_str() {
        "GET" => Method::Get,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "PATCH" => Method::Patch,
        "DELETE" => Method::Delete,
        other => return Err(RequestLineError::Method(other.to_owned())),
    };
    let target = target.trim().trim_start_matches('/');
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    Ok(FhirRequest::parse(method, path, query, None)?)
}

// === impl PolicySet ===

impl PolicySet {
    /// Explains the decision on `request` (the line as typed, for display).
    pub fn explain(
        &self,
        line: &str,
        partner: &PartnerId,
        purpose: &Purpose,
        request: &FhirRequest,
        at: OffsetDateTime,
        consents: &ConsentIndex,
    ) -> Explanation {
        let access = AccessRequest::from_fhir(partner, purpose, request, at);
        let decision = self.decide_with_narrowing(&access, consents);
        let mut steps = Vec::new();
        match self.partner(partner) {
            None => steps.push(format!("`{partner}` is not a partner in partners.toml")),
            Some(p) => steps.push(format!(
                "partner `{partner}` ({}) is {}",
                p.name,
                p.status.as_str()
            )),
        }
        if let Some(ty) = access.resource_type {
            let mut any = false;
            for agreement in &self.agreements {
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
                if !agreement.term.contains(at) {
                    line.push_str(&format!(
                        ", outside its term ({} to {})",
                        crate::render::day(agreement.term.effective),
                        crate::render::last_day(agreement.term.expires)
                    ));
                }
                if !agreement.purposes.contains(purpose) {
                    line.push_str(&format!(", does not list purpose {}", purpose.as_str()));
                }
                for g in grants {
                    let types = g.resources.contains(&ty);
                    let interaction = g.covers_interaction(access.interaction, access.operation);
                    line.push_str(&format!(
                        "; grant `{}` {}",
                        g.id,
                        match (types, interaction) {
                            (true, true) => "covers this type and interaction".to_owned(),
                            (true, false) => format!(
                                "covers {ty} but not `{}`",
                                interaction_name(access.interaction, access.operation)
                            ),
                            _ => format!("does not cover {ty}"),
                        }
                    ));
                }
                steps.push(line);
            }
            if !any {
                steps.push(format!("no agreement names `{partner}` as a recipient"));
            }
            for agreement in self.agreements.iter().filter(|a| a.forbids_apply()) {
                for f in &agreement.forbids {
                    if f.matches(partner, ty, access.interaction, purpose) {
                        steps.push(format!(
                            "forbid `{}` of agreement `{}` applies: {}{}",
                            f.id,
                            agreement.id,
                            f.reason,
                            if f.sensitive.is_empty() {
                                " — the request is denied".to_owned()
                            } else {
                                format!(
                                    " — withholds {}",
                                    f.sensitive
                                        .iter()
                                        .map(|c| format!("`{c}`"))
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                )
                            }
                        ));
                    }
                }
            }
        }
        match &access.patient {
            Some(patient) => {
                steps.push(format!("the request is about {patient}"));
                let q = ConsentQuery {
                    partner,
                    purpose,
                    at,
                };
                match consents.current(patient, at) {
                    None => steps.push(format!(
                        "{patient} has no consent in force: the general record follows the agreements; consent-only categories (42 CFR Part 2) stay withheld"
                    )),
                    Some(c) => {
                        let general = consents.general(patient, &q);
                        steps.push(format!(
                            "{patient}'s consent in force is {} ({}, dated {}): {} `{partner}` for {}",
                            c.id,
                            c.source,
                            crate::render::day(c.date_time),
                            if general.rule == ConsentRule::Permit { "permits" } else { "denies" },
                            purpose.as_str()
                        ));
                        for category in self.categories.values().filter(|c| c.requires_consent) {
                            let a = consents.for_labels(patient, &category.security_labels, &q);
                            if a.rule == ConsentRule::Permit {
                                steps.push(format!(
                                    "it also permits `{}` ({}) to `{partner}` for {}",
                                    category.id,
                                    category.name,
                                    purpose.as_str()
                                ));
                            }
                        }
                    }
                }
            }
            None if access.is_population_level() => steps
                .push("the request names no patient: it is a population-level search".to_owned()),
            None => {}
        }
        let obligations = decision.obligations().cloned();
        Explanation {
            request: line.to_owned(),
            partner: partner.to_string(),
            purpose: purpose.as_str().to_owned(),
            at,
            policy_version: self.version.to_string(),
            decision: if decision.is_permit() {
                "permit"
            } else {
                "deny"
            },
            rule: decision.rule(),
            steps,
            obligations,
        }
        .with_capabilities_note(&decision)
    }
}

fn interaction_name(kind: InteractionKind, operation: Option<&str>) -> String {
    match (kind, operation) {
        (InteractionKind::Operation, Some(op)) => format!("${op}"),
        _ => kind.as_str().to_owned(),
    }
}

// === impl Explanation ===

impl Explanation {
    fn with_capabilities_note(mut self, decision: &Decision) -> Self {
        if matches!(decision, Decision::Permit(Permit::Capabilities)) {
            self.steps
                .push("the CapabilityStatement holds no patient data".to_owned());
        }
        self
    }

    /// The explanation as text for people.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "{} by {} for {} at {}\npolicy version {}\n\n",
            self.request,
            self.partner,
            self.purpose,
            crate::render::instant(self.at),
            self.policy_version
        );
        for (i, step) in self.steps.iter().enumerate() {
            out.push_str(&format!("  {}. {step}\n", i + 1));
        }
        out.push_str(&format!("\n=> {}\n", self.decision.to_uppercase()));
        out.push_str(&format!("   {}\n", self.rule));
        if let Some(o) = &self.obligations {
            out.push_str(&crate::render::obligations_text(o));
        }
        out
    }
}
