//! The privacy officer's tools at library level: indexes (patient keys
//! hashed, catch-up, rebuild), queries, the accounting of disclosures and
//! the AuditEvent export validated with fhirbolt.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::Path;

use accord_audit::index::{INDEX_DIR, INDEX_KEY_FILE, IndexBackend as _, Located, SledBackend};
use accord_audit::query::{Filter, parse_time, query};
use accord_audit::report::{accounting, audit_events, validate_audit_event};
use accord_audit::segment;
use accord_audit::{
    AgreementRef, AuditRecord, AuditSink, AuditStore, DecisionKind, Index, PatientRelease,
    StoreOptions, TypeCounts,
};
use time::OffsetDateTime;
use time::macros::datetime;

fn record(i: u64) -> AuditRecord {
    let patient = format!("Patient/{}", i % 7);
    let part2 = i % 7 == 3;
    AuditRecord {
        time: datetime!(2024-01-01 00:00 UTC) + time::Duration::days(i as i64),
        request_id: format!("req-{i}"),
        partner: Some(if i.is_multiple_of(2) { "maple" } else { "oak" }.into()),
        partner_name: Some(
            if i.is_multiple_of(2) {
                "Maple <Primary> & Co"
            } else {
                "Oak Hospital"
            }
            .into(),
        ),
        partner_address: Some("1 Main St, Springfield".into()),
        peer: "10.0.0.9:4431".into(),
        purpose: Some(
            if i.is_multiple_of(3) {
                "PUBHLTH"
            } else {
                "TREAT"
            }
            .into(),
        ),
        method: "GET".into(),
        target: format!("/Observation?patient={patient}"),
        path: Some("/Observation".into()),
        query: Some(format!("patient={patient}")),
        interaction: Some("search-type".into()),
        resource_type: Some("Observation".into()),
        decision: if i % 5 == 4 {
            DecisionKind::Deny
        } else {
            DecisionKind::Permit
        },
        rule: "grant g1".into(),
        agreement: Some(AgreementRef {
            id: format!("dua-{}", i % 2),
            version: 1,
            grant: "g1".into(),
        }),
        patients: vec![PatientRelease {
            patient,
            sensitivity: if part2 {
                vec!["42CFRPart2".into()]
            } else {
                vec![]
            },
            resources: vec![TypeCounts {
                resource_type: "Observation".into(),
                released: if i % 5 == 4 { 0 } else { 2 },
                withheld: 1,
                redacted: 0,
            }],
        }],
        status: 200,
        ..AuditRecord::default()
    }
}

fn build(dir: &Path, n: u64) {
    let options = StoreOptions {
        segment_size: 8192,
        signing_key: Some(dir.with_extension("key")),
        ..StoreOptions::default()
    };
    let (store, _) = AuditStore::open_with(dir, options).unwrap();
    for i in 0..n {
        store.append(&record(i)).unwrap();
    }
    store.close();
}

fn expected(n: u64, keep: impl Fn(&AuditRecord) -> bool) -> Vec<u64> {
    (0..n)
        .map(|i| {
            let mut r = record(i);
            r.seq = i + 1;
            r
        })
        .filter(|r| keep(r))
        .map(|r| r.seq)
        .collect()
}

fn seqs(records: &[AuditRecord]) -> Vec<u64> {
    records.iter().map(|r| r.seq).collect()
}

#[test]
fn the_store_indexes_and_queries_answer_from_the_index() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = &tmp.path().join("audit");
    build(dir, 120);
    let index = Index::open(dir).unwrap();
    assert_eq!(index.next_seq().unwrap(), 121);
    let by_patient = Filter {
        patient: Some("Patient/3".into()),
        ..Filter::default()
    };
    assert_eq!(
        seqs(&query(&index, &by_patient).unwrap()),
        expected(120, |r| r.patients[0].patient == "Patient/3")
    );
    let combined = Filter {
        partner: Some("oak".into()),
        purpose: Some("TREAT".into()),
        decision: Some(DecisionKind::Permit),
        agreement: Some("dua-1".into()),
        since: Some(datetime!(2024-02-01 00:00 UTC)),
        until: Some(datetime!(2024-03-15 00:00 UTC)),
        ..Filter::default()
    };
    assert_eq!(
        seqs(&query(&index, &combined).unwrap()),
        expected(120, |r| combined.matches(r))
    );
    assert!(!query(&index, &combined).unwrap().is_empty());
    let time_only = Filter {
        since: Some(datetime!(2024-03-01 00:00 UTC)),
        until: Some(datetime!(2024-03-05 00:00 UTC)),
        ..Filter::default()
    };
    assert_eq!(
        seqs(&query(&index, &time_only).unwrap()),
        vec![61, 62, 63, 64]
    );
    let limited = Filter {
        limit: Some(3),
        ..by_patient.clone()
    };
    let all = query(&index, &by_patient).unwrap();
    assert_eq!(
        query(&index, &limited).unwrap(),
        all[all.len() - 3..].to_vec()
    );
    let nobody = Filter {
        patient: Some("Patient/999".into()),
        ..Filter::default()
    };
    assert!(query(&index, &nobody).unwrap().is_empty());
}

#[test]
fn the_index_holds_no_raw_patient_reference_and_its_key_is_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let tmp = tempfile::tempdir().unwrap();
    build(tmp.path(), 30);
    let mode = std::fs::metadata(tmp.path().join(INDEX_KEY_FILE))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    for entry in walk(&tmp.path().join(INDEX_DIR)) {
        let bytes = std::fs::read(&entry).unwrap();
        for needle in [&b"Patient/3"[..], b"Patient/"] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{} holds a raw patient reference",
                entry.display()
            );
        }
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn a_lost_index_is_caught_up_on_open_and_rebuild_gives_the_same_answers() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = &tmp.path().join("audit");
    let options = StoreOptions {
        index: false,
        signing_key: Some(dir.with_extension("key")),
        ..StoreOptions::default()
    };
    let (store, _) = AuditStore::open_with(dir, options).unwrap();
    for i in 0..40 {
        store.append(&record(i)).unwrap();
    }
    store.close();
    let f = Filter {
        patient: Some("Patient/1".into()),
        ..Filter::default()
    };
    {
        let index = Index::open(dir).unwrap();
        assert_eq!(index.next_seq().unwrap(), 1);
        assert_eq!(index.catch_up().unwrap(), 40);
        assert_eq!(
            seqs(&query(&index, &f).unwrap()),
            expected(40, |r| f.matches(r))
        );
    }
    // The store catches up what it missed when it opens with indexing on.
    build(dir, 10);
    let index = Index::open(dir).unwrap();
    assert_eq!(index.next_seq().unwrap(), 51);
    let before = query(&index, &f).unwrap();
    assert_eq!(index.rebuild().unwrap(), 50);
    assert_eq!(query(&index, &f).unwrap(), before);
}

/// Every record in the log with where it is, read straight from the
/// segments.
fn located(dir: &Path) -> Vec<Located> {
    let mut out = Vec::new();
    for seg in segment::list(dir).unwrap().unwrap() {
        let bytes = segment::read_file(&seg.path).unwrap();
        for frame in segment::scan(&seg, &bytes).frames {
            out.push(Located {
                record: serde_json::from_slice(&frame.payload).unwrap(),
                segment: seg.first_seq,
                offset: frame.offset,
                leaf: frame.leaf,
            });
        }
    }
    out
}

/// Filters covering each index alone, combinations, time ranges (one
/// falling between batches) and limits.
fn filters() -> Vec<Filter> {
    let mut out = Vec::new();
    for p in 0..8 {
        out.push(Filter {
            patient: Some(format!("Patient/{p}")),
            ..Filter::default()
        });
    }
    for partner in ["maple", "oak", "elm"] {
        out.push(Filter {
            partner: Some(partner.into()),
            ..Filter::default()
        });
    }
    for decision in [
        DecisionKind::Permit,
        DecisionKind::Deny,
        DecisionKind::Refuse,
    ] {
        out.push(Filter {
            decision: Some(decision),
            ..Filter::default()
        });
    }
    out.push(Filter {
        purpose: Some("PUBHLTH".into()),
        agreement: Some("dua-0".into()),
        ..Filter::default()
    });
    out.push(Filter {
        since: Some(datetime!(2024-01-20 00:00 UTC)),
        until: Some(datetime!(2024-07-03 12:00 UTC)),
        ..Filter::default()
    });
    out.push(Filter {
        until: Some(datetime!(2024-02-01 00:00 UTC)),
        ..Filter::default()
    });
    out.push(Filter::default());
    out.push(Filter {
        patient: Some("Patient/4".into()),
        decision: Some(DecisionKind::Permit),
        since: Some(datetime!(2024-02-10 00:00 UTC)),
        limit: Some(5),
        ..Filter::default()
    });
    out.push(Filter {
        partner: Some("oak".into()),
        limit: Some(1),
        ..Filter::default()
    });
    out
}

#[test]
fn postings_spanning_many_batches_and_segments_answer_like_a_scan_of_the_log() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = &tmp.path().join("audit");
    let n = 300;
    let options = StoreOptions {
        index: false,
        segment_size: 8192,
        signing_key: Some(dir.with_extension("key")),
        ..StoreOptions::default()
    };
    let (store, _) = AuditStore::open_with(dir, options).unwrap();
    for i in 0..n {
        store.append(&record(i)).unwrap();
    }
    store.close();
    let log = located(dir);
    assert!(
        log.iter()
            .map(|l| l.segment)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
            > 5,
        "the log spans several segments"
    );
    // Batches of uneven sizes, crossing segments, one overlapping what is
    // already indexed (as the store's indexer may hand over).
    let index = Index::open(dir).unwrap();
    let mut at = 0;
    for size in [1, 2, 7, 33, 1, 100, 57].into_iter().cycle() {
        if at >= log.len() {
            break;
        }
        let from = at.saturating_sub(3);
        let to = (at + size).min(log.len());
        index.add(&log[from..to]).unwrap();
        at = to;
    }
    assert_eq!(index.next_seq().unwrap(), n + 1);
    let all: Vec<AuditRecord> = log.into_iter().map(|l| l.record).collect();
    for f in filters() {
        let mut want: Vec<u64> = all.iter().filter(|r| f.matches(r)).map(|r| r.seq).collect();
        if let Some(limit) = f.limit {
            want.drain(..want.len().saturating_sub(limit));
        }
        assert_eq!(seqs(&query(&index, &f).unwrap()), want, "{f:?}");
    }
    assert!(index.read(0).unwrap().is_none());
    assert!(index.read(n + 1).unwrap().is_none());
    // One batch per segment (catch-up) gives the same answers.
    assert_eq!(index.rebuild().unwrap(), n);
    for f in filters() {
        let want: Vec<u64> = all.iter().filter(|r| f.matches(r)).map(|r| r.seq).collect();
        let got = seqs(&query(&index, &f).unwrap());
        assert!(want.ends_with(&got), "{f:?}");
    }
    // A gap is refused, not indexed.
    let (store, _) = AuditStore::open_with(
        dir,
        StoreOptions {
            index: false,
            segment_size: 8192,
            signing_key: Some(dir.with_extension("key")),
            ..StoreOptions::default()
        },
    )
    .unwrap();
    for i in n..n + 3 {
        store.append(&record(i)).unwrap();
    }
    store.close();
    let newer = located(dir);
    assert!(index.add(&newer[301..]).is_err());
    assert_eq!(index.next_seq().unwrap(), n + 1);
}

#[test]
fn an_index_in_the_old_one_key_per_record_layout_is_rebuilt_from_the_log() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = &tmp.path().join("audit");
    let options = StoreOptions {
        index: false,
        signing_key: Some(dir.with_extension("key")),
        ..StoreOptions::default()
    };
    let (store, _) = AuditStore::open_with(dir, options).unwrap();
    for i in 0..40 {
        store.append(&record(i)).unwrap();
    }
    store.close();
    {
        // Format 1: no `mformat` key, one empty-valued key per record and
        // field, fixed 16-byte locations (here deliberately wrong).
        let old = SledBackend::open(&dir.join(INDEX_DIR)).unwrap();
        let mut entries = vec![(b"mnext".to_vec(), 41u64.to_be_bytes().to_vec())];
        for seq in 1..=40u64 {
            let mut key = vec![b'd', b'p'];
            key.extend_from_slice(&seq.to_be_bytes());
            entries.push((key, Vec::new()));
            let mut key = vec![b'o'];
            key.extend_from_slice(&seq.to_be_bytes());
            entries.push((key, [0u8; 16].to_vec()));
        }
        old.write_batch(entries).unwrap();
        old.flush().unwrap();
    }
    let index = Index::open(dir).unwrap();
    assert_eq!(index.next_seq().unwrap(), 1, "the old layout is dropped");
    assert_eq!(index.catch_up().unwrap(), 40);
    let permits = Filter {
        decision: Some(DecisionKind::Permit),
        ..Filter::default()
    };
    assert_eq!(
        seqs(&query(&index, &permits).unwrap()),
        expected(40, |r| permits.matches(r))
    );
    drop(index);
    // Reopening an index in the current layout keeps it.
    let index = Index::open(dir).unwrap();
    assert_eq!(index.next_seq().unwrap(), 41);
}

#[test]
fn accounting_lists_permitted_releases_and_the_part2_list() {
    let tmp = tempfile::tempdir().unwrap();
    build(tmp.path(), 70);
    let index = Index::open(tmp.path()).unwrap();
    let now = datetime!(2025-01-01 00:00 UTC);
    let report = accounting(&index, "Patient/3", None, now).unwrap();
    let want = expected(70, |r| {
        r.patients[0].patient == "Patient/3" && r.decision == DecisionKind::Permit
    });
    assert_eq!(
        report.disclosures.iter().map(|d| d.seq).collect::<Vec<_>>(),
        want
    );
    assert!(report.disclosures.iter().all(|d| d.part2));
    let d = &report.disclosures[0];
    assert_eq!(d.description, "Observation ×2 (sensitive: 42CFRPart2)");
    assert_eq!(
        d.recipient_address.as_deref(),
        Some("1 Main St, Springfield")
    );
    let text = report.to_text();
    assert!(text.contains("42 CFR §2.24"), "{text}");
    let html = report.to_html();
    assert!(html.contains("Maple &lt;Primary&gt; &amp; Co"));
    assert!(!html.contains("<Primary>"));
    let csv = report.to_csv();
    assert!(csv.contains("\"1 Main St, Springfield\""), "{csv}");
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["disclosures"].as_array().unwrap().len(), want.len());
    // Patient/1 has no Part 2 data; since narrows.
    let since = datetime!(2024-02-01 00:00 UTC);
    let other = accounting(&index, "Patient/1", Some(since), now).unwrap();
    assert!(
        other
            .disclosures
            .iter()
            .all(|d| !d.part2 && d.date >= since)
    );
    assert!(!other.to_text().contains("§2.24"));
}

#[test]
fn audit_events_follow_balp_and_validate_with_fhirbolt() {
    let mut records: Vec<AuditRecord> = (0..10).map(record).collect();
    // A refused request with no partner, no patient, no purpose.
    records.push(AuditRecord {
        seq: 99,
        peer: String::new(),
        method: "GET".into(),
        target: "/Patient/5".into(),
        interaction: Some("read".into()),
        rule: "no client certificate".into(),
        status: 401,
        ..AuditRecord::default()
    });
    // A read of two patients (one event each).
    let mut two = record(1);
    two.interaction = Some("read".into());
    two.path = Some("/Patient/1".into());
    two.patients.push(PatientRelease {
        patient: "Patient/2".into(),
        ..PatientRelease::default()
    });
    records.push(two);
    let mut events = Vec::new();
    for r in &records {
        events.extend(audit_events(r, "accord-test"));
    }
    assert_eq!(events.len(), 13);
    for ev in &events {
        let text = serde_json::to_string(ev).unwrap();
        assert!(!text.contains("[]") && !text.contains("\"\""), "{text}");
        validate_audit_event(&text).unwrap();
        assert_eq!(ev["type"]["code"], "rest");
        assert_eq!(ev["agent"][0]["requestor"], true);
    }
    let search = &events[0];
    assert_eq!(search["action"], "E");
    assert_eq!(search["subtype"][0]["code"], "search-type");
    assert_eq!(search["entity"][0]["what"]["reference"], "Patient/0");
    assert_eq!(search["entity"][1]["role"]["code"], "24");
    assert!(
        search["meta"]["profile"][0]
            .as_str()
            .unwrap()
            .ends_with("PatientQuery")
    );
    let refused = &events[10];
    assert_eq!(refused["outcome"], "4");
    assert!(
        refused["meta"]["profile"][0]
            .as_str()
            .unwrap()
            .ends_with("BasicAudit.Read")
    );
    assert_eq!(events[11]["entity"][0]["what"]["reference"], "Patient/1");
    assert_eq!(events[12]["entity"][0]["what"]["reference"], "Patient/2");
    assert_eq!(events[12]["action"], "R");
    assert!(validate_audit_event(r#"{"resourceType":"Patient"}"#).is_err());
}

#[test]
fn times_are_rfc3339_dates_or_ages() {
    let now = datetime!(2024-02-29 12:00 UTC);
    assert_eq!(
        parse_time("6y", now).unwrap(),
        datetime!(2018-02-28 12:00 UTC)
    );
    assert_eq!(
        parse_time("30d", now).unwrap(),
        datetime!(2024-01-30 12:00 UTC)
    );
    assert_eq!(
        parse_time("12h", now).unwrap(),
        datetime!(2024-02-29 00:00 UTC)
    );
    assert_eq!(
        parse_time("2023-05-01", now).unwrap(),
        datetime!(2023-05-01 00:00 UTC)
    );
    assert_eq!(
        parse_time("2023-05-01T10:00:00+02:00", now).unwrap(),
        datetime!(2023-05-01 08:00 UTC)
    );
    for bad in ["", "y", "6", "6x", "-3d", "99999999999d", "yesterday"] {
        assert!(parse_time(bad, now).is_err(), "{bad}");
    }
    let _ = OffsetDateTime::now_utc();
}
