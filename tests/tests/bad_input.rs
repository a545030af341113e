//! Malformed and hostile input gets a clear OperationOutcome (or a TLS
//! alert), and the gateway keeps serving.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)] // test code: a panic is a failed test

use std::sync::Arc;
use std::time::Duration;

use accord_e2e::{Harness, Options};
use accord_testkit::client::{PartnerResponse, send_raw_plaintext};
use http::Method;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn assert_outcome(response: &PartnerResponse, status: u16) {
    assert_eq!(response.status, status, "{}", response.text());
    assert_eq!(
        response.json().unwrap()["resourceType"],
        "OperationOutcome",
        "{}",
        response.text()
    );
}

async fn still_serving(h: &Harness) {
    let ok = h
        .client("maple-primary")
        .get(&h.url("metadata"), "TREAT")
        .await
        .unwrap();
    assert_eq!(ok.status, 200, "the gateway stopped serving");
}

async fn get(h: &Harness, path: &str, headers: &[(&str, &str)]) -> PartnerResponse {
    let mut all = vec![("X-Purpose-Of-Use", "TREAT")];
    all.extend_from_slice(headers);
    h.client("maple-primary")
        .send(Method::GET, &h.url(path), &all, None)
        .await
        .unwrap()
}

#[tokio::test]
async fn malformed_paths_types_ids_and_methods() {
    let h = Harness::start().await;
    assert_outcome(&get(&h, "Patients/1", &[]).await, 404);
    assert_outcome(&get(&h, "Patient/not_an_id", &[]).await, 400);
    assert_outcome(&get(&h, "Patient//x", &[]).await, 400);
    assert_outcome(&get(&h, "Patient/%2e%2e/Observation", &[]).await, 400);
    assert_outcome(&get(&h, "Patient?bad%20name=1", &[]).await, 400);
    assert_outcome(&get(&h, "Patient?_format=xml", &[]).await, 406);
    let other_root = h
        .client("maple-primary")
        .get(&h.url("../admin").replace("/fhir/../", "/"), "TREAT")
        .await
        .unwrap();
    assert_outcome(&other_root, 404);
    let options = h
        .client("maple-primary")
        .send(
            Method::OPTIONS,
            &h.url("Patient"),
            &[("X-Purpose-Of-Use", "TREAT")],
            None,
        )
        .await
        .unwrap();
    assert_outcome(&options, 405);
    assert!(
        h.upstream.store().recorded_requests().is_empty(),
        "nothing malformed was forwarded"
    );
    still_serving(&h).await;
}

#[tokio::test]
async fn oversized_headers_and_bodies() {
    let h = Harness::start().await;
    let big = "x".repeat(10 * 1024);
    assert_outcome(&get(&h, "metadata", &[("X-Padding", &big)]).await, 431);
    let body = vec![b'{'; 65 * 1024];
    let response = h
        .client("riverside-bh")
        .send(
            Method::POST,
            &h.url("Task"),
            &[
                ("X-Purpose-Of-Use", "COC"),
                ("Content-Type", "application/fhir+json"),
            ],
            Some(body),
        )
        .await
        .unwrap();
    assert_outcome(&response, 413);
    still_serving(&h).await;
}

#[tokio::test]
async fn invalid_resources_are_refused_before_the_upstream() {
    let h = Harness::start().await;
    let send = |body: &'static str| {
        let client = h.client("riverside-bh");
        let url = h.url("Task");
        async move {
            client
                .send(
                    Method::POST,
                    &url,
                    &[
                        ("X-Purpose-Of-Use", "COC"),
                        ("Content-Type", "application/fhir+json"),
                    ],
                    Some(body.as_bytes().to_vec()),
                )
                .await
                .unwrap()
        }
    };
    assert_outcome(&send("{not json").await, 400);
    assert_outcome(&send(r#"{"resourceType":"Patient"}"#).await, 400);
    assert_outcome(
        &send(r#"{"resourceType":"Task","status":"requested","intent":"order","sneaky":true}"#)
            .await,
        422,
    );
    // What fhirbolt's model lets through, the official R4 schema catches,
    // one issue per element with its path.
    let bad = send(
        r#"{"resourceType":"Task","status":"nonsense","intent":"order","authoredOn":"yesterday"}"#,
    )
    .await;
    assert_outcome(&bad, 422);
    let issues = bad.json().unwrap()["issue"].as_array().unwrap().clone();
    let paths: Vec<&str> = issues
        .iter()
        .filter_map(|i| i["expression"][0].as_str())
        .collect();
    assert!(
        paths.contains(&"Task.status") && paths.contains(&"Task.authoredOn"),
        "{issues:?}"
    );
    // fhirbolt 0.4 panics on empty arrays: the gateway refuses them first.
    assert_outcome(
        &send(r#"{"resourceType":"Task","status":"requested","intent":"order","input":[]}"#).await,
        422,
    );
    assert!(h.upstream.store().recorded_requests().is_empty());
    still_serving(&h).await;
}

#[tokio::test]
async fn plain_http_to_the_tls_port_gets_no_http_answer() {
    let h = Harness::start().await;
    let answer =
        send_raw_plaintext(h.addr(), b"GET /fhir/metadata HTTP/1.1\r\nHost: x\r\n\r\n").await;
    if let Ok(bytes) = answer {
        assert!(
            !bytes.starts_with(b"HTTP/"),
            "a plaintext request got an HTTP response"
        );
    }
    still_serving(&h).await;
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let h = Harness::start().await;
    let identity = &h.pki.clients["maple-primary"];
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(h.pki.ca_cert_pem.as_bytes()).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_client_auth_cert(
        vec![CertificateDer::from_pem_slice(identity.cert_pem.as_bytes()).unwrap()],
        PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes()).unwrap(),
    )
    .unwrap();
    let tcp = tokio::net::TcpStream::connect(h.addr()).await.unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    tls.write_all(b"GET /fhir/metadata HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        .await
        .unwrap();
    // The harness allows 1 s for headers; the connection must end well before 10 s.
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the slow client was not disconnected");
    still_serving(&h).await;
}

#[tokio::test]
async fn a_slow_upstream_gets_504_and_a_dead_one_502() {
    let h = Harness::start().await;
    h.upstream.store().set_delay(Duration::from_secs(5));
    let slow = get(&h, &format!("Patient/{}", h.patient()), &[]).await;
    assert_outcome(&slow, 504);
    h.upstream.store().set_delay(Duration::ZERO);

    // Nothing listens on the port of a listener we bound and dropped.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let dead = Harness::start_with(Options {
        upstream_url: Some(format!("http://127.0.0.1:{port}/fhir")),
        ..Options::default()
    })
    .await;
    let response = get(&dead, &format!("Patient/{}", dead.patient()), &[]).await;
    assert_outcome(&response, 502);
    let record = dead.audit_records().pop().unwrap();
    assert_eq!(record.error_source.as_deref(), Some("upstream"));
    assert_eq!(record.status, 502);
    still_serving(&h).await;
}

#[tokio::test]
async fn upstream_error_bodies_are_not_passed_through() {
    let h = Harness::start().await;
    let missing = get(&h, "Patient/does-not-exist", &[]).await;
    assert_outcome(&missing, 404);
    assert_eq!(
        missing.json().unwrap()["issue"][0]["diagnostics"],
        "resource not found"
    );
    h.upstream
        .store()
        .set_failure(Some(http::StatusCode::INTERNAL_SERVER_ERROR));
    assert_outcome(
        &get(&h, &format!("Patient/{}", h.patient()), &[]).await,
        502,
    );
}

#[tokio::test]
async fn a_body_trickled_a_byte_at_a_time_gets_408_and_frees_the_connection() {
    // Found by a reliability test: heads complete, then one body byte every
    // 5 s held the connection (and a slot of the connection cap) for ever.
    let h = Harness::start_with(Options {
        limits: accord_gateway::Limits {
            body_read_timeout: Duration::from_secs(1),
            ..Options::default().limits
        },
        ..Options::default()
    })
    .await;
    let identity = &h.pki.clients["maple-primary"];
    let config = accord_testkit::client::tls_client_config(
        &h.pki.ca_cert_pem,
        Some((&identity.cert_pem, &identity.key_pem)),
    )
    .unwrap();
    let tcp = tokio::net::TcpStream::connect(h.addr()).await.unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    tls.write_all(
        b"POST /fhir/Task HTTP/1.1\r\nHost: localhost\r\nX-Purpose-Of-Use: TREAT\r\nContent-Type: application/fhir+json\r\nContent-Length: 100\r\n\r\n{",
    )
    .await
    .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the slow body held the connection");
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    let record = h.audit_records().into_iter().last().unwrap();
    assert_eq!(record.status, 408);
    still_serving(&h).await;
}
