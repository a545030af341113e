//! Partnerships whose members each keep their own FHIR server: one
//! upstream per member, searches fanned out and merged, each server's
//! records its owner's; over real TLS with two in-memory servers.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)] // test code: a panic is a failed test

use std::net::SocketAddr;

use accord_audit::DecisionKind;
use accord_e2e::{Harness, Options};
use accord_testkit::fhir_server::{self, FhirStore, RunningFhirServer};
use serde_json::{Value, json};

/// riverside-bh may read St. Brigid's records only; maple-primary reads
/// Observations from every member's server (agreement `care`).
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
resources = ["Observation"]
interactions = ["read", "search"]
"#;

/// St. Brigid's own server, holding `n` heart-rate Observations of `patient`.
async fn brigid_server(patient: &str, n: usize) -> RunningFhirServer {
    let resources: Vec<Value> = (0..n)
        .map(|i| {
            json!({"resourceType": "Observation", "id": format!("stb-obs-{i}"), "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                "subject": {"reference": format!("Patient/{patient}")},
                "valueQuantity": {"value": 70 + i, "unit": "/min"}})
        })
        .collect();
    fhir_server::start(
        FhirStore::from_resources(resources),
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await
    .unwrap()
}

async fn harness(brigid: &RunningFhirServer) -> Harness {
    Harness::start_with(Options {
        extra_policies: vec![("agreements/brigid-records.toml".into(), AGREEMENT.into())],
        members: Some((
            "riverside-bh".into(),
            vec![("st-brigid".into(), brigid.base_url())],
        )),
        ..Options::default()
    })
    .await
}

fn ids(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["resource"]["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_search_merges_every_members_server_and_a_source_keeps_to_its_own() {
    let p = accord_testkit::population::patient_id(1);
    let brigid = brigid_server(&p, 5).await;
    let h = harness(&brigid).await;
    let riverside_count = h
        .population
        .of_type("Observation")
        .filter(|o| o["subject"]["reference"] == format!("Patient/{p}").as_str())
        .count();
    assert!(riverside_count > 0);
    // The gateway reads every page of both servers, and pages over the
    // merged, released result itself.
    let small = h
        .client("maple-primary")
        .get(
            &h.url(&format!("Observation?patient={p}&_count=2")),
            "TREAT",
        )
        .await
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(ids(&small).len(), 2, "{small}");
    assert_eq!(small["total"], riverside_count + 5, "{small}");
    let merged = h
        .client("maple-primary")
        .get(
            &h.url(&format!("Observation?patient={p}&_count=200")),
            "TREAT",
        )
        .await
        .unwrap();
    assert_eq!(merged.status, 200, "{}", merged.text());
    let merged_ids = ids(&merged.json().unwrap());
    assert_eq!(merged_ids.len(), riverside_count + 5, "{merged_ids:?}");
    assert_eq!(
        merged_ids
            .iter()
            .filter(|id| id.starts_with("stb-obs-"))
            .count(),
        5
    );
    // riverside-bh's grant names St. Brigid as source: only its server's.
    let own = h
        .client("riverside-bh")
        .get(&h.url(&format!("Observation?patient={p}")), "TREAT")
        .await
        .unwrap();
    assert_eq!(own.status, 200, "{}", own.text());
    let own_ids = ids(&own.json().unwrap());
    assert_eq!(own_ids.len(), 5, "{own_ids:?}");
    assert!(own_ids.iter().all(|id| id.starts_with("stb-obs-")));
    // A read goes to the server that holds the id.
    let read = h
        .client("maple-primary")
        .get(&h.url("Observation/stb-obs-3"), "TREAT")
        .await
        .unwrap();
    assert_eq!(read.status, 200, "{}", read.text());
    let riverside_obs = h
        .population
        .of_type("Observation")
        .find(|o| o["subject"]["reference"] == format!("Patient/{p}").as_str())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = h
        .client("riverside-bh")
        .get(&h.url(&format!("Observation/{riverside_obs}")), "TREAT")
        .await
        .unwrap();
    assert_eq!(
        other.status, 404,
        "Riverside's own record is not St. Brigid's"
    );
}

#[tokio::test]
async fn one_member_server_down_fails_the_request_and_says_which() {
    let p = accord_testkit::population::patient_id(1);
    let brigid = brigid_server(&p, 2).await;
    let h = harness(&brigid).await;
    brigid.shutdown();
    let response = h
        .client("maple-primary")
        .get(&h.url(&format!("Observation?patient={p}")), "TREAT")
        .await
        .unwrap();
    assert_eq!(response.status, 502, "{}", response.text());
    assert!(response.text().contains("st-brigid"), "{}", response.text());
    assert!(
        !response.text().contains("obs-"),
        "no partial result: {}",
        response.text()
    );
    let record = h.audit_records().into_iter().last().unwrap();
    assert_eq!(record.status, 502);
    assert_eq!(record.decision, DecisionKind::Refuse, "{}", record.rule);
    assert!(record.rule.contains("st-brigid"), "{}", record.rule);
}
