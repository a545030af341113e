//! Crash harness: concurrent appenders in a child process are killed with
//! SIGKILL at random moments; after each kill the store is reopened (no
//! manual step) and every acknowledged record must be there, unchanged, and
//! the log must verify. `ACCORD_CRASH_KILLS=1000` for the long run (see
//! docs/audit-store.md).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::cast_possible_truncation
)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use accord_audit::{
    AuditRecord, AuditSink, AuditStore, DecisionKind, StoreOptions, Verifier, VerifyOptions,
    read_records, verify,
};

const CHILD_ENV: &str = "ACCORD_CRASH_CHILD_DIR";
const CI_KILLS: usize = 50;
const WRITERS: usize = 16;

fn options(dir: &Path) -> StoreOptions {
    StoreOptions {
        segment_size: 64 << 10,
        signing_key: Some(dir.with_extension("key")),
        ..StoreOptions::default()
    }
}

/// The child: appends forever from many threads, printing `ack seq id`
/// after each durable append.
#[test]
#[ignore = "run by crash_kill_restart_verify as a child process"]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (store, _) = AuditStore::open_with(Path::new(&dir), options(Path::new(&dir))).unwrap();
    let store = Arc::new(store);
    let run = std::process::id();
    let handles: Vec<_> = (0..WRITERS)
        .map(|t| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                for i in 0.. {
                    let id = format!("{run}-{t}-{i}");
                    let record = AuditRecord {
                        request_id: id.clone(),
                        peer: "127.0.0.1:9".into(),
                        method: "GET".into(),
                        target: format!("/Patient/{i}"),
                        decision: DecisionKind::Permit,
                        rule: "x".repeat(300),
                        status: 200,
                        ..AuditRecord::default()
                    };
                    let seq = store.append(&record).unwrap().seq;
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ack {seq} {id}").unwrap();
                    out.flush().unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn crash_kill_restart_verify() {
    let kills = std::env::var("ACCORD_CRASH_KILLS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(CI_KILLS);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("audit");
    let mut rng = fastrand::Rng::with_seed(0xc4a5);
    let mut acked: BTreeMap<u64, String> = BTreeMap::new();
    let mut torn = 0;
    for kill in 0..kills {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "crash_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let mut parts = line.split(' ');
                if let (Some("ack"), Some(seq), Some(id)) =
                    (parts.next(), parts.next(), parts.next())
                    && let Ok(seq) = seq.parse::<u64>()
                {
                    lines.push((seq, id.to_owned()));
                }
            }
            lines
        });
        std::thread::sleep(Duration::from_millis(rng.u64(30..200)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        for (seq, id) in reader.join().unwrap() {
            assert!(
                acked.insert(seq, id).is_none(),
                "seq {seq} acknowledged twice"
            );
        }
        // Restart: recovery needs no manual step.
        let (store, report) = AuditStore::open_with(&dir, options(&dir))
            .unwrap_or_else(|e| panic!("kill {kill}: reopen failed: {e}"));
        torn += usize::from(report.torn_tail.is_some());
        drop(store);
    }
    let records = read_records(&dir).unwrap();
    for (seq, id) in &acked {
        let record = records
            .get(*seq as usize - 1)
            .unwrap_or_else(|| panic!("acknowledged record {seq} lost"));
        assert_eq!(&record.request_id, id, "record {seq} changed");
        assert_eq!(record.seq, *seq);
    }
    let key = Verifier::parse(&std::fs::read_to_string(dir.join("signing.pub")).unwrap()).unwrap();
    let report = verify(&dir, &key, &VerifyOptions::default()).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert!(
        acked.len() > kills,
        "too few acknowledged appends to mean anything"
    );
    eprintln!(
        "crash harness: {kills} SIGKILLs, {} acknowledged records all present, {} records in log, {torn} torn tails cut, log verifies",
        acked.len(),
        records.len()
    );
}
