//! CarePlan, referral (ServiceRequest + Task) and Consent constructors.

use serde_json::{Value, json};

use super::codes::{
    ACT_CODE, ACT_REASON, CAREPLAN_CATEGORY, CONSENT_SCOPE, LOINC, PARTICIPATION_TYPE, SNOMED,
};
use super::dates::Day;
use super::json::{Labels, coding, concept, meta, reference};
use super::orgs::OrgKind;

/// The care plan one organization keeps for the conditions it treats.
pub(crate) fn care_plan(
    id: &str,
    patient: &str,
    org: OrgKind,
    day: Day,
    condition_ids: &[String],
    labels: Labels,
) -> Value {
    let title = match org {
        OrgKind::Behavioral => "Behavioral health treatment plan",
        OrgKind::Primary => "Chronic care management plan",
        OrgKind::Hospital => "Discharge plan",
    };
    json!({
        "resourceType": "CarePlan",
        "id": id,
        "meta": meta(day, labels),
        "status": "active",
        "intent": "plan",
        "category": [concept(CAREPLAN_CATEGORY, "assess-plan", "Assessment and Plan of Treatment")],
        "title": title,
        "subject": reference("Patient", patient),
        "period": { "start": day.date_string() },
        "created": day.at(17 * 60),
        "author": org.reference(),
        "addresses": condition_ids
            .iter()
            .map(|c| reference("Condition", c))
            .collect::<Vec<_>>(),
    })
}

/// Where a referral is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReferralState {
    Requested,
    Accepted,
    Completed,
}

/// A closed-loop referral from one partner to another.
#[derive(Debug)]
pub(crate) struct Referral<'a> {
    pub(crate) service_request_id: &'a str,
    pub(crate) task_id: &'a str,
    pub(crate) patient: &'a str,
    pub(crate) from: OrgKind,
    pub(crate) to: OrgKind,
    pub(crate) day: Day,
    pub(crate) reason_condition: Option<&'a str>,
    pub(crate) state: ReferralState,
    pub(crate) labels: Labels,
}

impl Referral<'_> {
    fn service(&self) -> &'static str {
        match self.to {
            OrgKind::Behavioral => "Referral to behavioral health services",
            OrgKind::Primary => "Referral to primary care",
            OrgKind::Hospital => "Referral to hospital specialty clinic",
        }
    }
}

/// The ServiceRequest of a referral.
pub(crate) fn service_request(r: &Referral<'_>) -> Value {
    let mut sr = json!({
        "resourceType": "ServiceRequest",
        "id": r.service_request_id,
        "meta": meta(r.day, r.labels),
        "status": if r.state == ReferralState::Completed { "completed" } else { "active" },
        "intent": "order",
        "category": [concept(SNOMED, "3457005", "Patient referral")],
        "priority": "routine",
        "code": { "text": r.service() },
        "subject": reference("Patient", r.patient),
        "authoredOn": r.day.at(10 * 60),
        "requester": r.from.reference(),
        "performer": [r.to.reference()],
    });
    if let (Some(condition), Some(object)) = (r.reason_condition, sr.as_object_mut()) {
        object.insert(
            "reasonReference".into(),
            json!([reference("Condition", condition)]),
        );
    }
    sr
}

/// The Task that tracks a referral at the receiving partner.
pub(crate) fn task(r: &Referral<'_>) -> Value {
    let (status, business) = match r.state {
        ReferralState::Requested => ("requested", "Awaiting review"),
        ReferralState::Accepted => ("accepted", "Appointment scheduled"),
        ReferralState::Completed => ("completed", "Patient seen, note sent back"),
    };
    let modified = match r.state {
        ReferralState::Requested => r.day,
        ReferralState::Accepted => r.day.plus(3),
        ReferralState::Completed => r.day.plus(21),
    };
    json!({
        "resourceType": "Task",
        "id": r.task_id,
        "meta": meta(modified, r.labels),
        "status": status,
        "businessStatus": { "text": business },
        "intent": "order",
        "priority": "routine",
        "code": concept("http://hl7.org/fhir/CodeSystem/task-code", "fulfill", "Fulfill the focal request"),
        "description": r.service(),
        "focus": reference("ServiceRequest", r.service_request_id),
        "for": reference("Patient", r.patient),
        "authoredOn": r.day.at(10 * 60),
        "lastModified": modified.at(16 * 60),
        "requester": r.from.reference(),
        "owner": r.to.reference(),
    })
}

fn recipient(org: OrgKind) -> Value {
    json!({
        "role": concept(PARTICIPATION_TYPE, "IRCP", "information recipient"),
        "reference": org.reference(),
    })
}

fn consent_base(id: &str, patient: &str, custodian: OrgKind, day: Day, rule: &str) -> Value {
    let rule_display = if rule == "OPTOUT" {
        "opt-out"
    } else {
        "opt-in"
    };
    json!({
        "resourceType": "Consent",
        "id": id,
        "meta": meta(day, Labels::None),
        "status": "active",
        "scope": concept(CONSENT_SCOPE, "patient-privacy", "Privacy Consent"),
        "category": [concept(LOINC, "59284-0", "Patient Consent")],
        "patient": reference("Patient", patient),
        "dateTime": day.at(15 * 60),
        "organization": [custodian.reference()],
        "policyRule": concept(ACT_CODE, rule, rule_display),
    })
}

/// A 42 CFR Part 2 consent: the patient permits the clinic to disclose its
/// ETH-labelled records to `recipients` for treatment. Open-ended (no
/// `period.end`) so that tests do not start failing as the calendar moves.
pub(crate) fn part2_consent(id: &str, patient: &str, day: Day, recipients: &[OrgKind]) -> Value {
    let mut consent = consent_base(id, patient, OrgKind::Behavioral, day, "OPTIN");
    if let Some(object) = consent.as_object_mut() {
        object.insert(
            "provision".into(),
            json!({
                "type": "permit",
                "period": { "start": day.date_string() },
                "actor": recipients.iter().map(|o| recipient(*o)).collect::<Vec<_>>(),
                "purpose": [coding(ACT_REASON, "TREAT", "treatment")],
                "securityLabel": [coding(ACT_CODE, "ETH", "substance abuse information sensitivity")],
            }),
        );
    }
    consent
}

/// A general opt-out: the patient denies disclosure to every partner.
pub(crate) fn opt_out_consent(id: &str, patient: &str, custodian: OrgKind, day: Day) -> Value {
    let mut consent = consent_base(id, patient, custodian, day, "OPTOUT");
    if let Some(object) = consent.as_object_mut() {
        object.insert(
            "provision".into(),
            json!({
                "type": "deny",
                "period": { "start": day.date_string() },
                "actor": OrgKind::ALL.iter().map(|o| recipient(*o)).collect::<Vec<_>>(),
            }),
        );
    }
    consent
}
