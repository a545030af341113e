//! `accord serve`: load configuration, policies and the audit log, run the
//! gateway and its admin listener until SIGINT/SIGTERM; SIGHUP reloads
//! policies and TLS certificates.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use accord_audit::{AuditStore, StoreOptions};
use accord_gateway::GatewayServer;
use accord_gateway::config::AccordConfig;
use accord_gateway::ops::admin::{AdminServer, AdminState, Trigger};
use accord_gateway::ops::watch::FileWatch;
use accord_policy::PolicySet;
use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};

use crate::logging;
use crate::output::outln;

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
    // Before anything is announced: a SIGHUP sent as soon as the listeners
    // are up must reload, not kill the process.
    let mut terminate = signal(SignalKind::terminate())?;
    let mut hangup = signal(SignalKind::hangup())?;

    let policies = PolicySet::load_dir(&config.policies.dir)
        .map_err(|e| anyhow::anyhow!("policies are invalid; not starting:\n{e}"))?;
    let (on_checkpoint, checkpoints) = accord_gateway::ops::witness_client::feed();
    let options = StoreOptions {
        signing_key: Some(config.audit.signing_key.clone()),
        on_checkpoint: (!config.audit.witnesses.is_empty()).then_some(on_checkpoint),
        ..StoreOptions::default()
    };
    let (audit, report) = AuditStore::open_with(&config.audit.dir, options)
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
            key_file = %config.audit.signing_key.display(),
            "made a new checkpoint signing key; give the public key to your auditors"
        );
    }
    let audit = Arc::new(audit);
    let witnesses = accord_gateway::ops::witness_client::start(
        &config.audit.witnesses,
        Arc::clone(&audit),
        checkpoints,
    )?;
    if config.gateway.state_dir.is_none() {
        // Volume-cap counters must survive a restart: keep them beside the
        // audit log unless configured elsewhere.
        config.gateway.state_dir = Some(config.audit.dir.join("gateway-state"));
    }
    let server = GatewayServer::start(&config.gateway, policies, audit.clone()).await?;
    // Status lines only: a closed stdout must not stop the gateway.
    let _ = outln!(
        "accord: serving {} on {} (upstream {})",
        server.public_base(),
        server.local_addr(),
        config.gateway.upstream_url
    );

    let admin_state = AdminState::new(
        &server,
        &config.admin,
        config.policies.dir.clone(),
        Some(config.audit.dir.clone()),
    )?
    .with_audit_store(Arc::clone(&audit));
    let admin = if config.admin.enabled {
        let admin = AdminServer::start(config.admin.listen, admin_state.clone()).await?;
        let _ = outln!("accord: admin on http://{}", admin.local_addr());
        Some(admin)
    } else {
        None
    };

    let watch = FileWatch::start(admin_state.clone(), config.reload.watch_interval)?;

    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
            _ = hangup.recv() => reload(&admin_state).await,
        }
    }
    let _ = outln!("accord: shutting down");
    if let Some(watch) = watch {
        watch.stop();
    }
    if let Some(admin) = admin {
        admin.shutdown().await;
    }
    server.shutdown(DRAIN).await;
    audit.close();
    if let Some(witnesses) = witnesses {
        witnesses.abort();
    }
    Ok(())
}

/// SIGHUP: loads the policy directory again (a set with errors is refused
/// and the last good one stays in force) and the server certificate, key
/// and partner CA bundle (on error the ones in force stay), off the async
/// threads.
async fn reload(admin: &AdminState) {
    let admin = admin.clone();
    let _ = tokio::task::spawn_blocking(move || {
        let _ = admin.reload_policies_by(Trigger::Signal);
        let _ = admin.reload_tls(Trigger::Signal);
    })
    .await;
}
