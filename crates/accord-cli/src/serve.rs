//! `accord serve`: load configuration, policies and the audit log, run the
//! gateway until SIGINT/SIGTERM; SIGHUP reloads policies.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use accord_audit::AuditStore;
use accord_gateway::GatewayServer;
use accord_gateway::config::AccordConfig;
use accord_policy::PolicySet;
use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};

use crate::logging;

/// How long in-flight requests may take to finish on shutdown.
const DRAIN: Duration = Duration::from_secs(30);

pub async fn run(
    config_path: &Path,
    listen: Option<SocketAddr>,
    upstream: Option<String>,
) -> anyhow::Result<()> {
    let mut config = AccordConfig::load(config_path)?;
    if let Some(listen) = listen {
        config.gateway.listen = listen;
    }
    if let Some(upstream) = upstream {
        config.gateway.upstream_url = upstream;
    }
    logging::init(&config.log);

    let policies = PolicySet::load_dir(&config.policies.dir)
        .map_err(|e| anyhow::anyhow!("policies are invalid; not starting:\n{e}"))?;
    let (audit, report) = AuditStore::open(&config.audit.dir)
        .with_context(|| format!("audit log in {}", config.audit.dir.display()))?;
    if let Some(torn) = &report.torn_tail {
        tracing::warn!(
            bytes = torn.bytes,
            segment = %torn.segment.display(),
            "cut an incomplete final audit record left by a crash"
        );
    }
    if report.key_created {
        tracing::warn!(
            public_key = %audit.verifier().encode(),
            "made a new checkpoint signing key; give the public key to your auditors"
        );
    }
    let audit = Arc::new(audit);
    let server = GatewayServer::start(&config.gateway, policies, audit.clone()).await?;
    println!(
        "accord: serving {} on {} (upstream {})",
        server.public_base(),
        server.local_addr(),
        config.gateway.upstream_url
    );

    let mut terminate = signal(SignalKind::terminate())?;
    let mut hangup = signal(SignalKind::hangup())?;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
            _ = hangup.recv() => reload(&server, &config.policies.dir),
        }
    }
    println!("accord: shutting down");
    server.shutdown(DRAIN).await;
    audit.close();
    Ok(())
}

/// Loads the policy directory again; a set with errors is refused and the
/// last good one stays in force.
fn reload(server: &GatewayServer, dir: &Path) {
    match PolicySet::load_dir(dir) {
        Ok(policies) => {
            server.policies().replace(policies);
            tracing::info!(dir = %dir.display(), "policies reloaded");
        }
        Err(e) => {
            tracing::error!(errors = %e, "policy reload refused; keeping the last good policies");
        }
    }
}
