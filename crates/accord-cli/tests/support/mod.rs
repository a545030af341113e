//! A deployment directory for `accord serve` run as a real process: dev
//! certificates, a small policy set, an in-process testkit FHIR upstream and
//! an `accord.toml`; and the running process, found by the addresses it
//! prints.

#![allow(dead_code)] // each test binary uses part of it

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};

use accord_testkit::client::PartnerClient;
use accord_testkit::fhir_server::{self, FhirStore, RunningFhirServer};
use accord_testkit::pki::DevPki;
use accord_testkit::population::{self, Population};
use tempfile::TempDir;

pub const PARTNER: &str = "maple-primary";
/// The other party to the agreement.
pub const OTHER: &str = "st-brigid";
pub const TOKEN: &str = "test-admin-token-0123456789";
pub const PATIENTS: usize = 20;

pub const CARE_AGREEMENT: &str = r#"id = "care"
version = 1
title = "Care coordination"
status = "active"
parties = ["maple-primary", "st-brigid"]
effective = 2020-01-01
expires = 2099-12-31
purposes = ["TREAT"]

[[grant]]
id = "clinical"
recipients = ["maple-primary"]
resources = ["Patient", "Observation", "Condition", "Encounter"]
interactions = ["read", "vread", "search"]
"#;

/// Everything `accord serve` needs, in a temporary directory.
#[derive(Debug)]
pub struct Deployment {
    pub dir: TempDir,
    pub pki: DevPki,
    pub population: Population,
    pub upstream: RunningFhirServer,
    pub config: PathBuf,
}

impl Deployment {
    /// Writes certificates, policies, the admin token and `accord.toml`
    /// (`extra` is appended to it), and starts the upstream.
    pub async fn new(extra: &str) -> Deployment {
        let dir = tempfile::tempdir().unwrap();
        let pki = DevPki::generate(&["localhost", "127.0.0.1"], &[PARTNER, OTHER]).unwrap();
        pki.write_to(&dir.path().join("pki")).unwrap();
        let agreements = dir.path().join("policies/agreements");
        std::fs::create_dir_all(&agreements).unwrap();
        std::fs::write(
            dir.path().join("policies/partners.toml"),
            format!(
                "[[partner]]\nid = \"{PARTNER}\"\nname = \"Maple Primary Care\"\nstatus = \"active\"\nspki_sha256 = [\"{}\"]\n\n[[partner]]\nid = \"{OTHER}\"\nname = \"St Brigid\"\nstatus = \"active\"\nspki_sha256 = [\"{}\"]\n",
                pki.clients[PARTNER].spki_sha256_hex, pki.clients[OTHER].spki_sha256_hex
            ),
        )
        .unwrap();
        std::fs::write(agreements.join("care.toml"), CARE_AGREEMENT).unwrap();
        std::fs::write(dir.path().join("admin.token"), format!("{TOKEN}\n")).unwrap();

        let population = population::generate(7, PATIENTS);
        let upstream = fhir_server::start(
            FhirStore::from_resources(population.resources.clone()),
            SocketAddr::from(([127, 0, 0, 1], 0)),
        )
        .await
        .unwrap();
        let config = dir.path().join("accord.toml");
        std::fs::write(
            &config,
            format!(
                r#"[gateway]
listen = "127.0.0.1:0"
upstream_url = "{}"

[gateway.tls]
cert = "pki/server.pem"
key = "pki/server.key"
client_ca = "pki/ca.pem"

[gateway.limits]
upstream_timeout = 5

[log]
level = "warn"
{extra}
"#,
                upstream.base_url()
            ),
        )
        .unwrap();
        Deployment {
            dir,
            pki,
            population,
            upstream,
            config,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn audit_dir(&self) -> PathBuf {
        self.dir.path().join("audit")
    }

    /// A client presenting the partner's certificate.
    pub fn client(&self) -> PartnerClient {
        let identity = &self.pki.clients[PARTNER];
        PartnerClient::new(
            &self.pki.ca_cert_pem,
            Some((&identity.cert_pem, &identity.key_pem)),
        )
        .unwrap()
    }

    /// Starts `accord serve` and waits until it prints where it listens.
    pub fn serve(&self, run: usize) -> Serve {
        let stderr_path = self.dir.path().join(format!("serve-{run}.stderr"));
        let stderr = std::fs::File::create(&stderr_path).unwrap();
        // ACCORD_TEST_BIN runs a copy, so a long run survives rebuilds.
        let bin = std::env::var_os("ACCORD_TEST_BIN")
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_accord").into());
        let mut child = Command::new(bin)
            .args(["serve", "--config"])
            .arg(&self.config)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut base = None;
        let mut admin = None;
        let mut line = String::new();
        // "accord: serving https://localhost:PORT/fhir on 127.0.0.1:PORT (…)"
        // then, with the admin listener, "accord: admin on http://ADDR".
        let wants_admin = std::fs::read_to_string(&self.config)
            .unwrap()
            .contains("enabled = true");
        while base.is_none() || (wants_admin && admin.is_none()) {
            line.clear();
            if stdout.read_line(&mut line).unwrap() == 0 {
                let _ = child.wait();
                panic!(
                    "accord serve (run {run}) exited before serving:\n{}",
                    std::fs::read_to_string(&stderr_path).unwrap_or_default()
                );
            }
            if let Some(rest) = line.trim().strip_prefix("accord: serving ") {
                base = rest.split(' ').next().map(str::to_owned);
            }
            if let Some(rest) = line.trim().strip_prefix("accord: admin on http://") {
                admin = Some(rest.parse().unwrap());
            }
        }
        Serve {
            child,
            stdout: Some(stdout),
            base: base.unwrap(),
            admin,
            stderr_path,
        }
    }
}

/// A running `accord serve`.
#[derive(Debug)]
pub struct Serve {
    pub child: Child,
    pub stdout: Option<BufReader<ChildStdout>>,
    /// `https://localhost:PORT/fhir`.
    pub base: String,
    pub admin: Option<SocketAddr>,
    pub stderr_path: PathBuf,
}

impl Serve {
    pub fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.base)
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// SIGKILL: no drain, no final checkpoint, no clean close.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(mut self) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{status}\n{}", self.stderr());
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        // A failed test must not leave the process behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
