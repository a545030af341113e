//! Encounter, Condition, Observation and MedicationRequest constructors.
//!
//! These functions only shape JSON; every random choice is made by the
//! caller in `patient.rs`, so the order of draws from the stream (and hence
//! the output for a seed) is decided in one place.

use serde_json::{Value, json};

use super::codes::ACT_CODE;
use super::codes::{
    CONDITION_CATEGORY, CONDITION_CLINICAL, CONDITION_VERIFICATION, Diagnosis, ICD10CM, LOINC,
    MEDREQ_CATEGORY, Measure, Medication, OBSERVATION_CATEGORY, RXNORM, SNOMED,
};
use super::dates::Day;
use super::json::{Labels, coding, concept, meta, quantity, reference};
use super::orgs::OrgKind;

/// A visit, the anchor of every other clinical record.
#[derive(Debug, Clone)]
pub(crate) struct Visit {
    pub(crate) id: String,
    pub(crate) org: OrgKind,
    pub(crate) day: Day,
    /// Minutes after midnight UTC the visit started.
    pub(crate) minute: u64,
    pub(crate) practitioner: String,
    pub(crate) class: VisitClass,
}

/// HL7 v3 ActCode encounter class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VisitClass {
    Ambulatory,
    Emergency,
    Inpatient,
}

impl Visit {
    pub(crate) fn start(&self) -> String {
        self.day.at(self.minute)
    }

    pub(crate) fn reference(&self) -> Value {
        reference("Encounter", &self.id)
    }

    pub(crate) fn practitioner_ref(&self) -> Value {
        reference("Practitioner", &self.practitioner)
    }
}

pub(crate) fn encounter(patient: &str, visit: &Visit) -> Value {
    let (code, display, end) = match visit.class {
        VisitClass::Ambulatory => ("AMB", "ambulatory", visit.day.at(visit.minute + 45)),
        VisitClass::Emergency => ("EMER", "emergency", visit.day.at(visit.minute + 240)),
        VisitClass::Inpatient => ("IMP", "inpatient encounter", visit.day.plus(3).at(11 * 60)),
    };
    let kind = match visit.org {
        OrgKind::Behavioral => "Behavioral health visit",
        OrgKind::Primary => "Primary care visit",
        OrgKind::Hospital => "Hospital encounter",
    };
    json!({
        "resourceType": "Encounter",
        "id": visit.id,
        "meta": meta(visit.day, Labels::None),
        "status": "finished",
        "class": coding(ACT_CODE, code, display),
        "type": [{ "text": kind }],
        "subject": reference("Patient", patient),
        "participant": [{ "individual": visit.practitioner_ref() }],
        "period": { "start": visit.start(), "end": end },
        "serviceProvider": visit.org.reference(),
    })
}

/// The ICD-10-CM coding plus, where known, the SNOMED CT equivalent.
pub(crate) fn diagnosis_concept(dx: &Diagnosis) -> Value {
    let mut codings = vec![coding(ICD10CM, dx.icd10, dx.display)];
    if let Some((code, display)) = dx.snomed {
        codings.push(coding(SNOMED, code, display));
    }
    json!({ "coding": codings, "text": dx.display })
}

pub(crate) fn condition(
    id: &str,
    patient: &str,
    dx: &Diagnosis,
    visit: &Visit,
    labels: Labels,
) -> Value {
    // Behavioral and chronic diagnoses go on the problem list; hospital ones
    // are encounter diagnoses, as an ED would record them.
    let (category, category_display) = match visit.org {
        OrgKind::Hospital => ("encounter-diagnosis", "Encounter Diagnosis"),
        _ => ("problem-list-item", "Problem List Item"),
    };
    json!({
        "resourceType": "Condition",
        "id": id,
        "meta": meta(visit.day, labels),
        "clinicalStatus": concept(CONDITION_CLINICAL, "active", "Active"),
        "verificationStatus": concept(CONDITION_VERIFICATION, "confirmed", "Confirmed"),
        "category": [concept(CONDITION_CATEGORY, category, category_display)],
        "code": diagnosis_concept(dx),
        "subject": reference("Patient", patient),
        "encounter": visit.reference(),
        "onsetDateTime": visit.start(),
        "recordedDate": visit.start(),
        "recorder": visit.practitioner_ref(),
    })
}

fn observation_base(
    id: &str,
    patient: &str,
    visit: &Visit,
    labels: Labels,
    category: &str,
    code: Value,
) -> Value {
    let category_display = if category == "laboratory" {
        "Laboratory"
    } else {
        "Vital Signs"
    };
    json!({
        "resourceType": "Observation",
        "id": id,
        "meta": meta(visit.day, labels),
        "status": "final",
        "category": [concept(OBSERVATION_CATEGORY, category, category_display)],
        "code": code,
        "subject": reference("Patient", patient),
        "encounter": visit.reference(),
        "effectiveDateTime": visit.start(),
        "performer": [visit.practitioner_ref()],
    })
}

/// A single quantitative result.
pub(crate) fn measurement(
    id: &str,
    patient: &str,
    visit: &Visit,
    measure: &Measure,
    value: f64,
    labels: Labels,
) -> Value {
    let code = json!({
        "coding": [coding(LOINC, measure.loinc, measure.display)],
        "text": measure.display,
    });
    let mut obs = observation_base(id, patient, visit, labels, measure.category, code);
    if let Some(object) = obs.as_object_mut() {
        object.insert("valueQuantity".into(), quantity(value, measure.unit));
    }
    obs
}

/// A blood-pressure panel with systolic and diastolic components.
pub(crate) fn blood_pressure(
    id: &str,
    patient: &str,
    visit: &Visit,
    systolic: u64,
    diastolic: u64,
) -> Value {
    let code = json!({
        "coding": [coding(LOINC, "85354-9", "Blood pressure panel with all children optional")],
        "text": "Blood pressure",
    });
    let mut obs = observation_base(id, patient, visit, Labels::None, "vital-signs", code);
    if let Some(object) = obs.as_object_mut() {
        object.insert(
            "component".into(),
            json!([
                {
                    "code": concept(LOINC, "8480-6", "Systolic blood pressure"),
                    "valueQuantity": quantity(systolic, "mm[Hg]"),
                },
                {
                    "code": concept(LOINC, "8462-4", "Diastolic blood pressure"),
                    "valueQuantity": quantity(diastolic, "mm[Hg]"),
                },
            ]),
        );
    }
    obs
}

/// An outpatient prescription treating `condition_id`.
#[derive(Debug)]
pub(crate) struct Prescription<'a> {
    pub(crate) id: &'a str,
    pub(crate) patient: &'a str,
    pub(crate) visit: &'a Visit,
    pub(crate) medication: &'a Medication,
    pub(crate) condition_id: &'a str,
    pub(crate) active: bool,
    pub(crate) labels: Labels,
}

pub(crate) fn medication_request(rx: &Prescription<'_>) -> Value {
    json!({
        "resourceType": "MedicationRequest",
        "id": rx.id,
        "meta": meta(rx.visit.day, rx.labels),
        "status": if rx.active { "active" } else { "completed" },
        "intent": "order",
        "category": [concept(MEDREQ_CATEGORY, "outpatient", "Outpatient")],
        "medicationCodeableConcept": {
            "coding": [coding(RXNORM, rx.medication.rxnorm, rx.medication.display)],
            "text": rx.medication.display,
        },
        "subject": reference("Patient", rx.patient),
        "encounter": rx.visit.reference(),
        "authoredOn": rx.visit.start(),
        "requester": rx.visit.practitioner_ref(),
        "reasonReference": [reference("Condition", rx.condition_id)],
        "dosageInstruction": [{ "text": rx.medication.dosage }],
    })
}
