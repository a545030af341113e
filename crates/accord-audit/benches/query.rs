//! Patient query over a large generated log: records written straight into
//! segment files (no fsync; the writer is benchmarked in `store`), indexed
//! with `Index::catch_up` (timed and printed), then the patient query timed
//! by criterion. Size: `ACCORD_QUERY_BENCH_RECORDS` (default 200,000).
//! `cargo bench -p accord-audit --bench query`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::cast_possible_truncation
)]

use std::io::Write as _;
use std::path::Path;
use std::time::Instant;

use accord_audit::query::{Filter, query};
use accord_audit::segment::{SEGMENTS_DIR, encode_frame, header, segment_name};
use accord_audit::{AgreementRef, AuditRecord, DecisionKind, Index, PatientRelease, TypeCounts};
use criterion::{Criterion, criterion_group, criterion_main};

/// Records per patient on average.
const PER_PATIENT: u64 = 20;
const SEGMENT: usize = 64 << 20;

fn record(seq: u64, patients: u64, rng: &mut fastrand::Rng) -> AuditRecord {
    let partner = ["maple-primary", "oak-hospital", "birch-bh", "cedar-cbo"][rng.usize(..4)];
    AuditRecord {
        seq,
        time: time::OffsetDateTime::UNIX_EPOCH
            + time::Duration::seconds(1_700_000_000 + seq as i64 / 50),
        request_id: format!("{seq:016x}"),
        partner: Some(partner.into()),
        partner_name: Some(format!("{partner} organization")),
        peer: "10.1.2.3:44312".into(),
        purpose: Some(["TREAT", "HPAYMT", "HOPERAT"][rng.usize(..3)].into()),
        method: "GET".into(),
        target: "/Observation?patient=Patient/123&_count=50".into(),
        path: Some("/Observation".into()),
        interaction: Some("search-type".into()),
        resource_type: Some("Observation".into()),
        decision: if rng.u8(..10) == 0 {
            DecisionKind::Deny
        } else {
            DecisionKind::Permit
        },
        rule: "permit: agreement care-coordination v1 grant clinical".into(),
        agreement: Some(AgreementRef {
            id: format!("dua-{}", rng.u8(..8)),
            version: 1,
            grant: "clinical".into(),
        }),
        patients: vec![PatientRelease {
            patient: format!("Patient/{}", rng.u64(..patients)),
            sensitivity: Vec::new(),
            resources: vec![TypeCounts {
                resource_type: "Observation".into(),
                released: 12,
                withheld: 1,
                redacted: 0,
            }],
        }],
        status: 200,
        bytes: 18_000,
        latency_us: 4_000,
        ..AuditRecord::default()
    }
}

/// Writes `n` records into segments under `dir`.
fn generate(dir: &Path, n: u64) {
    let seg_dir = dir.join(SEGMENTS_DIR);
    std::fs::create_dir_all(&seg_dir).unwrap();
    let mut rng = fastrand::Rng::with_seed(7);
    let patients = (n / PER_PATIENT).max(1);
    let mut seq = 1;
    while seq <= n {
        let mut buf = Vec::with_capacity(SEGMENT + 4096);
        buf.extend_from_slice(&header(seq));
        let first = seq;
        while seq <= n && buf.len() < SEGMENT {
            let payload = serde_json::to_vec(&record(seq, patients, &mut rng)).unwrap();
            encode_frame(&payload, &mut buf);
            seq += 1;
        }
        let mut f = std::fs::File::create(seg_dir.join(segment_name(first))).unwrap();
        f.write_all(&buf).unwrap();
    }
}

/// Bytes of the files under `path`.
fn size(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// This process's peak resident memory so far (Linux `VmHWM`).
fn peak_rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l.trim_start_matches("VmHWM:").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn patient_query(c: &mut Criterion) {
    let n: u64 = std::env::var("ACCORD_QUERY_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let dir = match std::env::var("ACCORD_QUERY_BENCH_DIR") {
        Ok(d) => std::path::PathBuf::from(d),
        Err(_) => tempfile::tempdir().unwrap().keep(),
    };
    if !dir.join(SEGMENTS_DIR).exists() {
        let t = Instant::now();
        generate(&dir, n);
        eprintln!(
            "generated {n} records in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
    let index = Index::open(&dir).unwrap();
    let t = Instant::now();
    let added = index.catch_up().unwrap();
    index.flush().unwrap();
    eprintln!(
        "indexed {added} records in {:.1} s ({:.0} records/s); log {:.0} MB, index {:.0} MB ({}); peak RSS {}",
        t.elapsed().as_secs_f64(),
        added as f64 / t.elapsed().as_secs_f64().max(1e-9),
        size(&dir.join(SEGMENTS_DIR)) as f64 / 1e6,
        size(&dir.join("index")) as f64 / 1e6,
        dir.join("index").display(),
        peak_rss()
    );
    let patients = (n / PER_PATIENT).max(1);
    let mut rng = fastrand::Rng::with_seed(99);
    let mut found = 0usize;
    let mut queries = 0usize;
    let mut group = c.benchmark_group("query");
    group.sample_size(50);
    group.bench_function(format!("patient_{n}_records"), |b| {
        b.iter(|| {
            let filter = Filter {
                patient: Some(format!("Patient/{}", rng.u64(..patients))),
                ..Filter::default()
            };
            found += query(&index, &filter).unwrap().len();
            queries += 1;
        });
    });
    group.finish();
    eprintln!(
        "average {:.1} records per patient query; peak RSS {}",
        found as f64 / queries.max(1) as f64,
        peak_rss()
    );
    if std::env::var("ACCORD_QUERY_BENCH_DIR").is_err() {
        drop(index);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

criterion_group!(benches, patient_query);
criterion_main!(benches);
