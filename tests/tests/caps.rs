//! Daily volume caps from the grant, per recipient per agreement per UTC
//! day: requests and released resources, kept across restarts.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)] // test code: a panic is a failed test

use std::path::Path;
use std::time::Duration;

use accord_audit::DecisionKind;
use accord_e2e::{Harness, Options};
use accord_testkit::client::PartnerResponse;

const CAPPED_AGREEMENT: &str = r#"id = "capped"
version = 1
title = "Care management with daily caps"
status = "active"
parties = ["maple-primary", "st-brigid"]
effective = 2020-01-01
expires = 2099-12-31
purposes = ["CAREMGT"]

[[grant]]
id = "few-requests"
recipients = ["maple-primary"]
resources = ["Patient"]
interactions = ["read", "search"]
caps = { requests_per_day = 3 }

[[grant]]
id = "few-resources"
recipients = ["st-brigid"]
resources = ["Patient"]
interactions = ["read", "search"]
caps = { resources_per_day = 3 }
"#;

fn options(state_dir: Option<&Path>) -> Options {
    Options {
        extra_policies: vec![(
            "agreements/capped.toml".to_owned(),
            CAPPED_AGREEMENT.to_owned(),
        )],
        state_dir: state_dir.map(Path::to_path_buf),
        ..Options::default()
    }
}

async fn get(h: &Harness, partner: &str, path: &str) -> PartnerResponse {
    h.client(partner)
        .get(&h.url(path), "CAREMGT")
        .await
        .unwrap()
}

fn assert_throttled(response: &PartnerResponse) {
    assert_eq!(response.status, 429, "{}", response.text());
    let retry_after: u64 = response
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=86_400).contains(&retry_after), "{retry_after}");
    let outcome = response.json().unwrap();
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    assert_eq!(outcome["issue"][0]["code"], "throttled");
}

#[tokio::test]
async fn the_request_after_the_cap_is_refused_with_retry_after_and_audited() {
    let h = Harness::start_with(options(None)).await;
    let p = h.patient();
    for _ in 0..3 {
        assert_eq!(
            get(&h, "maple-primary", &format!("Patient/{p}"))
                .await
                .status,
            200
        );
    }
    let fourth = get(&h, "maple-primary", &format!("Patient/{p}")).await;
    assert_throttled(&fourth);
    assert!(!fourth.text().contains(&p), "no data in the refusal");
    let record = h.audit_records().pop().unwrap();
    assert_eq!(record.decision, DecisionKind::Deny);
    assert!(
        record.rule.contains("requests_per_day = 3"),
        "{}",
        record.rule
    );
    assert!(record.rule.contains("capped"), "{}", record.rule);
    // Another partner of the same agreement counts on its own.
    assert_eq!(
        get(&h, "st-brigid", &format!("Patient/{p}")).await.status,
        200
    );
    let metrics = h.gateway.metrics().render();
    assert!(
        metrics.contains(
            "accord_cap_used{agreement=\"capped\",partner=\"maple-primary\",kind=\"requests_per_day\"} 3"
        ),
        "{metrics}"
    );
    assert!(metrics.contains(
        "accord_cap_limit{agreement=\"capped\",partner=\"maple-primary\",kind=\"requests_per_day\"} 3"
    ));
}

#[tokio::test]
async fn a_restarted_gateway_on_the_same_state_still_refuses() {
    let state = tempfile::tempdir().unwrap();
    let h = Harness::start_with(options(Some(state.path()))).await;
    let p = h.patient();
    for _ in 0..3 {
        assert_eq!(
            get(&h, "maple-primary", &format!("Patient/{p}"))
                .await
                .status,
            200
        );
    }
    let Harness { gateway, dir, .. } = h;
    gateway.shutdown(Duration::from_secs(1)).await;
    drop(dir);

    let restarted = Harness::start_with(options(Some(state.path()))).await;
    let after = get(&restarted, "maple-primary", &format!("Patient/{p}")).await;
    assert_throttled(&after);
}

#[tokio::test]
async fn the_resource_cap_counts_released_resources() {
    let h = Harness::start_with(options(None)).await;
    let (p1, p2) = ("pat-0001", "pat-0002");
    assert_eq!(
        get(&h, "st-brigid", &format!("Patient/{p1}")).await.status,
        200
    );
    let two = get(&h, "st-brigid", &format!("Patient?_id={p1},{p2}")).await;
    assert_eq!(two.status, 200, "{}", two.text());
    assert_eq!(two.json().unwrap()["entry"].as_array().unwrap().len(), 2);
    // Three resources released: the cap is used up, however few requests.
    let next = get(&h, "st-brigid", &format!("Patient/{p1}")).await;
    assert_throttled(&next);
    let record = h.audit_records().pop().unwrap();
    assert!(
        record.rule.contains("resources_per_day = 3"),
        "{}",
        record.rule
    );
}

#[tokio::test]
async fn a_response_that_would_pass_the_resource_cap_is_not_released() {
    let h = Harness::start_with(options(None)).await;
    let (p1, p2, p4) = ("pat-0001", "pat-0002", "pat-0004");
    assert_eq!(
        get(&h, "st-brigid", &format!("Patient/{p1}")).await.status,
        200
    );
    assert_eq!(
        get(&h, "st-brigid", &format!("Patient/{p2}")).await.status,
        200
    );
    let over = get(&h, "st-brigid", &format!("Patient?_id={p1},{p4}")).await;
    assert_throttled(&over);
    assert!(!over.text().contains(p4));
    // The one resource left can still be had.
    assert_eq!(
        get(&h, "st-brigid", &format!("Patient/{p4}")).await.status,
        200
    );
}
