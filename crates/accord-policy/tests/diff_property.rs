//! `diff` reports a change exactly when the decision over the fixture
//! population changes, with the right affected patients: random edits to
//! copies of the example policies, the expected result computed by brute
//! force with `decide` and `check_resource`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)] // test code: a panic is a failed test

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use accord_fhir::{InteractionKind, Purpose};
use accord_policy::diff::diff;
use accord_policy::{
    AccessRequest, CohortMembers, Decision, PolicySet, Population, ResourceVerdict,
};
use proptest::prelude::*;
use time::OffsetDateTime;
use time::macros::datetime;

const AT: OffsetDateTime = datetime!(2026-06-15 12:00 UTC);

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
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

/// One random edit of the example policies.
#[derive(Debug, Clone)]
enum Edit {
    RemoveGroupMembers(usize),
    AddGroupMember(u8),
    AddOptOut(u8),
    RevokeConsent(usize),
    DropType {
        file: usize,
        grant: usize,
        ty: usize,
    },
    AddRedaction {
        file: usize,
        grant: usize,
        path: usize,
    },
    AddCategory {
        file: usize,
        grant: usize,
        category: usize,
    },
    ShortenTerm {
        file: usize,
    },
    DropPurpose {
        file: usize,
        purpose: usize,
    },
    Nothing,
}

const PATHS: &[&str] = &[
    "Patient.telecom",
    "Patient.address",
    "Observation.note",
    "Condition.note",
    "Encounter.location",
];
const CATEGORIES: &[&str] = &[
    "part2",
    "mental-health",
    "hiv-sti",
    "reproductive-sexual-health",
    "genetic",
];

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (1usize..3).prop_map(Edit::RemoveGroupMembers),
        (1u8..41).prop_map(Edit::AddGroupMember),
        (1u8..41).prop_map(Edit::AddOptOut),
        (0usize..2).prop_map(Edit::RevokeConsent),
        (0usize..6, 0usize..3, 0usize..8).prop_map(|(file, grant, ty)| Edit::DropType {
            file,
            grant,
            ty
        }),
        (0usize..6, 0usize..3, 0usize..PATHS.len())
            .prop_map(|(file, grant, path)| { Edit::AddRedaction { file, grant, path } }),
        (0usize..6, 0usize..3, 0usize..CATEGORIES.len()).prop_map(|(file, grant, category)| {
            Edit::AddCategory {
                file,
                grant,
                category,
            }
        }),
        (0usize..6).prop_map(|file| Edit::ShortenTerm { file }),
        (0usize..6, 0usize..4).prop_map(|(file, purpose)| Edit::DropPurpose { file, purpose }),
        Just(Edit::Nothing),
    ]
}

/// The agreement files with grants, in name order.
fn agreement_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir.join("agreements"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| std::fs::read_to_string(p).unwrap().contains("[[grant]]"))
        .collect();
    files.sort();
    files
}

fn with_agreement(dir: &Path, file: usize, change: impl FnOnce(&mut toml::Table)) {
    let files = agreement_files(dir);
    let path = &files[file % files.len()];
    let mut table: toml::Table = std::fs::read_to_string(path).unwrap().parse().unwrap();
    change(&mut table);
    std::fs::write(path, toml::to_string(&table).unwrap()).unwrap();
}

fn grant(table: &mut toml::Table, grant: usize) -> &mut toml::Table {
    let grants = table["grant"].as_array_mut().unwrap();
    let n = grants.len();
    grants[grant % n].as_table_mut().unwrap()
}

fn apply(dir: &Path, edit: &Edit) {
    let group = dir.join("cohorts/lakeshore-attributed.group.json");
    let mut consents: Vec<_> = std::fs::read_dir(dir.join("consents"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    consents.sort();
    match edit {
        Edit::RemoveGroupMembers(n) => {
            let mut g: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&group).unwrap()).unwrap();
            let members = g["member"].as_array_mut().unwrap();
            let keep = members.len().saturating_sub(*n);
            members.truncate(keep);
            std::fs::write(&group, g.to_string()).unwrap();
        }
        Edit::AddGroupMember(p) => {
            let mut g: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&group).unwrap()).unwrap();
            let reference = format!("Patient/pat-{p:04}");
            let members = g["member"].as_array_mut().unwrap();
            if !members
                .iter()
                .any(|m| m["entity"]["reference"] == reference.as_str())
            {
                members.push(serde_json::json!({"entity": {"reference": reference}}));
            }
            std::fs::write(&group, g.to_string()).unwrap();
        }
        Edit::AddOptOut(p) => {
            let id = format!("pat-{p:04}");
            // From the shipped folder: an earlier edit may have revoked it.
            let text =
                std::fs::read_to_string(root().join("policies/consents/pat-0002-opt-out.json"))
                    .unwrap()
                    // One Consent id per patient: two added opt-outs must
                    // not share an id.
                    .replace("pat-0002-opt-out", "new-opt-out-PATIENT")
                    .replace("pat-0002", &id)
                    .replace("PATIENT", &id);
            std::fs::write(dir.join(format!("consents/{id}-opt-out-new.json")), text).unwrap();
        }
        Edit::RevokeConsent(i) => std::fs::remove_file(&consents[i % consents.len()]).unwrap(),
        Edit::DropType { file, grant: g, ty } => with_agreement(dir, *file, |t| {
            let grant = grant(t, *g);
            let resources = grant["resources"].as_array_mut().unwrap();
            if resources.len() > 1 {
                let dropped = resources.remove(ty % resources.len());
                let prefix = format!("{}.", dropped.as_str().unwrap());
                let query = format!("{}?", dropped.as_str().unwrap());
                // What named the type goes with it, or the file is invalid.
                for (key, starts) in [("redact", prefix), ("constraints", query)] {
                    if let Some(list) = grant.get_mut(key).and_then(|v| v.as_array_mut()) {
                        list.retain(|v| !v.as_str().unwrap().starts_with(&starts));
                    }
                }
            }
        }),
        Edit::AddRedaction {
            file,
            grant: g,
            path,
        } => with_agreement(dir, *file, |t| {
            let grant = grant(t, *g);
            let ty = PATHS[*path].split('.').next().unwrap();
            let shares = grant["resources"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r.as_str() == Some(ty));
            if !shares {
                return;
            }
            let redact = grant
                .entry("redact")
                .or_insert_with(|| toml::Value::Array(Vec::new()))
                .as_array_mut()
                .unwrap();
            let path = toml::Value::String(PATHS[*path].to_owned());
            if !redact.contains(&path) {
                redact.push(path);
            }
        }),
        Edit::AddCategory {
            file,
            grant: g,
            category,
        } => with_agreement(dir, *file, |t| {
            let grant = grant(t, *g);
            let sensitive = grant
                .entry("sensitive")
                .or_insert_with(|| toml::Value::Array(Vec::new()))
                .as_array_mut()
                .unwrap();
            let c = toml::Value::String(CATEGORIES[*category].to_owned());
            if !sensitive.contains(&c) {
                sensitive.push(c);
            }
        }),
        Edit::ShortenTerm { file } => with_agreement(dir, *file, |t| {
            let day: toml::value::Datetime = "2026-05-31".parse().unwrap();
            t.insert("expires".to_owned(), toml::Value::Datetime(day));
            let start: toml::value::Datetime = "2024-01-01".parse().unwrap();
            t.insert("effective".to_owned(), toml::Value::Datetime(start));
        }),
        Edit::DropPurpose { file, purpose } => with_agreement(dir, *file, |t| {
            let purposes = t["purposes"].as_array_mut().unwrap();
            if purposes.len() > 1 {
                purposes.remove(purpose % purposes.len());
            }
        }),
        Edit::Nothing => {}
    }
}

/// What one partner receives of one patient's resources of one type:
/// permitted, released resources, removed elements, released categories.
type Cell = (bool, BTreeSet<String>, BTreeSet<String>, BTreeSet<String>);

fn cell(
    set: &PolicySet,
    population: &Population,
    request: &AccessRequest<'_>,
    patient: &str,
) -> Cell {
    let ty = request.resource_type.unwrap();
    let Decision::Permit(_) = set.decide_with_narrowing(request, set.consents()) else {
        return Cell::default();
    };
    let decision = set.decide(request);
    let obligations = decision.obligations().unwrap();
    // The referral cohort's parties, and whose referrals count: the listed
    // referrers, else every party.
    let between = obligations
        .cohort
        .as_ref()
        .and_then(|c| set.cohort(c))
        .and_then(|c| match &c.members {
            CohortMembers::Referral { between, referrers } => Some((
                between.clone(),
                referrers.clone().unwrap_or_else(|| between.clone()),
            )),
            _ => None,
        });
    let member = |p: &str| {
        between.as_ref().map(|(b, senders)| {
            population
                .referrals()
                .member(set, b, senders, &obligations.partner, p)
        })
    };
    if member(patient) == Some(false) {
        return Cell::default();
    }
    let mut out: Cell = (true, BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    for record in population.records(patient, ty) {
        let mut facts = record.facts.clone();
        if obligations.source.is_some() {
            // Whose record it is, by the documented shared-server rule.
            facts.origin = set.origin_of(&record.resource, record.encounter.as_deref());
        }
        if between.is_some() {
            facts.in_referral_cohort = Some(facts.patients.iter().all(|p| member(p) == Some(true)));
        }
        match set.check_resource(obligations, &facts, set.consents(), AT) {
            ResourceVerdict::Withhold(_) => continue,
            ResourceVerdict::Redact(paths) => out.2.extend(paths),
            ResourceVerdict::Release => {}
        }
        out.1.insert(record.key.clone());
        out.3
            .extend(set.categories_of(&facts).iter().map(|c| c.id.to_string()));
    }
    out
}

/// (partner, purpose, type) → affected patients, by brute force.
fn expected(
    old: &PolicySet,
    new: &PolicySet,
    population: &Population,
) -> BTreeMap<(String, String, String), BTreeSet<String>> {
    let mut partners = BTreeSet::new();
    let mut purposes: BTreeSet<Purpose> = BTreeSet::new();
    let mut types = BTreeSet::new();
    for set in [old, new] {
        partners.extend(set.partners().map(|p| p.id.clone()));
        for a in set.agreements() {
            purposes.extend(a.purposes.iter().cloned());
            for g in &a.grants {
                types.extend(g.resources.iter().copied());
            }
        }
    }
    let mut out = BTreeMap::new();
    for partner in &partners {
        for purpose in &purposes {
            for ty in &types {
                for patient in population.patients() {
                    let request = AccessRequest {
                        partner,
                        purpose,
                        interaction: InteractionKind::Search,
                        resource_type: Some(*ty),
                        at: AT,
                        patient: Some(patient.clone()),
                        operation: None,
                    };
                    if cell(old, population, &request, patient)
                        != cell(new, population, &request, patient)
                    {
                        out.entry((
                            partner.to_string(),
                            purpose.as_str().to_owned(),
                            ty.as_str().to_owned(),
                        ))
                        .or_insert_with(BTreeSet::new)
                        .insert(patient.clone());
                    }
                }
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn diff_reports_exactly_the_decisions_that_change(edits in prop::collection::vec(edit(), 1..3)) {
        let population = Population::read_dir(&root().join("fixtures/population")).unwrap();
        let old = PolicySet::load_dir(&root().join("policies")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&root().join("policies"), dir.path());
        for e in &edits {
            apply(dir.path(), e);
        }
        let new = PolicySet::load_dir(dir.path())
            .unwrap_or_else(|e| panic!("{edits:?}: {:?}", e.0.iter().map(ToString::to_string).collect::<Vec<_>>()));
        let want = expected(&old, &new, &population);
        let d = diff(&old, &new, AT, Some(&population));
        let decisions = d.decisions.as_ref().unwrap();
        let got: BTreeMap<_, BTreeSet<String>> = decisions
            .changes
            .iter()
            .map(|c| {
                (
                    (c.partner.clone(), c.purpose.clone(), c.resource_type.clone()),
                    c.affected_patients.iter().cloned().collect(),
                )
            })
            .collect();
        prop_assert_eq!(d.decisions_unchanged(), want.is_empty(), "{:?}", edits);
        prop_assert_eq!(&got, &want, "{:?}", edits);
        for c in &decisions.changes {
            prop_assert_eq!(c.affected_patients.len(), want[&(c.partner.clone(), c.purpose.clone(), c.resource_type.clone())].len());
        }
        let text = d.to_text();
        prop_assert_eq!(want.is_empty(), !text.contains(" affected"), "{}", text);
    }
}

#[test]
fn removing_two_group_members_is_a_decision_change() {
    let population = Population::read_dir(&root().join("fixtures/population")).unwrap();
    let old = PolicySet::load_dir(&root().join("policies")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&root().join("policies"), dir.path());
    apply(dir.path(), &Edit::RemoveGroupMembers(2));
    let new = PolicySet::load_dir(dir.path()).unwrap();
    let d = diff(&old, &new, AT, Some(&population));
    let lost: BTreeSet<&str> = d
        .decisions
        .as_ref()
        .unwrap()
        .changes
        .iter()
        .filter(|c| c.partner == "lakeshore-health-plan")
        .flat_map(|c| c.patients_lost.iter().map(String::as_str))
        .collect();
    assert_eq!(
        lost,
        BTreeSet::from(["Patient/pat-0005", "Patient/pat-0008"])
    );
    assert!(
        !d.to_text()
            .contains("no change in what any partner may access")
    );
}
