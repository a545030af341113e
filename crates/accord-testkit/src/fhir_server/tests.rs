use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::*;
use crate::client::{PartnerClient, PartnerResponse};
use crate::population;

async fn server() -> RunningFhirServer {
    let store = FhirStore::from_resources(population::generate(7, 40).resources);
    start(store, "127.0.0.1:0".parse().unwrap()).await.unwrap()
}

async fn get(url: &str) -> PartnerResponse {
    PartnerClient::plaintext()
        .send(Method::GET, url, &[], None)
        .await
        .unwrap()
}

async fn send(method: Method, url: &str, body: &Value) -> PartnerResponse {
    let headers = [("Content-Type", "application/fhir+json")];
    let body = serde_json::to_vec(body).unwrap();
    PartnerClient::plaintext()
        .send(method, url, &headers, Some(body))
        .await
        .unwrap()
}

fn outcome_code(r: &PartnerResponse) -> String {
    let v = r.json().unwrap();
    assert_eq!(v["resourceType"], "OperationOutcome", "{v}");
    v["issue"][0]["code"].as_str().unwrap().to_owned()
}

fn link<'a>(bundle: &'a Value, relation: &str) -> Option<&'a str> {
    bundle["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == relation)
        .map(|l| l["url"].as_str().unwrap())
}

fn ids(bundle: &Value, mode: &str) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["search"]["mode"] == mode)
        .map(|e| {
            format!(
                "{}/{}",
                e["resource"]["resourceType"].as_str().unwrap(),
                e["resource"]["id"].as_str().unwrap()
            )
        })
        .collect()
}

#[tokio::test]
async fn metadata_and_read() {
    let s = server().await;
    assert!(s.base_url().starts_with("http://127.0.0.1:") && s.base_url().ends_with("/fhir"));
    let meta = get(&format!("{}/metadata", s.base_url())).await;
    assert_eq!(meta.status, 200);
    assert_eq!(meta.header("content-type"), Some("application/fhir+json"));
    let cap = meta.json().unwrap();
    assert_eq!(cap["fhirVersion"], "4.0.1");
    let patient = cap["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "Patient")
        .unwrap();
    assert!(
        patient["searchParam"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "birthdate")
    );

    let read = get(&format!("{}/Patient/pat-0001", s.base_url())).await;
    assert_eq!(read.status, 200);
    assert_eq!(read.json().unwrap()["id"], "pat-0001");
    assert_eq!(read.header("etag"), Some("W/\"1\""));
    // The CapabilityStatement itself is valid R4.
    let parsed: Result<fhirbolt::model::r4::Resource, _> =
        fhirbolt::json::from_json_value(cap, None);
    assert!(parsed.is_ok(), "{:?}", parsed.err());
}

#[tokio::test]
async fn search_pages_with_absolute_links_under_base() {
    let s = server().await;
    let base = s.base_url();
    let first = get(&format!(
        "{base}/Observation?patient=Patient/pat-0001&_count=2"
    ))
    .await;
    assert_eq!(first.status, 200);
    let bundle = first.json().unwrap();
    assert_eq!(bundle["type"], "searchset");
    let total = bundle["total"].as_u64().unwrap();
    assert!(total > 2);
    assert_eq!(bundle["entry"].as_array().unwrap().len(), 2);
    assert!(link(&bundle, "previous").is_none());
    let entry = &bundle["entry"][0];
    assert!(
        entry["fullUrl"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{base}/Observation/"))
    );

    // Follow next links to the end and see every match exactly once.
    let mut seen = ids(&bundle, "match");
    let mut next = link(&bundle, "next").map(str::to_owned);
    while let Some(url) = next {
        assert!(url.starts_with(&format!("{base}/Observation?")), "{url}");
        assert!(
            url.contains("patient=Patient%2Fpat-0001"),
            "narrowing kept: {url}"
        );
        let page = get(&url).await.json().unwrap();
        assert!(link(&page, "previous").is_some());
        seen.extend(ids(&page, "match"));
        next = link(&page, "next").map(str::to_owned);
    }
    assert_eq!(seen.len() as u64, total);
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len() as u64, total);

    // Bare id and `subject` find the same set.
    let bare = get(&format!("{base}/Observation?subject=pat-0001&_count=200"))
        .await
        .json()
        .unwrap();
    assert_eq!(bare["total"].as_u64().unwrap(), total);
}

#[tokio::test]
async fn search_by_code_date_category_identifier() {
    let s = server().await;
    let base = s.base_url();
    let total =
        |url: String| async move { get(&url).await.json().unwrap()["total"].as_u64().unwrap() };
    let icd = total(format!("{base}/Condition?code=http://hl7.org/fhir/sid/icd-10-cm|F11.20,http://hl7.org/fhir/sid/icd-10-cm|F10.20")).await;
    let snomed = total(format!("{base}/Condition?code=75544000,66590003")).await;
    assert!(icd > 0);
    // Every ICD-10-CM one is dual-coded; other organizations' records of
    // the same disorders are coded in SNOMED CT alone (population/coded.rs).
    assert!(
        snomed >= icd,
        "dual-coded: {icd} ICD-10-CM, {snomed} SNOMED CT"
    );
    let all = total(format!("{base}/Encounter?_count=0")).await;
    let early = total(format!("{base}/Encounter?date=lt2024-07-01")).await;
    let late = total(format!("{base}/Encounter?date=ge2024-07-01")).await;
    assert_eq!(early + late, all);
    let y2024 = total(format!(
        "{base}/Encounter?date=ge2024-01-01&date=le2024-12-31"
    ))
    .await;
    assert_eq!(y2024, total(format!("{base}/Encounter?date=2024")).await);
    let vitals = total(format!("{base}/Observation?category=vital-signs")).await;
    let labs = total(format!("{base}/Observation?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory")).await;
    assert_eq!(vitals + labs, total(format!("{base}/Observation")).await);
    assert_eq!(
        total(format!(
            "{base}/Patient?identifier=https://accord.example/fhir/sid/mrn|MRN-000003"
        ))
        .await,
        1
    );
    assert_eq!(
        total(format!("{base}/Patient?identifier=MRN-000003")).await,
        1
    );
    assert_eq!(
        total(format!("{base}/Patient?_id=pat-0001,pat-0002")).await,
        2
    );
    assert!(total(format!("{base}/Condition?_security=ETH")).await > 0);
    // POST _search with a form body behaves like GET.
    let posted = PartnerClient::plaintext()
        .send(
            Method::POST,
            &format!("{base}/Condition/_search"),
            &[("Content-Type", "application/x-www-form-urlencoded")],
            Some(b"code=75544000,66590003".to_vec()),
        )
        .await
        .unwrap();
    assert_eq!(posted.status, 200);
    assert_eq!(posted.json().unwrap()["total"].as_u64().unwrap(), snomed);
}

#[tokio::test]
async fn include_adds_patients_once() {
    let s = server().await;
    let bundle = get(&format!(
        "{}/Encounter?subject=pat-0002&_include=Encounter:subject",
        s.base_url()
    ))
    .await
    .json()
    .unwrap();
    assert!(!ids(&bundle, "match").is_empty());
    assert_eq!(ids(&bundle, "include"), ["Patient/pat-0002"]);
    let bundle = get(&format!(
        "{}/Observation?_count=50&_include=Observation:patient",
        s.base_url()
    ))
    .await
    .json()
    .unwrap();
    let included = ids(&bundle, "include");
    assert!(!included.is_empty() && included.iter().all(|i| i.starts_with("Patient/")));
}

#[tokio::test]
async fn create_update_vread_history() {
    let s = server().await;
    let base = s.base_url();
    let task = json!({
        "resourceType": "Task", "status": "requested", "intent": "order",
        "for": { "reference": "Patient/pat-0001" },
    });
    let created = send(Method::POST, &format!("{base}/Task"), &task).await;
    assert_eq!(created.status, 201, "{}", created.text());
    let body = created.json().unwrap();
    let id = body["id"].as_str().unwrap().to_owned();
    assert_eq!(body["meta"]["versionId"], "1");
    assert_eq!(
        created.header("location").unwrap(),
        format!("{base}/Task/{id}/_history/1")
    );

    let mut changed = body.clone();
    changed["status"] = json!("completed");
    let updated = send(Method::PUT, &format!("{base}/Task/{id}"), &changed).await;
    assert_eq!(updated.status, 200);
    assert_eq!(updated.json().unwrap()["meta"]["versionId"], "2");
    assert_eq!(
        get(&format!("{base}/Task/{id}")).await.json().unwrap()["status"],
        "completed"
    );
    assert_eq!(
        get(&format!("{base}/Task/{id}/_history/1"))
            .await
            .json()
            .unwrap()["status"],
        "requested"
    );
    let history = get(&format!("{base}/Task/{id}/_history"))
        .await
        .json()
        .unwrap();
    assert_eq!(history["type"], "history");
    assert_eq!(history["total"], 2);

    // PUT to a new id creates.
    let mut fresh = task.clone();
    fresh["id"] = json!("task-new");
    assert_eq!(
        send(Method::PUT, &format!("{base}/Task/task-new"), &fresh)
            .await
            .status,
        201
    );
    assert_eq!(
        s.store().read("Task", "task-new").unwrap()["meta"]["versionId"],
        "1"
    );
}

#[tokio::test]
async fn errors_are_operation_outcomes() {
    let s = server().await;
    let base = s.base_url();
    let cases = [
        (format!("{base}/Patient/nobody"), 404, "not-found"),
        (format!("{base}/Spaceship/1"), 404, "not-found"),
        (
            format!("{base}/Patient/pat-0001/_history/9"),
            404,
            "not-found",
        ),
        (format!("{base}/Observation?bogus=1"), 400, "invalid"),
        (format!("{base}/Observation?subject.name=x"), 400, "invalid"),
        (format!("{base}/Observation?code:text=x"), 400, "invalid"),
        (format!("{base}/Observation?date=yesterday"), 400, "invalid"),
        (format!("{base}/Observation?_count=-1"), 400, "invalid"),
        (
            format!("{base}/Observation?_has:Patient:x:y=1"),
            400,
            "invalid",
        ),
        (
            format!("{base}/Observation?_include=Observation:*"),
            400,
            "invalid",
        ),
        (
            format!("{base}/Observation?_revinclude=Provenance:target"),
            400,
            "invalid",
        ),
        (format!("{base}/Observation?_sort=date"), 400, "invalid"),
        (
            format!("{base}/Patient/pat-0001/$everything"),
            404,
            "not-supported",
        ),
        (format!("{base}/Patient/bad_id!"), 400, "invalid"),
        (format!("http://{}/other", s.local_addr()), 404, "not-found"),
    ];
    for (url, status, code) in cases {
        let r = get(&url).await;
        assert_eq!(r.status, status, "{url}: {}", r.text());
        assert_eq!(outcome_code(&r), code, "{url}");
    }
    let r = PartnerClient::plaintext()
        .send(
            Method::DELETE,
            &format!("{base}/Patient/pat-0001"),
            &[],
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.status, 405);
    let r = PartnerClient::plaintext()
        .send(
            Method::POST,
            &format!("{base}/Patient"),
            &[("Content-Type", "application/fhir+json")],
            Some(b"{not json".to_vec()),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    let invalid = json!({ "resourceType": "Task", "status": "requested", "intent": "order", "colour": "blue" });
    let r = send(Method::POST, &format!("{base}/Task"), &invalid).await;
    assert_eq!((r.status, outcome_code(&r).as_str()), (422, "processing"));
    // fhirbolt 0.4 panics on empty arrays; the server must answer instead.
    let empty = json!({ "resourceType": "Patient", "name": [] });
    let r = send(Method::POST, &format!("{base}/Patient"), &empty).await;
    assert_eq!((r.status, outcome_code(&r).as_str()), (422, "processing"));
    let wrong_type = json!({ "resourceType": "Patient" });
    assert_eq!(
        send(Method::POST, &format!("{base}/Task"), &wrong_type)
            .await
            .status,
        400
    );
    let mismatched = json!({ "resourceType": "Patient", "id": "a" });
    assert_eq!(
        send(Method::PUT, &format!("{base}/Patient/b"), &mismatched)
            .await
            .status,
        400
    );
    // Garbage on the wire never takes the server down.
    let raw = crate::client::send_raw_plaintext(s.local_addr(), b"\x00\x01garbage\r\n\r\n")
        .await
        .unwrap();
    assert!(
        raw.starts_with(b"HTTP/1.1 400"),
        "{}",
        String::from_utf8_lossy(&raw)
    );
    assert_eq!(get(&format!("{base}/metadata")).await.status, 200);
}

#[tokio::test]
async fn delay_failure_and_recording_knobs() {
    let s = server().await;
    let base = s.base_url();
    s.store().set_delay(Duration::from_millis(300));
    let started = Instant::now();
    assert_eq!(get(&format!("{base}/Patient/pat-0001")).await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    let impatient = PartnerClient::plaintext().with_timeout(Duration::from_millis(50));
    assert!(matches!(
        impatient
            .send(Method::GET, &format!("{base}/metadata"), &[], None)
            .await,
        Err(crate::client::ClientError::Timeout)
    ));
    s.store().set_delay(Duration::ZERO);
    s.store().set_failure(Some(StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(get(&format!("{base}/metadata")).await.status, 503);
    s.store().set_failure(None);
    s.store().clear_recorded_requests();
    assert_eq!(
        get(&format!("{base}/Patient?gender=female")).await.status,
        200
    );
    let recorded = s.store().recorded_requests();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].method, "GET");
    assert_eq!(recorded[0].path_and_query, "/fhir/Patient?gender=female");
}

#[tokio::test]
async fn shutdown_stops_serving() {
    let s = server().await;
    let addr = s.local_addr();
    s.shutdown();
    // The abort is processed by the runtime shortly after.
    for _ in 0..50 {
        if TcpStream::connect(addr).await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("server still accepting after shutdown");
}
