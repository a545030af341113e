//! The consent feed: patients' Consent resources pulled from the upstream
//! FHIR server, where source systems record them, and layered over the
//! policy folder's consents (`[gateway.consent_feed]`).
//!
//! Every `interval` the feed asks the upstream for the Consents changed
//! since the newest `meta.lastUpdated` it has seen (`_lastUpdated=ge…`, the
//! upstream's own clock, so clock skew between the two machines cannot hide
//! a change); every `resync` it fetches them all, which is how a deleted
//! Consent leaves. A new or revoked consent is therefore in force within
//! one interval (1 s by default) plus one upstream round trip, for every
//! request that starts after that.
//!
//! Fail closed: the gateway does not start until the first pull succeeds;
//! a Consent that cannot be read stands in as "deny everything" for the
//! patient it names; a failed poll keeps the consents already known (and
//! the upstream being unreachable stops data requests anyway).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use accord_policy::{Consent, PulledConsents};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::watch;

pub use crate::config::ConsentFeedConfig;
use crate::error::GatewayError;
use crate::policy_store::PolicyStore;
use crate::upstream::client::Upstream;
use crate::upstream::paging::{entry_resources, next_link, relative_to, upstream_bases};

/// Consents per page asked of the upstream.
const PAGE_SIZE: usize = 500;
/// Pages followed in one poll; more means a misbehaving upstream.
const MAX_PAGES: usize = 10_000;

/// Why a pull failed.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("the upstream did not answer the Consent search: {0}")]
    Upstream(String),
    #[error("the upstream answered the Consent search with {0}")]
    Status(http::StatusCode),
    #[error("the upstream's Consent search is not a FHIR Bundle: {0}")]
    NotABundle(String),
    #[error("the upstream's Consent search has more than {MAX_PAGES} pages")]
    TooManyPages,
    #[error(
        "the upstream's next link `{0}` is not under its base (add the name to gateway.upstream_aliases)"
    )]
    ForeignLink(String),
}

/// The feed's state between polls.
#[derive(Debug)]
pub struct ConsentFeed {
    upstream: Upstream,
    store: Arc<PolicyStore>,
    config: ConsentFeedConfig,
    /// The upstream's base and the other names it gives itself in links
    /// (`gateway.upstream_aliases`): paging links are followed under these.
    bases: Vec<String>,
    /// By `Consent/<id>`.
    known: HashMap<String, Consent>,
    /// The newest `meta.lastUpdated` seen, as the upstream wrote it.
    high_water: Option<(OffsetDateTime, String)>,
    last_full: Option<Instant>,
}

impl ConsentFeed {
    pub fn new(
        upstream: Upstream,
        store: Arc<PolicyStore>,
        config: ConsentFeedConfig,
        aliases: &[String],
    ) -> Self {
        let bases = upstream_bases(upstream.base_url(), aliases);
        ConsentFeed {
            upstream,
            store,
            config,
            bases,
            known: HashMap::new(),
            high_water: None,
            last_full: None,
        }
    }

    /// How many consents are in force from the upstream.
    pub fn len(&self) -> usize {
        self.known.len()
    }

    pub fn is_empty(&self) -> bool {
        self.known.is_empty()
    }

    /// One poll: fetch what changed (or everything, when a resync is due)
    /// and put the result in force if anything differs.
    pub async fn poll(&mut self) -> Result<(), FeedError> {
        let full = match (self.last_full, &self.high_water) {
            (Some(at), Some(_)) => at.elapsed() >= self.config.resync,
            _ => true,
        };
        let started = Instant::now();
        let query = match (&self.high_water, full) {
            (Some((_, text)), false) => format!(
                "Consent?_lastUpdated=ge{}&_count={PAGE_SIZE}",
                text.replace('+', "%2B")
            ),
            _ => format!("Consent?_count={PAGE_SIZE}"),
        };
        let resources = self.fetch(&query).await?;
        let changed = self.absorb(resources, full);
        if full {
            self.last_full = Some(started);
        }
        if changed {
            let pulled = PulledConsents::new(self.known.values().cloned());
            tracing::info!(
                consents = pulled.len(),
                full,
                "consents from the upstream in force"
            );
            self.store.set_pulled(Arc::new(pulled));
        }
        Ok(())
    }

    /// Polls every `interval` until `shutdown` turns true.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.config.interval) => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
            if let Err(e) = self.poll().await {
                tracing::warn!(error = %e, "consent feed: poll failed; the consents already pulled stay in force");
            }
        }
    }

    /// Every Consent of a search, following `next` links under the base.
    async fn fetch(&self, query: &str) -> Result<Vec<Value>, FeedError> {
        let mut resources = Vec::new();
        let mut target = query.to_owned();
        for _ in 0..MAX_PAGES {
            let response = self
                .upstream
                .get(&target)
                .await
                .map_err(|e: GatewayError| FeedError::Upstream(e.to_string()))?;
            if !response.status.is_success() {
                return Err(FeedError::Status(response.status));
            }
            let bundle: Value = serde_json::from_slice(&response.body)
                .map_err(|e| FeedError::NotABundle(e.to_string()))?;
            if bundle.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
                return Err(FeedError::NotABundle("no resourceType Bundle".into()));
            }
            resources.extend(
                entry_resources(&bundle)
                    .filter(|r| r.get("resourceType").and_then(Value::as_str) == Some("Consent"))
                    .cloned(),
            );
            match next_link(&bundle) {
                Some(next) => {
                    target = relative_to(next, &self.bases)
                        .ok_or_else(|| FeedError::ForeignLink(next.to_owned()))?;
                }
                None => return Ok(resources),
            }
        }
        Err(FeedError::TooManyPages)
    }

    /// Compiles `resources` into the known set (replacing it when `full`).
    /// Returns whether the consents in force change.
    fn absorb(&mut self, resources: Vec<Value>, full: bool) -> bool {
        let policies = self.store.current();
        let actors = accord_policy::ConsentActors::new(policies.partners());
        let mut compiled = Vec::with_capacity(resources.len());
        for resource in resources {
            let updated = last_updated(&resource);
            if let Some((at, text)) = &updated
                && self.high_water.as_ref().is_none_or(|(hw, _)| at > hw)
            {
                self.high_water = Some((*at, text.clone()));
            }
            let id = resource.get("id").and_then(Value::as_str).unwrap_or("?");
            let origin = format!("upstream Consent/{id}");
            let text = serde_json::to_string_pretty(&resource).unwrap_or_default();
            let at = updated.map_or_else(OffsetDateTime::now_utc, |(at, _)| at);
            match PulledConsents::compile(&origin, &text, &actors, at) {
                Ok(consent) => compiled.push(consent),
                Err(rejected) => {
                    for error in &rejected.errors {
                        tracing::warn!(%error, "consent feed: unreadable Consent");
                    }
                    match rejected.stand_in {
                        Some(deny) => {
                            tracing::warn!(consent = %deny.id, patient = %deny.patient,
                                "consent feed: the patient's data is withheld until the Consent is corrected");
                            compiled.push(*deny);
                        }
                        None => tracing::error!(%origin,
                            "consent feed: a Consent without a readable id or patient is ignored"),
                    }
                }
            }
        }
        if full {
            let fresh: HashMap<String, Consent> =
                compiled.into_iter().map(|c| (c.id.clone(), c)).collect();
            let changed = fresh != self.known;
            self.known = fresh;
            return changed;
        }
        // An incremental poll re-reads at least the newest consent every
        // time (`ge`): change only what differs, without copying the set.
        let mut changed = false;
        for consent in compiled {
            if self.known.get(&consent.id) != Some(&consent) {
                self.known.insert(consent.id.clone(), consent);
                changed = true;
            }
        }
        changed
    }
}

fn last_updated(resource: &Value) -> Option<(OffsetDateTime, String)> {
    let text = resource.pointer("/meta/lastUpdated")?.as_str()?;
    let at = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    Some((at, text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn last_updated_keeps_the_upstreams_own_text() {
        let r = json!({"meta": {"lastUpdated": "2026-11-24T10:00:00.123+01:00"}});
        let (at, text) = last_updated(&r).unwrap();
        assert_eq!(text, "2026-11-24T10:00:00.123+01:00");
        assert_eq!(at.hour(), 10);
        assert!(last_updated(&json!({"meta": {"lastUpdated": "yesterday"}})).is_none());
    }
}
