//! Hostile input cannot poison the audit log: whatever a partner sends,
//! what the gateway writes about it is bounded, the log stays readable and
//! the gateway keeps answering; over real TLS.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)] // test code: a panic is a failed test

use accord_e2e::{Harness, Options};
use accord_gateway::Limits;
use http::Method;

#[tokio::test]
async fn a_four_megabyte_control_byte_value_is_refused_and_recorded_bounded() {
    // Found by a reliability test: `patient=` followed by 4,194,296 bytes
    // of 0x01 was echoed whole into the refusal and the record (~25 MB of
    // JSON, over the store's record limit); the log then read as corrupt.
    let h = Harness::start_with(Options {
        limits: Limits {
            max_body_bytes: 8 * 1024 * 1024,
            ..Options::default().limits
        },
        ..Options::default()
    })
    .await;
    let mut body = b"patient=".to_vec();
    body.extend(std::iter::repeat_n(1u8, 4_194_296));
    let before = h.audit_records().len();
    let response = h
        .client("maple-primary")
        .send(
            Method::POST,
            &h.url("Observation/_search"),
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("x-purpose-of-use", "TREAT"),
            ],
            Some(body),
        )
        .await
        .unwrap();
    assert!(
        (400..500).contains(&response.status),
        "refused: {}",
        response.status
    );
    assert!(
        response.body.len() < 16 * 1024,
        "the refusal echoes at most a bounded value: {} bytes",
        response.body.len()
    );
    assert!(
        response.header("x-audit-seq").is_some(),
        "the refusal carries its audit receipt"
    );
    let records = h.audit_records();
    assert_eq!(records.len(), before + 1, "the refusal is audited");
    let last = records.last().unwrap();
    let size = serde_json::to_vec(last).unwrap().len();
    assert!(size < 32 * 1024, "the record is bounded: {size} bytes");
    assert!(last.rule.contains("bytes in all"), "{}", last.rule);
    // The log goes on: the next request is answered and recorded.
    let next = h
        .client("maple-primary")
        .get(&h.url(&format!("Patient/{}", h.patient())), "TREAT")
        .await
        .unwrap();
    assert_eq!(next.status, 200, "{}", next.text());
    assert_eq!(h.audit_records().len(), before + 2);
}

#[tokio::test]
async fn a_write_is_never_forwarded_when_its_intent_cannot_be_recorded() {
    // Found with a full audit disk: POST /Task answered 503 "no data is
    // released", yet the Task had been created upstream, unaudited.
    let h = Harness::start_with(Options {
        audit_on_full_disk: true,
        ..Options::default()
    })
    .await;
    let task = serde_json::json!({
        "resourceType": "Task", "status": "requested", "intent": "order",
        "for": {"reference": format!("Patient/{}", h.patient())}
    });
    let response = h
        .client("maple-primary")
        .send(
            Method::POST,
            &h.url("Task"),
            &[
                ("content-type", "application/fhir+json"),
                ("x-purpose-of-use", "TREAT"),
            ],
            Some(task.to_string().into_bytes()),
        )
        .await
        .unwrap();
    assert_eq!(response.status, 503, "{}", response.text());
    assert!(
        !h.upstream
            .store()
            .recorded_requests()
            .iter()
            .any(|r| r.method == "POST"),
        "the write reached the upstream without an audit record"
    );
}

#[tokio::test]
async fn a_write_leaves_its_intent_before_and_its_outcome_after() {
    let h = Harness::start().await;
    let task = serde_json::json!({
        "resourceType": "Task", "status": "requested", "intent": "order",
        "for": {"reference": format!("Patient/{}", h.patient())}
    });
    let response = h
        .client("maple-primary")
        .send(
            Method::POST,
            &h.url("Task"),
            &[
                ("content-type", "application/fhir+json"),
                ("x-purpose-of-use", "TREAT"),
            ],
            Some(task.to_string().into_bytes()),
        )
        .await
        .unwrap();
    assert_eq!(response.status, 201, "{}", response.text());
    let records = h.audit_records();
    let outcome = records.last().unwrap();
    let intent_seq = outcome.intent_seq.expect("the outcome names its intent");
    let intent = records.iter().find(|r| r.seq == intent_seq).unwrap();
    assert_eq!(intent.phase.as_deref(), Some("intent"));
    assert_eq!(intent.request_id, outcome.request_id);
    assert!(intent.seq < outcome.seq);
    assert_eq!(outcome.phase.as_deref(), Some("outcome"));
}
