//! The gateway's own upstream searches (referral lookups, medications):
//! built through the same typed request as a partner's, and anything but a
//! 200 searchset is an error.

use accord_fhir::{FhirRequest, Interaction, Method, ResourceType, SearchParams};
use bytes::Bytes;
use serde_json::Value;

use crate::error::GatewayError;
use crate::forward::{Upstream, UpstreamResponse, UpstreamWait};

/// Search parameters from name/value pairs.
pub fn form_query(pairs: &[(&str, &str)]) -> SearchParams {
    let mut params = SearchParams::default();
    for (name, value) in pairs {
        params.push(name, value);
    }
    params
}

/// One upstream search, rebuilt through the same typed request as a
/// partner's; anything but a 200 searchset is an error.
pub async fn search(
    upstream: &Upstream,
    ty: &str,
    params: SearchParams,
    request_id: &str,
    waited: &mut UpstreamWait,
) -> Result<Value, GatewayError> {
    let ty = ResourceType::parse(ty).map_err(|_| GatewayError::internal())?;
    let request = FhirRequest {
        method: Method::Get,
        interaction: Interaction::SearchType { ty },
        params,
    };
    let response = upstream
        .send(&request, Bytes::new(), None, request_id, waited)
        .await?;
    searchset(response)
}

/// A 200 searchset, or an error.
pub fn searchset(response: UpstreamResponse) -> Result<Value, GatewayError> {
    if !response.status.is_success() {
        tracing::warn!(status = %response.status, "gateway lookup refused upstream");
        return Err(GatewayError::upstream_invalid());
    }
    let bundle: Value =
        serde_json::from_slice(&response.body).map_err(|_| GatewayError::upstream_invalid())?;
    if bundle.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return Err(GatewayError::upstream_invalid());
    }
    Ok(bundle)
}
