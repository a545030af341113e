//! Seams a hostile partner probes (issue 15): a grant's constraints hold
//! for every resource released, whatever position it holds in the answer.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)] // test code: a panic is a failed test

use accord_e2e::{Harness, Options};
use accord_testkit::client::PartnerResponse;
use http::Method;
use serde_json::{Value, json};

/// Riverside may read laboratory Observations only, for operations.
const LAB_FEED: &str = r#"id = "lab-feed"
version = 1
title = "Laboratory feed"
status = "active"
parties = ["riverside-bh", "maple-primary"]
effective = 2020-01-01
expires = 2099-12-31
purposes = ["HOPERAT"]

[[grant]]
id = "labs"
recipients = ["riverside-bh"]
resources = ["Patient", "Observation"]
interactions = ["read", "vread", "search", "history"]
constraints = ["Observation?category=laboratory"]
redact = ["Patient.address"]
"#;

async fn lab_feed() -> Harness {
    Harness::start_with(Options {
        extra_policies: vec![("agreements/lab-feed.toml".into(), LAB_FEED.into())],
        ..Options::default()
    })
    .await
}

async fn get(h: &Harness, path: &str) -> PartnerResponse {
    h.client("riverside-bh")
        .get(&h.url(path), "HOPERAT")
        .await
        .unwrap()
}

fn category(resource: &Value) -> &str {
    resource["category"][0]["coding"][0]["code"]
        .as_str()
        .unwrap_or("")
}

/// The ids of one vital-signs and one laboratory Observation of patient 1.
fn observations(h: &Harness) -> (String, String) {
    let reference = format!("Patient/{}", h.patient());
    let of = |wanted: &str| {
        h.population
            .of_type("Observation")
            .find(|o| o["subject"]["reference"] == reference.as_str() && category(o) == wanted)
            .map(|o| o["id"].as_str().unwrap().to_owned())
            .unwrap()
    };
    (of("vital-signs"), of("laboratory"))
}

fn released_observations(body: &Value) -> Vec<&Value> {
    body["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| &e["resource"])
        .filter(|r| r["resourceType"] == "Observation")
        .collect()
}

#[tokio::test]
async fn constraints_hold_for_reads_vreads_history_batches_and_includes() {
    let h = lab_feed().await;
    let (vital, lab) = observations(&h);
    assert_eq!(get(&h, &format!("Observation/{lab}")).await.status, 200);
    for path in [
        format!("Observation/{vital}"),
        format!("Observation/{vital}/_history/1"),
    ] {
        let response = get(&h, &path).await;
        assert_eq!(response.status, 404, "{path}: {}", response.text());
    }
    let history = get(&h, &format!("Observation/{vital}/_history")).await;
    assert_eq!(history.status, 200, "{}", history.text());
    assert!(released_observations(&history.json().unwrap()).is_empty());

    let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": format!("Observation/{vital}")}},
        {"request": {"method": "GET", "url": format!("Observation/{lab}")}}
    ]});
    let response = h
        .client("riverside-bh")
        .send(
            Method::POST,
            &h.url(""),
            &[
                ("X-Purpose-Of-Use", "HOPERAT"),
                ("Content-Type", "application/fhir+json"),
            ],
            Some(serde_json::to_vec(&bundle).unwrap()),
        )
        .await
        .unwrap();
    let body = response.json().unwrap();
    assert_eq!(
        body["entry"][0]["response"]["status"], "404 Not Found",
        "{body}"
    );
    assert!(
        body["entry"][1]["response"]["status"]
            .as_str()
            .unwrap()
            .starts_with("200"),
        "{body}"
    );

    let p = h.patient();
    let response = get(
        &h,
        &format!("Patient?_id={p}&_revinclude=Observation:subject"),
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.text());
    let body = response.json().unwrap();
    let included = released_observations(&body);
    assert!(!included.is_empty(), "{body}");
    assert!(
        included.iter().all(|o| category(o) == "laboratory"),
        "{body}"
    );
}
