use std::path::Path;

use serde_json::json;
use time::macros::datetime;

use super::*;
use crate::decide::AccessRequest;
use crate::explain::parse_request_line;

fn shipped() -> PolicySet {
    PolicySet::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies")).unwrap()
}

fn permit(set: &PolicySet, partner: &str, purpose: &str, line: &str) -> Obligations {
    let partner = PartnerId::parse(partner).unwrap();
    let purpose = Purpose::parse(purpose).unwrap();
    let request = parse_request_line(line).unwrap();
    let at = datetime!(2026-06-15 12:00 UTC);
    set.decide(&AccessRequest::from_fhir(&partner, &purpose, &request, at))
        .obligations()
        .cloned()
        .unwrap()
}

fn condition(patient: &str, icd: &str) -> ResourceFacts {
    let mut facts = ResourceFacts::of(&json!({
        "resourceType": "Condition",
        "subject": {"reference": patient},
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": icd}]}
    }));
    facts.in_referral_cohort = Some(true);
    // The shipped clinical-record grant shares Riverside's records.
    by("riverside-bh", facts)
}

/// The facts of a record of `source`.
fn by(source: &str, mut facts: ResourceFacts) -> ResourceFacts {
    facts.origin = Origin::Of(PartnerId::parse(source).unwrap());
    facts
}

#[test]
fn part2_data_needs_the_patients_consent_for_this_recipient() {
    let set = shipped();
    let at = datetime!(2026-06-15 12:00 UTC);
    let consents = set.consents().clone();
    let maple = permit(
        &set,
        "maple-primary",
        "TREAT",
        "GET /Condition?patient=Patient/pat-0003",
    );
    let brigid = permit(
        &set,
        "st-brigid",
        "TREAT",
        "GET /Condition?patient=Patient/pat-0003",
    );
    let sud = condition("Patient/pat-0003", "F10.20");
    assert_eq!(
        set.check_resource(&maple, &sud, &consents, at),
        ResourceVerdict::Release
    );
    assert_eq!(
        set.check_resource(&brigid, &sud, &consents, at),
        ResourceVerdict::Withhold(WithholdReason::SensitiveWithoutConsent {
            category: CategoryId::parse("part2").unwrap()
        })
    );
    // No consent at all: withheld; ordinary data: released.
    let other = condition("Patient/pat-0001", "F10.20");
    assert!(matches!(
        set.check_resource(&maple, &other, &consents, at),
        ResourceVerdict::Withhold(WithholdReason::SensitiveWithoutConsent { .. })
    ));
    let flu = condition("Patient/pat-0001", "J10.1");
    assert_eq!(
        set.check_resource(&maple, &flu, &consents, at),
        ResourceVerdict::Release
    );
    // The opted-out patient's resources never leave.
    let opted_out = condition("Patient/pat-0002", "J10.1");
    assert!(matches!(
        set.check_resource(&maple, &opted_out, &consents, at),
        ResourceVerdict::Withhold(WithholdReason::PatientOptedOut { .. })
    ));
    // A referral cohort the gateway did not resolve is withheld.
    let mut unresolved = flu;
    unresolved.in_referral_cohort = None;
    assert_eq!(
        set.check_resource(&maple, &unresolved, &consents, at),
        ResourceVerdict::Withhold(WithholdReason::CohortUnresolved)
    );
}

#[test]
fn redactions_forbidden_categories_and_cohorts_apply_per_resource() {
    let set = shipped();
    let at = datetime!(2026-06-15 12:00 UTC);
    let consents = set.consents().clone();
    let plan = permit(
        &set,
        "lakeshore-health-plan",
        "HOPERAT",
        "GET /Patient/pat-0001",
    );
    assert_eq!(
        plan.constraints_for(ResourceType::parse("Observation").unwrap())
            .count(),
        1
    );
    let patient = by(
        "maple-primary",
        ResourceFacts::of(&json!({"resourceType": "Patient", "id": "pat-0001"})),
    );
    assert_eq!(
        set.check_resource(&plan, &patient, &consents, at),
        ResourceVerdict::Redact(vec![
            "Patient.address".into(),
            "Patient.telecom".into(),
            "Patient.photo".into(),
            "Patient.contact".into()
        ])
    );
    let outside = by(
        "maple-primary",
        ResourceFacts::of(&json!({"resourceType": "Patient", "id": "pat-0002"})),
    );
    assert_eq!(
        set.check_resource(&plan, &outside, &consents, at),
        ResourceVerdict::Withhold(WithholdReason::OutsideCohort)
    );
    let mut hiv = by("maple-primary", condition("Patient/pat-0001", "B20"));
    hiv.in_referral_cohort = None;
    assert_eq!(
        set.check_resource(&plan, &hiv, &consents, at),
        ResourceVerdict::Withhold(WithholdReason::SensitiveForbidden {
            category: CategoryId::parse("hiv-sti").unwrap()
        })
    );
    let med = ResourceFacts::of(&json!({"resourceType": "MedicationRequest"}));
    assert_eq!(
        set.check_resource(&plan, &med, &consents, at),
        ResourceVerdict::Withhold(WithholdReason::TypeNotGranted)
    );
    // A security label is enough to make data sensitive.
    let labelled = by(
        "maple-primary",
        ResourceFacts::of(&json!({
            "resourceType": "Observation",
            "subject": {"reference": "Patient/pat-0001"},
            "meta": {"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PSY"}]}
        })),
    );
    assert!(matches!(
        set.check_resource(&plan, &labelled, &consents, at),
        ResourceVerdict::Withhold(WithholdReason::SensitiveForbidden { .. })
    ));
}

#[test]
fn a_grant_with_a_source_releases_only_that_members_records() {
    let set = shipped();
    let at = datetime!(2026-06-15 12:00 UTC);
    let consents = set.consents().clone();
    let maple = permit(
        &set,
        "maple-primary",
        "TREAT",
        "GET /Condition?patient=Patient/pat-0001",
    );
    let riverside = condition("Patient/pat-0001", "I10");
    assert_eq!(
        set.check_resource(&maple, &riverside, &consents, at),
        ResourceVerdict::Release
    );
    let brigid = by("st-brigid", condition("Patient/pat-0001", "I10"));
    assert_eq!(
        set.check_resource(&maple, &brigid, &consents, at),
        ResourceVerdict::Withhold(WithholdReason::OtherSource {
            source: PartnerId::parse("st-brigid").unwrap()
        })
    );
    let mut unknown = condition("Patient/pat-0001", "I10");
    unknown.origin = Origin::Undetermined;
    assert_eq!(
        set.check_resource(&maple, &unknown, &consents, at),
        ResourceVerdict::Withhold(WithholdReason::SourceUndetermined)
    );
}
