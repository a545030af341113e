//! The three partner organizations, their practitioners and shared cohorts.

use serde_json::{Value, json};

use super::codes::{FAMILY, GIVEN_FEMALE, GIVEN_MALE, NPI, ORGANIZATION_TYPE};
use super::dates::{Day, SPAN_DAYS};
use super::json::{Labels, concept, meta, npi, reference};
use super::rng::Rng;
use super::{ORG_BEHAVIORAL, ORG_HOSPITAL, ORG_PRIMARY};

/// Practitioners generated per organization.
pub(crate) const PRACTITIONERS_PER_ORG: u64 = 3;

/// Which partner an event happened at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum OrgKind {
    Behavioral,
    Primary,
    Hospital,
}

impl OrgKind {
    pub(crate) const ALL: [OrgKind; 3] = [OrgKind::Behavioral, OrgKind::Primary, OrgKind::Hospital];

    pub(crate) fn id(self) -> &'static str {
        match self {
            OrgKind::Behavioral => ORG_BEHAVIORAL,
            OrgKind::Primary => ORG_PRIMARY,
            OrgKind::Hospital => ORG_HOSPITAL,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            OrgKind::Behavioral => "Riverside Behavioral Health",
            OrgKind::Primary => "Maple Street Primary Care",
            OrgKind::Hospital => "St. Brigid Regional Hospital",
        }
    }

    /// Short tag used in practitioner ids.
    fn tag(self) -> &'static str {
        match self {
            OrgKind::Behavioral => "rbh",
            OrgKind::Primary => "maple",
            OrgKind::Hospital => "stb",
        }
    }

    fn npi_base(self) -> u64 {
        match self {
            OrgKind::Behavioral => 114_700_201,
            OrgKind::Primary => 125_800_302,
            OrgKind::Hospital => 136_900_403,
        }
    }

    /// The practitioner id for slot `n` (0-based, wraps).
    pub(crate) fn practitioner(self, n: u64) -> String {
        let slot = n % PRACTITIONERS_PER_ORG + 1;
        format!("prac-{}-{slot:02}", self.tag())
    }

    pub(crate) fn reference(self) -> Value {
        reference("Organization", self.id())
    }
}

/// The three Organization resources.
pub(crate) fn organizations() -> Vec<Value> {
    OrgKind::ALL
        .iter()
        .map(|org| {
            let (kind, kind_display, street) = match org {
                OrgKind::Behavioral => ("prov", "Healthcare Provider", "12 River Road"),
                OrgKind::Primary => ("prov", "Healthcare Provider", "400 Maple Street"),
                OrgKind::Hospital => ("prov", "Healthcare Provider", "1 Brigid Plaza"),
            };
            json!({
                "resourceType": "Organization",
                "id": org.id(),
                "meta": meta(Day::from_offset(0), Labels::None),
                "identifier": [{ "system": NPI, "value": npi(org.npi_base()) }],
                "active": true,
                "type": [concept(ORGANIZATION_TYPE, kind, kind_display)],
                "name": org.name(),
                "address": [{
                    "line": [street], "city": "Fairhaven", "state": "MA",
                    "postalCode": "02719", "country": "US",
                }],
            })
        })
        .collect()
}

/// Practitioners for every organization, named from the seed.
pub(crate) fn practitioners(seed: u64) -> Vec<Value> {
    // A stream no patient index can collide with.
    let mut rng = Rng::for_stream(seed, u64::MAX);
    let mut out = Vec::new();
    for (org_index, org) in OrgKind::ALL.iter().enumerate() {
        for n in 0..PRACTITIONERS_PER_ORG {
            let female = rng.chance(50);
            let given = rng.pick(if female { GIVEN_FEMALE } else { GIVEN_MALE });
            let family = rng.pick(FAMILY);
            let npi_base = 200_000_000 + (org_index as u64) * 1000 + n;
            out.push(json!({
                "resourceType": "Practitioner",
                "id": org.practitioner(n),
                "meta": meta(Day::from_offset(0), Labels::None),
                "identifier": [{ "system": NPI, "value": npi(npi_base) }],
                "active": true,
                "name": [{
                    "family": family.copied().unwrap_or("Doe"),
                    "given": [given.copied().unwrap_or("Alex")],
                    "prefix": ["Dr."],
                }],
                "gender": if female { "female" } else { "male" },
            }));
        }
    }
    out
}

/// A shared cohort of patients seen by both organizations.
#[derive(Debug)]
pub(crate) struct Cohort {
    pub(crate) id: &'static str,
    pub(crate) a: OrgKind,
    pub(crate) b: OrgKind,
}

pub(crate) const COHORTS: [Cohort; 3] = [
    Cohort {
        id: super::COHORT_BH_PRIMARY,
        a: OrgKind::Behavioral,
        b: OrgKind::Primary,
    },
    Cohort {
        id: super::COHORT_BH_HOSPITAL,
        a: OrgKind::Behavioral,
        b: OrgKind::Hospital,
    },
    Cohort {
        id: super::COHORT_PRIMARY_HOSPITAL,
        a: OrgKind::Primary,
        b: OrgKind::Hospital,
    },
];

/// A Group resource listing the given patients (already in id order).
pub(crate) fn cohort_group(cohort: &Cohort, members: &[String]) -> Value {
    let mut group = json!({
        "resourceType": "Group",
        "id": cohort.id,
        "meta": meta(Day::from_offset(SPAN_DAYS - 1), Labels::None),
        "active": true,
        "type": "person",
        "actual": true,
        "name": format!("Shared patients of {} and {}", cohort.a.name(), cohort.b.name()),
        "managingEntity": cohort.a.reference(),
        "quantity": members.len(),
        "member": members
            .iter()
            .map(|id| json!({ "entity": reference("Patient", id) }))
            .collect::<Vec<_>>(),
    });
    // FHIR JSON forbids empty arrays: a cohort nobody is in has no `member`.
    if members.is_empty()
        && let Some(object) = group.as_object_mut()
    {
        object.remove("member");
    }
    group
}
