//! End-to-end test harness: a real gateway (mTLS listener, policies, audit
//! log) in front of the testkit's in-memory FHIR server, with dev
//! certificates made on the fly. The tests are in `tests/`.

// A harness that cannot set itself up is a failed test: panicking with a
// message is the right behavior here, as in the tests themselves.
#![allow(clippy::expect_used, clippy::indexing_slicing)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use accord_audit::{AuditRecord, AuditStore, read_records};
use accord_gateway::config::{ConsentFeedConfig, GatewayConfig};
use accord_gateway::{GatewayServer, Limits, TlsFiles};
use accord_policy::PolicySet;
use accord_testkit::client::PartnerClient;
use accord_testkit::fhir_server::{self, FhirStore, RunningFhirServer};
use accord_testkit::pki::DevPki;
use accord_testkit::population::{self, Population};
use tempfile::TempDir;

/// Partners with certificates pinned in the harness's partners.toml.
pub const PARTNERS: [&str; 4] = [
    "riverside-bh",
    "maple-primary",
    "st-brigid",
    "north-recovery",
];
/// Issued by the dev CA but pinned to no partner.
pub const UNLISTED: &str = "unlisted-lab";
/// Patients in the harness population.
pub const PATIENTS: usize = 40;

/// Agreements the harness installs; terms are wide so the suite does not
/// start failing on a calendar date.
const AGREEMENTS: &[(&str, &str)] = &[
    (
        "care.toml",
        r#"id = "care"
version = 3
title = "Care coordination"
status = "active"
parties = ["riverside-bh", "maple-primary", "st-brigid", "north-recovery"]
effective = 2020-01-01
expires = 2099-12-31
purposes = ["TREAT", "COC"]

[[grant]]
id = "clinical"
recipients = ["maple-primary", "st-brigid"]
resources = ["Patient", "Observation", "Condition", "Encounter"]
interactions = ["read", "vread", "search"]
redact = ["Patient.address", "Patient.telecom"]

[[grant]]
id = "referrals"
recipients = ["riverside-bh", "maple-primary"]
resources = ["Task", "ServiceRequest"]
interactions = ["read", "search", "create", "update"]
"#,
    ),
    (
        "suspended.toml",
        r#"id = "quality"
version = 1
title = "Quality reporting"
status = "suspended"
parties = ["st-brigid", "maple-primary"]
effective = 2020-01-01
expires = 2099-12-31
purposes = ["HOPERAT"]

[[grant]]
id = "quality-observations"
recipients = ["st-brigid"]
resources = ["Observation"]
interactions = ["search"]
"#,
    ),
    (
        "expired.toml",
        r#"id = "pilot"
version = 1
title = "Expired pilot"
status = "active"
parties = ["riverside-bh", "maple-primary"]
effective = 2020-01-01
expires = 2021-12-31
purposes = ["TREAT"]

[[grant]]
id = "pilot-conditions"
recipients = ["riverside-bh"]
resources = ["Condition"]
interactions = ["read", "search"]
"#,
    ),
];

/// The patient whose consent opts out of all sharing.
pub const OPTED_OUT: &str = "pat-0003";

const OPTED_OUT_CONSENT: &str = r#"{
  "resourceType": "Consent",
  "id": "pat-0003-opt-out",
  "status": "active",
  "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
  "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
  "patient": {"reference": "Patient/pat-0003"},
  "dateTime": "2024-01-10T14:30:00Z",
  "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTOUT"}]},
  "provision": {"type": "deny", "period": {"start": "2024-01-10"}}
}"#;

/// Knobs for one harness.
#[derive(Debug, Clone)]
pub struct Options {
    pub limits: Limits,
    /// Point the gateway at this upstream instead of the in-memory one.
    pub upstream_url: Option<String>,
    /// Make the active audit segment a link to `/dev/full`: every append
    /// fails (ENOSPC).
    pub audit_on_full_disk: bool,
    /// Status of the partner `north-recovery` in partners.toml.
    pub north_recovery_status: &'static str,
    /// Pull Consents from the upstream (`[gateway.consent_feed]`).
    pub consent_feed: ConsentFeedConfig,
    /// More policy files, as (path under the policies directory, text).
    pub extra_policies: Vec<(String, String)>,
    /// More TOML lines for a partner's entry in partners.toml (partner, lines).
    pub partner_lines: Vec<(&'static str, String)>,
    /// The gateway's state directory (volume-cap counters); default: one
    /// inside the harness's temporary directory.
    pub state_dir: Option<PathBuf>,
    /// `gateway.upstream_owner`: the member whose server the upstream is.
    pub upstream_owner: Option<String>,
    /// One server per member: the harness's own in-memory upstream as this
    /// member's, and the others as (owner, base URL).
    pub members: Option<(String, Vec<(String, String)>)>,
}

/// A running gateway with its upstream, certificates and audit log.
#[derive(Debug)]
pub struct Harness {
    pub dir: TempDir,
    pub pki: DevPki,
    pub population: Population,
    pub upstream: RunningFhirServer,
    pub gateway: GatewayServer,
    pub audit_dir: PathBuf,
    /// The store the gateway appends to (for the admin API's `/audit/*`).
    pub audit: Arc<AuditStore>,
}

// === impl Options ===

impl Default for Options {
    fn default() -> Self {
        let limits = Limits {
            upstream_timeout: Duration::from_secs(2),
            header_read_timeout: Duration::from_secs(1),
            max_body_bytes: 64 * 1024,
            max_header_bytes: 8 * 1024,
            ..Limits::default()
        };
        Options {
            limits,
            upstream_url: None,
            audit_on_full_disk: false,
            north_recovery_status: "suspended",
            consent_feed: ConsentFeedConfig::default(),
            extra_policies: Vec::new(),
            partner_lines: Vec::new(),
            state_dir: None,
            upstream_owner: None,
            members: None,
        }
    }
}

// === impl Harness ===

impl Harness {
    pub async fn start() -> Harness {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> Harness {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut names: Vec<&str> = PARTNERS.to_vec();
        names.push(UNLISTED);
        let pki = DevPki::generate(&["localhost", "127.0.0.1"], &names).expect("dev pki");
        pki.write_to(&dir.path().join("pki")).expect("write pki");
        let policies = write_policies(dir.path(), &pki, &options);

        let population = population::generate(7, PATIENTS);
        let upstream = fhir_server::start(
            FhirStore::from_resources(population.resources.clone()),
            SocketAddr::from(([127, 0, 0, 1], 0)),
        )
        .await
        .expect("upstream");

        let audit_dir = dir.path().join("audit");
        let segments = audit_dir.join(accord_audit::segment::SEGMENTS_DIR);
        std::fs::create_dir_all(&segments).expect("audit dir");
        if options.audit_on_full_disk {
            let first = accord_audit::segment::segment_name(1);
            std::os::unix::fs::symlink("/dev/full", segments.join(first)).expect("symlink");
        }
        let (audit, _) =
            AuditStore::open(&audit_dir, &dir.path().join("signing.key")).expect("audit log");
        let audit = Arc::new(audit);

        let pki_dir = dir.path().join("pki");
        let config = GatewayConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            upstream_url: options
                .upstream_url
                .clone()
                .unwrap_or_else(|| upstream.base_url()),
            tls: TlsFiles {
                cert: pki_dir.join("server.pem"),
                key: pki_dir.join("server.key"),
                client_ca: pki_dir.join("ca.pem"),
            },
            limits: options.limits.clone(),
            consent_feed: options.consent_feed.clone(),
            upstream_owner: options.upstream_owner.clone(),
            upstreams: match &options.members {
                Some((own, others)) => std::iter::once((own.clone(), upstream.base_url()))
                    .chain(others.iter().cloned())
                    .map(|(owner, url)| accord_gateway::config::MemberUpstream {
                        owner,
                        url,
                        ca: None,
                        aliases: Vec::new(),
                    })
                    .collect(),
                None => Vec::new(),
            },
            state_dir: Some(
                options
                    .state_dir
                    .clone()
                    .unwrap_or_else(|| dir.path().join("state")),
            ),
            ..GatewayConfig::default()
        };
        let gateway = GatewayServer::start(&config, policies, audit.clone())
            .await
            .expect("gateway starts");
        Harness {
            dir,
            pki,
            population,
            upstream,
            gateway,
            audit_dir,
            audit,
        }
    }

    /// A client presenting `name`'s dev certificate.
    pub fn client(&self, name: &str) -> PartnerClient {
        let identity = &self.pki.clients[name];
        PartnerClient::new(
            &self.pki.ca_cert_pem,
            Some((&identity.cert_pem, &identity.key_pem)),
        )
        .expect("client")
    }

    /// A client that trusts the gateway but presents no certificate.
    pub fn anonymous_client(&self) -> PartnerClient {
        PartnerClient::new(&self.pki.ca_cert_pem, None).expect("client")
    }

    /// A TLS connection to the gateway, presenting `name`'s certificate
    /// (none for `None`), for tests that write raw HTTP/1.1 bytes.
    pub async fn raw_tls(
        &self,
        name: Option<&str>,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
        let identity = name.map(|name| &self.pki.clients[name]);
        let config = accord_testkit::client::tls_client_config(
            &self.pki.ca_cert_pem,
            identity.map(|id| (id.cert_pem.as_str(), id.key_pem.as_str())),
        )
        .map_err(std::io::Error::other)?;
        let tcp = tokio::net::TcpStream::connect(self.addr()).await?;
        let server_name =
            rustls::pki_types::ServerName::try_from("localhost").map_err(std::io::Error::other)?;
        tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(server_name, tcp)
            .await
    }

    /// `https://localhost:PORT/fhir/{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.gateway.public_base())
    }

    pub fn addr(&self) -> SocketAddr {
        self.gateway.local_addr()
    }

    pub fn audit_records(&self) -> Vec<AuditRecord> {
        read_records(&self.audit_dir).expect("audit log readable")
    }

    /// The first generated patient's id.
    pub fn patient(&self) -> String {
        population::patient_id(1)
    }
}

fn write_policies(dir: &Path, pki: &DevPki, options: &Options) -> PolicySet {
    let policies = dir.join("policies");
    let agreements = policies.join("agreements");
    std::fs::create_dir_all(&agreements).expect("policies dir");
    let mut partners = String::new();
    for name in PARTNERS {
        let status = if name == "north-recovery" {
            options.north_recovery_status
        } else {
            "active"
        };
        partners.push_str(&format!(
            "[[partner]]\nid = \"{name}\"\nname = \"{name}\"\naddress = \"1 {name} Way, Springfield\"\nstatus = \"{status}\"\nspki_sha256 = [\"{}\"]\n",
            pki.clients[name].spki_sha256_hex
        ));
        for (partner, lines) in &options.partner_lines {
            if *partner == name {
                partners.push_str(lines);
                partners.push('\n');
            }
        }
        partners.push('\n');
    }
    for (path, text) in &options.extra_policies {
        let path = policies.join(path);
        std::fs::create_dir_all(path.parent().expect("a file in a directory")).expect("dir");
        std::fs::write(path, text).expect("extra policy file");
    }
    std::fs::write(policies.join("partners.toml"), partners).expect("partners.toml");
    for (name, text) in AGREEMENTS {
        std::fs::write(agreements.join(name), text).expect("agreement");
    }
    let consents = policies.join("consents");
    std::fs::create_dir_all(&consents).expect("consents dir");
    std::fs::write(consents.join("opt-out.json"), OPTED_OUT_CONSENT).expect("consent");
    PolicySet::load_dir(&policies).expect("harness policies are valid")
}
