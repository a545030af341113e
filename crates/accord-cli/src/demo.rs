//! `accord demo`: everything on one machine, on embedded defaults.
//!
//! Dev certificates, the shipped example agreements (with the dev
//! certificates' pins), a seeded synthetic population behind the testkit's
//! in-memory FHIR server, and the real gateway in front of it; then a
//! scripted tour of permitted and refused requests through real mTLS.

// serde_json's `Value[...]` yields `Null` for a missing key or index; it
// cannot panic, so the lint's concern does not apply to this module.
#![allow(clippy::indexing_slicing)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use accord_audit::{AuditRecord, AuditStore, read_records};
use accord_gateway::config::AccordConfig;
use accord_gateway::{AUDIT_SEQ_HEADER, GatewayServer, PURPOSE_HEADER};
use accord_policy::PolicySet;
use accord_testkit::client::{PartnerClient, PartnerResponse};
use accord_testkit::fhir_server::{self, FhirStore};
use accord_testkit::pki::DevPki;
use accord_testkit::population::{self, Population};
use anyhow::Context;
use serde_json::{Value, json};

use crate::logging;
use crate::output::outln;

mod load;

/// The seed of the demo population: the same patients every time.
const SEED: u64 = 42;
const DEFAULT_PORT: u16 = 8443;
/// The partners of the shipped example policies.
const PARTNERS: [&str; 8] = [
    "riverside-bh",
    "maple-primary",
    "st-brigid",
    "lakeshore-health-plan",
    "county-public-health",
    "harbor-clinic",
    "north-clinic",
    "east-clinic",
];
/// A certificate from the dev CA that no partner entry pins.
const UNLISTED: &str = "unlisted-lab";

const PARTNERS_TOML: &str = include_str!("../../../policies/partners.toml");
/// Every shipped example policy file but partners.toml (which the demo
/// pins to its own certificates): agreements, cohorts, consents,
/// sensitivity categories, templates and policy tests.
const EXAMPLE_POLICIES: [(&str, &str); 18] = [
    (
        "agreements/care-coordination.toml",
        include_str!("../../../policies/agreements/care-coordination.toml"),
    ),
    (
        "agreements/clinic-network.toml",
        include_str!("../../../policies/agreements/clinic-network.toml"),
    ),
    (
        "agreements/harbor-referrals.toml",
        include_str!("../../../policies/agreements/harbor-referrals.toml"),
    ),
    (
        "agreements/payer-quality.toml",
        include_str!("../../../policies/agreements/payer-quality.toml"),
    ),
    (
        "agreements/pilot-2024.toml",
        include_str!("../../../policies/agreements/pilot-2024.toml"),
    ),
    (
        "agreements/public-health.toml",
        include_str!("../../../policies/agreements/public-health.toml"),
    ),
    (
        "agreements/quality-reporting.toml",
        include_str!("../../../policies/agreements/quality-reporting.toml"),
    ),
    (
        "cohorts/lakeshore-attributed.group.json",
        include_str!("../../../policies/cohorts/lakeshore-attributed.group.json"),
    ),
    (
        "cohorts/lakeshore-attributed.toml",
        include_str!("../../../policies/cohorts/lakeshore-attributed.toml"),
    ),
    (
        "consents/pat-0002-opt-out.json",
        include_str!("../../../policies/consents/pat-0002-opt-out.json"),
    ),
    (
        "consents/pat-0003-part2-opt-in.json",
        include_str!("../../../policies/consents/pat-0003-part2-opt-in.json"),
    ),
    (
        "sensitivity/default.toml",
        include_str!("../../../policies/sensitivity/default.toml"),
    ),
    (
        "templates/clinic-network.toml",
        include_str!("../../../policies/templates/clinic-network.toml"),
    ),
    (
        "tests/care-coordination.toml",
        include_str!("../../../policies/tests/care-coordination.toml"),
    ),
    (
        "tests/consent.toml",
        include_str!("../../../policies/tests/consent.toml"),
    ),
    (
        "tests/lifecycle.toml",
        include_str!("../../../policies/tests/lifecycle.toml"),
    ),
    (
        "tests/payer-quality.toml",
        include_str!("../../../policies/tests/payer-quality.toml"),
    ),
    (
        "tests/public-health.toml",
        include_str!("../../../policies/tests/public-health.toml"),
    ),
];

#[derive(Debug)]
pub struct DemoOptions {
    pub once: bool,
    pub dir: Option<PathBuf>,
    pub port: Option<u16>,
    pub patients: usize,
    /// A real FHIR server to load the population into and put the gateway
    /// in front of, instead of the in-memory one.
    pub upstream: Option<String>,
}

pub async fn run(options: DemoOptions) -> anyhow::Result<()> {
    logging::init(&accord_gateway::config::LogConfig {
        format: accord_gateway::config::LogFormat::Text,
        level: "warn".to_owned(),
    });
    let temp;
    let dir = match &options.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
            dir.clone()
        }
        None => {
            temp = tempfile::tempdir().context("create a temporary directory")?;
            temp.path().to_owned()
        }
    };

    let pki = prepare_pki(&dir)?;
    prepare_policies(&dir, &pki)?;
    let population = prepare_fixtures(&dir, options.patients)?;
    let upstream = Upstream::start(options.upstream.as_deref(), &population).await?;

    let port = options
        .port
        .unwrap_or(if options.once { 0 } else { DEFAULT_PORT });
    let config_path = write_config(&dir, port, &upstream.base_url())?;
    let config = AccordConfig::load(&config_path)?;
    let policies = PolicySet::load_dir(&config.policies.dir).map_err(|e| anyhow::anyhow!("{e}"))?;
    move_old_signing_key(&config.audit.dir, &config.audit.signing_key)?;
    let (audit, _) = AuditStore::open(&config.audit.dir, &config.audit.signing_key)?;
    let audit = Arc::new(audit);
    let gateway = GatewayServer::start(&config.gateway, policies, audit.clone())
        .await
        .with_context(|| format!("start the gateway on {}", config.gateway.listen))?;

    outln!("Accord demo")?;
    outln!("  directory       {}", dir.display())?;
    outln!(
        "  upstream FHIR   {} ({}, {} resources, seed {SEED})",
        upstream.base_url(),
        upstream.kind(),
        population.resources.len()
    )?;
    outln!("  gateway         {}", gateway.public_base())?;
    outln!("  policies        {}", config.policies.dir.display())?;
    outln!("  audit log       {}", audit.dir().display())?;
    outln!()?;

    let first_seq = read_records(&config.audit.dir)
        .map(|r| r.len() as u64)
        .unwrap_or(0)
        + 1;
    let tour = Tour {
        base: gateway.public_base().to_owned(),
        pki: &pki,
        audit_dir: &config.audit.dir,
    };
    tour.run(&population).await?;
    print_audit(&config.audit.dir, first_seq)?;

    if !options.once {
        print_try_it(&dir, gateway.public_base(), &population)?;
        tokio::signal::ctrl_c().await?;
        outln!("\nstopping")?;
    }
    gateway.shutdown(Duration::from_secs(5)).await;
    upstream.shutdown();
    audit.close();
    Ok(())
}

/// Where the demo's data lives: the testkit's in-memory server, or a real
/// FHIR server the population was loaded into.
enum Upstream {
    InMemory(fhir_server::RunningFhirServer),
    External(String),
}

impl Upstream {
    async fn start(external: Option<&str>, population: &Population) -> anyhow::Result<Self> {
        match external {
            Some(base) => {
                let base = base.trim_end_matches('/').to_owned();
                eprintln!(
                    "loading {} resources into {base} …",
                    population.resources.len()
                );
                load::load_into(&base, &population.resources)
                    .await
                    .with_context(|| format!("load the demo population into {base}"))?;
                Ok(Upstream::External(base))
            }
            None => {
                let server = fhir_server::start(
                    FhirStore::from_resources(population.resources.clone()),
                    SocketAddr::from(([127, 0, 0, 1], 0)),
                )
                .await
                .context("start the in-memory FHIR server")?;
                Ok(Upstream::InMemory(server))
            }
        }
    }

    fn base_url(&self) -> String {
        match self {
            Upstream::InMemory(server) => server.base_url(),
            Upstream::External(base) => base.clone(),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Upstream::InMemory(_) => "in-memory testkit server",
            Upstream::External(_) => "external, population loaded",
        }
    }

    fn shutdown(self) {
        if let Upstream::InMemory(server) = self {
            server.shutdown();
        }
    }
}

// === preparation: reuse what a --dir already holds ===

fn prepare_pki(dir: &Path) -> anyhow::Result<DevPki> {
    let pki_dir = dir.join("pki");
    if pki_dir.join("ca.pem").exists() {
        return DevPki::load_from(&pki_dir).with_context(|| format!("load {}", pki_dir.display()));
    }
    let mut names: Vec<&str> = PARTNERS.to_vec();
    names.push(UNLISTED);
    let pki = DevPki::generate(&["localhost", "127.0.0.1"], &names)?;
    pki.write_to(&pki_dir)?;
    Ok(pki)
}

fn prepare_policies(dir: &Path, pki: &DevPki) -> anyhow::Result<()> {
    let policies = dir.join("policies");
    if policies.join("partners.toml").exists() {
        return Ok(());
    }
    std::fs::create_dir_all(&policies)?;
    let mut partners: toml::Table = toml::from_str(PARTNERS_TOML)?;
    if let Some(toml::Value::Array(entries)) = partners.get_mut("partner") {
        for entry in entries {
            let id = entry
                .get("id")
                .and_then(toml::Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let pin = pki
                .clients
                .get(&id)
                .with_context(|| format!("no dev certificate for partner `{id}`"))?;
            if let Some(table) = entry.as_table_mut() {
                let pins = vec![toml::Value::String(pin.spki_sha256_hex.clone())];
                table.insert("spki_sha256".into(), toml::Value::Array(pins));
            }
        }
    }
    let text = format!(
        "# Written by `accord demo`: the shipped example partners, pinned to the\n\
         # demo's dev client certificates in ../pki/clients/.\n\n{}",
        toml::to_string(&partners)?
    );
    std::fs::write(policies.join("partners.toml"), text)?;
    for (name, text) in EXAMPLE_POLICIES {
        let path = policies.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, text)?;
    }
    Ok(())
}

fn prepare_fixtures(dir: &Path, patients: usize) -> anyhow::Result<Population> {
    let fixtures = dir.join("fixtures");
    if fixtures.join("Patient.ndjson").exists() {
        return Population::read_ndjson(&fixtures)
            .with_context(|| format!("read {}", fixtures.display()));
    }
    let population = population::generate(SEED, patients);
    population.write_ndjson(&fixtures)?;
    Ok(population)
}

/// A demo directory from before the key left the audit directory keeps
/// its log: the key moves to where the configuration now says.
fn move_old_signing_key(audit_dir: &Path, key: &Path) -> anyhow::Result<()> {
    let old = audit_dir.join(accord_audit::store::KEY_FILE);
    if old.exists() && !key.exists() {
        if let Some(parent) = key.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::rename(&old, key)
            .with_context(|| format!("move {} to {}", old.display(), key.display()))?;
    }
    Ok(())
}

fn write_config(dir: &Path, port: u16, upstream: &str) -> anyhow::Result<PathBuf> {
    let text = format!(
        r#"# Written by `accord demo` on each run. `accord serve --config {dir}/accord.toml`
# runs the same gateway (start an upstream at upstream_url first).

[gateway]
listen = "127.0.0.1:{port}"
base_path = "/fhir"
upstream_url = "{upstream}"

[gateway.tls]
cert = "pki/server.pem"
key = "pki/server.key"
client_ca = "pki/ca.pem"

[gateway.limits]
upstream_timeout = 10

[policies]
dir = "policies"

[audit]
dir = "audit"
signing_key = "keys/audit-signing.key"
"#,
        dir = dir.display()
    );
    let path = dir.join("accord.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

// === the tour ===

struct Tour<'a> {
    base: String,
    pki: &'a DevPki,
    audit_dir: &'a Path,
}

struct Step<'a> {
    title: &'a str,
    client: &'a str,
    method: http::Method,
    path: String,
    purpose: Option<&'a str>,
    body: Option<Value>,
}

impl Tour<'_> {
    async fn run(&self, population: &Population) -> anyhow::Result<()> {
        let patient =
            pick_patient(population).context("the population has no patient with observations")?;
        let steps = [
            Step {
                title: "primary care reads a shared patient",
                client: "maple-primary",
                method: http::Method::GET,
                path: format!("Patient/{patient}"),
                purpose: Some("TREAT"),
                body: None,
            },
            Step {
                title: "primary care searches that patient's observations (paged)",
                client: "maple-primary",
                method: http::Method::GET,
                path: format!("Observation?patient={patient}&_count=3"),
                purpose: Some("TREAT"),
                body: None,
            },
            Step {
                title: "the clinic sends a referral back to primary care (write)",
                client: "riverside-bh",
                method: http::Method::POST,
                path: "Task".to_owned(),
                purpose: Some("COC"),
                body: Some(referral_task(&patient)),
            },
            Step {
                title: "primary care asks for a resource type no agreement grants",
                client: "maple-primary",
                method: http::Method::GET,
                path: format!("DocumentReference?patient={patient}"),
                purpose: Some("TREAT"),
                body: None,
            },
            Step {
                title: "the clinic asks for diagnoses only its expired pilot granted",
                client: "riverside-bh",
                method: http::Method::GET,
                path: format!("Condition?patient={patient}"),
                purpose: Some("TREAT"),
                body: None,
            },
            Step {
                title: "the hospital uses its suspended quality agreement",
                client: "st-brigid",
                method: http::Method::GET,
                path: "Observation?category=laboratory".to_owned(),
                purpose: Some("HOPERAT"),
                body: None,
            },
            Step {
                title: "primary care declares a purpose the agreement does not list",
                client: "maple-primary",
                method: http::Method::GET,
                path: format!("Patient/{patient}"),
                purpose: Some("HPAYMT"),
                body: None,
            },
            Step {
                title: "primary care declares no purpose of use",
                client: "maple-primary",
                method: http::Method::GET,
                path: format!("Patient/{patient}"),
                purpose: None,
                body: None,
            },
            Step {
                title: "a certificate from the dev CA that no partner is pinned to",
                client: UNLISTED,
                method: http::Method::GET,
                path: format!("Patient/{patient}"),
                purpose: Some("TREAT"),
                body: None,
            },
        ];
        for (n, step) in steps.iter().enumerate() {
            self.step(n + 1, step).await?;
        }
        Ok(())
    }

    async fn step(&self, n: usize, step: &Step<'_>) -> anyhow::Result<()> {
        let identity = self
            .pki
            .clients
            .get(step.client)
            .with_context(|| format!("no dev certificate `{}`", step.client))?;
        let client = PartnerClient::new(
            &self.pki.ca_cert_pem,
            Some((&identity.cert_pem, &identity.key_pem)),
        )?;
        let url = format!("{}/{}", self.base, step.path);
        let mut headers = vec![("Accept", "application/fhir+json")];
        if let Some(purpose) = step.purpose {
            headers.push((PURPOSE_HEADER, purpose));
        }
        let body = match &step.body {
            Some(body) => {
                headers.push(("Content-Type", "application/fhir+json"));
                Some(serde_json::to_vec(body)?)
            }
            None => None,
        };
        let response = client
            .send(step.method.clone(), &url, &headers, body)
            .await?;

        outln!("{n:>2}. {}", step.title)?;
        outln!(
            "    {:<14} {} /fhir/{}   purpose: {}",
            step.client,
            step.method,
            step.path,
            step.purpose.unwrap_or("(none)")
        )?;
        outln!("    → {} {}", response.status, summarize(&response))?;
        if let Some(record) = self.record_for(&response) {
            outln!("    rule: {}   [audit seq {}]", record.rule, record.seq)?;
        }
        outln!()?;
        Ok(())
    }

    fn record_for(&self, response: &PartnerResponse) -> Option<AuditRecord> {
        let seq: u64 = response.header(AUDIT_SEQ_HEADER)?.parse().ok()?;
        read_records(self.audit_dir)
            .ok()?
            .into_iter()
            .find(|r| r.seq == seq)
    }
}

/// A patient of the care-coordination agreement's referral cohort (a
/// referral between Riverside and Maple Street) with enough observations
/// to page through, and no consent that closes the record.
fn pick_patient(population: &Population) -> Option<String> {
    let between = |r: &Value, a: &str, b: &str| {
        let from = r["requester"]["reference"].as_str().unwrap_or_default();
        let to = r["performer"][0]["reference"].as_str().unwrap_or_default();
        (from == a && to == b) || (from == b && to == a)
    };
    let referred: Vec<&str> = population
        .of_type("ServiceRequest")
        .filter(|r| {
            between(
                r,
                "Organization/org-riverside-bh",
                "Organization/org-maple-primary",
            )
        })
        .filter_map(|r| r["subject"]["reference"].as_str())
        .collect();
    let consented: Vec<&str> = population
        .of_type("Consent")
        .filter_map(|c| c["patient"]["reference"].as_str())
        .collect();
    population
        .of_type("Patient")
        .filter_map(population::resource_id)
        .find_map(|id| {
            let reference = format!("Patient/{id}");
            if !referred.contains(&reference.as_str()) || consented.contains(&reference.as_str()) {
                return None;
            }
            let observations = population
                .of_type("Observation")
                .filter(|o| o["subject"]["reference"] == reference.as_str())
                .count();
            (observations >= 4).then(|| id.to_owned())
        })
}

fn referral_task(patient: &str) -> Value {
    json!({
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "description": "Follow-up in primary care after behavioral-health intake",
        "for": {"reference": format!("Patient/{patient}")},
        "requester": {"reference": format!("Organization/{}", population::ORG_BEHAVIORAL)},
        "owner": {"reference": format!("Organization/{}", population::ORG_PRIMARY)},
        "authoredOn": "2026-11-24"
    })
}

/// One line about a response body.
fn summarize(response: &PartnerResponse) -> String {
    let Ok(body) = response.json() else {
        return String::new();
    };
    match body["resourceType"].as_str() {
        Some("Bundle") => {
            let entries = body["entry"].as_array().map_or(0, Vec::len);
            let next = body["link"]
                .as_array()
                .and_then(|links| links.iter().find(|l| l["relation"] == "next"))
                .and_then(|l| l["url"].as_str())
                .map(|url| format!("; next page: {url}"))
                .unwrap_or_default();
            format!(
                "Bundle with {entries} entries (total {}){next}",
                body["total"]
            )
        }
        Some("OperationOutcome") => {
            format!(
                "OperationOutcome: {}",
                body["issue"][0]["diagnostics"].as_str().unwrap_or("")
            )
        }
        Some(ty) => {
            let location = response
                .header("location")
                .map(|l| format!(" at {l}"))
                .unwrap_or_default();
            format!("{ty}/{}{location}", body["id"].as_str().unwrap_or("?"))
        }
        None => String::new(),
    }
}

fn print_audit(dir: &Path, first_seq: u64) -> anyhow::Result<()> {
    let records = read_records(dir)?;
    outln!("Audit records written by this tour ({}):", dir.display())?;
    outln!(
        "  {:>4}  {:<14} {:<8} {:<7} {:>6}  {:<6}  target",
        "seq",
        "partner",
        "purpose",
        "method",
        "status",
        "decision"
    )?;
    for record in records.iter().filter(|r| r.seq >= first_seq) {
        outln!(
            "  {:>4}  {:<14} {:<8} {:<7} {:>6}  {:<6}  {}",
            record.seq,
            record.partner.as_deref().unwrap_or("-"),
            record.purpose.as_deref().unwrap_or("-"),
            record.method,
            record.status,
            serde_json::to_value(record.decision)?
                .as_str()
                .unwrap_or("?"),
            record.target
        )?;
    }
    outln!()?;
    Ok(())
}

fn print_try_it(dir: &Path, base: &str, population: &Population) -> anyhow::Result<()> {
    let patient = pick_patient(population).unwrap_or_default();
    let pki = dir.join("pki");
    let cert = |name: &str| {
        format!(
            "--cacert {ca} --cert {c}.pem --key {c}.key",
            ca = pki.join("ca.pem").display(),
            c = pki.join("clients").join(name).display()
        )
    };
    outln!("The gateway keeps serving. Try it (Ctrl-C stops):")?;
    outln!()?;
    outln!(
        "  curl {} -H 'X-Purpose-Of-Use: TREAT' \\\n    {base}/Patient/{patient}",
        cert("maple-primary")
    )?;
    outln!()?;
    outln!(
        "  curl {} -H 'X-Purpose-Of-Use: TREAT' \\\n    '{base}/Observation?patient={patient}&_count=2'",
        cert("st-brigid")
    )?;
    outln!()?;
    outln!(
        "  curl {} -H 'X-Purpose-Of-Use: TREAT' \\\n    {base}/Condition?patient={patient}",
        cert("riverside-bh")
    )?;
    outln!()?;
    outln!("  accord audit tail --dir {}", dir.join("audit").display())?;
    outln!()
}

#[cfg(test)]
mod tests {
    use super::EXAMPLE_POLICIES;

    /// The demo installs every shipped example, so what it shows is what
    /// policies/ says.
    #[test]
    fn every_shipped_policy_file_is_embedded() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
        let mut shipped = Vec::new();
        let mut pending = vec![root.clone()];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    pending.push(path);
                    continue;
                }
                let rel = path
                    .strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                if rel != "README.md" && rel != "partners.toml" && !rel.starts_with("schema/") {
                    shipped.push(rel);
                }
            }
        }
        shipped.sort();
        let embedded: Vec<&str> = EXAMPLE_POLICIES.iter().map(|(name, _)| *name).collect();
        assert_eq!(embedded, shipped);
    }
}
