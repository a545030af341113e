//! Phase 5, filter: check what the upstream answered before any of it can be
//! released; rewrite every URL to point at the gateway.
//!
//! This first version checks that the body is FHIR JSON and rewrites links;
//! per-resource filtering (compartment, consent, sensitivity, redaction)
//! builds on the same place.

use accord_fhir::BaseRewrite;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::Value;

use crate::error::GatewayError;
use crate::forward::UpstreamResponse;

/// A response that passed the filter, ready to be audited and sent.
#[derive(Debug)]
pub struct Releasable {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Checks and rewrites the upstream's answer.
pub fn filter(
    upstream: UpstreamResponse,
    rewrite: &BaseRewrite,
) -> Result<Releasable, GatewayError> {
    if upstream.status.is_server_error() {
        tracing::warn!(status = %upstream.status, "upstream server error");
        return Err(GatewayError::upstream_invalid());
    }
    if upstream.status.is_client_error() {
        return Err(upstream_refusal(upstream.status));
    }
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/fhir+json; charset=utf-8"),
    );
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
    let mut json: Value =
        serde_json::from_slice(&upstream.body).map_err(|_| GatewayError::upstream_invalid())?;
    if json.get("resourceType").and_then(Value::as_str).is_none() {
        return Err(GatewayError::upstream_invalid());
    }
    if json.get("resourceType").and_then(Value::as_str) == Some("Bundle") {
        rewrite.rewrite_bundle(&mut json);
    }
    let body = serde_json::to_vec(&json).map_err(|_| GatewayError::internal())?;
    Ok(Releasable {
        status: upstream.status,
        headers,
        body: Bytes::from(body),
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn upstream(status: u16, headers: &[(&str, &str)], body: Value) -> UpstreamResponse {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        UpstreamResponse {
            status: StatusCode::from_u16(status).unwrap(),
            headers: map,
            body: Bytes::from(body.to_string()),
        }
    }

    fn rewrite() -> BaseRewrite {
        BaseRewrite::new("http://up:1/fhir", "https://gw:2/fhir")
    }

    #[test]
    fn rewrites_bundle_links_and_location_and_drops_upstream_headers() {
        let bundle = json!({"resourceType": "Bundle", "type": "searchset",
            "link": [{"relation": "next", "url": "http://up:1/fhir/Patient?page=2"}]});
        let out = filter(
            upstream(
                200,
                &[
                    ("server", "secret/1.0"),
                    ("location", "http://up:1/fhir/Task/1/_history/1"),
                ],
                bundle,
            ),
            &rewrite(),
        )
        .unwrap();
        let body: Value = serde_json::from_slice(&out.body).unwrap();
        assert_eq!(body["link"][0]["url"], "https://gw:2/fhir/Patient?page=2");
        assert_eq!(
            out.headers["location"],
            "https://gw:2/fhir/Task/1/_history/1"
        );
        assert!(out.headers.get("server").is_none());
    }

    #[test]
    fn refuses_what_it_cannot_check() {
        let not_json = UpstreamResponse {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body: Bytes::from_static(b"<Patient/>"),
        };
        assert_eq!(
            filter(not_json, &rewrite()).unwrap_err().status,
            StatusCode::BAD_GATEWAY
        );
        let no_type = upstream(200, &[], json!({"id": "x"}));
        assert_eq!(
            filter(no_type, &rewrite()).unwrap_err().status,
            StatusCode::BAD_GATEWAY
        );
    }

    #[test]
    fn upstream_errors_keep_status_but_not_upstream_words() {
        let oo = json!({"resourceType": "OperationOutcome", "issue": [{"diagnostics": "HAPI-0971 at org.internal"}]});
        let err = filter(upstream(404, &[], oo.clone()), &rewrite()).unwrap_err();
        assert_eq!(err.status, StatusCode::NOT_FOUND);
        assert!(!err.message.contains("HAPI"));
        assert_eq!(
            filter(upstream(500, &[], oo), &rewrite())
                .unwrap_err()
                .status,
            StatusCode::BAD_GATEWAY
        );
    }
}
