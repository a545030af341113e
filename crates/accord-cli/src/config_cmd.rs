//! `accord config check`: validate accord.toml and print the configuration
//! in force (defaults filled in, paths resolved) as TOML.

use std::path::PathBuf;

use crate::output::{out, outln};
use accord_gateway::config::AccordConfig;
use anyhow::Context;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a configuration file and print the effective configuration.
    Check {
        /// Path to accord.toml.
        #[arg(long, short, default_value = "accord.toml", env = "ACCORD_CONFIG")]
        config: PathBuf,
    },
}

pub fn run(command: ConfigCommand) -> anyhow::Result<()> {
    match command {
        ConfigCommand::Check { config } => check(&config),
    }
}

fn check(path: &std::path::Path) -> anyhow::Result<()> {
    let config = AccordConfig::load(path)?;
    let text = toml::to_string(&config).context("render the effective configuration")?;
    outln!("# effective configuration of {}", path.display())?;
    out!("{text}")?;
    if config.admin.enabled && config.admin.token_file.is_none() {
        eprintln!(
            "warning: admin.enabled without admin.token_file: only the open probes will answer"
        );
    }
    Ok(())
}
