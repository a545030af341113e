//! Oracle property test: random agreements, consents and fixture data, many
//! random permitted-looking requests through the real gateway over TLS, and
//! every response checked against what the policy, applied directly to the
//! fixture store, allows.
//!
//! The oracle computes its expectation from the fixture data and the case
//! it generated (granted types, cohort, opt-outs, Part 2 consents,
//! redactions, sensitive categories) with its own code: it uses only the
//! policy's category value sets (`Category::matches`) and the generated
//! Patient compartment table, never the gateway's filter. It is stricter
//! than the gateway where it can be: a resource's codes are every coding
//! anywhere in it, its patients are every `Patient/` reference in it.
//!
//! `ACCORD_ORACLE_SEED` (default 1) and `ACCORD_ORACLE_CASES` (default 20)
//! set the run; see docs/testing.md.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::cast_possible_truncation
)] // test code: a panic is a failed test; counts are small

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use accord_e2e::Harness;
use accord_fhir::ResourceType;
use accord_fhir::compartment::{PatientLinks, is_patient_data, patient_links};
use accord_policy::{CodeText, Coding, PolicySet, ResourceFacts};
use accord_testkit::client::PartnerResponse;
use accord_testkit::population;
use serde_json::{Value, json};

const PARTNER: &str = "maple-primary";
const PURPOSE: &str = "TREAT";
const NO_SUCH_PATIENT: &str = "pat-9999";
const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
const ICD10: &str = "http://hl7.org/fhir/sid/icd-10-cm";

/// Types an agreement may grant (the ones the fixture holds).
const TYPES: &[&str] = &[
    "Patient",
    "Observation",
    "Condition",
    "Encounter",
    "MedicationRequest",
    "Procedure",
    "CarePlan",
    "ServiceRequest",
    "Task",
    "Practitioner",
    "Organization",
];
/// Patient-data types a search may be about.
const SEARCHABLE: &[&str] = &[
    "Observation",
    "Condition",
    "Encounter",
    "MedicationRequest",
    "Procedure",
    "CarePlan",
    "ServiceRequest",
];
const REDACTIONS: &[&str] = &[
    "Patient.address",
    "Patient.telecom",
    "Patient.birthDate",
    "Patient.name",
    "Observation.value[x]",
    "Observation.performer",
    "Condition.recorder",
    "Condition.note",
    "Encounter.participant",
    "MedicationRequest.dosageInstruction",
];
const CATEGORIES: &[&str] = &["part2", "mental-health", "hiv-sti", "restricted"];
/// Members whose records a grant's `source` may name, and the
/// Organization each is (policies/partners.toml).
const SOURCES: &[&str] = &["riverside-bh", "maple-primary", "st-brigid"];
const MEMBER_ORGANIZATIONS: &[(&str, &str)] = &[
    ("Organization/org-riverside-bh", "riverside-bh"),
    ("Organization/org-maple-primary", "maple-primary"),
    ("Organization/org-st-brigid", "st-brigid"),
];
const CONSTRAINTS: &[(&str, &str, &str)] = &[
    ("Observation", "category", "laboratory"),
    ("Observation", "category", "vital-signs"),
    ("Condition", "category", "problem-list-item"),
];

// ---------------------------------------------------------------------------
// Random numbers: SplitMix64, so a seed names a run exactly.

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    fn subset<T: Clone>(&mut self, items: &[T], percent: u64) -> Vec<T> {
        items
            .iter()
            .filter(|_| self.chance(percent))
            .cloned()
            .collect()
    }
}

// ---------------------------------------------------------------------------
// One case: the agreement, consents and the oracle's view of them.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CohortKind {
    List,
    Group,
}

#[derive(Debug)]
struct Case {
    types: BTreeSet<&'static str>,
    interactions: Vec<&'static str>,
    redactions: Vec<&'static str>,
    cohort: Option<(CohortKind, BTreeSet<String>)>,
    sensitive: BTreeSet<&'static str>,
    forbid_sensitive: BTreeSet<&'static str>,
    forbid_types: BTreeSet<&'static str>,
    constraint: Option<(&'static str, &'static str, &'static str)>,
    population_search: bool,
    /// The grant's `source`: only this member's records may be released.
    source: Option<&'static str>,
    opted_out: BTreeSet<String>,
    part2_consented: BTreeSet<String>,
}

impl Case {
    fn generate(rng: &mut Rng, patients: &[String]) -> Case {
        let mut types: BTreeSet<&'static str> = rng.subset(TYPES, 60).into_iter().collect();
        types.insert(*rng.pick(SEARCHABLE));
        let mut interactions = vec!["read", "search"];
        interactions.extend(rng.subset(&["vread", "$everything", "update"], 60));
        let redactions = rng.subset(REDACTIONS, 35);
        let cohort = match rng.below(3) {
            0 => None,
            kind => {
                let members = rng
                    .subset(patients, 60)
                    .into_iter()
                    .map(|p| format!("Patient/{p}"))
                    .collect();
                let kind = if kind == 1 {
                    CohortKind::List
                } else {
                    CohortKind::Group
                };
                Some((kind, members))
            }
        };
        let sensitive = rng.subset(CATEGORIES, 50).into_iter().collect();
        let forbid_sensitive = if rng.chance(30) {
            rng.subset(CATEGORIES, 50).into_iter().collect()
        } else {
            BTreeSet::new()
        };
        let forbid_types = if rng.chance(20) {
            let granted: Vec<&'static str> = types.iter().copied().collect();
            BTreeSet::from([*rng.pick(&granted)])
        } else {
            BTreeSet::new()
        };
        let constraint = rng.chance(35).then(|| *rng.pick(CONSTRAINTS));
        let mut opted_out = BTreeSet::new();
        let mut part2_consented = BTreeSet::new();
        for p in patients {
            match rng.below(10) {
                0 => {
                    opted_out.insert(p.clone());
                }
                1..=4 => {
                    part2_consented.insert(p.clone());
                }
                _ => {}
            }
        }
        Case {
            types,
            interactions,
            redactions,
            cohort,
            sensitive,
            forbid_sensitive,
            forbid_types,
            constraint,
            population_search: rng.chance(50),
            source: rng.chance(40).then(|| *rng.pick(SOURCES)),
            opted_out,
            part2_consented,
        }
    }

    fn readable(&self, ty: &str) -> bool {
        self.types.contains(ty) && !self.forbid_types.contains(ty)
    }

    /// Whether the partner may see data of this patient at all.
    fn in_reach(&self, patient: &str) -> bool {
        let reference = format!("Patient/{patient}");
        let in_cohort = self
            .cohort
            .as_ref()
            .is_none_or(|(_, members)| members.contains(&reference));
        in_cohort && !self.opted_out.contains(patient)
    }

    /// The policy folder for this case.
    fn write_policies(&self, dir: &std::path::Path, partners_toml: &str) {
        let list = |items: &mut dyn Iterator<Item = String>| {
            items
                .map(|s| format!("\"{s}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = std::fs::remove_dir_all(dir);
        for sub in ["agreements", "cohorts", "consents"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        std::fs::write(dir.join("partners.toml"), partners_toml).unwrap();
        let mut toml = String::from(
            "id = \"oracle\"\nversion = 1\ntitle = \"Oracle case\"\nstatus = \"active\"\n\
             parties = [\"maple-primary\", \"riverside-bh\", \"st-brigid\"]\neffective = 2020-01-01\n\
             expires = 2099-12-31\npurposes = [\"TREAT\"]\n\n[[grant]]\nid = \"g\"\n\
             recipients = [\"maple-primary\"]\n",
        );
        let _ = writeln!(
            toml,
            "resources = [{}]",
            list(&mut self.types.iter().map(ToString::to_string))
        );
        let _ = writeln!(
            toml,
            "interactions = [{}]",
            list(&mut self.interactions.iter().map(ToString::to_string))
        );
        let redactions: Vec<&str> = self
            .redactions
            .iter()
            .copied()
            .filter(|p| self.types.contains(p.split('.').next().unwrap()))
            .collect();
        if !redactions.is_empty() {
            let _ = writeln!(
                toml,
                "redact = [{}]",
                list(&mut redactions.iter().map(ToString::to_string))
            );
        }
        if !self.sensitive.is_empty() {
            let _ = writeln!(
                toml,
                "sensitive = [{}]",
                list(&mut self.sensitive.iter().map(ToString::to_string))
            );
        }
        if let Some((ty, param, value)) = self.constraint
            && self.types.contains(ty)
        {
            let _ = writeln!(toml, "constraints = [\"{ty}?{param}={value}\"]");
        }
        let _ = writeln!(toml, "population_search = {}", self.population_search);
        if let Some(source) = self.source {
            let _ = writeln!(toml, "source = \"{source}\"");
        }
        if self.cohort.is_some() {
            toml.push_str("cohort = \"oracle-cohort\"\n");
        }
        if !self.forbid_sensitive.is_empty() {
            let _ = writeln!(
                toml,
                "\n[[forbid]]\nid = \"no-categories\"\nreason = \"oracle\"\nsensitive = [{}]",
                list(&mut self.forbid_sensitive.iter().map(ToString::to_string))
            );
        }
        if !self.forbid_types.is_empty() {
            let _ = writeln!(
                toml,
                "\n[[forbid]]\nid = \"no-types\"\nreason = \"oracle\"\nresources = [{}]",
                list(&mut self.forbid_types.iter().map(ToString::to_string))
            );
        }
        match &self.cohort {
            None => {}
            Some((CohortKind::List, members)) => {
                let _ = writeln!(
                    toml,
                    "\n[[cohort]]\nid = \"oracle-cohort\"\nkind = \"list\"\ndescription = \"oracle\"\npatients = [{}]",
                    list(&mut members.iter().cloned())
                );
            }
            Some((CohortKind::Group, members)) => {
                let group = json!({
                    "resourceType": "Group", "id": "oracle-cohort", "type": "person", "actual": true,
                    "member": members.iter().map(|m| json!({"entity": {"reference": m}})).collect::<Vec<_>>(),
                });
                std::fs::write(
                    dir.join("cohorts/oracle.group.json"),
                    serde_json::to_vec_pretty(&group).unwrap(),
                )
                .unwrap();
                std::fs::write(
                    dir.join("cohorts/oracle.toml"),
                    "[[cohort]]\nid = \"oracle-cohort\"\nkind = \"group\"\ndescription = \"oracle\"\ngroup = \"oracle.group.json\"\n",
                )
                .unwrap();
            }
        }
        std::fs::write(dir.join("agreements/oracle.toml"), toml).unwrap();
        for p in &self.opted_out {
            let consent = json!({
                "resourceType": "Consent", "id": format!("{p}-opt-out"), "status": "active",
                "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
                "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
                "patient": {"reference": format!("Patient/{p}")},
                "dateTime": "2024-01-10T14:30:00Z",
                "policyRule": {"coding": [{"system": ACT_CODE, "code": "OPTOUT"}]},
                "provision": {"type": "deny", "period": {"start": "2024-01-10"}}
            });
            std::fs::write(
                dir.join(format!("consents/{p}-opt-out.json")),
                consent.to_string(),
            )
            .unwrap();
        }
        for p in &self.part2_consented {
            let consent = json!({
                "resourceType": "Consent", "id": format!("{p}-part2"), "status": "active",
                "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
                "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
                "patient": {"reference": format!("Patient/{p}")},
                "dateTime": "2024-02-02T09:00:00Z",
                "policyRule": {"coding": [{"system": ACT_CODE, "code": "OPTIN"}]},
                "provision": {"type": "permit", "period": {"start": "2024-02-02"}, "provision": [{
                    "type": "permit",
                    "actor": [{"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}]},
                               "reference": {"reference": format!("Organization/{PARTNER}")}}],
                    "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": PURPOSE}],
                    "securityLabel": [{"system": ACT_CODE, "code": "ETH"}]
                }]}
            });
            std::fs::write(
                dir.join(format!("consents/{p}-part2.json")),
                consent.to_string(),
            )
            .unwrap();
        }
    }
}

// ---------------------------------------------------------------------------
// The oracle: what the policy allows, from the fixture data alone.

struct Oracle<'a> {
    case: &'a Case,
    policies: &'a PolicySet,
    /// The upstream's resources by `Type/id` (current versions).
    fixture: &'a BTreeMap<String, Value>,
}

/// Every coding (`system` + `code`) anywhere in `value`.
fn all_codings(value: &Value, out: &mut Vec<Coding>, texts: &mut Vec<CodeText>) {
    match value {
        Value::Object(fields) => {
            let system = fields.get("system").and_then(Value::as_str);
            if let (Some(s), Some(Value::String(c))) = (system, fields.get("code")) {
                out.push(Coding::new(s, c));
            }
            // Display words of a coding, and plain texts, for the
            // categories' display terms.
            if let Some(Value::String(d)) = fields.get("display") {
                texts.push(CodeText {
                    system: system.map(str::to_owned),
                    text: d.to_lowercase(),
                });
            }
            if let Some(Value::String(t)) = fields.get("text") {
                texts.push(CodeText {
                    system: None,
                    text: t.to_lowercase(),
                });
            }
            fields.values().for_each(|v| all_codings(v, out, texts));
        }
        Value::Array(items) => items.iter().for_each(|v| all_codings(v, out, texts)),
        _ => {}
    }
}

/// Every `Patient/<id>` reference anywhere in `value`.
fn all_patient_refs(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(fields) => {
            if let Some(Value::String(r)) = fields.get("reference")
                && let Some(id) = accord_fhir::compartment::patient_id_of_reference(r)
            {
                out.insert(id.to_owned());
            }
            fields.values().for_each(|v| all_patient_refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| all_patient_refs(v, out)),
        _ => {}
    }
}

/// The values at `path` (`Type.a.b`, `value[x]` for any choice).
fn values_at<'v>(value: &'v Value, path: &[&str], out: &mut Vec<&'v Value>) {
    match value {
        Value::Array(items) => items.iter().for_each(|v| values_at(v, path, out)),
        Value::Object(fields) => match path {
            [] => out.push(value),
            [last] => match last.strip_suffix("[x]") {
                Some(prefix) => out.extend(fields.iter().filter_map(|(k, v)| {
                    k.strip_prefix(prefix)
                        .and_then(|rest| rest.chars().next())
                        .is_some_and(char::is_uppercase)
                        .then_some(v)
                })),
                None => out.extend(fields.get(*last)),
            },
            [first, rest @ ..] => {
                if let Some(next) = fields.get(*first) {
                    values_at(next, rest, out);
                }
            }
        },
        _ => {}
    }
}

fn strings_in(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Object(fields) => fields.values().for_each(|v| strings_in(v, out)),
        Value::Array(items) => items.iter().for_each(|v| strings_in(v, out)),
        _ => {}
    }
}

fn security_labels(resource: &Value) -> Vec<Coding> {
    resource["meta"]["security"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| Some(Coding::new(l["system"].as_str()?, l["code"].as_str()?)))
        .collect()
}

fn key_of(resource: &Value) -> String {
    format!(
        "{}/{}",
        resource["resourceType"].as_str().unwrap_or(""),
        resource["id"].as_str().unwrap_or("")
    )
}

impl Oracle<'_> {
    /// The patients `resource` belongs to: the compartment's, and any other
    /// patient it names.
    fn patients(resource: &Value) -> BTreeSet<String> {
        let mut patients = match patient_links(resource) {
            PatientLinks::Patients(p) => p,
            _ => BTreeSet::new(),
        };
        all_patient_refs(resource, &mut patients);
        patients
    }

    /// Whose record `resource` is, by the documented rules (policies/README
    /// "Whose data"): the members its organization elements name (the
    /// table counsel reads, `ORGANIZATION_ELEMENTS`), else the
    /// `serviceProvider` of the Encounter it was recorded in; `None` unless
    /// exactly one member is named. The fixture has no `meta.source`.
    fn member_of(&self, resource: &Value) -> Option<&'static str> {
        fn members(resource: &Value) -> BTreeSet<&'static str> {
            let ty = resource["resourceType"].as_str().unwrap_or("");
            let mut references = Vec::new();
            let elements = accord_policy::origin::ORGANIZATION_ELEMENTS
                .iter()
                .find(|(t, _)| *t == ty)
                .map_or(&[][..], |(_, e)| *e);
            for element in elements {
                let value = &resource[*element];
                for item in value
                    .as_array()
                    .cloned()
                    .unwrap_or_else(|| vec![value.clone()])
                {
                    references.extend(item["reference"].as_str().map(str::to_owned));
                    references.extend(item["actor"]["reference"].as_str().map(str::to_owned));
                }
            }
            MEMBER_ORGANIZATIONS
                .iter()
                .filter(|(org, _)| references.iter().any(|r| r == org))
                .map(|(_, member)| *member)
                .collect()
        }
        let one = |named: BTreeSet<&'static str>| {
            (named.len() == 1)
                .then(|| named.into_iter().next())
                .flatten()
        };
        let named = members(resource);
        if !named.is_empty() {
            return one(named);
        }
        let encounter = ["encounter", "context"]
            .iter()
            .find_map(|k| resource[*k]["reference"].as_str())?;
        one(members(self.fixture.get(encounter)?))
    }

    /// Why `resource` (as the fixture holds it) must not be released, if so.
    fn forbidden(&self, resource: &Value) -> Option<String> {
        let ty_name = resource["resourceType"].as_str().unwrap_or("");
        let Ok(ty) = ResourceType::parse(ty_name) else {
            return Some(format!("unknown type {ty_name}"));
        };
        if !self.case.readable(ty_name) {
            return Some(format!("type {ty_name} not granted"));
        }
        let patients = Self::patients(resource);
        if is_patient_data(ty) && patients.is_empty() {
            return Some("patient data without a patient".into());
        }
        if let Some(p) = patients.iter().find(|p| !self.case.in_reach(p)) {
            return Some(format!("patient {p} out of reach"));
        }
        // A grant's constraint says what may be released, in any position.
        if let Some((constrained, "category", value)) = self.case.constraint
            && constrained == ty_name
            && self.case.types.contains(constrained)
        {
            let categories: Vec<&Value> = resource["category"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|c| c["coding"].as_array().into_iter().flatten())
                .map(|c| &c["code"])
                .collect();
            if !categories.iter().any(|c| *c == value) {
                return Some(format!("outside the constraint category={value}"));
            }
        }
        for inner in resource["contained"].as_array().into_iter().flatten() {
            if inner["resourceType"] == "Patient" {
                return Some("contains a Patient".into());
            }
        }
        // A grant's source is about patient records; directory resources
        // (Practitioner, Organization) follow the grant's types only (the
        // gateway checks no policy on data of no patient).
        if let Some(source) = self.case.source
            && !patients.is_empty()
        {
            match self.member_of(resource) {
                Some(member) if member == source => {}
                Some(member) => {
                    return Some(format!("{member}'s record, the grant names {source}"));
                }
                None => {
                    return Some(format!(
                        "whose record is undetermined, the grant names {source}"
                    ));
                }
            }
        }
        let mut codes = Vec::new();
        let mut code_texts = Vec::new();
        all_codings(resource, &mut codes, &mut code_texts);
        let mut labels = security_labels(resource);
        // A prescription that names its drug by reference is what its
        // Medication is: the Medication's codes and labels count, and one
        // the fixture does not hold leaves it unclassifiable.
        if let Some(reference) = resource["medicationReference"]["reference"].as_str()
            && !reference.starts_with('#')
        {
            let Some(medication) = self.fixture.get(reference) else {
                return Some(format!("medication {reference} unreadable"));
            };
            all_codings(medication, &mut codes, &mut code_texts);
            labels.extend(security_labels(medication));
        }
        let covered = self
            .policies
            .categories()
            .flat_map(|c| c.systems())
            .any(|system| codes.iter().any(|c| c.system == system));
        if !covered
            && accord_policy::agreement::UNCLASSIFIED_WITHHELD_BY_DEFAULT.contains(&ty_name)
            && !labels.iter().any(|l| {
                self.policies
                    .categories()
                    .any(|c| c.security_labels.contains(l))
            })
        {
            return Some(format!("unclassifiable {ty_name}"));
        }
        let facts = ResourceFacts {
            codes,
            code_texts,
            security_labels: labels,
            ..ResourceFacts::default()
        };
        for category in self.policies.categories() {
            if !category.matches(&facts) {
                continue;
            }
            let id = category.id.as_str();
            if !self.case.sensitive.contains(id) || self.case.forbid_sensitive.contains(id) {
                return Some(format!("category {id} not granted"));
            }
            if category.requires_consent
                && (patients.is_empty()
                    || !patients
                        .iter()
                        .all(|p| self.case.part2_consented.contains(p)))
            {
                return Some(format!("category {id} without consent"));
            }
        }
        None
    }

    /// Checks one released resource against its fixture original.
    fn check_released(&self, released: &Value, context: &str) {
        let key = key_of(released);
        let original = self.fixture.get(&key).unwrap_or_else(|| {
            panic!("{context}: released {key}, which the fixture does not hold")
        });
        if let Some(why) = self.forbidden(original) {
            panic!("{context}: released {key}: {why}\n{released}");
        }
        // Redaction: the elements are gone, and nothing they held survives
        // elsewhere (the narrative) unless it is also outside them.
        let ty = key.split('/').next().unwrap();
        let mut removed = Vec::new();
        let mut remaining = original.clone();
        for path in &self.case.redactions {
            let mut segments = path.split('.');
            if segments.next() != Some(ty) {
                continue;
            }
            let segments: Vec<&str> = segments.collect();
            let mut found = Vec::new();
            values_at(released, &segments, &mut found);
            assert!(
                found.is_empty(),
                "{context}: {key} still has redacted {path}: {released}"
            );
            let mut held = Vec::new();
            values_at(original, &segments, &mut held);
            held.iter().for_each(|v| strings_in(v, &mut removed));
            remove_path(&mut remaining, &segments);
        }
        if removed.is_empty() {
            return;
        }
        if let Some(fields) = remaining.as_object_mut() {
            fields.remove("text");
        }
        let remaining = remaining.to_string();
        let out = released.to_string();
        for value in removed.iter().filter(|v| v.len() >= 4) {
            assert!(
                remaining.contains(value.as_str()) || !out.contains(value.as_str()),
                "{context}: {key} leaks redacted value {value:?}: {out}"
            );
        }
        assert!(
            released["meta"]["security"]
                .as_array()
                .is_some_and(|l| l.iter().any(|l| l["code"] == "REDACTED")),
            "{context}: {key} redacted without the REDACTED label"
        );
    }

    /// How many resources of `ty` for these patients (all when `None`) the
    /// partner could be shown at most.
    fn releasable_count(&self, ty: &str, patients: Option<&BTreeSet<String>>) -> usize {
        self.fixture
            .values()
            .filter(|r| r["resourceType"] == ty)
            .filter(|r| patients.is_none_or(|named| !Self::patients(r).is_disjoint(named)))
            .filter(|r| self.forbidden(r).is_none())
            .count()
    }
}

fn remove_path(value: &mut Value, path: &[&str]) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(|v| remove_path(v, path)),
        Value::Object(fields) => match path {
            [] => {}
            [last] => match last.strip_suffix("[x]") {
                Some(prefix) => fields.retain(|k, _| {
                    !k.strip_prefix(prefix)
                        .and_then(|r| r.chars().next())
                        .is_some_and(char::is_uppercase)
                }),
                None => {
                    fields.remove(*last);
                }
            },
            [first, rest @ ..] => {
                if let Some(next) = fields.get_mut(*first) {
                    remove_path(next, rest);
                }
            }
        },
        _ => {}
    }
}

// ---------------------------------------------------------------------------
// Fixture additions: what the generated population lacks but real data has.

/// Adds narratives that repeat elements a grant may redact, Part 2 data
/// found only by code in less usual places, and contained resources.
fn enrich_fixture(h: &Harness, rng: &mut Rng, patients: &[String]) {
    let store = h.upstream.store();
    for (n, p) in patients.iter().enumerate() {
        let Some(mut patient) = store.read("Patient", p) else {
            continue;
        };
        if rng.chance(60) {
            let line = patient["address"][0]["line"][0]
                .as_str()
                .unwrap_or("")
                .to_owned();
            let phone = patient["telecom"][0]["value"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            patient["text"] = json!({"status": "generated",
                "div": format!("<div xmlns=\"http://www.w3.org/1999/xhtml\">Lives at {line}, phone {phone}</div>")});
            store.update(patient).unwrap();
        }
        let reference = json!({"reference": format!("Patient/{p}")});
        match n % 4 {
            // A hospital encounter for opioid use disorder, no label.
            0 => {
                store
                    .create(json!({"resourceType": "Encounter", "status": "finished",
                        "class": {"system": ACT_CODE, "code": "EMER"},
                        "subject": reference,
                        "reasonCode": [{"coding": [{"system": ICD10, "code": "F11.20"}]}],
                        "participant": [{"individual": {"reference": "Practitioner/prac-org-st-brigid-1"}}]}))
                    .unwrap();
            }
            // A prescription whose reason is alcohol dependence.
            1 => {
                store
                    .create(json!({"resourceType": "MedicationRequest", "status": "active", "intent": "order",
                        "medicationCodeableConcept": {"text": "naltrexone"},
                        "subject": reference,
                        "reasonCode": [{"coding": [{"system": ICD10, "code": "F10.20"}]}],
                        "dosageInstruction": [{"text": "50 mg daily, private instructions"}]}))
                    .unwrap();
            }
            // A care plan carrying its diagnosis as a contained Condition.
            2 => {
                store
                    .create(
                        json!({"resourceType": "CarePlan", "status": "active", "intent": "plan",
                        "subject": reference,
                        "contained": [{"resourceType": "Condition", "id": "dx",
                            "code": {"coding": [{"system": ICD10, "code": "F12.20"}]},
                            "subject": reference}],
                        "addresses": [{"reference": "#dx"}]}),
                    )
                    .unwrap();
            }
            // An observation whose narrative repeats its value.
            _ => {
                store
                    .create(json!({"resourceType": "Observation", "status": "final",
                        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
                        "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
                        "subject": reference,
                        "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Glucose 7777 mg/dL</div>"},
                        "valueQuantity": {"value": 7777, "unit": "mg/dL", "code": "mg/dL", "system": "http://unitsofmeasure.org"},
                        "performer": [{"reference": "Practitioner/prac-org-maple-primary-1"}]}))
                    .unwrap();
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Requests.

#[derive(Debug, Default)]
struct Stats {
    cases: usize,
    requests: usize,
    released: usize,
    refused: usize,
    compared: usize,
    upstream_refused: usize,
    timeouts: usize,
    /// Released under a grant that names a source.
    released_under_source: usize,
    /// Generated requests per class (pages and B-vs-Z twins not counted).
    classes: BTreeMap<&'static str, usize>,
    /// B-vs-Z comparisons per class.
    compared_by_class: BTreeMap<&'static str, usize>,
}

/// One generated request: a path below the base (a GET), or `PUT path`
/// (the body is the fixture's resource), or `BATCH a,b,c` (a batch of
/// reads); the patient it names if it names exactly one; its class.
struct Probe {
    path: String,
    patient: Option<String>,
    class: &'static str,
}

/// Search and sort parameters that read a redactable element:
/// (redacted path, searched type, parameter, value).
const REDACTED_PARAMS: &[(&str, &str, &str, &str)] = &[
    ("Patient.address", "Patient", "address-city", "Springfield"),
    ("Patient.telecom", "Patient", "phone", "555-0100"),
    ("Patient.birthDate", "Patient", "birthdate", "ge1970"),
    ("Patient.name", "Patient", "family", "Doe"),
    ("Patient.name", "Patient", "_sort", "-family"),
    (
        "Observation.value[x]",
        "Observation",
        "value-quantity",
        "gt5",
    ),
    (
        "Observation.performer",
        "Observation",
        "performer",
        "Practitioner/x",
    ),
    (
        "Encounter.participant",
        "Encounter",
        "practitioner",
        "Practitioner/x",
    ),
];

/// Malformed or unknown parameters a server refuses.
const INVALID_PARAMS: &[&str] = &[
    "_count=abc",
    "_count=-1",
    "_summary=bogus",
    "_elements=na..me",
    "bogus-parameter=1",
    "_sort=bogus-parameter",
    "_total=maybe",
    "date=yesterday",
];

/// A random request the partner might send.
fn random_request(
    rng: &mut Rng,
    case: &Case,
    patients: &[String],
    fixture: &BTreeMap<String, Value>,
) -> Probe {
    let patient = if rng.chance(10) {
        NO_SUCH_PATIENT.to_owned()
    } else {
        rng.pick(patients).clone()
    };
    let granted: Vec<&str> = case.types.iter().copied().collect();
    let ty = match case.constraint {
        // Reads that violate a constraint are a class of their own.
        Some((constrained, _, _)) if rng.chance(30) => constrained,
        _ if rng.chance(80) => *rng.pick(&granted),
        _ => *rng.pick(TYPES),
    };
    let searchable = if SEARCHABLE.contains(&ty) {
        ty
    } else {
        *rng.pick(SEARCHABLE)
    };
    let probe = |path: String, patient: Option<String>, class| Probe {
        path,
        patient,
        class,
    };
    let of_type = |ty: &str| -> Vec<&String> {
        fixture
            .keys()
            .filter(|k| k.starts_with(&format!("{ty}/")))
            .collect()
    };
    match rng.below(18) {
        0 => probe(format!("Patient/{patient}"), Some(patient), "read-patient"),
        1 | 2 => {
            let of_type = of_type(ty);
            if of_type.is_empty() {
                return probe(format!("{ty}/none"), None, "read-by-id");
            }
            let key = rng.pick(&of_type);
            if rng.chance(30) {
                probe(format!("{key}/_history/1"), None, "read-by-id")
            } else {
                probe((*key).clone(), None, "read-by-id")
            }
        }
        3 => probe(
            format!("Patient/{patient}/$everything"),
            Some(patient),
            "everything",
        ),
        4 => {
            // Several patients at once.
            let other = rng.pick(patients);
            probe(
                format!("{searchable}?patient={patient},{other}&_count=200"),
                None,
                "several-patients",
            )
        }
        5 => {
            // A population search.
            let extra = match searchable {
                "Observation" => "&category=laboratory",
                "Condition" => "&category=problem-list-item",
                _ => "",
            };
            probe(format!("{searchable}?_count=50{extra}"), None, "population")
        }
        6 => probe(
            format!("{searchable}?patient={patient}&_include={searchable}:patient&_count=200"),
            Some(patient),
            "include",
        ),
        7 => probe(
            format!("Patient?_id={patient}&_revinclude={searchable}:patient"),
            Some(patient),
            "revinclude",
        ),
        8 => probe(
            format!("{searchable}?patient={patient}&_summary=count"),
            Some(patient),
            "summary-count",
        ),
        9 => probe(
            format!("{searchable}?patient={patient}&_elements=id,code"),
            Some(patient),
            "elements",
        ),
        10 => {
            let spelling = *rng.pick(&[
                "subject=Patient/",
                "patient=Patient%2F",
                "subject:Patient=",
                "patient=",
            ]);
            probe(
                format!("{searchable}?{spelling}{patient}&_count=3&_total=accurate"),
                Some(patient),
                "spellings",
            )
        }
        11 => {
            // Paging over a mix of patients in and out of reach.
            let other = rng.pick(patients);
            let count = 1 + rng.below(2);
            probe(
                format!("{searchable}?patient={other},{patient}&_count={count}"),
                Some(patient),
                "paging-mixed",
            )
        }
        12 => {
            let invalid = *rng.pick(INVALID_PARAMS);
            probe(
                format!("{searchable}?patient={patient}&{invalid}"),
                Some(patient),
                "invalid-param",
            )
        }
        13 => {
            let (_, ty, param, value) = *rng.pick(REDACTED_PARAMS);
            let named = if ty == "Patient" { "_id" } else { "patient" };
            probe(
                format!("{ty}?{named}={patient}&{param}={value}"),
                Some(patient),
                "redacted-param",
            )
        }
        14 => probe(
            format!("Patient/{patient}/{searchable}?_count=2"),
            Some(patient),
            "compartment",
        ),
        15 => {
            let mut reads = Vec::new();
            for _ in 0..3 {
                let of_type = of_type(ty);
                if let Some(key) = (!of_type.is_empty()).then(|| rng.pick(&of_type)) {
                    reads.push((*key).clone());
                }
            }
            probe(format!("BATCH {}", reads.join(",")), None, "batch-reads")
        }
        16 => {
            // An update of an existing resource, unchanged.
            let of_type = of_type(ty);
            if of_type.is_empty() {
                return probe(format!("{ty}/none"), None, "read-by-id");
            }
            let key = rng.pick(&of_type);
            probe(format!("PUT {key}"), None, "write-existing")
        }
        _ => probe(
            format!("{searchable}?patient={patient}&_count=200"),
            Some(patient),
            "patient-search",
        ),
    }
}

/// A response with what can differ between two patients' answers masked.
fn masked(response: &PartnerResponse, patient: &str) -> (u16, String) {
    let mut text = response.text().replace(patient, "PATIENT");
    if let Ok(mut body) = serde_json::from_str::<Value>(&text) {
        if body["resourceType"] == "Bundle"
            && let Some(fields) = body.as_object()
        {
            // Rebuilt rather than removed from, which would reorder keys.
            body = Value::Object(
                fields
                    .iter()
                    .filter(|(k, _)| *k != "id" && *k != "meta")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            );
        }
        text = body.to_string();
    }
    (response.status, text)
}

impl Oracle<'_> {
    /// 1 for a patient record released under a grant that names a source.
    fn patient_record_under_source(&self, released: &Value) -> usize {
        usize::from(self.case.source.is_some() && !Self::patients(released).is_empty())
    }

    /// Checks one response; returns the next-page URL if there is one.
    fn check_response(
        &self,
        h: &Harness,
        path: &str,
        response: &PartnerResponse,
        stats: &mut Stats,
    ) -> Option<String> {
        let context = format!("GET {path} -> {}", response.status);
        let upstream = h.upstream.base_url();
        assert!(
            !response.text().contains(&upstream),
            "{context}: upstream address leaked: {}",
            response.text()
        );
        // An upstream that does not answer in time (a loaded machine)
        // releases nothing; counted, not failed.
        if response.status == 504 {
            stats.timeouts += 1;
            return None;
        }
        assert!(
            response.status < 500,
            "{context}: server error {}",
            response.text()
        );
        if response.status != 200 {
            stats.refused += 1;
            return None;
        }
        // A write whose stored copy the partner may not see is answered
        // with its status alone.
        if response.text().is_empty() {
            stats.refused += 1;
            return None;
        }
        let body = response.json().unwrap();
        if body["resourceType"] != "Bundle" {
            stats.released += 1;
            stats.released_under_source += self.patient_record_under_source(&body);
            self.check_released(&body, &context);
            return None;
        }
        let mut matches = 0usize;
        let mut searched = None;
        if let Some((ty, _)) = path.split_once('?') {
            // `Patient/1/Observation?...` searches Observations.
            searched = ty.rsplit('/').next().map(str::to_owned);
        }
        for entry in body["entry"].as_array().into_iter().flatten() {
            if entry["search"]["mode"] == "outcome" {
                // Notices (the 42 CFR 2.32 redisclosure notice) carry no data.
                assert_eq!(
                    entry["resource"]["resourceType"], "OperationOutcome",
                    "{context}: an outcome entry that is not an OperationOutcome"
                );
                continue;
            }
            // A batch entry that was refused carries no resource (or only
            // an outcome).
            if entry["resource"].is_null()
                || entry["resource"]["resourceType"] == "OperationOutcome"
            {
                continue;
            }
            stats.released += 1;
            stats.released_under_source += self.patient_record_under_source(&entry["resource"]);
            let url = entry["fullUrl"].as_str().unwrap_or("");
            assert!(
                url.is_empty() || url.starts_with(h.gateway.public_base()),
                "{context}: fullUrl {url}"
            );
            if entry["search"]["mode"] != "include" {
                matches += 1;
                if let Some(ty) = &searched {
                    assert_eq!(
                        entry["resource"]["resourceType"].as_str(),
                        Some(ty.as_str()),
                        "{context}: match of another type"
                    );
                }
            }
            self.check_released(&entry["resource"], &context);
        }
        let paged = body["link"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|l| l["relation"] == "next" || l["relation"] == "previous");
        if let Some(total) = body["total"].as_u64() {
            // The gateway pages over released matches: one page holds them
            // all unless there are links to others.
            if paged {
                assert!(
                    total as usize >= matches,
                    "{context}: total {total} below the {matches} on this page"
                );
            } else {
                assert_eq!(
                    total as usize, matches,
                    "{context}: total is not the released matches"
                );
            }
            if let Some(ty) = &searched {
                let bound = self.releasable_count(ty, None);
                assert!(
                    total as usize <= bound,
                    "{context}: total {total} exceeds the {bound} releasable"
                );
            }
        }
        body["link"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|l| l["relation"] == "next")
            .and_then(|l| l["url"].as_str())
            .map(str::to_owned)
    }
}

/// Sends a probe (see [`Probe`]) and follows `next` links (up to four
/// pages); returns each page's path and response.
async fn send_and_follow(
    h: &Harness,
    client: &accord_testkit::client::PartnerClient,
    path: &str,
    fixture: &BTreeMap<String, Value>,
) -> Vec<(String, PartnerResponse)> {
    let headers = [
        ("X-Purpose-Of-Use", PURPOSE),
        ("Content-Type", "application/fhir+json"),
    ];
    if let Some(key) = path.strip_prefix("PUT ") {
        // The fixture's resource unchanged (or, for `-none`, as another id).
        let original = key.trim_end_matches("-none");
        let mut body = fixture[original].clone();
        body["id"] = json!(key.split_once('/').unwrap().1);
        let response = client
            .send(
                http::Method::PUT,
                &h.url(key),
                &headers,
                Some(serde_json::to_vec(&body).unwrap()),
            )
            .await
            .unwrap();
        return vec![(key.to_owned(), response)];
    }
    if let Some(reads) = path.strip_prefix("BATCH ") {
        let entries: Vec<Value> = reads
            .split(',')
            .filter(|r| !r.is_empty())
            .map(|r| json!({"request": {"method": "GET", "url": r}}))
            .collect();
        let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": entries});
        let response = client
            .send(
                http::Method::POST,
                &h.url(""),
                &headers,
                Some(serde_json::to_vec(&bundle).unwrap()),
            )
            .await
            .unwrap();
        return vec![(String::new(), response)];
    }
    let mut pages = Vec::new();
    let mut url = h.url(path);
    for _ in 0..4 {
        let response = client.get(&url, PURPOSE).await.unwrap();
        let next = response.json().ok().and_then(|body| {
            body["link"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|l| l["relation"] == "next")
                .and_then(|l| l["url"].as_str())
                .map(str::to_owned)
        });
        pages.push((path.to_owned(), response));
        match next {
            Some(next) => url = next,
            None => break,
        }
    }
    pages
}

impl Oracle<'_> {
    /// Whether the partner may change the resource at `key`: updates are
    /// granted for its type and every patient it belongs to is in reach.
    fn may_write(&self, key: &str) -> bool {
        let ty = key.split('/').next().unwrap_or("");
        self.case.interactions.contains(&"update")
            && self.case.readable(ty)
            && Self::patients(&self.fixture[key])
                .iter()
                .all(|p| self.case.in_reach(p))
    }

    /// What a class of request must be answered with, whoever it names.
    fn check_class(&self, probe: &Probe, response: &PartnerResponse, context: &str) {
        match probe.class {
            "invalid-param" => assert_eq!(
                response.status,
                400,
                "{context}: an invalid parameter was not refused: {}",
                response.text()
            ),
            "redacted-param" => {
                let (redacted, ty, param, _) = REDACTED_PARAMS
                    .iter()
                    .find(|(_, ty, param, _)| {
                        probe.path.starts_with(&format!("{ty}?"))
                            && probe.path.contains(&format!("&{param}="))
                    })
                    .copied()
                    .unwrap();
                if self.case.types.contains(ty) && self.case.redactions.contains(&redacted) {
                    assert_ne!(
                        response.status,
                        200,
                        "{context}: `{param}` reads redacted {redacted}: {}",
                        response.text()
                    );
                }
            }
            _ => {}
        }
    }
}

async fn run_case(h: &Harness, rng: &mut Rng, seed: u64, index: usize, stats: &mut Stats) {
    let patients: Vec<String> = (1..=accord_e2e::PATIENTS)
        .map(population::patient_id)
        .collect();
    let case = Case::generate(rng, &patients);
    let policy_dir = h.dir.path().join(format!("oracle-policies-{index}"));
    let partners = std::fs::read_to_string(h.dir.path().join("policies/partners.toml")).unwrap();
    case.write_policies(&policy_dir, &partners);
    let policies = PolicySet::load_dir(&policy_dir)
        .unwrap_or_else(|e| panic!("seed {seed} case {index}: policies invalid: {e:?}\n{case:#?}"));
    h.gateway.policies().replace(policies.clone());

    let mut fixture = BTreeMap::new();
    // Medications are not granted, but classify the prescriptions that
    // name them.
    for ty in TYPES.iter().chain(&["Medication"]) {
        for resource in h.upstream.store().all(ty) {
            fixture.insert(key_of(&resource), resource);
        }
    }
    let oracle = Oracle {
        case: &case,
        policies: &policies,
        fixture: &fixture,
    };
    let client = h.client(PARTNER);
    for _ in 0..20 {
        let probe = random_request(rng, &case, &patients, &fixture);
        let path = probe.path.clone();
        *stats.classes.entry(probe.class).or_default() += 1;
        let context = format!("seed {seed} case {index}: {path}\n{case:?}");
        let stored_version = |key: &str| {
            let (ty, id) = key.split_once('/').unwrap();
            h.upstream
                .store()
                .read(ty, id)
                .map(|r| r["meta"]["versionId"].clone())
        };
        let written = path.strip_prefix("PUT ").map(str::to_owned);
        let before = written.as_deref().map(stored_version);
        let pages = send_and_follow(h, &client, &path, &fixture).await;
        stats.requests += pages.len();
        for (page_path, response) in &pages {
            let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                oracle.check_response(h, page_path, response, stats);
            }));
            checked.unwrap_or_else(|_| panic!("{context}"));
        }
        let Some((_, first)) = pages.first() else {
            continue;
        };
        oracle.check_class(&probe, first, &context);
        if let Some(key) = &written
            && !oracle.may_write(key)
        {
            assert_eq!(
                before.clone().flatten(),
                stored_version(key),
                "{context}: a write reached a resource out of reach ({})",
                first.text()
            );
            // Answered exactly like an update of an id nobody has.
            let other = send_and_follow(h, &client, &format!("PUT {key}-none"), &fixture).await;
            stats.requests += 1;
            if let Some((_, other)) = other.first() {
                stats.compared += 1;
                *stats.compared_by_class.entry(probe.class).or_default() += 1;
                assert_eq!(
                    (first.status, first.text().replace(key.as_str(), "KEY")),
                    (
                        other.status,
                        other.text().replace(&format!("{key}-none"), "KEY")
                    ),
                    "{context}: a resource out of reach is told apart from a missing one"
                );
            }
        }
        // A patient out of reach is answered exactly as one with no data,
        // page by page.
        if let Some(patient) = probe.patient
            && patient != NO_SUCH_PATIENT
            && !case.in_reach(&patient)
        {
            let others = send_and_follow(
                h,
                &client,
                &path.replace(&patient, NO_SUCH_PATIENT),
                &fixture,
            )
            .await;
            stats.requests += others.len();
            let Some((_, other)) = others.first() else {
                continue;
            };
            // GAP: a parameter R4 defines that the testkit does not support
            // (e.g. `_revinclude` of some types) is refused by the upstream
            // for a patient with no data, but the gateway answers a patient
            // out of reach without asking it. Counted, not compared.
            if other.status == 400 && other.text().contains("the FHIR server refused") {
                stats.upstream_refused += 1;
                continue;
            }
            if pages.iter().chain(&others).any(|(_, r)| r.status == 504) {
                stats.timeouts += 1;
                continue;
            }
            stats.compared += 1;
            *stats.compared_by_class.entry(probe.class).or_default() += 1;
            assert_eq!(pages.len(), others.len(), "{context}: page counts differ");
            for ((_, one), (_, other)) in pages.iter().zip(&others) {
                assert_eq!(
                    masked(one, &patient),
                    masked(other, NO_SUCH_PATIENT),
                    "{context}: an out-of-reach patient is told apart from one with no data"
                );
            }
        }
    }
    stats.cases += 1;
}

/// The harness, with each member's `organization` named in partners.toml
/// so that records can be placed by their organization elements.
async fn harness() -> Harness {
    Harness::start_with(accord_e2e::Options {
        partner_lines: MEMBER_ORGANIZATIONS
            .iter()
            .map(|(org, member)| (*member, format!("organization = \"{org}\"")))
            .collect(),
        ..accord_e2e::Options::default()
    })
    .await
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test]
async fn nothing_leaves_that_the_policy_applied_to_the_fixture_does_not_allow() {
    let seed = env_number("ACCORD_ORACLE_SEED", 1);
    let cases = env_number("ACCORD_ORACLE_CASES", 20) as usize;
    let h = harness().await;
    let mut rng = Rng(seed);
    let patients: Vec<String> = (1..=accord_e2e::PATIENTS)
        .map(population::patient_id)
        .collect();
    enrich_fixture(&h, &mut rng, &patients);
    let mut stats = Stats::default();
    for index in 0..cases {
        run_case(&h, &mut rng, seed, index, &mut stats).await;
    }
    eprintln!("oracle: seed {seed}: {stats:?}");
    for (class, count) in &stats.classes {
        let compared = stats.compared_by_class.get(class).copied().unwrap_or(0);
        eprintln!("oracle: class {class}: {count} generated, {compared} compared B-vs-Z");
    }
    assert!(
        stats.released_under_source > 0 || cases < 10,
        "nothing was released under a grant that names a source: {stats:?}"
    );
    assert!(
        stats.released > stats.requests / 4,
        "the run released too little to mean anything: {stats:?}"
    );
}

#[tokio::test]
async fn a_patient_out_of_reach_is_answered_byte_for_byte_like_one_with_no_data() {
    let h = harness().await;
    let outside = population::patient_id(2);
    let opted_out = population::patient_id(3);
    let members: BTreeSet<String> = [1, 3, 4]
        .iter()
        .map(|n| format!("Patient/{}", population::patient_id(*n)))
        .collect();
    let case = Case {
        types: ["Patient", "Observation", "Condition", "Encounter"].into(),
        interactions: vec!["read", "search", "$everything"],
        redactions: vec![],
        cohort: Some((CohortKind::List, members)),
        sensitive: BTreeSet::new(),
        forbid_sensitive: BTreeSet::new(),
        forbid_types: BTreeSet::new(),
        constraint: None,
        population_search: false,
        source: None,
        opted_out: [opted_out.clone()].into(),
        part2_consented: BTreeSet::new(),
    };
    let dir = h.dir.path().join("existence-policies");
    let partners = std::fs::read_to_string(h.dir.path().join("policies/partners.toml")).unwrap();
    case.write_policies(&dir, &partners);
    h.gateway
        .policies()
        .replace(PolicySet::load_dir(&dir).unwrap());
    let client = h.client(PARTNER);
    let mut compared = 0;
    for patient in [&outside, &opted_out] {
        let data = h
            .upstream
            .store()
            .all("Observation")
            .iter()
            .filter(|o| o["subject"]["reference"] == format!("Patient/{patient}").as_str())
            .count();
        assert!(
            data > 0,
            "{patient} has data upstream, so there is something to hide"
        );
        for path in [
            "Observation?patient=P",
            "Observation?subject=Patient/P&_count=5",
            "Condition?patient=P&_include=Condition:patient",
            "Encounter?patient=Patient%2FP&_total=accurate",
            "Encounter?subject=Patient/P&_count=3",
            "Patient/P",
            "Patient/P/$everything",
            "Observation?patient=P&_include=Observation:performer:Practitioner",
            "Observation?patient=P&_has:Condition:subject:code=F10.20",
        ] {
            let forbidden = client
                .get(&h.url(&path.replace('P', patient)), PURPOSE)
                .await
                .unwrap();
            let no_data = client
                .get(&h.url(&path.replace('P', NO_SUCH_PATIENT)), PURPOSE)
                .await
                .unwrap();
            assert_eq!(
                masked(&forbidden, patient),
                masked(&no_data, NO_SUCH_PATIENT),
                "{path} for {patient}: only ids and timestamps may differ"
            );
            compared += 1;
        }
    }
    assert_eq!(compared, 18);
}
