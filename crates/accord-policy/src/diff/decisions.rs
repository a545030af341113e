//! The headline of a diff: decisions, not policy text. For every partner,
//! purpose, resource type and patient of a population, what the partner
//! receives under the old and the new policies ([`PolicySet::access`], the
//! gateway's decision and per-resource check), compared.

use std::collections::{BTreeMap, BTreeSet};

use accord_fhir::{Purpose, ResourceType};
use serde::Serialize;
use time::OffsetDateTime;

use crate::PolicySet;
use crate::ids::PartnerId;
use crate::outcome::{Access, patient_search};
use crate::population::Population;

/// Decision changes over a population.
#[derive(Debug, Clone, Serialize)]
pub struct DecisionDiff {
    /// Where the population was read from.
    pub population: String,
    pub patients: usize,
    pub changes: Vec<DecisionChange>,
}

/// How what one partner receives of one resource type for one purpose
/// changes, over the population.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecisionChange {
    pub partner: String,
    pub purpose: String,
    pub resource_type: String,
    /// Patients for whom anything below changes (`Patient/<id>`).
    pub affected_patients: Vec<String>,
    /// Patients whose requests were denied and are now permitted.
    pub patients_gained: Vec<String>,
    /// Patients whose requests were permitted and are now denied.
    pub patients_lost: Vec<String>,
    /// Resources now released that were not.
    pub resources_gained: usize,
    /// Resources no longer released.
    pub resources_lost: usize,
    /// Element path → patients for whom it is now removed before release.
    pub redactions_added: BTreeMap<String, usize>,
    pub redactions_removed: BTreeMap<String, usize>,
    /// Sensitive category → patients whose data of that category is now
    /// released.
    pub categories_gained: BTreeMap<String, usize>,
    pub categories_lost: BTreeMap<String, usize>,
}

/// The questions asked: every partner, purpose and type either set knows.
pub(super) struct Questions {
    pub partners: BTreeSet<PartnerId>,
    pub purposes: BTreeSet<Purpose>,
    pub types: BTreeSet<ResourceType>,
}

// === impl Questions ===

impl Questions {
    pub(super) fn of(old: &PolicySet, new: &PolicySet) -> Self {
        let mut q = Questions {
            partners: BTreeSet::new(),
            purposes: BTreeSet::new(),
            types: BTreeSet::new(),
        };
        for set in [old, new] {
            q.partners.extend(set.partners().map(|p| p.id.clone()));
            for a in set.agreements() {
                q.purposes.extend(a.purposes.iter().cloned());
                for g in &a.grants {
                    q.types.extend(g.resources.iter().copied());
                }
            }
        }
        q
    }
}

/// Compares decisions of `old` and `new` over `population` at `at`.
pub fn decision_diff(
    old: &PolicySet,
    new: &PolicySet,
    population: &Population,
    at: OffsetDateTime,
) -> DecisionDiff {
    let q = Questions::of(old, new);
    let mut changes = Vec::new();
    for partner in &q.partners {
        for purpose in &q.purposes {
            for ty in &q.types {
                let mut change = DecisionChange::new(partner, purpose, *ty);
                for patient in population.patients() {
                    let records = population.records(patient, *ty);
                    let request = patient_search(partner, purpose, *ty, patient, at);
                    let evidence = Some(population.referrals());
                    let before = old.access(&request, records, old.consents(), evidence);
                    let after = new.access(&request, records, new.consents(), evidence);
                    change.add(patient, &before, &after);
                }
                if !change.affected_patients.is_empty() {
                    changes.push(change);
                }
            }
        }
    }
    DecisionDiff {
        population: population.source.clone(),
        patients: population.patients().len(),
        changes,
    }
}

/// Whether two outcomes differ in what is released: permitted or not,
/// which resources, which elements removed, which sensitive categories.
pub fn same_release(a: &Access, b: &Access) -> bool {
    a.permitted == b.permitted
        && a.released == b.released
        && a.redacted == b.redacted
        && a.categories == b.categories
}

// === impl DecisionChange ===

impl DecisionChange {
    fn new(partner: &PartnerId, purpose: &Purpose, ty: ResourceType) -> Self {
        DecisionChange {
            partner: partner.to_string(),
            purpose: purpose.as_str().to_owned(),
            resource_type: ty.as_str().to_owned(),
            affected_patients: Vec::new(),
            patients_gained: Vec::new(),
            patients_lost: Vec::new(),
            resources_gained: 0,
            resources_lost: 0,
            redactions_added: BTreeMap::new(),
            redactions_removed: BTreeMap::new(),
            categories_gained: BTreeMap::new(),
            categories_lost: BTreeMap::new(),
        }
    }

    fn add(&mut self, patient: &str, before: &Access, after: &Access) {
        if same_release(before, after) {
            return;
        }
        self.affected_patients.push(patient.to_owned());
        match (before.permitted, after.permitted) {
            (false, true) => self.patients_gained.push(patient.to_owned()),
            (true, false) => self.patients_lost.push(patient.to_owned()),
            _ => {}
        }
        self.resources_gained += after.released.difference(&before.released).count();
        self.resources_lost += before.released.difference(&after.released).count();
        if !(before.permitted && after.permitted) {
            // Gaining or losing the patient says it all; the elements and
            // categories of what is (no longer) released go with it.
            return;
        }
        let count = |map: &mut BTreeMap<String, usize>, items: Vec<String>| {
            for item in items {
                *map.entry(item).or_default() += 1;
            }
        };
        count(
            &mut self.redactions_added,
            after
                .redacted
                .difference(&before.redacted)
                .cloned()
                .collect(),
        );
        count(
            &mut self.redactions_removed,
            before
                .redacted
                .difference(&after.redacted)
                .cloned()
                .collect(),
        );
        let ids = |a: &Access, b: &Access| -> Vec<String> {
            a.categories
                .difference(&b.categories)
                .map(ToString::to_string)
                .collect()
        };
        count(&mut self.categories_gained, ids(after, before));
        count(&mut self.categories_lost, ids(before, after));
    }

    /// The change in words, without partner and purpose.
    pub fn words(&self) -> String {
        let mut parts = Vec::new();
        let patients = |n: usize| {
            if n == 1 {
                "1 patient".to_owned()
            } else {
                format!("{n} patients")
            }
        };
        let named = |list: &[String]| {
            let shown: Vec<&str> = list
                .iter()
                .take(5)
                .map(|p| p.strip_prefix("Patient/").unwrap_or(p))
                .collect();
            let more = list.len().saturating_sub(shown.len());
            let tail = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            format!("{}{tail}", shown.join(", "))
        };
        if !self.patients_gained.is_empty() {
            parts.push(format!(
                "may now be read for {} ({})",
                patients(self.patients_gained.len()),
                named(&self.patients_gained)
            ));
        }
        if !self.patients_lost.is_empty() {
            parts.push(format!(
                "may no longer be read for {} ({})",
                patients(self.patients_lost.len()),
                named(&self.patients_lost)
            ));
        }
        let resources = |n: usize| {
            if n == 1 {
                "1 resource".to_owned()
            } else {
                format!("{n} resources")
            }
        };
        if self.resources_gained > 0 {
            parts.push(format!(
                "{} more released",
                resources(self.resources_gained)
            ));
        }
        if self.resources_lost > 0 {
            parts.push(format!(
                "{} no longer released",
                resources(self.resources_lost)
            ));
        }
        for (path, n) in &self.redactions_added {
            parts.push(format!("`{path}` now removed for {}", patients(*n)));
        }
        for (path, n) in &self.redactions_removed {
            parts.push(format!("`{path}` now released for {}", patients(*n)));
        }
        for (category, n) in &self.categories_gained {
            parts.push(format!(
                "sensitive category `{category}` now released for {}",
                patients(*n)
            ));
        }
        for (category, n) in &self.categories_lost {
            parts.push(format!(
                "sensitive category `{category}` no longer released for {}",
                patients(*n)
            ));
        }
        format!(
            "{}: {} — {} affected",
            self.resource_type,
            parts.join("; "),
            patients(self.affected_patients.len())
        )
    }

    /// `Some(true)` when the partner only loses, `Some(false)` when it only
    /// gains, `None` for a mix (the `-`, `+`, `~` of the text).
    pub fn is_loss(&self) -> Option<bool> {
        let lost = self.patients_lost.len()
            + self.resources_lost
            + self.redactions_added.len()
            + self.categories_lost.len();
        let gained = self.patients_gained.len()
            + self.resources_gained
            + self.redactions_removed.len()
            + self.categories_gained.len();
        match (lost > 0, gained > 0) {
            (true, false) => Some(true),
            (false, true) => Some(false),
            _ => None,
        }
    }
}

/// Partner, change in words, and its sign: purposes sharing them are
/// printed together.
type GroupKey<'a> = (&'a str, String, Option<bool>);

// === impl DecisionDiff ===

impl DecisionDiff {
    /// The changes as text, grouped by partner; purposes with the same
    /// change are named together.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "decisions over {} patients in {}:\n",
            self.patients, self.population
        );
        if self.changes.is_empty() {
            out.push_str("  no partner gains or loses any patient, resource, element or sensitive category\n");
            return out;
        }
        // (partner, words) → purposes, in first-seen order.
        let mut grouped: Vec<(GroupKey<'_>, Vec<&str>)> = Vec::new();
        for c in &self.changes {
            let key = (c.partner.as_str(), c.words(), c.is_loss());
            match grouped.iter_mut().find(|(k, _)| *k == key) {
                Some((_, purposes)) => purposes.push(c.purpose.as_str()),
                None => grouped.push((key, vec![c.purpose.as_str()])),
            }
        }
        let mut partner = None;
        for ((who, words, loss), purposes) in &grouped {
            if partner != Some(*who) {
                out.push_str(&format!("\n  `{who}`:\n"));
                partner = Some(*who);
            }
            let sign = match loss {
                Some(true) => '-',
                Some(false) => '+',
                None => '~',
            };
            out.push_str(&format!(
                "    {sign} for {}: {words}\n",
                purposes.join(", ")
            ));
        }
        out
    }
}
