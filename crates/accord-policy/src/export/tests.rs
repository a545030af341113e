use std::path::Path;

use accord_fhir::{ResourceType, validate_resource};
use serde_json::Value;

use super::*;

fn shipped() -> PolicySet {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
    PolicySet::load_dir(&dir).unwrap()
}

/// The official R4 JSON Schema and fhirbolt's R4 model both accept it.
fn assert_valid_r4(resource: &Value, ty: &str) {
    let body = serde_json::to_vec(resource).unwrap();
    if let Err(e) = validate_resource(&body, ResourceType::parse(ty).unwrap()) {
        panic!("{e:?}\n{}", serde_json::to_string_pretty(resource).unwrap());
    }
}

#[test]
fn every_shipped_agreement_exports_as_a_valid_r4_contract() {
    let set = shipped();
    assert!(!set.agreements().is_empty());
    for a in set.agreements() {
        let c = contract(&set, a);
        assert_valid_r4(&c, "Contract");
        assert_eq!(c["identifier"][0]["value"], a.id.as_str());
        assert_eq!(
            c["term"].as_array().unwrap().len(),
            a.grants.len() + a.forbids.len(),
            "{}",
            a.id
        );
        assert_eq!(
            c["contained"].as_array().unwrap().len(),
            a.parties.len(),
            "{}",
            a.id
        );
    }
    assert_valid_r4(&contracts_bundle(&set), "Bundle");
}

#[test]
fn grants_forbids_status_and_term_are_mapped() {
    let set = shipped();
    let a = set.agreement("care-coordination-2026").unwrap();
    let c = contract(&set, a);
    assert_eq!(c["status"], "executed");
    assert_eq!(c["extension"][0]["valueCode"], "active");
    assert_eq!(c["applies"]["start"], day(a.term.effective));
    let terms = c["term"].as_array().unwrap();
    // A grant with sensitive categories carries restricted security labels.
    let clinical = terms
        .iter()
        .find(|t| t["identifier"]["value"] == "care-coordination-2026/clinical-record")
        .unwrap();
    let categories: Vec<&str> = clinical["securityLabel"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["category"][0]["code"].as_str())
        .collect();
    assert_eq!(categories, ["mental-health", "part2"]);
    let purposes: Vec<&str> = clinical["action"][0]["reasonCode"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["coding"][0]["code"].as_str())
        .collect();
    assert_eq!(
        purposes,
        a.purposes.iter().map(|p| p.as_str()).collect::<Vec<_>>()
    );
    // A redaction is a REDACT obligation and names the elements.
    let redacting = terms
        .iter()
        .find(|t| t["identifier"]["value"] == "care-coordination-2026/clinic-coordination")
        .unwrap();
    assert!(
        redacting["asset"][0]["text"]
            .as_str()
            .unwrap()
            .contains("Patient.photo")
    );
    assert!(redacting.to_string().contains("\"REDACT\""));
    // A forbid is an action not to perform.
    let forbid = terms
        .iter()
        .find(|t| t["identifier"]["value"] == "care-coordination-2026/no-psychotherapy-notes")
        .unwrap();
    assert_eq!(forbid["action"][0]["doNotPerform"], true);
}

#[test]
fn ended_agreements_are_not_exported_as_in_force() {
    let set = shipped();
    for a in set.agreements() {
        let c = contract(&set, a);
        let status = c["status"].as_str().unwrap();
        match a.status {
            AgreementStatus::Active => assert_eq!(status, "executed"),
            _ => assert_ne!(status, "executed", "{}", a.id),
        }
    }
}
