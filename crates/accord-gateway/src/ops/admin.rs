//! The operators' listener, on its own address (loopback by default):
//!
//! - `GET /healthz`: the process is serving (liveness);
//! - `GET /readyz`: policies loaded, audit log writable, upstream reachable;
//! - `GET /metrics`: Prometheus text;
//! - `GET /policies`: the policy set in force;
//! - `POST /policies/reload`: load the policy directory again, keeping the
//!   last good set if the new one has errors;
//! - `POST /tls/reload`: read the server certificate, key and partner CA
//!   bundle again;
//! - `GET /reloads`: what the last policy and TLS reloads did (SIGHUP,
//!   admin API or file watch);
//! - `GET /audit/query`, `/audit/disclosures`, `/audit/checkpoint`,
//!   `/audit/prove`, `/audit/verify`: the privacy officer's queries, through
//!   the gateway's own audit store (see `admin/audit.rs`).
//!
//! Every endpoint needs `Authorization: Bearer <token>` with the token from
//! `admin.token_file`, except the two probes when `admin.open_probes` is on
//! (they say only "ok" or "not ready"). Without a token file, authenticated
//! endpoints always answer 401: the admin API fails closed.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use accord_audit::AuditStore;
use accord_policy::PolicySet;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::AdminConfig;
use crate::ops::metrics::{Metrics, ReloadResult};
use crate::policy_store::PolicyStore;
use crate::server::{GatewayServer, ServerCerts};

mod audit;
mod auth;
mod ready;
mod reloads;

pub use auth::{AdminToken, TokenError};
pub use reloads::{LastReload, ReloadStatus, Trigger};

/// Admin requests must send their head within this.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// What the admin endpoints act on.
#[derive(Debug, Clone)]
pub struct AdminState {
    pub policies: Arc<PolicyStore>,
    pub policies_dir: PathBuf,
    /// The audit directory, probed for writability by `/readyz`.
    pub audit_dir: Option<PathBuf>,
    pub upstream_url: String,
    pub metrics: Arc<Metrics>,
    pub certs: Arc<ServerCerts>,
    pub token: Option<AdminToken>,
    pub open_probes: bool,
    /// The running gateway's audit store, for `/audit/*` (it holds the
    /// index exclusively; queries go through it).
    pub audit: Option<Arc<AuditStore>>,
    /// The last policy and TLS reload, whoever asked for it.
    pub reloads: Arc<ReloadStatus>,
}

/// A running admin listener.
#[derive(Debug)]
pub struct AdminServer {
    local_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// Why the admin listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum AdminStartError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("admin: cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
}

/// What a policy reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyReload {
    /// The new set is in force.
    Applied { version: String },
    /// The new set has errors; the last good set stays in force.
    Refused { errors: String },
}

// === impl AdminState ===

impl AdminState {
    /// The state for `server`, with the token file read now.
    pub fn new(
        server: &GatewayServer,
        config: &AdminConfig,
        policies_dir: PathBuf,
        audit_dir: Option<PathBuf>,
    ) -> Result<Self, TokenError> {
        let token = config
            .token_file
            .as_deref()
            .map(AdminToken::from_file)
            .transpose()?;
        Ok(AdminState {
            policies: Arc::clone(server.policies()),
            policies_dir,
            audit_dir,
            upstream_url: server.upstream_url().to_owned(),
            metrics: Arc::clone(server.metrics()),
            certs: Arc::clone(server.certs()),
            token,
            open_probes: config.open_probes,
            audit: None,
            reloads: Arc::default(),
        })
    }

    /// Serves `/audit/*` from `store` (the one the gateway appends to).
    #[must_use]
    pub fn with_audit_store(mut self, store: Arc<AuditStore>) -> Self {
        self.audit = Some(store);
        self
    }

    /// Loads the policy directory and puts it in force, or keeps the last
    /// good set and returns the errors. Used by SIGHUP and the admin API.
    pub fn reload_policies(&self) -> PolicyReload {
        self.reload_policies_by(Trigger::Admin)
    }

    /// [`reload_policies`](Self::reload_policies), remembering who asked
    /// and what came of it for `GET /reloads`.
    pub fn reload_policies_by(&self, trigger: Trigger) -> PolicyReload {
        let reload = reload_policies(&self.policies, &self.metrics, &self.policies_dir);
        let error = match &reload {
            PolicyReload::Applied { .. } => None,
            PolicyReload::Refused { errors } => Some(errors.clone()),
        };
        self.reloads.record_policies(trigger, error);
        reload
    }

    /// Reads the server certificate, key and partner CA bundle again; on
    /// error the ones in force stay. Logged, counted and remembered.
    pub fn reload_tls(&self, trigger: Trigger) -> Result<(), crate::tls::TlsError> {
        let result = self.certs.reload();
        match &result {
            Ok(()) => {
                tracing::info!("server certificate and partner CA bundle reloaded");
                self.metrics.tls_reload(ReloadResult::Ok);
                self.reloads.record_tls(trigger, None);
            }
            Err(e) => {
                tracing::error!(error = %e, "TLS reload refused; keeping the certificates in force");
                self.metrics.tls_reload(ReloadResult::Failed);
                self.reloads.record_tls(trigger, Some(e.to_string()));
            }
        }
        result
    }
}

/// Loads `dir` into `store`; a set with errors is refused and the set in
/// force stays.
pub fn reload_policies(
    store: &PolicyStore,
    metrics: &Metrics,
    dir: &std::path::Path,
) -> PolicyReload {
    match PolicySet::load_dir(dir) {
        Ok(policies) => {
            let version = policies.version().to_string();
            metrics.policy_reload(ReloadResult::Ok, Some(&policies));
            store.replace(policies);
            tracing::info!(dir = %dir.display(), %version, "policies reloaded");
            PolicyReload::Applied { version }
        }
        Err(e) => {
            metrics.policy_reload(ReloadResult::Failed, None);
            let errors = e.to_string();
            tracing::error!(%errors, "policy reload refused; keeping the last good policies");
            PolicyReload::Refused { errors }
        }
    }
}

// === impl AdminServer ===

impl AdminServer {
    /// Binds `listen` and serves the admin API.
    pub async fn start(listen: SocketAddr, state: AdminState) -> Result<Self, AdminStartError> {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| AdminStartError::Bind {
                addr: listen,
                source,
            })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| AdminStartError::Bind {
                addr: listen,
                source,
            })?;
        if state.token.is_none() {
            tracing::warn!(
                "admin.token_file is not set: /metrics and reloads answer 401 to everyone"
            );
        }
        if !local_addr.ip().is_loopback() {
            tracing::warn!(%local_addr, "admin listener is not on loopback; it speaks plain HTTP");
        }
        let (shutdown, shutdown_rx) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, Arc::new(state), shutdown_rx));
        tracing::info!(%local_addr, "admin listening");
        Ok(AdminServer {
            local_addr,
            shutdown,
            task,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting and waits (briefly) for open admin requests.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
    }
}

async fn accept_loop(
    listener: TcpListener,
    state: Arc<AdminState>,
    mut shutdown: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => accepted,
        };
        let Ok((tcp, _peer)) = accepted else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let state = Arc::clone(&state);
        let service = service_fn(move |request| {
            let state = Arc::clone(&state);
            async move { Ok::<_, Infallible>(handle(&state, &request).await) }
        });
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT);
        let connection = graceful.watch(http.serve_connection(TokioIo::new(tcp), service));
        tokio::spawn(async move {
            let _ = connection.await;
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
}

/// Routes one admin request.
pub async fn handle<B>(state: &AdminState, request: &Request<B>) -> Response<Full<Bytes>> {
    let path = request.uri().path();
    let method = request.method();
    let probe = matches!(path, "/healthz" | "/readyz");
    let open = probe && state.open_probes;
    if !open && !auth::authorized(state.token.as_ref(), request.headers()) {
        return text(StatusCode::UNAUTHORIZED, "unauthorized\n");
    }
    match (method, path) {
        (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n"),
        (&Method::GET, "/readyz") => {
            let report = ready::check(state).await;
            let status = if report.ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            json_response(status, &report.to_json())
        }
        (&Method::GET, "/metrics") => {
            let mut response = Response::new(Full::new(Bytes::from(state.metrics.render())));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            response
        }
        (&Method::GET, "/policies") => {
            let policies = state.policies.current();
            json_response(
                StatusCode::OK,
                &json!({
                    "version": policies.version().to_string(),
                    "agreements": policies.agreements().len(),
                    "partners": policies.partners().count(),
                    "dir": state.policies_dir.display().to_string(),
                    "last_reload": state.reloads.policies(),
                }),
            )
        }
        (&Method::GET, "/reloads") => json_response(
            StatusCode::OK,
            &json!({
                "policies": {
                    "version": state.policies.current().version().to_string(),
                    "last_reload": state.reloads.policies(),
                },
                "tls": {"last_reload": state.reloads.tls()},
            }),
        ),
        (&Method::POST, "/policies/reload") => match state.reload_policies() {
            PolicyReload::Applied { version } => json_response(
                StatusCode::OK,
                &json!({"reloaded": true, "version": version}),
            ),
            PolicyReload::Refused { errors } => json_response(
                StatusCode::UNPROCESSABLE_ENTITY,
                &json!({
                    "reloaded": false,
                    "version": state.policies.current().version().to_string(),
                    "errors": errors,
                }),
            ),
        },
        (&Method::POST, "/tls/reload") => match state.reload_tls(Trigger::Admin) {
            Ok(()) => json_response(StatusCode::OK, &json!({"reloaded": true})),
            Err(e) => json_response(
                StatusCode::UNPROCESSABLE_ENTITY,
                &json!({"reloaded": false, "error": e.to_string()}),
            ),
        },
        (&Method::GET, path) if audit::is_audit_path(path) => {
            audit::handle(state.audit.as_ref(), path, request.uri().query()).await
        }
        (
            _,
            "/healthz" | "/readyz" | "/metrics" | "/policies" | "/policies/reload" | "/tls/reload"
            | "/reloads",
        ) => text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n"),
        (_, path) if audit::is_audit_path(path) => {
            text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n")
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static("Bearer realm=\"accord-admin\""),
        );
    }
    response
}

fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut body = serde_json::to_vec_pretty(value).unwrap_or_default();
    body.push(b'\n');
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}
