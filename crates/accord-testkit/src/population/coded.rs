//! Records coded as EHRs code them, beside the ICD-10-CM problem list: CPT
//! procedures, RxNorm products (inline and by `medicationReference` to a
//! `Medication`), LOINC results and SNOMED CT-only diagnoses — sensitive
//! ones among them, so that everything reading the population (the oracle
//! property test, the benchmarks, the demo) meets Part 2, mental-health and
//! HIV data the way a US Core feed carries it, found only by code.
//!
//! INVARIANT: these records draw from their own stream per patient
//! ([`STREAM`]), after everything else, so adding them left every earlier
//! record of every seed byte for byte as it was.
//!
//! Codes are real and each is checked against the shipped category tables
//! by the population tests (`tests.rs`), which say which category each
//! must fall in.

use serde_json::{Value, json};

use super::clinical::Visit;
use super::codes::{
    CONDITION_CATEGORY, CONDITION_CLINICAL, CONDITION_VERIFICATION, Diagnosis, LOINC,
    MEDREQ_CATEGORY, OBSERVATION_CATEGORY, RXNORM, SNOMED, Sensitivity,
};
use super::json::{Labels, coding, concept, meta, reference};
use super::orgs::OrgKind;
use super::rng::Rng;

/// Mixed into the seed for this module's stream.
pub(crate) const STREAM: u64 = 0xC0DE_D0C5;

pub(crate) const CPT: &str = "http://www.ama-assn.org/go/cpt";

/// A procedure, coded in CPT.
#[derive(Debug)]
pub(crate) struct Cpt {
    pub(crate) code: &'static str,
    pub(crate) display: &'static str,
}

/// An RxNorm clinical drug (a product, not an ingredient).
#[derive(Debug)]
pub(crate) struct Product {
    pub(crate) rxnorm: &'static str,
    pub(crate) display: &'static str,
}

const SBIRT: Cpt = Cpt {
    code: "99408",
    display: "Alcohol and/or substance (other than tobacco) abuse structured screening and brief intervention services; 15 to 30 minutes",
};
const PSYCHOTHERAPY: Cpt = Cpt {
    code: "90834",
    display: "Psychotherapy, 45 minutes with patient",
};
const ECG: Cpt = Cpt {
    code: "93000",
    display: "Electrocardiogram, routine ECG with at least 12 leads; with interpretation and report",
};
const SPIROMETRY: Cpt = Cpt {
    code: "94010",
    display: "Spirometry",
};
const FUNDUS_PHOTOGRAPHY: Cpt = Cpt {
    code: "92250",
    display: "Fundus photography with interpretation and report",
};

const BUPRENORPHINE_NALOXONE: Product = Product {
    rxnorm: "1010600",
    display: "buprenorphine 2 MG / naloxone 0.5 MG Sublingual Film",
};
const METFORMIN_ER: Product = Product {
    rxnorm: "860975",
    display: "24 HR metformin hydrochloride 500 MG Extended Release Oral Tablet",
};
const SERTRALINE_TABLET: Product = Product {
    rxnorm: "312941",
    display: "sertraline 50 MG Oral Tablet",
};
const BICTEGRAVIR_FTC_TAF: Product = Product {
    rxnorm: "1999667",
    display: "bictegravir 50 MG / emtricitabine 200 MG / tenofovir alafenamide 25 MG Oral Tablet",
};

const HIV_INFECTION: (&str, &str) = ("86406008", "Human immunodeficiency virus infection");
const HIV_VIRAL_LOAD: (&str, &str) = (
    "20447-9",
    "HIV 1 RNA [#/volume] (viral load) in Serum or Plasma by NAA with probe detection",
);
const OPIATE_SCREEN: (&str, &str) = ("19295-5", "Opiates [Presence] in Urine by Screen method");

/// A diagnosis made at one visit, as `patient.rs` made it.
#[derive(Debug)]
pub(crate) struct Made<'a> {
    pub(crate) condition_id: &'a str,
    pub(crate) diagnosis: &'static Diagnosis,
    pub(crate) visit: &'a Visit,
    pub(crate) labels: Labels,
}

/// Where the records go and how their ids are made.
pub(crate) trait Sink {
    fn id(&mut self, prefix: &str) -> String;
    fn push(&mut self, resource: Value);
}

/// The records of one patient coded beyond ICD-10-CM.
pub(crate) fn generate(
    rng: &mut Rng,
    sink: &mut dyn Sink,
    patient: &str,
    visits: &[Visit],
    made: &[Made<'_>],
) {
    for dx in made {
        procedure_for(rng, sink, patient, dx);
        product_for(rng, sink, patient, dx);
        if dx.diagnosis.icd10 == "F11.20" && rng.chance(60) {
            let id = sink.id("obs");
            sink.push(result(&id, patient, dx.visit, OPIATE_SCREEN, dx.labels));
        }
        // Another organization's record of the same disorder, coded in
        // SNOMED CT only and without a label: found by code or not at all.
        if dx.diagnosis.sensitivity == Sensitivity::SubstanceUse
            && let Some(snomed) = dx.diagnosis.snomed
            && let Some(other) = visits.iter().find(|v| v.org != dx.visit.org)
            && rng.chance(50)
        {
            let id = sink.id("cond");
            sink.push(snomed_condition(&id, patient, other, snomed));
        }
    }
    // HIV, diagnosed where the patient is mostly seen: a problem in SNOMED
    // CT, a viral load in LOINC, an antiretroviral in RxNorm.
    if let Some(visit) = visits.first()
        && rng.chance(6)
    {
        let id = sink.id("cond");
        sink.push(snomed_condition(&id, patient, visit, HIV_INFECTION));
        let id = sink.id("obs");
        sink.push(result(&id, patient, visit, HIV_VIRAL_LOAD, Labels::None));
        let by_reference = rng.chance(50);
        prescribe(
            sink,
            patient,
            visit,
            &BICTEGRAVIR_FTC_TAF,
            by_reference,
            Labels::None,
        );
    }
}

fn procedure_for(rng: &mut Rng, sink: &mut dyn Sink, patient: &str, dx: &Made<'_>) {
    let cpt = match (dx.diagnosis.sensitivity, dx.diagnosis.icd10) {
        (Sensitivity::SubstanceUse, _) => &SBIRT,
        (Sensitivity::MentalHealth, _) => &PSYCHOTHERAPY,
        (Sensitivity::Normal, "I10") => &ECG,
        (Sensitivity::Normal, "E11.9") => &FUNDUS_PHOTOGRAPHY,
        (Sensitivity::Normal, _) => &SPIROMETRY,
    };
    if !rng.chance(60) {
        return;
    }
    let id = sink.id("proc");
    sink.push(json!({
        "resourceType": "Procedure",
        "id": id,
        "meta": meta(dx.visit.day, dx.labels),
        "status": "completed",
        "code": {"coding": [coding(CPT, cpt.code, cpt.display)], "text": cpt.display},
        "subject": reference("Patient", patient),
        "encounter": dx.visit.reference(),
        "performedDateTime": dx.visit.start(),
        "performer": [{"actor": dx.visit.org.reference()}],
        "reasonReference": [reference("Condition", dx.condition_id)],
    }));
}

fn product_for(rng: &mut Rng, sink: &mut dyn Sink, patient: &str, dx: &Made<'_>) {
    let product = match dx.diagnosis.icd10 {
        "F11.20" => &BUPRENORPHINE_NALOXONE,
        "E11.9" => &METFORMIN_ER,
        "F32.9" => &SERTRALINE_TABLET,
        _ => return,
    };
    if !rng.chance(70) {
        return;
    }
    let by_reference = rng.chance(50);
    prescribe(sink, patient, dx.visit, product, by_reference, dx.labels);
}

/// A prescription of an RxNorm product, coded inline or by reference to a
/// `Medication` (written first, so a reader meets it before the order).
fn prescribe(
    sink: &mut dyn Sink,
    patient: &str,
    visit: &Visit,
    product: &Product,
    by_reference: bool,
    labels: Labels,
) {
    let code = json!({"coding": [coding(RXNORM, product.rxnorm, product.display)], "text": product.display});
    let medication = if by_reference {
        let id = sink.id("med");
        sink.push(json!({
            "resourceType": "Medication",
            "id": id,
            "meta": meta(visit.day, labels),
            "code": code,
        }));
        ("medicationReference", reference("Medication", &id))
    } else {
        ("medicationCodeableConcept", code)
    };
    let id = sink.id("medrx");
    let mut request = json!({
        "resourceType": "MedicationRequest",
        "id": id,
        "meta": meta(visit.day, labels),
        "status": "active",
        "intent": "order",
        "category": [concept(MEDREQ_CATEGORY, "outpatient", "Outpatient")],
        "subject": reference("Patient", patient),
        "encounter": visit.reference(),
        "authoredOn": visit.start(),
        "requester": visit.practitioner_ref(),
    });
    if let Some(fields) = request.as_object_mut() {
        fields.insert(medication.0.to_owned(), medication.1);
    }
    sink.push(request);
}

/// A problem coded in SNOMED CT alone, as most EHR problem lists code it.
fn snomed_condition(id: &str, patient: &str, visit: &Visit, code: (&str, &str)) -> Value {
    let (category, display) = match visit.org {
        OrgKind::Hospital => ("encounter-diagnosis", "Encounter Diagnosis"),
        _ => ("problem-list-item", "Problem List Item"),
    };
    json!({
        "resourceType": "Condition",
        "id": id,
        "meta": meta(visit.day, Labels::None),
        "clinicalStatus": concept(CONDITION_CLINICAL, "active", "Active"),
        "verificationStatus": concept(CONDITION_VERIFICATION, "confirmed", "Confirmed"),
        "category": [concept(CONDITION_CATEGORY, category, display)],
        "code": {"coding": [coding(SNOMED, code.0, code.1)], "text": code.1},
        "subject": reference("Patient", patient),
        "encounter": visit.reference(),
        "onsetDateTime": visit.start(),
        "recordedDate": visit.start(),
        "recorder": visit.practitioner_ref(),
    })
}

/// A laboratory result reported as positive or detected.
fn result(id: &str, patient: &str, visit: &Visit, code: (&str, &str), labels: Labels) -> Value {
    json!({
        "resourceType": "Observation",
        "id": id,
        "meta": meta(visit.day, labels),
        "status": "final",
        "category": [concept(OBSERVATION_CATEGORY, "laboratory", "Laboratory")],
        "code": {"coding": [coding(LOINC, code.0, code.1)], "text": code.1},
        "subject": reference("Patient", patient),
        "encounter": visit.reference(),
        "effectiveDateTime": visit.start(),
        "performer": [visit.org.reference()],
        "valueCodeableConcept": concept(SNOMED, "260373001", "Detected"),
    })
}
