//! What partners are allowed to do works end to end through mTLS.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)] // test code: a panic is a failed test

use accord_e2e::Harness;
use http::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn a_permitted_read_returns_the_upstream_resource() {
    let h = Harness::start().await;
    // An Observation of the patient: no redaction applies to it.
    let reference = format!("Patient/{}", h.patient());
    let expected = h
        .population
        .of_type("Observation")
        .find(|o| o["subject"]["reference"] == reference.as_str())
        .unwrap();
    let id = expected["id"].as_str().unwrap();
    let response = h
        .client("maple-primary")
        .get(&h.url(&format!("Observation/{id}")), "TREAT")
        .await
        .unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    let body = response.json().unwrap();
    assert_eq!(&body, expected, "the resource arrives unchanged");
    assert_eq!(
        response.header("content-type"),
        Some("application/fhir+json; charset=utf-8")
    );
    assert!(
        response
            .header("x-request-id")
            .is_some_and(|id| id.len() >= 16)
    );
}

#[tokio::test]
async fn a_search_bundle_links_point_at_the_gateway_and_can_be_followed() {
    let h = Harness::start().await;
    let client = h.client("maple-primary");
    let first = client
        .get(
            &h.url(&format!("Observation?patient={}&_count=2", h.patient())),
            "TREAT",
        )
        .await
        .unwrap();
    assert_eq!(first.status, 200, "{}", first.text());
    let bundle = first.json().unwrap();
    assert_eq!(bundle["resourceType"], "Bundle");
    assert_eq!(bundle["type"], "searchset");
    let gateway_base = h.gateway.public_base().to_owned();
    let links = bundle["link"].as_array().unwrap();
    assert!(!links.is_empty());
    for link in links {
        let url = link["url"].as_str().unwrap();
        assert!(
            url.starts_with(&gateway_base),
            "{url} does not point at {gateway_base}"
        );
    }
    for entry in bundle["entry"].as_array().unwrap() {
        assert!(
            entry["fullUrl"]
                .as_str()
                .unwrap()
                .starts_with(&gateway_base)
        );
    }
    let upstream_base = h.upstream.base_url();
    assert!(
        !first.text().contains(&upstream_base),
        "the upstream address leaks"
    );

    let next = links
        .iter()
        .find(|l| l["relation"] == "next")
        .expect("a next link");
    let second = client
        .get(next["url"].as_str().unwrap(), "TREAT")
        .await
        .unwrap();
    assert_eq!(second.status, 200, "{}", second.text());
    let second = second.json().unwrap();
    let ids = |b: &Value| -> Vec<String> {
        b["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["resource"]["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&second).len(), 2);
    assert!(
        ids(&bundle).iter().all(|id| !ids(&second).contains(id)),
        "page 2 holds other resources"
    );
}

#[tokio::test]
async fn post_search_is_forwarded_as_the_same_get_search() {
    let h = Harness::start().await;
    let body = format!("patient={}&_count=1", h.patient()).into_bytes();
    let response = h
        .client("maple-primary")
        .send(
            Method::POST,
            &h.url("Observation/_search"),
            &[
                ("X-Purpose-Of-Use", "TREAT"),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            Some(body),
        )
        .await
        .unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        response.json().unwrap()["entry"].as_array().unwrap().len(),
        1
    );
    let forwarded = h.upstream.store().recorded_requests();
    let last = forwarded.last().unwrap();
    assert_eq!(last.method, "GET");
    assert!(
        last.path_and_query
            .starts_with("/fhir/Observation?patient="),
        "{}",
        last.path_and_query
    );
}

#[tokio::test]
async fn a_granted_write_is_validated_forwarded_and_located_at_the_gateway() {
    let h = Harness::start().await;
    let task = json!({
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "for": {"reference": format!("Patient/{}", h.patient())}
    });
    let response = h
        .client("riverside-bh")
        .send(
            Method::POST,
            &h.url("Task"),
            &[
                ("X-Purpose-Of-Use", "COC"),
                ("Content-Type", "application/fhir+json"),
            ],
            Some(serde_json::to_vec(&task).unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(response.status, 201, "{}", response.text());
    let location = response.header("location").unwrap();
    assert!(location.starts_with(h.gateway.public_base()), "{location}");
    let created = response.json().unwrap();
    let id = created["id"].as_str().unwrap();
    assert!(
        h.upstream.store().read("Task", id).is_some(),
        "the upstream holds the new Task"
    );
}

#[tokio::test]
async fn capabilities_are_served_to_any_active_partner() {
    let h = Harness::start().await;
    let response = h
        .client("riverside-bh")
        .get(&h.url("metadata"), "TREAT")
        .await
        .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(
        response.json().unwrap()["resourceType"],
        "CapabilityStatement"
    );
}
