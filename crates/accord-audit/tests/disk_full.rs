//! A full disk, then space returns: the store refuses records while they
//! do not fit (nothing acknowledged, nothing corrupt), takes them again as
//! soon as space is back — no restart, no operator — and checkpoints
//! resume after a checkpoint write the full disk cut short. With less free
//! space than a reserve chunk, records that fit are still taken. The disk
//! is a byte budget (`DiskBudget`), not a real filesystem.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::PathBuf;
use std::sync::Arc;

use accord_audit::store::space::DiskBudget;
use accord_audit::{
    AuditError, AuditRecord, AuditSink, AuditStore, DecisionKind, Signer, StoreOptions,
    VerifyOptions, read_checkpoint_log, verify,
};

const PLENTY: u64 = 1 << 30;

fn record(i: u64) -> AuditRecord {
    AuditRecord {
        request_id: format!("req-{i}"),
        partner: Some("acme".into()),
        peer: "10.0.0.1:4431".into(),
        method: "GET".into(),
        target: "/Observation?patient=Patient/1".into(),
        decision: DecisionKind::Permit,
        rule: "grant g1 of agreement a1".into(),
        status: 200,
        ..AuditRecord::default()
    }
}

fn open(
    dir: &std::path::Path,
    key: &Signer,
    disk: Option<Arc<DiskBudget>>,
    segment_size: u64,
) -> AuditStore {
    let options = StoreOptions {
        signer: Some(Signer::parse(&key.encode()).unwrap()),
        index: false,
        segment_size,
        disk,
        ..StoreOptions::default()
    };
    AuditStore::open_with(dir, options).unwrap().0
}

fn setup() -> (tempfile::TempDir, PathBuf, Signer) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("audit");
    let key = Signer::generate("disk.test/audit").unwrap();
    (tmp, dir, key)
}

fn is_full(e: &AuditError) -> bool {
    matches!(e, AuditError::Io { source, .. } if source.kind() == std::io::ErrorKind::StorageFull)
}

#[test]
fn a_full_disk_refuses_records_and_space_coming_back_needs_no_restart() {
    let (_tmp, dir, key) = setup();
    let disk = DiskBudget::new(PLENTY);
    // Small segments: the space reserved ahead runs out within a few dozen
    // records.
    let store = open(&dir, &key, Some(Arc::clone(&disk)), 16 << 10);
    for i in 1..=10 {
        assert_eq!(store.append(&record(i)).unwrap().seq, i);
    }
    store.checkpoint().unwrap();

    // The disk fills: appends and checkpoints fail, nothing is acknowledged.
    disk.set_free(0);
    let mut refused = 0;
    for i in 11..=500 {
        match store.append(&record(i)) {
            Err(e) if is_full(&e) => refused += 1,
            // Space reserved earlier still takes some records.
            Ok(_) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert!(refused > 400, "a full disk refuses records: {refused}");
    // A checkpoint entry cut short by the full disk (part of it written).
    disk.set_free(100);
    let err = store.checkpoint().unwrap_err();
    assert!(is_full(&err), "{err}");
    let err = store.checkpoint().unwrap_err();
    assert!(is_full(&err), "{err}");

    // Space returns: the same store takes records and signs checkpoints.
    disk.set_free(PLENTY);
    let seq = store.append(&record(21)).unwrap().seq;
    let note = store.checkpoint().unwrap();
    assert!(note.contains(&format!("\n{seq}\n")), "{note}");
    store.close();

    let report = verify(&dir, &key.verifier(), &VerifyOptions::default()).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.records, seq);
    let checkpoints = read_checkpoint_log(&dir).unwrap();
    assert_eq!(checkpoints.torn, 0);
    assert!(checkpoints.skipped.is_empty(), "{:?}", checkpoints.skipped);
    // And a restart finds nothing to repair.
    let (store, opened) = AuditStore::open_with(
        &dir,
        StoreOptions {
            signer: Some(Signer::parse(&key.encode()).unwrap()),
            index: false,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    assert_eq!(opened.records, seq);
    assert!(opened.torn_tail.is_none());
    store.close();
}

#[test]
fn records_that_fit_are_taken_with_less_than_a_reserve_chunk_free() {
    let (_tmp, dir, key) = setup();
    // 1 MiB free: far less than the 4 MiB the writer reserves at a time.
    let disk = DiskBudget::new(1 << 20);
    let store = open(&dir, &key, Some(Arc::clone(&disk)), 64 << 20);
    for i in 1..=200 {
        assert_eq!(store.append(&record(i)).unwrap().seq, i, "record {i} fits");
    }
    store.checkpoint().unwrap();
    // Less than a record and the small margin: refused, the log intact.
    disk.set_free(8 << 10);
    let mut refused = false;
    for i in 201..=400 {
        match store.append(&record(i)) {
            Ok(_) => {}
            Err(e) if is_full(&e) => {
                refused = true;
                break;
            }
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert!(
        refused,
        "a record that does not fit with the margin is refused"
    );
    store.close();
    let report = verify(&dir, &key.verifier(), &VerifyOptions::default()).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
}
