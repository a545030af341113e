#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::*;

fn ty(name: &str) -> ResourceType {
    ResourceType::parse(name).unwrap()
}

fn lab() -> Value {
    json!({
        "resourceType": "Observation", "id": "o1",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
        "subject": {"reference": "Patient/p1"},
        "encounter": {"reference": "Encounter/e1"},
        "valueQuantity": {"value": 7.1}
    })
}

fn constraint(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .map(|p| {
            let (n, v) = p.split_once('=').unwrap();
            (n.to_owned(), v.to_owned())
        })
        .collect()
}

#[test]
fn tokens_match_codeable_concepts_with_and_without_system() {
    let obs = ty("Observation");
    for (text, want) in [
        ("category=laboratory", Match::Yes),
        ("category=vital-signs", Match::No),
        ("category=vital-signs,laboratory", Match::Yes),
        (
            "category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory",
            Match::Yes,
        ),
        ("category=http://other|laboratory", Match::No),
        ("category:not=laboratory", Match::No),
        ("category:text=lab", Match::Unknown),
        ("category=laboratory&code=4548-4", Match::Yes),
        ("category=laboratory&code=1234-5", Match::No),
        ("no-such-param=x", Match::Unknown),
        ("_id=o1", Match::Yes),
        ("date=2020", Match::Unknown),
    ] {
        assert_eq!(satisfies(&lab(), obs, &constraint(text)), want, "{text}");
    }
}

#[test]
fn references_match_by_type_and_id_and_targets_filter() {
    let obs = ty("Observation");
    for (text, want) in [
        ("patient=Patient/p1", Match::Yes),
        ("patient=p1", Match::Yes),
        ("patient=Patient/p2", Match::No),
        ("subject=https://x/fhir/Patient/p1", Match::Yes),
        ("encounter=Encounter/e1", Match::Yes),
        ("subject:Patient=p1", Match::Yes),
        ("subject:Group=p1", Match::No),
    ] {
        assert_eq!(satisfies(&lab(), obs, &constraint(text)), want, "{text}");
    }
}

#[test]
fn strings_match_prefixes_inside_complex_values() {
    let patient = json!({"resourceType": "Patient", "address": [{"postalCode": "02139", "city": "Cambridge"}], "name": [{"family": "Ng", "given": ["Ada"]}], "telecom": [{"system": "phone", "value": "555"}]});
    let p = ty("Patient");
    for (text, want) in [
        ("address-postalcode=021", Match::Yes),
        ("address-postalcode=9", Match::No),
        ("address=cambr", Match::Yes),
        ("name=ada", Match::Yes),
        ("family:exact=ng", Match::No),
        ("phone=555", Match::Yes),
        ("email=555", Match::No),
        ("address-city:missing=false", Match::Yes),
        ("address-state:missing=true", Match::Yes),
    ] {
        assert_eq!(satisfies(&patient, p, &constraint(text)), want, "{text}");
    }
}

#[test]
fn elements_name_what_a_parameter_reads() {
    let p = ty("Patient");
    let elements = |code| search_param(p, code).unwrap().elements();
    assert_eq!(elements("address-postalcode"), ["address.postalCode"]);
    assert_eq!(elements("phone"), ["telecom"]);
    assert_eq!(elements("deceased"), ["deceased"]);
    assert_eq!(elements("mothersMaidenName"), [""]);
    assert_eq!(
        search_param(ty("Observation"), "_text").unwrap().elements(),
        [""]
    );
    assert_eq!(elements("death-date"), ["deceased"]);
    assert!(search_param(p, "nonsense").is_none());
}
