//! 42 CFR §2.32: Part 2 data released with the patient's consent carries
//! the redisclosure labels and notice.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)] // test code: a panic is a failed test

use accord_audit::report::accounting;
use accord_e2e::{Harness, Options};
use accord_testkit::client::PartnerResponse;
use serde_json::Value;

const PART2_AGREEMENT: &str = r#"id = "sud-care"
version = 1
title = "Care management including substance-use treatment records"
status = "active"
parties = ["riverside-bh", "maple-primary"]
effective = 2020-01-01
expires = 2099-12-31
purposes = ["CAREMGT"]

[[grant]]
id = "with-part2"
recipients = ["maple-primary"]
resources = ["Condition"]
interactions = ["read", "search"]
sensitive = ["part2", "restricted"]
"#;

fn consent(patient: &str) -> String {
    format!(
        r#"{{
  "resourceType": "Consent",
  "id": "{patient}-part2-maple",
  "status": "active",
  "scope": {{"coding": [{{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}}]}},
  "category": [{{"coding": [{{"system": "http://loinc.org", "code": "59284-0"}}]}}],
  "patient": {{"reference": "Patient/{patient}"}},
  "dateTime": "2024-01-10T14:30:00Z",
  "policyRule": {{"coding": [{{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}}]}},
  "provision": {{
    "type": "permit",
    "period": {{"start": "2024-01-10"}},
    "provision": [{{
      "type": "permit",
      "actor": [{{
        "role": {{"coding": [{{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}}]}},
        "reference": {{"reference": "Organization/maple-primary"}}
      }}],
      "purpose": [{{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "CAREMGT"}}],
      "securityLabel": [{{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "ETH"}}]
    }}]
  }}
}}"#
    )
}

/// The generator's substance-use disorders in SNOMED CT (alcohol, opioid,
/// cannabis dependence): another organization's record of one is coded so
/// alone.
const SUD_SNOMED: &[&str] = &["66590003", "75544000", "85005007"];

fn is_sud(condition: &Value) -> bool {
    condition["code"]["coding"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| {
            let code = c["code"].as_str().unwrap_or("");
            (c["system"] == "http://hl7.org/fhir/sid/icd-10-cm" && code.starts_with("F1"))
                || (c["system"] == "http://snomed.info/sct" && SUD_SNOMED.contains(&code))
        })
}

/// Hypertension, diabetes, asthma: not sensitive (coded in ICD-10-CM
/// outside chapter F, unlabelled).
fn is_chronic(condition: &Value) -> bool {
    condition["code"]["coding"][0]["system"] == "http://hl7.org/fhir/sid/icd-10-cm"
        && condition["code"]["coding"][0]["code"]
            .as_str()
            .is_some_and(|code| !code.starts_with('F'))
        && condition["meta"]["security"].is_null()
}

fn labels(resource: &Value) -> Vec<String> {
    resource["meta"]["security"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| l["code"].as_str().unwrap_or("").to_owned())
        .collect()
}

fn patient_of(condition: &Value) -> String {
    condition["subject"]["reference"]
        .as_str()
        .unwrap()
        .trim_start_matches("Patient/")
        .to_owned()
}

async fn get(h: &Harness, path: &str) -> PartnerResponse {
    h.client("maple-primary")
        .get(&h.url(path), "CAREMGT")
        .await
        .unwrap()
}

/// A harness where the first patient with a substance-use diagnosis (and a
/// chronic one) consented to Part 2 disclosure to Maple Street.
async fn start() -> (Harness, String) {
    let population = accord_testkit::population::generate(7, accord_e2e::PATIENTS);
    let patient = population
        .of_type("Condition")
        .filter(|c| is_sud(c))
        .map(patient_of)
        .find(|p| {
            p != accord_e2e::OPTED_OUT
                && population
                    .of_type("Condition")
                    .any(|c| patient_of(c) == *p && is_chronic(c))
        })
        .expect("a patient with both kinds of diagnosis");
    let h = Harness::start_with(Options {
        extra_policies: vec![
            (
                "agreements/sud-care.toml".to_owned(),
                PART2_AGREEMENT.to_owned(),
            ),
            ("consents/part2-maple.json".to_owned(), consent(&patient)),
        ],
        ..Options::default()
    })
    .await;
    (h, patient)
}

#[tokio::test]
async fn a_searchset_with_part_2_data_is_labelled_and_carries_the_notice() {
    let (h, patient) = start().await;
    let response = get(&h, &format!("Condition?patient={patient}&_count=200")).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let bundle = response.json().unwrap();
    let entries = bundle["entry"].as_array().unwrap();
    let (outcomes, matches): (Vec<&Value>, Vec<&Value>) = entries
        .iter()
        .partition(|e| e["search"]["mode"] == "outcome");
    assert!(
        matches.iter().any(|e| is_sud(&e["resource"])),
        "released with consent"
    );
    for entry in &matches {
        let resource = &entry["resource"];
        let labels = labels(resource);
        if is_sud(resource) {
            assert!(labels.contains(&"42CFRPart2".to_owned()), "{labels:?}");
            assert!(labels.contains(&"NORDSCLCD".to_owned()), "{labels:?}");
            assert_eq!(labels.iter().filter(|l| *l == "NORDSCLCD").count(), 1);
        } else {
            assert!(!labels.contains(&"42CFRPart2".to_owned()), "{labels:?}");
        }
    }
    assert_eq!(outcomes.len(), 1, "one notice per response");
    let notice = &outcomes[0]["resource"];
    assert_eq!(notice["resourceType"], "OperationOutcome");
    assert_eq!(notice["issue"][0]["severity"], "information");
    let text = notice["issue"][0]["details"]["text"].as_str().unwrap();
    assert!(text.starts_with("This record which has been disclosed to you is protected by Federal confidentiality rules (42 CFR part 2)."));
    assert_eq!(bundle["total"], matches.len(), "the notice is not a match");
    // The audit record says Part 2 data of this patient went out.
    let record = h.audit_records().pop().unwrap();
    let release = record
        .released_to(&format!("Patient/{patient}"))
        .expect("released to the patient");
    assert!(
        release.sensitivity.contains(&"part2".to_owned()),
        "{release:?}"
    );
    let parsed: Result<fhirbolt::model::r4::Resource, _> =
        fhirbolt::json::from_str(&response.text(), None);
    assert!(
        parsed.is_ok(),
        "the labelled searchset is valid R4: {parsed:?}"
    );
}

#[tokio::test]
async fn a_single_part_2_resource_carries_the_notice_in_a_header() {
    let (h, patient) = start().await;
    let sud = h
        .population
        .of_type("Condition")
        .find(|c| is_sud(c) && patient_of(c) == patient)
        .unwrap()
        .clone();
    let other = h
        .population
        .of_type("Condition")
        .find(|c| is_chronic(c) && patient_of(c) == patient)
        .unwrap()
        .clone();
    let read = get(&h, &format!("Condition/{}", sud["id"].as_str().unwrap())).await;
    assert_eq!(read.status, 200, "{}", read.text());
    let notice = read.header("x-redisclosure-notice").expect("notice header");
    assert!(notice.contains("42 CFR part 2"));
    let body = read.json().unwrap();
    assert!(labels(&body).contains(&"42CFRPart2".to_owned()));
    let parsed: Result<fhirbolt::model::r4::Resource, _> =
        fhirbolt::json::from_str(&read.text(), None);
    assert!(
        parsed.is_ok(),
        "a labelled resource is valid R4: {parsed:?}"
    );
    let plain = get(&h, &format!("Condition/{}", other["id"].as_str().unwrap())).await;
    assert_eq!(plain.status, 200, "{}", plain.text());
    assert!(plain.header("x-redisclosure-notice").is_none());
    assert!(!labels(&plain.json().unwrap()).contains(&"42CFRPart2".to_owned()));
}

/// `_elements` asks for a subset; the upstream would drop the very code
/// that marks a diagnosis as Part 2 data. The gateway decides on the whole
/// resource and subsets after: a recipient the consent does not cover gets
/// none of the diagnosis, the one it covers gets the subset, still labelled.
#[tokio::test]
async fn subsetting_cannot_hide_part_2_data_from_the_filter() {
    let (h, patient) = start().await;
    let path = format!("Condition?patient={patient}&_count=200&_elements=subject");
    let sud_ids: Vec<String> = h
        .population
        .of_type("Condition")
        .filter(|c| is_sud(c) && patient_of(c) == patient)
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(!sud_ids.is_empty());

    // TREAT: no consent covers it, so no Part 2 data.
    let treat = h
        .client("maple-primary")
        .get(&h.url(&path), "TREAT")
        .await
        .unwrap();
    assert_eq!(treat.status, 200, "{}", treat.text());
    let bundle = treat.json().unwrap();
    let matches: Vec<&Value> = bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["search"]["mode"] != "outcome")
        .collect();
    assert!(!matches.is_empty(), "the chronic diagnosis is released");
    for entry in &matches {
        let resource = &entry["resource"];
        assert!(
            !sud_ids.contains(&resource["id"].as_str().unwrap().to_owned()),
            "Part 2 diagnosis released through _elements: {resource}"
        );
        assert!(resource.get("code").is_none(), "subset: {resource}");
        assert_eq!(
            resource["subject"]["reference"],
            format!("Patient/{patient}")
        );
        assert_eq!(resource["meta"]["tag"][0]["code"], "SUBSETTED");
    }

    // CAREMGT: the consent covers it; the subset keeps its labels.
    let consented = get(&h, &path).await;
    assert_eq!(consented.status, 200, "{}", consented.text());
    let bundle = consented.json().unwrap();
    let released: Vec<&Value> = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .filter(|r| sud_ids.contains(&r["id"].as_str().unwrap_or_default().to_owned()))
        .collect();
    assert_eq!(released.len(), sud_ids.len());
    for resource in released {
        assert!(resource.get("code").is_none());
        assert!(labels(resource).contains(&"42CFRPart2".to_owned()));
    }
    let parsed: Result<fhirbolt::model::r4::Resource, _> =
        fhirbolt::json::from_str(&consented.text(), None);
    assert!(
        parsed.is_ok(),
        "the subset searchset is valid R4: {parsed:?}"
    );
}

/// 42 CFR §2.24: the patient's list of disclosures names every release of
/// their Part 2 data, and only those. The audit record says which
/// sensitivity categories each patient's released data fell in.
#[tokio::test]
async fn a_part_2_disclosure_is_on_the_patients_list_of_disclosures_and_a_plain_one_is_not() {
    let (h, patient) = start().await;
    let reference = format!("Patient/{patient}");
    let condition = |part2: bool| {
        h.population
            .of_type("Condition")
            .find(|c| patient_of(c) == patient && if part2 { is_sud(c) } else { is_chronic(c) })
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let receipt = |response: &PartnerResponse| -> u64 {
        assert_eq!(response.status, 200, "{}", response.text());
        response.header("x-audit-seq").unwrap().parse().unwrap()
    };
    let sud = receipt(&get(&h, &format!("Condition/{}", condition(true))).await);
    let plain = receipt(&get(&h, &format!("Condition/{}", condition(false))).await);

    let records = h.audit_records();
    let sensitivity = |seq: u64| -> Vec<String> {
        let record = records.iter().find(|r| r.seq == seq).unwrap();
        let release = record
            .released_to(&reference)
            .expect("released to the patient");
        release.sensitivity.clone()
    };
    assert!(
        sensitivity(sud).contains(&"part2".to_owned()),
        "{:?}",
        sensitivity(sud)
    );
    assert_eq!(sensitivity(plain), Vec::<String>::new());

    // The report's "generated" time; the log's own clock will do.
    let now = records.iter().map(|r| r.time).max().unwrap();
    let report = h
        .audit
        .with_index(|index| accounting(index, &reference, None, now))
        .unwrap();
    let listed: Vec<u64> = report.disclosures.iter().map(|d| d.seq).collect();
    assert_eq!(listed, [sud, plain], "both are disclosures (§164.528)");
    let part2: Vec<u64> = report.part2().map(|d| d.seq).collect();
    assert_eq!(part2, [sud], "only the Part 2 one is on the §2.24 list");
    let text = report.to_text();
    let (_, list) = text
        .split_once("List of disclosures (42 CFR §2.24)")
        .expect("the §2.24 section");
    assert!(list.contains(&format!("record {sud}\n")), "{text}");
    assert!(!list.contains(&format!("record {plain}\n")), "{text}");
}
