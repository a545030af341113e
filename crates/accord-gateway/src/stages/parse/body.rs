//! Reading a request's headers and body within the configured bounds:
//! header bytes, body bytes (declared and actual) and the body's deadline.

use bytes::Bytes;
use http::header;
use http::request::Parts;
use http_body_util::{BodyExt, Limited};

use crate::config::Limits;
use crate::error::GatewayError;
use crate::stages::BoxError;

/// Refuses more header lines than `limits.max_headers`, and headers (with
/// the request line) over `limits.max_header_bytes`.
pub(super) fn check_header_size(parts: &Parts, limits: &Limits) -> Result<(), GatewayError> {
    // `len` counts every value, so a name repeated 200 times is 200.
    if parts.headers.len() > limits.max_headers {
        return Err(GatewayError::too_many_headers(limits.max_headers));
    }
    let size: usize = parts
        .headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum::<usize>()
        + parts.uri.to_string().len();
    if size > limits.max_header_bytes {
        return Err(GatewayError::headers_too_large(limits.max_header_bytes));
    }
    Ok(())
}

/// Reads the whole body, refusing one over `limits.max_body_bytes` (as
/// declared or as sent) or still arriving after `limits.body_read_timeout`.
pub(super) async fn read_body<B>(
    parts: &Parts,
    body: B,
    limits: &Limits,
) -> Result<Bytes, GatewayError>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let limit = limits.max_body_bytes;
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(GatewayError::body_too_large(limit));
    }
    let deadline = limits.body_read_timeout;
    let Ok(collected) = tokio::time::timeout(deadline, Limited::new(body, limit).collect()).await
    else {
        return Err(GatewayError::body_too_slow(deadline));
    };
    match collected {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err(GatewayError::body_too_large(limit))
        }
        Err(e) => {
            tracing::debug!(error = %e, "request body unreadable");
            Err(GatewayError::bad_request(
                "the request body could not be read",
            ))
        }
    }
}
