//! The TOML shape of an agreement file (after schema validation).

use serde::Deserialize;

use crate::ids::{AgreementId, CategoryId, CohortId, GrantId, PartnerId};

type Spanned<T> = toml::Spanned<T>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AgreementFile {
    pub id: Spanned<AgreementId>,
    pub version: Spanned<i64>,
    pub title: String,
    #[serde(default)]
    pub document: Option<String>,
    /// Checked by the compiler (not serde), so a misspelled status is one
    /// error among the file's others, with a suggestion.
    pub status: Spanned<String>,
    pub parties: Spanned<Vec<Spanned<PartnerId>>>,
    pub effective: Spanned<toml::value::Datetime>,
    pub expires: Spanned<toml::value::Datetime>,
    pub purposes: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    pub grant: Vec<GrantEntry>,
    #[serde(default)]
    pub forbid: Vec<ForbidEntry>,
    #[serde(default)]
    pub unclassified: Option<UnclassifiedEntry>,
    /// Cohorts declared here are compiled with the other cohorts.
    #[serde(default)]
    #[allow(dead_code)]
    pub cohort: Vec<toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GrantEntry {
    pub id: Spanned<GrantId>,
    pub recipients: Spanned<Vec<Spanned<PartnerId>>>,
    #[serde(default)]
    pub source: Option<Spanned<PartnerId>>,
    pub resources: Spanned<Vec<Spanned<String>>>,
    pub interactions: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    pub cohort: Option<Spanned<CohortId>>,
    #[serde(default)]
    pub constraints: Vec<Spanned<String>>,
    #[serde(default)]
    pub redact: Vec<Spanned<String>>,
    #[serde(default)]
    pub sensitive: Vec<Spanned<CategoryId>>,
    #[serde(default)]
    pub population_search: bool,
    #[serde(default)]
    pub purposes: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    pub caps: Option<CapsEntry>,
    #[serde(default)]
    #[allow(dead_code)]
    pub note: Option<String>,
}

/// What happens to resources the sensitivity tables cannot classify.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UnclassifiedEntry {
    #[serde(default)]
    pub withhold: Vec<Spanned<String>>,
    #[serde(default)]
    pub release: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CapsEntry {
    #[serde(default)]
    pub resources_per_day: Option<u64>,
    #[serde(default)]
    pub requests_per_day: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ForbidEntry {
    pub id: Spanned<GrantId>,
    pub reason: String,
    #[serde(default)]
    pub recipients: Vec<Spanned<PartnerId>>,
    #[serde(default)]
    pub resources: Vec<Spanned<String>>,
    #[serde(default)]
    pub interactions: Vec<Spanned<String>>,
    #[serde(default)]
    pub purposes: Vec<Spanned<String>>,
    #[serde(default)]
    pub sensitive: Vec<Spanned<CategoryId>>,
}
