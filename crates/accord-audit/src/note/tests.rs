use super::*;
use crate::merkle::leaf_hash;

fn checkpoint() -> Checkpoint {
    Checkpoint {
        origin: "accord.example/audit".into(),
        size: 42,
        root: leaf_hash(b"x"),
    }
}

#[test]
fn sign_then_open_round_trips() {
    let signer = Signer::generate("accord.example/audit").unwrap();
    let note = signer.sign(&checkpoint());
    assert!(note.starts_with("accord.example/audit\n42\n"));
    assert!(note.contains("\n\n\u{2014} accord.example/audit "));
    let verifier = Verifier::parse(&signer.verifier().encode()).unwrap();
    assert_eq!(verifier.open(&note).unwrap(), checkpoint());
}

#[test]
fn keys_round_trip_through_text() {
    let signer = Signer::generate("log").unwrap();
    let again = Signer::parse(&signer.encode()).unwrap();
    assert_eq!(again.verifier(), signer.verifier());
    assert!(signer.encode().starts_with("PRIVATE+KEY+log+"));
}

#[test]
fn tampered_or_foreign_notes_fail() {
    let signer = Signer::generate("log").unwrap();
    let other = Signer::generate("log").unwrap();
    let note = signer.sign(&checkpoint());
    let changed = note.replacen("42", "43", 1);
    assert!(matches!(
        signer.verifier().open(&changed),
        Err(NoteError::BadSignature(_))
    ));
    assert!(matches!(
        other.verifier().open(&note),
        Err(NoteError::NotSigned(_))
    ));
    assert!(signer.verifier().open("log\n1\n").is_err());
}

/// A Go-compatible vector: the key id of `PeterNeumann` with the public key
/// from golang.org/x/mod/sumdb/note's documentation example.
#[test]
fn verifier_key_from_go_documentation_parses() {
    let vkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    let verifier = Verifier::parse(vkey).unwrap();
    assert_eq!(verifier.name(), "PeterNeumann");
    assert_eq!(verifier.encode(), vkey);
    let note = "If you think cryptography is the answer to your problem,\n\
                then you don't know what your problem is.\n\n\
                \u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
    // The example note is not a checkpoint, so the signature verifies and
    // then the body is refused as a checkpoint.
    assert_eq!(
        verifier.open(note),
        Err(NoteError::Malformed("tree size is not a decimal number"))
    );
}
