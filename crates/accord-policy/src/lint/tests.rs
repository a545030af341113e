use time::macros::datetime;

use crate::PolicySet;
use crate::source::SourceFile;

const PARTNERS: &str = r#"
[[partner]]
id = "alpha"
name = "Alpha Clinic"
status = "active"
spki_sha256 = ["0000000000000000000000000000000000000000000000000000000000000001"]

[[partner]]
id = "beta"
name = "Beta Hospital"
status = "active"
spki_sha256 = ["0000000000000000000000000000000000000000000000000000000000000002"]
"#;

fn agreement(id: &str, body: &str) -> String {
    format!(
        "id = \"{id}\"\nversion = 1\ntitle = \"{id}\"\nstatus = \"active\"\nparties = [\"alpha\", \"beta\"]\neffective = 2026-01-01\nexpires = 2026-12-31\npurposes = [\"TREAT\", \"HOPERAT\"]\n{body}"
    )
}

fn lint(files: &[(&str, String)]) -> Vec<String> {
    let partners = SourceFile::new("partners.toml", PARTNERS);
    let agreements: Vec<_> = files
        .iter()
        .map(|(name, text)| SourceFile::new(*name, text.clone()))
        .collect();
    let set = PolicySet::compile(&partners, &agreements).unwrap();
    set.lint(datetime!(2026-06-15 12:00 UTC))
        .iter()
        .map(ToString::to_string)
        .collect()
}

const GRANT_OBS: &str = "\n[[grant]]\nid = \"labs\"\nrecipients = [\"beta\"]\nresources = [\"Observation\"]\ninteractions = [\"read\", \"search\"]\n";

#[test]
fn clean_agreement_has_no_warnings() {
    assert_eq!(
        lint(&[("a.toml", agreement("a", GRANT_OBS))]),
        Vec::<String>::new()
    );
}

#[test]
fn expired_and_future_agreements_are_located_at_their_dates() {
    let expired =
        agreement("old", GRANT_OBS).replace("expires = 2026-12-31", "expires = 2026-03-31");
    let future =
        agreement("new", GRANT_OBS).replace("effective = 2026-01-01", "effective = 2026-09-01");
    let warnings = lint(&[("old.toml", expired), ("new.toml", future)]);
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings[0].starts_with("old.toml:7:11: agreement `old` expired on 2026-03-31"),
        "{warnings:?}"
    );
    assert!(
        warnings[1].starts_with("new.toml:1:6: agreement `new` is not yet effective"),
        "{warnings:?}"
    );
}

#[test]
fn grant_purpose_outside_the_agreement_is_located_at_the_grant_purposes() {
    let body = format!("{GRANT_OBS}purposes = [\"PUBHLTH\"]\n");
    let warnings = lint(&[("a.toml", agreement("a", &body))]);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with(
            "a.toml:15:12: grant `labs` names purpose `PUBHLTH` that agreement `a` does not permit: the grant can never be used"
        ),
        "{warnings:?}"
    );
}

#[test]
fn grant_shadowed_by_a_forbid_is_unreachable_and_names_the_forbid() {
    let forbid =
        "\n[[forbid]]\nid = \"no-obs\"\nreason = \"never\"\nresources = [\"Observation\"]\n";
    let warnings = lint(&[("a.toml", agreement("a", &format!("{GRANT_OBS}{forbid}")))]);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(
        warnings[0],
        "a.toml:11:6: grant `labs` of `a` is unreachable: forbid `no-obs` of `a` (a.toml:17:6) denies everything it grants"
    );
    // A forbid of one purpose leaves the other reachable.
    let partial = format!("{GRANT_OBS}{forbid}purposes = [\"HOPERAT\"]\n");
    assert_eq!(
        lint(&[("a.toml", agreement("a", &partial))]),
        Vec::<String>::new()
    );
}

#[test]
fn overlapping_grants_within_an_agreement_are_located_at_the_second() {
    let body = format!(
        "{GRANT_OBS}\n[[grant]]\nid = \"labs-again\"\nrecipients = [\"beta\"]\nresources = [\"Observation\", \"Condition\"]\ninteractions = [\"read\"]\n"
    );
    let warnings = lint(&[("a.toml", agreement("a", &body))]);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with(
            "a.toml:17:6: grants `labs` (a.toml:11:6) and `labs-again` of `a` overlap (e.g. `beta` HOPERAT read Observation)"
        ),
        "{warnings:?}"
    );
}

#[test]
fn contradictory_grants_across_agreements_name_both_and_say_which_wins() {
    let first = agreement("first", GRANT_OBS);
    let second = agreement(
        "second",
        &format!("{GRANT_OBS}redact = [\"Observation.note\"]\n"),
    );
    let warnings = lint(&[("a.toml", first), ("b.toml", second)]);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let w = &warnings[0];
    assert!(
        w.starts_with("b.toml:11:6: grant `labs` of `second` and grant `labs` of `first` (a.toml:11:6) both cover `beta` HOPERAT read Observation with different redactions"),
        "{w}"
    );
    assert!(w.contains("`first` comes first in file-name order"), "{w}");
}

#[test]
fn same_obligations_or_disjoint_terms_across_agreements_are_not_contradictions() {
    let same = lint(&[
        ("a.toml", agreement("first", GRANT_OBS)),
        ("b.toml", agreement("second", GRANT_OBS)),
    ]);
    assert_eq!(same, Vec::<String>::new());
    let later = agreement(
        "later",
        &format!("{GRANT_OBS}redact = [\"Observation.note\"]\n"),
    )
    .replace("effective = 2026-01-01", "effective = 2027-01-01")
    .replace("expires = 2026-12-31", "expires = 2027-12-31");
    let warnings = lint(&[("a.toml", agreement("first", GRANT_OBS)), ("b.toml", later)]);
    assert!(
        warnings.iter().all(|w| !w.contains("both cover")),
        "{warnings:?}"
    );
}

#[test]
fn grant_limited_to_a_purpose_is_not_used_for_others() {
    use accord_fhir::{InteractionKind, Purpose, ResourceType};

    use crate::{AccessRequest, PartnerId};
    let body = format!("{GRANT_OBS}purposes = [\"HOPERAT\"]\n");
    let partners = SourceFile::new("partners.toml", PARTNERS);
    let set = PolicySet::compile(
        &partners,
        &[SourceFile::new("a.toml", agreement("a", &body))],
    )
    .unwrap();
    let beta = PartnerId::parse("beta").unwrap();
    let ask = |purpose: &str| {
        let purpose = Purpose::parse(purpose).unwrap();
        set.decide(&AccessRequest {
            partner: &beta,
            purpose: &purpose,
            interaction: InteractionKind::Read,
            resource_type: Some(ResourceType::parse("Observation").unwrap()),
            at: datetime!(2026-06-15 12:00 UTC),
            patient: Some("Patient/1".to_owned()),
            operation: None,
        })
        .is_permit()
    };
    assert!(ask("HOPERAT"));
    assert!(!ask("TREAT"));
}
