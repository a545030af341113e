//! Prescriptions that name their drug by reference.
//!
//! A MedicationRequest (or Statement, Dispense, Administration) whose
//! `medicationReference` points at a `Medication` carries no drug code of
//! its own: buprenorphine or an antiretroviral is only known from the
//! Medication. Before the filter runs, the gateway reads the Medications
//! that the response's prescriptions name; a prescription whose Medication
//! could not be read stays unclassifiable and is withheld (fail closed).

use std::collections::{BTreeSet, HashMap};

use accord_fhir::SearchParams;
use serde_json::Value;

use crate::forward::{Upstream, UpstreamWait};
use crate::paging::entry_resources;

/// Medications asked for in one upstream search.
const PER_SEARCH: usize = 50;
/// At most this many Medications are read for one response; prescriptions
/// naming others are withheld.
pub const MAX_PER_RESPONSE: usize = 500;

/// `Medication/<id>` for a reference to a Medication (relative, absolute or
/// versioned); `None` for anything else.
pub fn medication_key(reference: &str) -> Option<String> {
    let parts: Vec<&str> = reference.split('/').collect();
    let at = parts.iter().rposition(|p| *p == "Medication")?;
    let id = parts.get(at + 1).filter(|id| is_id(id))?;
    Some(format!("Medication/{id}"))
}

/// A FHIR logical id: 1–64 of `A-Z a-z 0-9 - .`.
fn is_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

/// The Medication ids named by `medicationReference` in an upstream
/// response: the resource itself and every Bundle entry.
pub fn referenced_medications(body: &[u8]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let Ok(json) = serde_json::from_slice::<Value>(body) else {
        return out;
    };
    let mut add = |resource: &Value| {
        if let Some(key) = resource
            .pointer("/medicationReference/reference")
            .and_then(Value::as_str)
            .and_then(medication_key)
            && let Some(id) = key.strip_prefix("Medication/")
        {
            out.insert(id.to_owned());
        }
    };
    add(&json);
    entry_resources(&json).for_each(add);
    out
}

/// Reads the Medications with these ids from the upstream, by
/// `Medication/<id>`. Ids the upstream does not return (or a failed
/// search) are simply missing: their prescriptions are withheld.
pub async fn read_medications(
    upstream: &Upstream,
    ids: &BTreeSet<String>,
    request_id: &str,
    waited: &mut UpstreamWait,
) -> HashMap<String, Value> {
    let mut found = HashMap::new();
    let ids: Vec<&String> = ids.iter().take(MAX_PER_RESPONSE).collect();
    for chunk in ids.chunks(PER_SEARCH) {
        let mut params = SearchParams::default();
        let joined = chunk
            .iter()
            .map(|id| id.as_str())
            .collect::<Vec<_>>()
            .join(",");
        params.push("_id", &joined);
        params.push("_count", &PER_SEARCH.to_string());
        match crate::lookup::search(upstream, "Medication", params, request_id, waited).await {
            Ok(bundle) => {
                for medication in entry_resources(&bundle) {
                    if medication.get("resourceType").and_then(Value::as_str) == Some("Medication")
                        && let Some(id) = medication.get("id").and_then(Value::as_str)
                        && chunk.iter().any(|asked| asked.as_str() == id)
                    {
                        found.insert(format!("Medication/{id}"), medication.clone());
                    }
                }
            }
            Err(error) => {
                tracing::warn!(%request_id, error = %error.message,
                    "medication lookup failed; prescriptions naming these medications are withheld");
            }
        }
    }
    found
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
