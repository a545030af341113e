//! The partner-facing listener: TCP accept, TLS handshake (bounded in time),
//! HTTP/1.1 with header limits and timeouts, graceful shutdown.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use accord_audit::AuditSink;
use accord_fhir::BaseRewrite;
use accord_policy::{PartnerId, PolicySet};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use ring::rand::SystemRandom;
use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::config::GatewayConfig;
use crate::ops::metrics::{MeteredSink, Metrics};
use crate::policy_store::PolicyStore;
use crate::request::Connection;
use crate::stages::Gateway;
use crate::stages::identify::{cert_fingerprint, spki_pin};
use crate::tls::{self, TlsError};
use crate::upstream::client::{Upstream, UpstreamConfigError};
use crate::upstream::consent_feed::{ConsentFeed, FeedError};

mod certs;
mod malformed;
mod partner_slots;

pub use certs::ServerCerts;
pub use partner_slots::{Holder, PartnerSlots};

/// hyper refuses read buffers smaller than this.
const MIN_HTTP_BUFFER: usize = 8192;
/// hyper's header table holds this many times `limits.max_headers`, so the
/// gateway's own limit is the one partners meet.
const HYPER_HEADERS_FACTOR: usize = 4;
/// hyper's own default table size.
const MIN_HYPER_HEADERS: usize = 100;

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Upstream(#[from] UpstreamConfigError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    /// Consents are pulled from the upstream and the first pull failed: the
    /// gateway does not serve without knowing the patients' consents.
    #[error("consent feed: {0}")]
    ConsentFeed(#[from] FeedError),
    #[error(transparent)]
    Caps(#[from] crate::caps::CapsStoreError),
    #[error("{0}")]
    Config(String),
}

/// A running gateway.
#[derive(Debug)]
pub struct GatewayServer {
    local_addr: SocketAddr,
    public_base: String,
    policies: Arc<PolicyStore>,
    metrics: Arc<Metrics>,
    certs: Arc<ServerCerts>,
    upstream_url: String,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

// === impl GatewayServer ===

impl GatewayServer {
    /// Binds the listener and starts serving.
    pub async fn start(
        config: &GatewayConfig,
        policies: PolicySet,
        audit: Arc<dyn AuditSink>,
    ) -> Result<GatewayServer, StartError> {
        let certs = Arc::new(ServerCerts::load(&config.tls)?);
        let metrics = Arc::new(Metrics::new(&policies));
        let federation = federation(config, &metrics)?;
        let upstream = match federation.as_ref().and_then(|f| f.members().first()) {
            // The first member's server answers the gateway's own lookups.
            Some(first) => first.upstream.clone(),
            None => Upstream::new(
                &config.upstream_url,
                tls::upstream_client_config(config.upstream_ca.as_deref())?,
                config.limits.upstream_timeout,
                config.limits.max_upstream_body_bytes,
            )?
            .with_metrics(Arc::clone(&metrics)),
        };
        let caps = Arc::new(crate::caps::VolumeCaps::open(config.state_dir.as_deref())?);
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let local_addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
        let public_base = config.public_base(local_addr);
        let member_bases: Vec<String> = federation
            .iter()
            .flat_map(|f| f.members())
            .flat_map(|m| m.bases.clone())
            .collect();
        let rewrite = config.upstream_aliases.iter().chain(&member_bases).fold(
            BaseRewrite::new(upstream.base_url(), &public_base),
            |rewrite, alias| rewrite.with_alias(alias),
        );
        let policies = Arc::new(PolicyStore::new(policies));
        let (shutdown, shutdown_rx) = watch::channel(false);
        if config.consent_feed.enabled {
            let mut feed = ConsentFeed::new(
                upstream.clone(),
                Arc::clone(&policies),
                config.consent_feed.clone(),
                &config.upstream_aliases,
            );
            feed.poll().await?;
            tracing::info!(consents = feed.len(), "consent feed: first pull in force");
            tokio::spawn(feed.run(shutdown_rx.clone()));
        }
        let bases =
            crate::upstream::paging::upstream_bases(upstream.base_url(), &config.upstream_aliases);
        let gateway = Arc::new(Gateway {
            policies: Arc::clone(&policies),
            audit: Arc::new(MeteredSink::new(audit, Arc::clone(&metrics))),
            metrics: Arc::clone(&metrics),
            rewrite,
            upstream,
            base_path: config.normalized_base_path(),
            limits: config.limits.clone(),
            random: SystemRandom::new(),
            referrals: crate::upstream::referral::ReferralResolver::new(bases.clone()),
            upstream_bases: bases,
            caps: Arc::clone(&caps),
            federation,
            upstream_owner: config
                .upstream_owner
                .as_deref()
                .map(PartnerId::parse)
                .transpose()
                .map_err(|e| StartError::Config(format!("gateway.upstream_owner: {e}")))?,
        });
        let task = tokio::spawn(accept_loop(
            listener,
            Arc::clone(&certs),
            gateway,
            shutdown_rx,
        ));
        tracing::info!(%local_addr, %public_base, "gateway listening");
        Ok(GatewayServer {
            local_addr,
            public_base,
            policies,
            metrics,
            certs,
            upstream_url: config.upstream_url.clone(),
            shutdown,
            task,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The FHIR base URL partners use.
    pub fn public_base(&self) -> &str {
        &self.public_base
    }

    /// The policies in force, for reloads.
    pub fn policies(&self) -> &Arc<PolicyStore> {
        &self.policies
    }

    /// The gateway's counters (the admin listener renders them).
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The listener's TLS configuration, for certificate rotation.
    pub fn certs(&self) -> &Arc<ServerCerts> {
        &self.certs
    }

    /// The upstream FHIR base URL as configured.
    pub fn upstream_url(&self) -> &str {
        &self.upstream_url
    }

    /// Stops accepting, lets in-flight requests finish (up to `drain`), and
    /// returns when the listener is closed.
    pub async fn shutdown(self, drain: Duration) {
        let _ = self.shutdown.send(true);
        if tokio::time::timeout(drain + Duration::from_secs(1), self.task)
            .await
            .is_err()
        {
            tracing::warn!("gateway did not stop in time");
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    certs: Arc<ServerCerts>,
    gateway: Arc<Gateway>,
    mut shutdown: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(gateway.limits.max_connections.max(1)));
    let per_partner = PartnerSlots::new(gateway.limits.max_connections_per_partner);
    loop {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            break;
        };
        let accepted = tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: back off, keep serving.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Each connection takes the certificates in force when it arrives.
        let acceptor = TlsAcceptor::from(certs.current());
        let gateway = Arc::clone(&gateway);
        let watcher = graceful.watcher();
        let per_partner = Arc::clone(&per_partner);
        tokio::spawn(async move {
            serve_connection(tcp, peer, acceptor, gateway, &per_partner, watcher).await;
            drop(slot);
        });
    }
    drop(listener);
    let drain = gateway.limits.upstream_timeout + Duration::from_secs(5);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after drain deadline");
    }
}

async fn serve_connection(
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    gateway: Arc<Gateway>,
    per_partner: &Arc<PartnerSlots>,
    watcher: hyper_util::server::graceful::Watcher,
) {
    let _ = tcp.set_nodelay(true);
    let tls =
        match tokio::time::timeout(gateway.limits.handshake_timeout, acceptor.accept(tcp)).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                tracing::info!(%peer, error = %e, "TLS handshake refused");
                return;
            }
            Err(_) => {
                tracing::info!(%peer, "TLS handshake timed out");
                return;
            }
        };
    let client_cert = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|certs| certs.first());
    let connection = Arc::new(Connection {
        peer,
        client_pin: client_cert.and_then(|cert| spki_pin(cert.as_ref())),
        client_cert_sha256: client_cert.map(|cert| cert_fingerprint(cert.as_ref())),
    });
    let holder = connection
        .client_pin
        .as_ref()
        .and_then(|pin| {
            let policies = gateway.policies.current();
            policies.partner_by_pin(pin).map(|p| p.id.clone())
        })
        .map_or(Holder::Unidentified, Holder::Partner);
    let Some(_slot) = per_partner.take(holder.clone()) else {
        // No request has been read, so there is nothing to audit: the
        // connection is closed before any, and its global slot freed.
        tracing::warn!(
            %peer,
            holder = %holder,
            limit = per_partner.limit(),
            "connection refused: the partner holds gateway.limits.max_connections_per_partner connections"
        );
        let mut tls = tls;
        let _ = tokio::time::timeout(Duration::from_secs(1), tls.shutdown()).await;
        return;
    };
    let limits = gateway.limits.clone();
    let (audit_gateway, audit_connection) = (Arc::clone(&gateway), Arc::clone(&connection));
    let service = service_fn(move |request| {
        let gateway = Arc::clone(&gateway);
        let connection = Arc::clone(&connection);
        async move { Ok::<_, Infallible>(gateway.handle(&connection, request).await) }
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        // Room for the configured header limit, so oversized headers reach
        // the handler and get an OperationOutcome; beyond twice that,
        // hyper answers 431 itself.
        .max_buf_size((limits.max_header_bytes * 2).max(MIN_HTTP_BUFFER))
        // Likewise for the number of header lines (hyper's default is 100,
        // answered with an empty 431 the gateway never saw).
        .max_headers(
            limits
                .max_headers
                .saturating_mul(HYPER_HEADERS_FACTOR)
                .max(MIN_HYPER_HEADERS),
        )
        .keep_alive(true);
    let connection = watcher.watch(http.serve_connection(TokioIo::new(tls), service));
    if let Err(e) = connection.await {
        match malformed::answered_status(&e) {
            Some(status) => {
                malformed::audit_refusal(&audit_gateway, &audit_connection, &e, status).await;
            }
            None => tracing::debug!(%peer, error = %e, "connection ended with an error"),
        }
    }
}

/// The members' servers of `[[gateway.upstreams]]`, if configured.
fn federation(
    config: &GatewayConfig,
    metrics: &Arc<Metrics>,
) -> Result<Option<crate::upstream::federation::Federation>, StartError> {
    if config.upstreams.is_empty() {
        return Ok(None);
    }
    let mut members = Vec::new();
    for member in &config.upstreams {
        let owner = PartnerId::parse(&member.owner).map_err(|e| {
            StartError::Config(format!("gateway.upstreams: owner `{}`: {e}", member.owner))
        })?;
        let upstream = Upstream::new(
            &member.url,
            tls::upstream_client_config(member.ca.as_deref())?,
            config.limits.upstream_timeout,
            config.limits.max_upstream_body_bytes,
        )?
        .with_metrics(Arc::clone(metrics));
        let bases = crate::upstream::paging::upstream_bases(upstream.base_url(), &member.aliases);
        members.push(crate::upstream::federation::Member {
            owner,
            upstream,
            bases,
        });
    }
    Ok(Some(crate::upstream::federation::Federation::new(members)))
}
