//! The pooled upstream client: sends a rebuilt request to the upstream FHIR server
//! over a pooled client, with a deadline and a response size bound.

use std::sync::Arc;
use std::time::{Duration, Instant};

use accord_fhir::{FhirRequest, InteractionKind, Method};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::error::GatewayError;
// Where it lived before request.rs: most upstream modules import it from here.
use crate::ops::metrics::{Metrics, Phase};
pub use crate::request::UpstreamWait;

/// The upstream FHIR server.
#[derive(Debug, Clone)]
pub struct Upstream {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    base: String,
    timeout: Duration,
    max_body: usize,
    metrics: Option<Arc<Metrics>>,
}

/// What the upstream answered, body read in full.
#[derive(Debug)]
pub struct UpstreamResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// The upstream could not be configured.
#[derive(Debug, thiserror::Error)]
#[error("upstream `{url}`: {message}")]
pub struct UpstreamConfigError {
    pub url: String,
    pub message: String,
}

// === impl Upstream ===

impl Upstream {
    pub fn new(
        base_url: &str,
        tls: rustls::ClientConfig,
        timeout: Duration,
        max_body: usize,
    ) -> Result<Self, UpstreamConfigError> {
        let error = |message: &str| UpstreamConfigError {
            url: base_url.to_owned(),
            message: message.to_owned(),
        };
        let uri: Uri = base_url.parse().map_err(|_| error("not a URL"))?;
        match uri.scheme_str() {
            Some("http" | "https") => {}
            _ => return Err(error("use an http:// or https:// URL")),
        }
        if uri.query().is_some() {
            return Err(error("a FHIR base URL has no query"));
        }
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        Ok(Upstream {
            client,
            base: base_url.trim_end_matches('/').to_owned(),
            timeout,
            max_body,
            metrics: None,
        })
    }

    /// Times every exchange into `metrics` (phase `upstream`).
    #[must_use]
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Sends `request` (with `body` for writes) and reads the answer,
    /// adding the time from sending until the body is read (or the call
    /// failed) to `waited`.
    pub async fn send(
        &self,
        request: &FhirRequest,
        body: Bytes,
        if_match: Option<&HeaderValue>,
        request_id: &str,
        waited: &mut UpstreamWait,
    ) -> Result<UpstreamResponse, GatewayError> {
        let outgoing = self.build(request, body, if_match, request_id)?;
        let started = Instant::now();
        let response = self.exchange(outgoing).await;
        waited.add(started.elapsed());
        response
    }

    /// GETs `target`, a path and query under the base, from the upstream
    /// for the gateway itself (not on a partner's behalf).
    pub async fn get(&self, target: &str) -> Result<UpstreamResponse, GatewayError> {
        let uri = format!("{}/{}", self.base, target.trim_start_matches('/'));
        let outgoing = Request::get(uri)
            .header(header::ACCEPT, "application/fhir+json")
            .body(Full::new(Bytes::new()))
            .map_err(|e| {
                tracing::warn!(error = %e, "could not build upstream request");
                GatewayError::upstream_invalid()
            })?;
        self.exchange(outgoing).await
    }

    async fn exchange(
        &self,
        outgoing: Request<Full<Bytes>>,
    ) -> Result<UpstreamResponse, GatewayError> {
        let exchange = async {
            let response = self.client.request(outgoing).await.map_err(|e| {
                tracing::warn!(error = %e, "upstream request failed");
                GatewayError::upstream_unavailable()
            })?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, self.max_body)
                .collect()
                .await
                .map_err(|e| {
                    tracing::warn!(error = %e, "upstream body unreadable or too large");
                    GatewayError::upstream_invalid()
                })?
                .to_bytes();
            Ok(UpstreamResponse {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        let started = Instant::now();
        let result = tokio::time::timeout(self.timeout, exchange).await;
        if let Some(metrics) = &self.metrics {
            metrics.observe_phase(Phase::Upstream, started.elapsed());
        }
        result.map_err(|_| GatewayError::upstream_timeout())?
    }

    fn build(
        &self,
        request: &FhirRequest,
        body: Bytes,
        if_match: Option<&HeaderValue>,
        request_id: &str,
    ) -> Result<Request<Full<Bytes>>, GatewayError> {
        let kind = request.interaction.kind();
        // Searches always go upstream as GET with the (narrowed) parameters
        // in the query, whatever form the partner used.
        let (method, body) = match (kind, request.method) {
            (InteractionKind::Search, _) | (_, Method::Get) => (http::Method::GET, Bytes::new()),
            (_, Method::Post) => (http::Method::POST, body),
            (_, Method::Put) => (http::Method::PUT, body),
            (_, Method::Patch) => (http::Method::PATCH, body),
            (_, Method::Delete) => (http::Method::DELETE, Bytes::new()),
        };
        let mut uri = format!("{}/{}", self.base, request.relative_path());
        if !request.params.is_empty() {
            uri.push('?');
            uri.push_str(&request.params.to_query_string());
        }
        let mut builder = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::ACCEPT, "application/fhir+json")
            .header("x-request-id", request_id);
        if !body.is_empty() {
            builder = builder.header(header::CONTENT_TYPE, "application/fhir+json");
        }
        if let Some(value) = if_match {
            builder = builder.header(header::IF_MATCH, value);
        }
        builder.body(Full::new(body)).map_err(|e| {
            tracing::error!(error = %e, "could not build upstream request");
            GatewayError::internal()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_that_never_called_the_upstream_has_no_wait_not_zero() {
        let mut wait = UpstreamWait::default();
        assert_eq!(wait.micros(), None);
        wait.include(UpstreamWait::default());
        assert_eq!(wait.micros(), None, "an entry that made no call adds none");
        wait.add(Duration::from_micros(1500));
        let mut entry = UpstreamWait::default();
        entry.add(Duration::from_micros(250));
        entry.add(Duration::ZERO);
        wait.include(entry);
        assert_eq!(wait.micros(), Some(1750), "summed over every call");
    }
}
