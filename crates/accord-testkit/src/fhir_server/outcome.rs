//! Errors as HTTP status + OperationOutcome, in one place.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;
use serde_json::{Value, json};

/// The media type of every response body.
pub(crate) const FHIR_JSON: &str = "application/fhir+json";

/// A failed interaction: the status and the OperationOutcome issue to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FhirError {
    pub(crate) status: StatusCode,
    /// FHIR issue-type code, e.g. `not-found`, `invalid`, `not-supported`.
    pub(crate) code: &'static str,
    pub(crate) diagnostics: String,
}

impl FhirError {
    pub(crate) fn new(
        status: StatusCode,
        code: &'static str,
        diagnostics: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code,
            diagnostics: diagnostics.into(),
        }
    }

    pub(crate) fn not_found(diagnostics: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", diagnostics)
    }

    pub(crate) fn bad_request(diagnostics: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid", diagnostics)
    }

    pub(crate) fn not_supported(status: StatusCode, diagnostics: impl Into<String>) -> Self {
        Self::new(status, "not-supported", diagnostics)
    }

    pub(crate) fn method_not_allowed(method: &http::Method, path: &str) -> Self {
        Self::not_supported(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("`{method}` is not supported on `{path}`"),
        )
    }

    pub(crate) fn unprocessable(diagnostics: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "processing", diagnostics)
    }

    /// The OperationOutcome resource for this error.
    pub(crate) fn outcome(&self) -> Value {
        json!({
            "resourceType": "OperationOutcome",
            "issue": [{
                "severity": "error",
                "code": self.code,
                "diagnostics": self.diagnostics,
            }],
        })
    }

    pub(crate) fn into_response(self) -> Response<Full<Bytes>> {
        json_response(self.status, &self.outcome())
    }
}

/// A FHIR JSON response.
pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    response
}
