//! `accord policy explain` and `accord policy diff` say what the gateway
//! decides: run as a process over the shipped policies and fixtures.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)] // test code: a panic is a failed test

use std::path::{Path, PathBuf};
use std::process::Command;

const AT: &str = "2026-06-15T12:00:00Z";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn accord(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_accord"))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

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

fn policies_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&root().join("policies"), dir.path());
    dir
}

#[test]
fn explain_says_referral_membership_is_unknown_instead_of_permit() {
    let (ok, out, err) = accord(&[
        "policy",
        "explain",
        "--partner",
        "st-brigid",
        "--purpose",
        "TREAT",
        "GET /Condition?patient=Patient/pat-0003",
        "--at",
        AT,
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains(
            "referral membership: unknown without the upstream — pass --upstream URL to look it up"
        ),
        "{out}"
    );
    assert!(!out.contains("=> PERMIT"), "{out}");
    assert!(out.contains("=> UNKNOWN"), "{out}");
}

#[test]
fn explain_says_the_consent_denies_part2_and_does_not_list_it_as_released() {
    let (ok, out, err) = accord(&[
        "policy",
        "explain",
        "--partner",
        "st-brigid",
        "--purpose",
        "TREAT",
        "GET /Condition?patient=Patient/pat-0003",
        "--at",
        AT,
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("does not permit `part2`") && out.contains("to `st-brigid` for TREAT"),
        "{out}"
    );
    let released = out
        .lines()
        .find(|l| l.contains("sensitive categories released:"))
        .unwrap_or_default();
    assert!(!released.contains("part2"), "{released}");
}

#[test]
fn explain_with_fixtures_resolves_referrals_and_checks_each_resource() {
    let (ok, out, err) = accord(&[
        "policy",
        "explain",
        "--partner",
        "st-brigid",
        "--purpose",
        "TREAT",
        "GET /Condition?patient=Patient/pat-0003",
        "--at",
        AT,
        "--fixtures",
        "fixtures/population",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("inside the referral cohort"), "{out}");
    assert!(out.contains("=> PERMIT"), "{out}");
    assert!(out.contains("Condition/cond-0003-"), "{out}");
    assert!(!out.contains("referral membership: unknown"), "{out}");
}

#[test]
fn diff_reports_patients_removed_from_a_cohort_group() {
    let new = policies_copy();
    let group = new.path().join("cohorts/lakeshore-attributed.group.json");
    let text = std::fs::read_to_string(&group).unwrap();
    let text = text
        .replace(
            ",\n    {\"entity\": {\"reference\": \"Patient/pat-0005\"}}",
            "",
        )
        .replace(
            ",\n    {\"entity\": {\"reference\": \"Patient/pat-0008\"}}",
            "",
        );
    std::fs::write(&group, text).unwrap();
    let (ok, out, err) = accord(&[
        "policy",
        "diff",
        "policies",
        new.path().to_str().unwrap(),
        "--at",
        AT,
        "--fixtures",
        "fixtures/population",
    ]);
    assert!(ok, "{err}");
    assert!(
        !out.contains("no change in what any partner may access"),
        "{out}"
    );
    assert!(
        out.contains("may no longer be read for 2 patients (pat-0005, pat-0008)"),
        "{out}"
    );
    assert!(out.contains("`lakeshore-health-plan`"), "{out}");
}

#[test]
fn diff_reports_a_new_opt_out_consent_over_the_shipped_fixtures() {
    let new = policies_copy();
    let consent = std::fs::read_to_string(new.path().join("consents/pat-0002-opt-out.json"))
        .unwrap()
        .replace("pat-0002", "pat-0004");
    std::fs::write(new.path().join("consents/pat-0004-opt-out.json"), consent).unwrap();
    // No --fixtures: the shipped population is the default.
    let (ok, out, err) = accord(&[
        "policy",
        "diff",
        "policies",
        new.path().to_str().unwrap(),
        "--at",
        AT,
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("decisions over 40 patients"), "{out}");
    assert!(
        out.contains("may no longer be read for 1 patient (pat-0004)"),
        "{out}"
    );
    assert!(
        !out.contains("no change in what any partner may access"),
        "{out}"
    );
}
