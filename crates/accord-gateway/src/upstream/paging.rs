//! Following an upstream searchset's `next` links, for the gateway's own
//! searches (consent feed, referral lookups). A link is followed only when
//! it lies under one of the upstream's names (its base URL or a configured
//! alias): a server that pointed elsewhere would otherwise make the
//! gateway fetch from any host it names.

use bytes::Bytes;
use serde_json::{Value, json};

use crate::error::GatewayError;
use crate::upstream::client::{Upstream, UpstreamResponse, UpstreamWait};

/// Pages the gateway reads of one search, at most (see
/// `request/page.rs`); a result beyond them is refused, never cut short.
pub const MAX_PAGES: usize = 20;

/// The upstream's base URL and its aliases, without trailing slashes.
pub fn upstream_bases(base_url: &str, aliases: &[String]) -> Vec<String> {
    std::iter::once(base_url)
        .chain(aliases.iter().map(String::as_str))
        .map(|b| b.trim_end_matches('/').to_owned())
        .collect()
}

/// The `next` link of a searchset, if it has one.
pub fn next_link(bundle: &Value) -> Option<&str> {
    bundle
        .get("link")?
        .as_array()?
        .iter()
        .find(|l| l.get("relation").and_then(Value::as_str) == Some("next"))?
        .get("url")?
        .as_str()
}

/// `link` as a path and query under one of `bases`.
pub fn relative_to(link: &str, bases: &[String]) -> Option<String> {
    bases.iter().find_map(|base| {
        let rest = link.strip_prefix(base.as_str())?;
        (rest.is_empty() || rest.starts_with('/') || rest.starts_with('?'))
            .then(|| rest.trim_start_matches('/').to_owned())
    })
}

/// The resources of a searchset's entries.
pub fn entry_resources(bundle: &Value) -> impl Iterator<Item = &Value> {
    bundle
        .get("entry")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.get("resource"))
}

/// The whole result of a search whose `first` page the upstream just
/// answered: every further page read and its entries merged into one
/// searchset without links. A refusal, or anything but a Bundle, is
/// handed back as it came (the filter answers it). A next link outside
/// the upstream's names or past [`MAX_PAGES`] refuses the request: a
/// silently shortened result would count wrong.
pub async fn read_to_end(
    upstream: &Upstream,
    bases: &[String],
    first: UpstreamResponse,
    waited: &mut UpstreamWait,
) -> Result<UpstreamResponse, GatewayError> {
    if !first.status.is_success() {
        return Ok(first);
    }
    let Ok(mut page) = serde_json::from_slice::<Value>(&first.body) else {
        return Ok(first);
    };
    if page.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return Ok(first);
    }
    let kind = page
        .get("type")
        .cloned()
        .unwrap_or_else(|| "searchset".into());
    let mut entries = Vec::new();
    let mut pages = 1;
    loop {
        let next = next_link(&page).map(|l| relative_to(l, bases).ok_or(()));
        if let Some(Value::Array(more)) = page.get_mut("entry").map(Value::take) {
            entries.extend(more);
        }
        let target = match next {
            None => break,
            Some(Ok(target)) => target,
            Some(Err(_)) => {
                tracing::warn!("upstream next link outside its base");
                return Err(GatewayError::upstream_invalid());
            }
        };
        if pages >= MAX_PAGES {
            return Err(GatewayError::unprocessable(format!(
                "the search matches more than {MAX_PAGES} pages; narrow it (for example by patient or date)"
            )));
        }
        pages += 1;
        let started = std::time::Instant::now();
        let response = upstream.get(&target).await;
        waited.add(started.elapsed());
        page = searchset_page(response?)?;
    }
    let merged = json!({"resourceType": "Bundle", "type": kind, "entry": entries});
    let body = serde_json::to_vec(&merged).map_err(|_| GatewayError::internal())?;
    Ok(UpstreamResponse {
        status: first.status,
        headers: first.headers,
        body: Bytes::from(body),
    })
}

/// A further page of a result: a 200 Bundle, or the request fails.
fn searchset_page(response: UpstreamResponse) -> Result<Value, GatewayError> {
    let page: Option<Value> = response
        .status
        .is_success()
        .then(|| serde_json::from_slice(&response.body).ok())
        .flatten();
    match page {
        Some(page) if page.get("resourceType").and_then(Value::as_str) == Some("Bundle") => {
            Ok(page)
        }
        _ => {
            tracing::warn!(status = %response.status, "upstream page unreadable");
            Err(GatewayError::upstream_invalid())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_next_link_is_found_among_the_others() {
        let bundle = json!({"resourceType": "Bundle", "link": [
            {"relation": "self", "url": "http://u/fhir/Consent?_count=2"},
            {"relation": "next", "url": "http://u/fhir/Consent?_count=2&_offset=2"}
        ]});
        assert_eq!(
            next_link(&bundle),
            Some("http://u/fhir/Consent?_count=2&_offset=2")
        );
        assert_eq!(next_link(&json!({"resourceType": "Bundle"})), None);
    }

    #[test]
    fn paging_links_are_followed_only_under_the_upstreams_names() {
        let bases = upstream_bases(
            "http://127.0.0.1:8080/fhir/",
            &["http://fhir.internal/r4".to_owned()],
        );
        assert_eq!(
            relative_to("http://127.0.0.1:8080/fhir/Consent?_offset=500", &bases).as_deref(),
            Some("Consent?_offset=500")
        );
        assert_eq!(
            relative_to("http://fhir.internal/r4?_getpages=abc", &bases).as_deref(),
            Some("?_getpages=abc")
        );
        assert_eq!(
            relative_to("http://127.0.0.1:8080/fhirx/Consent", &bases),
            None
        );
        assert_eq!(
            relative_to("http://evil.example/fhir/Consent", &bases),
            None
        );
    }
}
