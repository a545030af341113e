//! The insider attack on a log whose signing key they hold: delete a
//! record, renumber the rest, re-sign. Plain `verify` cannot see it; a
//! witnessed checkpoint and a checkpoint kept elsewhere (`--against`) do,
//! and no witness cosigns the rewritten log.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::fs;
use std::path::Path;

use accord_audit::store::witnessed::{WITNESSED_FILE, read_witnessed, store_witnessed};
use accord_audit::witness::{AddCheckpoint, Witness};
use accord_audit::{
    AuditRecord, AuditSink, AuditStore, Checkpoint, Cosigner, DecisionKind, Signer, StoreOptions,
    VerifyOptions, read_records, verify,
};

fn record(i: usize) -> AuditRecord {
    AuditRecord {
        request_id: format!("req-{i}"),
        partner: Some("acme".into()),
        method: "GET".into(),
        target: format!("/Patient/{i}"),
        decision: DecisionKind::Permit,
        rule: "grant".into(),
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

/// Writes `records` into a new log in `dir` and signs it; returns the note.
fn write(dir: &Path, key: &Signer, records: &[AuditRecord]) -> (AuditStore, String) {
    let (store, _) = AuditStore::open_with(dir, options(key)).unwrap();
    for r in records {
        let mut r = r.clone();
        r.seq = 0;
        store.append(&r).unwrap();
    }
    let note = store.checkpoint().unwrap();
    (store, note)
}

/// Asks `witness` to cosign `note`, as the gateway would.
fn witness_it(witness: &Witness, store: &AuditStore, note: &str, old: u64) -> Result<String, u16> {
    let cp = Checkpoint::parse_note(note).unwrap();
    let proof = store
        .consistency_proof(old, cp.size)
        .unwrap()
        .unwrap_or_default();
    let body = AddCheckpoint {
        old,
        proof,
        note: note.to_owned(),
    }
    .encode();
    witness
        .add_checkpoint(body.as_bytes(), 1_700_000_000)
        .map(|line| format!("{note}{line}"))
        .map_err(|e| e.status())
}

#[test]
fn a_renumbered_and_re_signed_log_fails_against_witnesses_and_a_kept_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("audit");
    let key = Signer::generate("insider.test/audit").unwrap();
    let w = Cosigner::generate("witness.test/w1").unwrap();
    let witness_key = w.public();
    let witness = Witness::new(w, vec![key.verifier()], &tmp.path().join("w1")).unwrap();

    let originals: Vec<AuditRecord> = (0..10).map(record).collect();
    let (store, note) = write(&dir, &key, &originals);
    let cosigned = witness_it(&witness, &store, &note, 0).unwrap();
    store_witnessed(&dir, &cosigned).unwrap();
    store.close();
    let kept = tmp.path().join("kept-checkpoint");
    fs::write(&kept, read_witnessed(&dir).unwrap().unwrap()).unwrap();

    let with_witness = |required| VerifyOptions {
        witness_keys: vec![witness_key.clone()],
        witnesses_required: required,
        ..VerifyOptions::default()
    };
    assert!(
        verify(&dir, &key.verifier(), &with_witness(1))
            .unwrap()
            .is_ok()
    );

    // The insider deletes record 4, renumbers the rest and re-signs.
    let mut rewritten = read_records(&dir).unwrap();
    rewritten.remove(3);
    let forged_dir = tmp.path().join("forged");
    let (forged_store, forged_note) = write(&forged_dir, &key, &rewritten);
    for name in ["segments", "checkpoints.log", "checkpoint"] {
        let (from, to) = (forged_dir.join(name), dir.join(name));
        if to.is_dir() {
            fs::remove_dir_all(&to).unwrap();
            fs::create_dir_all(&to).unwrap();
            for entry in fs::read_dir(&from).unwrap() {
                let entry = entry.unwrap();
                fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
            }
        } else {
            fs::copy(from, to).unwrap();
        }
    }
    // Without witnesses or a kept checkpoint the rewrite passes.
    let plain = verify(&dir, &key.verifier(), &VerifyOptions::default()).unwrap();
    assert!(plain.is_ok(), "{:?}", plain.problems);
    assert_eq!(plain.records, 9);

    // Against the witnessed checkpoint it does not.
    let report = verify(&dir, &key.verifier(), &with_witness(1)).unwrap();
    assert!(!report.is_ok());
    assert!(
        report.problems.iter().any(|p| p.location == WITNESSED_FILE
            && p.what.contains("rewritten after they saw it")),
        "{:?}",
        report.problems
    );
    // Nor against the checkpoint kept elsewhere (`verify --against`).
    let against = VerifyOptions {
        kept_checkpoints: vec![("kept".into(), fs::read_to_string(&kept).unwrap())],
        ..VerifyOptions::default()
    };
    let report = verify(&dir, &key.verifier(), &against).unwrap();
    assert!(
        report.problems.iter().any(|p| p.location == "kept"),
        "{:?}",
        report.problems
    );
    // Deleting the witnessed checkpoint too leaves none to show.
    fs::remove_file(dir.join(WITNESSED_FILE)).unwrap();
    let report = verify(&dir, &key.verifier(), &with_witness(1)).unwrap();
    assert!(
        report.problems.iter().any(|p| p.what.contains("missing")),
        "{:?}",
        report.problems
    );

    // And the witness will not cosign the rewritten log: it last saw 10.
    assert_eq!(
        witness_it(&witness, &forged_store, &forged_note, 0),
        Err(409)
    );
    forged_store.append(&record(10)).unwrap();
    forged_store.append(&record(11)).unwrap();
    let grown_note = forged_store.checkpoint().unwrap();
    assert_eq!(
        witness_it(&witness, &forged_store, &grown_note, 10),
        Err(422)
    );
    forged_store.close();
}
