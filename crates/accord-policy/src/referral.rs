//! Referral-cohort membership from FHIR resources the caller has read:
//! a `ServiceRequest` (requester → performer) or `Task` (requester → owner)
//! for the patient, from an Organization of one party to an Organization of
//! another, makes the patient a member.
//!
//! The gateway asks the upstream server the same question
//! (`accord-gateway/src/upstream/referral.rs`); the tools answer it over resources
//! they were given (the fixture population, or what `explain --upstream`
//! fetched). A party's Organizations are its `organization` in
//! partners.toml, else the Organizations whose identifier matches one of
//! the partner's `identifiers`. Pure: no I/O.

use std::collections::{BTreeMap, BTreeSet};

use accord_fhir::compartment::patient_id_of_reference;
use serde_json::Value;

use crate::PolicySet;
use crate::ids::PartnerId;

/// The referrals and Organizations found in a set of resources.
#[derive(Debug, Clone, Default)]
pub struct ReferralEvidence {
    /// `system|value` → `Organization/<id>`.
    organizations: BTreeMap<String, BTreeSet<String>>,
    /// Per patient (`Patient/<id>`): (requesters, receivers) of each
    /// referral, as `Organization/<id>`.
    referrals: BTreeMap<String, Vec<Referral>>,
}

/// One referral: the Organizations it is from and to.
#[derive(Debug, Clone)]
struct Referral {
    from: Vec<String>,
    to: Vec<String>,
    /// The partner that wrote it through the gateway (its
    /// `urn:accord:partner` tag), when one did.
    writer: Option<String>,
}

/// The tag system the gateway stamps on what a partner writes.
const PARTNER_TAG_SYSTEM: &str = "urn:accord:partner";

// === impl ReferralEvidence ===

impl ReferralEvidence {
    /// Collects Organizations, ServiceRequests and Tasks (others ignored).
    pub fn from_resources<'a>(resources: impl IntoIterator<Item = &'a Value>) -> Self {
        let mut evidence = ReferralEvidence::default();
        for resource in resources {
            evidence.add(resource);
        }
        evidence
    }

    /// Adds one resource (a Bundle's entries are not unpacked).
    pub fn add(&mut self, resource: &Value) {
        let (patient_field, to_field) = match resource.get("resourceType").and_then(Value::as_str) {
            Some("Organization") => {
                self.add_organization(resource);
                return;
            }
            Some("ServiceRequest") => ("subject", "performer"),
            Some("Task") => ("for", "owner"),
            _ => return,
        };
        let Some(patient) = resource
            .pointer(&format!("/{patient_field}/reference"))
            .and_then(Value::as_str)
            .and_then(patient_id_of_reference)
        else {
            return;
        };
        let from = organizations(resource.get("requester"));
        let to = organizations(resource.get(to_field));
        let writer = resource
            .pointer("/meta/tag")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|tag| tag.get("system").and_then(Value::as_str) == Some(PARTNER_TAG_SYSTEM))
            .and_then(|tag| tag.get("code").and_then(Value::as_str))
            .map(str::to_owned);
        self.referrals
            .entry(format!("Patient/{patient}"))
            .or_default()
            .push(Referral { from, to, writer });
    }

    fn add_organization(&mut self, resource: &Value) {
        let Some(id) = resource.get("id").and_then(Value::as_str) else {
            return;
        };
        for identifier in resource
            .get("identifier")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let system = identifier.get("system").and_then(Value::as_str);
            let value = identifier.get("value").and_then(Value::as_str);
            if let (Some(system), Some(value)) = (system, value) {
                self.organizations
                    .entry(format!("{system}|{value}"))
                    .or_default()
                    .insert(format!("Organization/{id}"));
            }
        }
    }

    /// Whether `patient` (`Patient/<id>`) has a referral between two of
    /// `parties`, made by one of `senders`, as it counts for `recipient` —
    /// the gateway's rule: a referral written through the gateway counts
    /// only when a sender other than the recipient wrote it (a partner's
    /// own writes never widen its own reach). A party without a known
    /// Organization cannot be on either end of one.
    pub fn member(
        &self,
        set: &PolicySet,
        parties: &BTreeSet<PartnerId>,
        senders: &BTreeSet<PartnerId>,
        recipient: &PartnerId,
        patient: &str,
    ) -> bool {
        let organizations: BTreeMap<&PartnerId, BTreeSet<String>> = parties
            .iter()
            .map(|party| (party, self.organizations_of(set, party)))
            .collect();
        if organizations.len() < 2 || organizations.values().any(BTreeSet::is_empty) {
            return false;
        }
        let parties_of = |refs: &[String]| -> BTreeSet<&PartnerId> {
            organizations
                .iter()
                .filter(|(_, orgs)| refs.iter().any(|r| orgs.contains(r)))
                .map(|(party, _)| *party)
                .collect()
        };
        self.referrals.get(patient).into_iter().flatten().any(|r| {
            if let Some(writer) = &r.writer
                && (writer == recipient.as_str() || !senders.iter().any(|s| s.as_str() == writer))
            {
                return false;
            }
            let from: BTreeSet<&PartnerId> = parties_of(&r.from)
                .into_iter()
                .filter(|p| senders.contains(*p))
                .collect();
            let receivers = parties_of(&r.to);
            from.iter().any(|s| receivers.iter().any(|r| r != s))
        })
    }

    /// The identifiers (`system|value`) of partners without an explicit
    /// `organization`, to look their Organizations up.
    pub fn identifiers_to_look_up(set: &PolicySet, parties: &BTreeSet<PartnerId>) -> Vec<String> {
        parties
            .iter()
            .filter_map(|p| set.partner(p))
            .filter(|p| p.organization.is_none())
            .flat_map(|p| p.identifiers.iter().cloned())
            .collect()
    }

    fn organizations_of(&self, set: &PolicySet, party: &PartnerId) -> BTreeSet<String> {
        let Some(partner) = set.partner(party) else {
            return BTreeSet::new();
        };
        if let Some(organization) = &partner.organization {
            return BTreeSet::from([organization.clone()]);
        }
        partner
            .identifiers
            .iter()
            .filter_map(|i| self.organizations.get(i))
            .flatten()
            .cloned()
            .collect()
    }
}

/// `Organization/<id>` for every Organization reference in `value` (one
/// Reference or an array of them), absolute or versioned ones included.
/// The gateway's referral lookups read references with this too.
pub fn organizations(value: Option<&Value>) -> Vec<String> {
    let list: Vec<&Value> = match value {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(one) => vec![one],
        None => Vec::new(),
    };
    list.iter()
        .filter_map(|r| r.get("reference").and_then(Value::as_str))
        .filter_map(organization_reference)
        .collect()
}

/// `Organization/<id>` of a relative or absolute reference.
fn organization_reference(reference: &str) -> Option<String> {
    let segments: Vec<&str> = reference.split('/').collect();
    let position = segments.iter().rposition(|s| *s == "Organization")?;
    let id = segments.get(position + 1)?;
    (!id.is_empty()).then(|| format!("Organization/{id}"))
}
