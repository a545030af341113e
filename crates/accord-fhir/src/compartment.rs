//! The R4 Patient compartment: which resources belong to which patients.
//!
//! The table is generated from the official definitions
//! (`tools/gen-compartment.py`); this module reads it to answer two
//! questions: which search parameters tie a type to a patient (to narrow
//! searches) and which patients a returned resource belongs to (to filter
//! responses).

use std::collections::BTreeSet;

use serde_json::Value;

use crate::resource_type::ResourceType;

#[rustfmt::skip]
mod table;

/// Search parameter → element paths that hold the patient reference.
type ParamPaths = &'static [(&'static str, &'static [&'static str])];
/// Resource type → its patient parameters, sorted by type.
type Table = &'static [(&'static str, ParamPaths)];

use table::PATIENT_COMPARTMENT;

/// Types the R4 definition leaves out of the Patient compartment although
/// they point at a patient. Treating them as outside the compartment would
/// release them to anyone granted the type, so Accord adds them, failing
/// closed like any compartment type.
// INVARIANT: sorted by type.
const PATIENT_LINKS_BEYOND_COMPARTMENT: Table = &[
    ("Contract", &[("subject", &["subject"])]),
    ("Device", &[("patient", &["patient"])]),
    ("GuidanceResponse", &[("subject", &["subject"])]),
    ("Task", &[("patient", &["for"])]),
];

/// The patients a resource belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatientLinks {
    /// The type is not patient data (Organization, Medication, ...).
    NotPatientData,
    /// Patient ids (logical ids, without `Patient/`) found on the resource.
    Patients(BTreeSet<String>),
    /// The type is patient data but no patient could be determined (no
    /// reference, a contained or identifier-only reference): withhold it.
    Undetermined,
}

/// Search parameters that tie `ty` to a patient, e.g. `subject`,
/// `performer` for Observation; empty for types outside the compartment.
pub fn patient_search_params(ty: ResourceType) -> impl Iterator<Item = &'static str> {
    links_for(ty.as_str())
        .into_iter()
        .flat_map(|params| params.iter().map(|(code, _)| *code))
}

/// Whether resources of `ty` are patient data.
pub fn is_patient_data(ty: ResourceType) -> bool {
    ty == ResourceType::PATIENT || links_for(ty.as_str()).is_some()
}

/// The patients `resource` belongs to, by the compartment's element paths.
pub fn patient_links(resource: &Value) -> PatientLinks {
    let Some(ty) = resource.get("resourceType").and_then(Value::as_str) else {
        return PatientLinks::Undetermined;
    };
    if ty == "Patient" {
        // A patient is in its own compartment, and in the compartments of
        // patients it links to.
        let mut patients = BTreeSet::new();
        if let Some(id) = resource.get("id").and_then(Value::as_str) {
            patients.insert(id.to_owned());
        }
        collect(resource, &["link", "other"], &mut patients);
        return if patients.is_empty() {
            PatientLinks::Undetermined
        } else {
            PatientLinks::Patients(patients)
        };
    }
    let Some(params) = links_for(ty) else {
        return PatientLinks::NotPatientData;
    };
    let mut patients = BTreeSet::new();
    for (_, paths) in params {
        for path in *paths {
            let segments: Vec<&str> = path.split('.').collect();
            collect(resource, &segments, &mut patients);
        }
    }
    if patients.is_empty() {
        PatientLinks::Undetermined
    } else {
        PatientLinks::Patients(patients)
    }
}

/// The patient id a reference string names, if it names a patient:
/// `Patient/1`, `Patient/1/_history/2`, `https://host/fhir/Patient/1`.
pub fn patient_id_of_reference(reference: &str) -> Option<&str> {
    let reference = reference.split(['?', '#']).next().unwrap_or(reference);
    let segments: Vec<&str> = reference.split('/').collect();
    // Find the last `Patient/<id>` pair (a versioned reference ends in
    // `_history/<vid>`).
    let position = segments.iter().rposition(|s| *s == "Patient")?;
    let id = segments.get(position + 1)?;
    let rest = segments.get(position + 2..).unwrap_or(&[]);
    let valid_tail = rest.is_empty() || (rest.len() == 2 && rest.first() == Some(&"_history"));
    (valid_tail && crate::id::ResourceId::parse(id).is_ok()).then_some(*id)
}

fn links_for(ty: &str) -> Option<ParamPaths> {
    let find = |table: Table| {
        table
            .binary_search_by(|(name, _)| (*name).cmp(ty))
            .ok()
            .and_then(|i| table.get(i))
            .map(|(_, params)| *params)
    };
    find(PATIENT_COMPARTMENT).or_else(|| find(PATIENT_LINKS_BEYOND_COMPARTMENT))
}

/// Follows `path` through objects and arrays, collecting the ids of patient
/// references at its end.
fn collect(value: &Value, path: &[&str], out: &mut BTreeSet<String>) {
    match value {
        Value::Array(items) => {
            for item in items {
                collect(item, path, out);
            }
        }
        Value::Object(fields) => match path.split_first() {
            Some((first, rest)) => {
                if let Some(next) = fields.get(*first) {
                    collect(next, rest, out);
                }
            }
            None => {
                if let Some(id) = fields
                    .get("reference")
                    .and_then(Value::as_str)
                    .and_then(patient_id_of_reference)
                {
                    out.insert(id.to_owned());
                }
            }
        },
        _ => {}
    }
}

#[cfg(test)]
mod tests;
