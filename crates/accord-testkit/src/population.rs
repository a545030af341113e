//! Deterministic synthetic population for tests and demos.
//!
//! Three partner organizations share an overlapping patient population:
//! a behavioral-health clinic (a 42 CFR Part 2 program), a primary-care
//! practice and a hospital. The generator draws from a SplitMix64 stream per
//! patient, uses no clock, and writes canonical NDJSON, so one seed always
//! yields the same bytes and a small sample can be committed as fixtures.
//!
//! What is in it, and what tests may rely on:
//! - `Organization` for [`ORG_BEHAVIORAL`], [`ORG_PRIMARY`], [`ORG_HOSPITAL`]
//!   (NPI identifiers) and three `Practitioner`s per organization;
//! - `Patient` `pat-0001`.. with `managingOrganization`; each patient has
//!   `Encounter`s at one to three organizations (`serviceProvider`);
//! - `Condition`s coded in ICD-10-CM and (where verified) SNOMED CT:
//!   substance-use disorders (F10.20, F11.20, F12.20, F14.20), mental health
//!   (F32.9, F41.1), chronic disease (I10, E11.9, J45.909);
//! - every record a Part 2 program makes about a substance-use disorder
//!   (Condition, its MedicationRequest, CarePlan, outgoing referral, ethanol
//!   level) carries `meta.security` ETH + R; the same diagnoses made by the
//!   hospital carry no label and must be found by code;
//! - vital-sign and laboratory `Observation`s, `MedicationRequest`s
//!   (buprenorphine, naltrexone, sertraline, lisinopril, metformin),
//!   `CarePlan`s, referral `ServiceRequest` + `Task` pairs between partners;
//! - records coded as EHRs code them, beside ICD-10-CM: CPT `Procedure`s
//!   (SBIRT, psychotherapy, ECG, ...), RxNorm products inline and by
//!   `medicationReference` to a `Medication` (buprenorphine/naloxone,
//!   bictegravir/emtricitabine/tenofovir, sertraline, metformin), LOINC
//!   opiate screens and HIV viral loads, SNOMED CT-only Conditions (another
//!   organization's unlabelled record of a substance-use disorder; HIV
//!   infection for a few patients) — see `coded.rs`;
//! - `Consent`: Part 2 permits (with `provision.securityLabel` ETH and the
//!   recipient organizations as actors) for most, not all, clinic patients
//!   with a SUD; general opt-outs (`provision.type` deny) for a few patients;
//! - `Group` cohorts of patients seen by two partners
//!   ([`COHORT_BH_PRIMARY`], [`COHORT_BH_HOSPITAL`], [`COHORT_PRIMARY_HOSPITAL`]).

mod care;
mod clinical;
mod coded;
mod codes;
mod dates;
mod json;
mod ndjson;
mod orgs;
mod patient;
mod rng;

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use serde_json::Value;

/// Riverside Behavioral Health, a behavioral-health clinic (Part 2 program).
pub const ORG_BEHAVIORAL: &str = "org-riverside-bh";
/// Maple Street Primary Care.
pub const ORG_PRIMARY: &str = "org-maple-primary";
/// St. Brigid Regional Hospital.
pub const ORG_HOSPITAL: &str = "org-st-brigid";
/// The three organization ids, in a fixed order.
pub const ORGANIZATIONS: [&str; 3] = [ORG_BEHAVIORAL, ORG_PRIMARY, ORG_HOSPITAL];

/// Group of patients seen by both the clinic and primary care.
pub const COHORT_BH_PRIMARY: &str = "group-cohort-bh-primary";
/// Group of patients seen by both the clinic and the hospital.
pub const COHORT_BH_HOSPITAL: &str = "group-cohort-bh-hospital";
/// Group of patients seen by both primary care and the hospital.
pub const COHORT_PRIMARY_HOSPITAL: &str = "group-cohort-primary-hospital";

/// A generated (or loaded) set of FHIR R4 resources as JSON.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Population {
    /// Every resource, each a JSON object with `resourceType` and `id`.
    pub resources: Vec<Value>,
}

/// Generates `patients` patients and their records from `seed`.
///
/// Patient `n` depends only on `seed` and `n`, so a smaller population is a
/// prefix of a larger one with the same seed (cohort Groups aside, which
/// list whoever is present).
pub fn generate(seed: u64, patients: usize) -> Population {
    let mut resources = orgs::organizations();
    resources.extend(orgs::practitioners(seed));
    let mut cohorts: Vec<Vec<String>> = vec![Vec::new(); orgs::COHORTS.len()];
    for n in 1..=patients {
        let records = patient::generate(seed, n);
        for (cohort, members) in orgs::COHORTS.iter().zip(cohorts.iter_mut()) {
            if records.care.contains(&cohort.a) && records.care.contains(&cohort.b) {
                members.push(records.id.clone());
            }
        }
        resources.extend(records.resources);
    }
    for (cohort, members) in orgs::COHORTS.iter().zip(&cohorts) {
        resources.push(orgs::cohort_group(cohort, members));
    }
    Population { resources }
}

/// The FHIR id of the `n`th generated patient (1-based), e.g. `pat-0001`.
pub fn patient_id(n: usize) -> String {
    patient::patient_id(n)
}

/// `resourceType` of a resource, if it has one.
pub fn resource_type(resource: &Value) -> Option<&str> {
    type_of(resource)
}

// A private alias so methods with a `resource_type` parameter can call it.
fn type_of(resource: &Value) -> Option<&str> {
    resource.get("resourceType").and_then(Value::as_str)
}

/// `id` of a resource, if it has one.
pub fn resource_id(resource: &Value) -> Option<&str> {
    resource.get("id").and_then(Value::as_str)
}

// === impl Population ===

impl Population {
    /// Resources of one type, in generation order.
    pub fn of_type<'a>(&'a self, resource_type: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.resources
            .iter()
            .filter(move |r| type_of(r) == Some(resource_type))
    }

    /// One resource by type and id.
    pub fn get(&self, resource_type: &str, id: &str) -> Option<&Value> {
        self.resources
            .iter()
            .find(|r| type_of(r) == Some(resource_type) && resource_id(r) == Some(id))
    }

    /// Resources grouped by type, each group sorted by id (the NDJSON order).
    pub fn by_type(&self) -> BTreeMap<String, Vec<&Value>> {
        let mut groups: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
        for resource in &self.resources {
            let key = type_of(resource).unwrap_or("Unknown").to_owned();
            groups.entry(key).or_default().push(resource);
        }
        for group in groups.values_mut() {
            group.sort_by(|a, b| resource_id(a).cmp(&resource_id(b)));
        }
        groups
    }

    /// Writes one `<ResourceType>.ndjson` file per type into `dir` (created
    /// if missing), FHIR bulk-data style: one canonical JSON object per line
    /// (keys sorted, no whitespace), lines sorted by id.
    pub fn write_ndjson(&self, dir: &Path) -> io::Result<()> {
        ndjson::write(self, dir)
    }

    /// Reads every `*.ndjson` file in `dir` (in file-name order).
    pub fn read_ndjson(dir: &Path) -> io::Result<Population> {
        ndjson::read(dir)
    }
}

#[cfg(test)]
mod tests;
