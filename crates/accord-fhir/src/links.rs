//! Rewriting upstream URLs so that every link a partner sees points back at
//! the gateway, never around it.

/// Maps URLs under the upstream FHIR base (or any alias the upstream uses
/// for itself) to the gateway's FHIR base.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseRewrite {
    /// The configured upstream base first, then its aliases.
    upstream: Vec<String>,
    gateway: String,
}

// === impl BaseRewrite ===

impl BaseRewrite {
    /// Both bases are absolute URLs; trailing slashes are ignored.
    pub fn new(upstream_base: &str, gateway_base: &str) -> Self {
        BaseRewrite {
            upstream: vec![trim(upstream_base)],
            gateway: trim(gateway_base),
        }
    }

    /// Adds another base the upstream writes into its URLs (a server that
    /// builds links from its own configured name, e.g. `localhost` where the
    /// gateway reaches it as `127.0.0.1`).
    #[must_use]
    pub fn with_alias(mut self, alias: &str) -> Self {
        self.upstream.push(trim(alias));
        self
    }

    /// The gateway's FHIR base (no trailing slash).
    pub fn gateway_base(&self) -> &str {
        &self.gateway
    }

    /// The gateway form of `url`, or `None` when `url` is not under an
    /// upstream base (and so cannot be followed through the gateway).
    pub fn rewrite(&self, url: &str) -> Option<String> {
        self.upstream.iter().find_map(|base| {
            let rest = url.strip_prefix(base.as_str())?;
            // `http://up/fhirX/...` is not under `http://up/fhir`.
            (rest.is_empty() || rest.starts_with(['/', '?']))
                .then(|| format!("{}{rest}", self.gateway))
        })
    }

    /// The gateway form of a `Bundle.entry.fullUrl`. A `urn:` identifier is
    /// kept; an absolute URL under no known base is re-rooted at the
    /// gateway by its trailing `Type/id`, so no other server's address ever
    /// reaches a partner; anything else is dropped (`None`).
    pub fn rewrite_full_url(&self, url: &str) -> Option<String> {
        if url.starts_with("urn:") {
            return Some(url.to_owned());
        }
        if let Some(rewritten) = self.rewrite(url) {
            return Some(rewritten);
        }
        let mut segments = url.trim_end_matches('/').rsplit('/');
        let (id, ty) = (segments.next()?, segments.next()?);
        let is_type = crate::ResourceType::parse(ty).is_ok();
        (is_type && crate::ResourceId::parse(id).is_ok())
            .then(|| format!("{}/{ty}/{id}", self.gateway))
    }
}

fn trim(url: &str) -> String {
    url.trim_end_matches('/').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn aliases_are_upstream_bases_too() {
        let rw = rw().with_alias("http://localhost:9000/fhir");
        assert_eq!(
            rw.rewrite("http://localhost:9000/fhir/Patient?_offset=5")
                .as_deref(),
            Some("https://gw.example:8443/fhir/Patient?_offset=5")
        );
    }

    #[test]
    fn full_urls_never_carry_another_servers_address() {
        let rw = rw();
        assert_eq!(
            rw.rewrite_full_url("urn:uuid:1234").as_deref(),
            Some("urn:uuid:1234")
        );
        assert_eq!(
            rw.rewrite_full_url("http://127.0.0.1:9000/fhir/Observation/o1")
                .as_deref(),
            Some("https://gw.example:8443/fhir/Observation/o1")
        );
        assert_eq!(
            rw.rewrite_full_url("http://internal-name:8080/base/Observation/o1")
                .as_deref(),
            Some("https://gw.example:8443/fhir/Observation/o1")
        );
        assert_eq!(
            rw.rewrite_full_url("http://internal-name:8080/whatever"),
            None
        );
    }
}
