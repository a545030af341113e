//! `accord audit …`: the privacy officer's and auditor's tools over the
//! audit store. Argument handling and output only; the work is in
//! `accord-audit`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::output::outln;
use accord_audit::{Follower, InclusionProof, Signer, Verifier, proof, store};
use anyhow::Context as _;
use clap::Subcommand;

mod privacy;
mod verify;

/// Where the audit store is, for every subcommand.
#[derive(Debug, clap::Args)]
pub struct DirArg {
    /// The audit directory (`audit.dir` in accord.toml).
    #[arg(long, default_value = "audit", env = "ACCORD_AUDIT_DIR")]
    dir: PathBuf,
}

/// The checkpoint signing key, kept outside the audit directory.
#[derive(Debug, clap::Args)]
pub struct KeyArg {
    /// The signing key's file (`audit.signing_key` in accord.toml); it
    /// must lie outside the audit directory and have mode 0600.
    #[arg(long = "signing-key", env = "ACCORD_SIGNING_KEY")]
    signing_key: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Make the checkpoint signing key pair (the key file, 0600, and
    /// `<key>.pub` beside it), outside the audit directory.
    Keygen {
        #[command(flatten)]
        dir: DirArg,
        #[command(flatten)]
        key: KeyArg,
        /// The log's name, the origin line of every checkpoint.
        #[arg(long)]
        name: String,
    },
    /// Print an inclusion proof of record `--seq` against the latest
    /// signed checkpoint, checkable with the public key alone.
    Prove {
        #[command(flatten)]
        dir: DirArg,
        #[arg(long)]
        seq: u64,
    },
    /// Check an inclusion proof (from `prove`) with the public key.
    CheckProof {
        /// The public key, or a file holding it (signing.pub).
        #[arg(long)]
        key: String,
        /// The proof file (`-` for standard input).
        #[arg(long)]
        proof: PathBuf,
    },
    /// Verify the whole log: checksums, order, Merkle root against every
    /// signed checkpoint, signatures, consistency.
    Verify {
        #[command(flatten)]
        dir: DirArg,
        /// The public key you keep (or a file holding it). Without it the
        /// key in the audit directory is used, which proves less.
        #[arg(long)]
        key: Option<String>,
        /// A checkpoint you kept earlier (e.g. from `checkpoint export`);
        /// the log must still contain it.
        #[arg(long = "against", visible_alias = "from-checkpoint")]
        against: Vec<PathBuf>,
        /// A witness's public key (or a file holding it) whose
        /// cosignatures count.
        #[arg(long = "witness-key")]
        witness_keys: Vec<String>,
        /// Valid cosignatures the latest witnessed checkpoint must carry
        /// (default: one per --witness-key).
        #[arg(long = "witnesses-required")]
        witnesses_required: Option<usize>,
    },
    /// Signed checkpoints: `export` writes the latest one, with its
    /// witnesses' cosignatures, for keeping outside the gateway.
    Checkpoint {
        #[command(subcommand)]
        command: verify::CheckpointCommand,
    },
    /// Find records by patient, partner, agreement, purpose, decision and
    /// time, from the indexes.
    Query {
        #[command(flatten)]
        dir: DirArg,
        #[command(flatten)]
        args: privacy::QueryArgs,
    },
    /// A patient's accounting of disclosures (HIPAA §164.528) and, for
    /// Part 2 records, the 42 CFR §2.24 list of disclosures.
    Disclosures {
        #[command(flatten)]
        dir: DirArg,
        /// `Patient/<id>`.
        #[arg(long)]
        patient: String,
        /// From (RFC 3339, a date, or an age: 6y, 30d); default: the whole log.
        #[arg(long)]
        since: Option<String>,
        #[arg(long, value_enum, default_value = "text")]
        format: privacy::ReportFormat,
        /// Same as --format csv.
        #[arg(long, conflicts_with_all = ["format", "json", "html"])]
        csv: bool,
        /// Same as --format json.
        #[arg(long, conflicts_with_all = ["format", "html"])]
        json: bool,
        /// Same as --format html (a printable page).
        #[arg(long, conflicts_with = "format")]
        html: bool,
    },
    /// Export records as FHIR R4 AuditEvent NDJSON (IHE BALP), each
    /// validated, to standard output.
    Export {
        #[command(flatten)]
        dir: DirArg,
        #[arg(long, value_enum, default_value = "auditevent")]
        format: privacy::ExportFormat,
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        until: Option<String>,
        /// This gateway's name in AuditEvent.source and the gateway agent.
        #[arg(long, default_value = "accord")]
        gateway: String,
    },
    /// Set damaged records aside so the store opens again: copies each
    /// damaged segment into quarantine/ (with its SHA-256), appends a signed
    /// note of the gap to the log. The gateway must be stopped.
    Quarantine {
        #[command(flatten)]
        dir: DirArg,
        #[command(flatten)]
        key: KeyArg,
        /// Who is doing this (recorded in the note).
        #[arg(long, env = "USER")]
        operator: String,
        /// Why (recorded in the note), e.g. a ticket number.
        #[arg(long)]
        reason: String,
    },
    /// Rebuild the indexes from the log.
    Reindex {
        #[command(flatten)]
        dir: DirArg,
    },
    /// Print records as they are written (Ctrl-C stops).
    Tail {
        #[command(flatten)]
        dir: DirArg,
        /// Start after this record instead of at the end.
        #[arg(long)]
        after: Option<u64>,
    },
}

pub fn run(command: AuditCommand) -> anyhow::Result<()> {
    match command {
        AuditCommand::Keygen { dir, key, name } => keygen(&dir.dir, &key.signing_key, &name),
        AuditCommand::Prove { dir, seq } => {
            let proof = proof::prove(&dir.dir, seq)?;
            outln!("{}", serde_json::to_string_pretty(&proof)?)?;
            Ok(())
        }
        AuditCommand::CheckProof { key, proof } => check_proof(&key, &proof),
        AuditCommand::Verify {
            dir,
            key,
            against,
            witness_keys,
            witnesses_required,
        } => verify::run(
            &dir.dir,
            key.as_deref(),
            &against,
            &witness_keys,
            witnesses_required,
        ),
        AuditCommand::Checkpoint { command } => verify::run_checkpoint(command),
        AuditCommand::Tail { dir, after } => tail(&dir.dir, after),
        AuditCommand::Query { dir, args } => privacy::run_query(&dir.dir, args),
        AuditCommand::Disclosures {
            dir,
            patient,
            since,
            format,
            csv,
            json,
            html,
        } => {
            let format = match (csv, json, html) {
                (true, _, _) => privacy::ReportFormat::Csv,
                (_, true, _) => privacy::ReportFormat::Json,
                (_, _, true) => privacy::ReportFormat::Html,
                _ => format,
            };
            privacy::run_disclosures(&dir.dir, &patient, since.as_deref(), format)
        }
        AuditCommand::Export {
            dir,
            format: privacy::ExportFormat::Auditevent,
            since,
            until,
            gateway,
        } => privacy::run_export(&dir.dir, since.as_deref(), until.as_deref(), &gateway),
        AuditCommand::Reindex { dir } => privacy::run_reindex(&dir.dir),
        AuditCommand::Quarantine {
            dir,
            key,
            operator,
            reason,
        } => run_quarantine(&dir.dir, &key.signing_key, &operator, &reason),
    }
}

fn keygen(dir: &Path, key: &Path, name: &str) -> anyhow::Result<()> {
    store::key::check_outside(key, dir)?;
    let signer = Signer::generate(name)?;
    store::key::write_key_pair(key, &signer)
        .with_context(|| format!("write the key pair {}", key.display()))?;
    outln!("private key  {} (mode 0600)", key.display())?;
    outln!("public key   {}", signer.verifier().encode())?;
    outln!("Give the public key to your auditors; they need nothing else.")?;
    Ok(())
}

/// A key given as text or as the path of a file holding it.
fn load_key_text(key: &str) -> anyhow::Result<String> {
    if Path::new(key).is_file() {
        std::fs::read_to_string(key).with_context(|| format!("read key file {key}"))
    } else {
        Ok(key.to_owned())
    }
}

/// A key given as text or as the path of a file holding it.
fn load_key(key: &str) -> anyhow::Result<Verifier> {
    Ok(Verifier::parse(&load_key_text(key)?)?)
}

fn check_proof(key: &str, path: &Path) -> anyhow::Result<()> {
    let key = load_key(key)?;
    let text = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?
    };
    let proof: InclusionProof = serde_json::from_str(&text).context("not an inclusion proof")?;
    let cp = proof::check(&proof, &key).context("the proof does not verify")?;
    outln!(
        "ok: record {} is in log `{}` of {} records (root {})",
        proof.seq,
        cp.origin,
        cp.size,
        cp.root
    )?;
    Ok(())
}

fn run_quarantine(dir: &Path, key: &Path, operator: &str, reason: &str) -> anyhow::Result<()> {
    store::key::check_outside(key, dir)?;
    let signer =
        store::key::load(key).with_context(|| format!("read the signing key {}", key.display()))?;
    let done = accord_audit::quarantine::quarantine(dir, signer, operator, reason)?;
    for seg in &done.note.segments {
        outln!(
            "copied     segments/{} to {} (sha256 {})",
            seg.name,
            seg.copy,
            seg.sha256
        )?;
    }
    for gap in &done.note.gaps {
        outln!(
            "set aside  records {}–{} of {} at byte offset {} ({})",
            gap.first_seq,
            gap.last_seq,
            gap.segment,
            gap.offset,
            gap.what
        )?;
    }
    outln!(
        "noted      as record {}, signed by a new checkpoint",
        done.seq
    )?;
    Ok(())
}

fn tail(dir: &Path, after: Option<u64>) -> anyhow::Result<()> {
    let mut follower = match after {
        Some(after) => Follower::new(dir, after),
        None => Follower::at_end(dir)?,
    };
    loop {
        for record in follower.poll()? {
            outln!("{}", serde_json::to_string(&record)?)?;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
