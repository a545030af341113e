//! Consents pulled from the upstream FHIR server, where the source
//! system records them (a patient signs an opt-out at the front desk and the
//! EHR writes a Consent resource). The gateway's consent feed fetches them
//! and layers them over the policy folder's consents; the same semantics
//! apply to both (see the parent module).

use std::collections::HashMap;

use serde_json::Value;
use time::OffsetDateTime;

use super::{Consent, ConsentActors, ConsentRule, Provision, compile_consent};
use crate::source::{PolicyError, SourceFile};
use crate::spans::SpannedDoc;

/// Pulled consents by patient, most recent first.
#[derive(Debug, Clone, Default)]
pub struct PulledConsents {
    by_patient: HashMap<String, Vec<Consent>>,
}

/// A pulled Consent that could not be compiled.
#[derive(Debug)]
pub struct RejectedConsent {
    /// What was wrong, located in the resource's JSON text.
    pub errors: Vec<PolicyError>,
    /// What stands in for it: when the resource names its patient, a
    /// consent that denies every disclosure of that patient's data (fail
    /// closed: an unreadable opt-out must not release data), else nothing.
    pub stand_in: Option<Box<Consent>>,
}

impl PulledConsents {
    pub fn new(consents: impl IntoIterator<Item = Consent>) -> Self {
        PulledConsents {
            by_patient: super::by_patient_newest_first(consents),
        }
    }

    /// Compiles one Consent resource as the upstream served it. `origin`
    /// names it in errors (e.g. `upstream Consent/123`); `at` dates the
    /// deny-all stand-in of a consent that cannot be read.
    pub fn compile(
        origin: &str,
        text: &str,
        actors: &ConsentActors,
        at: OffsetDateTime,
    ) -> Result<Consent, RejectedConsent> {
        let source = SourceFile::new(origin, text);
        let doc = match SpannedDoc::from_json(&source) {
            Ok(doc) => doc,
            Err(e) => {
                return Err(RejectedConsent {
                    errors: vec![e],
                    stand_in: None,
                });
            }
        };
        let mut errors = Vec::new();
        match compile_consent(&source, &doc, actors, &mut errors) {
            Some(mut consent) if errors.is_empty() => {
                consent.source = origin.to_owned();
                Ok(consent)
            }
            _ => Err(RejectedConsent {
                errors,
                stand_in: deny_all(origin, &doc.value, at).map(Box::new),
            }),
        }
    }

    pub fn len(&self) -> usize {
        self.by_patient.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.by_patient.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Consent> {
        self.by_patient.values().flatten()
    }

    /// `patient`'s pulled consents, most recent first.
    pub fn for_patient(&self, patient: &str) -> &[Consent] {
        self.by_patient.get(patient).map_or(&[], Vec::as_slice)
    }
}

/// A consent denying everything for the patient `resource` names, if its
/// `id` and `patient.reference` can be read.
fn deny_all(origin: &str, resource: &Value, at: OffsetDateTime) -> Option<Consent> {
    let id = resource.get("id")?.as_str()?;
    let patient = resource.pointer("/patient/reference")?.as_str()?;
    let patient = patient.strip_prefix("Patient/").unwrap_or(patient);
    accord_fhir::ResourceId::parse(patient).ok()?;
    Some(Consent {
        id: format!("Consent/{id}"),
        patient: format!("Patient/{patient}"),
        active: true,
        date_time: at,
        root: Provision {
            kind: ConsentRule::Deny,
            period: None,
            actors: Default::default(),
            purposes: Default::default(),
            labels: Default::default(),
            provisions: Vec::new(),
        },
        source: format!("{origin} (unreadable: deny all)"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ConsentIndex;
    use crate::consent::ConsentQuery;
    use crate::consent::actors::test_partner;
    use crate::ids::PartnerId;
    use accord_fhir::Purpose;
    use std::sync::Arc;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-24 12:00 UTC);

    fn known() -> ConsentActors {
        ConsentActors::new(&[
            test_partner("maple-primary", Some("Organization/org-maple-primary")),
            test_partner("st-brigid", Some("Organization/org-st-brigid")),
        ])
    }

    /// A Part 2 permit for `actor`, as the synthetic population's EHR
    /// writes it (the recipient by its Organization on the server).
    fn part2_permit(id: &str, patient: &str, actor: &str) -> String {
        format!(
            r#"{{"resourceType": "Consent", "id": "{id}", "status": "active",
  "scope": {{"coding": [{{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}}]}},
  "category": [{{"coding": [{{"system": "http://loinc.org", "code": "59284-0"}}]}}],
  "patient": {{"reference": "Patient/{patient}"}}, "dateTime": "2026-11-01T00:00:00Z",
  "provision": {{"type": "permit",
    "actor": [{{"role": {{"coding": [{{"code": "IRCP"}}]}}, "reference": {{"reference": "{actor}"}}}}],
    "purpose": [{{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT"}}],
    "securityLabel": [{{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "ETH"}}]}}}}"#
        )
    }

    fn part2_rule(index: &ConsentIndex, patient: &str, partner: &str) -> ConsentRule {
        let partner = PartnerId::parse(partner).unwrap();
        let purpose = Purpose::parse("TREAT").unwrap();
        let query = ConsentQuery {
            partner: &partner,
            purpose: &purpose,
            at: NOW,
        };
        let eth = std::collections::BTreeSet::from([crate::Coding::new(
            "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "ETH",
        )]);
        index.for_labels(patient, &eth, &query).rule
    }

    fn opt_out(id: &str, patient: &str, when: &str) -> String {
        format!(
            r#"{{"resourceType": "Consent", "id": "{id}", "status": "active",
  "scope": {{"coding": [{{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}}]}},
  "category": [{{"coding": [{{"system": "http://loinc.org", "code": "59284-0"}}]}}],
  "patient": {{"reference": "Patient/{patient}"}}, "dateTime": "{when}",
  "provision": {{"type": "deny"}}}}"#
        )
    }

    fn general(index: &ConsentIndex, patient: &str) -> ConsentRule {
        let partner = PartnerId::parse("maple-primary").unwrap();
        let purpose = Purpose::parse("TREAT").unwrap();
        let query = ConsentQuery {
            partner: &partner,
            purpose: &purpose,
            at: NOW,
        };
        index.general(patient, &query).rule
    }

    #[test]
    fn a_pulled_opt_out_layers_over_the_files() {
        let text = opt_out("c1", "pat-1", "2026-11-01T00:00:00Z");
        let consent = PulledConsents::compile("upstream Consent/c1", &text, &known(), NOW).unwrap();
        assert_eq!(consent.source, "upstream Consent/c1");
        let files = ConsentIndex::default();
        assert_eq!(general(&files, "Patient/pat-1"), ConsentRule::Permit);
        let layered = files.with_pulled(Arc::new(PulledConsents::new([consent])));
        assert_eq!(general(&layered, "Patient/pat-1"), ConsentRule::Deny);
        assert_eq!(general(&layered, "Patient/pat-2"), ConsentRule::Permit);
        assert_eq!(layered.len(), 1);
    }

    #[test]
    fn an_unreadable_pulled_consent_denies_its_patient() {
        let text = opt_out("c2", "pat-9", "2026-11-01T00:00:00Z").replace("\"active\"", "\"on\"");
        let rejected =
            PulledConsents::compile("upstream Consent/c2", &text, &known(), NOW).unwrap_err();
        assert!(!rejected.errors.is_empty());
        let message = rejected.errors[0].to_string();
        assert!(message.contains("upstream Consent/c2:"), "{message}");
        let stand_in = rejected.stand_in.expect("the patient is named");
        let index = ConsentIndex::default().with_pulled(Arc::new(PulledConsents::new([*stand_in])));
        assert_eq!(general(&index, "Patient/pat-9"), ConsentRule::Deny);
    }

    #[test]
    fn garbage_without_a_patient_stands_in_for_nothing() {
        let rejected =
            PulledConsents::compile("upstream Consent/x", "{not json", &known(), NOW).unwrap_err();
        assert!(rejected.stand_in.is_none());
        assert!(!rejected.errors.is_empty());
    }

    #[test]
    fn a_pulled_part2_permit_naming_the_upstream_organization_applies() {
        let text = part2_permit("p2", "pat-3", "Organization/org-maple-primary");
        let consent = PulledConsents::compile("upstream Consent/p2", &text, &known(), NOW).unwrap();
        let index = ConsentIndex::default().with_pulled(Arc::new(PulledConsents::new([consent])));
        assert_eq!(
            part2_rule(&index, "Patient/pat-3", "maple-primary"),
            ConsentRule::Permit
        );
        assert_eq!(
            part2_rule(&index, "Patient/pat-3", "st-brigid"),
            ConsentRule::Deny
        );
    }

    #[test]
    fn a_pulled_consent_naming_an_unknown_organization_is_rejected() {
        let text = part2_permit("p3", "pat-4", "Organization/org-somewhere-else");
        let rejected =
            PulledConsents::compile("upstream Consent/p3", &text, &known(), NOW).unwrap_err();
        let message = rejected.errors[0].to_string();
        assert!(
            message.contains("actor `Organization/org-somewhere-else` is not a partner"),
            "{message}"
        );
        let stand_in = rejected.stand_in.expect("the patient is named");
        let index = ConsentIndex::default().with_pulled(Arc::new(PulledConsents::new([*stand_in])));
        assert_eq!(general(&index, "Patient/pat-4"), ConsentRule::Deny);
    }
}
