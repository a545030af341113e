//! `accord policy explain`: a decision, rule by rule, in plain words.
//!
//! It runs the gateway's own calls ([`PolicySet::decide_known`], then
//! [`PolicySet::release_records`] on the patient's resources when it has
//! them) and names every fact it could not know — referral membership
//! without an upstream, the resources themselves without a population —
//! rather than guessing.

use std::collections::BTreeMap;

use accord_fhir::{FhirRequest, Interaction, Method, Purpose};
use serde::Serialize;
use time::OffsetDateTime;

use crate::PolicySet;
use crate::consent::ConsentIndex;
use crate::decide::{AccessRequest, Decision, Permit};
use crate::ids::PartnerId;
use crate::obligations::{Obligations, WithholdReason};
use crate::outcome::Referral;
use crate::population::{Population, Record};
use crate::referral::ReferralEvidence;

mod steps;

/// What the caller knows beyond the policy files.
#[derive(Debug, Clone, Copy, Default)]
pub struct Known<'a> {
    /// Resources to check as the filter would (`--fixtures DIR`).
    pub population: Option<&'a Population>,
    /// Referrals to resolve referral cohorts (`--upstream URL`, or the
    /// population's own).
    pub referrals: Option<&'a ReferralEvidence>,
}

/// A decision with the reasoning that led to it.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub request: String,
    pub partner: String,
    pub purpose: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub policy_version: String,
    /// `permit`, `deny`, or `unknown` when it depends on a fact named in
    /// `unknowns`.
    pub decision: &'static str,
    /// The decision's rule, as audit records write it.
    pub rule: String,
    /// One line per agreement, forbid, cohort and consent considered.
    pub steps: Vec<String>,
    /// Facts the explanation could not know, and how to supply them.
    pub unknowns: Vec<String>,
    /// With a population: each of the patient's resources and its verdict.
    pub resources: Vec<String>,
    /// Sensitive categories the grant names but this patient's consent
    /// keeps from the partner, with why.
    pub sensitive_withheld: BTreeMap<String, String>,
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

/// The referral-membership unknown, in the words `explain` prints.
pub const REFERRAL_UNKNOWN: &str =
    "referral membership: unknown without the upstream — pass --upstream URL to look it up";

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
    #[expect(clippy::too_many_arguments, reason = "the request's parts, as typed")]
    pub fn explain(
        &self,
        line: &str,
        partner: &PartnerId,
        purpose: &Purpose,
        request: &FhirRequest,
        at: OffsetDateTime,
        consents: &ConsentIndex,
        known: Known<'_>,
    ) -> Explanation {
        let mut access = AccessRequest::from_fhir(partner, purpose, request, at);
        // A read of one resource: the population says whose it is.
        let record = read_key(request).and_then(|k| known.population?.record(&k));
        if access.patient.is_none()
            && let Some([one]) = record.map(|r| r.facts.patients.as_slice())
        {
            access.patient = Some(one.clone());
        }
        let referrals = known
            .referrals
            .or_else(|| known.population.map(Population::referrals));
        let (decision, referral) = self.decide_known(&access, consents, referrals);
        let mut steps = Vec::new();
        let mut unknowns = Vec::new();
        self.agreement_steps(&access, &mut steps);
        let obligations = decision.obligations();
        let mut sensitive_withheld = BTreeMap::new();
        match &access.patient {
            Some(patient) => {
                steps.push(format!("the request is about {patient}"));
                let withheld =
                    self.consent_steps(patient, &access, consents, obligations, &mut steps);
                if obligations.is_some() {
                    sensitive_withheld = withheld
                        .into_iter()
                        .map(|(c, why)| (c.to_string(), why))
                        .collect();
                }
                match referral {
                    Referral::Member => steps.push(format!(
                        "{patient} has a referral between the parties: inside the referral cohort"
                    )),
                    Referral::NotMember => steps.push(format!(
                        "{patient} has no referral between the parties: outside the referral cohort"
                    )),
                    Referral::Unknown => unknowns.push(REFERRAL_UNKNOWN.to_owned()),
                    Referral::NotAsked => {}
                }
            }
            None if access.is_population_level() => {
                steps.push(
                    "the request names no patient: it is a population-level search".to_owned(),
                );
                if let Some(o) = obligations
                    && self.referral(o, "", None) == Referral::Unknown
                {
                    unknowns.push(format!(
                        "which patients are in cohort `{}`: {REFERRAL_UNKNOWN}",
                        o.cohort
                            .as_ref()
                            .map(ToString::to_string)
                            .unwrap_or_default()
                    ));
                }
            }
            None => {}
        }
        let resources = match (obligations, known.population) {
            (Some(o), Some(population)) => {
                let records = self.records_for(&access, record, population);
                resource_lines(self, o, &records, consents, at, referrals)
            }
            (Some(_), None) => {
                unknowns.push(
                    "the resources themselves: not read — each is still checked for cohort, consent and sensitive codes or labels (pass --fixtures DIR to check a population's)".to_owned(),
                );
                Vec::new()
            }
            _ => Vec::new(),
        };
        if matches!(decision, Decision::Permit(Permit::Capabilities)) {
            steps.push("the CapabilityStatement holds no patient data".to_owned());
        }
        let verdict = match (&decision, referral) {
            (Decision::Deny(_), _) => "deny",
            (_, Referral::Unknown) => "unknown",
            _ => "permit",
        };
        Explanation {
            request: line.to_owned(),
            partner: partner.to_string(),
            purpose: purpose.as_str().to_owned(),
            at,
            policy_version: self.version().to_string(),
            decision: verdict,
            rule: decision.rule(),
            steps,
            unknowns,
            resources,
            sensitive_withheld,
            obligations: obligations.cloned(),
        }
    }

    /// The records a request reaches in the population: the one read, or
    /// the patient's resources of the requested type.
    fn records_for(
        &self,
        access: &AccessRequest<'_>,
        record: Option<&Record>,
        population: &Population,
    ) -> Vec<Record> {
        if let Some(r) = record {
            return vec![r.clone()];
        }
        match (&access.patient, access.resource_type) {
            (Some(p), Some(ty)) => population.records(p, ty).to_vec(),
            _ => Vec::new(),
        }
    }
}

/// `Type/id` of a read or vread.
fn read_key(request: &FhirRequest) -> Option<String> {
    match &request.interaction {
        Interaction::Read { ty, id } | Interaction::VRead { ty, id, .. } => {
            Some(format!("{ty}/{id}"))
        }
        _ => None,
    }
}

fn resource_lines(
    set: &PolicySet,
    obligations: &Obligations,
    records: &[Record],
    consents: &ConsentIndex,
    at: OffsetDateTime,
    referrals: Option<&ReferralEvidence>,
) -> Vec<String> {
    let access = set.release_records(obligations, records, consents, at, referrals);
    let mut lines = Vec::new();
    for record in records {
        let line = match access.withheld.get(&record.key) {
            Some(reason) => format!("{}: withheld — {}", record.key, withhold_words(reason)),
            None => format!("{}: released", record.key),
        };
        lines.push(line);
    }
    if records.is_empty() {
        lines.push("no matching resources in the population".to_owned());
    }
    lines
}

/// A withhold reason in words.
pub fn withhold_words(reason: &WithholdReason) -> String {
    match reason {
        WithholdReason::TypeNotGranted => "its type is not granted".to_owned(),
        WithholdReason::OutsideCohort => "its patient is outside the grant's cohort".to_owned(),
        WithholdReason::CohortUnresolved => {
            format!("cohort membership unknown ({REFERRAL_UNKNOWN})")
        }
        WithholdReason::PatientOptedOut { consent } => {
            format!("the patient's consent {consent} does not permit this disclosure")
        }
        WithholdReason::SensitiveNotGranted { category } => {
            format!("sensitive category `{category}` is not named by the grant")
        }
        WithholdReason::SensitiveForbidden { category } => {
            format!("sensitive category `{category}` is forbidden")
        }
        WithholdReason::SensitiveWithoutConsent { category } => {
            format!(
                "sensitive category `{category}` needs the patient's consent, which does not permit it"
            )
        }
        WithholdReason::MedicationUnknown => {
            "its medication is named by a reference that could not be read".to_owned()
        }
        WithholdReason::Unclassified => {
            "none of its codes is in a code system the sensitivity tables cover".to_owned()
        }
        WithholdReason::OtherSource { source } => {
            format!("it is `{source}`'s record, and the grant shares another member's records only")
        }
        WithholdReason::SourceUndetermined => {
            "whose record it is cannot be told, and the grant shares one member's records only"
                .to_owned()
        }
    }
}

// === impl Explanation ===

impl Explanation {
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
        if !self.unknowns.is_empty() {
            out.push_str("\nnot known here:\n");
            for u in &self.unknowns {
                out.push_str(&format!("  - {u}\n"));
            }
        }
        if !self.resources.is_empty() {
            out.push_str("\nresources:\n");
            for r in &self.resources {
                out.push_str(&format!("  - {r}\n"));
            }
        }
        out.push_str(&format!("\n=> {}\n", self.decision.to_uppercase()));
        if self.decision == "unknown" {
            out.push_str(
                "   the agreements permit it only for patients in the referral cohort; the gateway withholds everything of a patient it cannot place\n",
            );
        }
        out.push_str(&format!("   {}\n", self.rule));
        if let Some(o) = &self.obligations {
            out.push_str(&crate::render::obligations_text(
                o,
                &self.sensitive_withheld,
            ));
        }
        out
    }
}
