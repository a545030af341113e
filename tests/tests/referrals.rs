//! Referral cohorts: a grant limited to "patients with a referral between
//! the parties" releases a patient's data only when the upstream holds such
//! a referral; anything the gateway cannot resolve admits nobody.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)] // test code: a panic is a failed test

use accord_e2e::{Harness, Options};
use accord_testkit::client::PartnerResponse;
use accord_testkit::population::{ORG_BEHAVIORAL, ORG_PRIMARY};
use serde_json::Value;

/// Maple Street may read clinical data of patients referred between it and
/// Riverside, for care management.
const REFERRAL_AGREEMENT: &str = r#"id = "referred-care"
version = 1
title = "Care management of referred patients"
status = "active"
parties = ["riverside-bh", "maple-primary"]
effective = 2020-01-01
expires = 2099-12-31
purposes = ["CAREMGT"]

[[cohort]]
id = "referred"
kind = "referral"
description = "Patients referred between Riverside and Maple Street"
between = ["riverside-bh", "maple-primary"]

[[grant]]
id = "referred-clinical"
recipients = ["maple-primary"]
resources = ["Patient", "Condition", "Encounter"]
interactions = ["read", "search"]
cohort = "referred"
population_search = true
"#;

fn options(organizations: bool) -> Options {
    let mut options = Options {
        extra_policies: vec![(
            "agreements/referred-care.toml".to_owned(),
            REFERRAL_AGREEMENT.to_owned(),
        )],
        ..Options::default()
    };
    if organizations {
        options.partner_lines = vec![
            (
                "riverside-bh",
                format!("organization = \"Organization/{ORG_BEHAVIORAL}\""),
            ),
            (
                "maple-primary",
                format!("organization = \"Organization/{ORG_PRIMARY}\""),
            ),
        ];
    }
    options
}

async fn get(h: &Harness, path: &str) -> PartnerResponse {
    h.client("maple-primary")
        .get(&h.url(path), "CAREMGT")
        .await
        .unwrap()
}

/// A patient with a referral ServiceRequest between the two organisations.
fn referred_patient(h: &Harness) -> String {
    let orgs = [
        format!("Organization/{ORG_BEHAVIORAL}"),
        format!("Organization/{ORG_PRIMARY}"),
    ];
    // ... and a chronic-disease diagnosis, which this grant may release.
    let has_chronic_condition = |patient: &str| {
        h.population.of_type("Condition").any(|c| {
            c["subject"]["reference"] == patient
                && c["code"]["coding"][0]["code"]
                    .as_str()
                    .is_some_and(|code| !code.starts_with('F'))
        })
    };
    h.population
        .of_type("ServiceRequest")
        .filter(|sr| {
            let from = sr["requester"]["reference"].as_str().unwrap_or("");
            let to = sr["performer"][0]["reference"].as_str().unwrap_or("");
            from != to && orgs.iter().any(|o| o == from) && orgs.iter().any(|o| o == to)
        })
        .filter_map(|sr| sr["subject"]["reference"].as_str())
        .find(|p| has_chronic_condition(p))
        .map(|r| r.trim_start_matches("Patient/").to_owned())
        .expect("the population has referrals between Riverside and Maple Street")
}

fn without_volatile(mut bundle: Value) -> Value {
    if let Some(fields) = bundle.as_object_mut() {
        fields.remove("id");
        fields.remove("meta");
        fields.remove("link");
    }
    bundle
}

#[tokio::test]
async fn a_referral_cohort_that_cannot_be_resolved_admits_nobody() {
    // The partners name no organisation: no referral can be attributed to
    // them, so even a referred patient is answered as having no data.
    let h = Harness::start_with(options(false)).await;
    let p = referred_patient(&h);
    let read = get(&h, &format!("Patient/{p}")).await;
    let missing = get(&h, "Patient/no-such-patient").await;
    assert_eq!((read.status, &read.body), (404, &missing.body));
    let search = get(&h, &format!("Condition?patient={p}")).await;
    let no_data = get(&h, "Condition?patient=no-such-patient").await;
    assert_eq!(search.status, 200, "{}", search.text());
    assert_eq!(
        without_volatile(search.json().unwrap()),
        without_volatile(no_data.json().unwrap())
    );
}

/// A referral ServiceRequest for `patient` from one Organization to another.
fn referral(patient: &str, from: &str, to: &str) -> Value {
    serde_json::json!({
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "subject": {"reference": format!("Patient/{patient}")},
        "requester": {"reference": format!("Organization/{from}")},
        "performer": [{"reference": format!("Organization/{to}")}]
    })
}

/// A patient with no referral between the two organisations (but with data).
fn unreferred_patient(h: &Harness) -> String {
    let referred: Vec<String> = h
        .population
        .of_type("ServiceRequest")
        .chain(h.population.of_type("Task"))
        .filter_map(|r| {
            r["subject"]["reference"]
                .as_str()
                .or(r["for"]["reference"].as_str())
        })
        .map(|r| r.trim_start_matches("Patient/").to_owned())
        .collect();
    h.population
        .of_type("Condition")
        .filter_map(|c| c["subject"]["reference"].as_str())
        .map(|r| r.trim_start_matches("Patient/").to_owned())
        .find(|p| !referred.contains(p))
        .expect("some patient with conditions has no referral at all")
}

#[tokio::test]
async fn a_patient_with_a_referral_between_the_parties_is_released() {
    let h = Harness::start_with(options(true)).await;
    let p = referred_patient(&h);
    let read = get(&h, &format!("Patient/{p}")).await;
    assert_eq!(read.status, 200, "{}", read.text());
    assert_eq!(read.json().unwrap()["id"], p.as_str());
    let search = get(&h, &format!("Condition?patient={p}&_count=200")).await;
    assert_eq!(search.status, 200, "{}", search.text());
    let bundle = search.json().unwrap();
    let entries = bundle["entry"].as_array().cloned().unwrap_or_default();
    assert!(!entries.is_empty(), "the referred patient's conditions");
    assert!(
        entries
            .iter()
            .all(|e| e["resource"]["subject"]["reference"] == format!("Patient/{p}").as_str())
    );
    let requests = h.upstream.store().recorded_requests();
    assert!(
        requests.iter().any(|r| r
            .path_and_query
            .starts_with("/fhir/ServiceRequest?subject=Patient")),
        "membership was asked of the upstream"
    );
}

#[tokio::test]
async fn a_patient_without_a_referral_looks_exactly_like_a_patient_with_no_data() {
    let h = Harness::start_with(options(true)).await;
    let p = unreferred_patient(&h);
    let read = get(&h, &format!("Patient/{p}")).await;
    let missing = get(&h, "Patient/no-such-patient").await;
    assert_eq!((read.status, &read.body), (404, &missing.body));
    let search = get(&h, &format!("Condition?patient={p}")).await;
    let no_data = get(&h, "Condition?patient=no-such-patient").await;
    assert_eq!(search.status, 200, "{}", search.text());
    assert_eq!(
        without_volatile(search.json().unwrap()),
        without_volatile(no_data.json().unwrap())
    );
    assert!(
        !h.upstream
            .store()
            .recorded_requests()
            .iter()
            .any(|r| r.path_and_query.starts_with("/fhir/Condition")),
        "the search never reached the upstream"
    );
}

#[tokio::test]
async fn a_new_referral_counts() {
    let h = Harness::start_with(options(true)).await;
    let p = unreferred_patient(&h);
    assert_eq!(get(&h, &format!("Patient/{p}")).await.status, 404);
    h.upstream
        .store()
        .create(referral(&p, ORG_BEHAVIORAL, ORG_PRIMARY))
        .unwrap();
    // Membership answers are cached for at most a second.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(get(&h, &format!("Patient/{p}")).await.status, 200);
}

#[tokio::test]
async fn a_population_search_is_narrowed_to_the_referred_patients() {
    let h = Harness::start_with(options(true)).await;
    let referred = referred_patient(&h);
    let unreferred = unreferred_patient(&h);
    let response = get(&h, "Patient?_count=200").await;
    assert_eq!(response.status, 200, "{}", response.text());
    let ids: Vec<String> = response.json().unwrap()["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(ids.contains(&referred), "{ids:?}");
    assert!(!ids.contains(&unreferred), "{ids:?}");
    assert!(ids.len() < accord_e2e::PATIENTS, "not everyone: {ids:?}");
    let forwarded: Vec<String> = h
        .upstream
        .store()
        .recorded_requests()
        .into_iter()
        .map(|r| r.path_and_query)
        .filter(|q| q.starts_with("/fhir/Patient?"))
        .collect();
    assert!(
        forwarded.iter().all(|q| q.contains("_id=")),
        "the upstream search itself was narrowed: {forwarded:?}"
    );

    // Without the partners' Organizations the cohort cannot be listed.
    let unresolvable = Harness::start_with(options(false)).await;
    let refused = get(&unresolvable, "Patient?_count=200").await;
    assert_eq!(refused.status, 403, "{}", refused.text());
}

#[tokio::test]
async fn when_membership_cannot_be_asked_nothing_is_released() {
    let h = Harness::start_with(options(true)).await;
    let p = referred_patient(&h);
    h.upstream
        .store()
        .set_failure(Some(http::StatusCode::SERVICE_UNAVAILABLE));
    let read = get(&h, &format!("Patient/{p}")).await;
    assert!(read.status >= 500, "{}", read.text());
    assert!(!read.text().contains(&p), "{}", read.text());
    let search = get(&h, &format!("Condition?patient={p}")).await;
    assert!(search.status >= 500, "{}", search.text());
    assert!(!search.text().contains("\"Condition\""));
}

#[tokio::test]
async fn partners_organisations_are_found_by_their_identifiers() {
    let population = accord_testkit::population::generate(7, accord_e2e::PATIENTS);
    let identifier = |org: &str| {
        let o = population.get("Organization", org).unwrap();
        format!(
            "identifiers = [\"{}|{}\"]",
            o["identifier"][0]["system"].as_str().unwrap(),
            o["identifier"][0]["value"].as_str().unwrap()
        )
    };
    let mut options = options(false);
    options.partner_lines = vec![
        ("riverside-bh", identifier(ORG_BEHAVIORAL)),
        ("maple-primary", identifier(ORG_PRIMARY)),
    ];
    let h = Harness::start_with(options).await;
    let p = referred_patient(&h);
    let read = get(&h, &format!("Patient/{p}")).await;
    assert_eq!(read.status, 200, "{}", read.text());
    assert!(
        h.upstream.store().recorded_requests().iter().any(|r| r
            .path_and_query
            .starts_with("/fhir/Organization?identifier=")),
        "looked up by identifier"
    );
}

/// A patient with many referrals elsewhere and one between the parties past
/// the first page is a member: every page of referrals is read.
#[tokio::test]
async fn a_referral_past_the_first_page_counts() {
    let h = Harness::start_with(options(true)).await;
    let p = unreferred_patient(&h);
    let store = h.upstream.store();
    for i in 0..230 {
        store
            .create(referral(&p, &format!("elsewhere-{i}"), "elsewhere"))
            .unwrap();
    }
    assert_eq!(get(&h, &format!("Patient/{p}")).await.status, 404);
    store
        .create(referral(&p, ORG_BEHAVIORAL, ORG_PRIMARY))
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let read = get(&h, &format!("Patient/{p}")).await;
    assert_eq!(read.status, 200, "{}", read.text());
    let pages = store
        .recorded_requests()
        .into_iter()
        .filter(|r| {
            r.path_and_query.starts_with("/fhir/ServiceRequest?")
                && r.path_and_query.contains("_offset=")
        })
        .count();
    assert!(pages >= 1, "the second page was read");
}
