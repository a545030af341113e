//! Sensitive data as real records code it: SNOMED CT problems, RxNorm
//! medications (inline and by `medicationReference`), LOINC results,
//! CPT/HCPCS procedures — not only ICD-10-CM. Each record is withheld from a
//! partner whose grant does not name its category, and released to one
//! whose grant names it and whose patient consented; over real TLS.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)] // test code: a panic is a failed test

use accord_e2e::{Harness, Options};
use serde_json::{Value, json};

const SNOMED: &str = "http://snomed.info/sct";
const RXNORM: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";
const LOINC: &str = "http://loinc.org";
const HCPCS: &str = "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets";
const CPT: &str = "http://www.ama-assn.org/go/cpt";

/// st-brigid: prescriptions and procedures, no sensitive category.
/// riverside-bh: the same types with Part 2 and HIV data.
const AGREEMENT: &str = r#"id = "sensitive-codes"
version = 1
title = "Sensitive data coded as EHRs code it"
status = "active"
parties = ["riverside-bh", "st-brigid"]
effective = 2020-01-01
expires = 2099-12-31
purposes = ["TREAT"]

[[grant]]
id = "brigid-medications"
recipients = ["st-brigid"]
resources = ["MedicationRequest", "Procedure"]
interactions = ["read", "search"]

[[grant]]
id = "riverside-sensitive"
recipients = ["riverside-bh"]
resources = ["Condition", "MedicationRequest", "Observation", "Procedure"]
interactions = ["read", "search"]
sensitive = ["part2", "hiv-sti"]
"#;

/// The patient consents to Part 2 disclosure to Riverside for treatment.
fn consent(patient: &str) -> String {
    json!({
        "resourceType": "Consent", "id": "part2-to-riverside", "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": LOINC, "code": "59284-0"}]}],
        "patient": {"reference": format!("Patient/{patient}")},
        "dateTime": "2024-01-10T14:30:00Z",
        "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]},
        "provision": {"type": "permit", "period": {"start": "2024-01-10"}, "provision": [{
            "type": "permit",
            "actor": [{"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}]},
                       "reference": {"reference": "Organization/riverside-bh"}}],
            "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT"}],
            "securityLabel": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "ETH"}]
        }]}
    })
    .to_string()
}

async fn harness(extra: &[(&str, &str)]) -> Harness {
    let patient = accord_testkit::population::patient_id(1);
    let mut options = Options {
        extra_policies: vec![
            ("agreements/sensitive-codes.toml".into(), AGREEMENT.into()),
            ("consents/part2-to-riverside.json".into(), consent(&patient)),
        ],
        ..Options::default()
    };
    options.extra_policies.extend(
        extra
            .iter()
            .map(|(p, t)| ((*p).to_owned(), (*t).to_owned())),
    );
    Harness::start_with(options).await
}

fn concept(system: &str, code: &str, display: &str) -> Value {
    json!({"coding": [{"system": system, "code": code, "display": display}]})
}

/// Creates the record upstream and gives back `Type/id`.
fn create(h: &Harness, resource: Value) -> String {
    let created = h.upstream.store().create(resource).unwrap();
    format!(
        "{}/{}",
        created["resourceType"].as_str().unwrap(),
        created["id"].as_str().unwrap()
    )
}

fn condition(patient: &str, code: Value) -> Value {
    json!({"resourceType": "Condition", "subject": {"reference": format!("Patient/{patient}")},
           "clinicalStatus": concept("http://terminology.hl7.org/CodeSystem/condition-clinical", "active", "Active"),
           "code": code})
}

fn prescription(patient: &str, medication: Value) -> Value {
    let mut request = json!({"resourceType": "MedicationRequest", "status": "active", "intent": "order",
        "subject": {"reference": format!("Patient/{patient}")}});
    let fields = request.as_object_mut().unwrap();
    for (key, value) in medication.as_object().unwrap() {
        fields.insert(key.clone(), value.clone());
    }
    request
}

async fn status(h: &Harness, partner: &str, path: &str) -> u16 {
    h.client(partner)
        .get(&h.url(path), "TREAT")
        .await
        .unwrap()
        .status
}

/// The records of the issue's table, and more of each kind.
fn sensitive_records(h: &Harness, p: &str) -> Vec<(&'static str, String)> {
    let medication = create(
        h,
        json!({"resourceType": "Medication",
               "code": concept(RXNORM, "1010600", "buprenorphine 2 MG / naloxone 0.5 MG Sublingual Film")}),
    );
    let subject = json!({"reference": format!("Patient/{p}")});
    vec![
        (
            "SNOMED CT opioid abuse",
            create(
                h,
                condition(p, concept(SNOMED, "5602001", "Opioid abuse (disorder)")),
            ),
        ),
        (
            "SNOMED CT HIV infection",
            create(
                h,
                condition(
                    p,
                    concept(
                        SNOMED,
                        "86406008",
                        "Human immunodeficiency virus infection (disorder)",
                    ),
                ),
            ),
        ),
        (
            "RxNorm buprenorphine/naloxone inline",
            create(
                h,
                prescription(
                    p,
                    json!({"medicationCodeableConcept": concept(RXNORM, "1010600",
                        "buprenorphine 2 MG / naloxone 0.5 MG Sublingual Film")}),
                ),
            ),
        ),
        (
            "RxNorm bictegravir/emtricitabine/TAF inline",
            create(
                h,
                prescription(
                    p,
                    json!({"medicationCodeableConcept": concept(RXNORM, "1999667",
                        "bictegravir 50 MG / emtricitabine 200 MG / tenofovir alafenamide 25 MG Oral Tablet")}),
                ),
            ),
        ),
        (
            "RxNorm buprenorphine by medicationReference",
            create(
                h,
                prescription(p, json!({"medicationReference": {"reference": medication}})),
            ),
        ),
        (
            // Not in the code lists: recognised by the ingredient's name.
            "RxNorm methadone product by its display",
            create(
                h,
                prescription(
                    p,
                    json!({"medicationCodeableConcept": concept(RXNORM, "999999901",
                        "Methadone Hydrochloride 10 MG Oral Tablet")}),
                ),
            ),
        ),
        (
            "LOINC HIV-1 viral load",
            create(
                h,
                json!({"resourceType": "Observation", "status": "final", "subject": subject,
                    "code": concept(LOINC, "20447-9", "HIV 1 RNA [#/volume] (viral load) in Serum or Plasma")}),
            ),
        ),
        (
            "HCPCS methadone administration",
            create(
                h,
                json!({"resourceType": "Procedure", "status": "completed", "subject": subject,
                    "code": concept(HCPCS, "H0020", "Alcohol and/or drug services; methadone administration")}),
            ),
        ),
        (
            "CPT SBIRT",
            create(
                h,
                json!({"resourceType": "Procedure", "status": "completed", "subject": subject,
                    "code": concept(CPT, "99408", "Alcohol and/or substance abuse structured screening")}),
            ),
        ),
    ]
}

#[tokio::test]
async fn records_coded_in_snomed_rxnorm_loinc_and_cpt_are_withheld_without_the_category() {
    let h = harness(&[]).await;
    let p = h.patient();
    let records = sensitive_records(&h, &p);
    for (what, path) in &records {
        // st-brigid may read Conditions and Observations (agreement `care`)
        // and prescriptions and procedures (`sensitive-codes`), without
        // any sensitive category.
        assert_eq!(
            status(&h, "st-brigid", path).await,
            404,
            "{what} ({path}) released to st-brigid"
        );
        assert_eq!(
            status(&h, "riverside-bh", path).await,
            200,
            "{what} ({path}) withheld from riverside-bh, whose grant names it and whose patient consented"
        );
    }
    for search in ["Condition", "MedicationRequest", "Observation", "Procedure"] {
        let response = h
            .client("st-brigid")
            .get(&h.url(&format!("{search}?patient={p}&_count=500")), "TREAT")
            .await
            .unwrap();
        assert_eq!(response.status, 200, "{}", response.text());
        for (what, path) in &records {
            let id = path.split('/').nth(1).unwrap();
            assert!(
                !response.text().contains(&format!("\"{id}\"")),
                "{what} released in a {search} search"
            );
        }
    }
    // The audit record of St. Brigid's Condition search says how many were
    // withheld and why (not whose): the SNOMED CT opioid and HIV problems.
    let record = h
        .audit_records()
        .into_iter()
        .find(|r| {
            r.partner.as_deref() == Some("st-brigid") && r.target.contains("/Condition?patient=")
        })
        .unwrap();
    assert!(
        record
            .withheld
            .get("sensitive_category")
            .copied()
            .unwrap_or(0)
            >= 2,
        "{:?}",
        record.withheld
    );
}

#[tokio::test]
async fn part_2_data_coded_in_snomed_needs_the_patients_consent() {
    // Riverside's grant names part2, but the second patient never consented.
    let h = harness(&[]).await;
    let other = accord_testkit::population::patient_id(2);
    let path = create(
        &h,
        condition(
            &other,
            concept(SNOMED, "5602001", "Opioid abuse (disorder)"),
        ),
    );
    assert_eq!(status(&h, "riverside-bh", &path).await, 404);
    let hiv = create(
        &h,
        condition(
            &other,
            concept(SNOMED, "86406008", "Human immunodeficiency virus infection"),
        ),
    );
    assert_eq!(
        status(&h, "riverside-bh", &hiv).await,
        200,
        "hiv-sti needs no consent, only the grant"
    );
}

#[tokio::test]
async fn ordinary_records_in_the_same_code_systems_are_released() {
    let h = harness(&[]).await;
    let p = h.patient();
    let diabetes = create(
        &h,
        condition(
            &p,
            concept(SNOMED, "44054006", "Diabetes mellitus type 2 (disorder)"),
        ),
    );
    let metformin = create(
        &h,
        prescription(
            &p,
            json!({"medicationCodeableConcept": concept(RXNORM, "860975",
                "24 HR metformin hydrochloride 500 MG Extended Release Oral Tablet")}),
        ),
    );
    assert_eq!(status(&h, "st-brigid", &diabetes).await, 200);
    assert_eq!(status(&h, "st-brigid", &metformin).await, 200);
}

#[tokio::test]
async fn a_prescription_whose_medication_cannot_be_read_is_withheld() {
    let h = harness(&[]).await;
    let p = h.patient();
    let dangling = create(
        &h,
        prescription(
            &p,
            json!({"medicationReference": {"reference": "Medication/not-there"}}),
        ),
    );
    assert_eq!(status(&h, "st-brigid", &dangling).await, 404);
    assert_eq!(status(&h, "riverside-bh", &dangling).await, 404);
}

#[tokio::test]
async fn unclassifiable_records_follow_the_agreements_choice() {
    const RELEASE: &str = r#"id = "release-unclassified"
version = 1
title = "Local codes released"
status = "active"
parties = ["maple-primary", "st-brigid"]
effective = 2020-01-01
expires = 2099-12-31
purposes = ["TREAT"]

[unclassified]
release = ["Condition"]

[[grant]]
id = "maple-conditions"
recipients = ["maple-primary"]
resources = ["Condition"]
interactions = ["read"]
"#;
    let h = harness(&[]).await;
    let p = h.patient();
    let local = create(
        &h,
        condition(&p, concept("urn:oid:1.2.3.4.5", "LOCAL-17", "Program note")),
    );
    assert_eq!(
        status(&h, "st-brigid", &local).await,
        404,
        "a Condition coded only locally is withheld by default"
    );
    drop(h);
    // An agreement may choose to release them: `0-release.toml` comes
    // first in file order, so its grant is the one that permits
    // maple-primary's Condition reads.
    let h = harness(&[("agreements/0-release.toml", RELEASE)]).await;
    let local = create(
        &h,
        condition(&p, concept("urn:oid:1.2.3.4.5", "LOCAL-17", "Program note")),
    );
    assert_eq!(status(&h, "maple-primary", &local).await, 200);
}

#[tokio::test]
async fn a_privacy_officer_can_extend_a_category() {
    const LOCAL: &str = r#"[[extend]]
category = "part2"
sources = ["Riverside program codes, privacy office list 2026-11"]
[[extend.codes]]
system = "urn:oid:1.2.3.4.5"
codes = ["LOCAL-17"]
"#;
    let h = harness(&[
        (
            "sensitivity/default.toml",
            accord_policy::sensitivity::DEFAULT_SENSITIVITY,
        ),
        ("sensitivity/local.toml", LOCAL),
    ])
    .await;
    let p = h.patient();
    let other = accord_testkit::population::patient_id(2);
    let local = create(
        &h,
        condition(
            &other,
            concept("urn:oid:1.2.3.4.5", "LOCAL-17", "Program note"),
        ),
    );
    // Part 2 now, and patient 2 did not consent to Riverside.
    assert_eq!(status(&h, "riverside-bh", &local).await, 404);
    let consented = create(
        &h,
        condition(&p, concept("urn:oid:1.2.3.4.5", "LOCAL-17", "Program note")),
    );
    assert_eq!(status(&h, "riverside-bh", &consented).await, 200);
}

#[tokio::test]
async fn drugs_and_disorders_the_older_value_sets_miss_are_recognised_by_name() {
    // Codes no table lists (placeholders): what counts is the ingredient or
    // disorder the display names, added to tools/sensitivity/terms.csv from
    // the gap review (DHHS antiretroviral guidelines, FDA lofexidine
    // approval, DSM-5 "use disorder" names, C2S drug-screen analytes).
    let h = harness(&[]).await;
    let p = h.patient();
    let subject = json!({"reference": format!("Patient/{p}")});
    let drug = |display: &str| {
        prescription(
            &p,
            json!({"medicationCodeableConcept": concept(RXNORM, "999999902", display)}),
        )
    };
    let records = [
        (
            "doravirine",
            create(&h, drug("doravirine 100 MG Oral Tablet")),
        ),
        (
            "maraviroc",
            create(&h, drug("maraviroc 150 MG Oral Tablet [Selzentry]")),
        ),
        (
            "lenacapavir",
            create(&h, drug("lenacapavir 300 MG Oral Tablet")),
        ),
        (
            "lofexidine",
            create(&h, drug("lofexidine 0.18 MG Oral Tablet")),
        ),
        (
            "opioid use disorder",
            create(
                &h,
                condition(
                    &p,
                    concept(
                        SNOMED,
                        "999999903",
                        "Moderate opioid use disorder (disorder)",
                    ),
                ),
            ),
        ),
        (
            "urine buprenorphine",
            create(
                &h,
                json!({"resourceType": "Observation", "status": "final", "subject": subject,
                    "code": concept(LOINC, "99999-9", "Norbuprenorphine [Presence] in Urine by Confirmatory method")}),
            ),
        ),
    ];
    for (what, path) in &records {
        assert_eq!(
            status(&h, "st-brigid", path).await,
            404,
            "{what} ({path}) released to st-brigid"
        );
        assert_eq!(
            status(&h, "riverside-bh", path).await,
            200,
            "{what} ({path}) withheld from riverside-bh"
        );
    }
}
