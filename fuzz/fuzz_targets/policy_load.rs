//! Policy files as counsel writes them: TOML parsed with spans, checked
//! against the JSON Schemas, compiled, every error located at file:line:col.
//!
//! Input: a selector byte (which file the bytes replace: an agreement, the
//! partners file, a cohort, a sensitivity set, a template) and the file's
//! text; the rest of the shipped policies/ stay as they are (with a small
//! sensitivity set, fuzz/sensitivity.toml, made by fuzz/seed-corpus).
//! Properties: no panic; every error renders as text.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use accord_policy::{PolicySet, PolicySources, SourceFile};
use libfuzzer_sys::fuzz_target;

fn shipped() -> &'static PolicySources {
    static SOURCES: OnceLock<PolicySources> = OnceLock::new();
    SOURCES.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
        let mut sources = match PolicySources::read_dir(&dir) {
            Ok(sources) => sources,
            Err(e) => panic!("the shipped policies do not load: {e}"),
        };
        // The shipped value sets are 550 KB of TOML; compiling them for
        // every input would leave few executions for the rest.
        sources.sensitivity = vec![SourceFile::new(
            "sensitivity/default.toml",
            include_str!("../sensitivity.toml"),
        )];
        sources
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let mut sources = shipped().clone();
    match selector % 5 {
        0 => sources
            .agreements
            .push(SourceFile::new("agreements/fuzz.toml", text)),
        1 => sources.partners = SourceFile::new("partners.toml", text),
        2 => sources
            .cohorts
            .push(SourceFile::new("cohorts/fuzz.toml", text)),
        3 => sources.sensitivity = vec![SourceFile::new("sensitivity/fuzz.toml", text)],
        _ => sources
            .templates
            .push(SourceFile::new("templates/fuzz.toml", text)),
    }
    match PolicySet::compile_sources(&sources) {
        Ok(set) => {
            let _ = set.version();
        }
        Err(errors) => {
            let _ = errors.to_string();
        }
    }
});
