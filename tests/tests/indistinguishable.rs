//! "Out of reach" answered exactly like "does not exist" (issue 15, items
//! 5–8 and 10): B is a patient who opted out, Z a patient id nobody has.
//! Every pair must get the same status, the same body shape, the same
//! links and the same total; only the id the partner wrote may differ.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)] // test code: a panic is a failed test

use accord_e2e::{Harness, OPTED_OUT, Options};
use accord_testkit::client::PartnerResponse;
use http::Method;
use serde_json::{Value, json};

/// A patient id no server holds.
const NOBODY: &str = "pat-9999";

/// Riverside may search the whole population for operations (so searches
/// by `_id` and `encounter` need no patient).
const OPERATIONS: &str = r#"id = "operations"
version = 1
title = "Operations reporting"
status = "active"
parties = ["riverside-bh", "maple-primary"]
effective = 2020-01-01
expires = 2099-12-31
purposes = ["HOPERAT"]

[[grant]]
id = "operations"
recipients = ["riverside-bh"]
resources = ["Patient", "Observation", "Encounter", "ServiceRequest"]
interactions = ["read", "search", "update"]
population_search = true
"#;

async fn harness() -> Harness {
    Harness::start_with(Options {
        extra_policies: vec![("agreements/operations.toml".into(), OPERATIONS.into())],
        ..Options::default()
    })
    .await
}

/// Maple Street under the care agreement (no cohort: only consent keeps B
/// out of reach).
async fn care(h: &Harness, path: &str) -> PartnerResponse {
    h.client("maple-primary")
        .get(&h.url(path), "TREAT")
        .await
        .unwrap()
}

async fn operations(h: &Harness, path: &str) -> PartnerResponse {
    h.client("riverside-bh")
        .get(&h.url(path), "HOPERAT")
        .await
        .unwrap()
}

/// Status and body with the named id replaced, nothing else masked.
fn answer(response: &PartnerResponse, named: &str) -> (u16, String) {
    (response.status, response.text().replace(named, "NAMED"))
}

/// The `next` link of a searchset, if any.
fn next(body: &Value) -> Option<String> {
    body["link"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|l| l["relation"] == "next")
        .and_then(|l| l["url"].as_str())
        .map(str::to_owned)
}

fn matches(body: &Value) -> Vec<String> {
    body["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["search"]["mode"] != "include")
        .map(|e| format!("{}/{}", e["resource"]["resourceType"], e["resource"]["id"]))
        .collect()
}

/// Ids of `ty` resources whose `field` names `Patient/{patient}`.
fn ids_of(h: &Harness, ty: &str, field: &str, patient: &str) -> Vec<String> {
    let reference = format!("Patient/{patient}");
    h.population
        .of_type(ty)
        .filter(|r| r[field]["reference"] == reference.as_str())
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_whole_request_is_validated_before_reach_is_checked() {
    let h = harness().await;
    for path in [
        "Patient/{p}?_summary=bogus",
        "Patient/{p}?_elements=na..me",
        "Patient/{p}?_count=abc",
        "Observation?patient={p}&_summary=bogus",
        "Observation?patient={p}&_elements=na..me",
        "Observation?patient={p}&_count=abc",
        "Observation?patient={p}&_count=-1",
        "Observation?patient={p}&bogus-parameter=1",
        "Observation?patient={p}&_sort=bogus-parameter",
        "Observation?patient={p}&_total=maybe",
    ] {
        let b = care(&h, &path.replace("{p}", OPTED_OUT)).await;
        let z = care(&h, &path.replace("{p}", NOBODY)).await;
        assert_eq!(b.status, 400, "{path} for B: {}", b.text());
        assert_eq!(answer(&b, OPTED_OUT), answer(&z, NOBODY), "{path}");
    }
}

#[tokio::test]
async fn a_compartment_search_answers_alike_for_a_patient_out_of_reach_and_none() {
    let h = harness().await;
    for path in ["Patient/{p}/Observation", "Patient/{p}/Encounter?_count=2"] {
        let b = care(&h, &path.replace("{p}", OPTED_OUT)).await;
        let z = care(&h, &path.replace("{p}", NOBODY)).await;
        assert_eq!(b.status, 200, "{path}: {}", b.text());
        assert_eq!(answer(&b, OPTED_OUT), answer(&z, NOBODY), "{path}");
    }
    // In reach, the compartment is served like the type search.
    let a = h.patient();
    let compartment = care(&h, &format!("Patient/{a}/Observation?_count=200")).await;
    let search = care(&h, &format!("Observation?patient={a}&_count=200")).await;
    assert_eq!(compartment.status, 200, "{}", compartment.text());
    let (compartment, search) = (compartment.json().unwrap(), search.json().unwrap());
    assert!(compartment["total"].as_u64().unwrap() > 0, "{compartment}");
    assert_eq!(matches(&compartment), matches(&search));
}

#[tokio::test]
async fn the_gateways_own_empty_searchset_is_shaped_like_a_forwarded_one() {
    let h = harness().await;
    for path in [
        "Observation?patient={p}",
        "Encounter?subject=Patient/{p}&_count=3",
        "Condition?patient={p}&_include=Condition:patient",
    ] {
        let b = care(&h, &path.replace("{p}", OPTED_OUT)).await;
        let z = care(&h, &path.replace("{p}", NOBODY)).await;
        assert_eq!(b.status, 200, "{path}: {}", b.text());
        // Byte for byte: no id, meta or timestamp of the gateway's own.
        assert_eq!(answer(&b, OPTED_OUT), answer(&z, NOBODY), "{path}");
    }
}

#[tokio::test]
async fn pages_links_and_totals_count_released_results_only() {
    let h = harness().await;
    let a = h.patient();
    let b = OPTED_OUT;
    let mrn = |p: &str| {
        format!(
            "MRN-{:06}",
            p.trim_start_matches("pat-").parse::<u32>().unwrap()
        )
    };
    let a_obs = ids_of(&h, "Observation", "subject", &a);
    let b_obs = ids_of(&h, "Observation", "subject", b);
    let b_enc = ids_of(&h, "Encounter", "subject", b);
    let a_enc = ids_of(&h, "Encounter", "subject", &a);
    assert!(!a_obs.is_empty() && !b_obs.is_empty() && !b_enc.is_empty() && !a_enc.is_empty());

    // (with B's, with nothing in its place)
    let pairs = [
        (
            format!("Patient?identifier={},{}&_count=1", mrn(&a), mrn(b)),
            format!("Patient?identifier={},MRN-999999&_count=1", mrn(&a)),
        ),
        (
            format!("Observation?_id={},{}&_count=1", a_obs[0], b_obs.join(",")),
            format!("Observation?_id={},obs-nothing&_count=1", a_obs[0]),
        ),
        (
            format!("Observation?encounter={},{}&_count=1", a_enc[0], b_enc[0]),
            format!("Observation?encounter={},enc-nothing&_count=1", a_enc[0]),
        ),
    ];
    for (with_b, with_nothing) in pairs {
        let one = operations(&h, &with_b).await;
        let other = operations(&h, &with_nothing).await;
        assert_eq!(one.status, 200, "{with_b}: {}", one.text());
        let (one, other) = (one.json().unwrap(), other.json().unwrap());
        assert_eq!(one["total"], other["total"], "{with_b}: {one}");
        assert_eq!(
            next(&one).is_some(),
            next(&other).is_some(),
            "{with_b}: {one}"
        );
        assert_eq!(matches(&one), matches(&other), "{with_b}");
    }

    // Every page of `patient=A,B` is the page of `patient=A,Z`, and the
    // links keep what the partner asked for.
    let mut urls = [
        h.url(&format!("Observation?patient={a},{b}&_count=2")),
        h.url(&format!("Observation?patient={a},{NOBODY}&_count=2")),
    ];
    let mut pages = 0;
    let mut seen = 0;
    loop {
        let one = h
            .client("riverside-bh")
            .get(&urls[0], "HOPERAT")
            .await
            .unwrap();
        let other = h
            .client("riverside-bh")
            .get(&urls[1], "HOPERAT")
            .await
            .unwrap();
        assert_eq!(
            answer(&one, b),
            answer(&other, NOBODY),
            "page {pages} of {}",
            urls[0]
        );
        let body = one.json().unwrap();
        seen += matches(&body).len();
        assert!(matches(&body).len() <= 2, "{body}");
        pages += 1;
        match (next(&body), next(&other.json().unwrap())) {
            (Some(one), Some(other)) => {
                assert!(one.contains(b), "the next link dropped B: {one}");
                urls = [one, other];
            }
            (None, None) => {
                assert_eq!(body["total"].as_u64(), Some(seen as u64), "{body}");
                break;
            }
            (one, other) => panic!("links differ: {one:?} vs {other:?}"),
        }
        assert!(pages < 50, "paging never ends");
    }
    assert_eq!(seen, a_obs.len());
}

#[tokio::test]
async fn a_search_parameter_over_a_redacted_element_is_refused_for_every_patient() {
    let h = harness().await;
    // The care agreement redacts `Patient.address` and `Patient.telecom`.
    for path in [
        "Patient?_id={p}&address-city=Springfield",
        "Patient?_id={p}&_sort=phone",
    ] {
        let b = care(&h, &path.replace("{p}", OPTED_OUT)).await;
        let z = care(&h, &path.replace("{p}", NOBODY)).await;
        assert_eq!(b.status, 403, "{path} for B: {}", b.text());
        assert_eq!(answer(&b, OPTED_OUT), answer(&z, NOBODY), "{path}");
    }
}

async fn put(h: &Harness, path: &str, body: &Value) -> PartnerResponse {
    h.client("riverside-bh")
        .send(
            Method::PUT,
            &h.url(path),
            &[
                ("X-Purpose-Of-Use", "HOPERAT"),
                ("Content-Type", "application/fhir+json"),
            ],
            Some(serde_json::to_vec(body).unwrap()),
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn writes_naming_a_patient_out_of_reach_answer_like_writes_naming_nobody() {
    let h = harness().await;
    let a = h.patient();
    let store = h.upstream.store();
    let original = store.read("Patient", &a).unwrap();
    // `PUT Patient/A` linking A to another patient.
    let mut answers = Vec::new();
    for other in [OPTED_OUT, NOBODY] {
        let mut linked = original.clone();
        linked["link"] =
            json!([{"other": {"reference": format!("Patient/{other}")}, "type": "seealso"}]);
        let response = put(&h, &format!("Patient/{a}"), &linked).await;
        answers.push(answer(&response, other));
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0].0, 403, "{}", answers[0].1);
    assert_eq!(store.read("Patient", &a).unwrap()["meta"], original["meta"]);
    assert_eq!(operations(&h, &format!("Patient/{a}")).await.status, 200);

    // `PUT` of B's existing Observation and of an id nobody has.
    let b_obs = ids_of(&h, "Observation", "subject", OPTED_OUT);
    let existing = store.read("Observation", &b_obs[0]).unwrap();
    let mut unknown = existing.clone();
    unknown["id"] = json!("obs-nothing");
    let over_b = put(&h, &format!("Observation/{}", b_obs[0]), &existing).await;
    let over_z = put(&h, "Observation/obs-nothing", &unknown).await;
    assert_eq!(
        answer(&over_b, &b_obs[0]),
        answer(&over_z, "obs-nothing"),
        "{}",
        over_b.text()
    );
    assert_eq!(
        store.read("Observation", &b_obs[0]).unwrap()["meta"],
        existing["meta"]
    );
}

/// `Type/id` of a resource.
fn key(resource: &Value) -> String {
    format!(
        "{}/{}",
        resource["resourceType"].as_str().unwrap(),
        resource["id"].as_str().unwrap()
    )
}

#[tokio::test]
async fn includes_over_any_reference_are_served_and_filtered_like_any_resource() {
    let h = harness().await;
    let a = h.patient();
    let store = h.upstream.store();
    // ServiceRequests of A (its reason one of A's Observations) and of B;
    // Tasks of A whose focus is B's request and A's: only A's may come
    // back as an include.
    let a_obs = ids_of(&h, "Observation", "subject", &a);
    for (id, patient) in [("sr-a", a.as_str()), ("sr-b", OPTED_OUT)] {
        store
            .update(
                json!({"resourceType": "ServiceRequest", "id": id, "status": "active",
                "intent": "order", "subject": {"reference": format!("Patient/{patient}")},
                "reasonReference": [{"reference": format!("Observation/{}", a_obs[0])}]}),
            )
            .unwrap();
    }
    for (id, focus) in [("task-focus-b", "sr-b"), ("task-focus-a", "sr-a")] {
        store
            .update(
                json!({"resourceType": "Task", "id": id, "status": "requested",
                "intent": "order", "for": {"reference": format!("Patient/{a}")},
                "focus": {"reference": format!("ServiceRequest/{focus}")}}),
            )
            .unwrap();
    }
    // (path, included type, whose grant: Maple Street's care or
    // Riverside's operations, which both cover the included type)
    for (path, included_type, operations_grant) in [
        (
            format!("Observation?patient={a}&_include=Observation:encounter&_count=200"),
            "Encounter",
            false,
        ),
        (
            format!("Task?patient={a}&_include=Task:focus&_count=200"),
            "ServiceRequest",
            false,
        ),
        (
            format!(
                "ServiceRequest?patient={a}&_include=ServiceRequest:reason-reference&_count=200"
            ),
            "Observation",
            true,
        ),
    ] {
        let response = if operations_grant {
            operations(&h, &path).await
        } else {
            care(&h, &path).await
        };
        assert_eq!(response.status, 200, "{path}: {}", response.text());
        let body = response.json().unwrap();
        let included: Vec<&Value> = body["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["search"]["mode"] == "include")
            .map(|e| &e["resource"])
            .collect();
        assert!(
            included.iter().any(|r| r["resourceType"] == included_type),
            "{path}: nothing of {included_type} included: {body}"
        );
        for resource in &included {
            // Every included resource is A's (or no patient's).
            let text = resource.to_string();
            assert!(
                !text.contains(OPTED_OUT),
                "{path}: B's {} included",
                key(resource)
            );
        }
        // Patient.address is redacted for Maple Street in every position.
        assert!(
            included.iter().all(|r| r.get("address").is_none()),
            "{path}"
        );
    }
    for path in [
        "Observation?patient={p}&_include=Observation:encounter",
        "Task?patient={p}&_include=Task:focus",
    ] {
        let b = care(&h, &path.replace("{p}", OPTED_OUT)).await;
        let z = care(&h, &path.replace("{p}", NOBODY)).await;
        assert_eq!(answer(&b, OPTED_OUT), answer(&z, NOBODY), "{path}");
    }
}
