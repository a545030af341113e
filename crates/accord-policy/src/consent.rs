//! Patient consent: FHIR R4 Consent resources (policies/consents/*.json),
//! compiled into an index keyed by patient.
//!
//! Semantics, in one place:
//! - Only `active` consents whose period covers the instant apply; of those,
//!   the most recent (`dateTime`) wins — a new consent replaces the old.
//! - Within a consent the root provision is the base rule and nested
//!   provisions are exceptions to their parent; among the exceptions that
//!   match, **deny overrides permit**.
//! - A provision matches when each of its lists that is present contains the
//!   request's value: `actor` (`Organization/<partner id>` or the partner's
//!   `organization` in partners.toml, see [`ConsentActors`]), `purpose`
//!   (v3 PurposeOfUse), `period`, `securityLabel`.
//! - For the general record, provisions that name security labels are
//!   ignored. For a consent-only category (42 CFR Part 2) only provisions
//!   naming one of the category's labels count: no such permit, no release.
//!   A root provision that names the label is itself that permit (or deny),
//!   for the actors, purposes and period it names.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use accord_fhir::Purpose;
use serde_json::Value;
use time::OffsetDateTime;

use crate::ids::PartnerId;
use crate::sensitivity::Coding;
use crate::source::{PolicyError, SourceFile};
use crate::spans::SpannedDoc;

mod actors;
mod parse;
mod pulled;

pub use actors::{ConsentActors, UnknownActor};
pub(crate) use parse::compile_consent;
pub use pulled::{PulledConsents, RejectedConsent};

/// One compiled Consent resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    /// `Consent/<id>`.
    pub id: String,
    /// `Patient/<id>`.
    pub patient: String,
    pub active: bool,
    pub date_time: OffsetDateTime,
    pub root: Provision,
    pub source: String,
}

/// A provision: a rule and its exceptions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provision {
    pub kind: ConsentRule,
    pub period: Option<(Option<OffsetDateTime>, Option<OffsetDateTime>)>,
    pub actors: BTreeSet<PartnerId>,
    pub purposes: BTreeSet<Purpose>,
    pub labels: BTreeSet<Coding>,
    pub provisions: Vec<Provision>,
}

/// `Consent.provision.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsentRule {
    Permit,
    Deny,
}

/// What the patient's consent says about one disclosure.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConsentAnswer {
    pub rule: ConsentRule,
    /// `Consent/<id>` that decided, `None` when no consent applies.
    pub consent: Option<String>,
}

/// Consents by patient, most recent first. Built off the request path and
/// swapped whole; looking a patient up is one hash probe per layer.
///
/// Two layers: the consents of the policy folder and those pulled from the
/// upstream FHIR server ([`PulledConsents`]). Both are shared (`Arc`), so
/// putting a new pull over a million file consents copies nothing.
#[derive(Debug, Clone, Default)]
pub struct ConsentIndex {
    by_patient: Arc<HashMap<String, Vec<Consent>>>,
    pulled: Arc<PulledConsents>,
}

/// The context a consent is evaluated in.
#[derive(Debug, Clone, Copy)]
pub struct ConsentQuery<'a> {
    pub partner: &'a PartnerId,
    pub purpose: &'a Purpose,
    pub at: OffsetDateTime,
}

/// Consents grouped by patient, each patient's newest first (the order in
/// which they are decided).
pub(crate) fn by_patient_newest_first(
    consents: impl IntoIterator<Item = Consent>,
) -> HashMap<String, Vec<Consent>> {
    let mut by_patient: HashMap<String, Vec<Consent>> = HashMap::new();
    for consent in consents {
        by_patient
            .entry(consent.patient.clone())
            .or_default()
            .push(consent);
    }
    for list in by_patient.values_mut() {
        list.sort_by_key(|c| std::cmp::Reverse(c.date_time));
    }
    by_patient
}

// === impl ConsentIndex ===

impl ConsentIndex {
    pub fn new(consents: impl IntoIterator<Item = Consent>) -> Self {
        let by_patient = by_patient_newest_first(consents);
        ConsentIndex {
            by_patient: Arc::new(by_patient),
            pulled: Arc::default(),
        }
    }

    /// This index with `pulled` (consents from the upstream server) in
    /// place of the pulled layer it had.
    #[must_use]
    pub fn with_pulled(&self, pulled: Arc<PulledConsents>) -> ConsentIndex {
        ConsentIndex {
            by_patient: Arc::clone(&self.by_patient),
            pulled,
        }
    }

    /// The consents pulled from the upstream server.
    pub fn pulled(&self) -> &PulledConsents {
        &self.pulled
    }

    /// Compiles Consent JSON files; every error located.
    pub fn compile(
        sources: &[SourceFile],
        actors: &ConsentActors,
    ) -> Result<ConsentIndex, Vec<PolicyError>> {
        let mut errors = Vec::new();
        let mut consents = Vec::new();
        let mut seen = HashMap::new();
        for source in sources {
            let doc = match SpannedDoc::from_json(source) {
                Ok(doc) => doc,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            if let Some(consent) = compile_consent(source, &doc, actors, &mut errors) {
                if let Some(first) = seen.insert(consent.id.clone(), source.name.clone()) {
                    errors.push(source.error_hint(
                        doc.value_span("/id"),
                        format!("`{}` is also defined in {first}", consent.id),
                        "give each Consent its own id",
                    ));
                    continue;
                }
                consents.push(consent);
            }
        }
        if errors.is_empty() {
            Ok(ConsentIndex::new(consents))
        } else {
            Err(errors)
        }
    }

    pub fn len(&self) -> usize {
        self.by_patient.values().map(Vec::len).sum::<usize>() + self.pulled.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_patient.is_empty() && self.pulled.is_empty()
    }

    pub fn consents(&self) -> impl Iterator<Item = &Consent> {
        self.by_patient.values().flatten().chain(self.pulled.iter())
    }

    /// The consent in force for `patient` at `at`: the most recent active
    /// one whose period covers `at`, from either layer.
    pub fn current(&self, patient: &str, at: OffsetDateTime) -> Option<&Consent> {
        let in_force = |c: &&Consent| c.active && c.date_time <= at && c.root.period_covers(at);
        let from_files = self
            .by_patient
            .get(patient)
            .and_then(|list| list.iter().find(in_force));
        let pulled = self.pulled.for_patient(patient).iter().find(in_force);
        match (from_files, pulled) {
            (Some(f), Some(p)) => Some(if p.date_time >= f.date_time { p } else { f }),
            (f, p) => f.or(p),
        }
    }

    /// The patient's answer for the general record (no sensitive category):
    /// permit when no consent applies (HIPAA treatment, payment and
    /// operations need none).
    pub fn general(&self, patient: &str, query: &ConsentQuery<'_>) -> ConsentAnswer {
        match self.current(patient, query.at) {
            None => ConsentAnswer {
                rule: ConsentRule::Permit,
                consent: None,
            },
            Some(c) => ConsentAnswer {
                rule: c.root.evaluate(query, None).unwrap_or(c.root.kind),
                consent: Some(c.id.clone()),
            },
        }
    }

    /// The patient's answer for data labelled with one of `labels` (a
    /// consent-only category): deny unless a provision naming the label
    /// permits this recipient and purpose, and the general answer is not a
    /// denial.
    pub fn for_labels(
        &self,
        patient: &str,
        labels: &BTreeSet<Coding>,
        query: &ConsentQuery<'_>,
    ) -> ConsentAnswer {
        let Some(c) = self.current(patient, query.at) else {
            return ConsentAnswer {
                rule: ConsentRule::Deny,
                consent: None,
            };
        };
        let general = c.root.evaluate(query, None).unwrap_or(c.root.kind);
        let specific = c.root.evaluate_root_for(query, labels);
        let rule = match (general, specific) {
            (ConsentRule::Permit, Some(ConsentRule::Permit)) => ConsentRule::Permit,
            _ => ConsentRule::Deny,
        };
        ConsentAnswer {
            rule,
            consent: Some(c.id.clone()),
        }
    }
}

// === impl Provision ===

impl Provision {
    fn period_covers(&self, at: OffsetDateTime) -> bool {
        match self.period {
            None => true,
            Some((start, end)) => start.is_none_or(|s| s <= at) && end.is_none_or(|e| at < e),
        }
    }

    fn matches(&self, query: &ConsentQuery<'_>) -> bool {
        self.period_covers(query.at)
            && (self.actors.is_empty() || self.actors.contains(query.partner))
            && (self.purposes.is_empty() || self.purposes.contains(query.purpose))
    }

    /// The root provision's verdict for data labelled with one of
    /// `labels`. A root that itself names one of them is the rule for that
    /// data (as source systems write a Part 2 consent: one permit with
    /// actor, purpose and `securityLabel` ETH): it speaks when the request
    /// matches its actor, purpose and period, its exceptions applying as
    /// usual; for anyone else it says nothing (so: no release). A root
    /// naming no label leaves the category to its exceptions.
    fn evaluate_root_for(
        &self,
        query: &ConsentQuery<'_>,
        labels: &BTreeSet<Coding>,
    ) -> Option<ConsentRule> {
        if self.labels.iter().any(|l| labels.contains(l)) {
            return self
                .matches(query)
                .then(|| self.evaluate(query, None).unwrap_or(self.kind));
        }
        self.evaluate(query, Some(labels))
    }

    /// This provision's verdict on the exceptions below it: `labels` `None`
    /// evaluates the general record (labelled provisions are skipped);
    /// `Some` evaluates a category (only provisions naming one of them, or
    /// nested under one, count). `None` when nothing here speaks.
    fn evaluate(
        &self,
        query: &ConsentQuery<'_>,
        labels: Option<&BTreeSet<Coding>>,
    ) -> Option<ConsentRule> {
        let mut verdicts = Vec::new();
        for child in &self.provisions {
            if !child.matches(query) {
                continue;
            }
            let relevant = match labels {
                None => child.labels.is_empty(),
                Some(wanted) => child.labels.iter().any(|l| wanted.contains(l)),
            };
            if relevant {
                verdicts.push(child.evaluate(query, None).unwrap_or(child.kind));
            } else if let Some(v) = child.evaluate(query, labels) {
                verdicts.push(v);
            }
        }
        if verdicts.contains(&ConsentRule::Deny) {
            Some(ConsentRule::Deny)
        } else if verdicts.contains(&ConsentRule::Permit) {
            Some(ConsentRule::Permit)
        } else {
            None
        }
    }
}

/// Parses a FHIR `dateTime`/`instant`: a full date-time with offset, or a
/// date (midnight UTC).
pub(crate) fn parse_fhir_datetime(text: &str) -> Option<OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Some(t);
    }
    let date = time::Date::parse(
        text,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()?;
    Some(date.midnight().assume_utc())
}

/// Reads a JSON string at `pointer`.
pub(crate) fn str_at<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

#[cfg(test)]
mod tests;
