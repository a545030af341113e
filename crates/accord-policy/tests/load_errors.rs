//! Policy files with mistakes are refused with `file:line:col` errors.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)] // test code: a panic is a failed test

use accord_policy::{PolicySet, SourceFile};

const PARTNERS: &str = r#"
[[partner]]
id = "a"
name = "A"
status = "active"
spki_sha256 = ["0000000000000000000000000000000000000000000000000000000000000001"]

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
resources = ["Patient"]
interactions = ["read"]
"#;

fn errors(agreement: &str) -> Vec<String> {
    let partners = SourceFile::new("partners.toml", PARTNERS);
    let agreement = SourceFile::new("dua.toml", agreement);
    match PolicySet::compile(&partners, &[agreement]) {
        Ok(_) => Vec::new(),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn the_reference_agreement_compiles() {
    assert_eq!(errors(AGREEMENT), Vec::<String>::new());
}

#[test]
fn misspelled_keys_are_errors_not_silently_ignored() {
    let e = errors(&AGREEMENT.replace("interactions =", "interaction ="));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with("dua.toml:14:1: "), "{e:?}");
    assert!(e[0].contains("interaction"), "{e:?}");
}

#[test]
fn unknown_resource_types_purposes_and_interactions_are_located() {
    let e = errors(&AGREEMENT.replace("[\"Patient\"]", "[\"Patients\"]"));
    assert!(
        e[0].starts_with("dua.toml:13:14: ") && e[0].contains("`Patients`"),
        "{e:?}"
    );
    let e = errors(&AGREEMENT.replace("[\"TREAT\"]", "[\"TREATMENT\"]"));
    assert!(
        e[0].starts_with("dua.toml:8:13: ") && e[0].contains("TREATMENT"),
        "{e:?}"
    );
    let e = errors(&AGREEMENT.replace("[\"read\"]", "[\"read\", \"peek\"]"));
    assert!(
        e[0].starts_with("dua.toml:14:25: ") && e[0].contains("unknown interaction `peek`"),
        "{e:?}"
    );
}

#[test]
fn cross_references_are_checked() {
    let e = errors(&AGREEMENT.replace("recipients = [\"a\"]", "recipients = [\"c\"]"));
    assert!(
        e.iter()
            .any(|m| m.starts_with("dua.toml:12:15: ") && m.contains("`c` is not a party")),
        "{e:?}"
    );
    let e = errors(&AGREEMENT.replace("parties = [\"a\", \"b\"]", "parties = [\"a\", \"z\"]"));
    assert!(
        e.iter()
            .any(|m| m.starts_with("dua.toml:5:17: ") && m.contains("`z` is not in partners.toml")),
        "{e:?}"
    );
    let e = errors(&AGREEMENT.replace("expires = 2026-12-31", "expires = 2025-12-31"));
    assert!(
        e.iter()
            .any(|m| m.starts_with("dua.toml:7:11: ") && m.contains("after")),
        "{e:?}"
    );
    let e = errors(&AGREEMENT.replace("expires = 2026-12-31", "expires = 2026-12-31T00:00:00"));
    assert!(e.iter().any(|m| m.contains("no time zone offset")), "{e:?}");
}

#[test]
fn every_error_is_reported_not_just_the_first() {
    let bad = AGREEMENT
        .replace("recipients = [\"a\"]", "recipients = [\"c\"]")
        .replace("version = 1", "version = 0");
    assert_eq!(errors(&bad).len(), 2);
}

#[test]
fn duplicate_pins_across_partners_are_refused() {
    let partners = SourceFile::new(
        "partners.toml",
        PARTNERS.replace(
            "id = \"b\"\nname = \"B\"\nstatus = \"active\"",
            "id = \"b\"\nname = \"B\"\nstatus = \"active\"\nspki_sha256 = [\"0000000000000000000000000000000000000000000000000000000000000001\"]",
        ),
    );
    let err = PolicySet::compile(&partners, &[]).unwrap_err().to_string();
    assert!(err.contains("already assigned to partner `a`"), "{err}");
}

#[test]
fn load_dir_reads_the_shipped_policies() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
    let set = PolicySet::load_dir(&dir).unwrap();
    assert_eq!(set.partners().count(), 8);
    assert_eq!(set.agreements().len(), 8);
    assert_eq!(set.consents().len(), 2);
}

#[test]
fn a_partner_address_is_loaded_and_a_blank_one_is_none() {
    let partners = PARTNERS
        .replace(
            "name = \"A\"\n",
            "name = \"A\"\naddress = \"1 Main Street, Springfield, IL 62701\"\n",
        )
        .replace("name = \"B\"\n", "name = \"B\"\naddress = \"  \"\n");
    let set = PolicySet::compile(
        &SourceFile::new("partners.toml", &partners),
        &[SourceFile::new("dua.toml", AGREEMENT)],
    )
    .unwrap();
    let address = |id: &str| {
        set.partners()
            .find(|p| p.id.to_string() == id)
            .unwrap()
            .address
            .clone()
    };
    assert_eq!(
        address("a").as_deref(),
        Some("1 Main Street, Springfield, IL 62701")
    );
    assert_eq!(address("b"), None);

    let wrong = PARTNERS.replace("name = \"A\"\n", "name = \"A\"\naddress = 5\n");
    let errors = match PolicySet::compile(
        &SourceFile::new("partners.toml", &wrong),
        &[SourceFile::new("dua.toml", AGREEMENT)],
    ) {
        Ok(_) => panic!("a numeric address was accepted"),
        Err(e) => e.0.iter().map(ToString::to_string).collect::<Vec<_>>(),
    };
    assert!(
        errors.iter().any(|e| e.starts_with("partners.toml:5:")),
        "{errors:?}"
    );
}

#[test]
fn the_shipped_partners_give_their_addresses() {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies/partners.toml"),
    )
    .unwrap();
    let set = PolicySet::compile(&SourceFile::new("partners.toml", &text), &[]).unwrap();
    assert!(set.partners().count() > 1);
    for partner in set.partners() {
        assert!(partner.address.is_some(), "{} has no address", partner.id);
    }
}
