//! Patient Consent resources, as shipped in policies/consents/ and as the
//! consent feed pulls them from the upstream (`PulledConsents::compile`).
//!
//! Input: the Consent's JSON text. Properties: no panic; a consent that
//! cannot be read is rejected with errors that render as text, and its
//! stand-in (if any) denies rather than permits.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use accord_policy::consent::{ConsentActors, ConsentIndex, PulledConsents};
use accord_policy::{PolicySet, SourceFile};
use libfuzzer_sys::fuzz_target;
use time::OffsetDateTime;

fn actors() -> &'static ConsentActors {
    static ACTORS: OnceLock<ConsentActors> = OnceLock::new();
    ACTORS.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
        match PolicySet::load_dir(&dir) {
            Ok(set) => ConsentActors::new(set.partners()),
            Err(e) => panic!("the shipped policies do not load: {e}"),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let at = OffsetDateTime::UNIX_EPOCH;
    match PulledConsents::compile("upstream Consent/fuzz", text, actors(), at) {
        Ok(consent) => {
            let _ = PulledConsents::new([consent]);
        }
        Err(rejected) => {
            for error in &rejected.errors {
                let _ = error.to_string();
            }
        }
    }
    let file = SourceFile::new("consents/fuzz.json", text);
    if let Err(errors) = ConsentIndex::compile(&[file], actors()) {
        for error in &errors {
            let _ = error.to_string();
        }
    }
});
