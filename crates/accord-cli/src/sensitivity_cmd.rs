//! `accord policy sensitivity scan`: which codes the upstream's data
//! carries and how the sensitivity tables classify them. Fetching and
//! output only; the classification is `accord_policy::scan`, the gateway's
//! own.

use std::path::PathBuf;
use std::time::Duration;

use accord_gateway::tls::upstream_client_config;
use accord_gateway::upstream::client::Upstream;
use accord_gateway::upstream::paging::{next_link, relative_to, upstream_bases};
use accord_policy::PolicySet;
use accord_policy::scan::scan;
use anyhow::{Context as _, bail};
use clap::Subcommand;
use serde_json::Value;

use crate::output::{out, outln};

/// The types where clinical codes live; each is searched in full.
const TYPES: &[&str] = &[
    "Condition",
    "Observation",
    "MedicationRequest",
    "MedicationStatement",
    "MedicationDispense",
    "MedicationAdministration",
    "Medication",
    "Procedure",
    "Encounter",
    "DiagnosticReport",
    "Immunization",
    "AllergyIntolerance",
    "CarePlan",
    "ServiceRequest",
    "DocumentReference",
    "Claim",
    "ExplanationOfBenefit",
];

/// Resources asked for per page.
const PAGE: u32 = 200;

#[derive(Debug, Subcommand)]
pub enum SensitivityCommand {
    /// List the codes found in upstream data, per code system, with how the
    /// sensitivity tables classify each (and the unclassified ones, most
    /// frequent first): a deployment's gaps before go-live.
    Scan {
        /// The FHIR server's base URL, e.g. `https://ehr.example/fhir`.
        #[arg(long, value_name = "URL")]
        upstream: Option<String>,
        /// Scan a file of resources instead (NDJSON, or one JSON resource or
        /// Bundle), e.g. an export.
        #[arg(long, value_name = "FILE", conflicts_with = "upstream")]
        file: Option<PathBuf>,
        /// Only these patients' data (logical ids, comma-separated).
        #[arg(long, value_delimiter = ',')]
        patients: Vec<String>,
        /// CA certificate (PEM) for the upstream's TLS, if not a system root.
        #[arg(long)]
        upstream_ca: Option<PathBuf>,
        /// Pages read per type (and patient) at most.
        #[arg(long, default_value_t = 50)]
        max_pages: usize,
        /// Codes shown per system and kind.
        #[arg(long, default_value_t = 25)]
        limit: usize,
        #[arg(long)]
        json: bool,
        #[arg(long, default_value = "policies")]
        dir: PathBuf,
    },
}

pub async fn run(command: SensitivityCommand, policies: PolicySet) -> anyhow::Result<()> {
    let SensitivityCommand::Scan {
        upstream,
        file,
        patients,
        upstream_ca,
        max_pages,
        limit,
        json,
        dir: _,
    } = command;
    let resources = match (upstream, file) {
        (Some(url), None) => fetch(&url, upstream_ca.as_deref(), &patients, max_pages).await?,
        (None, Some(path)) => read_file(&path)?,
        _ => bail!("name the data to scan: --upstream URL or --file FILE"),
    };
    let report = scan(&policies, resources.iter());
    if json {
        outln!("{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        out!("{}", report.render(limit))?;
    }
    Ok(())
}

/// Every resource of [`TYPES`] (for the named patients, or all), following
/// `next` links under the upstream's base only.
async fn fetch(
    url: &str,
    ca: Option<&std::path::Path>,
    patients: &[String],
    max_pages: usize,
) -> anyhow::Result<Vec<Value>> {
    let tls = upstream_client_config(ca).context("upstream TLS settings")?;
    let upstream = Upstream::new(url, tls, Duration::from_secs(30), 64 * 1024 * 1024)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let bases = upstream_bases(url, &[]);
    let mut found = Vec::new();
    let scopes: Vec<Option<&String>> = if patients.is_empty() {
        vec![None]
    } else {
        patients.iter().map(Some).collect()
    };
    for ty in TYPES {
        for patient in &scopes {
            let mut target = format!("{ty}?_count={PAGE}");
            if let Some(p) = patient {
                // `Medication` has no patient; read it whole once.
                if *ty == "Medication" {
                    continue;
                }
                target.push_str(&format!("&patient=Patient/{p}"));
            }
            let mut pages = 0;
            let mut next = Some(target);
            while let Some(target) = next.take() {
                if pages >= max_pages {
                    eprintln!("note: {ty}: stopped after {max_pages} pages (--max-pages)");
                    break;
                }
                pages += 1;
                let response = upstream
                    .get(&target)
                    .await
                    .map_err(|e| anyhow::anyhow!("{ty}: {}", e.message))?;
                if !response.status.is_success() {
                    // A server that does not serve a type says so; that is
                    // not a gap in the data.
                    eprintln!("note: {ty}: the upstream answered {}", response.status);
                    break;
                }
                let bundle: Value = serde_json::from_slice(&response.body)
                    .with_context(|| format!("{ty}: the upstream's answer is not JSON"))?;
                next = next_link(&bundle).and_then(|link| relative_to(link, &bases));
                found.push(bundle);
            }
        }
    }
    Ok(found)
}

fn read_file(path: &std::path::Path) -> anyhow::Result<Vec<Value>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    if let Ok(one) = serde_json::from_str::<Value>(&text) {
        return Ok(vec![one]);
    }
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| {
            serde_json::from_str(line)
                .with_context(|| format!("{}:{}: not a JSON resource", path.display(), n + 1))
        })
        .collect()
}
