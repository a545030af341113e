//! The per-resource check every resource leaving the gateway passes,
//! whatever position it holds in the response.

use std::collections::BTreeSet;

use accord_fhir::ResourceType;
use accord_fhir::compartment::{PatientLinks, is_patient_data, patient_links};
use accord_policy::ResourceVerdict;
use serde_json::Value;

use crate::request::report::WithholdReason;
use crate::scope::{Scope, Sensitivity};

/// What happens to one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Released; the patients it belongs to (empty for non-patient data),
    /// the element paths to remove first (empty: as is) and its
    /// sensitivity categories (for the audit record).
    Release {
        patients: BTreeSet<String>,
        redact: Vec<String>,
        sensitivity: Sensitivity,
    },
    /// Withheld, and why (for the audit record, never for the partner).
    Withhold(WithholdReason),
}

/// The policy's reason as a code for the audit record: never which
/// category a patient's data is in, only the kind of rule.
fn policy_code(reason: &accord_policy::WithholdReason) -> &'static str {
    use accord_policy::WithholdReason as R;
    match reason {
        R::TypeNotGranted => "type_not_granted",
        R::OutsideCohort => "outside_cohort",
        R::CohortUnresolved => "cohort_unresolved",
        R::PatientOptedOut { .. } => "consent",
        R::SensitiveNotGranted { .. }
        | R::SensitiveForbidden { .. }
        | R::SensitiveWithoutConsent { .. } => "sensitive_category",
        R::MedicationUnknown => "medication_unknown",
        R::Unclassified => "unclassified",
        R::OtherSource { .. } => "other_source",
        R::SourceUndetermined => "source_undetermined",
    }
}

/// Checks `resource` (and what it contains) against `scope`.
pub fn verdict(resource: &Value, scope: &Scope<'_>) -> Verdict {
    let Some(ty) = resource_type(resource) else {
        return Verdict::Withhold(WithholdReason::NotAResource);
    };
    if !scope.may_read(ty) {
        return Verdict::Withhold(WithholdReason::TypeNotGranted);
    }
    if !scope.within_constraints(ty, resource) {
        return Verdict::Withhold(WithholdReason::OutsideConstraints);
    }
    let patients = match patients_in_reach(resource, scope) {
        Ok(patients) => patients,
        Err(reason) => return Verdict::Withhold(reason),
    };
    if let Some(contained) = resource.get("contained").and_then(Value::as_array) {
        for inner in contained {
            if !contained_is_releasable(inner, scope) {
                return Verdict::Withhold(WithholdReason::ContainedWithheld);
            }
        }
    }
    if patients.is_empty() {
        return Verdict::Release {
            patients,
            redact: Vec::new(),
            sensitivity: Sensitivity::new(),
        };
    }
    let ids: Vec<String> = patients.iter().cloned().collect();
    let (verdict, sensitivity) = scope.release(resource, &ids);
    match verdict {
        ResourceVerdict::Release => Verdict::Release {
            patients,
            redact: Vec::new(),
            sensitivity,
        },
        ResourceVerdict::Redact(paths) => Verdict::Release {
            patients,
            redact: paths,
            sensitivity,
        },
        ResourceVerdict::Withhold(reason) => {
            tracing::debug!(?reason, "resource withheld by policy");
            Verdict::Withhold(WithholdReason::Policy(policy_code(&reason)))
        }
    }
}

fn resource_type(resource: &Value) -> Option<ResourceType> {
    ResourceType::parse(resource.get("resourceType")?.as_str()?).ok()
}

fn patients_in_reach(
    resource: &Value,
    scope: &Scope<'_>,
) -> Result<BTreeSet<String>, WithholdReason> {
    match patient_links(resource) {
        PatientLinks::NotPatientData => Ok(BTreeSet::new()),
        PatientLinks::Undetermined => Err(WithholdReason::PatientUndetermined),
        PatientLinks::Patients(patients) => {
            // A resource tied to several patients is released only if all
            // of them are within reach.
            if patients.iter().all(|p| scope.patient_in_reach(p)) {
                Ok(patients)
            } else {
                Err(WithholdReason::PatientOutOfReach)
            }
        }
    }
}

/// A contained resource travels with its container. One that is patient
/// data must itself point at patients in reach (a contained Patient has
/// only a local id, so it can never be placed and withholds its container);
/// one that is not (a contained Medication, Practitioner) goes with it.
fn contained_is_releasable(inner: &Value, scope: &Scope<'_>) -> bool {
    let Some(ty) = resource_type(inner) else {
        return false;
    };
    if ty == ResourceType::PATIENT || !scope.within_constraints(ty, inner) {
        return false;
    }
    !is_patient_data(ty) || patients_in_reach(inner, scope).is_ok()
}
