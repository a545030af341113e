use serde_json::json;

use super::*;
use crate::test_support::fixture;

fn upstream(status: u16, headers: &[(&str, &str)], body: &Value) -> UpstreamResponse {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.insert(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    UpstreamResponse {
        status: StatusCode::from_u16(status).unwrap(),
        headers: map,
        body: Bytes::from(body.to_string()),
    }
}

fn rewrite() -> BaseRewrite {
    BaseRewrite::new("http://up:1/fhir", "https://gw:2/fhir")
}

const SELF: &str = "https://gw:2/fhir/Observation?patient=p1";

fn run(body: &Value) -> (Result<Releasable, GatewayError>, ReleaseReport) {
    let fixture = fixture();
    let scope = fixture.scope();
    let mut report = ReleaseReport::default();
    let result = filter(
        upstream(200, &[], body),
        &Checks::Resources(&scope),
        &rewrite(),
        (SELF, None),
        &mut report,
    );
    (result, report)
}

fn released(body: &Value) -> (Value, ReleaseReport) {
    let (result, report) = run(body);
    (
        serde_json::from_slice(&result.unwrap().body).unwrap(),
        report,
    )
}

fn observation(id: &str, patient: &str) -> Value {
    json!({"resourceType": "Observation", "id": id, "status": "final", "code": {"text": "x"},
           "subject": {"reference": format!("Patient/{patient}")}})
}

#[test]
fn single_resources_of_granted_types_and_known_patients_pass() {
    let (body, report) = released(&observation("o1", "p1"));
    assert_eq!(body["id"], "o1");
    assert_eq!(report.patients().collect::<Vec<_>>(), ["p1"]);
}

#[test]
fn withheld_single_resources_look_like_missing_ones() {
    for body in [
        json!({"resourceType": "MedicationRequest", "id": "m", "subject": {"reference": "Patient/p1"}}),
        json!({"resourceType": "Observation", "id": "o", "subject": {"reference": "#contained"}}),
        json!({"resourceType": "Observation", "id": "o", "subject": {"reference": "Patient/p1"},
               "contained": [{"resourceType": "Patient", "id": "p"}]}),
    ] {
        let (result, report) = run(&body);
        let err = result.unwrap_err();
        assert_eq!(
            (err.status, err.message.as_str()),
            (StatusCode::NOT_FOUND, "resource not found"),
            "{body}"
        );
        assert_eq!(report.withheld, 1);
    }
}

#[test]
fn a_body_that_is_not_a_resource_is_an_upstream_failure() {
    let (result, _) = run(&json!({"id": "no-type"}));
    assert_eq!(result.unwrap_err().status, StatusCode::BAD_GATEWAY);
}

#[test]
fn bundles_are_filtered_entry_by_entry_and_rebuilt() {
    let bundle = json!({
        "resourceType": "Bundle", "id": "b1", "type": "searchset", "total": 40,
        "meta": {"lastUpdated": "2026-01-01T00:00:00Z"},
        "link": [
            {"relation": "self", "url": "http://up:1/fhir/Observation?patient=p1&_internal=1"},
        ],
        "entry": [
            {"fullUrl": "http://up:1/fhir/Observation/o1", "resource": observation("o1", "p1"), "search": {"mode": "match"}},
            {"fullUrl": "http://up:1/fhir/Observation/o2", "resource": {"resourceType": "Observation", "id": "o2"}, "search": {"mode": "match"}},
            {"fullUrl": "http://up:1/fhir/Practitioner/d", "resource": {"resourceType": "Practitioner", "id": "d"}, "search": {"mode": "include"}},
            {"fullUrl": "http://up:1/fhir/Patient/p1", "resource": {"resourceType": "Patient", "id": "p1"}, "search": {"mode": "include"}},
            {"resource": {"resourceType": "OperationOutcome", "issue": []}, "search": {"mode": "outcome"}}
        ]
    });
    let (body, report) = released(&bundle);
    let ids: Vec<&str> = body["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["o1", "p1"],
        "ungranted includes, undetermined patients and outcomes are withheld"
    );
    assert_eq!(
        body["total"], 1,
        "the total counts released matches, not the upstream's"
    );
    assert_eq!(body["link"], json!([{"relation": "self", "url": SELF}]));
    assert_eq!(
        body["entry"][0]["fullUrl"],
        "https://gw:2/fhir/Observation/o1"
    );
    assert_eq!((report.released, report.withheld), (2, 2));
}

#[test]
fn paged_bundles_keep_rewritten_paging_links_and_drop_the_total() {
    let bundle = json!({
        "resourceType": "Bundle", "type": "searchset", "total": 40,
        "link": [
            {"relation": "next", "url": "http://up:1/fhir/Observation?patient=p1&_offset=2"},
            {"relation": "previous", "url": "http://elsewhere/fhir/Observation?_offset=0"}
        ],
        "entry": [{"resource": observation("o1", "p1")}]
    });
    let (body, _) = released(&bundle);
    assert!(body.get("total").is_none());
    assert_eq!(
        body["link"][1],
        json!({"relation": "next", "url": "https://gw:2/fhir/Observation?patient=p1&_offset=2"})
    );
    assert_eq!(
        body["link"].as_array().unwrap().len(),
        2,
        "a link off the upstream base is dropped"
    );
}

#[test]
fn an_empty_result_and_a_fully_withheld_one_look_the_same() {
    let withheld = json!({"resourceType": "Bundle", "id": "x", "type": "searchset", "total": 3,
        "entry": [{"resource": {"resourceType": "MedicationRequest", "id": "m", "subject": {"reference": "Patient/p1"}}}]});
    let empty = json!({"resourceType": "Bundle", "id": "x", "type": "searchset", "total": 0});
    assert_eq!(released(&withheld).0, released(&empty).0);
    let synthesized = empty_searchset(SELF);
    let mut upstream_empty = released(
        &json!({"resourceType": "Bundle", "id": "x", "type": "searchset",
        "meta": {"lastUpdated": "2026-01-01T00:00:00Z"}}),
    )
    .0;
    assert_eq!(synthesized, std::mem::take(&mut upstream_empty));
}

#[test]
fn upstream_errors_keep_status_but_not_upstream_words() {
    let oo = json!({"resourceType": "OperationOutcome", "issue": [{"diagnostics": "HAPI-0971 at org.internal"}]});
    let fixture = fixture();
    let scope = fixture.scope();
    let checks = Checks::Resources(&scope);
    let mut report = ReleaseReport::default();
    let err = filter(
        upstream(404, &[], &oo),
        &checks,
        &rewrite(),
        (SELF, None),
        &mut report,
    )
    .unwrap_err();
    assert_eq!(
        (err.status, err.message.as_str()),
        (StatusCode::NOT_FOUND, "resource not found")
    );
    let err = filter(
        upstream(500, &[], &oo),
        &checks,
        &rewrite(),
        (SELF, None),
        &mut report,
    )
    .unwrap_err();
    assert_eq!(err.status, StatusCode::BAD_GATEWAY);
}

#[test]
fn location_is_rewritten_and_upstream_headers_dropped() {
    let fixture = fixture();
    let scope = fixture.scope();
    let mut report = ReleaseReport::default();
    let response = upstream(
        201,
        &[
            ("server", "secret/1.0"),
            ("location", "http://up:1/fhir/Observation/o1/_history/1"),
        ],
        &observation("o1", "p1"),
    );
    let out = filter(
        response,
        &Checks::Resources(&scope),
        &rewrite(),
        (SELF, None),
        &mut report,
    )
    .unwrap();
    assert_eq!(
        out.headers["location"],
        "https://gw:2/fhir/Observation/o1/_history/1"
    );
    assert!(out.headers.get("server").is_none());
}

#[test]
fn the_capability_statement_is_the_gateways_own_and_lists_only_what_is_granted() {
    let fixture = fixture();
    let scope = fixture.scope();
    let mut report = ReleaseReport::default();
    let caps = json!({
        "resourceType": "CapabilityStatement", "status": "active", "date": "2026-01-01", "kind": "instance",
        "implementation": {"url": "http://up:1/fhir"}, "format": ["json", "xml"], "patchFormat": ["application/json-patch+json"],
        "rest": [{"mode": "server", "resource": [
            {"type": "Observation", "interaction": [{"code": "read"}, {"code": "delete"}],
             "searchParam": [{"name": "code", "type": "token", "definition": "http://up:1/fhir/SearchParameter/x"}]},
            {"type": "MedicationRequest", "interaction": [{"code": "read"}]}
        ], "operation": [{"name": "process-message", "definition": "http://up:1/fhir/OperationDefinition/x"}]}]
    });
    let checks = Checks::Capabilities(&scope);
    let out = filter(
        upstream(200, &[], &caps),
        &checks,
        &rewrite(),
        (SELF, None),
        &mut report,
    )
    .unwrap();
    let text = String::from_utf8(out.body.to_vec()).unwrap();
    assert!(
        !text.contains("http://up:1"),
        "the upstream address leaks: {text}"
    );
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["implementation"]["url"], "https://gw:2/fhir");
    assert_eq!(body["format"], json!(["application/fhir+json"]));
    let resources = body["rest"][0]["resource"].as_array().unwrap();
    assert_eq!(resources.len(), 1, "ungranted types are not advertised");
    assert_eq!(
        resources[0]["interaction"],
        json!([{"code": "read"}, {"code": "search-type"}])
    );
    assert!(body.get("patchFormat").is_none() && body["rest"][0].get("operation").is_none());
    let parsed: Result<fhirbolt::model::r4::Resource, _> = fhirbolt::json::from_str(&text, None);
    assert!(parsed.is_ok(), "{parsed:?}");

    let sneaky = observation("o1", "p1");
    assert!(
        filter(
            upstream(200, &[], &sneaky),
            &checks,
            &rewrite(),
            (SELF, None),
            &mut report
        )
        .is_err()
    );
}

fn run_bytes(body: &str) -> (Result<Releasable, GatewayError>, ReleaseReport) {
    let fixture = fixture();
    let scope = fixture.scope();
    let mut report = ReleaseReport::default();
    let result = filter(
        UpstreamResponse {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body: Bytes::from(body.to_owned()),
        },
        &Checks::Resources(&scope),
        &rewrite(),
        (SELF, None),
        &mut report,
    );
    (result, report)
}

#[test]
fn unchanged_entries_leave_as_the_upstream_wrote_them() {
    let resource = r#"{ "resourceType" : "Observation", "id": "o1", "status": "final",
        "code": {"text": "caf\u00e9"}, "valueQuantity": {"value": 1.50},
        "subject": {"reference": "Patient/p1"} }"#;
    let body = format!(
        r#"{{"resourceType": "Bundle", "type": "searchset", "entry": [{{"resource": {resource}, "search": {{"mode": "match"}}}}]}}"#
    );
    let (result, report) = run_bytes(&body);
    let out = String::from_utf8(result.unwrap().body.to_vec()).unwrap();
    assert!(out.contains(resource), "{out}");
    assert_eq!(report.released, 1);
    let parsed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(parsed["entry"][0]["resource"]["code"]["text"], "café");
}

#[test]
fn an_entry_that_says_two_things_at_once_is_withheld() {
    let body = r#"{"resourceType": "Bundle", "type": "searchset", "entry": [
        {"resource": {"resourceType": "Observation", "id": "o1", "status": "final", "code": {"text": "x"},
                      "subject": {"reference": "Patient/p1"}, "subject": {"reference": "Patient/p2"}}},
        {"resource": {"resourceType": "Observation", "id": "o2", "subject": {"reference": "Patient/p1"}},
         "resource": {"resourceType": "Observation", "id": "o3", "subject": {"reference": "Patient/p1"}}}
    ]}"#;
    let (result, report) = run_bytes(body);
    let out: Value = serde_json::from_slice(&result.unwrap().body).unwrap();
    assert!(out.get("entry").is_none(), "{out}");
    assert_eq!((report.released, report.withheld), (0, 2));
}

#[test]
fn a_bundle_whose_envelope_cannot_be_read_is_an_upstream_failure() {
    for body in [
        r#"{"resourceType": "Bundle", "type": "searchset", "entry": {"resource": {}}}"#,
        r#"{"resourceType": "Bundle", "entry": [], "entry": []}"#,
        r#"{"resourceType": "Bundle", "entry": [} "#,
    ] {
        let (result, _) = run_bytes(body);
        assert_eq!(
            result.unwrap_err().status,
            StatusCode::BAD_GATEWAY,
            "{body}"
        );
    }
}
