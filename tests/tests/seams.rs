//! Seams a hostile partner probes (issue 15): a grant's constraints hold
//! for every resource released, whatever position it holds in the answer.

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

fn task(id: Option<&str>, patient: &str) -> Value {
    let mut task = json!({"resourceType": "Task", "status": "requested", "intent": "order",
        "for": {"reference": format!("Patient/{patient}")}});
    if let Some(id) = id {
        task["id"] = json!(id);
    }
    task
}

async fn write(h: &Harness, method: Method, path: &str, body: &Value) -> PartnerResponse {
    h.client("maple-primary")
        .send(
            method,
            &h.url(path),
            &[
                ("X-Purpose-Of-Use", "TREAT"),
                ("Content-Type", "application/fhir+json"),
            ],
            Some(serde_json::to_vec(body).unwrap()),
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn writes_never_reach_resources_or_patients_out_of_reach() {
    let h = Harness::start().await;
    let p = h.patient();
    let store = h.upstream.store();
    store.update(task(Some("task-b"), OPTED_OUT)).unwrap();
    store.update(task(Some("task-a"), &p)).unwrap();

    // An existing resource of a patient out of reach is answered like a
    // missing one, and an update never creates.
    let over_b = write(&h, Method::PUT, "Task/task-b", &task(Some("task-b"), &p)).await;
    let new_id = write(&h, Method::PUT, "Task/task-z", &task(Some("task-z"), &p)).await;
    assert_eq!(over_b.status, 404, "{}", over_b.text());
    assert_eq!(new_id.status, over_b.status, "{}", new_id.text());
    assert_eq!(over_b.text(), new_id.text());
    assert_eq!(
        store.read("Task", "task-b").unwrap()["meta"]["versionId"],
        "1"
    );
    assert!(store.read("Task", "task-z").is_none());

    // A body naming a patient out of reach is refused like one naming a
    // patient who does not exist.
    let names_b = write(&h, Method::POST, "Task", &task(None, OPTED_OUT)).await;
    let names_z = write(&h, Method::POST, "Task", &task(None, "pat-9999")).await;
    assert_eq!(names_b.status, 403, "{}", names_b.text());
    assert_eq!(names_z.status, names_b.status, "{}", names_z.text());
    let moved = write(
        &h,
        Method::PUT,
        "Task/task-a",
        &task(Some("task-a"), OPTED_OUT),
    )
    .await;
    assert_eq!(moved.status, 403, "{}", moved.text());

    // In reach, before and after: served.
    let ok = write(&h, Method::PUT, "Task/task-a", &task(Some("task-a"), &p)).await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    let created = write(&h, Method::POST, "Task", &task(None, &p)).await;
    assert_eq!(created.status, 201, "{}", created.text());
}

/// Maple Street may read data of patients referred between it and
/// Riverside, for care management; only Riverside's referrals count.
const REFERRED_CARE: &str = r#"id = "referred-care"
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
description = "Patients Riverside referred to Maple Street"
between = ["riverside-bh", "maple-primary"]

[[grant]]
id = "referred-clinical"
recipients = ["maple-primary"]
resources = ["Patient", "Condition", "Encounter"]
interactions = ["read", "search"]
cohort = "referred"
"#;

fn referral_task(patient: &str, from: &str, to: &str) -> Value {
    json!({"resourceType": "Task", "status": "requested", "intent": "order",
        "for": {"reference": format!("Patient/{patient}")},
        "requester": {"reference": format!("Organization/{from}")},
        "owner": {"reference": format!("Organization/{to}")}})
}

#[tokio::test]
async fn a_partner_cannot_refer_patients_into_its_own_cohort() {
    use accord_testkit::population::{ORG_BEHAVIORAL, ORG_PRIMARY};
    let h = Harness::start_with(Options {
        extra_policies: vec![("agreements/referred.toml".into(), REFERRED_CARE.into())],
        partner_lines: vec![
            (
                "riverside-bh",
                format!("organization = \"Organization/{ORG_BEHAVIORAL}\""),
            ),
            (
                "maple-primary",
                format!("organization = \"Organization/{ORG_PRIMARY}\""),
            ),
        ],
        ..Options::default()
    })
    .await;
    let referred: Vec<String> = ["ServiceRequest", "Task"]
        .iter()
        .flat_map(|ty| h.population.of_type(ty))
        .flat_map(|r| [&r["subject"]["reference"], &r["for"]["reference"]])
        .filter_map(|r| r.as_str().map(str::to_owned))
        .collect();
    let unreferred: Vec<String> = (1..=accord_e2e::PATIENTS)
        .map(accord_testkit::population::patient_id)
        .filter(|p| p != OPTED_OUT && !referred.contains(&format!("Patient/{p}")))
        .take(2)
        .collect();
    let (x, y) = (&unreferred[0], &unreferred[1]);
    let read = |p: String| {
        let h = &h;
        async move {
            h.client("maple-primary")
                .get(&h.url(&format!("Patient/{p}")), "CAREMGT")
                .await
                .unwrap()
                .status
        }
    };
    assert_eq!(read(x.clone()).await, 404);

    // Maple's own referral (and one it writes in Riverside's name) do not
    // put the patient in Maple's cohort.
    for body in [
        referral_task(x, ORG_PRIMARY, ORG_BEHAVIORAL),
        referral_task(x, ORG_BEHAVIORAL, ORG_PRIMARY),
    ] {
        let created = write(&h, Method::POST, "Task", &body).await;
        assert_eq!(created.status, 201, "{}", created.text());
    }
    tokio::time::sleep(accord_gateway::upstream::referral::MEMBERSHIP_TTL).await;
    assert_eq!(read(x.clone()).await, 404, "self-made referral counted");

    // Riverside's referral does.
    h.upstream
        .store()
        .create(referral_task(y, ORG_BEHAVIORAL, ORG_PRIMARY))
        .unwrap();
    assert_eq!(read(y.clone()).await, 200);
}

#[tokio::test]
async fn search_and_sort_parameters_over_redacted_elements_are_refused() {
    let h = lab_feed().await;
    let p = h.patient();
    for who in [p.as_str(), "pat-9999"] {
        for (query, named) in [
            ("address-postalcode=021", "address-postalcode"),
            ("address=Spring", "address"),
            ("_sort=-address-city", "_sort"),
        ] {
            let response = get(&h, &format!("Patient?_id={who}&{query}")).await;
            assert_eq!(response.status, 403, "{query}: {}", response.text());
            let body = response.json().unwrap();
            let diagnostics = body["issue"][0]["diagnostics"].as_str().unwrap();
            assert!(diagnostics.contains(&format!("`{named}`")), "{diagnostics}");
        }
    }
    let fine = get(&h, &format!("Patient?_id={p}&gender=female,male")).await;
    assert_eq!(fine.status, 200, "{}", fine.text());
}
