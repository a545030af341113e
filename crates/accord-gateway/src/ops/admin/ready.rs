//! `/readyz`: cheap checks, each bounded in time, that the gateway can
//! serve: a policy set is loaded, the audit log is writable (its directory
//! takes a file and no append failed lately), the upstream accepts a TCP
//! connection.

use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use http::Uri;
use serde_json::{Value, json};
use tokio::net::TcpStream;

use super::AdminState;

/// Each check gets at most this long.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Written and removed in the audit directory to prove it takes writes.
const PROBE_FILE: &str = ".accord-readyz-probe";

/// The result of every check.
#[derive(Debug)]
pub(crate) struct Readiness {
    pub ready: bool,
    checks: Vec<(&'static str, Result<String, String>)>,
}

impl Readiness {
    pub(crate) fn to_json(&self) -> Value {
        let checks: serde_json::Map<String, Value> = self
            .checks
            .iter()
            .map(|(name, result)| {
                let value = match result {
                    Ok(detail) => json!({"ok": true, "detail": detail}),
                    Err(error) => json!({"ok": false, "error": error}),
                };
                ((*name).to_owned(), value)
            })
            .collect();
        json!({"ready": self.ready, "checks": checks})
    }
}

pub(crate) async fn check(state: &AdminState) -> Readiness {
    let (audit, upstream) = tokio::join!(audit(state), upstream(&state.upstream_url));
    let checks = vec![
        ("policies", policies(state)),
        ("audit", audit),
        ("upstream", upstream),
    ];
    Readiness {
        ready: checks.iter().all(|(_, result)| result.is_ok()),
        checks,
    }
}

fn policies(state: &AdminState) -> Result<String, String> {
    let policies = state.policies.current();
    if policies.partners().next().is_none() {
        return Err("no partners are loaded".to_owned());
    }
    Ok(format!(
        "{} ({} agreements)",
        policies.version().short(),
        policies.agreements().len()
    ))
}

async fn audit(state: &AdminState) -> Result<String, String> {
    if let Some(age) = state.metrics.recent_audit_failure() {
        return Err(format!("an audit append failed {}s ago", age.as_secs()));
    }
    let Some(dir) = state.audit_dir.clone() else {
        return Ok("no failed appends".to_owned());
    };
    let probe = tokio::task::spawn_blocking(move || probe_dir(&dir));
    match tokio::time::timeout(CHECK_TIMEOUT, probe).await {
        Ok(Ok(Ok(()))) => Ok("writable".to_owned()),
        Ok(Ok(Err(e))) => Err(format!("audit directory not writable: {e}")),
        Ok(Err(_)) => Err("audit probe failed".to_owned()),
        Err(_) => Err("audit directory did not answer in time".to_owned()),
    }
}

fn probe_dir(dir: &Path) -> std::io::Result<()> {
    let path = dir.join(PROBE_FILE);
    let mut file = std::fs::File::create(&path)?;
    file.write_all(b"ok")?;
    file.sync_all()?;
    std::fs::remove_file(&path)
}

async fn upstream(url: &str) -> Result<String, String> {
    let uri: Uri = url
        .parse()
        .map_err(|_| "upstream URL unparseable".to_owned())?;
    let host = uri
        .host()
        .ok_or_else(|| "upstream URL has no host".to_owned())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("https") {
            443
        } else {
            80
        });
    match tokio::time::timeout(CHECK_TIMEOUT, TcpStream::connect((host, port))).await {
        Ok(Ok(_)) => Ok("reachable".to_owned()),
        // The address is configuration the operator knows; say nothing more.
        Ok(Err(e)) => Err(format!("upstream not reachable: {e}")),
        Err(_) => Err("upstream did not accept a connection in time".to_owned()),
    }
}
