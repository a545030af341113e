//! Partners: the organizations whose systems connect to the gateway.

use serde::Deserialize;

use crate::ids::PartnerId;

/// A partner organization, as declared in `policies/partners.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partner {
    pub id: PartnerId,
    pub name: String,
    /// Organization identifiers as FHIR tokens (`system|value`), e.g. an NPI.
    pub identifiers: Vec<String>,
    /// The partner's Organization on the upstream server
    /// (`Organization/<id>`), when named explicitly; otherwise the gateway
    /// finds it by [`Partner::identifiers`]. Used to resolve referral cohorts.
    pub organization: Option<String>,
    /// URI prefixes of the partner's systems as they appear in
    /// `meta.source` on a shared FHIR server (whose records are whose).
    pub source_systems: Vec<String>,
    /// Who to call about this partnership (free text).
    pub contact: Option<String>,
    /// The organization's postal address, one line (HIPAA §164.528 asks
    /// for the recipient's address in an accounting of disclosures).
    pub address: Option<String>,
    pub status: PartnerStatus,
    /// Lowercase hex SHA-256 of the DER SubjectPublicKeyInfo of each client
    /// certificate key this partner may present.
    pub spki_sha256: Vec<SpkiPin>,
}

/// Whether a partner may connect at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PartnerStatus {
    Active,
    Suspended,
    Revoked,
}

/// A SHA-256 pin of a certificate's SubjectPublicKeyInfo: 64 lowercase hex
/// digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpkiPin(String);

/// The text is not 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a SHA-256 SPKI pin (64 hex digits)")]
pub struct InvalidPin(pub String);

/// The TOML shape of partners.toml.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PartnersFile {
    #[serde(default)]
    pub partner: Vec<toml::Spanned<PartnerEntry>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PartnerEntry {
    pub id: toml::Spanned<PartnerId>,
    pub name: String,
    #[serde(default)]
    pub identifiers: Vec<String>,
    #[serde(default)]
    pub organization: Option<String>,
    #[serde(default)]
    pub source_systems: Vec<String>,
    #[serde(default)]
    pub contact: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
    pub status: PartnerStatus,
    #[serde(default)]
    pub spki_sha256: Vec<toml::Spanned<SpkiPin>>,
}

// === impl PartnerStatus ===

impl PartnerStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            PartnerStatus::Active => "active",
            PartnerStatus::Suspended => "suspended",
            PartnerStatus::Revoked => "revoked",
        }
    }
}

// === impl SpkiPin ===

impl SpkiPin {
    /// Accepts hex in either case, with optional `:` separators (as
    /// `openssl` prints fingerprints); stores lowercase without separators.
    pub fn parse(text: &str) -> Result<Self, InvalidPin> {
        let hex: String = text
            .chars()
            .filter(|c| *c != ':')
            .map(|c| c.to_ascii_lowercase())
            .collect();
        if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(SpkiPin(hex))
        } else {
            Err(InvalidPin(text.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for SpkiPin {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        SpkiPin::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_normalised_hex() {
        let upper = "AB".repeat(32);
        assert_eq!(SpkiPin::parse(&upper).unwrap().as_str(), "ab".repeat(32));
        let colons = vec!["ab"; 32].join(":");
        assert_eq!(SpkiPin::parse(&colons).unwrap().as_str(), "ab".repeat(32));
        assert!(SpkiPin::parse("abc").is_err());
        assert!(SpkiPin::parse(&"zz".repeat(32)).is_err());
    }
}
