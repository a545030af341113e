//! `accord policy diff`: what a change grants or takes away.
//!
//! The headline is decisions ([`decisions`]): over a population (the
//! fixtures, or one the user names), for every partner, purpose, resource
//! type and patient, what the partner receives under each policy set —
//! the gateway's own decision and per-resource check — compared. A cohort
//! Group losing members or a new opt-out Consent shows there as patients
//! lost.
//!
//! Below it, the agreements' own changes (status, term, parties) and the
//! grant-level access asked without a patient ([`PolicySet::decide`] for
//! every partner, purpose, granted type and interaction).

use std::collections::{BTreeMap, BTreeSet};

use accord_fhir::{InteractionKind, Purpose, ResourceType};
use serde::Serialize;
use time::OffsetDateTime;

use crate::PolicySet;
use crate::consent::ConsentIndex;
use crate::decide::{AccessRequest, Decision};
use crate::ids::PartnerId;
use crate::obligations::Obligations;
use crate::population::Population;
use crate::render::{day, last_day};

pub mod decisions;

pub use decisions::{DecisionChange, DecisionDiff, decision_diff};

/// Everything that changed, in words.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyDiff {
    pub old_version: String,
    pub new_version: String,
    /// Decision changes over a population (the headline); `None` without
    /// a population.
    pub decisions: Option<DecisionDiff>,
    /// Changes to agreements themselves (status, term, version, parties).
    pub agreements: Vec<String>,
    /// Grant-level changes, asked without a patient.
    pub access: Vec<AccessChange>,
}

/// One change of access for a partner and purpose.
#[derive(Debug, Clone, Serialize)]
pub struct AccessChange {
    pub partner: String,
    pub purpose: String,
    pub kind: ChangeKind,
    pub resource_type: String,
    pub words: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Gains,
    Loses,
    Changes,
}

const INTERACTIONS: [InteractionKind; 6] = [
    InteractionKind::Read,
    InteractionKind::VRead,
    InteractionKind::Search,
    InteractionKind::History,
    InteractionKind::Create,
    InteractionKind::Update,
];

/// Compares `old` and `new` at `at`.
pub fn diff(
    old: &PolicySet,
    new: &PolicySet,
    at: OffsetDateTime,
    population: Option<&Population>,
) -> PolicyDiff {
    PolicyDiff {
        old_version: old.version().to_string(),
        new_version: new.version().to_string(),
        decisions: population.map(|p| decision_diff(old, new, p, at)),
        agreements: agreement_changes(old, new),
        access: access_changes(old, new, at),
    }
}

fn agreement_changes(old: &PolicySet, new: &PolicySet) -> Vec<String> {
    let mut out = Vec::new();
    for a in new.agreements() {
        let Some(o) = old.agreement(a.id.as_str()) else {
            out.push(format!(
                "agreement `{}` is new ({}, {})",
                a.id,
                a.status.as_str(),
                a.source
            ));
            continue;
        };
        if o.status != a.status {
            out.push(format!(
                "agreement `{}` goes from {} to {}",
                a.id,
                o.status.as_str(),
                a.status.as_str()
            ));
        }
        if o.term != a.term {
            out.push(format!(
                "agreement `{}` term changes from {}–{} to {}–{}",
                a.id,
                day(o.term.effective),
                last_day(o.term.expires),
                day(a.term.effective),
                last_day(a.term.expires)
            ));
        }
        if o.version != a.version {
            out.push(format!(
                "agreement `{}` version {} → {}",
                a.id, o.version, a.version
            ));
        } else if o != a && o.source == a.source {
            out.push(format!(
                "agreement `{}` changed but its version stayed {}: raise it so audit records tell the texts apart",
                a.id, a.version
            ));
        }
        let added: Vec<_> = a
            .parties
            .difference(&o.parties)
            .map(|p| format!("`{p}`"))
            .collect();
        let removed: Vec<_> = o
            .parties
            .difference(&a.parties)
            .map(|p| format!("`{p}`"))
            .collect();
        if !added.is_empty() {
            out.push(format!(
                "agreement `{}` adds parties {}",
                a.id,
                added.join(", ")
            ));
        }
        if !removed.is_empty() {
            out.push(format!(
                "agreement `{}` removes parties {}",
                a.id,
                removed.join(", ")
            ));
        }
    }
    for o in old.agreements() {
        if new.agreement(o.id.as_str()).is_none() {
            out.push(format!("agreement `{}` is removed", o.id));
        }
    }
    out
}

type AccessKey = (PartnerId, Purpose, ResourceType);

/// Per partner, purpose and type: interaction → obligations.
fn access_map(
    set: &PolicySet,
    partners: &BTreeSet<PartnerId>,
    purposes: &BTreeSet<Purpose>,
    types: &BTreeSet<ResourceType>,
    at: OffsetDateTime,
) -> BTreeMap<AccessKey, BTreeMap<&'static str, Obligations>> {
    let none = ConsentIndex::default();
    let mut map = BTreeMap::new();
    for partner in partners {
        for purpose in purposes {
            for ty in types {
                let mut by_interaction = BTreeMap::new();
                for kind in INTERACTIONS {
                    let request = AccessRequest {
                        partner,
                        purpose,
                        interaction: kind,
                        resource_type: Some(*ty),
                        at,
                        // No patient: per-patient rules (cohort lists,
                        // consent) are not what a diff of agreements shows.
                        patient: None,
                        operation: None,
                    };
                    let decision: Decision = set.decide_with(&request, &none);
                    if let Some(o) = decision.obligations() {
                        by_interaction.insert(kind.as_str(), o.clone());
                    }
                }
                if !by_interaction.is_empty() {
                    map.insert((partner.clone(), purpose.clone(), *ty), by_interaction);
                }
            }
        }
    }
    map
}

fn access_changes(old: &PolicySet, new: &PolicySet, at: OffsetDateTime) -> Vec<AccessChange> {
    let q = decisions::Questions::of(old, new);
    let before = access_map(old, &q.partners, &q.purposes, &q.types, at);
    let after = access_map(new, &q.partners, &q.purposes, &q.types, at);
    let keys: BTreeSet<&AccessKey> = before.keys().chain(after.keys()).collect();
    let mut out = Vec::new();
    for key in keys {
        let (partner, purpose, ty) = key;
        let empty = BTreeMap::new();
        let b = before.get(key).unwrap_or(&empty);
        let a = after.get(key).unwrap_or(&empty);
        let mut push = |kind, words: String| {
            out.push(AccessChange {
                partner: partner.to_string(),
                purpose: purpose.as_str().to_owned(),
                kind,
                resource_type: ty.as_str().to_owned(),
                words,
            });
        };
        let gained: Vec<_> = a.keys().filter(|k| !b.contains_key(*k)).copied().collect();
        let lost: Vec<_> = b.keys().filter(|k| !a.contains_key(*k)).copied().collect();
        if !gained.is_empty() {
            let via = a.values().next().map(rule_words).unwrap_or_default();
            push(
                ChangeKind::Gains,
                format!(
                    "`{partner}` may now {} {ty} for {}{via}",
                    gained.join(", "),
                    purpose.as_str()
                ),
            );
        }
        if !lost.is_empty() {
            let via = b.values().next().map(rule_words).unwrap_or_default();
            push(
                ChangeKind::Loses,
                format!(
                    "`{partner}` may no longer {} {ty} for {}{via}",
                    lost.join(", "),
                    purpose.as_str()
                ),
            );
        }
        // Obligation changes on interactions kept.
        let kept = a.keys().find(|k| b.contains_key(*k));
        if let (Some(k), true) = (kept, !a.is_empty())
            && let (Some(ob), Some(oa)) = (b.get(k), a.get(k))
        {
            for words in obligation_changes(ob, oa, *ty) {
                push(
                    ChangeKind::Changes,
                    format!("`{partner}` {ty} for {}: {words}", purpose.as_str()),
                );
            }
        }
    }
    out
}

fn rule_words(o: &Obligations) -> String {
    o.rules
        .first()
        .map(|r| format!(" (through {r})"))
        .unwrap_or_default()
}

fn obligation_changes(b: &Obligations, a: &Obligations, ty: ResourceType) -> Vec<String> {
    let mut out = Vec::new();
    let prefix = format!("{}.", ty.as_str());
    let rb: BTreeSet<_> = b
        .redactions
        .iter()
        .filter(|p| p.starts_with(&prefix))
        .collect();
    let ra: BTreeSet<_> = a
        .redactions
        .iter()
        .filter(|p| p.starts_with(&prefix))
        .collect();
    for p in ra.difference(&rb) {
        out.push(format!("`{p}` is now removed before release"));
    }
    for p in rb.difference(&ra) {
        out.push(format!("`{p}` is now released (no longer redacted)"));
    }
    for c in a.sensitive_allowed.difference(&b.sensitive_allowed) {
        out.push(format!("sensitive category `{c}` may now be released"));
    }
    for c in b.sensitive_allowed.difference(&a.sensitive_allowed) {
        out.push(format!("sensitive category `{c}` is no longer released"));
    }
    if a.cohort != b.cohort {
        out.push(format!(
            "cohort changes from {} to {}",
            b.cohort
                .as_ref()
                .map_or("everyone".to_owned(), |c| format!("`{c}`")),
            a.cohort
                .as_ref()
                .map_or("everyone".to_owned(), |c| format!("`{c}`"))
        ));
    }
    let cb: Vec<_> = b
        .constraints
        .iter()
        .filter(|c| c.resource == ty)
        .map(|c| &c.text)
        .collect();
    let ca: Vec<_> = a
        .constraints
        .iter()
        .filter(|c| c.resource == ty)
        .map(|c| &c.text)
        .collect();
    if cb != ca {
        let words = |c: &[&String]| {
            if c.is_empty() {
                "none".to_owned()
            } else {
                c.iter()
                    .map(|t| format!("`{t}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        out.push(format!(
            "search constraints change from {} to {}",
            words(&cb),
            words(&ca)
        ));
    }
    let cap = |n: Option<u64>| n.map_or_else(|| "no limit".to_owned(), |n| n.to_string());
    if a.caps.requests_per_day != b.caps.requests_per_day {
        out.push(format!(
            "requests per day change from {} to {}",
            cap(b.caps.requests_per_day),
            cap(a.caps.requests_per_day)
        ));
    }
    if a.caps.resources_per_day != b.caps.resources_per_day {
        out.push(format!(
            "resources per day change from {} to {}",
            cap(b.caps.resources_per_day),
            cap(a.caps.resources_per_day)
        ));
    }
    if a.population_search != b.population_search {
        out.push(if a.population_search {
            "searches without a patient are now allowed".to_owned()
        } else {
            "searches without a patient are no longer allowed".to_owned()
        });
    }
    out
}

// === impl PolicyDiff ===

impl PolicyDiff {
    /// No change at all: no decision, no agreement, no grant.
    pub fn is_empty(&self) -> bool {
        self.decisions_unchanged() && self.agreements.is_empty() && self.access.is_empty()
    }

    /// Whether no decision over the population changes (true without one).
    pub fn decisions_unchanged(&self) -> bool {
        self.decisions.as_ref().is_none_or(|d| d.changes.is_empty())
    }

    pub fn to_text(&self) -> String {
        let mut out = format!(
            "policy {} → {}

",
            self.old_version, self.new_version
        );
        match &self.decisions {
            Some(d) => out.push_str(&d.to_text()),
            None => out.push_str(
                "decisions: no population to decide over (pass --fixtures DIR, NDJSON): only the policy text is compared\n",
            ),
        }
        if self.agreements.is_empty() && self.access.is_empty() {
            if self.decisions.is_some() {
                out.push_str("\npolicy text: no change to agreements or grants\n");
            } else {
                out.push_str("\nno change in what any partner may access\n");
            }
            return out;
        }
        out.push_str("\npolicy text changes (asked without a patient):\n");
        for line in &self.agreements {
            out.push_str(&format!("  - {line}\n"));
        }
        let mut current: Option<(&str, &str)> = None;
        for c in &self.access {
            if current != Some((c.partner.as_str(), c.purpose.as_str())) {
                out.push_str(&format!("\n  {} for {}:\n", c.partner, c.purpose));
                current = Some((c.partner.as_str(), c.purpose.as_str()));
            }
            let sign = match c.kind {
                ChangeKind::Gains => "+",
                ChangeKind::Loses => "-",
                ChangeKind::Changes => "~",
            };
            out.push_str(&format!("    {sign} {}\n", c.words));
        }
        out
    }
}
