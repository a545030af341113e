//! Requests the HTTP library refuses before the gateway sees them.
//!
//! hyper parses the request head itself; bytes it cannot parse (a NUL or
//! 0xFF in the request line, a header line that is no header, more header
//! lines than its table holds, a head past the read buffer) are answered by
//! hyper with an empty 400 or 431 and the connection is closed — the
//! request never reaches `Gateway::handle`. Every refusal must still be
//! audited (issue 17), so the connection's error is turned into a refusal
//! record here: who (the client certificate, its partner), from where, what
//! hyper said and answered. The record follows hyper's answer instead of
//! preceding it; the answer carries no data, so nothing was released
//! without a record. What cannot be audited at all is listed in
//! docs/operations.md ("Requests that cannot be audited").

use http::StatusCode;
use time::OffsetDateTime;

use crate::bounded::{MESSAGE, bounded};
use crate::error::ErrorSource;
use crate::request::{Connection, RequestContext};
use crate::stages::Gateway;
use crate::stages::record as audit;

/// The status hyper answered `error` with, if it answered one.
pub fn answered_status(error: &hyper::Error) -> Option<StatusCode> {
    if !error.is_parse() || error.is_parse_version_h2() {
        return None;
    }
    Some(if error.is_parse_too_large() {
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    } else {
        StatusCode::BAD_REQUEST
    })
}

/// Writes the refusal record for a request hyper refused with `status`.
pub async fn audit_refusal(
    gateway: &Gateway,
    connection: &Connection,
    error: &hyper::Error,
    status: StatusCode,
) {
    // The request line could not be read: method and target are unknown.
    let mut ctx = RequestContext::new(
        gateway.request_id(),
        connection,
        String::new(),
        String::new(),
    );
    if let Some(pin) = &connection.client_pin {
        let policies = gateway.policies.current();
        if let Some(partner) = policies.partner_by_pin(pin) {
            ctx.partner = Some(partner.id.clone());
            ctx.partner_name = Some(partner.name.clone());
        }
    }
    ctx.error_source = Some(ErrorSource::Partner);
    ctx.refusal = Some(format!(
        "malformed HTTP request refused by the HTTP parser before the gateway read it ({}); answered {} with an empty body",
        bounded(&error.to_string(), MESSAGE),
        status.as_u16()
    ));
    let record = audit::record(&ctx, status, OffsetDateTime::now_utc());
    if let Err(e) = audit::append(&gateway.audit, record).await {
        tracing::error!(peer = %connection.peer, error = %e.message, "could not audit a malformed request");
    }
    gateway.metrics.observe(&ctx, status);
}
