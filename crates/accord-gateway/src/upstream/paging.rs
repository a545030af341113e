//! Following an upstream searchset's `next` links, for the gateway's own
//! searches (consent feed, referral lookups). A link is followed only when
//! it lies under one of the upstream's names (its base URL or a configured
//! alias): a server that pointed elsewhere would otherwise make the
//! gateway fetch from any host it names.

use serde_json::Value;

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
