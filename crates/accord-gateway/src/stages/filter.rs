//! Stage 6, filter (→ `Releasable`): every resource leaving the gateway — a single resource,
//! Bundle entries of any mode, contained resources, history versions — is
//! checked again against the decision's scope before anything is released,
//! and every URL is rewritten to point at the gateway.

use accord_fhir::{BaseRewrite, FhirRequest, Interaction};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::Value;

use crate::error::GatewayError;
use crate::request::RequestContext;
use crate::request::page::Page;
use crate::scope::Scope;
use crate::stages::{Fetched, Gateway, Permitted};
use crate::upstream::client::UpstreamResponse;

mod bundle;
mod capabilities;
mod lookups;
mod meta;
mod prune;
mod redact;
pub mod redisclosure;
mod scan;
pub mod subset;
mod verdict;

pub use crate::request::Releasable;
pub use crate::request::report::{Counts, ReleaseReport, WithholdReason};
pub use bundle::{empty_searchset, filter_bundle};
pub use meta::add_meta_coding;
pub use redact::redact;
pub use verdict::{Verdict, verdict};

/// How the filter looks at a response.
#[derive(Debug)]
pub enum Checks<'s, 'p> {
    /// Check every resource against the scope.
    Resources(&'s Scope<'p>),
    /// The upstream's copy of what the partner just wrote: checked like any
    /// resource, but if withheld the write still happened, so the status
    /// (and `Location`) is answered without a body.
    Written(&'s Scope<'p>),
    /// The server's CapabilityStatement: replaced by the gateway's own,
    /// listing what this partner may do.
    Capabilities(&'s Scope<'p>),
}

/// Checks and rewrites the upstream's answer.
pub fn filter(
    upstream: UpstreamResponse,
    checks: &Checks<'_, '_>,
    rewrite: &BaseRewrite,
    (self_link, page): (&str, Option<&Page>),
    report: &mut ReleaseReport,
) -> Result<Releasable, GatewayError> {
    if upstream.status.is_server_error() {
        tracing::warn!(status = %upstream.status, "upstream server error");
        return Err(GatewayError::upstream_invalid());
    }
    if upstream.status.is_client_error() {
        return Err(upstream_refusal(upstream.status));
    }
    let mut headers = fhir_headers();
    // Only headers that describe the resource pass; everything else the
    // upstream says about itself stays behind.
    for name in [header::ETAG, header::LAST_MODIFIED] {
        if let Some(value) = upstream.headers.get(&name) {
            headers.insert(name, value.clone());
        }
    }
    if let Some(location) = upstream
        .headers
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
    {
        // A Location outside the upstream base is dropped, never passed on.
        if let Some(value) = rewrite
            .rewrite(location)
            .and_then(|l| HeaderValue::from_str(&l).ok())
        {
            headers.insert(header::LOCATION, value);
        }
    }
    if upstream.body.is_empty() {
        return Ok(Releasable {
            status: upstream.status,
            headers,
            body: upstream.body,
        });
    }
    // A Bundle is filtered from a shallow parse, its unchanged entries
    // copied as raw bytes (bundle.rs); anything else is small and parsed
    // whole.
    if let Checks::Resources(scope) | Checks::Written(scope) = checks
        && let Some(envelope) = bundle::Envelope::parse(&upstream.body)
        && envelope.is_bundle()
    {
        let body = bundle::filter_envelope(&envelope, scope, rewrite, (self_link, page), report);
        return Ok(Releasable {
            status: upstream.status,
            headers,
            body: Bytes::from(body),
        });
    }
    let json: Value =
        serde_json::from_slice(&upstream.body).map_err(|_| GatewayError::upstream_invalid())?;
    let Some(resource_type) = json.get("resourceType").and_then(Value::as_str) else {
        return Err(GatewayError::upstream_invalid());
    };
    let released = match (checks, resource_type) {
        (Checks::Capabilities(scope), "CapabilityStatement") => {
            capabilities::capabilities(&json, scope, rewrite.gateway_base())
        }
        (Checks::Capabilities(_), _) => return Err(GatewayError::upstream_invalid()),
        // An informational outcome on success may describe upstream
        // internals: the status says enough.
        (Checks::Resources(_) | Checks::Written(_), "OperationOutcome") => {
            return Ok(Releasable {
                status: upstream.status,
                headers,
                body: Bytes::new(),
            });
        }
        // A Bundle whose envelope could not be read shallowly repeats a key
        // or has entries that are not an array.
        (Checks::Resources(_) | Checks::Written(_), "Bundle") => {
            return Err(GatewayError::upstream_invalid());
        }
        (Checks::Resources(scope) | Checks::Written(scope), _) => match verdict(&json, scope) {
            Verdict::Release {
                patients,
                redact,
                sensitivity,
            } => {
                report.released(&json, &patients, !redact.is_empty(), &sensitivity);
                if redact.is_empty() {
                    json
                } else {
                    self::redact(json, &redact)
                }
            }
            Verdict::Withhold(reason) => {
                let code = reason.code();
                report.withheld(&json, reason);
                if matches!(checks, Checks::Written(_)) {
                    return Ok(Releasable {
                        status: upstream.status,
                        headers,
                        body: Bytes::new(),
                    });
                }
                // The same answer as for a resource that does not exist;
                // the audit record says why.
                return Err(GatewayError::withheld_as_missing(code));
            }
        },
    };
    let body = serde_json::to_vec(&released).map_err(|_| GatewayError::internal())?;
    Ok(Releasable {
        status: upstream.status,
        headers,
        body: Bytes::from(body),
    })
}

/// A response the gateway makes itself (e.g. an empty searchset).
pub fn gateway_made(status: StatusCode, body: &Value) -> Result<Releasable, GatewayError> {
    let body = serde_json::to_vec(body).map_err(|_| GatewayError::internal())?;
    Ok(Releasable {
        status,
        headers: fhir_headers(),
        body: Bytes::from(body),
    })
}

fn fhir_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/fhir+json; charset=utf-8"),
    );
    headers
}

/// The upstream refused the request. Its OperationOutcome may describe its
/// internals, so the partner gets the status with the gateway's own words.
fn upstream_refusal(status: StatusCode) -> GatewayError {
    let mut error = match status {
        StatusCode::NOT_FOUND | StatusCode::GONE => GatewayError::not_found("resource not found"),
        StatusCode::UNPROCESSABLE_ENTITY => {
            GatewayError::unprocessable("the FHIR server could not process the resource")
        }
        StatusCode::CONFLICT | StatusCode::PRECONDITION_FAILED => {
            GatewayError::bad_request("version conflict")
        }
        _ => GatewayError::bad_request("the FHIR server refused the request"),
    };
    if matches!(
        status,
        StatusCode::NOT_FOUND
            | StatusCode::GONE
            | StatusCode::CONFLICT
            | StatusCode::PRECONDITION_FAILED
            | StatusCode::BAD_REQUEST
    ) {
        error.status = status;
    }
    error
}

/// The partner's request as a gateway URL: the `self` link of any Bundle
/// it gets back (taken before narrowing, so it reveals nothing).
pub fn self_link(rewrite: &BaseRewrite, request: &FhirRequest) -> String {
    let mut link = format!("{}/{}", rewrite.gateway_base(), request.relative_path());
    if !request.params.is_empty() {
        link.push('?');
        link.push_str(&request.params.to_query_string());
    }
    link
}

// === impl Gateway ===

impl Gateway {
    /// The filter stage: what the answer needs looked up first (referral
    /// membership, Medications, Encounters), then every resource checked
    /// against the scope, the §2.32 notice attached, and `_elements` /
    /// `_summary` applied to what was released.
    pub(super) async fn filter(
        &self,
        ctx: &mut RequestContext,
        permitted: &Permitted,
        fetched: Fetched<'_>,
    ) -> Result<Releasable, GatewayError> {
        let Fetched { narrowed, response } = fetched;
        self.look_up_for_filter(ctx, permitted, &narrowed, &response)
            .await?;
        let scope = &narrowed.scope;
        let checks = match narrowed.fhir.interaction {
            Interaction::Capabilities => Checks::Capabilities(scope),
            Interaction::Create { .. } | Interaction::Update { .. } => Checks::Written(scope),
            _ => Checks::Resources(scope),
        };
        let released = filter(
            response,
            &checks,
            &self.rewrite,
            (&permitted.self_link, narrowed.page.as_ref()),
            &mut ctx.report,
        )?;
        let released = redisclosure::attach_notice(released, scope)?;
        match &narrowed.subset {
            Some(subset) => subset.apply(released),
            None => Ok(released),
        }
    }
}

#[cfg(test)]
mod tests;
