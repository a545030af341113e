//! What a permitted request may reach is enforced on the way in (narrowing,
//! refusing parameters that reach around the policy) and on the way out
//! (every resource checked again, wherever it sits in the response).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)] // test code: a panic is a failed test

use accord_e2e::Harness;
use accord_testkit::client::PartnerResponse;
use http::Method;
use serde_json::{Value, json};

async fn get(h: &Harness, partner: &str, path: &str) -> PartnerResponse {
    h.client(partner).get(&h.url(path), "TREAT").await.unwrap()
}

fn diagnostics(response: &PartnerResponse) -> String {
    response.json().unwrap()["issue"][0]["diagnostics"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

#[tokio::test]
async fn searches_must_name_a_patient_and_may_not_reach_around_the_policy() {
    let h = Harness::start().await;
    let p = h.patient();
    for (path, why) in [
        ("Observation?code=8867-4".to_owned(), "name a patient"),
        (format!("Observation?patient={p}&subject.name=x"), "chained"),
        (
            format!("Observation?patient={p}&_has:Condition:subject:code=F10.20"),
            "_has",
        ),
        (
            format!("Observation?patient={p}&_filter=code%20eq%20x"),
            "_filter",
        ),
        (
            format!("Observation?patient={p}&_include=Observation:performer:Practitioner"),
            "included type",
        ),
        (format!("Observation?patient={p}&_include=*"), "wildcard"),
        (
            format!("Patient?_id={p}&_revinclude=MedicationRequest:patient"),
            "read that type",
        ),
        (format!("Observation?patient:not={p}"), "modifier"),
        (format!("Observation?patient={p}&_summary=count"), "counts"),
        ("Observation/_history".to_owned(), "interaction"),
        (format!("Patient/{p}/$export"), "interaction"),
    ] {
        let response = get(&h, "maple-primary", &path).await;
        assert_eq!(response.status, 403, "{path}: {}", response.text());
        assert!(
            diagnostics(&response).contains(why),
            "{path}: {}",
            diagnostics(&response)
        );
    }
    assert!(
        h.upstream.store().recorded_requests().is_empty(),
        "nothing reached the upstream"
    );
}

#[tokio::test]
async fn every_spelling_of_a_patient_search_is_narrowed_the_same_way() {
    let h = Harness::start().await;
    let p = h.patient();
    let count = |body: &Value| body["entry"].as_array().map_or(0, Vec::len);
    let reference = get(
        &h,
        "maple-primary",
        &format!("Observation?patient={p}&_count=200"),
    )
    .await
    .json()
    .unwrap();
    assert!(count(&reference) > 0);
    for path in [
        format!("Observation?subject=Patient/{p}&_count=200"),
        format!("Observation?subject:Patient={p}&_count=200"),
        format!("Observation?patient=Patient%2F{p}&_count=200"),
    ] {
        let body = get(&h, "maple-primary", &path).await.json().unwrap();
        assert_eq!(count(&body), count(&reference), "{path}");
    }
    let form = h
        .client("maple-primary")
        .send(
            Method::POST,
            &h.url("Observation/_search"),
            &[
                ("X-Purpose-Of-Use", "TREAT"),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            Some(format!("patient={p}&_count=200").into_bytes()),
        )
        .await
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(count(&form), count(&reference));
}

#[tokio::test]
async fn included_patients_come_back_and_totals_count_only_what_is_released() {
    let h = Harness::start().await;
    let p = h.patient();
    let body = get(
        &h,
        "maple-primary",
        &format!("Condition?patient={p}&_include=Condition:patient&_count=200"),
    )
    .await;
    assert_eq!(body.status, 200, "{}", body.text());
    let body = body.json().unwrap();
    let entries = body["entry"].as_array().unwrap();
    let included: Vec<&Value> = entries
        .iter()
        .filter(|e| e["search"]["mode"] == "include")
        .collect();
    assert_eq!(included.len(), 1);
    assert_eq!(included[0]["resource"]["id"], p.as_str());
    let matches = entries.len() - included.len();
    assert_eq!(body["total"], matches, "total counts released matches");
    assert_eq!(body["link"][0]["relation"], "self");
    assert!(
        body["link"][0]["url"]
            .as_str()
            .unwrap()
            .starts_with(h.gateway.public_base())
    );
}

#[tokio::test]
async fn a_resource_whose_patient_cannot_be_determined_is_withheld_like_a_missing_one() {
    let h = Harness::start().await;
    let store = h.upstream.store();
    let orphan = store
        .create(json!({
            "resourceType": "Condition",
            "subject": {"identifier": {"system": "urn:mrn", "value": "123"}},
            "code": {"text": "undetermined patient"}
        }))
        .unwrap();
    let id = orphan["id"].as_str().unwrap();
    let withheld = get(&h, "maple-primary", &format!("Condition/{id}")).await;
    let missing = get(&h, "maple-primary", "Condition/does-not-exist").await;
    assert_eq!(withheld.status, 404);
    assert_eq!(
        withheld.body, missing.body,
        "a withheld resource is answered exactly like a missing one"
    );
    let record = h.audit_records().pop().unwrap();
    assert_eq!(record.status, 404);
}

#[tokio::test]
async fn writes_must_name_a_patient_in_reach_and_are_stamped_with_the_partner() {
    let h = Harness::start().await;
    let send = |body: Value| {
        let client = h.client("riverside-bh");
        let url = h.url("Task");
        async move {
            client
                .send(
                    Method::POST,
                    &url,
                    &[
                        ("X-Purpose-Of-Use", "COC"),
                        ("Content-Type", "application/fhir+json"),
                    ],
                    Some(serde_json::to_vec(&body).unwrap()),
                )
                .await
                .unwrap()
        }
    };
    let no_patient =
        send(json!({"resourceType": "Task", "status": "requested", "intent": "order"})).await;
    assert_eq!(no_patient.status, 403, "{}", no_patient.text());
    assert!(diagnostics(&no_patient).contains("must reference its patient"));

    let created = send(json!({"resourceType": "Task", "status": "requested", "intent": "order",
        "for": {"reference": format!("Patient/{}", h.patient())},
        "meta": {"source": "urn:forged", "tag": [{"system": "urn:accord:partner", "code": "st-brigid"}]}}))
    .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let id = created.json().unwrap()["id"].as_str().unwrap().to_owned();
    let stored = h.upstream.store().read("Task", &id).unwrap();
    assert_eq!(stored["meta"]["source"], "urn:accord:partner:riverside-bh");
    let tags: Vec<&Value> = stored["meta"]["tag"].as_array().unwrap().iter().collect();
    assert_eq!(
        tags,
        [&json!({"system": "urn:accord:partner", "code": "riverside-bh"})],
        "a forged partner tag is replaced"
    );

    let patch = h
        .client("riverside-bh")
        .send(
            Method::PATCH,
            &h.url(&format!("Task/{id}")),
            &[("X-Purpose-Of-Use", "COC")],
            None,
        )
        .await
        .unwrap();
    assert_eq!(patch.status, 403, "patch is not granted: {}", patch.text());
}
