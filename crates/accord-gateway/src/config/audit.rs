//! The `[audit]` part of accord.toml: where the log is, where its signing
//! key is (never inside the log's directory), and which witnesses cosign
//! its checkpoints.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Where the audit log is written and who vouches for it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    pub dir: PathBuf,
    /// The checkpoint signing key (made, mode 0600, on first start). It
    /// must lie outside `dir`: an insider who can read the log must not be
    /// able to re-sign a rewritten one.
    pub signing_key: PathBuf,
    /// Witnesses each new checkpoint is sent to (C2SP tlog-witness).
    #[serde(rename = "witness")]
    pub witnesses: Vec<WitnessConfig>,
}

/// One `[[audit.witness]]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessConfig {
    /// The witness's submission prefix, e.g. `https://witness.example/`;
    /// `add-checkpoint` is posted below it.
    pub url: String,
    /// The witness's public cosignature key (`name+id+base64`), as its
    /// operator publishes it.
    pub key: String,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            dir: PathBuf::from("audit"),
            signing_key: PathBuf::from("signing.key"),
            witnesses: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::AccordConfig;

    #[test]
    fn the_signing_key_and_witnesses_are_configured_under_audit() {
        let config = AccordConfig::parse(
            "[audit]\ndir = \"/var/lib/accord/audit\"\nsigning_key = \"/etc/accord/keys/audit.key\"\n\
             [[audit.witness]]\nurl = \"http://127.0.0.1:7380/\"\nkey = \"w1+01234567+BA==\"\n",
        )
        .unwrap();
        assert_eq!(
            config.audit.signing_key,
            std::path::PathBuf::from("/etc/accord/keys/audit.key")
        );
        assert_eq!(config.audit.witnesses.len(), 1);
        assert_eq!(config.audit.witnesses[0].url, "http://127.0.0.1:7380/");
        let err = AccordConfig::parse("[[audit.witness]]\nurl = \"x\"\nkye = \"y\"\n").unwrap_err();
        assert!(err.1.contains("unknown field `kye`"), "{err:?}");
    }
}
