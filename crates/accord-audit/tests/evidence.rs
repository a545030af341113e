//! The log keeps its evidence: an oversized record is refused before a
//! byte is written, damage inside the log is never cut, readers step past
//! damaged records and name them, a torn checkpoint entry does not stop
//! the store, and quarantine lets an operator go on with a signed note.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::cast_possible_truncation
)]

use std::fs;
use std::path::{Path, PathBuf};

use accord_audit::segment::MAX_RECORD;
use accord_audit::{
    AuditError, AuditRecord, AuditSink, AuditStore, DecisionKind, Signer, StoreOptions,
    VerifyOptions, verify,
};

fn record(i: usize) -> AuditRecord {
    AuditRecord {
        request_id: format!("req-{i}"),
        partner: Some("acme".into()),
        peer: "10.0.0.1:4431".into(),
        method: "GET".into(),
        target: format!("/Observation?patient=Patient/{}", i % 7),
        decision: DecisionKind::Permit,
        rule: "grant g1 of agreement a1".into(),
        status: 200,
        ..AuditRecord::default()
    }
}

fn options(key: &Signer) -> StoreOptions {
    StoreOptions {
        signer: Some(Signer::parse(&key.encode()).unwrap()),
        index: false,
        ..StoreOptions::default()
    }
}

/// A store in `dir/audit` holding `n` signed records, closed.
fn log_with(n: usize) -> (tempfile::TempDir, PathBuf, Signer) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("audit");
    let key = Signer::generate("evidence.test/audit").unwrap();
    let (store, _) = AuditStore::open_with(&dir, options(&key)).unwrap();
    for i in 0..n {
        store.append(&record(i)).unwrap();
    }
    store.checkpoint().unwrap();
    store.close();
    (tmp, dir, key)
}

fn only_segment(dir: &Path) -> PathBuf {
    let mut segs: Vec<_> = fs::read_dir(dir.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    segs.sort();
    segs.remove(0)
}

/// Byte offset of record `seq`'s frame in a one-segment log.
fn frame_offset(seg: &Path, seq: u64) -> usize {
    let bytes = fs::read(seg).unwrap();
    let mut pos = 16;
    for _ in 1..seq {
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        pos += 8 + len;
    }
    pos
}

fn flip(path: &Path, at: usize) {
    let mut bytes = fs::read(path).unwrap();
    bytes[at] ^= 0x5a;
    fs::write(path, bytes).unwrap();
}

#[test]
fn an_oversized_record_is_refused_and_the_log_goes_on() {
    let (_tmp, dir, key) = log_with(3);
    let (store, _) = AuditStore::open_with(&dir, options(&key)).unwrap();
    let mut big = record(99);
    big.target = "x".repeat(MAX_RECORD as usize + 10);
    match store.append(&big) {
        Err(AuditError::TooLarge { bytes, limit }) => {
            assert!(bytes > limit);
            assert_eq!(limit, u64::from(MAX_RECORD));
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert_eq!(store.append(&record(4)).unwrap().seq, 4);
    store.close();
    let report = verify(&dir, &key.verifier(), &VerifyOptions::default()).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.records, 4);
    let (store, opened) = AuditStore::open_with(&dir, options(&key)).unwrap();
    assert_eq!(opened.records, 4);
    assert_eq!(store.append(&record(5)).unwrap().seq, 5);
}

#[test]
fn a_torn_checkpoint_entry_with_checkpoints_after_it_does_not_stop_the_store() {
    let (_tmp, dir, key) = log_with(3);
    // What the old writer left after a full disk: part of an entry, then
    // complete checkpoints appended after it.
    let path = dir.join("checkpoints.log");
    let mut bytes = fs::read(&path).unwrap();
    let good = bytes.len();
    let last_entry = bytes.clone();
    bytes.extend_from_slice(&last_entry[..20]);
    bytes.extend_from_slice(&last_entry);
    fs::write(&path, &bytes).unwrap();
    let (store, _) = AuditStore::open_with(&dir, options(&key)).unwrap();
    store.append(&record(3)).unwrap();
    store.checkpoint().unwrap();
    store.close();
    let after = fs::read(&path).unwrap();
    assert_eq!(after[..bytes.len()], bytes[..], "complete entries are kept");
    let report = verify(&dir, &key.verifier(), &VerifyOptions::default()).unwrap();
    assert_eq!(report.records, 4);
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert!(
        report.problems[0]
            .location
            .contains(&format!("offset {good}")),
        "{:?}",
        report.problems
    );
}

#[test]
fn an_unfinished_last_checkpoint_entry_is_cut_before_the_next() {
    let (_tmp, dir, key) = log_with(3);
    let path = dir.join("checkpoints.log");
    let mut bytes = fs::read(&path).unwrap();
    let good = bytes.len();
    bytes.extend_from_slice(&[200, 1, 0, 0, 1, 2, 3, 4, b'x']);
    fs::write(&path, &bytes).unwrap();
    let (store, _) = AuditStore::open_with(&dir, options(&key)).unwrap();
    assert_eq!(fs::read(&path).unwrap().len(), good);
    store.append(&record(3)).unwrap();
    store.checkpoint().unwrap();
    store.close();
    let report = verify(&dir, &key.verifier(), &VerifyOptions::default()).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
}

/// 200 records, checkpoints at 100 and 200, one segment.
fn damaged_log(at_len: bool) -> (tempfile::TempDir, PathBuf, Signer, PathBuf, Vec<u8>) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("audit");
    let key = Signer::generate("evidence.test/audit").unwrap();
    let (store, _) = AuditStore::open_with(&dir, options(&key)).unwrap();
    for i in 0..200 {
        store.append(&record(i)).unwrap();
        if i == 99 {
            store.checkpoint().unwrap();
        }
    }
    store.checkpoint().unwrap();
    store.close();
    let seg = only_segment(&dir);
    let at = frame_offset(&seg, 150);
    // The length prefix (made huge: the frame seems to run past the end),
    // or a byte inside the record.
    flip(&seg, if at_len { at + 2 } else { at + 40 });
    let bytes = fs::read(&seg).unwrap();
    (tmp, dir, key, seg, bytes)
}

#[test]
fn a_damaged_signed_record_is_never_cut_and_open_names_it() {
    for at_len in [true, false] {
        let (_tmp, dir, key, seg, bytes) = damaged_log(at_len);
        let err = AuditStore::open_with(&dir, options(&key)).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("record 150"), "{text}");
        assert!(text.contains("byte offset"), "{text}");
        assert!(!text.contains("Some(") && !text.contains("{ "), "{text}");
        assert_eq!(fs::read(&seg).unwrap(), bytes, "open changed the segment");
        let index = accord_audit::Index::open(&dir).unwrap();
        assert_eq!(index.rebuild().unwrap(), 199);
        drop(index);
        assert_eq!(
            fs::read(&seg).unwrap(),
            bytes,
            "reindex changed the segment"
        );
    }
}

#[test]
fn readers_return_every_intact_record_and_name_the_damage() {
    for at_len in [true, false] {
        let (_tmp, dir, key, _seg, _) = damaged_log(at_len);
        let records = accord_audit::read_records(&dir).unwrap();
        assert_eq!(records.len(), 199);
        assert!(records.iter().all(|r| r.seq != 150));
        let report = verify(&dir, &key.verifier(), &VerifyOptions::default()).unwrap();
        assert_eq!(report.records, 200);
        assert_eq!(report.readable, 199);
        let text: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
        assert!(
            text.iter()
                .any(|p| p.contains("records 150–150 unreadable")),
            "{text:?}"
        );
        assert!(
            text.len() <= 3,
            "one line per damage, not per checkpoint: {text:?}"
        );
        let index = accord_audit::Index::open(&dir).unwrap();
        index.catch_up().unwrap();
        let all =
            accord_audit::query::query(&index, &accord_audit::query::Filter::default()).unwrap();
        assert_eq!(all.len(), 199);
        let damaged = index.damaged().unwrap();
        assert!(
            damaged.iter().any(|d| d.contains("records 150–150")),
            "{damaged:?}"
        );
        drop(index);
        // Before the damage: proved against the checkpoint of 100.
        let proof = accord_audit::proof::prove(&dir, 50).unwrap();
        accord_audit::proof::check(&proof, &key.verifier()).unwrap();
        let err = accord_audit::proof::prove(&dir, 150)
            .unwrap_err()
            .to_string();
        assert!(err.contains("150"), "{err}");
    }
}

#[test]
fn quarantine_sets_the_damage_aside_and_the_log_goes_on() {
    let (_tmp, dir, key, seg, bytes) = damaged_log(false);
    let signer = Signer::parse(&key.encode()).unwrap();
    let done = accord_audit::quarantine::quarantine(&dir, signer, "alice", "disk error").unwrap();
    assert_eq!(done.seq, 201);
    assert_eq!(done.note.gaps[0].first_seq, 150);
    assert_eq!(done.note.gaps[0].last_seq, 150);
    assert_eq!(
        fs::read(&seg).unwrap(),
        bytes,
        "the damaged segment stays as it was"
    );
    let name = seg.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(fs::read(dir.join("quarantine").join(&name)).unwrap(), bytes);
    assert!(
        dir.join("quarantine")
            .join(format!("{name}.sha256"))
            .exists()
    );

    let (store, opened) = AuditStore::open_with(&dir, options(&key)).unwrap();
    assert_eq!(opened.records, 201);
    assert_eq!(store.append(&record(300)).unwrap().seq, 202);
    store.checkpoint().unwrap();
    store.close();
    let report = verify(&dir, &key.verifier(), &VerifyOptions::default()).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.records, 202);
    let gap = &report.damaged[0];
    assert!(gap.quarantined);
    assert!(
        gap.to_string().contains("records 150–150 unreadable"),
        "{gap}"
    );
    let records = accord_audit::read_records(&dir).unwrap();
    let note = records.iter().find(|r| r.seq == 201).unwrap();
    assert_eq!(note.quarantine.as_ref().unwrap().operator, "alice");
    // Records after the gap are provable against the new checkpoints.
    let proof = accord_audit::proof::prove(&dir, 160).unwrap();
    accord_audit::proof::check(&proof, &key.verifier()).unwrap();

    // A change to the quarantined segment after the fact is still caught.
    flip(&seg, 100);
    let report = verify(&dir, &key.verifier(), &VerifyOptions::default()).unwrap();
    assert!(!report.is_ok());
}
