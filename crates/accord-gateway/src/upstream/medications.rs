//! Prescriptions that name their drug by reference.
//!
//! A MedicationRequest (or Statement, Dispense, Administration) whose
//! `medicationReference` points at a `Medication` carries no drug code of
//! its own: buprenorphine or an antiretroviral is only known from the
//! Medication. Before the filter runs, the gateway reads the Medications
//! that the response's prescriptions name; a prescription whose Medication
//! could not be read stays unclassifiable and is withheld (fail closed).

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use crate::upstream::client::{Upstream, UpstreamWait};
use crate::upstream::paging::entry_resources;

/// `Medication/<id>` for a reference to a Medication (relative, absolute or
/// versioned); `None` for anything else.
pub fn medication_key(reference: &str) -> Option<String> {
    crate::upstream::lookup::reference_key(reference, "Medication")
}

/// `Encounter/<id>` for a reference to an Encounter.
pub fn encounter_key(reference: &str) -> Option<String> {
    crate::upstream::lookup::reference_key(reference, "Encounter")
}

/// The Encounter ids the resources of an upstream response were recorded
/// in (`encounter`, `context`): their `serviceProvider` says whose record
/// they are on a shared server.
pub fn referenced_encounters(body: &[u8]) -> BTreeSet<String> {
    referenced_ids(body, "Encounter", accord_policy::origin::encounter_of)
}

/// The ids of the `ty` resources that the resource of an upstream
/// response, and each of its Bundle entries, name by `reference`.
fn referenced_ids(
    body: &[u8],
    ty: &str,
    reference: impl Fn(&Value) -> Option<&str>,
) -> BTreeSet<String> {
    let Ok(json) = serde_json::from_slice::<Value>(body) else {
        return BTreeSet::new();
    };
    std::iter::once(&json)
        .chain(entry_resources(&json))
        .filter_map(|resource| crate::upstream::lookup::reference_key(reference(resource)?, ty))
        .filter_map(|key| key.split_once('/').map(|(_, id)| id.to_owned()))
        .collect()
}

/// The Medication ids named by `medicationReference` in an upstream
/// response: the resource itself and every Bundle entry.
pub fn referenced_medications(body: &[u8]) -> BTreeSet<String> {
    referenced_ids(body, "Medication", |resource| {
        resource
            .pointer("/medicationReference/reference")
            .and_then(Value::as_str)
    })
}

/// Reads the Medications with these ids, by `Medication/<id>`; ids the
/// upstream does not return are missing, and their prescriptions withheld.
pub async fn read_medications(
    upstream: &Upstream,
    ids: &BTreeSet<String>,
    request_id: &str,
    waited: &mut UpstreamWait,
) -> HashMap<String, Value> {
    crate::upstream::lookup::read_by_ids(upstream, "Medication", ids, request_id, waited).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medication_references_are_recognised_in_every_spelling() {
        assert_eq!(
            medication_key("Medication/m1").as_deref(),
            Some("Medication/m1")
        );
        assert_eq!(
            medication_key("https://ehr.example/fhir/Medication/m1/_history/3").as_deref(),
            Some("Medication/m1")
        );
        assert_eq!(medication_key("#m1"), None);
        assert_eq!(medication_key("Substance/s1"), None);
        assert_eq!(medication_key("Medication/bad id"), None);
    }

    #[test]
    fn referenced_medications_are_found_in_entries() {
        let body = serde_json::json!({"resourceType": "Bundle", "entry": [
            {"resource": {"resourceType": "MedicationRequest", "medicationReference": {"reference": "Medication/a"}}},
            {"resource": {"resourceType": "MedicationStatement", "medicationReference": {"reference": "Medication/b"}}},
            {"resource": {"resourceType": "MedicationRequest", "medicationReference": {"reference": "#c"}}}
        ]});
        let ids = referenced_medications(body.to_string().as_bytes());
        assert_eq!(ids, BTreeSet::from(["a".to_owned(), "b".to_owned()]));
    }
}
