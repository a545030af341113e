use super::*;
use crate::merkle::empty_root;
use crate::note::Signer;

fn checkpoint(size: u64) -> Checkpoint {
    Checkpoint {
        origin: "example.test/log".into(),
        size,
        root: empty_root(),
    }
}

#[test]
fn a_cosignature_verifies_with_the_public_key_alone_and_binds_time_and_body() {
    let log = Signer::generate("example.test/log").unwrap();
    let witness = Cosigner::generate("witness.test/w1").unwrap();
    let key = CosignatureKey::parse(&witness.public().encode()).unwrap();
    assert!(key.encode().starts_with("witness.test/w1+"));
    let note = log.sign(&checkpoint(3));
    let line = witness.cosign(&checkpoint(3), 1_700_000_000);
    let cosigned = format!("{note}{line}");
    assert_eq!(key.verify(&cosigned), Ok(1_700_000_000));
    // The log's own key still opens the note with the cosignature on it.
    assert_eq!(log.verifier().open(&cosigned).unwrap().size, 3);
    // Over another checkpoint it does not verify.
    let other = format!("{}{line}", log.sign(&checkpoint(4)));
    assert!(key.verify(&other).is_err());
    // Nor with another timestamp.
    let mut blob = B64
        .decode(line.trim_end().rsplit(' ').next().unwrap())
        .unwrap();
    blob[11] ^= 1;
    let forged = format!("{note}\u{2014} witness.test/w1 {}\n", B64.encode(blob));
    assert!(key.verify(&forged).is_err());
    // A private key round-trips; a signer key is not a cosigner key.
    let again = Cosigner::parse(&witness.encode()).unwrap();
    assert_eq!(again.public(), witness.public());
    assert!(Cosigner::parse(&log.encode()).is_err());
    assert!(CosignatureKey::parse(&log.verifier().encode()).is_err());
}

#[test]
fn only_valid_cosignatures_by_known_keys_are_added_once() {
    let log = Signer::generate("example.test/log").unwrap();
    let w1 = Cosigner::generate("witness.test/w1").unwrap();
    let w2 = Cosigner::generate("witness.test/w2").unwrap();
    let stranger = Cosigner::generate("witness.test/w3").unwrap();
    let keys = [w1.public(), w2.public()];
    let note = log.sign(&checkpoint(3));
    let lines = format!(
        "{}{}{}",
        w1.cosign(&checkpoint(3), 10),
        stranger.cosign(&checkpoint(3), 10),
        w2.cosign(&checkpoint(4), 10)
    );
    let (note, count) = add_cosignatures(&note, &lines, &keys);
    assert_eq!(count, 1);
    let (note, count) = add_cosignatures(&note, &w1.cosign(&checkpoint(3), 10), &keys);
    assert_eq!(count, 1);
    let (note, count) = add_cosignatures(&note, &w2.cosign(&checkpoint(3), 11), &keys);
    assert_eq!(count, 2);
    assert_eq!(signature_lines(&note).count(), 3, "{note}");
}
