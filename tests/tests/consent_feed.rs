//! Consents recorded in the upstream FHIR server (`[gateway.consent_feed]`):
//! a new opt-out takes effect within the poll interval, its revocation
//! restores sharing, and an unreadable Consent withholds its patient's data.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::time::{Duration, Instant};

use accord_e2e::{Harness, Options};
use accord_gateway::config::ConsentFeedConfig;
use serde_json::{Value, json};

/// Polls are every 100 ms here; a change must show well within this.
const DEADLINE: Duration = Duration::from_secs(20);

async fn harness() -> Harness {
    Harness::start_with(Options {
        consent_feed: ConsentFeedConfig {
            enabled: true,
            interval: Duration::from_millis(100),
            ..ConsentFeedConfig::default()
        },
        ..Options::default()
    })
    .await
}

fn consent(id: &str, patient: &str, status: &str) -> Value {
    json!({
        "resourceType": "Consent",
        "id": id,
        "status": status,
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": format!("Patient/{patient}")},
        "dateTime": "2026-11-01T09:00:00Z",
        "provision": {"type": "deny"}
    })
}

/// How many Observations of `patient` maple-primary receives.
async fn released(h: &Harness, patient: &str) -> usize {
    let response = h
        .client("maple-primary")
        .get(&h.url(&format!("Observation?patient={patient}")), "TREAT")
        .await
        .unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    let bundle = response.json().unwrap();
    bundle["entry"].as_array().map_or(0, Vec::len)
}

/// Waits until `released` satisfies `want`, failing after the deadline.
async fn until(h: &Harness, patient: &str, want: impl Fn(usize) -> bool, what: &str) {
    let started = Instant::now();
    loop {
        if want(released(h, patient).await) {
            return;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "{what}: not seen within {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_opt_out_written_upstream_takes_effect_and_its_revocation_restores_sharing() {
    let h = harness().await;
    let patient = h.patient();
    let before = released(&h, &patient).await;
    assert!(before > 0, "the patient has observations to share");

    h.upstream
        .store()
        .update(consent("feed-opt-out", &patient, "active"))
        .unwrap();
    until(&h, &patient, |n| n == 0, "the opt-out").await;

    h.upstream
        .store()
        .update(consent("feed-opt-out", &patient, "inactive"))
        .unwrap();
    until(&h, &patient, |n| n == before, "the revocation").await;
}

#[tokio::test]
async fn consents_already_upstream_are_in_force_from_the_first_request() {
    let h = harness().await;
    // A second gateway over the same upstream, started after the consent
    // was written: its first pull happens before it accepts requests.
    let patient = h.patient();
    assert!(released(&h, &patient).await > 0);
    h.upstream
        .store()
        .update(consent("early-opt-out", &patient, "active"))
        .unwrap();
    let late = Harness::start_with(Options {
        upstream_url: Some(h.upstream.base_url()),
        consent_feed: ConsentFeedConfig {
            enabled: true,
            interval: Duration::from_secs(3600),
            ..ConsentFeedConfig::default()
        },
        ..Options::default()
    })
    .await;
    assert_eq!(released(&late, &patient).await, 0);
}

#[tokio::test]
async fn an_unreadable_consent_withholds_its_patients_data() {
    let h = harness().await;
    let patient = h.patient();
    assert!(released(&h, &patient).await > 0);
    let mut broken = consent("broken", &patient, "active");
    broken["provision"]["type"] = json!("maybe");
    h.upstream.store().update(broken).unwrap();
    until(&h, &patient, |n| n == 0, "the unreadable consent").await;
}
