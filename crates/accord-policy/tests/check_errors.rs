//! `accord policy check` reports every error of every file in one run,
//! where it is written, with a suggestion when a name is misspelled.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)] // test code: a panic is a failed test

use std::path::Path;

use accord_policy::source::SourceFile;
use accord_policy::{PolicySet, testing};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{from} in {}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

fn errors_of(dir: &Path) -> Vec<String> {
    match PolicySet::load_dir(dir) {
        Ok(_) => Vec::new(),
        Err(e) => e.0.iter().map(|e| e.to_string_with_hint()).collect(),
    }
}

#[test]
fn every_error_of_a_file_is_reported_with_suggestions() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies"),
        dir.path(),
    );
    let care = dir.path().join("agreements/care-coordination.toml");
    edit(&care, "status = \"active\"", "status = \"Active\"");
    edit(
        &care,
        "\"Condition\", \"Observation\"",
        "\"Condtion\", \"Observation\"",
    );
    edit(
        &care,
        "[\"maple-primary\", \"st-brigid\"]",
        "[\"maple-primary\", \"st-brigit\"]",
    );
    edit(&care, "\"Patient.photo\"", "\"Patient.foto\"");
    edit(&care, "expires = 2028-12-31", "expires = 2025-12-31");
    edit(
        &care,
        "[\"part2\", \"mental-health\"]",
        "[\"part-2\", \"mental-health\"]",
    );
    let all = errors_of(dir.path()).join("\n");
    let care: Vec<&str> = all
        .lines()
        .filter(|l| l.contains("care-coordination.toml:"))
        .collect();
    assert_eq!(care.len(), 6, "{all}");
    for want in [
        "did you mean `active`?",
        "did you mean `Condition`?",
        "did you mean `st-brigid`?",
        "did you mean Patient.photo?",
        "did you mean `part2`?",
        "`expires` must be after `effective`",
    ] {
        assert!(all.contains(want), "{want} in {all}");
    }
    assert!(!all.contains("unknown variant"), "{all}");
    assert!(!all.contains("no quotes"), "end-before-start hint: {all}");
}

#[test]
fn template_errors_point_at_the_instance_and_duplicates_at_the_id() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies"),
        dir.path(),
    );
    let instances = dir.path().join("agreements/clinic-network.toml");
    edit(
        &instances,
        "clinic = \"east-clinic\"",
        "clinic = \"east-clinik\"",
    );
    std::fs::copy(
        dir.path().join("agreements/payer-quality.toml"),
        dir.path().join("agreements/zz-copy.toml"),
    )
    .unwrap();
    let all = errors_of(dir.path()).join("\n");
    let instance_line = std::fs::read_to_string(&instances)
        .unwrap()
        .lines()
        .position(|l| l.contains("east-clinik"))
        .unwrap()
        + 1;
    assert!(
        all.contains(&format!("clinic-network.toml:{instance_line}:"))
            && all.contains("did you mean `east-clinic`?"),
        "{all}"
    );
    assert!(!all.contains("templates/clinic-network.toml:"), "{all}");
    let id_line = std::fs::read_to_string(dir.path().join("agreements/zz-copy.toml"))
        .unwrap()
        .lines()
        .position(|l| l.starts_with("id ="))
        .unwrap()
        + 1;
    assert!(all.contains(&format!("zz-copy.toml:{id_line}:")), "{all}");
}

#[test]
fn a_policy_test_naming_an_unknown_partner_fails() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
    let set = PolicySet::load_dir(&root).unwrap();
    let file = SourceFile::new(
        "tests/unknown.toml",
        r#"[[case]]
name = "misspelled partner"
partner = "st-brigit"
purpose = "TREAT"
request = "GET /Patient/pat-0002"
at = 2026-06-15T12:00:00Z
expect = "deny"
"#,
    );
    let report = testing::run_tests(&set, &[file]).unwrap();
    assert_eq!(report.failed(), 1, "{}", report.to_text());
    let text = report.to_text();
    assert!(
        text.contains("partner `st-brigit` is not in partners.toml")
            && text.contains("did you mean `st-brigid`?"),
        "{text}"
    );
}
