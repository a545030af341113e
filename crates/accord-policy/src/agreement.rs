//! Data-use agreements: who may do what, for which purposes, until when.

use std::collections::BTreeSet;

use accord_fhir::{InteractionKind, Purpose, ResourceType};
use serde::Deserialize;
use time::OffsetDateTime;

use crate::ids::{AgreementId, GrantId, PartnerId};

/// A data-use agreement, compiled from one file in `policies/agreements/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agreement {
    pub id: AgreementId,
    pub version: u32,
    pub title: String,
    /// Reference to the signed document (a contract number, a URL).
    pub document: Option<String>,
    pub status: AgreementStatus,
    pub parties: BTreeSet<PartnerId>,
    pub term: Term,
    pub purposes: BTreeSet<Purpose>,
    pub grants: Vec<Grant>,
    /// The file it came from, for explanations.
    pub source: String,
}

/// The lifecycle state of an agreement. Only `active` grants anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AgreementStatus {
    Draft,
    Active,
    Suspended,
    Terminated,
}

/// When an agreement is in force: from `effective` (inclusive) until
/// `expires` (exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Term {
    pub effective: OffsetDateTime,
    pub expires: OffsetDateTime,
}

/// One grant: recipients may perform these interactions on these types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub id: GrantId,
    pub recipients: BTreeSet<PartnerId>,
    pub resources: BTreeSet<ResourceType>,
    pub interactions: BTreeSet<InteractionKind>,
}

// === TOML shape ===

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AgreementFile {
    pub id: AgreementId,
    pub version: toml::Spanned<i64>,
    pub title: String,
    #[serde(default)]
    pub document: Option<String>,
    pub status: AgreementStatus,
    pub parties: toml::Spanned<Vec<toml::Spanned<PartnerId>>>,
    pub effective: toml::Spanned<toml::value::Datetime>,
    pub expires: toml::Spanned<toml::value::Datetime>,
    pub purposes: toml::Spanned<Vec<Purpose>>,
    #[serde(default)]
    pub grant: Vec<GrantEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GrantEntry {
    pub id: toml::Spanned<GrantId>,
    pub recipients: toml::Spanned<Vec<toml::Spanned<PartnerId>>>,
    pub resources: toml::Spanned<Vec<ResourceType>>,
    pub interactions: toml::Spanned<Vec<toml::Spanned<String>>>,
}

// === impl Agreement ===

impl Agreement {
    /// Whether the agreement is in force at `at`: active and within term.
    pub fn in_force(&self, at: OffsetDateTime) -> bool {
        self.status == AgreementStatus::Active && self.term.contains(at)
    }
}

// === impl AgreementStatus ===

impl AgreementStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            AgreementStatus::Draft => "draft",
            AgreementStatus::Active => "active",
            AgreementStatus::Suspended => "suspended",
            AgreementStatus::Terminated => "terminated",
        }
    }
}

// === impl Term ===

impl Term {
    pub fn contains(&self, at: OffsetDateTime) -> bool {
        self.effective <= at && at < self.expires
    }
}

// === impl Grant ===

impl Grant {
    pub fn covers_recipient(&self, partner: &PartnerId) -> bool {
        self.recipients.contains(partner)
    }
}
