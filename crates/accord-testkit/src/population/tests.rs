use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use fhirbolt::model::r4::Resource;
use fhirbolt::serde::{DeserializationConfig, DeserializationMode};
use serde_json::Value;

use super::*;

fn strict() -> Option<DeserializationConfig> {
    Some(DeserializationConfig {
        mode: DeserializationMode::Strict,
    })
}

fn codings(concept: &Value) -> Vec<(&str, &str)> {
    concept["coding"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| (c["system"].as_str().unwrap(), c["code"].as_str().unwrap()))
        .collect()
}

fn has_label(resource: &Value, system_code: (&str, &str)) -> bool {
    resource["meta"]["security"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["system"] == system_code.0 && c["code"] == system_code.1)
}

const ETH: (&str, &str) = ("http://terminology.hl7.org/CodeSystem/v3-ActCode", "ETH");
const RESTRICTED: (&str, &str) = (
    "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
    "R",
);

#[test]
fn every_resource_deserializes_strictly_in_fhirbolt_r4() {
    let population = generate(7, 500);
    for resource in &population.resources {
        let parsed: Result<Resource, _> =
            fhirbolt::json::from_json_value(resource.clone(), strict());
        assert!(parsed.is_ok(), "{:?}\n{resource:#}", parsed.err());
    }
}

#[test]
fn no_empty_arrays_or_nulls_anywhere() {
    // FHIR JSON forbids both, and fhirbolt 0.4 panics on empty arrays.
    fn walk(v: &Value, path: &str) {
        match v {
            Value::Array(a) => {
                assert!(!a.is_empty(), "empty array at {path}");
                a.iter().for_each(|x| walk(x, path));
            }
            Value::Object(m) => m.iter().for_each(|(k, x)| walk(x, &format!("{path}.{k}"))),
            Value::Null => panic!("null at {path}"),
            _ => {}
        }
    }
    for r in &generate(9, 300).resources {
        walk(r, resource_id(r).unwrap());
    }
}

#[test]
fn same_seed_same_output_and_other_seed_differs() {
    assert_eq!(generate(11, 60), generate(11, 60));
    assert_ne!(generate(11, 60), generate(12, 60));
}

#[test]
fn asks_for_500_gets_500_patients_with_ids_and_meta() {
    let population = generate(7, 500);
    assert_eq!(population.of_type("Patient").count(), 500);
    assert_eq!(population.of_type("Organization").count(), 3);
    let id_ok = |id: &str| {
        (1..=64).contains(&id.len())
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    };
    let mut seen = BTreeSet::new();
    for r in &population.resources {
        let (t, id) = (resource_type(r).unwrap(), resource_id(r).unwrap());
        assert!(id_ok(id), "bad id {id}");
        assert!(seen.insert((t, id)), "duplicate {t}/{id}");
        assert_eq!(r["meta"]["versionId"], "1");
        let updated = r["meta"]["lastUpdated"].as_str().unwrap();
        assert!(("2023".."2027").contains(&&updated[..4]), "{updated}");
    }
    for t in [
        "Practitioner",
        "Encounter",
        "Condition",
        "Observation",
        "MedicationRequest",
        "Medication",
        "Procedure",
        "CarePlan",
        "ServiceRequest",
        "Task",
        "Consent",
        "Group",
    ] {
        assert!(population.of_type(t).count() > 0, "no {t}");
    }
}

#[test]
fn every_reference_resolves() {
    let population = generate(3, 200);
    let known: BTreeSet<String> = population
        .resources
        .iter()
        .map(|r| format!("{}/{}", resource_type(r).unwrap(), resource_id(r).unwrap()))
        .collect();
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("reference") {
                    out.push(r.clone());
                }
                m.values().for_each(|x| walk(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut refs = Vec::new();
    population.resources.iter().for_each(|r| walk(r, &mut refs));
    assert!(refs.len() > 1000);
    for r in refs {
        assert!(known.contains(&r), "dangling reference {r}");
    }
}

#[test]
fn substance_use_conditions_are_dual_coded_and_labelled_at_the_clinic() {
    let population = generate(7, 500);
    let sud = |c: &Value| {
        codings(&c["code"])
            .iter()
            .any(|(s, code)| *s == "http://hl7.org/fhir/sid/icd-10-cm" && code.starts_with("F1"))
    };
    let mut dual = BTreeSet::new();
    let (mut at_clinic, mut elsewhere) = (0, 0);
    for c in population.of_type("Condition").filter(|c| sud(c)) {
        let codes = codings(&c["code"]);
        let icd = codes
            .iter()
            .find(|(s, _)| s.ends_with("icd-10-cm"))
            .unwrap()
            .1;
        if let Some((_, snomed)) = codes.iter().find(|(s, _)| *s == "http://snomed.info/sct") {
            dual.insert((icd.to_owned(), snomed.to_owned()));
        }
        let encounter_id = c["encounter"]["reference"]
            .as_str()
            .unwrap()
            .trim_start_matches("Encounter/");
        let provider =
            &population.get("Encounter", encounter_id).unwrap()["serviceProvider"]["reference"];
        if *provider == format!("Organization/{ORG_BEHAVIORAL}") {
            at_clinic += 1;
            assert!(has_label(c, ETH) && has_label(c, RESTRICTED), "{c}");
        } else {
            elsewhere += 1;
            assert!(!has_label(c, ETH), "{c}");
        }
    }
    assert!(dual.contains(&("F10.20".into(), "66590003")), "{dual:?}");
    assert!(dual.contains(&("F11.20".into(), "75544000")), "{dual:?}");
    let icd: BTreeSet<_> = population
        .of_type("Condition")
        .flat_map(|c| codings(&c["code"]))
        .map(|(_, code)| code.to_owned())
        .collect();
    for code in [
        "F10.20", "F11.20", "F12.20", "F14.20", "F32.9", "I10", "E11.9",
    ] {
        assert!(icd.contains(code), "no condition coded {code}");
    }
    assert!(at_clinic > 50 && elsewhere > 0, "{at_clinic} {elsewhere}");
    // Buprenorphine orders from the clinic are Part 2 records too.
    let bup = population
        .of_type("MedicationRequest")
        .filter(|m| {
            codings(&m["medicationCodeableConcept"])
                .contains(&("http://www.nlm.nih.gov/research/umls/rxnorm", "1819"))
        })
        .collect::<Vec<_>>();
    let from_clinic = |m: &Value| {
        m["requester"]["reference"]
            .as_str()
            .unwrap()
            .starts_with("Practitioner/prac-rbh-")
    };
    assert!(bup.iter().any(|m| from_clinic(m)));
    for m in &bup {
        assert_eq!(has_label(m, ETH), from_clinic(m), "{m}");
    }
}

#[test]
fn care_overlaps_and_cohorts_match_encounters() {
    let population = generate(7, 500);
    let mut orgs_of: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for e in population.of_type("Encounter") {
        orgs_of
            .entry(e["subject"]["reference"].as_str().unwrap().to_owned())
            .or_default()
            .insert(
                e["serviceProvider"]["reference"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
    }
    assert_eq!(orgs_of.len(), 500, "every patient has encounters");
    assert!(orgs_of.values().any(|o| o.len() == 3));
    assert!(orgs_of.values().filter(|o| o.len() >= 2).count() > 100);
    for p in population.of_type("Patient") {
        let managing = p["managingOrganization"]["reference"].as_str().unwrap();
        let me = format!("Patient/{}", p["id"].as_str().unwrap());
        assert!(orgs_of[&me].contains(managing));
    }
    let group = population.get("Group", COHORT_BH_PRIMARY).unwrap();
    assert_eq!(group["type"], "person");
    assert_eq!(group["actual"], true);
    let members: BTreeSet<&str> = group["member"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["entity"]["reference"].as_str().unwrap())
        .collect();
    let expected: BTreeSet<&str> = orgs_of
        .iter()
        .filter(|(_, o)| {
            o.contains(&format!("Organization/{ORG_BEHAVIORAL}"))
                && o.contains(&format!("Organization/{ORG_PRIMARY}"))
        })
        .map(|(p, _)| p.as_str())
        .collect();
    assert!(members.len() > 20);
    assert_eq!(members, expected);
    assert_eq!(group["quantity"], members.len());
}

#[test]
fn consents_permit_and_deny_and_referrals_link_up() {
    let population = generate(7, 500);
    let types: Vec<&str> = population
        .of_type("Consent")
        .map(|c| c["provision"]["type"].as_str().unwrap())
        .collect();
    assert!(types.contains(&"permit") && types.contains(&"deny"));
    for c in population.of_type("Consent") {
        assert_eq!(
            codings(&c["category"][0]),
            [("http://loinc.org", "59284-0")]
        );
        assert_eq!(c["status"], "active");
        assert!(!c["provision"]["actor"].as_array().unwrap().is_empty());
    }
    for t in population.of_type("Task") {
        let focus = t["focus"]["reference"]
            .as_str()
            .unwrap()
            .trim_start_matches("ServiceRequest/");
        let sr = population.get("ServiceRequest", focus).unwrap();
        assert_eq!(sr["subject"], t["for"]);
        assert_eq!(sr["requester"], t["requester"]);
        assert_eq!(sr["performer"][0], t["owner"]);
        assert!(
            t["owner"]["reference"]
                .as_str()
                .unwrap()
                .starts_with("Organization/")
        );
    }
    let obs_categories: BTreeSet<_> = population
        .of_type("Observation")
        .map(|o| codings(&o["category"][0])[0].1)
        .collect();
    assert_eq!(
        obs_categories,
        BTreeSet::from(["laboratory", "vital-signs"])
    );
}

#[test]
fn small_population_is_a_prefix_of_a_large_one() {
    let small = generate(7, 40);
    let large = generate(7, 500);
    for r in small
        .resources
        .iter()
        .filter(|r| resource_type(r) != Some("Group"))
    {
        assert_eq!(
            large.get(resource_type(r).unwrap(), resource_id(r).unwrap()),
            Some(r)
        );
    }
}

#[test]
fn ndjson_round_trips() {
    let population = generate(5, 30);
    let dir = tempfile::tempdir().unwrap();
    population.write_ndjson(dir.path()).unwrap();
    assert!(dir.path().join("Patient.ndjson").exists());
    let back = Population::read_ndjson(dir.path()).unwrap();
    let key = |r: &Value| format!("{}/{}", resource_type(r).unwrap(), resource_id(r).unwrap());
    let mut a = population.resources;
    let mut b = back.resources;
    a.sort_by_key(key);
    b.sort_by_key(key);
    assert_eq!(a, b);
}

/// The committed sample must be exactly what the generator produces, so it
/// cannot drift from the code. Regenerate with
/// `cargo run -p accord-testkit --example write-fixtures -- fixtures/population 7 40`.
#[test]
fn committed_fixtures_match_the_generator() {
    let committed = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/population");
    let fresh = tempfile::tempdir().unwrap();
    generate(7, 40).write_ndjson(fresh.path()).unwrap();
    let list = |dir: &Path| -> BTreeSet<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".ndjson"))
            .collect()
    };
    let names = list(fresh.path());
    assert_eq!(
        list(&committed),
        names,
        "fixture files differ; regenerate fixtures/population"
    );
    for name in names {
        let want = std::fs::read_to_string(fresh.path().join(&name)).unwrap();
        let got = std::fs::read_to_string(committed.join(&name)).unwrap();
        assert!(
            want == got,
            "fixtures/population/{name} drifted from the generator; regenerate it"
        );
    }
}

#[test]
fn records_are_also_coded_as_ehrs_code_them() {
    let population = generate(7, 500);
    let codes_of = |ty: &str, field: &str| -> BTreeSet<(String, String)> {
        population
            .of_type(ty)
            .flat_map(|r| codings(&r[field]))
            .map(|(s, c)| (s.to_owned(), c.to_owned()))
            .collect()
    };
    let has = |set: &BTreeSet<(String, String)>, system: &str, code: &str| {
        set.contains(&(system.to_owned(), code.to_owned()))
    };
    let procedures = codes_of("Procedure", "code");
    for cpt in ["99408", "90834", "93000"] {
        assert!(
            has(&procedures, "http://www.ama-assn.org/go/cpt", cpt),
            "no CPT {cpt}"
        );
    }
    let medications = codes_of("Medication", "code");
    let inline = codes_of("MedicationRequest", "medicationCodeableConcept");
    for product in ["1010600", "1999667", "860975"] {
        let rxnorm = "http://www.nlm.nih.gov/research/umls/rxnorm";
        assert!(
            has(&medications, rxnorm, product),
            "no Medication {product}"
        );
        assert!(has(&inline, rxnorm, product), "no inline {product}");
    }
    let results = codes_of("Observation", "code");
    for loinc in ["19295-5", "20447-9"] {
        assert!(has(&results, "http://loinc.org", loinc), "no LOINC {loinc}");
    }
    // SNOMED CT-only problems, unlabelled: Part 2 and HIV data found by
    // code alone.
    let snomed_only: Vec<&Value> = population
        .of_type("Condition")
        .filter(|c| {
            codings(&c["code"])
                .iter()
                .all(|(s, _)| *s == "http://snomed.info/sct")
        })
        .collect();
    for code in ["86406008", "75544000"] {
        assert!(
            snomed_only.iter().any(|c| codings(&c["code"])
                .contains(&("http://snomed.info/sct", code))
                && !has_label(c, ETH)),
            "no unlabelled SNOMED CT-only {code}"
        );
    }
    // Every medicationReference names a Medication of the population.
    let references: Vec<&str> = population
        .of_type("MedicationRequest")
        .filter_map(|r| r["medicationReference"]["reference"].as_str())
        .collect();
    assert!(references.len() > 10, "{}", references.len());
    for reference in references {
        let id = reference.strip_prefix("Medication/").unwrap();
        assert!(population.get("Medication", id).is_some(), "{reference}");
    }
}
