//! `accord policy …`: the legal team's tools over a policy folder. Argument
//! handling and output only; the work is in `accord-policy`.

use std::path::{Path, PathBuf};

use crate::output::{out, outln};
use accord_fhir::Purpose;
use accord_policy::diff::{FixtureCounts, diff};
use accord_policy::explain::parse_request_line;
use accord_policy::{PartnerId, PolicyErrors, PolicySet, export, render, testing};
use anyhow::{Context as _, bail};
use clap::Subcommand;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate a policy folder: every error at once as `file:line:col`,
    /// then warnings. Exits 1 on errors.
    Check {
        #[arg(default_value = "policies")]
        dir: PathBuf,
    },
    /// Explain the decision on one request, rule by rule.
    Explain {
        #[arg(long)]
        partner: String,
        #[arg(long)]
        purpose: String,
        /// `GET /Observation?patient=Patient/123`
        request: String,
        /// RFC 3339 instant (default: now).
        #[arg(long)]
        at: Option<String>,
        #[arg(long)]
        json: bool,
        #[arg(long, default_value = "policies")]
        dir: PathBuf,
    },
    /// What changes from OLD to NEW, per partner and purpose.
    Diff {
        old: PathBuf,
        new: PathBuf,
        /// NDJSON population to count patients and resources affected.
        #[arg(long)]
        fixtures: Option<PathBuf>,
        #[arg(long)]
        at: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Run the table-driven tests in DIR/tests/*.toml. Exits 1 on failure.
    Test {
        #[arg(default_value = "policies")]
        dir: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Export agreements as FHIR R4 Contract resources (JSON): one
    /// agreement's Contract, or a collection Bundle of all of them.
    Export {
        /// Only this agreement (default: every agreement, as a Bundle).
        #[arg(long)]
        agreement: Option<String>,
        /// The FHIR resource to export as; `contract` (R4 Contract) is the
        /// only one.
        #[arg(long, default_value = "contract", value_parser = ["contract"])]
        format: String,
        #[arg(long, default_value = "policies")]
        dir: PathBuf,
    },
    /// Sensitivity tables: `scan` the upstream's codes for gaps.
    Sensitivity {
        #[command(subcommand)]
        command: crate::sensitivity_cmd::SensitivityCommand,
    },
    /// Render an agreement for people (Markdown, or HTML with --html).
    Show {
        agreement: String,
        #[arg(long)]
        html: bool,
        #[arg(long, default_value = "policies")]
        dir: PathBuf,
    },
}

pub async fn run(command: PolicyCommand) -> anyhow::Result<()> {
    match command {
        PolicyCommand::Sensitivity { command } => {
            let crate::sensitivity_cmd::SensitivityCommand::Scan { dir, .. } = &command;
            let set = load(dir)?;
            crate::sensitivity_cmd::run(command, set).await
        }
        PolicyCommand::Check { dir } => check(&dir),
        PolicyCommand::Explain {
            partner,
            purpose,
            request,
            at,
            json,
            dir,
        } => {
            let set = load(&dir)?;
            let partner = PartnerId::parse(&partner)?;
            let purpose = Purpose::parse(&purpose)?;
            let parsed = parse_request_line(&request)?;
            let at = instant(at.as_deref())?;
            let explanation =
                set.explain(&request, &partner, &purpose, &parsed, at, set.consents());
            if json {
                outln!("{}", serde_json::to_string_pretty(&explanation)?)?;
            } else {
                out!("{}", explanation.to_text())?;
            }
            Ok(())
        }
        PolicyCommand::Diff {
            old,
            new,
            fixtures,
            at,
            json,
        } => {
            let (old, new) = (load(&old)?, load(&new)?);
            let counts = match fixtures {
                Some(dir) => Some(
                    FixtureCounts::read_dir(&dir)
                        .with_context(|| format!("read fixtures in {}", dir.display()))?,
                ),
                None => None,
            };
            let d = diff(&old, &new, instant(at.as_deref())?, counts.as_ref());
            if json {
                outln!("{}", serde_json::to_string_pretty(&d)?)?;
            } else {
                out!("{}", d.to_text())?;
            }
            Ok(())
        }
        PolicyCommand::Test { dir, json } => {
            let set = load(&dir)?;
            let files = testing::read_tests(&dir).map_err(errors)?;
            let report = testing::run_tests(&set, &files).map_err(errors)?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&report)?)?;
            } else {
                out!("{}", report.to_text())?;
            }
            if report.failed() > 0 {
                bail!("{} policy test(s) failed", report.failed());
            }
            Ok(())
        }
        PolicyCommand::Export {
            agreement,
            format: _,
            dir,
        } => {
            let set = load(&dir)?;
            let resource = match agreement {
                Some(id) => {
                    let Some(a) = set.agreement(&id) else {
                        let known: Vec<_> =
                            set.agreements().iter().map(|a| a.id.to_string()).collect();
                        bail!("no agreement `{id}` (known: {})", known.join(", "));
                    };
                    export::contract(&set, a)
                }
                None => export::contracts_bundle(&set),
            };
            outln!("{}", serde_json::to_string_pretty(&resource)?)
        }
        PolicyCommand::Show {
            agreement,
            html,
            dir,
        } => {
            let set = load(&dir)?;
            let Some(a) = set.agreement(&agreement) else {
                let known: Vec<_> = set.agreements().iter().map(|a| a.id.to_string()).collect();
                bail!("no agreement `{agreement}` (known: {})", known.join(", "));
            };
            if html {
                out!("{}", render::agreement_html(&set, a))?;
            } else {
                out!("{}", render::agreement_markdown(&set, a))?;
            }
            Ok(())
        }
    }
}

fn check(dir: &Path) -> anyhow::Result<()> {
    match PolicySet::load_dir(dir) {
        Ok(set) => {
            let warnings = set.lint(OffsetDateTime::now_utc());
            for w in &warnings {
                outln!("warning: {}", w.to_string_with_hint())?;
            }
            let consents = set.consents().len();
            outln!(
                "{}: {} partners, {} agreements, {} cohorts, {} sensitivity categories, {consents} consents; {} warning(s); no errors\npolicy version {}",
                dir.display(),
                set.partners().count(),
                set.agreements().len(),
                set.cohorts().count(),
                set.categories().count(),
                warnings.len(),
                set.version()
            )?;
            Ok(())
        }
        Err(e) => Err(errors(e)),
    }
}

fn load(dir: &Path) -> anyhow::Result<PolicySet> {
    PolicySet::load_dir(dir).map_err(errors)
}

/// Prints every error with its hint; the returned error makes the exit code 1.
fn errors(e: PolicyErrors) -> anyhow::Error {
    for error in &e.0 {
        eprintln!("{}", error.to_string_with_hint());
    }
    anyhow::anyhow!("{} error(s) in the policy files", e.0.len())
}

fn instant(at: Option<&str>) -> anyhow::Result<OffsetDateTime> {
    match at {
        None => Ok(OffsetDateTime::now_utc()),
        Some(text) => OffsetDateTime::parse(text, &Rfc3339)
            .with_context(|| format!("`{text}` is not an RFC 3339 instant (2026-06-15T12:00:00Z)")),
    }
}
