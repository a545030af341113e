//! The `accord` command: argument handling and output only; the work is
//! done by the library crates.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod audit_cmd;
mod config_cmd;
mod demo;
mod logging;
mod output;
mod policy_cmd;
mod policy_referrals;
mod sensitivity_cmd;
mod serve;
mod witness_cmd;

/// Accord: a FHIR R4 gateway that shares patient data between partner
/// organizations under their data-use agreements, and logs every access.
#[derive(Debug, Parser)]
#[command(name = "accord", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Audit log tools: query, disclosures, export, verify, prove, keygen, tail, reindex.
    Audit {
        #[command(subcommand)]
        command: audit_cmd::AuditCommand,
    },
    /// Configuration tools: check.
    Config {
        #[command(subcommand)]
        command: config_cmd::ConfigCommand,
    },
    /// Policy tools for legal teams: check, explain, diff, test, show, sensitivity scan.
    Policy {
        #[command(subcommand)]
        command: policy_cmd::PolicyCommand,
    },
    /// Run the gateway from a configuration file.
    Serve {
        /// Path to accord.toml.
        #[arg(long, short, default_value = "accord.toml", env = "ACCORD_CONFIG")]
        config: PathBuf,
        /// Override `gateway.listen`.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Override `gateway.upstream_url`.
        #[arg(long)]
        upstream: Option<String>,
    },
    /// Run a witness (C2SP tlog-witness) that cosigns audit checkpoints
    /// while each extends the last it saw.
    Witness(witness_cmd::WitnessArgs),
    /// Run a self-contained demo: dev certificates, a synthetic population
    /// behind an in-memory FHIR server, the gateway, and a scripted tour.
    Demo {
        /// Exit after the tour instead of serving until Ctrl-C.
        #[arg(long)]
        once: bool,
        /// Keep certificates, fixtures, policies, config and audit log here
        /// (reused on the next run) instead of a temporary directory.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Port for the gateway (default 8443; a free port with --once).
        #[arg(long)]
        port: Option<u16>,
        /// Patients in the synthetic population (first run of a --dir).
        #[arg(long, default_value_t = 500)]
        patients: usize,
        /// A real FHIR R4 server (e.g. sekmet or HAPI) to load the
        /// population into and put the gateway in front of, instead of the
        /// in-memory one. `tests/interop/run --demo` starts sekmet for this.
        #[arg(long, value_name = "URL")]
        upstream: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Audit { command } => audit_cmd::run(command),
            Command::Config { command } => config_cmd::run(command),
            Command::Witness(args) => witness_cmd::run(args).await,
            Command::Policy { command } => policy_cmd::run(command).await,
            Command::Serve {
                config,
                listen,
                upstream,
            } => serve::run(&config, listen, upstream).await,
            Command::Demo {
                once,
                dir,
                port,
                patients,
                upstream,
            } => {
                demo::run(demo::DemoOptions {
                    once,
                    dir,
                    port,
                    patients,
                    upstream,
                })
                .await
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `accord … | head`: the reader has what it wanted.
        Err(e) if e.is::<output::ReaderGone>() => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
