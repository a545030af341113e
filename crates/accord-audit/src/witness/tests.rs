use super::*;
use crate::cosign::CosignatureKey;
use crate::merkle::{Tree, leaf_hash};
use crate::note::Signer;

fn tree(records: &[&str]) -> Tree {
    let mut t = Tree::new();
    for r in records {
        t.push(leaf_hash(r.as_bytes()));
    }
    t
}

fn request(log: &Signer, t: &Tree, old: u64) -> Vec<u8> {
    let cp = Checkpoint {
        origin: log.name().into(),
        size: t.size(),
        root: t.root(),
    };
    AddCheckpoint {
        old,
        proof: t.consistency_proof(old, t.size()).unwrap(),
        note: log.sign(&cp),
    }
    .encode()
    .into_bytes()
}

#[test]
fn a_witness_cosigns_growth_and_refuses_forks_stale_and_strangers() {
    let state = tempfile::tempdir().unwrap();
    let log = Signer::generate("example.test/log").unwrap();
    let witness = Witness::new(
        Cosigner::generate("witness.test/w1").unwrap(),
        vec![log.verifier()],
        state.path(),
    )
    .unwrap();
    let key = CosignatureKey::parse(&witness.cosigner().public().encode()).unwrap();
    let three = tree(&["a", "b", "c"]);
    let line = witness
        .add_checkpoint(&request(&log, &three, 0), 100)
        .unwrap();
    let cosigned = format!(
        "{}{line}",
        log.sign(&Checkpoint {
            origin: log.name().into(),
            size: 3,
            root: three.root(),
        })
    );
    assert_eq!(key.verify(&cosigned), Ok(100));
    let five = tree(&["a", "b", "c", "d", "e"]);
    witness
        .add_checkpoint(&request(&log, &five, 3), 101)
        .unwrap();
    // The log forgot what the witness saw: 409 with the size.
    let err = witness
        .add_checkpoint(&request(&log, &five, 3), 102)
        .unwrap_err();
    assert_eq!((err.status(), err.body()), (409, "5\n".to_owned()));
    assert_eq!(parse_size(&err.body()), Some(5));
    // A rewritten log (record "b" deleted, the rest renumbered, re-signed
    // with the log's own key) cannot prove it extends what was cosigned.
    let forged = tree(&["a", "c", "d", "e", "f", "g"]);
    let err = witness
        .add_checkpoint(&request(&log, &forged, 5), 103)
        .unwrap_err();
    assert_eq!(err.status(), 422, "{err}");
    let origin_hash = sha256(log.name().as_bytes()).to_hex();
    let kept =
        std::fs::read_to_string(state.path().join(format!("{origin_hash}.refused"))).unwrap();
    assert!(
        kept.contains("\n6\n"),
        "the refused checkpoint is kept: {kept}"
    );
    // Same size, another root.
    let other_five = tree(&["a", "b", "c", "d", "x"]);
    let err = witness
        .add_checkpoint(&request(&log, &other_five, 5), 104)
        .unwrap_err();
    assert_eq!(err.status(), 422);
    // A stale checkpoint (smaller than the old size it names).
    let mut stale = AddCheckpoint::parse(&request(&log, &three, 0)).unwrap();
    stale.old = 5;
    let err = witness
        .add_checkpoint(stale.encode().as_bytes(), 105)
        .unwrap_err();
    assert_eq!(err.status(), 400, "{err}");
    // The latest cosigned checkpoint is served for monitors.
    let latest = witness.latest(&origin_hash).unwrap();
    assert!(
        latest.contains("\n5\n") && key.verify(&latest).is_ok(),
        "{latest}"
    );
    // Unknown log, wrong key.
    let stranger = Signer::generate("other.test/log").unwrap();
    let err = witness
        .add_checkpoint(&request(&stranger, &three, 0), 106)
        .unwrap_err();
    assert_eq!(err.status(), 404);
    let impostor = Signer::generate("example.test/log").unwrap();
    let err = witness
        .add_checkpoint(&request(&impostor, &five, 5), 107)
        .unwrap_err();
    assert_eq!(err.status(), 403);
    // Garbage.
    for body in [&b"old 01\n\nx"[..], b"new 1\n\n", b"old 0\nnot base64!\n\n"] {
        assert_eq!(witness.add_checkpoint(body, 108).unwrap_err().status(), 400);
    }
}
