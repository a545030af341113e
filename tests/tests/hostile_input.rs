//! Hostile input cannot poison the audit log: whatever a partner sends,
//! what the gateway writes about it is bounded, the log stays readable and
//! the gateway keeps answering; over real TLS.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)] // test code: a panic is a failed test

use std::time::Duration;

use accord_e2e::{Harness, Options};
use accord_gateway::Limits;
use http::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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

#[tokio::test]
async fn a_partner_at_its_connection_limit_does_not_lock_out_another() {
    // Found by a reliability test: 1,024 connections sending a body a byte
    // every 5 s held every slot of the connection cap; no other partner got
    // in until they closed.
    let h = Harness::start_with(Options {
        limits: Limits {
            max_connections: 4,
            max_connections_per_partner: 3,
            body_read_timeout: Duration::from_secs(60),
            ..Options::default().limits
        },
        ..Options::default()
    })
    .await;
    let slow_head = b"POST /fhir/Task HTTP/1.1\r\nHost: localhost\r\nX-Purpose-Of-Use: COC\r\nContent-Type: application/fhir+json\r\nContent-Length: 100\r\n\r\n{";
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut tls = h.raw_tls(Some("maple-primary")).await.unwrap();
        tls.write_all(slow_head).await.unwrap();
        held.push(tls);
    }
    // Let the gateway finish the handshakes and count the three.
    tokio::time::sleep(Duration::from_millis(500)).await;

    // A fourth connection of the same partner is closed without an answer.
    let mut fourth = h.raw_tls(Some("maple-primary")).await.unwrap();
    let _ = fourth.write_all(slow_head).await;
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), fourth.read_to_end(&mut buf)).await;
    assert!(
        read.is_ok(),
        "the connection over the partner's limit was kept open"
    );
    assert!(buf.is_empty(), "{}", String::from_utf8_lossy(&buf));

    // Another partner is served meanwhile, with the first one's three
    // slow connections still open.
    let other = tokio::time::timeout(
        Duration::from_secs(5),
        h.client("st-brigid").get(&h.url("metadata"), "TREAT"),
    )
    .await
    .expect("another partner was locked out by one partner's slow connections")
    .unwrap();
    assert_eq!(other.status, 200);
    drop(held);
}

/// The audit records after the first `before`, waiting up to 5 s for at
/// least one (records of requests the HTTP parser refused are written
/// after its answer).
async fn records_after(h: &Harness, before: usize) -> Vec<accord_audit::AuditRecord> {
    for _ in 0..50 {
        let records = h.audit_records();
        if records.len() > before {
            return records.into_iter().skip(before).collect();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no audit record was written");
}

/// Raw bytes over a partner's TLS connection; what came back.
async fn send_raw(h: &Harness, bytes: &[u8]) -> String {
    let mut tls = h.raw_tls(Some("maple-primary")).await.unwrap();
    tls.write_all(bytes).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut buf)).await;
    String::from_utf8_lossy(&buf).into_owned()
}

#[tokio::test]
async fn requests_with_too_many_headers_are_refused_with_an_outcome_and_audited() {
    // Found by a reliability test: 101 headers got an empty 431 from the
    // HTTP library and no audit record.
    let h = Harness::start().await;
    let names: Vec<String> = (0..150).map(|i| format!("x-extra-{i}")).collect();
    let mut headers = vec![("x-purpose-of-use", "TREAT")];
    headers.extend(names.iter().map(|n| (n.as_str(), "1")));
    let before = h.audit_records().len();
    let response = h
        .client("maple-primary")
        .send(Method::GET, &h.url("metadata"), &headers, None)
        .await
        .unwrap();
    assert_eq!(response.status, 431, "{}", response.text());
    assert_eq!(response.json().unwrap()["resourceType"], "OperationOutcome");
    assert!(
        response.text().contains("at most 100 header lines"),
        "{}",
        response.text()
    );
    let records = records_after(&h, before).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].status, 431);
    assert_eq!(records[0].partner.as_deref(), Some("maple-primary"));

    // Past what the HTTP parser holds, it answers by itself; the refusal
    // is still audited, naming the partner.
    let mut head = b"GET /fhir/metadata HTTP/1.1\r\nHost: localhost\r\n".to_vec();
    for i in 0..1000 {
        head.extend(format!("x-extra-{i}: 1\r\n").as_bytes());
    }
    head.extend(b"\r\n");
    let before = h.audit_records().len();
    let answer = send_raw(&h, &head).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    let records = records_after(&h, before).await;
    assert_eq!(records[0].status, 431);
    assert_eq!(records[0].partner.as_deref(), Some("maple-primary"));
    assert!(
        records[0].rule.contains("malformed HTTP request"),
        "{}",
        records[0].rule
    );
}

#[tokio::test]
async fn nul_and_0xff_bytes_in_the_request_line_are_refused_and_audited() {
    // Found by a reliability test: an empty 400 from the HTTP library and
    // no audit record.
    let h = Harness::start().await;
    for line in [
        &b"GET /fhir/Pat\x00ient HTTP/1.1\r\nHost: localhost\r\n\r\n"[..],
        &b"GET /fhir/Patient/\xff\xfe HTTP/1.1\r\nHost: localhost\r\n\r\n"[..],
    ] {
        let before = h.audit_records().len();
        let answer = send_raw(&h, line).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        let records = records_after(&h, before).await;
        assert_eq!(records.len(), 1, "{records:?}");
        assert_eq!(records[0].status, 400);
        assert_eq!(records[0].partner.as_deref(), Some("maple-primary"));
        assert_eq!(records[0].decision, accord_audit::DecisionKind::Refuse);
    }
}
