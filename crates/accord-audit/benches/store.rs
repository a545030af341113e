//! Store benchmarks: durable records/s with 64 concurrent writers, single
//! writer append latency (p50/p99 printed), verify throughput, inclusion
//! proof time. `cargo bench -p accord-audit --bench store`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::cast_possible_truncation
)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use accord_audit::{
    AuditRecord, AuditSink, AuditStore, DecisionKind, Tree, VerifyOptions, merkle, verify,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// A record whose JSON is 512 bytes.
fn record_512() -> AuditRecord {
    let mut record = AuditRecord {
        request_id: "0123456789abcdef".into(),
        partner: Some("maple-primary".into()),
        peer: "10.1.2.3:44312".into(),
        purpose: Some("TREAT".into()),
        method: "GET".into(),
        target: "/Observation?patient=Patient/123&_count=50".into(),
        decision: DecisionKind::Permit,
        status: 200,
        latency_us: 1234,
        ..AuditRecord::default()
    };
    record.seq = 1_000_000;
    let len = serde_json::to_vec(&record).unwrap().len();
    record.rule = "r".repeat(512 - len);
    assert_eq!(serde_json::to_vec(&record).unwrap().len(), 512);
    record
}

fn durable_concurrent(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) =
        AuditStore::open(&dir.path().join("audit"), &dir.path().join("signing.key")).unwrap();
    let store = Arc::new(store);
    let record = record_512();
    let mut group = c.benchmark_group("append");
    group.sample_size(10);
    group.throughput(Throughput::Elements(64 * 64));
    group.bench_function("durable_64_writers_x64", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let handles: Vec<_> = (0..64)
                    .map(|_| {
                        let store = Arc::clone(&store);
                        let record = record.clone();
                        std::thread::spawn(move || {
                            for _ in 0..64 {
                                store.append(&record).unwrap();
                            }
                        })
                    })
                    .collect();
                for h in handles {
                    h.join().unwrap();
                }
            }
            start.elapsed()
        });
    });
    group.finish();
}

/// The disk's floor for one durable append: `fdatasync` after writing one
/// 520-byte frame, appending (the file grows) and overwriting zeros written
/// in advance (what the store does). Printed, not timed by criterion.
fn fdatasync_floor(_: &mut Criterion) {
    use std::os::unix::fs::FileExt as _;
    const N: usize = 2000;
    let dir = tempfile::tempdir().unwrap();
    let frame = vec![b'x'; 520];
    for (name, zeroed) in [("append", false), ("overwrite zeroed", true)] {
        let file = std::fs::File::create(dir.path().join(name)).unwrap();
        if zeroed {
            file.write_all_at(&vec![0; frame.len() * N], 0).unwrap();
            file.sync_all().unwrap();
        }
        let mut samples: Vec<Duration> = (0..N)
            .map(|i| {
                let start = Instant::now();
                file.write_all_at(&frame, (i * frame.len()) as u64).unwrap();
                file.sync_data().unwrap();
                start.elapsed()
            })
            .collect();
        samples.sort_unstable();
        eprintln!(
            "raw write+fdatasync ({name}) over {N}: p50 {:?}, p99 {:?}, max {:?}",
            samples[N / 2],
            samples[N * 99 / 100],
            samples[N - 1]
        );
    }
}

fn single_writer_latency(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) =
        AuditStore::open(&dir.path().join("audit"), &dir.path().join("signing.key")).unwrap();
    let record = record_512();
    // Percentiles, which criterion does not report.
    let mut samples: Vec<Duration> = (0..2000)
        .map(|_| {
            let start = Instant::now();
            store.append(&record).unwrap();
            start.elapsed()
        })
        .collect();
    samples.sort_unstable();
    eprintln!(
        "single-writer append latency over 2000 appends: p50 {:?}, p99 {:?}, max {:?}",
        samples[1000], samples[1980], samples[1999]
    );
    c.bench_function("append/single_writer", |b| {
        b.iter(|| store.append(black_box(&record)).unwrap());
    });
}

fn verify_throughput(c: &mut Criterion) {
    const N: u64 = 100_000;
    let dir = tempfile::tempdir().unwrap();
    let (store, _) =
        AuditStore::open(&dir.path().join("audit"), &dir.path().join("signing.key")).unwrap();
    let store = Arc::new(store);
    let record = record_512();
    let handles: Vec<_> = (0..64)
        .map(|_| {
            let store = Arc::clone(&store);
            let record = record.clone();
            std::thread::spawn(move || {
                for _ in 0..N / 64 {
                    store.append(&record).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let key = store.verifier().clone();
    store.close();
    let mut group = c.benchmark_group("verify");
    group.sample_size(10);
    group.throughput(Throughput::Elements(N / 64 * 64));
    group.bench_function("full_log_100k", |b| {
        b.iter(|| {
            let report = verify(dir.path(), &key, &VerifyOptions::default()).unwrap();
            assert!(report.is_ok());
        });
    });
    group.finish();
}

fn inclusion_proof(c: &mut Criterion) {
    let mut tree = Tree::new();
    for i in 0u32..1_000_000 {
        tree.push(merkle::leaf_hash(&i.to_le_bytes()));
    }
    let size = tree.size();
    let root = tree.root();
    let proof = tree.inclusion_proof(123_457, size).unwrap();
    eprintln!(
        "inclusion proof in a tree of {size}: {} hashes = {} bytes (ceil(log2 n) x 32 = {})",
        proof.len(),
        proof.len() * 32,
        (64 - (size - 1).leading_zeros()) * 32
    );
    c.bench_function("proof/inclusion_1m", |b| {
        b.iter(|| tree.inclusion_proof(black_box(123_457), size).unwrap());
    });
    let leaf = tree.leaf(123_457).unwrap();
    c.bench_function("proof/verify_inclusion_1m", |b| {
        b.iter(|| {
            merkle::verify_inclusion(123_457, size, &leaf, black_box(&proof), &root).unwrap();
        });
    });
}

criterion_group!(
    benches,
    durable_concurrent,
    fdatasync_floor,
    single_writer_latency,
    verify_throughput,
    inclusion_proof
);
criterion_main!(benches);
