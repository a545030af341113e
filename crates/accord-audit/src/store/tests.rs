#![allow(clippy::cast_possible_truncation)]

use std::sync::Arc;

use super::*;
use crate::read_records;
use crate::record::DecisionKind;

fn record(i: usize) -> AuditRecord {
    AuditRecord {
        request_id: format!("req-{i}"),
        partner: Some("acme".into()),
        peer: "127.0.0.1:1".into(),
        method: "GET".into(),
        target: format!("/Patient/{i}"),
        decision: DecisionKind::Permit,
        rule: "grant".into(),
        status: 200,
        ..AuditRecord::default()
    }
}

/// An audit directory (`<tmp>/audit`) and its signing key beside it.
struct Tmp {
    _tmp: tempfile::TempDir,
    audit: PathBuf,
    key: PathBuf,
}

impl Tmp {
    fn new() -> Tmp {
        let tmp = tempfile::tempdir().unwrap();
        let audit = tmp.path().join("audit");
        fs::create_dir_all(&audit).unwrap();
        Tmp {
            key: tmp.path().join("signing.key"),
            audit,
            _tmp: tmp,
        }
    }

    fn path(&self) -> &Path {
        &self.audit
    }

    fn key(&self) -> &Path {
        &self.key
    }

    fn options(&self) -> StoreOptions {
        StoreOptions {
            signing_key: Some(self.key.clone()),
            ..StoreOptions::default()
        }
    }
}

fn small(dir: &Tmp) -> StoreOptions {
    StoreOptions {
        segment_size: 2048,
        ..dir.options()
    }
}

#[test]
fn appends_get_consecutive_seqs_across_restarts_and_segments() {
    let dir = Tmp::new();
    let (store, report) = AuditStore::open_with(dir.path(), small(&dir)).unwrap();
    assert_eq!(report.records, 0);
    assert!(report.key_created);
    for i in 0..30 {
        assert_eq!(store.append(&record(i)).unwrap().seq, i as u64 + 1);
    }
    store.close();
    let (store, report) = AuditStore::open_with(dir.path(), small(&dir)).unwrap();
    assert_eq!(report.records, 30);
    assert!(report.segments > 2, "{report:?}");
    assert!(!report.key_created);
    assert_eq!(store.append(&record(30)).unwrap().seq, 31);
    drop(store);
    let records = read_records(dir.path()).unwrap();
    assert_eq!(records.len(), 31);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.seq, i as u64 + 1);
        assert_eq!(r.request_id, format!("req-{i}"));
    }
}

#[test]
fn concurrent_appenders_share_fsyncs_and_all_land() {
    let dir = Tmp::new();
    let (store, _) = AuditStore::open(dir.path(), dir.key()).unwrap();
    let store = Arc::new(store);
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let store = Arc::clone(&store);
            thread::spawn(move || {
                (0..50)
                    .map(|i| store.append(&record(t * 100 + i)).unwrap().seq)
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut seqs: Vec<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=400).collect::<Vec<_>>());
    store.close();
    assert_eq!(read_records(dir.path()).unwrap().len(), 400);
}

#[test]
fn torn_tail_is_cut_and_reported_other_damage_refused() {
    let dir = Tmp::new();
    let (store, _) = AuditStore::open(dir.path(), dir.key()).unwrap();
    for i in 0..3 {
        store.append(&record(i)).unwrap();
    }
    drop(store);
    // A crash mid-write leaves half a frame, after the last checkpoint.
    let seg = dir
        .path()
        .join("segments")
        .join(crate::segment::segment_name(1));
    let mut torn = fs::read(&seg).unwrap();
    assert_ne!(
        torn.last(),
        Some(&0),
        "a closed store leaves no reserved zeros"
    );
    torn.extend_from_slice(&[200, 1, 0, 0, 1, 2, 3]);
    fs::write(&seg, &torn).unwrap();
    let (store, report) = AuditStore::open(dir.path(), dir.key()).unwrap();
    let tail = report.torn_tail.clone().unwrap();
    assert_eq!(tail.bytes, 7);
    assert_eq!(report.records, 3);
    assert_eq!(store.append(&record(3)).unwrap().seq, 4);
    drop(store);
    // A flipped byte in the middle is damage, never skipped.
    let mut bytes = fs::read(&seg).unwrap();
    bytes[40] ^= 0x20;
    fs::write(&seg, &bytes).unwrap();
    let err = AuditStore::open(dir.path(), dir.key()).unwrap_err();
    assert!(matches!(err, AuditError::Corrupt(_)), "{err}");
}

#[test]
fn losing_checkpointed_records_is_refused() {
    let dir = Tmp::new();
    let (store, _) = AuditStore::open(dir.path(), dir.key()).unwrap();
    for i in 0..3 {
        store.append(&record(i)).unwrap();
    }
    store.checkpoint().unwrap();
    drop(store);
    let seg = dir
        .path()
        .join("segments")
        .join(crate::segment::segment_name(1));
    let bytes = fs::read(&seg).unwrap();
    // Cut the last record cleanly: a rollback, not a torn write.
    let records = read_log(dir.path()).unwrap();
    let cut = records.frames[2].offset as usize;
    fs::write(&seg, &bytes[..cut]).unwrap();
    let err = AuditStore::open(dir.path(), dir.key()).unwrap_err();
    assert!(err.to_string().contains("covers 3 records"), "{err}");
}

#[test]
fn full_disk_refuses_and_recovers_without_repair() {
    let dir = Tmp::new();
    fs::create_dir_all(dir.path().join("segments")).unwrap();
    let seg = dir
        .path()
        .join("segments")
        .join(crate::segment::segment_name(1));
    std::os::unix::fs::symlink("/dev/full", &seg).unwrap();
    let (store, _) = AuditStore::open(dir.path(), dir.key()).unwrap();
    assert!(store.append(&record(0)).is_err());
    assert!(store.append(&record(1)).is_err());
}

/// What a crash leaves in the active segment while the store is running:
/// the records, then the zeros the writer reserved ahead of them.
fn crashed_copy(tmp: &Tmp, appends: usize) -> Tmp {
    let dir = tmp.path();
    let (store, _) = AuditStore::open(dir, tmp.key()).unwrap();
    for i in 0..appends {
        store.append(&record(i)).unwrap();
    }
    let copy = Tmp::new();
    fs::copy(tmp.key(), copy.key()).unwrap();
    fs::copy(dir.join(PUBLIC_KEY_FILE), copy.path().join(PUBLIC_KEY_FILE)).unwrap();
    fs::create_dir_all(copy.path().join(SEGMENTS_DIR)).unwrap();
    let seg = crate::segment::segment_name(1);
    fs::copy(
        dir.join(SEGMENTS_DIR).join(&seg),
        copy.path().join(SEGMENTS_DIR).join(&seg),
    )
    .unwrap();
    drop(store);
    copy
}

#[test]
fn reserved_zeros_after_the_records_are_not_a_torn_tail() {
    let dir = Tmp::new();
    let copy = crashed_copy(&dir, 5);
    let seg = copy
        .path()
        .join(SEGMENTS_DIR)
        .join(crate::segment::segment_name(1));
    let bytes = fs::read(&seg).unwrap();
    assert_eq!(bytes.last(), Some(&0), "the writer reserves space ahead");
    let (store, report) = AuditStore::open(copy.path(), copy.key()).unwrap();
    assert_eq!(report.records, 5);
    assert_eq!(report.torn_tail, None);
    // Writing goes on right after the last record, over the zeros.
    assert_eq!(store.append(&record(5)).unwrap().seq, 6);
    store.close();
    let records = read_records(copy.path()).unwrap();
    assert_eq!(records.len(), 6);
    assert_eq!(records[5].request_id, "req-5");
    let report =
        crate::verify(copy.path(), &store.verifier().clone(), &Default::default()).unwrap();
    assert!(report.is_ok(), "{report:?}");
}

#[test]
fn a_write_torn_inside_the_reserved_zeros_is_cut_and_reported() {
    let dir = Tmp::new();
    let copy = crashed_copy(&dir, 3);
    let seg = copy
        .path()
        .join(SEGMENTS_DIR)
        .join(crate::segment::segment_name(1));
    let end = read_log(copy.path()).unwrap().active_len as usize;
    let mut bytes = fs::read(&seg).unwrap();
    let file_len = bytes.len();
    // Half a frame landed where the next batch goes; zeros follow.
    bytes[end..end + 7].copy_from_slice(&[200, 1, 0, 0, 1, 2, 3]);
    fs::write(&seg, &bytes).unwrap();
    let (store, report) = AuditStore::open(copy.path(), copy.key()).unwrap();
    let tail = report.torn_tail.clone().unwrap();
    assert_eq!(tail.offset as usize, end);
    assert_eq!(tail.bytes as usize, file_len - end);
    assert_eq!(report.records, 3);
    assert_eq!(store.append(&record(3)).unwrap().seq, 4);
    store.close();
    assert_eq!(read_records(copy.path()).unwrap().len(), 4);
}

#[test]
fn sealed_segments_keep_no_reserved_zeros() {
    let dir = Tmp::new();
    let options = StoreOptions {
        segment_size: 64 << 10,
        ..dir.options()
    };
    let (store, _) = AuditStore::open_with(dir.path(), options).unwrap();
    for i in 0..600 {
        store.append(&record(i)).unwrap();
    }
    let segments = crate::segment::list(dir.path()).unwrap().unwrap();
    assert!(segments.len() > 1, "{segments:?}");
    for sealed in &segments[..segments.len() - 1] {
        let bytes = fs::read(&sealed.path).unwrap();
        assert_eq!(bytes.last(), Some(&b'}'), "{}", sealed.path.display());
    }
    store.close();
    assert_eq!(read_records(dir.path()).unwrap().len(), 600);
}

#[test]
fn records_serialized_by_appenders_are_the_canonical_json() {
    let mut r = record(7);
    r.patients = vec![crate::record::PatientRelease {
        patient: "Patient/1".into(),
        ..Default::default()
    }];
    for seq in [1, 9, 10, 12_345, u64::MAX] {
        let encoded = writer::Encoded::new(&r).unwrap();
        let mut spliced = Vec::new();
        encoded.write_for_test(seq, &mut spliced);
        let mut expected = r.clone();
        expected.seq = seq;
        assert_eq!(
            String::from_utf8(spliced).unwrap(),
            serde_json::to_string(&expected).unwrap()
        );
        assert_eq!(
            crate::segment::leading_seq(&serde_json::to_vec(&expected).unwrap()),
            Some(seq)
        );
    }
    assert_eq!(
        crate::segment::leading_seq(br#"{"schema":2,"seq":01,"#),
        None
    );
    assert_eq!(
        crate::segment::leading_seq(br#"{"seq":1,"schema":2}"#),
        None
    );
}
