//! Writes a synthetic population as NDJSON.
//!
//! `cargo run -p accord-testkit --example write-fixtures -- <dir> <seed> <patients>`
//! (the committed sample is `fixtures/population 7 40`).

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, seed, patients] = args.as_slice() else {
        return usage();
    };
    let (Ok(seed), Ok(patients)) = (seed.parse::<u64>(), patients.parse::<usize>()) else {
        return usage();
    };
    let dir = PathBuf::from(dir);
    let population = accord_testkit::population::generate(seed, patients);
    // Remove stale files first so a type that disappeared does not linger.
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries.flatten() {
            if entry.path().extension().is_some_and(|e| e == "ndjson")
                && let Err(e) = std::fs::remove_file(entry.path())
            {
                return fail(&format!("cannot remove `{}`: {e}", entry.path().display()));
            }
        }
    }
    match population.write_ndjson(&dir) {
        Ok(()) => {
            println!(
                "wrote {} resources to {}",
                population.resources.len(),
                dir.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(&format!("cannot write `{}`: {e}", dir.display())),
    }
}

fn usage() -> ExitCode {
    fail("usage: write-fixtures <dir> <seed> <patients>")
}

#[expect(
    clippy::print_stderr,
    reason = "a command-line tool reports errors on stderr"
)]
fn fail(message: &str) -> ExitCode {
    eprintln!("{message}");
    ExitCode::FAILURE
}
