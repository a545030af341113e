//! `accord witness`: a small C2SP tlog-witness server with its own key and
//! state. It cosigns a log's checkpoints only while each one extends the
//! last it saw, so a log rewritten after a checkpoint was witnessed can
//! never be cosigned again. The checks are in `accord_audit::witness`; this
//! is the key handling and the HTTP.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use accord_audit::witness::Witness;
use accord_audit::{Cosigner, Verifier};
use anyhow::{Context as _, bail};

use crate::output::outln;

mod server;

#[derive(Debug, clap::Args)]
pub struct WitnessArgs {
    /// Address to listen on (plain HTTP; put TLS in front for the Internet).
    #[arg(long)]
    listen: SocketAddr,
    /// The witness's private key; made (mode 0600) when missing, with
    /// `--name`, and its public key printed.
    #[arg(long)]
    key: PathBuf,
    /// The witness's name when a key is made, e.g. `witness.example.org/w1`.
    #[arg(long, default_value = "accord-witness")]
    name: String,
    /// Where the witness keeps the latest checkpoint it cosigned per log.
    #[arg(long)]
    state: PathBuf,
    /// A log this witness follows: `ORIGIN=PUBKEY`, the log's origin and
    /// its checkpoint verifier key (text, or a file holding it).
    #[arg(long = "log-key", required = true)]
    log_keys: Vec<String>,
}

pub async fn run(args: WitnessArgs) -> anyhow::Result<()> {
    crate::logging::init(&accord_gateway::config::LogConfig::default());
    let cosigner = load_or_create(&args.key, &args.name)?;
    let mut logs = Vec::new();
    for spec in &args.log_keys {
        logs.push(parse_log_key(spec)?);
    }
    outln!("witness key  {}", cosigner.public().encode())?;
    for log in &logs {
        outln!("follows      {}", log.name())?;
    }
    let witness = Witness::new(cosigner, logs, &args.state)
        .with_context(|| format!("witness state {}", args.state.display()))?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listen on {}", args.listen))?;
    outln!("listening    http://{}", listener.local_addr()?)?;
    server::serve(listener, Arc::new(witness)).await
}

/// `ORIGIN=PUBKEY` (the key as text or a file); the key must be the
/// origin's.
fn parse_log_key(spec: &str) -> anyhow::Result<Verifier> {
    let (origin, key) = spec
        .split_once('=')
        .with_context(|| format!("`{spec}`: expected ORIGIN=PUBKEY"))?;
    let text = if Path::new(key).is_file() {
        std::fs::read_to_string(key).with_context(|| format!("read {key}"))?
    } else {
        key.to_owned()
    };
    let verifier = Verifier::parse(&text).with_context(|| format!("log key for `{origin}`"))?;
    if verifier.name() != origin {
        bail!(
            "the key `{}` is for the log `{}`, not `{origin}`",
            verifier.encode(),
            verifier.name()
        );
    }
    Ok(verifier)
}

fn load_or_create(path: &Path, name: &str) -> anyhow::Result<Cosigner> {
    use std::io::Write as _;
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    match std::fs::metadata(path) {
        Ok(meta) => {
            if meta.permissions().mode() & 0o077 != 0 {
                bail!(
                    "{}: a witness key must be readable by its owner only (chmod 600)",
                    path.display()
                );
            }
            let text = std::fs::read_to_string(path)?;
            Ok(Cosigner::parse(&text).with_context(|| format!("{}", path.display()))?)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let cosigner = Cosigner::generate(name)?;
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)?;
            }
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .with_context(|| format!("create {}", path.display()))?;
            writeln!(file, "{}", cosigner.encode())?;
            file.sync_all()?;
            std::fs::write(
                path.with_extension("pub"),
                format!("{}\n", cosigner.public().encode()),
            )?;
            Ok(cosigner)
        }
        Err(e) => Err(e).with_context(|| format!("read {}", path.display())),
    }
}
