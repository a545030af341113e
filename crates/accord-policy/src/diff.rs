//! `accord policy diff`: what a change grants or takes away, per partner and
//! purpose, in plain words; with fixtures, how many patients and resources
//! gain or lose access.
//!
//! Access is compared by asking both policy sets the same questions
//! ([`PolicySet::decide`]) at the same instant, for every partner, every
//! purpose an agreement lists, every resource type a grant names and every
//! interaction: the diff can never disagree with the decision.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use accord_fhir::{InteractionKind, Purpose, ResourceType};
use serde::Serialize;
use time::OffsetDateTime;

use crate::PolicySet;
use crate::consent::ConsentIndex;
use crate::decide::{AccessRequest, Decision};
use crate::ids::PartnerId;
use crate::obligations::Obligations;
use crate::render::{day, last_day};

/// Everything that changed, in words.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyDiff {
    pub old_version: String,
    pub new_version: String,
    /// Changes to agreements themselves (status, term, version, parties).
    pub agreements: Vec<String>,
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
    /// With fixtures: resources of this type and distinct patients they
    /// belong to.
    pub resources: Option<usize>,
    pub patients: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Gains,
    Loses,
    Changes,
}

/// Resource and patient counts per type from an NDJSON population.
#[derive(Debug, Clone, Default)]
pub struct FixtureCounts {
    by_type: HashMap<String, (usize, BTreeSet<String>)>,
}

const INTERACTIONS: [InteractionKind; 6] = [
    InteractionKind::Read,
    InteractionKind::VRead,
    InteractionKind::Search,
    InteractionKind::History,
    InteractionKind::Create,
    InteractionKind::Update,
];

// === impl FixtureCounts ===

impl FixtureCounts {
    /// Reads every `*.ndjson` in `dir` (one FHIR resource per line).
    pub fn read_dir(dir: &Path) -> std::io::Result<FixtureCounts> {
        let mut counts = FixtureCounts::default();
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.extension().is_none_or(|e| e != "ndjson") {
                continue;
            }
            for line in std::fs::read_to_string(&path)?.lines() {
                let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else {
                    continue;
                };
                let facts = crate::facts::ResourceFacts::of(&value);
                let Some(ty) = facts.resource_type else {
                    continue;
                };
                let slot = counts.by_type.entry(ty.as_str().to_owned()).or_default();
                slot.0 += 1;
                slot.1.extend(facts.patients);
            }
        }
        Ok(counts)
    }

    fn of(&self, ty: &str) -> (usize, usize) {
        self.by_type.get(ty).map_or((0, 0), |(n, p)| (*n, p.len()))
    }
}

/// Compares `old` and `new` at `at`.
pub fn diff(
    old: &PolicySet,
    new: &PolicySet,
    at: OffsetDateTime,
    fixtures: Option<&FixtureCounts>,
) -> PolicyDiff {
    PolicyDiff {
        old_version: old.version().to_string(),
        new_version: new.version().to_string(),
        agreements: agreement_changes(old, new),
        access: access_changes(old, new, at, fixtures),
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

fn access_changes(
    old: &PolicySet,
    new: &PolicySet,
    at: OffsetDateTime,
    fixtures: Option<&FixtureCounts>,
) -> Vec<AccessChange> {
    let mut partners = BTreeSet::new();
    let mut purposes = BTreeSet::new();
    let mut types = BTreeSet::new();
    for set in [old, new] {
        partners.extend(set.partners().map(|p| p.id.clone()));
        for a in set.agreements() {
            purposes.extend(a.purposes.iter().cloned());
            for g in &a.grants {
                types.extend(g.resources.iter().copied());
            }
        }
    }
    let before = access_map(old, &partners, &purposes, &types, at);
    let after = access_map(new, &partners, &purposes, &types, at);
    let keys: BTreeSet<&AccessKey> = before.keys().chain(after.keys()).collect();
    let mut out = Vec::new();
    for key in keys {
        let (partner, purpose, ty) = key;
        let empty = BTreeMap::new();
        let b = before.get(key).unwrap_or(&empty);
        let a = after.get(key).unwrap_or(&empty);
        let mut push = |kind, words: String| {
            let counts = fixtures.map(|f| f.of(ty.as_str()));
            out.push(AccessChange {
                partner: partner.to_string(),
                purpose: purpose.as_str().to_owned(),
                kind,
                resource_type: ty.as_str().to_owned(),
                words,
                resources: counts.map(|c| c.0),
                patients: counts.map(|c| c.1),
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
        out.push(format!("search constraints change from {cb:?} to {ca:?}"));
    }
    if a.caps != b.caps {
        out.push(format!(
            "caps change from {:?}/{:?} to {:?}/{:?} (requests/resources per day)",
            b.caps.requests_per_day,
            b.caps.resources_per_day,
            a.caps.requests_per_day,
            a.caps.resources_per_day
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
    pub fn is_empty(&self) -> bool {
        self.agreements.is_empty() && self.access.is_empty()
    }

    pub fn to_text(&self) -> String {
        let mut out = format!("policy {} → {}\n", self.old_version, self.new_version);
        if self.is_empty() {
            out.push_str("\nno change in what any partner may access\n");
            return out;
        }
        if !self.agreements.is_empty() {
            out.push_str("\nagreements:\n");
            for line in &self.agreements {
                out.push_str(&format!("  - {line}\n"));
            }
        }
        let mut current: Option<(&str, &str)> = None;
        for c in &self.access {
            if current != Some((c.partner.as_str(), c.purpose.as_str())) {
                out.push_str(&format!("\n{} for {}:\n", c.partner, c.purpose));
                current = Some((c.partner.as_str(), c.purpose.as_str()));
            }
            let sign = match c.kind {
                ChangeKind::Gains => "+",
                ChangeKind::Loses => "-",
                ChangeKind::Changes => "~",
            };
            out.push_str(&format!("  {sign} {}", c.words));
            if let (Some(r), Some(p)) = (c.resources, c.patients)
                && c.kind != ChangeKind::Changes
            {
                out.push_str(&format!(
                    " [{r} {} resources of {p} patients in the fixtures]",
                    c.resource_type
                ));
            }
            out.push('\n');
        }
        out
    }
}
