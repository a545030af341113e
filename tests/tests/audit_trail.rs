//! Every request leaves exactly one durable audit record, and nothing is
//! released when the record cannot be written.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)] // test code: a panic is a failed test

use accord_audit::DecisionKind;
use accord_e2e::{Harness, OPTED_OUT, Options, UNLISTED};
use http::Method;

#[tokio::test]
async fn every_request_permitted_or_denied_leaves_exactly_one_record() {
    let h = Harness::start().await;
    let patient = h.patient();
    let maple = h.client("maple-primary");
    let requests: Vec<(
        &str,
        accord_testkit::client::PartnerClient,
        String,
        Option<&str>,
    )> = vec![
        (
            "permit",
            maple.clone(),
            format!("Patient/{patient}"),
            Some("TREAT"),
        ),
        (
            "permit",
            maple.clone(),
            format!("Observation?patient={patient}"),
            Some("TREAT"),
        ),
        (
            "deny",
            maple.clone(),
            "MedicationRequest".to_owned(),
            Some("TREAT"),
        ),
        (
            "deny",
            maple.clone(),
            format!("Patient/{patient}"),
            Some("HPAYMT"),
        ),
        ("refuse", maple.clone(), format!("Patient/{patient}"), None),
        // Permitted by the agreement, then refused by the gateway: nothing
        // was released, so the record must not read as a disclosure.
        (
            "refuse",
            maple.clone(),
            format!("Observation?patient={patient}&_summary=count"),
            Some("TREAT"),
        ),
        (
            "refuse",
            maple.clone(),
            "Nonsense/1".to_owned(),
            Some("TREAT"),
        ),
        (
            "refuse",
            h.client(UNLISTED),
            format!("Patient/{patient}"),
            Some("TREAT"),
        ),
        (
            "refuse",
            h.anonymous_client(),
            format!("Patient/{patient}"),
            Some("TREAT"),
        ),
    ];
    for (i, (expected, client, path, purpose)) in requests.into_iter().enumerate() {
        let headers: Vec<(&str, &str)> = purpose
            .map(|p| ("X-Purpose-Of-Use", p))
            .into_iter()
            .collect();
        let response = client
            .send(Method::GET, &h.url(&path), &headers, None)
            .await
            .unwrap();
        let records = h.audit_records();
        assert_eq!(
            records.len(),
            i + 1,
            "request {i} ({path}) left {} records",
            records.len() - i
        );
        let record = records.last().unwrap();
        assert_eq!(
            response.header("x-audit-seq"),
            Some(record.seq.to_string().as_str()),
            "the receipt names the record"
        );
        assert_eq!(
            response.header("x-request-id"),
            Some(record.request_id.as_str())
        );
        assert_eq!(record.status, response.status);
        let decision = serde_json::to_value(record.decision).unwrap();
        assert_eq!(decision, expected, "{path}: {record:?}");
        // Only a permitted request reaches the upstream: its wait is part
        // of the whole; a denial or refusal never called it, so it has none
        // (absent, not 0).
        if expected == "permit" {
            let upstream = record.upstream_latency_us.expect("upstream was called");
            assert!(upstream <= record.latency_us, "{path}: {record:?}");
        } else {
            assert_eq!(record.upstream_latency_us, None, "{path}: {record:?}");
        }
        assert!(
            record.target.ends_with(&path),
            "{} vs {path}",
            record.target
        );
    }
}

#[tokio::test]
async fn a_permit_record_names_partner_purpose_agreement_and_rule() {
    let h = Harness::start().await;
    h.client("maple-primary")
        .get(&h.url(&format!("Patient/{}", h.patient())), "TREAT")
        .await
        .unwrap();
    let record = h.audit_records().pop().unwrap();
    assert_eq!(record.decision, DecisionKind::Permit);
    assert_eq!(record.partner.as_deref(), Some("maple-primary"));
    assert_eq!(record.purpose.as_deref(), Some("TREAT"));
    assert_eq!(record.interaction.as_deref(), Some("read"));
    assert_eq!(record.resource_type.as_deref(), Some("Patient"));
    let agreement = record.agreement.unwrap();
    assert_eq!(
        (
            agreement.id.as_str(),
            agreement.version,
            agreement.grant.as_str()
        ),
        ("care", 3, "clinical")
    );
    assert_eq!(record.rule, "permit: agreement `care` v3 grant `clinical`");
    assert!(
        record
            .policy_hash
            .as_deref()
            .is_some_and(|h| h.starts_with("sha256:")),
        "{:?}",
        record.policy_hash
    );
    assert_eq!(record.partner_name.as_deref(), Some("maple-primary"));
    let released: Vec<(&str, &str, u32)> = record
        .patients
        .iter()
        .flat_map(|p| {
            p.resources
                .iter()
                .map(move |t| (p.patient.as_str(), t.resource_type.as_str(), t.released))
        })
        .collect();
    assert_eq!(
        released,
        [(format!("Patient/{}", h.patient()).as_str(), "Patient", 1)]
    );
    assert!(record.bytes > 0);
    assert_eq!(
        record.client_spki.as_deref(),
        Some(h.pki.clients["maple-primary"].spki_sha256_hex.as_str())
    );
    assert_eq!(
        record.partner_address.as_deref(),
        Some("1 maple-primary Way, Springfield"),
        "the recipient's address, from partners.toml"
    );
    // The certificate's own fingerprint: SHA-256 of its DER.
    let der = rustls::pki_types::pem::PemObject::from_pem_slice(
        h.pki.clients["maple-primary"].cert_pem.as_bytes(),
    )
    .map(|c: rustls::pki_types::CertificateDer<'static>| c.to_vec())
    .unwrap();
    let fingerprint: String = ring::digest::digest(&ring::digest::SHA256, &der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        record.client_cert_sha256.as_deref(),
        Some(fingerprint.as_str())
    );
    assert!(
        record.peer.starts_with("127.0.0.1:") || record.peer.starts_with("[::1]:"),
        "the client's socket address: {}",
        record.peer
    );
}

#[tokio::test]
async fn when_the_audit_log_cannot_be_written_nothing_is_released() {
    let h = Harness::start_with(Options {
        audit_on_full_disk: true,
        ..Options::default()
    })
    .await;
    let patient = h.patient();
    let response = h
        .client("maple-primary")
        .get(&h.url(&format!("Patient/{patient}")), "TREAT")
        .await
        .unwrap();
    assert_eq!(response.status, 503, "{}", response.text());
    let body = response.json().unwrap();
    assert_eq!(body["resourceType"], "OperationOutcome");
    let text = response.text();
    assert!(
        !text.contains(&patient),
        "the body mentions the patient: {text}"
    );
    let name = h.population.get("Patient", &patient).unwrap()["name"][0]["family"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!text.contains(&name), "the body holds patient data: {text}");
    assert!(
        response.header("x-audit-seq").is_none(),
        "no receipt without a record"
    );

    // Denials are not let through either, and the gateway keeps answering.
    let denied = h
        .client("maple-primary")
        .get(&h.url("MedicationRequest"), "TREAT")
        .await
        .unwrap();
    assert_eq!(denied.status, 503);
}

/// The ids of the harness population's resources of `ty` that belong to
/// `patient` (by their `subject`).
fn resources_of(h: &Harness, ty: &str, patient: &str) -> Vec<String> {
    let reference = format!("Patient/{patient}");
    h.population
        .resources
        .iter()
        .filter(|r| r["resourceType"] == ty && r["subject"]["reference"] == reference.as_str())
        .filter_map(|r| r["id"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn the_record_says_the_truth_about_attempts_and_writes() {
    use accord_audit::query::{Filter, query};
    let h = Harness::start().await;
    let maple = h.client("maple-primary");
    let opted_out = format!("Patient/{OPTED_OUT}");

    // A search about the opted-out patient: answered as "no data", recorded
    // as the denial it is, and found by that patient.
    let search = maple
        .get(&h.url(&format!("Observation?patient={OPTED_OUT}")), "TREAT")
        .await
        .unwrap();
    assert!(search.status < 500, "{}", search.status);
    let record = h.audit_records().pop().unwrap();
    assert_eq!(record.decision, DecisionKind::Deny, "{record:?}");
    assert_eq!(record.subjects, std::slice::from_ref(&opted_out));

    // A read of one of the patient's Observations: the partner sees "not
    // found"; the log says it was withheld, and why — not a partner error.
    let observation = resources_of(&h, "Observation", OPTED_OUT)
        .pop()
        .expect("the opted-out patient has Observations");
    let read = maple
        .get(&h.url(&format!("Observation/{observation}")), "TREAT")
        .await
        .unwrap();
    assert_eq!(read.status, 404);
    let record = h.audit_records().pop().unwrap();
    assert_eq!(record.decision, DecisionKind::Deny, "{record:?}");
    assert!(
        record.rule.contains("withheld") && record.rule.contains("answered as not found"),
        "{}",
        record.rule
    );
    assert_eq!(record.error_source, None, "nobody made a mistake");
    assert_eq!(
        record.resource.as_deref(),
        Some(format!("Observation/{observation}").as_str())
    );

    let attempts = h
        .audit
        .with_index(|index| {
            query(
                index,
                &Filter {
                    patient: Some(opted_out.clone()),
                    ..Filter::default()
                },
            )
        })
        .unwrap();
    assert!(
        attempts.iter().any(|r| r.decision == DecisionKind::Deny),
        "the privacy officer finds the denied attempts by patient: {attempts:?}"
    );

    // A create names the resource it made.
    let task = serde_json::json!({
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "for": {"reference": format!("Patient/{}", h.patient())},
    });
    let created = maple
        .send(
            Method::POST,
            &h.url("Task"),
            &[
                ("X-Purpose-Of-Use", "TREAT"),
                ("Content-Type", "application/fhir+json"),
            ],
            Some(task.to_string().into_bytes()),
        )
        .await
        .unwrap();
    assert_eq!(created.status, 201, "{:?}", created.json());
    let record = h.audit_records().pop().unwrap();
    let id = created.json().unwrap()["id"].as_str().unwrap().to_owned();
    assert_eq!(
        record.resource.as_deref(),
        Some(format!("Task/{id}").as_str())
    );
}
