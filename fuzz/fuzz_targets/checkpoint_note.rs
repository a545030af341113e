//! Signed checkpoints: the C2SP note parser (`Checkpoint::parse_note`),
//! signature checking (`Verifier::open`), verifier keys as operators paste
//! them (`Verifier::parse`), and `checkpoints.log` read back
//! (`read_checkpoint_log`, which steps past garbage and finds a torn tail).
//!
//! Input: a selector byte and text (a note, a key) or bytes (a log file).
//! Properties: no panic; a note the verifier opens parses to the same
//! checkpoint without it; the log's good entries lie inside the file.
#![no_main]

use std::sync::OnceLock;

use accord_audit::{Checkpoint, Signer, Verifier, read_checkpoint_log};
use libfuzzer_sys::fuzz_target;

fn verifier() -> &'static Verifier {
    static VERIFIER: OnceLock<Verifier> = OnceLock::new();
    VERIFIER.get_or_init(|| match Signer::generate("accord.fuzz/log") {
        Ok(signer) => signer.verifier(),
        Err(e) => panic!("no key: {e}"),
    })
}

fn scratch() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => panic!("no scratch directory: {e}"),
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    match selector % 3 {
        0 => {
            let Ok(note) = std::str::from_utf8(rest) else {
                return;
            };
            let parsed = Checkpoint::parse_note(note);
            if let Ok(opened) = verifier().open(note) {
                assert_eq!(parsed.ok(), Some(opened), "open and parse_note disagree");
            }
        }
        1 => {
            let Ok(text) = std::str::from_utf8(rest) else {
                return;
            };
            if let Ok(key) = Verifier::parse(text) {
                let _ = key.encode();
            }
        }
        _ => {
            let dir = scratch().path();
            if std::fs::write(dir.join("checkpoints.log"), rest).is_err() {
                return;
            }
            if let Ok(log) = read_checkpoint_log(dir) {
                assert!(
                    log.good_len <= rest.len() as u64,
                    "good entries past the end"
                );
                for (offset, _) in &log.notes {
                    assert!(
                        *offset < log.good_len.max(1),
                        "a note past the good entries"
                    );
                }
            }
        }
    }
});
