//! An in-memory FHIR R4 server over plain HTTP/1.1, for demos and tests.
//!
//! Production puts Accord in front of a real FHIR server; this one exists so
//! that the gateway, the CLI demo and the end-to-end tests have a real
//! upstream to talk to, in-process, with no setup. Base path: `/fhir`.
//!
//! Interactions: `GET metadata` (CapabilityStatement), read, vread,
//! instance history, type search (`GET /{type}?..`, `POST /{type}/_search`),
//! create (`POST /{type}`), update (`PUT /{type}/{id}`). Search supports
//! `_id`, `_lastUpdated`, `_security`, per-type token / reference / date /
//! string parameters (see the CapabilityStatement), `:Type` on references,
//! comma-separated OR, repeated-parameter AND, date prefixes eq ne gt lt ge
//! le, `_count` (default 20, max 200), `_offset` paging with absolute
//! `self`/`next`/`previous` links, `_include=Type:param[:Target]`, `_total`,
//! `_summary=count`. Any other parameter is refused with 400 rather than
//! ignored, so a gateway that forwards something unexpected is noticed.
//! Writes are validated against fhirbolt's R4 model (422 if invalid).
//!
//! Test knobs live on [`FhirStore`]: [`FhirStore::set_delay`],
//! [`FhirStore::set_failure`], [`FhirStore::recorded_requests`].

mod matching;
mod outcome;
mod params;
mod router;
mod search;
mod store;

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

pub use store::{FhirStore, RecordedRequest, StoreError};

/// What every connection handler shares.
#[derive(Debug)]
pub(crate) struct ServerState {
    pub(crate) store: FhirStore,
    /// `http://127.0.0.1:PORT/fhir`, no trailing slash.
    pub(crate) base_url: String,
}

/// A running server; stops when [`shutdown`](Self::shutdown) is called or
/// when dropped.
#[derive(Debug)]
pub struct RunningFhirServer {
    local_addr: SocketAddr,
    base_url: String,
    store: FhirStore,
    task: JoinHandle<()>,
}

/// Starts serving `store` on `addr` (port 0 picks a free port).
///
/// Must be called inside a Tokio runtime; the server runs as a task on it.
pub async fn start(store: FhirStore, addr: SocketAddr) -> io::Result<RunningFhirServer> {
    let listener = TcpListener::bind(addr).await?;
    let local_addr = listener.local_addr()?;
    // A wildcard bind is reachable on loopback; links must name a real host.
    let host = if local_addr.ip().is_unspecified() {
        match local_addr {
            SocketAddr::V4(_) => SocketAddr::from(([127, 0, 0, 1], local_addr.port())),
            SocketAddr::V6(_) => SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1], local_addr.port())),
        }
    } else {
        local_addr
    };
    let base_url = format!("http://{host}/fhir");
    let state = Arc::new(ServerState {
        store: store.clone(),
        base_url: base_url.clone(),
    });
    let task = tokio::spawn(accept_loop(listener, state));
    tracing::debug!(%base_url, "test FHIR server started");
    Ok(RunningFhirServer {
        local_addr,
        base_url,
        store,
        task,
    })
}

async fn accept_loop(listener: TcpListener, state: Arc<ServerState>) {
    // INVARIANT: connections live in this JoinSet, so aborting this task
    // (shutdown) drops the set and aborts every connection with it.
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        match listener.accept().await {
            Ok((stream, _peer)) => {
                connections.spawn(serve_connection(stream, Arc::clone(&state)));
            }
            Err(e) => {
                // Typically EMFILE; back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    }
}

async fn serve_connection(stream: TcpStream, state: Arc<ServerState>) {
    let service = service_fn(move |request| {
        let state = Arc::clone(&state);
        async move { Ok::<_, Infallible>(router::handle(&state, request).await) }
    });
    if let Err(e) = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await
    {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// The CapabilityStatement, generated from the same table searches use.
pub(crate) fn capability(base_url: &str) -> Value {
    let interactions: Vec<Value> = [
        "read",
        "vread",
        "history-instance",
        "search-type",
        "create",
        "update",
    ]
    .iter()
    .map(|code| json!({ "code": code }))
    .collect();
    let resources: Vec<Value> = params::TYPES
        .iter()
        .map(|(resource_type, defs)| {
            let search_params: Vec<Value> = params::COMMON
                .iter()
                .chain(defs.iter())
                .map(|d| json!({ "name": d.name, "type": d.kind.code() }))
                .collect();
            let includes: Vec<String> = defs
                .iter()
                .filter(|d| d.kind == params::ParamKind::Reference)
                .map(|d| format!("{resource_type}:{}", d.name))
                .collect();
            let mut resource = json!({
                "type": resource_type,
                "versioning": "versioned",
                "readHistory": true,
                "updateCreate": true,
                "interaction": interactions,
                "searchParam": search_params,
            });
            // FHIR JSON arrays must not be empty.
            if !includes.is_empty()
                && let Some(object) = resource.as_object_mut()
            {
                object.insert("searchInclude".into(), json!(includes));
            }
            resource
        })
        .collect();
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2025-01-01",
        "publisher": "Accord testkit",
        "kind": "instance",
        "software": { "name": "accord-testkit in-memory FHIR server", "version": env!("CARGO_PKG_VERSION") },
        "implementation": { "description": "In-memory FHIR R4 server for tests and demos", "url": base_url },
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "rest": [{
            "mode": "server",
            "resource": resources,
            "searchParam": [
                { "name": "_count", "type": "number" },
                { "name": "_offset", "type": "number" },
            ],
        }],
    })
}

// === impl RunningFhirServer ===

impl RunningFhirServer {
    /// The FHIR base URL, e.g. `http://127.0.0.1:41234/fhir` (no trailing slash).
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// The bound socket address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The store being served (shared: changes are visible immediately).
    pub fn store(&self) -> &FhirStore {
        &self.store
    }

    /// Stops accepting and aborts open connections. The listening socket
    /// is closed once the runtime processes the abort (promptly, but not
    /// necessarily before this returns).
    pub fn shutdown(self) {
        // Drop does the work.
    }
}

impl Drop for RunningFhirServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests;
