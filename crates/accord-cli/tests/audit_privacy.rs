//! `accord audit query | disclosures | export | reindex` through the binary,
//! on a log written by the store (which indexes as it goes).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)] // test code: a panic is a failed test

use std::path::Path;
use std::process::{Command, Output};

use accord_audit::{
    AgreementRef, AuditRecord, AuditSink, AuditStore, DecisionKind, PatientRelease, TypeCounts,
};
use time::macros::datetime;

fn accord(dir: &Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_accord"))
        .arg("audit")
        .args(args)
        .arg("--dir")
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "accord audit {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn record(i: u64) -> AuditRecord {
    let patient = format!("Patient/{}", i % 4);
    AuditRecord {
        time: datetime!(2025-01-01 00:00 UTC) + time::Duration::hours(i as i64),
        request_id: format!("req-{i}"),
        partner: Some(if i.is_multiple_of(2) { "maple" } else { "oak" }.into()),
        partner_name: Some("Maple <b>Clinic</b>, \"East\"".into()),
        partner_address: Some("1 Main St".into()),
        peer: "10.0.0.9:4431".into(),
        purpose: Some("TREAT".into()),
        method: "GET".into(),
        target: format!("/Condition?patient={patient}"),
        path: Some("/Condition".into()),
        query: Some(format!("patient={patient}")),
        interaction: Some("search-type".into()),
        resource_type: Some("Condition".into()),
        decision: if i % 5 == 4 {
            DecisionKind::Deny
        } else {
            DecisionKind::Permit
        },
        rule: "grant".into(),
        agreement: Some(AgreementRef {
            id: "dua-1".into(),
            version: 2,
            grant: "g".into(),
        }),
        patients: vec![PatientRelease {
            patient,
            sensitivity: if i % 4 == 1 {
                vec!["42CFRPart2".into()]
            } else {
                vec![]
            },
            resources: vec![TypeCounts {
                resource_type: "Condition".into(),
                released: u32::from(i % 5 != 4) * 3,
                ..TypeCounts::default()
            }],
        }],
        status: if i % 5 == 4 { 403 } else { 200 },
        ..AuditRecord::default()
    }
}

fn write_log(dir: &Path, range: std::ops::Range<u64>) -> AuditStore {
    // The key goes beside the directory and is not needed once open.
    let key = dir.with_extension("key");
    let (store, _) = AuditStore::open(dir, &key).unwrap();
    let _ = std::fs::remove_file(&key);
    let _ = std::fs::remove_file(key.with_extension("pub"));
    for i in range {
        store.append(&record(i)).unwrap();
    }
    store
}

#[test]
fn query_filters_and_formats() {
    let tmp = tempfile::tempdir().unwrap();
    write_log(tmp.path(), 0..40).close();
    let json = stdout(&accord(
        tmp.path(),
        &["query", "--patient", "Patient/1", "--json"],
    ));
    let records: Vec<AuditRecord> = serde_json::from_str(&json).unwrap();
    let seqs: Vec<u64> = records.iter().map(|r| r.seq).collect();
    assert_eq!(
        seqs,
        (0..40)
            .filter(|i| i % 4 == 1)
            .map(|i| i + 1)
            .collect::<Vec<_>>()
    );

    let csv = stdout(&accord(
        tmp.path(),
        &["query", "--partner", "oak", "--decision", "deny", "--csv"],
    ));
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("seq,time,partner"), "{csv}");
    // i odd and i % 5 == 4: 9, 19, 29, 39.
    assert_eq!(lines.len(), 5, "{csv}");
    assert!(
        lines[1].starts_with("10,2025-01-01T09:00:00Z,oak,"),
        "{csv}"
    );

    let table = stdout(&accord(
        tmp.path(),
        &[
            "query",
            "--since",
            "2025-01-01T10:00:00Z",
            "--until",
            "2025-01-01T12:00:00Z",
            "--agreement",
            "dua-1",
            "--purpose",
            "TREAT",
        ],
    ));
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("SEQ"), "{table}");
    assert_eq!(lines.len(), 3, "{table}");
    let none = stdout(&accord(tmp.path(), &["query", "--since", "1d", "--json"]));
    assert_eq!(none.trim(), "[]");
}

#[test]
fn a_running_store_lends_its_index_to_the_tools() {
    let tmp = tempfile::tempdir().unwrap();
    let store = write_log(tmp.path(), 0..20);
    // The store holds the index (sled's lock); the tool asks for it.
    let json = stdout(&accord(
        tmp.path(),
        &["query", "--patient", "Patient/2", "--json"],
    ));
    let records: Vec<AuditRecord> = serde_json::from_str(&json).unwrap();
    assert_eq!(records.len(), 5);
    // The store indexes again afterwards.
    for i in 20..24 {
        store.append(&record(i)).unwrap();
    }
    store.close();
    let json = stdout(&accord(
        tmp.path(),
        &["query", "--patient", "Patient/2", "--json"],
    ));
    let records: Vec<AuditRecord> = serde_json::from_str(&json).unwrap();
    assert_eq!(records.len(), 6);
    assert!(!tmp.path().join("index.request").exists());
}

#[test]
fn disclosures_in_every_format() {
    let tmp = tempfile::tempdir().unwrap();
    write_log(tmp.path(), 0..40).close();
    let text = stdout(&accord(
        tmp.path(),
        &["disclosures", "--patient", "Patient/1"],
    ));
    assert!(text.contains("§164.528"), "{text}");
    assert!(text.contains("42 CFR §2.24"), "{text}");
    assert!(text.contains("Condition ×3"), "{text}");
    let json = stdout(&accord(
        tmp.path(),
        &["disclosures", "--patient", "Patient/1", "--json"],
    ));
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    // Patient/1: i = 1, 5, 9, …, 37; i % 5 == 4 (9, 29) were denied.
    assert_eq!(report["disclosures"].as_array().unwrap().len(), 8);
    let csv = stdout(&accord(
        tmp.path(),
        &[
            "disclosures",
            "--patient",
            "Patient/1",
            "--csv",
            "--since",
            "2025-01-01T12:00:00Z",
        ],
    ));
    assert_eq!(csv.lines().count(), 1 + 6, "{csv}");
    assert!(
        csv.contains("\"Maple <b>Clinic</b>, \"\"East\"\"\""),
        "{csv}"
    );
    let html = stdout(&accord(
        tmp.path(),
        &["disclosures", "--patient", "Patient/1", "--html"],
    ));
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("Maple &lt;b&gt;Clinic&lt;/b&gt;, &quot;East&quot;"));
    assert!(!html.contains("<b>Clinic"));
    let other = stdout(&accord(
        tmp.path(),
        &["disclosures", "--patient", "Patient/0"],
    ));
    assert!(!other.contains("§2.24"), "{other}");
}

#[test]
fn export_writes_validated_audit_events_and_reindex_rebuilds() {
    let tmp = tempfile::tempdir().unwrap();
    write_log(tmp.path(), 0..12).close();
    let out = accord(
        tmp.path(),
        &[
            "export",
            "--format",
            "auditevent",
            "--since",
            "2025-01-01T06:00:00Z",
        ],
    );
    let ndjson = stdout(&out);
    let events: Vec<serde_json::Value> = ndjson
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 6);
    assert_eq!(events[0]["resourceType"], "AuditEvent");
    assert_eq!(events[0]["entity"][0]["what"]["reference"], "Patient/2");
    assert_eq!(events[3]["outcome"], "4");
    assert_eq!(events[4]["outcome"], "0");
    assert!(String::from_utf8_lossy(&out.stderr).contains("6 AuditEvents"));

    std::fs::remove_dir_all(tmp.path().join("index")).unwrap();
    let re = stdout(&accord(tmp.path(), &["reindex"]));
    assert!(re.starts_with("reindexed 12 records"), "{re}");
    let json = stdout(&accord(
        tmp.path(),
        &["query", "--patient", "Patient/3", "--json"],
    ));
    let records: Vec<AuditRecord> = serde_json::from_str(&json).unwrap();
    assert_eq!(
        records.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![4, 8, 12]
    );
}

/// An insider's edit of record `seq` (partner `maple` → `fakes`, same
/// length) with its checksum recomputed, so the frame reads as sound.
fn tamper(dir: &Path, seq: u64) {
    use accord_audit::segment;
    let seg = segment::list(dir).unwrap().unwrap().remove(0);
    let mut bytes = std::fs::read(&seg.path).unwrap();
    let frame = segment::scan(&seg, &bytes)
        .frames
        .into_iter()
        .find(|f| f.seq == seq)
        .unwrap();
    let text = String::from_utf8(frame.payload).unwrap();
    let edited = text.replace("\"partner\":\"maple\"", "\"partner\":\"fakes\"");
    assert_ne!(edited, text);
    let mut framed = Vec::new();
    segment::encode_frame(edited.as_bytes(), &mut framed);
    let at = usize::try_from(frame.offset).unwrap();
    bytes[at..at + framed.len()].copy_from_slice(&framed);
    std::fs::write(&seg.path, bytes).unwrap();
}

#[test]
fn query_and_reindex_warn_on_a_tampered_signed_record_and_still_answer() {
    let tmp = tempfile::tempdir().unwrap();
    // Closing signs a checkpoint over all 40 records.
    write_log(tmp.path(), 0..40).close();
    tamper(tmp.path(), 11);
    let out = accord(tmp.path(), &["query", "--json"]);
    let records: Vec<AuditRecord> = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(records.len(), 40, "every record is still answered");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning: record 11 does not match"),
        "query names the changed record: {err}"
    );
    let out = accord(tmp.path(), &["reindex"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning: records 1–40 do not match the signed checkpoint of 40 records"),
        "reindex names the records and the checkpoint: {err}"
    );
    let out = accord(
        tmp.path(),
        &["disclosures", "--patient", "Patient/3", "--format", "text"],
    );
    assert!(
        stdout(&out).contains("WARNING: records 1–40 do not match"),
        "{}",
        stdout(&out)
    );
}
