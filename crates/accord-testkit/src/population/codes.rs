//! Code systems and the small clinical vocabularies the generator draws from.
//!
//! Codes are real ICD-10-CM / SNOMED CT / LOINC / RxNorm codes so that the
//! sensitivity value sets in `policies/` match them exactly as they would
//! match records from a production EHR.

pub(crate) const ICD10CM: &str = "http://hl7.org/fhir/sid/icd-10-cm";
pub(crate) const SNOMED: &str = "http://snomed.info/sct";
pub(crate) const LOINC: &str = "http://loinc.org";
pub(crate) const RXNORM: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";
pub(crate) const UCUM: &str = "http://unitsofmeasure.org";
pub(crate) const NPI: &str = "http://hl7.org/fhir/sid/us-npi";
pub(crate) const MRN: &str = "https://accord.example/fhir/sid/mrn";
pub(crate) const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
pub(crate) const CONFIDENTIALITY: &str = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";
pub(crate) const ACT_REASON: &str = "http://terminology.hl7.org/CodeSystem/v3-ActReason";
pub(crate) const PARTICIPATION_TYPE: &str =
    "http://terminology.hl7.org/CodeSystem/v3-ParticipationType";
pub(crate) const OBSERVATION_CATEGORY: &str =
    "http://terminology.hl7.org/CodeSystem/observation-category";
pub(crate) const CONDITION_CATEGORY: &str =
    "http://terminology.hl7.org/CodeSystem/condition-category";
pub(crate) const CONDITION_CLINICAL: &str =
    "http://terminology.hl7.org/CodeSystem/condition-clinical";
pub(crate) const CONDITION_VERIFICATION: &str =
    "http://terminology.hl7.org/CodeSystem/condition-ver-status";
pub(crate) const CONSENT_SCOPE: &str = "http://terminology.hl7.org/CodeSystem/consentscope";
pub(crate) const ORGANIZATION_TYPE: &str =
    "http://terminology.hl7.org/CodeSystem/organization-type";
pub(crate) const CAREPLAN_CATEGORY: &str =
    "http://hl7.org/fhir/us/core/CodeSystem/careplan-category";
pub(crate) const MEDREQ_CATEGORY: &str =
    "http://terminology.hl7.org/CodeSystem/medicationrequest-category";

/// What kind of sensitive record a diagnosis makes, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sensitivity {
    /// Ordinary clinical data.
    Normal,
    /// Mental health (segmented by value set, not labelled by the source).
    MentalHealth,
    /// Substance-use disorder (42 CFR Part 2 when made by the clinic).
    SubstanceUse,
}

/// One diagnosis, coded in ICD-10-CM and SNOMED CT.
#[derive(Debug)]
pub(crate) struct Diagnosis {
    pub(crate) icd10: &'static str,
    /// SNOMED CT code and display. `None` where no equivalent was verified:
    /// those records are coded in ICD-10-CM only, as many EHR problem lists are.
    pub(crate) snomed: Option<(&'static str, &'static str)>,
    pub(crate) display: &'static str,
    pub(crate) sensitivity: Sensitivity,
    /// The medication usually ordered for it, if any.
    pub(crate) medication: Option<&'static Medication>,
}

/// One medication, coded at RxNorm ingredient level.
#[derive(Debug)]
pub(crate) struct Medication {
    pub(crate) rxnorm: &'static str,
    pub(crate) display: &'static str,
    pub(crate) dosage: &'static str,
}

pub(crate) const LISINOPRIL: Medication = Medication {
    rxnorm: "29046",
    display: "lisinopril 10 mg oral tablet",
    dosage: "Take 1 tablet by mouth once daily",
};
pub(crate) const METFORMIN: Medication = Medication {
    rxnorm: "6809",
    display: "metformin 500 mg oral tablet",
    dosage: "Take 1 tablet by mouth twice daily with meals",
};
pub(crate) const SERTRALINE: Medication = Medication {
    rxnorm: "36437",
    display: "sertraline 50 mg oral tablet",
    dosage: "Take 1 tablet by mouth once daily",
};
pub(crate) const BUPRENORPHINE: Medication = Medication {
    rxnorm: "1819",
    display: "buprenorphine 8 mg sublingual tablet",
    dosage: "Dissolve 1 tablet under the tongue once daily",
};
pub(crate) const NALTREXONE: Medication = Medication {
    rxnorm: "7243",
    display: "naltrexone 50 mg oral tablet",
    dosage: "Take 1 tablet by mouth once daily",
};

pub(crate) const HYPERTENSION: Diagnosis = Diagnosis {
    icd10: "I10",
    snomed: Some(("38341003", "Hypertensive disorder, systemic arterial")),
    display: "Essential (primary) hypertension",
    sensitivity: Sensitivity::Normal,
    medication: Some(&LISINOPRIL),
};
pub(crate) const DIABETES: Diagnosis = Diagnosis {
    icd10: "E11.9",
    snomed: Some(("44054006", "Diabetes mellitus type 2")),
    display: "Type 2 diabetes mellitus without complications",
    sensitivity: Sensitivity::Normal,
    medication: Some(&METFORMIN),
};
pub(crate) const ASTHMA: Diagnosis = Diagnosis {
    icd10: "J45.909",
    snomed: Some(("195967001", "Asthma")),
    display: "Unspecified asthma, uncomplicated",
    sensitivity: Sensitivity::Normal,
    medication: None,
};
pub(crate) const DEPRESSION: Diagnosis = Diagnosis {
    icd10: "F32.9",
    snomed: Some(("35489007", "Depressive disorder")),
    display: "Major depressive disorder, single episode, unspecified",
    sensitivity: Sensitivity::MentalHealth,
    medication: Some(&SERTRALINE),
};
pub(crate) const ANXIETY: Diagnosis = Diagnosis {
    icd10: "F41.1",
    snomed: Some(("21897009", "Generalized anxiety disorder")),
    display: "Generalized anxiety disorder",
    sensitivity: Sensitivity::MentalHealth,
    medication: None,
};
pub(crate) const ALCOHOL_DEPENDENCE: Diagnosis = Diagnosis {
    icd10: "F10.20",
    snomed: Some(("66590003", "Alcohol dependence")),
    display: "Alcohol dependence, uncomplicated",
    sensitivity: Sensitivity::SubstanceUse,
    medication: Some(&NALTREXONE),
};
pub(crate) const OPIOID_DEPENDENCE: Diagnosis = Diagnosis {
    icd10: "F11.20",
    snomed: Some(("75544000", "Opioid dependence")),
    display: "Opioid dependence, uncomplicated",
    sensitivity: Sensitivity::SubstanceUse,
    medication: Some(&BUPRENORPHINE),
};
pub(crate) const CANNABIS_DEPENDENCE: Diagnosis = Diagnosis {
    icd10: "F12.20",
    snomed: Some(("85005007", "Cannabis dependence")),
    display: "Cannabis dependence, uncomplicated",
    sensitivity: Sensitivity::SubstanceUse,
    medication: None,
};
pub(crate) const COCAINE_DEPENDENCE: Diagnosis = Diagnosis {
    icd10: "F14.20",
    snomed: None,
    display: "Cocaine dependence, uncomplicated",
    sensitivity: Sensitivity::SubstanceUse,
    medication: None,
};

pub(crate) const CHRONIC: &[&Diagnosis] = &[&HYPERTENSION, &DIABETES, &ASTHMA];
pub(crate) const MENTAL_HEALTH: &[&Diagnosis] = &[&DEPRESSION, &ANXIETY];
pub(crate) const SUBSTANCE_USE: &[&Diagnosis] = &[
    &ALCOHOL_DEPENDENCE,
    &OPIOID_DEPENDENCE,
    &OPIOID_DEPENDENCE,
    &CANNABIS_DEPENDENCE,
    &COCAINE_DEPENDENCE,
];

/// One quantitative observation kind.
#[derive(Debug)]
pub(crate) struct Measure {
    pub(crate) loinc: &'static str,
    pub(crate) display: &'static str,
    pub(crate) category: &'static str,
    pub(crate) unit: &'static str,
    pub(crate) low: u64,
    pub(crate) high: u64,
}

pub(crate) const HEART_RATE: Measure = Measure {
    loinc: "8867-4",
    display: "Heart rate",
    category: "vital-signs",
    unit: "/min",
    low: 55,
    high: 105,
};
pub(crate) const BODY_WEIGHT: Measure = Measure {
    loinc: "29463-7",
    display: "Body weight",
    category: "vital-signs",
    unit: "kg",
    low: 48,
    high: 130,
};
pub(crate) const SYSTOLIC: Measure = Measure {
    loinc: "8480-6",
    display: "Systolic blood pressure",
    category: "vital-signs",
    unit: "mm[Hg]",
    low: 100,
    high: 165,
};
pub(crate) const HBA1C: Measure = Measure {
    loinc: "4548-4",
    display: "Hemoglobin A1c/Hemoglobin.total in Blood",
    category: "laboratory",
    unit: "%",
    low: 5,
    high: 11,
};
pub(crate) const GLUCOSE: Measure = Measure {
    loinc: "2345-7",
    display: "Glucose [Mass/volume] in Serum or Plasma",
    category: "laboratory",
    unit: "mg/dL",
    low: 70,
    high: 240,
};
pub(crate) const CHOLESTEROL: Measure = Measure {
    loinc: "2093-3",
    display: "Cholesterol [Mass/volume] in Serum or Plasma",
    category: "laboratory",
    unit: "mg/dL",
    low: 130,
    high: 280,
};
pub(crate) const ETHANOL: Measure = Measure {
    loinc: "5643-2",
    display: "Ethanol [Mass/volume] in Serum or Plasma",
    category: "laboratory",
    unit: "mg/dL",
    low: 0,
    high: 180,
};

pub(crate) const LABS: &[&Measure] = &[&GLUCOSE, &CHOLESTEROL];

pub(crate) const GIVEN_FEMALE: &[&str] = &[
    "Ava", "Maria", "Grace", "Chloe", "Nora", "Lucia", "Hannah", "Amara", "Rosa", "Ingrid", "Mei",
    "Fatima", "Leah", "Joan", "Priya", "Esther",
];
pub(crate) const GIVEN_MALE: &[&str] = &[
    "Liam", "Mateo", "Noah", "Elijah", "Omar", "Samuel", "Jonah", "Diego", "Arjun", "Felix",
    "Theo", "Malik", "Hiro", "Caleb", "Tomas", "Walter",
];
pub(crate) const FAMILY: &[&str] = &[
    "Alvarez",
    "Brennan",
    "Chen",
    "Delgado",
    "Eriksen",
    "Fofana",
    "Garcia",
    "Haddad",
    "Ivanova",
    "Johnson",
    "Kowalski",
    "Lindqvist",
    "Mensah",
    "Nakamura",
    "Okafor",
    "Patel",
    "Quinn",
    "Rossi",
    "Silva",
    "Tran",
    "Underwood",
    "Vargas",
    "Whitfield",
    "Yilmaz",
    "Zimmerman",
];
pub(crate) const STREETS: &[&str] = &[
    "Maple Street",
    "River Road",
    "Elm Avenue",
    "Harbor Lane",
    "Orchard Way",
    "Mill Street",
    "Cedar Court",
    "Bridge Street",
];
