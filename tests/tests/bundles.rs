//! batch and transaction Bundles: every entry is decided on its own, as if
//! it were a separate request.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)] // test code: a panic is a failed test

use accord_audit::DecisionKind;
use accord_e2e::{Harness, OPTED_OUT};
use accord_testkit::client::PartnerResponse;
use http::Method;
use serde_json::{Value, json};

async fn post_bundle(h: &Harness, partner: &str, purpose: &str, bundle: &Value) -> PartnerResponse {
    h.client(partner)
        .send(
            Method::POST,
            &h.url(""),
            &[
                ("X-Purpose-Of-Use", purpose),
                ("Content-Type", "application/fhir+json"),
            ],
            Some(serde_json::to_vec(bundle).unwrap()),
        )
        .await
        .unwrap()
}

fn task(patient: &str) -> Value {
    json!({"resourceType": "Task", "status": "requested", "intent": "order",
        "for": {"reference": format!("Patient/{patient}")}})
}

fn upstream_writes(h: &Harness) -> usize {
    h.upstream
        .store()
        .recorded_requests()
        .iter()
        .filter(|r| r.method == "POST" || r.method == "PUT")
        .count()
}

#[tokio::test]
async fn a_batch_answers_every_entry_as_its_own_request() {
    let h = Harness::start().await;
    let p = h.patient();
    let before = h.audit_records().len();
    let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": format!("Patient/{p}")}},
        {"request": {"method": "GET", "url": format!("MedicationRequest?patient={p}")}},
        {"request": {"method": "GET", "url": format!("Patient/{OPTED_OUT}")}},
        {"request": {"method": "POST", "url": "Task"}, "resource": task(&p)},
        {"request": {"method": "GET", "url": format!("Observation?code=8867-4")}},
        {"request": {"method": "POST", "url": "Task", "ifNoneExist": "identifier=x|1"}, "resource": task(&p)}
    ]});
    let response = post_bundle(&h, "maple-primary", "TREAT", &bundle).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let body = response.json().unwrap();
    assert_eq!(body["type"], "batch-response");
    let entries = body["entry"].as_array().unwrap();
    let statuses: Vec<&str> = entries
        .iter()
        .map(|e| e["response"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "200 OK",
            "403 Forbidden",
            "404 Not Found",
            "201 Created",
            "403 Forbidden",
            "403 Forbidden"
        ]
    );
    let patient = &entries[0]["resource"];
    assert_eq!(patient["id"], p.as_str());
    assert!(patient.get("address").is_none(), "redacted as in a read");
    assert_eq!(
        entries[1]["response"]["outcome"]["resourceType"],
        "OperationOutcome"
    );
    assert!(
        entries[2].get("resource").is_none(),
        "no data for an opted-out patient"
    );
    let location = entries[3]["response"]["location"].as_str().unwrap();
    assert!(location.starts_with(&h.url("Task/")), "{location}");
    assert_eq!(
        entries[3]["resource"]["meta"]["source"],
        "urn:accord:partner:maple-primary"
    );

    let records = h.audit_records();
    let new: Vec<_> = records[before..].iter().collect();
    assert_eq!(
        new.len(),
        8,
        "one record per entry, one for the create's intent and one for the Bundle"
    );
    let outer = new.last().unwrap();
    for (i, decision) in [
        DecisionKind::Permit,
        DecisionKind::Deny,
        DecisionKind::Deny,
        DecisionKind::Permit,
        // Permitted by the grant, then refused while narrowing (it names
        // no patient): recorded as a refusal, not a disclosure.
        DecisionKind::Refuse,
    ]
    .into_iter()
    .enumerate()
    {
        let record = new
            .iter()
            .rev()
            .find(|r| r.request_id == format!("{}-{i}", outer.request_id))
            .unwrap();
        assert_eq!(record.decision, decision, "entry {i}: {}", record.rule);
    }
    // Only the read and the create went upstream; the Bundle's record
    // counts the waits of all its entries.
    let mut waited = 0;
    let outcomes = new[..new.len() - 1]
        .iter()
        .filter(|r| r.phase.as_deref() != Some("intent"));
    for (i, entry) in outcomes.enumerate() {
        assert_eq!(
            entry.upstream_latency_us.is_some(),
            i == 0 || i == 3,
            "entry {i}: {entry:?}"
        );
        waited += entry.upstream_latency_us.unwrap_or(0);
    }
    let outer_waited = outer
        .upstream_latency_us
        .expect("the Bundle's entries went upstream");
    assert!(
        (waited..=waited + 6).contains(&outer_waited),
        "{outer_waited} is the sum of {waited} (each entry rounded down to a microsecond)"
    );
    assert!(outer_waited <= outer.latency_us);
}

#[tokio::test]
async fn a_transaction_with_a_refused_entry_is_refused_as_a_whole() {
    let h = Harness::start().await;
    let p = h.patient();
    let writes_before = upstream_writes(&h);
    let condition = h.population.of_type("Condition").next().unwrap().clone();
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "POST", "url": "Task"}, "resource": task(&p)},
        {"request": {"method": "PUT", "url": format!("Condition/{}", condition["id"].as_str().unwrap())},
         "resource": condition},
        {"request": {"method": "GET", "url": format!("Patient/{p}")}},
        {"request": {"method": "POST", "url": "Task"},
         "resource": {"resourceType": "Task", "status": "requested", "intent": "order"}}
    ]});
    let response = post_bundle(&h, "maple-primary", "TREAT", &bundle).await;
    assert_eq!(response.status, 403, "{}", response.text());
    let outcome = response.json().unwrap();
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    let expressions: Vec<&str> = outcome["issue"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["expression"][0].as_str())
        .collect();
    assert_eq!(
        expressions,
        ["Bundle.entry[1]", "Bundle.entry[2]", "Bundle.entry[3]"]
    );
    assert_eq!(upstream_writes(&h), writes_before, "nothing was written");
}

#[tokio::test]
async fn a_permitted_transaction_is_forwarded_as_one_and_stamped() {
    let h = Harness::start().await;
    let p = h.patient();
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "POST", "url": "Task"}, "resource": task(&p)},
        {"request": {"method": "POST", "url": "ServiceRequest"},
         "resource": {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
                      "subject": {"reference": format!("Patient/{p}")}}}
    ]});
    let response = post_bundle(&h, "riverside-bh", "COC", &bundle).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let body = response.json().unwrap();
    assert_eq!(body["type"], "transaction-response");
    let entries = body["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    for (entry, ty) in entries.iter().zip(["Task", "ServiceRequest"]) {
        assert_eq!(entry["response"]["status"], "201 Created");
        let location = entry["response"]["location"].as_str().unwrap();
        assert!(
            location.starts_with(&h.url(&format!("{ty}/"))),
            "{location}"
        );
        let id = location
            .trim_start_matches(&h.url(&format!("{ty}/")))
            .split('/')
            .next()
            .unwrap();
        let stored = h.upstream.store().read(ty, id).unwrap();
        assert_eq!(stored["meta"]["source"], "urn:accord:partner:riverside-bh");
    }
    assert!(
        h.upstream
            .store()
            .recorded_requests()
            .iter()
            .any(|r| r.method == "POST" && r.path_and_query == "/fhir/"),
        "sent upstream as one transaction"
    );
}
