//! `[gateway.consent_feed]`: the settings of the consent feed
//! (`upstream/consent_feed.rs`), kept here so the config module imports no
//! part of the data path.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `[gateway.consent_feed]` in accord.toml.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsentFeedConfig {
    /// Pull Consent resources from the upstream server.
    pub enabled: bool,
    /// Seconds between polls for changed consents.
    #[serde(with = "super::seconds")]
    pub interval: Duration,
    /// Seconds between full re-reads (how deletions are noticed).
    #[serde(with = "super::seconds")]
    pub resync: Duration,
}

impl Default for ConsentFeedConfig {
    fn default() -> Self {
        ConsentFeedConfig {
            enabled: false,
            interval: Duration::from_secs(1),
            resync: Duration::from_secs(300),
        }
    }
}
