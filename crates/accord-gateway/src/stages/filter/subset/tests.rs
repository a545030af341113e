use http::{HeaderMap, StatusCode};
use serde_json::json;

use super::*;

fn take(query: &str) -> (SearchParams, Option<Subset>) {
    let mut params = SearchParams::parse_query(query).unwrap();
    let subset = Subset::take(&mut params).unwrap();
    (params, subset)
}

fn apply(subset: &Subset, body: &Value) -> Value {
    let released = Releasable {
        status: StatusCode::OK,
        headers: HeaderMap::new(),
        body: Bytes::from(serde_json::to_vec(body).unwrap()),
    };
    serde_json::from_slice(&subset.apply(released).unwrap().body).unwrap()
}

fn condition() -> Value {
    json!({
        "resourceType": "Condition",
        "id": "c1",
        "meta": {"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "ETH"}]},
        "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Opioid use disorder</div>"},
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "F11.20"}]},
        "subject": {"reference": "Patient/p1"},
        "onsetDateTime": "2024-01-02",
        "_onsetDateTime": {"extension": []},
        "clinicalStatus": {"text": "active"}
    })
}

#[test]
fn the_upstream_is_never_asked_to_subset() {
    let (params, subset) = take("patient=p1&_elements=subject&_summary=data&_count=5");
    assert!(subset.is_some());
    let left: Vec<_> = params.iter().map(|(n, _)| n.to_owned()).collect();
    assert_eq!(left, ["patient", "_count"]);
    let (params, subset) = take("patient=p1");
    assert!(subset.is_none());
    assert_eq!(params.len(), 1);
}

#[test]
fn elements_keep_what_was_asked_with_id_meta_and_the_subsetted_tag() {
    let (_, subset) = take("_elements=subject,onset");
    let out = apply(&subset.unwrap(), &condition());
    let mut keys: Vec<&str> = out
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "_onsetDateTime",
            "id",
            "meta",
            "onsetDateTime",
            "resourceType",
            "subject"
        ]
    );
    let tags = out.pointer("/meta/tag").unwrap().as_array().unwrap();
    assert_eq!(tags.len(), 1);
    assert_eq!(tags[0]["code"], "SUBSETTED");
    assert!(out.pointer("/meta/security").is_some(), "labels stay");
}

#[test]
fn mandatory_elements_stay_so_the_subset_is_still_valid() {
    let (_, subset) = take("_elements=id");
    let out = apply(&subset.unwrap(), &condition());
    assert!(out.get("subject").is_some(), "Condition.subject is 1..1");
    assert!(out.get("code").is_none());
    let observation = json!({"resourceType": "Observation", "id": "o", "status": "final",
        "code": {"text": "x"}, "valueQuantity": {"value": 1}, "note": [{"text": "n"}]});
    let out = apply(&take("_elements=value").1.unwrap(), &observation);
    let mut keys: Vec<&str> = out
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "code",
            "id",
            "meta",
            "resourceType",
            "status",
            "valueQuantity"
        ]
    );
}

#[test]
fn a_name_keeps_only_its_own_element_or_its_choice_forms() {
    let (_, subset) = take("_elements=clinical,onset");
    let out = apply(&subset.unwrap(), &condition());
    assert!(out.get("clinicalStatus").is_none(), "not a choice element");
    assert!(out.get("onsetDateTime").is_some(), "onset[x]");
}

#[test]
fn type_qualified_elements_apply_to_that_type_only() {
    let (_, subset) = take("_elements=Patient.name,Condition.code");
    let out = apply(&subset.unwrap(), &condition());
    assert!(out.get("code").is_some());
    assert!(out.get("onsetDateTime").is_none());
}

#[test]
fn summary_data_drops_the_narrative_and_summary_true_changes_nothing() {
    let (_, subset) = take("_summary=data");
    let out = apply(&subset.unwrap(), &condition());
    assert!(out.get("text").is_none());
    assert!(out.get("code").is_some());
    let (_, subset) = take("_summary=true");
    assert_eq!(apply(&subset.unwrap(), &condition()), condition());
}

#[test]
fn bundles_subset_matches_and_keep_includes_outcomes_and_the_subset_in_links() {
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "link": [
            {"relation": "self", "url": "https://gw/fhir/Condition?patient=p1&_elements=subject"},
            {"relation": "next", "url": "https://gw/fhir/Condition?patient=p1&_offset=2"}
        ],
        "entry": [
            {"resource": condition(), "search": {"mode": "match"}},
            {"resource": {"resourceType": "Patient", "id": "p1", "name": [{"family": "X"}]}, "search": {"mode": "include"}},
            {"resource": {"resourceType": "OperationOutcome", "issue": []}, "search": {"mode": "outcome"}}
        ]
    });
    let (_, subset) = take("_elements=subject");
    let out = apply(&subset.unwrap(), &bundle);
    assert!(out.pointer("/entry/0/resource/code").is_none());
    assert!(out.pointer("/entry/1/resource/name").is_some());
    assert!(out.pointer("/entry/2/resource/issue").is_some());
    assert_eq!(
        out.pointer("/link/0/url").unwrap(),
        "https://gw/fhir/Condition?patient=p1&_elements=subject"
    );
    assert_eq!(
        out.pointer("/link/1/url").unwrap(),
        "https://gw/fhir/Condition?patient=p1&_offset=2&_elements=subject"
    );
}

#[test]
fn malformed_subsetting_is_a_bad_request() {
    for query in [
        "_elements=a.b.c",
        "_elements=code;drop",
        "_summary=maybe",
        "_elements:exclude=text",
    ] {
        let mut params = SearchParams::parse_query(query).unwrap();
        let err = Subset::take(&mut params).unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST, "{query}");
    }
}

#[test]
fn refusals_pass_untouched() {
    let (_, subset) = take("_elements=subject");
    let refused = Releasable {
        status: StatusCode::FORBIDDEN,
        headers: HeaderMap::new(),
        body: Bytes::from_static(b"{\"resourceType\":\"OperationOutcome\"}"),
    };
    let out = subset.unwrap().apply(refused).unwrap();
    assert_eq!(&out.body[..], b"{\"resourceType\":\"OperationOutcome\"}");
}
