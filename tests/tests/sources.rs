//! Whose data: a grant's `source` releases only that member's records, in
//! every position, over real TLS. On a shared server a record's source is
//! read from the record (its organization elements, its Encounter's
//! service provider, `meta.source`); on a member's own server
//! (`gateway.upstream_owner`) everything it holds is that member's.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)] // test code: a panic is a failed test

use std::collections::BTreeMap;

use accord_e2e::{Harness, Options};
use serde_json::Value;

/// riverside-bh may read St. Brigid's records only.
const AGREEMENT: &str = r#"id = "brigid-records"
version = 1
title = "St. Brigid's records for Riverside"
status = "active"
parties = ["riverside-bh", "st-brigid"]
effective = 2020-01-01
expires = 2099-12-31
purposes = ["TREAT"]

[[grant]]
id = "brigid-clinical"
recipients = ["riverside-bh"]
source = "st-brigid"
resources = ["Patient", "Encounter", "Observation"]
interactions = ["read", "search"]
"#;

async fn harness(owner: Option<&str>) -> Harness {
    Harness::start_with(Options {
        extra_policies: vec![("agreements/brigid-records.toml".into(), AGREEMENT.into())],
        partner_lines: vec![
            (
                "riverside-bh",
                "organization = \"Organization/org-riverside-bh\"".into(),
            ),
            (
                "maple-primary",
                "organization = \"Organization/org-maple-primary\"".into(),
            ),
            (
                "st-brigid",
                "organization = \"Organization/org-st-brigid\"".into(),
            ),
        ],
        upstream_owner: owner.map(str::to_owned),
        ..Options::default()
    })
    .await
}

/// Encounter id → its service provider, from the fixture population.
fn providers(h: &Harness) -> BTreeMap<String, String> {
    h.population
        .of_type("Encounter")
        .map(|e| {
            (
                e["id"].as_str().unwrap().to_owned(),
                e["serviceProvider"]["reference"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
            )
        })
        .collect()
}

fn encounter_of(resource: &Value) -> Option<String> {
    resource["encounter"]["reference"]
        .as_str()
        .map(|r| r.trim_start_matches("Encounter/").to_owned())
}

/// A patient with Observations from St. Brigid's encounters and others'.
fn mixed_patient(h: &Harness) -> String {
    let providers = providers(h);
    let mut by_patient: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for o in h.population.of_type("Observation") {
        let patient = o["subject"]["reference"]
            .as_str()
            .unwrap()
            .trim_start_matches("Patient/");
        let brigid = encounter_of(o)
            .and_then(|e| providers.get(&e).cloned())
            .is_some_and(|p| p == "Organization/org-st-brigid");
        let counts = by_patient.entry(patient.to_owned()).or_default();
        if brigid {
            counts.0 += 1;
        } else {
            counts.1 += 1;
        }
    }
    by_patient
        .into_iter()
        .find(|(p, (brigid, other))| *brigid > 0 && *other > 0 && p != accord_e2e::OPTED_OUT)
        .map(|(p, _)| p)
        .expect("the population has patients seen by St. Brigid and by others")
}

#[tokio::test]
async fn on_a_shared_server_only_the_named_members_records_are_released() {
    let h = harness(None).await;
    let providers = providers(&h);
    let p = mixed_patient(&h);
    let response = h
        .client("riverside-bh")
        .get(
            &h.url(&format!("Observation?patient={p}&_count=500")),
            "TREAT",
        )
        .await
        .unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    let bundle = response.json().unwrap();
    let released: Vec<&Value> = bundle["entry"]
        .as_array()
        .map(|e| e.iter().map(|e| &e["resource"]).collect())
        .unwrap_or_default();
    assert!(
        !released.is_empty(),
        "St. Brigid's observations are released"
    );
    for o in &released {
        let provider = encounter_of(o).and_then(|e| providers.get(&e).cloned());
        assert_eq!(
            provider.as_deref(),
            Some("Organization/org-st-brigid"),
            "another member's record was released: {o}"
        );
    }
    // A read of another member's encounter answers as if it did not exist.
    let other = providers
        .iter()
        .find(|(_, org)| org.as_str() != "Organization/org-st-brigid")
        .map(|(id, _)| id.clone())
        .unwrap();
    let read = h
        .client("riverside-bh")
        .get(&h.url(&format!("Encounter/{other}")), "TREAT")
        .await
        .unwrap();
    assert_eq!(read.status, 404, "{}", read.text());
    // A record whose source cannot be told is withheld (fail closed).
    let orphan = h
        .upstream
        .store()
        .create(
            serde_json::json!({"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": format!("Patient/{p}")}}),
        )
        .unwrap();
    let read = h
        .client("riverside-bh")
        .get(
            &h.url(&format!("Observation/{}", orphan["id"].as_str().unwrap())),
            "TREAT",
        )
        .await
        .unwrap();
    assert_eq!(read.status, 404, "{}", read.text());
    let record = h.audit_records().into_iter().last().unwrap();
    assert!(record.status == 404, "{record:?}");
}

#[tokio::test]
async fn a_members_own_server_holds_only_that_members_records() {
    let h = harness(Some("st-brigid")).await;
    let p = mixed_patient(&h);
    let upstream = h
        .population
        .of_type("Observation")
        .filter(|o| o["subject"]["reference"] == format!("Patient/{p}").as_str())
        .count();
    let response = h
        .client("riverside-bh")
        .get(
            &h.url(&format!("Observation?patient={p}&_count=500")),
            "TREAT",
        )
        .await
        .unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    let released = response.json().unwrap()["entry"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(
        released, upstream,
        "all of St. Brigid's server is St. Brigid's"
    );
}
