//! Everything a partner may not do is refused with an OperationOutcome, and
//! the upstream never sees it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)] // test code: a panic is a failed test

use accord_e2e::{Harness, UNLISTED};
use accord_testkit::client::{PartnerClient, PartnerResponse};
use accord_testkit::pki::DevPki;
use http::Method;

fn assert_outcome(response: &PartnerResponse, status: u16, diagnostics: &str) {
    assert_eq!(response.status, status, "{}", response.text());
    let body = response.json().unwrap();
    assert_eq!(body["resourceType"], "OperationOutcome");
    let text = body["issue"][0]["diagnostics"].as_str().unwrap();
    assert!(
        text.contains(diagnostics),
        "`{text}` does not mention `{diagnostics}`"
    );
}

fn upstream_requests(h: &Harness) -> usize {
    h.upstream.store().recorded_requests().len()
}

#[tokio::test]
async fn a_certificate_from_another_ca_fails_the_handshake() {
    let h = Harness::start().await;
    let rogue = DevPki::generate_untrusted_client("maple-primary").unwrap();
    let client =
        PartnerClient::new(&h.pki.ca_cert_pem, Some((&rogue.cert_pem, &rogue.key_pem))).unwrap();
    let result = client.get(&h.url("Patient"), "TREAT").await;
    assert!(
        result.is_err(),
        "an untrusted certificate got an HTTP answer: {result:?}"
    );
    assert_eq!(upstream_requests(&h), 0);
}

#[tokio::test]
async fn unpinned_and_missing_certificates_get_401() {
    let h = Harness::start().await;
    let path = h.url(&format!("Patient/{}", h.patient()));
    let unlisted = h.client(UNLISTED).get(&path, "TREAT").await.unwrap();
    assert_outcome(&unlisted, 401, "does not identify a partner");
    let anonymous = h.anonymous_client().get(&path, "TREAT").await.unwrap();
    assert_outcome(&anonymous, 401, "client certificate is required");
    assert_eq!(upstream_requests(&h), 0);
}

#[tokio::test]
async fn a_suspended_partner_is_refused() {
    let h = Harness::start().await;
    let response = h
        .client("north-recovery")
        .get(&h.url("metadata"), "TREAT")
        .await
        .unwrap();
    assert_outcome(&response, 403, "partner `north-recovery` is suspended");
}

#[tokio::test]
async fn missing_unknown_and_ungranted_purposes_get_403() {
    let h = Harness::start().await;
    let client = h.client("maple-primary");
    let path = h.url(&format!("Patient/{}", h.patient()));
    let missing = client.send(Method::GET, &path, &[], None).await.unwrap();
    assert_outcome(&missing, 403, "X-Purpose-Of-Use");
    let unknown = client.get(&path, "CURIOSITY").await.unwrap();
    assert_outcome(
        &unknown,
        403,
        "`CURIOSITY` is not an HL7 v3 PurposeOfUse code",
    );
    let ungranted = client.get(&path, "HPAYMT").await.unwrap();
    assert_outcome(&ungranted, 403, "does not permit this purpose of use");
    assert_eq!(upstream_requests(&h), 0);
}

#[tokio::test]
async fn ungranted_types_and_interactions_get_403() {
    let h = Harness::start().await;
    let client = h.client("maple-primary");
    let ty = client
        .get(&h.url("MedicationRequest"), "TREAT")
        .await
        .unwrap();
    assert_outcome(&ty, 403, "no access to this resource type");
    let history = client
        .get(
            &h.url(&format!("Patient/{}/_history", h.patient())),
            "TREAT",
        )
        .await
        .unwrap();
    assert_outcome(&history, 403, "does not grant this interaction");
    let system = client.get(&h.url("?_id=x"), "TREAT").await.unwrap();
    assert_outcome(&system, 403, "system-level");
    assert_eq!(upstream_requests(&h), 0);
}

#[tokio::test]
async fn suspended_and_expired_agreements_get_403() {
    let h = Harness::start().await;
    let suspended = h
        .client("st-brigid")
        .get(&h.url("Observation?category=laboratory"), "HOPERAT")
        .await
        .unwrap();
    assert_outcome(&suspended, 403, "agreement `quality` v1 is suspended");
    let expired = h
        .client("riverside-bh")
        .get(
            &h.url(&format!("Condition?patient={}", h.patient())),
            "TREAT",
        )
        .await
        .unwrap();
    assert_outcome(&expired, 403, "agreement `pilot` v1 is not in its term");
    assert_eq!(upstream_requests(&h), 0);
}
