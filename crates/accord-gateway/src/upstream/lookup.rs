//! The gateway's own upstream searches (referral lookups, medications):
//! built through the same typed request as a partner's, and anything but a
//! 200 searchset is an error.

use std::collections::{BTreeSet, HashMap};

use accord_fhir::{FhirRequest, Interaction, Method, ResourceType, SearchParams};
use bytes::Bytes;
use serde_json::Value;

use crate::error::GatewayError;
use crate::upstream::client::{Upstream, UpstreamResponse, UpstreamWait};
use crate::upstream::paging::entry_resources;

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

/// Resources asked for in one `_id` search.
const PER_SEARCH: usize = 50;
/// At most this many resources are read for one response; what names
/// others stays unresolved (and is withheld where that matters).
pub const MAX_PER_RESPONSE: usize = 500;

/// Reads the resources of type `ty` with these ids, keyed `Type/<id>`.
/// Ids the upstream does not return, or a failed search, are simply
/// missing: callers treat them as unknown (fail closed).
pub async fn read_by_ids(
    upstream: &Upstream,
    ty: &str,
    ids: &BTreeSet<String>,
    request_id: &str,
    waited: &mut UpstreamWait,
) -> HashMap<String, Value> {
    let mut found = HashMap::new();
    let ids: Vec<&String> = ids.iter().take(MAX_PER_RESPONSE).collect();
    for chunk in ids.chunks(PER_SEARCH) {
        let joined = chunk
            .iter()
            .map(|id| id.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let count = PER_SEARCH.to_string();
        let params = form_query(&[("_id", joined.as_str()), ("_count", count.as_str())]);
        match search(upstream, ty, params, request_id, waited).await {
            Ok(bundle) => {
                for resource in entry_resources(&bundle) {
                    if resource.get("resourceType").and_then(Value::as_str) == Some(ty)
                        && let Some(id) = resource.get("id").and_then(Value::as_str)
                        && chunk.iter().any(|asked| asked.as_str() == id)
                    {
                        found.insert(format!("{ty}/{id}"), resource.clone());
                    }
                }
            }
            Err(error) => {
                tracing::warn!(%request_id, %ty, error = %error.message,
                    "lookup failed; what names these resources stays unresolved");
            }
        }
    }
    found
}

/// `Type/<id>` for a reference to a `ty` (relative, absolute or
/// versioned); `None` for anything else.
pub fn reference_key(reference: &str, ty: &str) -> Option<String> {
    let parts: Vec<&str> = reference.split('/').collect();
    let at = parts.iter().rposition(|p| *p == ty)?;
    let id = parts.get(at + 1).filter(|id| is_id(id))?;
    Some(format!("{ty}/{id}"))
}

/// A FHIR logical id: 1–64 of `A-Z a-z 0-9 - .`.
fn is_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}
