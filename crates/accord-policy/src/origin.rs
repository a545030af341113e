//! Whose record a resource is: the member organization it came from. A
//! grant's `source` releases only that organization's records.
//!
//! Where each member runs its own FHIR server, the server says it: every
//! resource read from Riverside's server is Riverside's (the gateway knows
//! which upstream answered). On a shared server the resource must say it,
//! in this order (the first rule that names exactly one partner decides):
//!
//! 1. `meta.source`, when it starts with one of a partner's
//!    `source_systems` (partners.toml) or is `urn:accord:partner:<id>`
//!    (what the gateway writes into what a partner creates through it);
//! 2. the organization elements of its type ([`ORGANIZATION_ELEMENTS`]),
//!    when they reference a partner's `organization`;
//! 3. the Encounter it was recorded in (`encounter`, `context`): that
//!    Encounter's `serviceProvider` (the gateway reads the Encounter).
//!
//! Anything else — no rule names a partner, or one rule names two — leaves
//! the source undetermined, and a grant that names a source withholds it
//! (fail closed).

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::Value;

use crate::PolicySet;
use crate::ids::PartnerId;

/// The `meta.source` prefix the gateway writes into what a partner
/// creates or updates through it (`urn:accord:partner:<id>`).
pub const WRITTEN_THROUGH_GATEWAY: &str = "urn:accord:partner:";

/// What is known about a resource's source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(tag = "origin", content = "partner", rename_all = "snake_case")]
pub enum Origin {
    /// Not looked at (no grant asked for it).
    #[default]
    Unresolved,
    /// This partner's record.
    Of(PartnerId),
    /// No rule names exactly one partner.
    Undetermined,
}

/// Per resource type, the elements that name the organization responsible
/// for it (direct `Organization/…` references only; a Practitioner is not
/// an organization). Documented for counsel in policies/README.md.
pub const ORGANIZATION_ELEMENTS: &[(&str, &[&str])] = &[
    ("AllergyIntolerance", &["recorder", "asserter"]),
    ("CarePlan", &["author", "contributor"]),
    ("CareTeam", &["managingOrganization"]),
    ("Claim", &["provider", "insurer"]),
    ("Communication", &["sender"]),
    ("Condition", &["recorder", "asserter"]),
    ("Consent", &["organization"]),
    ("Coverage", &["payor"]),
    ("DiagnosticReport", &["performer"]),
    ("DocumentReference", &["custodian", "author"]),
    ("Encounter", &["serviceProvider"]),
    ("ExplanationOfBenefit", &["provider", "insurer"]),
    ("Immunization", &["performer"]),
    ("MedicationAdministration", &["performer"]),
    ("MedicationDispense", &["performer"]),
    ("MedicationRequest", &["requester", "performer"]),
    ("MedicationStatement", &["informationSource"]),
    ("Observation", &["performer"]),
    ("Patient", &["managingOrganization"]),
    ("Procedure", &["performer"]),
    ("ServiceRequest", &["requester"]),
    ("Task", &["requester"]),
];

// === impl PolicySet ===

impl PolicySet {
    /// The partner whose record `resource` is, by rules 1 and 2 above;
    /// `encounter` is the Encounter it references, when the gateway read
    /// it (rule 3).
    pub fn origin_of(&self, resource: &Value, encounter: Option<&Value>) -> Origin {
        if let Some(source) = resource.pointer("/meta/source").and_then(Value::as_str) {
            let named: BTreeSet<&PartnerId> = self
                .partners()
                .filter(|p| {
                    p.source_systems
                        .iter()
                        .any(|s| source.starts_with(s.as_str()))
                        || source
                            .strip_prefix(WRITTEN_THROUGH_GATEWAY)
                            .is_some_and(|id| id == p.id.as_str())
                })
                .map(|p| &p.id)
                .collect();
            if let Some(decided) = one(named) {
                return decided;
            }
        }
        let named = self.organizations_named(resource);
        if let Some(decided) = one(named) {
            return decided;
        }
        if let Some(encounter) = encounter
            && let Some(decided) = one(self.organizations_named(encounter))
        {
            return decided;
        }
        Origin::Undetermined
    }

    /// The partners whose `organization` the resource's organization
    /// elements reference.
    fn organizations_named(&self, resource: &Value) -> BTreeSet<&PartnerId> {
        let ty = resource.get("resourceType").and_then(Value::as_str);
        let Some((_, elements)) = ORGANIZATION_ELEMENTS.iter().find(|(t, _)| Some(*t) == ty) else {
            return BTreeSet::new();
        };
        let mut references = Vec::new();
        for element in *elements {
            collect_references(resource.get(*element), &mut references);
        }
        self.partners()
            .filter(|p| {
                p.organization
                    .as_deref()
                    .is_some_and(|org| references.iter().any(|r| refers_to(r, org)))
            })
            .map(|p| &p.id)
            .collect()
    }
}

/// The Encounter a resource was recorded in (`Encounter/<id>`), if any.
pub fn encounter_of(resource: &Value) -> Option<&str> {
    ["encounter", "context"]
        .iter()
        .filter_map(|key| resource.get(*key)?.get("reference")?.as_str())
        .find(|r| r.starts_with("Encounter/") || r.contains("/Encounter/"))
}

fn one(named: BTreeSet<&PartnerId>) -> Option<Origin> {
    match named.len() {
        0 => None,
        1 => named.into_iter().next().map(|p| Origin::Of(p.clone())),
        _ => Some(Origin::Undetermined),
    }
}

/// References in an element: `{reference}`, a list of them, or the
/// `actor` of a performer (`Immunization.performer.actor`).
fn collect_references<'a>(element: Option<&'a Value>, out: &mut Vec<&'a str>) {
    match element {
        Some(Value::Array(items)) => items.iter().for_each(|i| collect_references(Some(i), out)),
        Some(Value::Object(fields)) => {
            if let Some(Value::String(r)) = fields.get("reference") {
                out.push(r);
            }
            collect_references(fields.get("actor"), out);
        }
        _ => {}
    }
}

/// Whether `reference` (relative or absolute) names `organization`
/// (`Organization/<id>`).
fn refers_to(reference: &str, organization: &str) -> bool {
    reference == organization
        || reference
            .strip_suffix(organization)
            .is_some_and(|base| base.ends_with('/'))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn shipped() -> PolicySet {
        PolicySet::load_dir(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies"),
        )
        .unwrap()
    }

    #[test]
    fn organization_elements_and_the_encounter_say_whose_record_it_is() {
        let set = shipped();
        let riverside = Origin::Of(PartnerId::parse("riverside-bh").unwrap());
        let encounter = json!({"resourceType": "Encounter",
            "serviceProvider": {"reference": "Organization/org-riverside-bh"}});
        assert_eq!(set.origin_of(&encounter, None), riverside);
        let observation = json!({"resourceType": "Observation",
            "performer": [{"reference": "Practitioner/p1"}],
            "encounter": {"reference": "Encounter/e1"}});
        assert_eq!(set.origin_of(&observation, None), Origin::Undetermined);
        assert_eq!(set.origin_of(&observation, Some(&encounter)), riverside);
        let both = json!({"resourceType": "Condition",
            "recorder": {"reference": "Organization/org-riverside-bh"},
            "asserter": {"reference": "https://x.example/fhir/Organization/org-maple-primary"}});
        assert_eq!(
            set.origin_of(&both, None),
            Origin::Undetermined,
            "two members: ambiguous"
        );
        assert_eq!(encounter_of(&observation), Some("Encounter/e1"));
    }
}
