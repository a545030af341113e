use super::*;
use crate::record::{DecisionKind, RECORD_SCHEMA_VERSION};
use std::sync::Arc;

fn record(request_id: &str) -> AuditRecord {
    AuditRecord {
        schema: RECORD_SCHEMA_VERSION,
        seq: 0,
        time: time::macros::datetime!(2026-06-01 12:00 UTC),
        request_id: request_id.to_owned(),
        partner: Some("maple-primary".into()),
        client_spki: None,
        peer: "127.0.0.1:5000".into(),
        purpose: Some("TREAT".into()),
        method: "GET".into(),
        target: "/fhir/Patient/p1".into(),
        interaction: Some("read".into()),
        resource_type: Some("Patient".into()),
        decision: DecisionKind::Permit,
        rule: "permit".into(),
        agreement: None,
        status: 200,
        error_source: None,
        latency_us: 10,
    }
}

#[test]
fn appends_are_numbered_durable_and_read_back_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (log, report) = JsonlAuditLog::open(dir.path()).unwrap();
    assert_eq!(
        report,
        OpenReport {
            records: 0,
            truncated_bytes: 0
        }
    );
    assert_eq!(log.append(&record("a")).unwrap().seq, 1);
    assert_eq!(log.append(&record("b")).unwrap().seq, 2);
    drop(log);
    let records = read_records(dir.path()).unwrap();
    assert_eq!(
        records
            .iter()
            .map(|r| (r.seq, r.request_id.as_str()))
            .collect::<Vec<_>>(),
        [(1, "a"), (2, "b")]
    );

    let (log, report) = JsonlAuditLog::open(dir.path()).unwrap();
    assert_eq!(report.records, 2);
    assert_eq!(
        log.append(&record("c")).unwrap().seq,
        3,
        "numbering continues after reopen"
    );
}

#[test]
fn concurrent_appends_all_land_with_distinct_sequence_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(JsonlAuditLog::open(dir.path()).unwrap().0);
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let log = Arc::clone(&log);
            thread::spawn(move || {
                (0..25)
                    .map(|i| log.append(&record(&format!("{t}-{i}"))).unwrap().seq)
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut seqs: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=200).collect::<Vec<_>>());
    assert_eq!(read_records(dir.path()).unwrap().len(), 200);
}

#[test]
fn a_torn_final_line_is_truncated_on_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (log, _) = JsonlAuditLog::open(dir.path()).unwrap();
        log.append(&record("a")).unwrap();
    }
    let path = dir.path().join(LOG_FILE);
    let mut file = OpenOptions::new().append(true).open(&path).unwrap();
    file.write_all(br#"{"schema":1,"seq":2,"tim"#).unwrap();
    drop(file);
    let (log, report) = JsonlAuditLog::open(dir.path()).unwrap();
    assert_eq!(report.records, 1);
    assert_eq!(report.truncated_bytes, 24);
    assert_eq!(log.append(&record("b")).unwrap().seq, 2);
    drop(log);
    assert_eq!(read_records(dir.path()).unwrap().len(), 2);
}

#[test]
fn a_failing_disk_is_an_error_for_the_appender() {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/dev/full", dir.path().join(LOG_FILE)).unwrap();
    let (log, _) = JsonlAuditLog::open(dir.path()).unwrap();
    assert!(matches!(
        log.append(&record("a")),
        Err(AuditError::Io { .. })
    ));
}

#[test]
fn an_unusable_directory_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    assert!(JsonlAuditLog::open(&file.join("audit")).is_err());
}

#[test]
fn appends_after_close_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = JsonlAuditLog::open(dir.path()).unwrap();
    log.close();
    assert!(matches!(log.append(&record("a")), Err(AuditError::Closed)));
}
