//! The record says what happened: attempts are found by the patient they
//! named, a partner's own write is not a disclosure to it, the AuditEvent
//! export names the resource acted on (never the gateway's base path) and
//! each agreement once, and a filter naming something unknown is an error
//! rather than "0 records".
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::Path;

use accord_audit::query::{BadFilter, FilterText, Known, query};
use accord_audit::report::{accounting, audit_events, validate_audit_event};
use accord_audit::{
    AgreementRef, AuditRecord, AuditSink as _, AuditStore, DecisionKind, Index, PatientRelease,
    StoreOptions, TypeCounts,
};
use serde_json::Value;
use time::macros::datetime;

const GATEWAY: &str = "accord-test";

fn agreement() -> AgreementRef {
    AgreementRef {
        id: "care-coordination".into(),
        version: 2,
        grant: "clinical-record".into(),
    }
}

fn released(patient: &str, ty: &str) -> PatientRelease {
    PatientRelease {
        patient: patient.into(),
        sensitivity: Vec::new(),
        resources: vec![TypeCounts {
            resource_type: ty.into(),
            released: 1,
            withheld: 0,
            redacted: 0,
        }],
    }
}

fn base(request_id: &str) -> AuditRecord {
    AuditRecord {
        time: datetime!(2026-11-02 10:00 UTC),
        request_id: request_id.into(),
        partner: Some("maple-primary".into()),
        partner_name: Some("Maple Primary Care".into()),
        peer: "127.0.0.1:50000".into(),
        purpose: Some("TREAT".into()),
        method: "GET".into(),
        status: 200,
        ..AuditRecord::default()
    }
}

/// A read of an opted-out patient's Observation, denied before anything
/// was fetched: nothing released, the patient named by the request.
fn denied_attempt() -> AuditRecord {
    AuditRecord {
        target: "/fhir/Observation?patient=Patient/pat-0007".into(),
        path: Some("/fhir/Observation".into()),
        query: Some("patient=Patient/pat-0007".into()),
        interaction: Some("search-type".into()),
        resource_type: Some("Observation".into()),
        decision: DecisionKind::Deny,
        rule: "deny: consent opt-out".into(),
        status: 403,
        subjects: vec!["Patient/pat-0007".into()],
        ..base("denied")
    }
}

/// The partner's own create: the response echoes the Task it sent.
fn own_create() -> AuditRecord {
    AuditRecord {
        method: "POST".into(),
        target: "/fhir/Task".into(),
        path: Some("/fhir/Task".into()),
        interaction: Some("create".into()),
        resource_type: Some("Task".into()),
        decision: DecisionKind::Permit,
        rule: "permit: grant referral-feedback".into(),
        agreement: Some(agreement()),
        agreements: vec![agreement()],
        status: 201,
        patients: vec![released("Patient/pat-0001", "Task")],
        subjects: vec!["Patient/pat-0001".into()],
        resource: Some("Task/task-77".into()),
        ..base("create")
    }
}

/// A plain read of a patient in reach.
fn read() -> AuditRecord {
    AuditRecord {
        target: "/fhir/Patient/pat-0001".into(),
        path: Some("/fhir/Patient/pat-0001".into()),
        interaction: Some("read".into()),
        resource_type: Some("Patient".into()),
        decision: DecisionKind::Permit,
        rule: "permit: grant clinical-record".into(),
        agreement: Some(agreement()),
        agreements: vec![agreement()],
        patients: vec![released("Patient/pat-0001", "Patient")],
        ..base("read")
    }
}

fn store_of(dir: &Path, records: &[AuditRecord]) -> Index {
    let options = StoreOptions {
        signing_key: Some(dir.with_extension("key")),
        ..StoreOptions::default()
    };
    let (store, _) = AuditStore::open_with(dir, options).unwrap();
    for record in records {
        store.append(record).unwrap();
    }
    store.close();
    // The store's indexer holds the index until the store is gone.
    drop(store);
    let index = Index::open(dir).unwrap();
    index.catch_up().unwrap();
    index
}

fn filter(text: FilterText) -> Result<accord_audit::query::Filter, BadFilter> {
    text.parse(datetime!(2026-12-01 00:00 UTC))
}

#[test]
fn a_denied_attempt_is_found_by_the_patient_it_named_and_is_not_a_disclosure() {
    let tmp = tempfile::tempdir().unwrap();
    let index = store_of(
        &tmp.path().join("audit"),
        &[read(), denied_attempt(), own_create()],
    );
    let by_patient = filter(FilterText {
        patient: Some("Patient/pat-0007".into()),
        ..FilterText::default()
    })
    .unwrap();
    let found = query(&index, &by_patient).unwrap();
    assert_eq!(found.len(), 1, "the denied attempt is found by patient");
    assert_eq!(found[0].request_id, "denied");
    assert_eq!(found[0].decision, DecisionKind::Deny);

    let report = accounting(
        &index,
        "Patient/pat-0007",
        None,
        datetime!(2026-12-01 00:00 UTC),
    )
    .unwrap();
    assert!(
        report.disclosures.is_empty(),
        "an attempt that released nothing is no disclosure"
    );

    let events = audit_events(&found[0], GATEWAY);
    assert_eq!(events.len(), 1);
    let event = &events[0];
    validate_audit_event(&event.to_string()).unwrap();
    assert_eq!(event["outcome"], "4");
    let patient = event["entity"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["role"]["code"] == "1")
        .expect("a patient entity for the denied attempt");
    assert_eq!(patient["what"]["reference"], "Patient/pat-0007");
}

#[test]
fn a_partners_own_write_is_not_a_disclosure_to_it() {
    let tmp = tempfile::tempdir().unwrap();
    let mut conditional = own_create();
    // A conditional create that matched: the answer is an existing
    // resource the partner did not send — a disclosure.
    conditional.request_id = "conditional".into();
    conditional.status = 200;
    let index = store_of(
        &tmp.path().join("audit"),
        &[read(), own_create(), conditional],
    );
    let report = accounting(
        &index,
        "Patient/pat-0001",
        None,
        datetime!(2026-12-01 00:00 UTC),
    )
    .unwrap();
    let listed: Vec<&str> = report
        .disclosures
        .iter()
        .map(|d| d.request_id.as_str())
        .collect();
    assert_eq!(listed, ["read", "conditional"]);
}

fn target_entity(event: &Value) -> &Value {
    event["entity"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"]["code"] == "2")
        .expect("a system-object entity")
}

#[test]
fn audit_events_name_the_resource_acted_on_and_each_agreement_once() {
    let read_event = &audit_events(&read(), GATEWAY)[0];
    validate_audit_event(&read_event.to_string()).unwrap();
    let target = target_entity(read_event);
    assert_eq!(
        target["what"]["reference"], "Patient/pat-0001",
        "no gateway base path in the reference"
    );
    let agreements = target["detail"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["type"] == "agreement")
        .count();
    assert_eq!(agreements, 1, "the agreement is named once");

    let create_event = &audit_events(&own_create(), GATEWAY)[0];
    validate_audit_event(&create_event.to_string()).unwrap();
    assert_eq!(create_event["action"], "C");
    assert_eq!(
        target_entity(create_event)["what"]["reference"],
        "Task/task-77",
        "a create names the resource it created"
    );
}

#[test]
fn filters_naming_unknown_values_or_an_empty_range_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let index = store_of(&tmp.path().join("audit"), &[read(), denied_attempt()]);
    let known = Known::from_index(&index).unwrap();

    let typo = filter(FilterText {
        partner: Some("mapel-primary".into()),
        ..FilterText::default()
    })
    .unwrap();
    let error = typo.check_known(&known).unwrap_err().to_string();
    assert!(error.contains("`mapel-primary`"), "{error}");
    assert!(
        error.contains("`maple-primary`"),
        "names the known: {error}"
    );

    let agreement = filter(FilterText {
        agreement: Some("care-cordination".into()),
        ..FilterText::default()
    })
    .unwrap();
    let error = agreement.check_known(&known).unwrap_err().to_string();
    assert!(error.contains("`care-coordination`"), "{error}");

    let known_partner = filter(FilterText {
        partner: Some("maple-primary".into()),
        ..FilterText::default()
    })
    .unwrap();
    known_partner.check_known(&known).unwrap();

    let purpose = filter(FilterText {
        purpose: Some("TRAET".into()),
        ..FilterText::default()
    })
    .unwrap_err()
    .to_string();
    assert!(purpose.contains("`TRAET`"), "{purpose}");

    let reversed = filter(FilterText {
        since: Some("2026-11-30".into()),
        until: Some("2026-11-01".into()),
        ..FilterText::default()
    })
    .unwrap_err()
    .to_string();
    assert!(reversed.contains("not before"), "{reversed}");
    assert!(!reversed.contains("Some("), "plain words: {reversed}");
}
