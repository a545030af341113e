//! The tools apply the gateway's referral rule: a partner's own referral,
//! written through the gateway, never puts a patient into its own referral
//! cohort; the data holder's referral (or another party's) does.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;

use accord_fhir::{InteractionKind, Purpose, ResourceType};
use accord_policy::referral::ReferralEvidence;
use accord_policy::{AccessRequest, PartnerId, PolicySet, Referral};
use serde_json::json;
use time::macros::datetime;

fn shipped() -> PolicySet {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
    PolicySet::load_dir(&dir).unwrap()
}

fn task(patient: &str, from: &str, to: &str, written_by: Option<&str>) -> serde_json::Value {
    let mut task = json!({
        "resourceType": "Task",
        "id": format!("t-{patient}-{from}"),
        "status": "requested",
        "intent": "order",
        "for": {"reference": format!("Patient/{patient}")},
        "requester": {"reference": format!("Organization/org-{from}")},
        "owner": {"reference": format!("Organization/org-{to}")},
    });
    if let Some(partner) = written_by {
        task["meta"] = json!({"tag": [{"system": "urn:accord:partner", "code": partner}]});
    }
    task
}

fn membership(
    set: &PolicySet,
    evidence: &ReferralEvidence,
    partner: &str,
    patient: &str,
) -> Referral {
    let partner = PartnerId::parse(partner).unwrap();
    let purpose = Purpose::parse("TREAT").unwrap();
    let request = AccessRequest {
        partner: &partner,
        purpose: &purpose,
        interaction: InteractionKind::Search,
        resource_type: Some(ResourceType::parse("Observation").unwrap()),
        at: datetime!(2026-06-01 12:00 UTC),
        patient: Some(format!("Patient/{patient}")),
        operation: None,
    };
    set.decide_known(&request, set.consents(), Some(evidence)).1
}

#[test]
fn a_partners_own_referral_does_not_widen_its_own_cohort() {
    let set = shipped();
    let evidence = ReferralEvidence::from_resources(&[
        // Maple wrote this one itself, through the gateway.
        task(
            "self-made",
            "maple-primary",
            "st-brigid",
            Some("maple-primary"),
        ),
        // Riverside's own system made this one (no gateway tag).
        task("referred", "riverside-bh", "maple-primary", None),
    ]);
    assert_eq!(
        membership(&set, &evidence, "maple-primary", "self-made"),
        Referral::NotMember,
        "maple's own referral does not put the patient in maple's cohort"
    );
    assert_eq!(
        membership(&set, &evidence, "st-brigid", "self-made"),
        Referral::Member,
        "it counts for the other party it was sent to"
    );
    assert_eq!(
        membership(&set, &evidence, "maple-primary", "referred"),
        Referral::Member
    );
}
