//! Data-use agreements: who may do what, for which purposes, until when,
//! under which conditions (obligations), and what is never shared (forbids).

use std::collections::BTreeSet;

use accord_fhir::{InteractionKind, Purpose, ResourceType};
use serde::Deserialize;
use time::OffsetDateTime;

use crate::ids::{AgreementId, CategoryId, CohortId, GrantId, PartnerId};
use crate::source::Written;

mod file;

pub(crate) use file::{AgreementFile, ForbidEntry, GrantEntry, UnclassifiedEntry};

/// A data-use agreement, compiled from one file in `policies/agreements/`
/// (or one instance of a template).
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
    pub forbids: Vec<Forbid>,
    /// Types whose resources the sensitivity tables cannot classify (no
    /// code in a covered code system) are withheld under this agreement:
    /// [`UNCLASSIFIED_WITHHELD_BY_DEFAULT`] unless its `[unclassified]`
    /// table says otherwise.
    pub unclassified_withheld: BTreeSet<ResourceType>,
    /// The file it came from, for explanations.
    pub source: String,
    /// The template it was instantiated from, if any.
    pub template: Option<String>,
    /// Where its `id` is written.
    pub written: Written,
    /// Where its `expires` and `purposes` are written.
    pub expires_written: Written,
    pub purposes_written: Written,
}

/// The types whose unclassifiable resources an agreement withholds unless
/// it says otherwise: problems and medications are where Part 2 and HIV
/// data live, and a local code there could be either (fail closed).
pub const UNCLASSIFIED_WITHHELD_BY_DEFAULT: &[&str] = &[
    "Condition",
    "MedicationRequest",
    "MedicationStatement",
    "MedicationDispense",
    "MedicationAdministration",
];

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

/// One grant: recipients may perform these interactions on these types,
/// under these obligations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub id: GrantId,
    pub recipients: BTreeSet<PartnerId>,
    /// The party whose data this is (`None`: any party's, i.e. the shared
    /// record behind the gateway).
    pub source: Option<PartnerId>,
    pub resources: BTreeSet<ResourceType>,
    pub interactions: BTreeSet<InteractionKind>,
    /// Operations granted by name (`everything` for `$everything`); the
    /// `operation` interaction alone grants none.
    pub operations: BTreeSet<String>,
    pub cohort: Option<CohortId>,
    pub constraints: Vec<SearchConstraint>,
    pub redact: Vec<String>,
    pub sensitive: BTreeSet<CategoryId>,
    pub caps: Caps,
    pub population_search: bool,
    /// Purposes this grant is limited to, within the agreement's; empty:
    /// every purpose of the agreement.
    pub purposes: BTreeSet<Purpose>,
    /// Where its `id` and its `purposes` are written.
    pub written: Written,
    pub purposes_written: Written,
}

/// A search constraint such as `Observation?category=laboratory`: every
/// search on that type is narrowed by these parameters (like a SMART v2
/// finer-grained scope), and resources outside it are not released.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SearchConstraint {
    #[serde(serialize_with = "ser_type")]
    pub resource: ResourceType,
    pub params: Vec<(String, String)>,
    /// As written, for explanations.
    pub text: String,
}

/// Volume caps per recipient per day (UTC).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Caps {
    pub resources_per_day: Option<u64>,
    pub requests_per_day: Option<u64>,
}

/// An explicit denial; wins over every grant. With `sensitive` it withholds
/// those categories from what matching grants release; without, it denies
/// matching requests outright. Empty lists mean "all"; no `recipients` in
/// the file means every party of the agreement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forbid {
    pub id: GrantId,
    pub reason: String,
    pub recipients: BTreeSet<PartnerId>,
    pub resources: BTreeSet<ResourceType>,
    pub interactions: BTreeSet<InteractionKind>,
    pub purposes: BTreeSet<Purpose>,
    pub sensitive: BTreeSet<CategoryId>,
    /// Where its `id` is written.
    pub written: Written,
}

fn ser_type<S: serde::Serializer>(ty: &ResourceType, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(ty.as_str())
}

// === impl Agreement ===

impl Agreement {
    /// Whether the agreement is in force at `at`: active and within term.
    pub fn in_force(&self, at: OffsetDateTime) -> bool {
        self.status == AgreementStatus::Active && self.term.contains(at)
    }

    /// Whether its forbids apply: every status but draft (a denial never
    /// widens access, so a suspended or ended agreement's forbids stay).
    pub fn forbids_apply(&self) -> bool {
        self.status != AgreementStatus::Draft
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

    /// Whether the grant may be used for `purpose` (the agreement must
    /// permit it too).
    pub fn covers_purpose(&self, purpose: &Purpose) -> bool {
        self.purposes.is_empty() || self.purposes.contains(purpose)
    }

    /// Whether the grant allows this interaction (and operation name).
    pub fn covers_interaction(&self, kind: InteractionKind, operation: Option<&str>) -> bool {
        if kind == InteractionKind::Operation {
            return operation.is_some_and(|op| self.operations.contains(op));
        }
        self.interactions.contains(&kind)
    }

    /// The interactions as written in files (`read`, `$everything`).
    pub fn interaction_names(&self) -> Vec<String> {
        self.interactions
            .iter()
            .map(|k| k.as_str().to_owned())
            .chain(self.operations.iter().map(|o| format!("${o}")))
            .collect()
    }
}

// === impl Forbid ===

impl Forbid {
    /// [`Forbid::matches`] without the recipient test, for forbids found
    /// through the per-recipient index; cheapest tests first.
    pub(crate) fn matches_request(
        &self,
        ty: ResourceType,
        kind: InteractionKind,
        purpose: &Purpose,
    ) -> bool {
        (self.interactions.is_empty() || self.interactions.contains(&kind))
            && (self.resources.is_empty() || self.resources.contains(&ty))
            && (self.purposes.is_empty() || self.purposes.contains(purpose))
    }

    /// Whether this forbid speaks to the request (recipient, type,
    /// interaction, purpose); empty lists match everything.
    pub fn matches(
        &self,
        partner: &PartnerId,
        ty: ResourceType,
        kind: InteractionKind,
        purpose: &Purpose,
    ) -> bool {
        (self.recipients.is_empty() || self.recipients.contains(partner))
            && (self.resources.is_empty() || self.resources.contains(&ty))
            && (self.interactions.is_empty() || self.interactions.contains(&kind))
            && (self.purposes.is_empty() || self.purposes.contains(purpose))
    }
}
