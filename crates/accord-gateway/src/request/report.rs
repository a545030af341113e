//! What a response released and withheld, per patient and type, for the
//! audit record.

use std::collections::{BTreeMap, BTreeSet};

use accord_policy::CategoryId;
use serde_json::Value;

/// Counts of one resource type for one patient.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub released: u32,
    pub withheld: u32,
    pub redacted: u32,
}

/// Everything the filter phase did, for the audit record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReleaseReport {
    /// patient id → resource type → counts (released resources of
    /// non-patient types are counted under `""`).
    pub by_patient: BTreeMap<String, BTreeMap<String, Counts>>,
    pub released: u32,
    pub withheld: u32,
    pub redacted: u32,
    /// Why resources were withheld (reason codes), with how many each.
    pub withheld_reasons: BTreeMap<String, u32>,
    /// patient id → sensitivity categories of the resources released for
    /// that patient (only patients who were sent sensitive data).
    pub sensitivity: BTreeMap<String, BTreeSet<CategoryId>>,
}

// === impl ReleaseReport ===

impl ReleaseReport {
    pub fn released(
        &mut self,
        resource: &Value,
        patients: &BTreeSet<String>,
        redacted: bool,
        sensitivity: &[CategoryId],
    ) {
        if !sensitivity.is_empty() {
            self.sensitive(patients, sensitivity);
        }
        self.released += 1;
        self.redacted += u32::from(redacted);
        let ty = type_name(resource);
        let owners: Vec<&str> = if patients.is_empty() {
            vec![""]
        } else {
            patients.iter().map(String::as_str).collect()
        };
        for patient in owners {
            // Looked up before inserting: a Bundle names the same few
            // patients and types again and again, so keys are rarely new.
            if !self.by_patient.contains_key(patient) {
                self.by_patient.insert(patient.to_owned(), BTreeMap::new());
            }
            let Some(types) = self.by_patient.get_mut(patient) else {
                continue;
            };
            if !types.contains_key(ty) {
                types.insert(ty.to_owned(), Counts::default());
            }
            if let Some(counts) = types.get_mut(ty) {
                counts.released += 1;
                counts.redacted += u32::from(redacted);
            }
        }
    }

    /// Remembers, per patient, the categories of a sensitive resource
    /// released (a patient's set holds each category once).
    fn sensitive(&mut self, patients: &BTreeSet<String>, sensitivity: &[CategoryId]) {
        for patient in patients {
            if !self.sensitivity.contains_key(patient) {
                self.sensitivity.insert(patient.clone(), BTreeSet::new());
            }
            if let Some(categories) = self.sensitivity.get_mut(patient) {
                categories.extend(sensitivity.iter().cloned());
            }
        }
    }

    pub fn withheld(&mut self, _resource: &Value, reason: WithholdReason) {
        // Withheld resources are not attributed to patients: the record of
        // a refusal must not become a list of who has sensitive data.
        self.withheld += 1;
        *self
            .withheld_reasons
            .entry(reason.code().to_owned())
            .or_default() += 1;
    }

    /// Patients whose data was released.
    pub fn patients(&self) -> impl Iterator<Item = &str> {
        self.by_patient
            .keys()
            .map(String::as_str)
            .filter(|p| !p.is_empty())
    }
}

fn type_name(resource: &Value) -> &str {
    resource
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Why a resource was withheld.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WithholdReason {
    /// Not a FHIR resource of a known type.
    NotAResource,
    /// No agreement lets the partner read this type.
    TypeNotGranted,
    /// Patient data whose patient cannot be determined.
    PatientUndetermined,
    /// A patient it belongs to is out of the partner's reach.
    PatientOutOfReach,
    /// A contained resource failed its own check.
    ContainedWithheld,
    /// Outside the grant's `constraints` (e.g. not a laboratory
    /// Observation), or not known to be inside them.
    OutsideConstraints,
    /// The policy withholds it (cohort, consent, a sensitive category,
    /// another member's record, ...): the policy's reason, as a code.
    Policy(&'static str),
}

impl WithholdReason {
    /// The reason as the audit record counts it (`withheld`).
    pub fn code(self) -> &'static str {
        match self {
            WithholdReason::NotAResource => "not_a_resource",
            WithholdReason::TypeNotGranted => "type_not_granted",
            WithholdReason::PatientUndetermined => "patient_undetermined",
            WithholdReason::PatientOutOfReach => "outside_reach",
            WithholdReason::ContainedWithheld => "contained_withheld",
            WithholdReason::OutsideConstraints => "grant_constraint",
            WithholdReason::Policy(code) => code,
        }
    }
}
