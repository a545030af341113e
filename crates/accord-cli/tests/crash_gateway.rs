//! Crash harness of the whole gateway: the real `accord serve` process,
//! under concurrent mTLS HTTPS load, is killed with SIGKILL at random
//! moments (seeded) and restarted on the same audit directory with no
//! manual step. Every response a client received with an `X-Audit-Seq`
//! receipt must have its record in the log (same seq, request id and
//! target), and the whole log must verify.
//!
//! `ACCORD_GATEWAY_CRASH_KILLS=1000` for the long run (docs/audit-store.md).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::cast_possible_truncation
)] // test code: a panic is a failed test

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use accord_audit::{Verifier, VerifyOptions, read_records, verify};
use accord_testkit::client::PartnerClient;
use accord_testkit::population;
use support::{Deployment, PATIENTS};

const CI_KILLS: usize = 50;
const CLIENTS: usize = 8;
const SEED: u64 = 0x6a7e_c4a5;

/// A receipt a client holds: what it asked for and what it was told.
#[derive(Debug, Clone)]
struct Receipt {
    request_id: String,
    target: String,
    status: u16,
}

type Receipts = Arc<Mutex<BTreeMap<u64, Receipt>>>;

/// One client's requests until it is stopped: permitted reads and
/// searches, and reads for a purpose no agreement allows (403, audited too).
async fn load(client: PartnerClient, base: String, seed: u64, receipts: Receipts) {
    let mut rng = fastrand::Rng::with_seed(seed);
    loop {
        let patient = population::patient_id(rng.usize(1..=PATIENTS));
        let (path, purpose) = match rng.u8(0..4) {
            0 => (format!("Observation?patient={patient}"), "TREAT"),
            1 => (format!("Patient/{patient}"), "HPAYMT"),
            _ => (format!("Patient/{patient}"), "TREAT"),
        };
        let url = format!("{base}/{path}");
        let Ok(response) = client.get(&url, purpose).await else {
            // The gateway died mid-request: no receipt, nothing to check.
            continue;
        };
        let Some(seq) = response.header("x-audit-seq") else {
            continue;
        };
        let receipt = Receipt {
            request_id: response.header("x-request-id").unwrap().to_owned(),
            target: format!("/fhir/{path}"),
            status: response.status,
        };
        let seq: u64 = seq.parse().unwrap();
        let previous = receipts.lock().unwrap().insert(seq, receipt);
        assert!(previous.is_none(), "audit seq {seq} handed out twice");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gateway_killed_under_load_keeps_every_receipted_record() {
    let kills: usize = std::env::var("ACCORD_GATEWAY_CRASH_KILLS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(CI_KILLS);
    let deployment = Deployment::new("").await;
    let mut rng = fastrand::Rng::with_seed(SEED);
    let receipts: Receipts = Arc::default();
    let started = Instant::now();
    for kill in 0..=kills {
        // Restart on the same audit directory: recovery needs no manual step.
        let serve = tokio::task::block_in_place(|| deployment.serve(kill));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                tokio::spawn(load(
                    deployment.client(),
                    serve.base.clone(),
                    rng.u64(..) ^ c as u64,
                    Arc::clone(&receipts),
                ))
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(rng.u64(50..400))).await;
        if kill < kills {
            tokio::task::block_in_place(|| serve.kill()); // SIGKILL
        } else {
            // The last run ends cleanly (final checkpoint signed).
            tokio::task::block_in_place(|| serve.stop());
        }
        for client in clients {
            client.abort();
            let _ = client.await;
        }
    }
    let elapsed = started.elapsed();

    let audit_dir = deployment.audit_dir();
    let records = read_records(&audit_dir).unwrap();
    let receipts = receipts.lock().unwrap();
    for (seq, receipt) in receipts.iter() {
        let record = records
            .get(*seq as usize - 1)
            .unwrap_or_else(|| panic!("receipted record {seq} lost: {receipt:?}"));
        assert_eq!(record.seq, *seq);
        assert_eq!(record.request_id, receipt.request_id, "record {seq}");
        assert_eq!(record.target, receipt.target, "record {seq}");
        assert_eq!(record.status, receipt.status, "record {seq}");
    }
    let key =
        Verifier::parse(&std::fs::read_to_string(audit_dir.join("signing.pub")).unwrap()).unwrap();
    let report = verify(&audit_dir, &key, &VerifyOptions::default()).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert!(
        receipts.len() > kills,
        "too few receipts ({}) to mean anything",
        receipts.len()
    );
    let denied = receipts.values().filter(|r| r.status == 403).count();
    // Each restart says when it cut a record torn by the kill before it.
    let torn: usize = (0..=kills)
        .map(|run| {
            std::fs::read_to_string(deployment.path().join(format!("serve-{run}.stderr")))
                .unwrap_or_default()
                .matches("cut an incomplete final audit record")
                .count()
        })
        .sum();
    assert!(denied > 0, "the load includes denied requests");
    eprintln!(
        "gateway crash harness: {kills} SIGKILLs under {CLIENTS} mTLS clients, {} receipts (of which {denied} denials) all in the log, {} records in log, {torn} torn tails cut on restart, log verifies ({:.1} s)",
        receipts.len(),
        records.len(),
        elapsed.as_secs_f64()
    );
}
