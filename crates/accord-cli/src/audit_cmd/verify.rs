//! `accord audit verify` and `accord audit checkpoint export`.

use std::path::{Path, PathBuf};

use accord_audit::store::witnessed::read_witnessed;
use accord_audit::{Checkpoint, CosignatureKey, VerifyOptions, store, verify};
use anyhow::{Context as _, bail};
use clap::Subcommand;

use super::{load_key, load_key_text};
use crate::output::outln;

#[derive(Debug, Subcommand)]
pub enum CheckpointCommand {
    /// Write the latest checkpoint (the witnessed one, with its
    /// cosignatures, when it is the latest) to a file to keep elsewhere;
    /// `verify --against FILE` later checks the log still extends it.
    Export {
        #[command(flatten)]
        dir: super::DirArg,
        /// Where to write it (`-` for standard output).
        #[arg(long, short)]
        out: PathBuf,
    },
}

pub fn run_checkpoint(command: CheckpointCommand) -> anyhow::Result<()> {
    let CheckpointCommand::Export { dir, out } = command;
    let dir = dir.dir;
    let latest = std::fs::read_to_string(dir.join(store::LATEST_CHECKPOINT_FILE))
        .with_context(|| format!("read the latest checkpoint in {}", dir.display()))?;
    let size = |note: &str| Checkpoint::parse_note(note).map(|cp| cp.size).ok();
    let note = match read_witnessed(&dir)? {
        Some(witnessed) if size(&witnessed) >= size(&latest) => witnessed,
        _ => {
            eprintln!(
                "note: the latest checkpoint is not witnessed yet; exporting it without cosignatures"
            );
            latest
        }
    };
    if out == Path::new("-") {
        outln!("{}", note.trim_end())?;
    } else {
        std::fs::write(&out, &note).with_context(|| format!("write {}", out.display()))?;
        let cp = Checkpoint::parse_note(&note)?;
        outln!(
            "wrote      {} (`{}`, {} records, root {})",
            out.display(),
            cp.origin,
            cp.size,
            cp.root
        )?;
    }
    Ok(())
}

pub fn run(
    dir: &Path,
    key: Option<&str>,
    against: &[PathBuf],
    witness_keys: &[String],
    witnesses_required: Option<usize>,
) -> anyhow::Result<()> {
    let key = match key {
        Some(key) => load_key(key)?,
        None => {
            let path = dir.join(store::PUBLIC_KEY_FILE);
            eprintln!(
                "note: using the public key in {}; pass --key with the copy you keep",
                path.display()
            );
            load_key(&path.display().to_string())?
        }
    };
    let mut options = VerifyOptions::default();
    for path in against {
        let note =
            std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
        options
            .kept_checkpoints
            .push((path.display().to_string(), note));
    }
    for text in witness_keys {
        options
            .witness_keys
            .push(CosignatureKey::parse(&load_key_text(text)?).context("witness key")?);
    }
    options.witnesses_required = witnesses_required.unwrap_or(options.witness_keys.len());
    let report = verify(dir, &key, &options)?;
    outln!("log        {} (`{}`)", dir.display(), key.name())?;
    outln!(
        "records    {} in {} segments",
        report.records,
        report.segments
    )?;
    outln!("root       {}", report.root)?;
    outln!(
        "signed     {} checkpoints checked; largest signed size {}",
        report.checkpoints,
        report.signed_size
    )?;
    if let Some(w) = &report.witnessed {
        outln!(
            "witnessed  size {} cosigned by {} ({})",
            w.size,
            w.cosigned_by.len(),
            w.cosigned_by.join(", ")
        )?;
    }
    if let Some(torn) = &report.torn_tail {
        outln!(
            "torn tail  {} bytes at {} offset {} (an interrupted write; cut on next open)",
            torn.bytes,
            torn.segment.display(),
            torn.offset
        )?;
    }
    if report.readable < report.records {
        outln!(
            "readable   {} of {} records",
            report.readable,
            report.records
        )?;
    }
    for gap in report.damaged.iter().filter(|d| d.quarantined) {
        outln!("gap        {gap}")?;
    }
    if report.records > report.signed_size {
        outln!(
            "unsigned   {} records after the last checkpoint",
            report.records - report.signed_size
        )?;
    }
    if report.is_ok() {
        outln!("ok")?;
        return Ok(());
    }
    for problem in &report.problems {
        outln!("PROBLEM    {problem}")?;
    }
    bail!("{} problems found", report.problems.len())
}
