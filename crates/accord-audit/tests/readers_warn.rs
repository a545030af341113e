//! Every reader warns on a tampered log: a signed record changed and its
//! checksum recomputed (so the frame reads fine) is named by `query`,
//! `reindex` (then any query), the accounting of disclosures and `prove`,
//! with the checkpoint it fails against; every record is still answered.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::cast_possible_truncation
)]

use std::fs;
use std::path::{Path, PathBuf};

use accord_audit::query::{Filter, checked};
use accord_audit::report::accounting;
use accord_audit::segment::{self, encode_frame};
use accord_audit::{
    AuditRecord, AuditSink, AuditStore, DecisionKind, Index, PatientRelease, Signer, StoreOptions,
    TypeCounts, integrity,
};

const RECORDS: usize = 200;
const TAMPERED: u64 = 120;

fn record(i: usize) -> AuditRecord {
    AuditRecord {
        request_id: format!("req-{i}"),
        partner: Some("acme".into()),
        peer: "10.0.0.1:4431".into(),
        method: "GET".into(),
        target: "/Observation?patient=Patient/7".into(),
        decision: DecisionKind::Permit,
        rule: "grant g1 of agreement a1".into(),
        patients: vec![PatientRelease {
            patient: "Patient/7".into(),
            sensitivity: Vec::new(),
            resources: vec![TypeCounts {
                resource_type: "Observation".into(),
                released: 1,
                ..TypeCounts::default()
            }],
        }],
        status: 200,
        ..AuditRecord::default()
    }
}

/// 200 records, a checkpoint every 50, indexed as written; closed.
fn signed_log() -> (tempfile::TempDir, PathBuf, Signer) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("audit");
    let key = Signer::generate("readers.test/audit").unwrap();
    let options = StoreOptions {
        signer: Some(Signer::parse(&key.encode()).unwrap()),
        ..StoreOptions::default()
    };
    let (store, _) = AuditStore::open_with(&dir, options).unwrap();
    for i in 0..RECORDS {
        store.append(&record(i)).unwrap();
        if i % 50 == 49 {
            store.checkpoint().unwrap();
        }
    }
    store.close();
    (tmp, dir, key)
}

/// An insider's edit: record `seq`'s partner becomes `evil` (same length)
/// and its checksum is recomputed, so the frame reads as sound.
fn tamper(dir: &Path, seq: u64) {
    let seg = segment::list(dir).unwrap().unwrap().remove(0);
    let bytes = fs::read(&seg.path).unwrap();
    let frame = segment::scan(&seg, &bytes)
        .frames
        .into_iter()
        .find(|f| f.seq == seq)
        .unwrap();
    let text = String::from_utf8(frame.payload.clone()).unwrap();
    let edited = text.replace("\"partner\":\"acme\"", "\"partner\":\"evil\"");
    assert_ne!(edited, text);
    let mut framed = Vec::new();
    encode_frame(edited.as_bytes(), &mut framed);
    let mut out = bytes;
    let at = frame.offset as usize;
    out[at..at + framed.len()].copy_from_slice(&framed);
    fs::write(&seg.path, out).unwrap();
    assert_eq!(accord_audit::read_records(dir).unwrap().len(), RECORDS);
}

fn all() -> Filter {
    Filter::default()
}

#[test]
fn an_untouched_log_answers_without_warnings() {
    let (_tmp, dir, _key) = signed_log();
    let index = Index::open(&dir).unwrap();
    index.catch_up().unwrap();
    let answer = checked(&index, &all()).unwrap();
    assert_eq!(answer.records.len(), RECORDS);
    assert!(answer.warnings.is_empty(), "{:?}", answer.warnings);
    let integrity = integrity::check(&index).unwrap();
    assert_eq!(integrity.checked, RECORDS as u64);
    assert_eq!(integrity.latest, RECORDS as u64);
}

#[test]
fn a_record_changed_after_it_was_indexed_is_named_by_query_and_disclosures() {
    let (_tmp, dir, _key) = signed_log();
    tamper(&dir, TAMPERED);
    let index = Index::open(&dir).unwrap();
    index.catch_up().unwrap();
    let answer = checked(&index, &all()).unwrap();
    assert_eq!(answer.records.len(), RECORDS, "every record is answered");
    assert!(
        answer
            .warnings
            .iter()
            .any(|w| w.starts_with(&format!("record {TAMPERED} does not match"))),
        "{:?}",
        answer.warnings
    );
    assert_eq!(answer.warnings.len(), 1, "{:?}", answer.warnings);
    let report = accounting(&index, "Patient/7", None, time::OffsetDateTime::now_utc()).unwrap();
    assert_eq!(report.disclosures.len(), RECORDS);
    assert!(
        report.warnings.iter().any(|w| w.contains("record 120")),
        "{:?}",
        report.warnings
    );
    assert!(report.to_text().contains("WARNING: record 120"));
}

#[test]
fn a_record_changed_before_reindex_is_named_with_its_checkpoint() {
    let (_tmp, dir, _key) = signed_log();
    tamper(&dir, TAMPERED);
    let index = Index::open(&dir).unwrap();
    assert_eq!(index.rebuild().unwrap(), RECORDS as u64);
    let integrity = integrity::check(&index).unwrap();
    assert_eq!(integrity.checked, 100, "checkpoints 50 and 100 still match");
    let problems: Vec<String> = integrity.problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        problems,
        [
            "records 101–150 do not match the signed checkpoint of 150 records: one of them was changed, removed, added or reordered after it was signed"
        ]
    );
    let answer = checked(&index, &all()).unwrap();
    assert_eq!(answer.records.len(), RECORDS, "every record is answered");
    assert!(
        answer
            .warnings
            .iter()
            .any(|w| w.contains("records 101–150")),
        "{:?}",
        answer.warnings
    );
    assert!(
        answer.warnings.iter().any(|w| w.contains("151–200")),
        "records after the mismatch are said to be unchecked: {:?}",
        answer.warnings
    );
    // Again, from the remembered right edge: the same answer.
    assert_eq!(integrity::check(&index).unwrap(), integrity);
}

#[test]
fn prove_answers_intact_records_and_names_the_mismatch() {
    let (_tmp, dir, key) = signed_log();
    tamper(&dir, TAMPERED);
    let proof = accord_audit::proof::prove(&dir, 60).unwrap();
    accord_audit::proof::check(&proof, &key.verifier()).unwrap();
    let err = accord_audit::proof::prove(&dir, TAMPERED)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("records 101–150 do not match the signed checkpoint of 150 records"),
        "{err}"
    );
}
