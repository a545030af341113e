//! Memory at open, per million records (issue 17 item 5): writes a log of
//! `ACCORD_MEMORY_RECORDS` records (default 1,000,000) straight into
//! segment files (streaming, so writing costs no memory), then opens it
//! as the gateway does and reads the process's peak and resident memory
//! from /proc/self/status. Ignored in the normal run; the figures are in
//! docs/audit-store.md:
//! `cargo test -p accord-audit --release --test memory -- --ignored --nocapture`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::fs::File;
use std::io::{BufWriter, Write as _};

use accord_audit::segment::{self, encode_frame, header};
use accord_audit::{AuditRecord, AuditStore, DecisionKind, Signer, StoreOptions};

/// `VmHWM` and `VmRSS` of this process, in KiB.
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    };
    (field("VmHWM:"), field("VmRSS:"))
}

#[test]
#[ignore = "writes a log of a million records; run by hand for docs/audit-store.md"]
fn memory_at_open_per_million_records() {
    let records: u64 = std::env::var("ACCORD_MEMORY_RECORDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("audit");
    std::fs::create_dir_all(dir.join(segment::SEGMENTS_DIR)).unwrap();
    let per_segment = 200_000;
    let mut bytes = 0u64;
    let mut seq = 1;
    while seq <= records {
        let path = dir
            .join(segment::SEGMENTS_DIR)
            .join(segment::segment_name(seq));
        let mut out = BufWriter::new(File::create(path).unwrap());
        out.write_all(&header(seq)).unwrap();
        let mut frame = Vec::new();
        for _ in 0..per_segment {
            if seq > records {
                break;
            }
            let record = AuditRecord {
                seq,
                request_id: format!("req-{seq:012}"),
                partner: Some("maple-clinic".into()),
                peer: "10.0.0.9:44312".into(),
                purpose: Some("TREAT".into()),
                method: "GET".into(),
                target: format!("/Observation?patient=Patient/{}", seq % 5000),
                decision: DecisionKind::Permit,
                rule: "grant g1 of agreement dua-maple-2025".into(),
                status: 200,
                ..AuditRecord::default()
            };
            frame.clear();
            encode_frame(&serde_json::to_vec(&record).unwrap(), &mut frame);
            out.write_all(&frame).unwrap();
            bytes += frame.len() as u64;
            seq += 1;
        }
        out.flush().unwrap();
    }
    let key = Signer::generate("memory.test/audit").unwrap();
    let (peak_before, rss_before) = memory();
    let started = std::time::Instant::now();
    let (store, report) = AuditStore::open_with(
        &dir,
        StoreOptions {
            signer: Some(key),
            index: false,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let took = started.elapsed();
    assert_eq!(report.records, records);
    let (peak_after, rss_open) = memory();
    store.close();
    drop(store);
    let (_, rss_closed) = memory();
    eprintln!(
        "memory: {records} records, {:.1} MB of log; before open: peak {} KiB, resident {} KiB; open took {:.1} s, peak {} KiB (+{} KiB), resident while open {} KiB (+{} KiB = {:.0} bytes/record), after close {} KiB",
        bytes as f64 / 1e6,
        peak_before,
        rss_before,
        took.as_secs_f64(),
        peak_after,
        peak_after.saturating_sub(peak_before),
        rss_open,
        rss_open.saturating_sub(rss_before),
        rss_open.saturating_sub(rss_before) as f64 * 1024.0 / records as f64,
        rss_closed
    );
}
