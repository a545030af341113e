//! Rewriting upstream URLs so that every link a partner sees points back at
//! the gateway, never around it.

use serde_json::Value;

/// Maps URLs under the upstream FHIR base to the gateway's FHIR base.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseRewrite {
    upstream: String,
    gateway: String,
}

// === impl BaseRewrite ===

impl BaseRewrite {
    /// Both bases are absolute URLs; trailing slashes are ignored.
    pub fn new(upstream_base: &str, gateway_base: &str) -> Self {
        BaseRewrite {
            upstream: upstream_base.trim_end_matches('/').to_owned(),
            gateway: gateway_base.trim_end_matches('/').to_owned(),
        }
    }

    /// The gateway's FHIR base (no trailing slash).
    pub fn gateway_base(&self) -> &str {
        &self.gateway
    }

    /// The gateway form of `url`, or `None` when `url` is not under the
    /// upstream base (and so cannot be followed through the gateway).
    pub fn rewrite(&self, url: &str) -> Option<String> {
        let rest = url.strip_prefix(&self.upstream)?;
        if rest.is_empty() || rest.starts_with(['/', '?']) {
            Some(format!("{}{rest}", self.gateway))
        } else {
            None // `http://up/fhirX/...` is not under `http://up/fhir`
        }
    }

    /// Rewrites `Bundle.link[].url` and `Bundle.entry[].fullUrl`.
    ///
    /// A link that does not point under the upstream base is dropped: a
    /// partner must never be handed a way around the gateway. A `fullUrl`
    /// outside the base (e.g. `urn:uuid:`) is an identifier, not a way in,
    /// and is kept.
    pub fn rewrite_bundle(&self, bundle: &mut Value) {
        if let Some(links) = bundle.get_mut("link").and_then(Value::as_array_mut) {
            links.retain_mut(|link| {
                let rewritten = link
                    .get("url")
                    .and_then(Value::as_str)
                    .and_then(|url| self.rewrite(url));
                match (rewritten, link.get_mut("url")) {
                    (Some(url), Some(slot)) => {
                        *slot = Value::String(url);
                        true
                    }
                    _ => false,
                }
            });
        }
        if let Some(entries) = bundle.get_mut("entry").and_then(Value::as_array_mut) {
            for entry in entries {
                let rewritten = entry
                    .get("fullUrl")
                    .and_then(Value::as_str)
                    .and_then(|url| self.rewrite(url));
                if let (Some(url), Some(slot)) = (rewritten, entry.get_mut("fullUrl")) {
                    *slot = Value::String(url);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rw() -> BaseRewrite {
        BaseRewrite::new(
            "http://127.0.0.1:9000/fhir/",
            "https://gw.example:8443/fhir",
        )
    }

    #[test]
    fn rewrites_urls_under_the_upstream_base_only() {
        assert_eq!(
            rw().rewrite("http://127.0.0.1:9000/fhir/Patient?_page=2")
                .as_deref(),
            Some("https://gw.example:8443/fhir/Patient?_page=2")
        );
        assert_eq!(rw().rewrite("http://127.0.0.1:9000/fhirx/Patient"), None);
        assert_eq!(rw().rewrite("http://evil.example/fhir/Patient"), None);
    }

    #[test]
    fn bundle_links_point_at_gateway_and_foreign_links_are_dropped() {
        let mut bundle = json!({
            "resourceType": "Bundle",
            "link": [
                {"relation": "self", "url": "http://127.0.0.1:9000/fhir/Observation?patient=p1"},
                {"relation": "next", "url": "http://other-host/fhir/Observation?page=2"}
            ],
            "entry": [
                {"fullUrl": "http://127.0.0.1:9000/fhir/Observation/o1"},
                {"fullUrl": "urn:uuid:1234"}
            ]
        });
        rw().rewrite_bundle(&mut bundle);
        assert_eq!(bundle["link"].as_array().unwrap().len(), 1);
        assert_eq!(
            bundle["link"][0]["url"],
            "https://gw.example:8443/fhir/Observation?patient=p1"
        );
        assert_eq!(
            bundle["entry"][0]["fullUrl"],
            "https://gw.example:8443/fhir/Observation/o1"
        );
        assert_eq!(bundle["entry"][1]["fullUrl"], "urn:uuid:1234");
    }
}
