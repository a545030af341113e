//! Stage 8, respond: the final HTTP response, with request id and audit
//! receipt headers.

use accord_fhir::{FhirRequest, InteractionKind};
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;

use crate::error::GatewayError;
use crate::request::Releasable;
use crate::stages::filter::{empty_searchset, gateway_made};

/// Response header carrying the request id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Response header carrying the audit record's sequence number.
pub const AUDIT_SEQ_HEADER: &str = "x-audit-seq";

/// What the data path hands to the respond phase.
#[derive(Debug)]
pub enum Outcome {
    Release(Releasable),
    Refuse(GatewayError),
}

/// Builds the response; `audit_seq` is `None` only when the refusal is the
/// audit failure itself.
pub fn respond(
    outcome: Outcome,
    request_id: &str,
    audit_seq: Option<u64>,
) -> Response<Full<Bytes>> {
    let mut response = match outcome {
        Outcome::Release(released) => {
            let mut response = Response::new(Full::new(released.body));
            *response.status_mut() = released.status;
            *response.headers_mut() = released.headers;
            response
        }
        Outcome::Refuse(error) => error_response(&error),
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert(REQUEST_ID_HEADER, value);
    }
    if let Some(seq) = audit_seq {
        headers.insert(AUDIT_SEQ_HEADER, HeaderValue::from(seq));
    }
    response
}

/// An OperationOutcome response for `error`.
pub fn error_response(error: &GatewayError) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(error.outcome().to_bytes())));
    *response.status_mut() = error.status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/fhir+json; charset=utf-8"),
    );
    if let Some(seconds) = error.retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

// === answers the gateway makes itself ===

/// The answer for a patient who has no data: an empty searchset for a
/// search, "not found" for anything else.
pub(crate) fn no_data(request: &FhirRequest, self_link: &str) -> Result<Releasable, GatewayError> {
    if request.interaction.kind() == InteractionKind::Search {
        empty_searchset_answer(self_link)
    } else {
        Err(GatewayError::not_found("resource not found"))
    }
}

/// An empty searchset, made by the gateway (the upstream is not asked).
pub(crate) fn empty_searchset_answer(self_link: &str) -> Result<Releasable, GatewayError> {
    gateway_made(StatusCode::OK, &empty_searchset(self_link))
}
