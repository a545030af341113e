//! `accord policy …`: the legal team's tools over a policy folder. Argument
//! handling and output only; the work is in `accord-policy`.

use std::path::{Path, PathBuf};

use crate::output::{out, outln};
use accord_fhir::Purpose;
use accord_policy::diff::diff;
use accord_policy::explain::{Known, parse_request_line};
use accord_policy::{
    AccessRequest, PartnerId, PolicyErrors, PolicySet, Population, export, render, testing,
};
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
    /// Explain the decision on one request, rule by rule: the gateway's
    /// own decision, with every fact it could not know named.
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
        /// The FHIR server, to look referral-cohort membership up (the
        /// parties' ServiceRequests and Tasks for the patient).
        #[arg(long, value_name = "URL")]
        upstream: Option<String>,
        /// CA certificate (PEM) for the upstream's TLS, if not a system root.
        #[arg(long)]
        upstream_ca: Option<PathBuf>,
        /// A population (NDJSON) whose resources to check as the gateway's
        /// filter would; its referrals resolve referral cohorts unless
        /// --upstream is given.
        #[arg(long, value_name = "DIR")]
        fixtures: Option<PathBuf>,
    },
    /// What changes from OLD to NEW: which partner gains or loses which
    /// patients, resource types, elements and sensitive categories over a
    /// population, then the policy text's own changes.
    Diff {
        old: PathBuf,
        new: PathBuf,
        /// The population to decide over (NDJSON, one resource per line);
        /// default: fixtures/population when present.
        #[arg(long, value_name = "DIR")]
        fixtures: Option<PathBuf>,
        /// Only these patients of the population (ids, comma-separated).
        #[arg(long, value_delimiter = ',')]
        patients: Vec<String>,
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
            upstream,
            upstream_ca,
            fixtures,
        } => {
            let set = load(&dir)?;
            let partner = PartnerId::parse(&partner)?;
            let purpose = Purpose::parse(&purpose)?;
            let parsed = parse_request_line(&request)?;
            let at = instant(at.as_deref())?;
            let population = fixtures.as_deref().map(read_population).transpose()?;
            let access = AccessRequest::from_fhir(&partner, &purpose, &parsed, at);
            let parties = set
                .decide(&access)
                .obligations()
                .and_then(|o| set.referral_parties(o).cloned());
            let referrals = match (&upstream, &access.patient, parties) {
                (Some(url), Some(patient), Some(parties)) => Some(
                    crate::policy_referrals::fetch(
                        url,
                        upstream_ca.as_deref(),
                        &set,
                        &parties,
                        patient,
                    )
                    .await?,
                ),
                _ => None,
            };
            let known = Known {
                population: population.as_ref(),
                referrals: referrals.as_ref(),
            };
            let explanation = set.explain(
                &request,
                &partner,
                &purpose,
                &parsed,
                at,
                set.consents(),
                known,
            );
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
            patients,
            at,
            json,
        } => {
            let (old, new) = (load(&old)?, load(&new)?);
            let shipped = Path::new(SHIPPED_FIXTURES);
            let dir = fixtures.or_else(|| shipped.is_dir().then(|| shipped.to_path_buf()));
            let population = match dir {
                Some(dir) if patients.is_empty() => Some(read_population(&dir)?),
                Some(dir) => Some(read_population(&dir)?.only(&patients)),
                None => None,
            };
            let d = diff(&old, &new, instant(at.as_deref())?, population.as_ref());
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

/// The population `diff` decides over when none is named.
const SHIPPED_FIXTURES: &str = "fixtures/population";

fn read_population(dir: &Path) -> anyhow::Result<Population> {
    Ok(Population::read_dir(dir)?)
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
