//! One test per class of bad input, each asserting the exact
//! `file:line:col`, and a property test: mutated files never panic and
//! every error they cause is located.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)] // test code: a panic is a failed test

use accord_policy::{PolicySet, PolicySources, SourceFile};
use proptest::prelude::*;

const PARTNERS: &str = r#"[[partner]]
id = "a"
name = "A"
status = "active"

[[partner]]
id = "b"
name = "B"
status = "active"
"#;

const AGREEMENT: &str = r#"id = "dua"
version = 1
title = "t"
status = "active"
parties = ["a", "b"]
effective = 2026-01-01
expires = 2026-12-31
purposes = ["TREAT"]

[[grant]]
id = "g"
recipients = ["a"]
resources = ["Patient", "Observation"]
interactions = ["read", "search"]
redact = ["Patient.address"]
sensitive = ["part2"]
constraints = ["Observation?category=laboratory"]

[[forbid]]
id = "f"
sensitive = ["psychotherapy-notes"]
reason = "never"
"#;

const CONSENT: &str = r#"{
  "resourceType": "Consent",
  "id": "c1",
  "status": "active",
  "scope": {"coding": [{"code": "patient-privacy"}]},
  "category": [{"coding": [{"code": "59284-0"}]}],
  "patient": {"reference": "Patient/p1"},
  "dateTime": "2026-02-01",
  "provision": {"type": "deny"}
}"#;

fn errors_of(partners: &str, agreements: &[&str], consents: &[&str]) -> Vec<String> {
    let mut sources = PolicySources::new(
        SourceFile::new("partners.toml", partners),
        agreements
            .iter()
            .enumerate()
            .map(|(i, t)| SourceFile::new(format!("a{i}.toml"), *t))
            .collect(),
    );
    sources.consents = consents
        .iter()
        .enumerate()
        .map(|(i, t)| SourceFile::new(format!("c{i}.json"), *t))
        .collect();
    match PolicySet::compile_sources(&sources) {
        Ok(_) => Vec::new(),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

fn agreement_errors(text: &str) -> Vec<String> {
    errors_of(PARTNERS, &[text], &[])
}

#[test]
fn the_reference_files_are_valid() {
    assert_eq!(
        errors_of(PARTNERS, &[AGREEMENT], &[CONSENT]),
        Vec::<String>::new()
    );
}

#[test]
fn wrong_types_are_located_at_the_value() {
    let e = agreement_errors(&AGREEMENT.replace("version = 1", "version = \"one\""));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with("a0.toml:2:11: `version`: "), "{e:?}");
    let e = agreement_errors(&AGREEMENT.replace("parties = [\"a\", \"b\"]", "parties = \"a\""));
    assert!(e[0].starts_with("a0.toml:5:11: `parties`: "), "{e:?}");
}

#[test]
fn unknown_keys_are_located_at_the_key_all_at_once() {
    let e = agreement_errors(
        &AGREEMENT
            .replace("redact =", "redcat =")
            .replace("reason = \"never\"", "reason = \"never\"\nwhy = \"x\""),
    );
    assert_eq!(e.len(), 2, "{e:?}");
    assert_eq!(e[0], "a0.toml:15:1: unknown key `grant[0].redcat`");
    assert_eq!(e[1], "a0.toml:23:1: unknown key `forbid[0].why`");
}

#[test]
fn bad_dates_are_located() {
    let e =
        agreement_errors(&AGREEMENT.replace("expires = 2026-12-31", "expires = \"2026-12-31\""));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("a0.toml:7:11: `expires` must be a date"),
        "{e:?}"
    );
    let e = agreement_errors(&AGREEMENT.replace("expires = 2026-12-31", "expires = 2026-02-30"));
    assert!(e[0].starts_with("a0.toml:7:11: "), "{e:?}");
    let e =
        agreement_errors(&AGREEMENT.replace("effective = 2026-01-01", "effective = 2027-01-01"));
    assert!(
        e[0].starts_with("a0.toml:7:11: `expires` must be after"),
        "{e:?}"
    );
}

#[test]
fn dangling_references_are_located() {
    let e =
        agreement_errors(&AGREEMENT.replace("sensitive = [\"part2\"]", "sensitive = [\"part3\"]"));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("a0.toml:16:14: sensitivity category `part3` is not defined"),
        "{e:?}"
    );
    let e = agreement_errors(&AGREEMENT.replace(
        "recipients = [\"a\"]",
        "recipients = [\"a\"]\ncohort = \"nobody\"",
    ));
    assert!(
        e[0].starts_with("a0.toml:13:10: cohort `nobody` is not defined"),
        "{e:?}"
    );
    let e = agreement_errors(&AGREEMENT.replace("Patient.address", "Patient.adress"));
    assert!(
        e[0] == "a0.toml:15:11: unknown element Patient.adress (did you mean Patient.address?)",
        "{e:?}"
    );
    let e = agreement_errors(&AGREEMENT.replace("Observation?category", "Condition?category"));
    assert!(
        e[0].starts_with("a0.toml:17:16: constraint on `Condition`"),
        "{e:?}"
    );
}

#[test]
fn duplicate_ids_are_located() {
    let e = errors_of(PARTNERS, &[AGREEMENT, AGREEMENT], &[]);
    assert_eq!(
        e,
        vec!["a1.toml:1:6: agreement id `dua` is also used by a0.toml"]
    );
    let e = agreement_errors(&AGREEMENT.replace("id = \"f\"", "id = \"g\""));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("a0.toml:20:6: rule `g` is declared twice"),
        "{e:?}"
    );
    let e = errors_of(
        &format!("{PARTNERS}\n[[partner]]\nid = \"a\"\nname = \"A2\"\nstatus = \"active\"\n"),
        &[],
        &[],
    );
    assert_eq!(e, vec!["partners.toml:12:6: partner `a` is declared twice"]);
}

#[test]
fn invalid_consents_are_located() {
    let e = errors_of(
        PARTNERS,
        &[],
        &[&CONSENT.replace("\"2026-02-01\"", "\"yesterday\"")],
    );
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("c0.json:8:15: `dateTime` must be a FHIR dateTime"),
        "{e:?}"
    );
    let e = errors_of(PARTNERS, &[], &[&CONSENT.replace("\"deny\"", "\"maybe\"")]);
    assert!(
        e[0].starts_with("c0.json:9:25: provision type `maybe`"),
        "{e:?}"
    );
    let e = errors_of(
        PARTNERS,
        &[],
        &[&CONSENT.replace("\"status\"", "\"statsu\"")],
    );
    assert!(
        e.iter()
            .any(|m| m.starts_with("c0.json:4:3: `statsu` is not an element of Consent")),
        "{e:?}"
    );
    let e = errors_of(
        PARTNERS,
        &[],
        &[&CONSENT.replace("\"id\": \"c1\",", "\"id\": \"c1\"")],
    );
    assert!(e[0].starts_with("c0.json:4:3: invalid JSON"), "{e:?}");
}

/// Consents are checked as FHIR R4 (official JSON Schema and fhirbolt's
/// model) beyond what Accord reads from them, each problem located.
#[test]
fn consents_are_validated_as_fhir_r4_with_locations() {
    let bad_status = errors_of(PARTNERS, &[], &[&CONSENT.replace("\"active\"", "\"on\"")]);
    assert_eq!(bad_status.len(), 1, "{bad_status:?}");
    assert!(
        bad_status[0].starts_with("c0.json:4:13: `status` `on` is not a Consent status"),
        "{bad_status:?}"
    );
    let nested_unknown = errors_of(
        PARTNERS,
        &[],
        &[&CONSENT.replace(
            "\"scope\": {\"coding\": [{\"code\"",
            "\"scope\": {\"coding\": [{\"kode\"",
        )],
    );
    assert!(
        nested_unknown
            .iter()
            .any(|m| m
                .starts_with("c0.json:5:25: Consent.scope.coding[0].kode: Additional properties")),
        "{nested_unknown:?}"
    );
    let wrong_type = errors_of(
        PARTNERS,
        &[],
        &[&CONSENT.replace(
            "\"patient\": {\"reference\": \"Patient/p1\"},",
            "\"patient\": {\"reference\": \"Patient/p1\", \"display\": 7},",
        )],
    );
    assert!(
        wrong_type
            .iter()
            .any(|m| m.starts_with("c0.json:7:53: Consent.patient.display:")),
        "{wrong_type:?}"
    );
    let missing_role = errors_of(
        PARTNERS,
        &[],
        &[&CONSENT.replace(
            "\"provision\": {\"type\": \"deny\"}",
            "\"provision\": {\"type\": \"deny\", \"actor\": [{\"reference\": {\"reference\": \"Organization/a\"}}]}",
        )],
    );
    assert!(
        missing_role.iter().any(|m| m.starts_with(
            "c0.json:9:43: Consent.provision.actor[0]: \"role\" is a required property"
        )),
        "{missing_role:?}"
    );
    for errors in [&bad_status, &nested_unknown, &wrong_type, &missing_role] {
        assert_located(errors);
    }
}

/// Every error names a position inside the file it blames.
fn assert_located(errors: &[String]) {
    for e in errors {
        let mut parts = e.splitn(4, ':');
        let file = parts.next().unwrap();
        let line: usize = parts
            .next()
            .unwrap()
            .parse()
            .unwrap_or_else(|_| panic!("{e}"));
        let col: usize = parts
            .next()
            .unwrap()
            .parse()
            .unwrap_or_else(|_| panic!("{e}"));
        assert!(file.ends_with(".toml") || file.ends_with(".json"), "{e}");
        assert!(line >= 1 && col >= 1, "{e}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn mutated_agreements_never_panic_and_errors_are_located(
        cut in 0usize..AGREEMENT.len(),
        len in 0usize..12,
        insert in "[a-z\\[\\]\"=.,0-9 \n-]{0,8}",
    ) {
        let mut text = AGREEMENT.to_owned();
        let start = (0..=cut).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
        let end = (start + len).min(text.len());
        text.replace_range(start..end, &insert);
        assert_located(&agreement_errors(&text));
    }

    #[test]
    fn mutated_consents_never_panic_and_errors_are_located(
        cut in 0usize..CONSENT.len(),
        len in 0usize..8,
        insert in "[a-z{}\\[\\]\":,0-9 -]{0,6}",
    ) {
        let mut text = CONSENT.to_owned();
        let end = (cut + len).min(text.len());
        text.replace_range(cut..end, &insert);
        assert_located(&errors_of(PARTNERS, &[], &[&text]));
    }

    #[test]
    fn random_text_never_panics(text in "\\PC{0,200}") {
        assert_located(&agreement_errors(&text));
        assert_located(&errors_of(PARTNERS, &[], &[&text]));
    }
}
