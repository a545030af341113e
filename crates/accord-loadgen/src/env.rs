//! Everything under test, started in this process: the testkit upstream with
//! a generated population, the plain proxy and the real gateway with a
//! durable audit store in a temporary directory.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use accord_audit::AuditStore;
use accord_gateway::config::GatewayConfig;
use accord_gateway::{GatewayServer, Limits, TlsFiles};
use accord_policy::PolicySet;
use accord_testkit::fhir_server::{self, FhirStore, RunningFhirServer};
use accord_testkit::pki::DevPki;
use accord_testkit::population;
use anyhow::Context;
use serde_json::Value;
use tempfile::TempDir;
use tokio::runtime::Runtime;

use crate::proxy::{self, PlainProxy};

/// Partner allowed clinical reads, searches and referral writes.
pub const READER: &str = "maple-primary";
/// Partner with no clinical grant: its Patient reads are denied.
pub const DENIED: &str = "riverside-bh";
/// Patients in the generated population.
pub const PATIENTS: usize = 40;
/// Entries in the search scenario.
pub const SEARCH_ENTRIES: usize = 50;

const AGREEMENT: &str = r#"id = "care"
version = 1
title = "Care coordination"
status = "active"
parties = ["riverside-bh", "maple-primary"]
effective = 2020-01-01
expires = 2099-12-31
purposes = ["TREAT"]

[[grant]]
id = "clinical"
recipients = ["maple-primary"]
resources = ["Patient", "Observation", "Condition", "Encounter"]
interactions = ["read", "vread", "search"]

[[grant]]
id = "referrals"
recipients = ["riverside-bh", "maple-primary"]
resources = ["Task", "ServiceRequest"]
interactions = ["read", "search", "create", "update"]
"#;

/// The three targets, their data and what a request needs.
pub struct Env {
    /// Holds the PKI, policies and audit log; removed on drop.
    _dir: TempDir,
    pub pki: DevPki,
    pub upstream: RunningFhirServer,
    pub proxy: PlainProxy,
    pub gateway: GatewayServer,
    /// Patient read in the read scenario and searched in the search one.
    pub patient_id: String,
    /// Its size in bytes as the upstream stores it.
    pub patient_bytes: usize,
    /// Body of the create scenario.
    pub task_body: Vec<u8>,
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env")
            .field("patient_id", &self.patient_id)
            .finish_non_exhaustive()
    }
}

impl Env {
    /// Starts the upstream on `upstream_rt` and both proxies on `server_rt`.
    /// `work_dir` holds the audit log (give it a real disk so fsync costs
    /// what it costs).
    pub fn start(
        upstream_rt: &Runtime,
        server_rt: &Runtime,
        work_dir: &Path,
    ) -> anyhow::Result<Env> {
        let dir = tempfile::Builder::new()
            .prefix("accord-loadgen-")
            .tempdir_in(work_dir)?;
        let pki = DevPki::generate(&["localhost", "127.0.0.1"], &[READER, DENIED])?;
        let pki_dir = dir.path().join("pki");
        pki.write_to(&pki_dir)?;
        let policies = write_policies(dir.path(), &pki)?;

        let mut resources = population::generate(7, PATIENTS).resources;
        let (patient_id, patient_bytes) = patient_near(&resources, 2048)?;
        pad_observations(&mut resources, &patient_id, SEARCH_ENTRIES)?;
        let task_body = task_body(&resources)?;

        let upstream = upstream_rt.block_on(fhir_server::start(
            FhirStore::from_resources(resources),
            SocketAddr::from(([127, 0, 0, 1], 0)),
        ))?;
        let tls = TlsFiles {
            cert: pki_dir.join("server.pem"),
            key: pki_dir.join("server.key"),
            client_ca: pki_dir.join("ca.pem"),
        };
        let proxy = server_rt.block_on(proxy::start(&tls, upstream.local_addr()))?;

        let audit_dir = dir.path().join("audit");
        std::fs::create_dir_all(&audit_dir)?;
        let (audit, _) =
            AuditStore::open(&audit_dir, &dir.path().join("signing.key")).context("audit store")?;
        let config = GatewayConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            upstream_url: upstream.base_url(),
            tls,
            limits: Limits::default(),
            ..GatewayConfig::default()
        };
        let gateway =
            server_rt.block_on(GatewayServer::start(&config, policies, Arc::new(audit)))?;
        Ok(Env {
            _dir: dir,
            pki,
            upstream,
            proxy,
            gateway,
            patient_id,
            patient_bytes,
            task_body,
        })
    }
}

fn write_policies(dir: &Path, pki: &DevPki) -> anyhow::Result<PolicySet> {
    let policies = dir.join("policies");
    let agreements = policies.join("agreements");
    std::fs::create_dir_all(&agreements)?;
    let mut partners = String::new();
    for name in [READER, DENIED] {
        let pin = &pki
            .clients
            .get(name)
            .context("client certificate")?
            .spki_sha256_hex;
        partners.push_str(&format!(
            "[[partner]]\nid = \"{name}\"\nname = \"{name}\"\nstatus = \"active\"\nspki_sha256 = [\"{pin}\"]\n\n"
        ));
    }
    std::fs::write(policies.join("partners.toml"), partners)?;
    std::fs::write(agreements.join("care.toml"), AGREEMENT)?;
    PolicySet::load_dir(&policies).map_err(|e| anyhow::anyhow!("policies: {e:?}"))
}

fn is_type<'a>(ty: &'a str) -> impl Fn(&&Value) -> bool + 'a {
    move |r| population::resource_type(r) == Some(ty)
}

fn has_security_labels(resource: &Value) -> bool {
    resource.pointer("/meta/security").is_some()
}

/// The unlabelled Patient whose JSON is closest to `target` bytes.
fn patient_near(resources: &[Value], target: usize) -> anyhow::Result<(String, usize)> {
    resources
        .iter()
        .filter(is_type("Patient"))
        .filter(|p| !has_security_labels(p))
        .filter_map(|p| {
            let id = population::resource_id(p)?.to_owned();
            Some((id, p.to_string().len()))
        })
        .min_by_key(|(_, len)| len.abs_diff(target))
        .context("no patient in the population")
}

/// Adds copies of one of `patient`'s unlabelled Observations until it has
/// at least `want`.
fn pad_observations(resources: &mut Vec<Value>, patient: &str, want: usize) -> anyhow::Result<()> {
    let subject = format!("Patient/{patient}");
    let of_patient = |r: &&Value| {
        population::resource_type(r) == Some("Observation")
            && r.pointer("/subject/reference").and_then(Value::as_str) == Some(subject.as_str())
    };
    let have = resources.iter().filter(of_patient).count();
    let template = resources
        .iter()
        .filter(of_patient)
        .find(|r| !has_security_labels(r))
        .or_else(|| {
            resources
                .iter()
                .filter(is_type("Observation"))
                .find(|r| !has_security_labels(r))
        })
        .cloned()
        .context("no unlabelled Observation")?;
    for n in have..want {
        let mut copy = template.clone();
        if let Some(object) = copy.as_object_mut() {
            object.insert("id".into(), Value::from(format!("bench-obs-{n:04}")));
            object.insert(
                "subject".into(),
                serde_json::json!({ "reference": subject }),
            );
        }
        resources.push(copy);
    }
    Ok(())
}

/// A referral Task from the population, as a partner would create it.
fn task_body(resources: &[Value]) -> anyhow::Result<Vec<u8>> {
    let mut task = resources
        .iter()
        .filter(is_type("Task"))
        .find(|t| !has_security_labels(t))
        .cloned()
        .context("no Task in the population")?;
    if let Some(object) = task.as_object_mut() {
        object.remove("id");
        object.remove("meta");
    }
    Ok(serde_json::to_vec(&task)?)
}
