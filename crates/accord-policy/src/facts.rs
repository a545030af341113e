//! The facts of one resource that every decision reads: its type, the
//! patients whose compartment holds it, every coding and code text it
//! carries (at any depth, contained resources included), its security
//! labels and those of what it contains.
//!
//! One reader for the gateway's filter, `explain`, `diff`, `test` and the
//! audit record: a second reader that looks at fewer elements is how SNOMED
//! codes in `Encounter.reasonCode` or a contained diagnosis once left
//! without the Part 2 checks.

use accord_fhir::ResourceType;
use accord_fhir::compartment::{PatientLinks, patient_links};
use serde_json::Value;

use crate::coding::Coding;
use crate::origin::Origin;

/// What the policy knows about one resource.
#[derive(Debug, Clone, Default)]
pub struct ResourceFacts {
    pub resource_type: Option<ResourceType>,
    /// The patients whose compartment holds it (`Patient/123`), by the
    /// generated compartment table.
    pub patients: Vec<String>,
    /// Patient data whose patient cannot be determined.
    pub patients_undetermined: bool,
    /// Every `system` + `code` pair anywhere in the resource.
    pub codes: Vec<Coding>,
    /// Every coding's `display` (with its system) and every plain `text`
    /// (without one), lower-cased: display terms of a category match here.
    pub code_texts: Vec<CodeText>,
    /// `meta.security`, and the labels of contained resources (a label on a
    /// contained diagnosis marks the container that carries it).
    pub security_labels: Vec<Coding>,
    /// The `Medication/<id>` a medication resource points at with
    /// `medicationReference`; its codes must be added
    /// ([`ResourceFacts::add_referenced`]) before the resource can be
    /// classified, or it is withheld.
    pub medication_reference: Option<String>,
    /// Whether the referenced medication's codes were added.
    pub medication_resolved: bool,
    /// For referral cohorts, whether the gateway found a referral between
    /// the parties for the patient; `None` when it did not look (unknown).
    pub in_referral_cohort: Option<bool>,
    /// Whose record it is (see `origin.rs`); asked only under a grant
    /// that names a `source`.
    pub origin: Origin,
}

/// Human-readable text of a code, lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeText {
    /// The coding's system; `None` for a CodeableConcept's `text`.
    pub system: Option<String>,
    pub text: String,
}

/// The medication types that may name their drug by `medicationReference`.
const MEDICATION_TYPES: &[&str] = &[
    "MedicationRequest",
    "MedicationStatement",
    "MedicationDispense",
    "MedicationAdministration",
];

// === impl ResourceFacts ===

impl ResourceFacts {
    /// Reads every fact the decision needs from a FHIR resource.
    pub fn of(resource: &Value) -> Self {
        let type_name = resource.get("resourceType").and_then(Value::as_str);
        let resource_type = type_name.and_then(|t| ResourceType::parse(t).ok());
        let (patients, patients_undetermined) = match patient_links(resource) {
            PatientLinks::NotPatientData => (Vec::new(), false),
            PatientLinks::Undetermined => (Vec::new(), true),
            PatientLinks::Patients(ids) => (
                ids.into_iter().map(|id| format!("Patient/{id}")).collect(),
                false,
            ),
        };
        let mut facts = ResourceFacts {
            resource_type,
            patients,
            patients_undetermined,
            ..ResourceFacts::default()
        };
        facts.add_codes(resource);
        facts.security_labels = labels(resource);
        for inner in contained(resource) {
            facts.security_labels.extend(labels(inner));
        }
        if type_name.is_some_and(|t| MEDICATION_TYPES.contains(&t)) {
            facts.medication_reference = resource
                .pointer("/medicationReference/reference")
                .and_then(Value::as_str)
                .filter(|r| !r.starts_with('#'))
                .map(str::to_owned);
        }
        facts
    }

    /// Adds the codes, texts and labels of a resource this one refers to
    /// and is classified by (the `Medication` of a prescription).
    pub fn add_referenced(&mut self, referenced: &Value) {
        self.add_codes(referenced);
        self.security_labels.extend(labels(referenced));
        self.medication_resolved = true;
    }

    /// Whether the resource names its medication by a reference whose
    /// codes are not known: it cannot be classified, so it is withheld.
    pub fn medication_unknown(&self) -> bool {
        self.medication_reference.is_some() && !self.medication_resolved
    }

    fn add_codes(&mut self, value: &Value) {
        collect(value, &mut self.codes, &mut self.code_texts);
    }
}

fn contained(resource: &Value) -> impl Iterator<Item = &Value> {
    resource
        .get("contained")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn labels(resource: &Value) -> Vec<Coding> {
    resource
        .pointer("/meta/security")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|label| {
            let system = label.get("system")?.as_str()?;
            let code = label.get("code")?.as_str()?;
            Some(Coding::new(system, code))
        })
        .collect()
}

/// Every coding and code text at any depth. `meta` is skipped: its
/// security labels are labels, not codes, and its tags say nothing of the
/// content.
fn collect(value: &Value, codes: &mut Vec<Coding>, texts: &mut Vec<CodeText>) {
    match value {
        Value::Object(fields) => {
            let system = fields.get("system").and_then(Value::as_str);
            if let (Some(system), Some(Value::String(code))) = (system, fields.get("code")) {
                codes.push(Coding::new(system, code));
            }
            if let Some(Value::String(display)) = fields.get("display") {
                texts.push(CodeText {
                    system: system.map(str::to_owned),
                    text: display.to_lowercase(),
                });
            }
            // `text` as a string: a CodeableConcept's (or a note's) words;
            // a Narrative's `text` is an object and its `div` is not read.
            if let Some(Value::String(text)) = fields.get("text") {
                texts.push(CodeText {
                    system: None,
                    text: text.to_lowercase(),
                });
            }
            for (key, inner) in fields {
                if key != "meta" && (inner.is_object() || inner.is_array()) {
                    collect(inner, codes, texts);
                }
            }
        }
        Value::Array(items) => {
            for inner in items {
                collect(inner, codes, texts);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn finds_codes_texts_and_labels_anywhere() {
        let plan = json!({
            "resourceType": "CarePlan",
            "subject": {"reference": "Patient/p1"},
            "meta": {"security": [{"system": "l", "code": "R"}]},
            "category": [{"coding": [{"system": "s", "code": "top", "display": "Top"}]}],
            "activity": [{"detail": {"reasonCode": [{"coding": [{"system": "s", "code": "deep"}], "text": "Deep Words"}]}}],
            "contained": [{"resourceType": "Condition", "meta": {"security": [{"system": "l", "code": "ETH"}]},
                           "code": {"coding": [{"system": "s", "code": "inner"}]}}]
        });
        let facts = ResourceFacts::of(&plan);
        let codes: Vec<&str> = facts.codes.iter().map(|c| c.code.as_str()).collect();
        assert_eq!(codes.len(), 3, "{codes:?}");
        for code in ["top", "deep", "inner"] {
            assert!(codes.contains(&code), "{code} in {codes:?}");
        }
        assert!(facts.code_texts.iter().any(|t| t.text == "deep words"));
        assert!(
            facts
                .code_texts
                .iter()
                .any(|t| t.text == "top" && t.system.as_deref() == Some("s"))
        );
        assert_eq!(facts.security_labels.len(), 2, "own and contained labels");
        assert_eq!(facts.patients, vec!["Patient/p1".to_owned()]);
    }

    #[test]
    fn a_referenced_medication_must_be_added_before_classifying() {
        let request = json!({
            "resourceType": "MedicationRequest",
            "subject": {"reference": "Patient/p1"},
            "medicationReference": {"reference": "Medication/m1"}
        });
        let mut facts = ResourceFacts::of(&request);
        assert_eq!(facts.medication_reference.as_deref(), Some("Medication/m1"));
        assert!(facts.medication_unknown());
        facts.add_referenced(&json!({"resourceType": "Medication",
            "code": {"coding": [{"system": "rx", "code": "1010600"}]}}));
        assert!(!facts.medication_unknown());
        assert!(facts.codes.iter().any(|c| c.code == "1010600"));
        let contained = json!({
            "resourceType": "MedicationRequest",
            "medicationReference": {"reference": "#m"},
            "contained": [{"resourceType": "Medication", "id": "m"}]
        });
        assert!(!ResourceFacts::of(&contained).medication_unknown());
    }
}
