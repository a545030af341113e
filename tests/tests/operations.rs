//! Running it like infrastructure: the admin listener (auth, probes,
//! metrics, policy and TLS reloads), graceful shutdown with requests in
//! flight, certificate rotation without a restart.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)] // test code: a panic is a failed test

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use accord_e2e::Harness;
use accord_gateway::config::AdminConfig;
use accord_gateway::ops::admin::{AdminServer, AdminState};
use accord_gateway::ops::watch::FileWatch;
use accord_testkit::client::{PartnerClient, PartnerResponse};
use accord_testkit::pki::DevPki;
use http::Method;

const TOKEN: &str = "test-admin-token-0123456789";

/// An admin listener for `h` on a free loopback port.
async fn admin(h: &Harness, open_probes: bool) -> AdminServer {
    AdminServer::start(loopback(), admin_state(h, open_probes))
        .await
        .unwrap()
}

fn admin_state(h: &Harness, open_probes: bool) -> AdminState {
    let token_file = h.dir.path().join("admin.token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let config = AdminConfig {
        enabled: true,
        listen: loopback(),
        token_file: Some(token_file),
        open_probes,
    };
    AdminState::new(
        &h.gateway,
        &config,
        h.dir.path().join("policies"),
        Some(h.audit_dir.clone()),
    )
    .unwrap()
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

async fn call(
    admin: &AdminServer,
    method: Method,
    path: &str,
    token: Option<&str>,
) -> PartnerResponse {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = bearer
        .as_deref()
        .map(|b| vec![("Authorization", b)])
        .unwrap_or_default();
    PartnerClient::plaintext()
        .send(
            method,
            &format!("http://{}{path}", admin.local_addr()),
            &headers,
            None,
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn every_admin_endpoint_but_open_probes_needs_the_token() {
    let h = Harness::start().await;
    let admin = admin(&h, true).await;
    for (method, path) in [
        (Method::GET, "/metrics"),
        (Method::GET, "/policies"),
        (Method::POST, "/policies/reload"),
        (Method::POST, "/tls/reload"),
    ] {
        let anonymous = call(&admin, method.clone(), path, None).await;
        assert_eq!(anonymous.status, 401, "{path} without a token");
        assert!(anonymous.header("www-authenticate").is_some());
        let wrong = call(
            &admin,
            method.clone(),
            path,
            Some("test-admin-token-0123456780"),
        )
        .await;
        assert_eq!(wrong.status, 401, "{path} with the wrong token");
        let right = call(&admin, method, path, Some(TOKEN)).await;
        assert_eq!(right.status, 200, "{path}: {}", right.text());
    }
    assert_eq!(
        call(&admin, Method::GET, "/healthz", None).await.status,
        200
    );
    assert_eq!(call(&admin, Method::GET, "/readyz", None).await.status, 200);
    assert_eq!(
        call(&admin, Method::GET, "/nope", Some(TOKEN)).await.status,
        404
    );
    assert_eq!(
        call(&admin, Method::DELETE, "/metrics", Some(TOKEN))
            .await
            .status,
        405
    );

    let closed = self::admin(&h, false).await;
    for path in ["/healthz", "/readyz"] {
        assert_eq!(
            call(&closed, Method::GET, path, None).await.status,
            401,
            "{path}"
        );
        assert_eq!(
            call(&closed, Method::GET, path, Some(TOKEN)).await.status,
            200,
            "{path}"
        );
    }
}

#[tokio::test]
async fn an_admin_api_without_a_token_file_refuses_everyone() {
    let h = Harness::start().await;
    let mut state = admin_state(&h, true);
    state.token = None;
    let admin = AdminServer::start(loopback(), state).await.unwrap();
    assert_eq!(
        call(&admin, Method::GET, "/metrics", Some(TOKEN))
            .await
            .status,
        401
    );
    assert_eq!(
        call(&admin, Method::GET, "/healthz", None).await.status,
        200
    );
}

#[tokio::test]
async fn readiness_checks_policies_audit_and_upstream() {
    let h = Harness::start().await;
    let admin = admin(&h, true).await;
    let ready = call(&admin, Method::GET, "/readyz", None).await;
    assert_eq!(ready.status, 200, "{}", ready.text());
    let body = ready.json().unwrap();
    assert_eq!(body["ready"], true);
    for check in ["policies", "audit", "upstream"] {
        assert_eq!(body["checks"][check]["ok"], true, "{check}: {body}");
    }

    let mut state = admin_state(&h, true);
    state.upstream_url = "http://127.0.0.1:1/fhir".to_owned();
    let unreachable = AdminServer::start(loopback(), state).await.unwrap();
    let not_ready = call(&unreachable, Method::GET, "/readyz", None).await;
    assert_eq!(not_ready.status, 503, "{}", not_ready.text());
    let body = not_ready.json().unwrap();
    assert_eq!(body["checks"]["upstream"]["ok"], false, "{body}");
    assert_eq!(body["checks"]["audit"]["ok"], true, "{body}");
}

#[tokio::test]
async fn readiness_fails_after_an_audit_append_fails() {
    let h = Harness::start_with(accord_e2e::Options {
        audit_on_full_disk: true,
        ..accord_e2e::Options::default()
    })
    .await;
    let admin = admin(&h, true).await;
    let refused = h
        .client("maple-primary")
        .get(&h.url(&format!("Patient/{}", h.patient())), "TREAT")
        .await
        .unwrap();
    assert_eq!(refused.status, 503);
    let ready = call(&admin, Method::GET, "/readyz", None).await;
    assert_eq!(ready.status, 503, "{}", ready.text());
    assert_eq!(ready.json().unwrap()["checks"]["audit"]["ok"], false);
    let metrics = call(&admin, Method::GET, "/metrics", Some(TOKEN))
        .await
        .text();
    assert!(
        metrics.contains("accord_audit_append_failures_total 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn metrics_count_requests_by_partner_purpose_decision_and_status() {
    let h = Harness::start().await;
    let admin = admin(&h, true).await;
    let url = h.url(&format!("Patient/{}", h.patient()));
    for _ in 0..2 {
        let ok = h.client("maple-primary").get(&url, "TREAT").await.unwrap();
        assert_eq!(ok.status, 200);
    }
    let denied = h.client("maple-primary").get(&url, "HPAYMT").await.unwrap();
    assert_eq!(denied.status, 403);
    let anonymous = h.anonymous_client().get(&url, "TREAT").await.unwrap();
    assert_eq!(anonymous.status, 401);

    let response = call(&admin, Method::GET, "/metrics", Some(TOKEN)).await;
    assert_eq!(response.status, 200);
    assert!(
        response
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/plain; version=0.0.4"))
    );
    let text = response.text();
    for line in [
        "accord_requests_total{partner=\"maple-primary\",purpose=\"TREAT\",decision=\"permit\",status=\"200\"} 2",
        "accord_requests_total{partner=\"maple-primary\",purpose=\"HPAYMT\",decision=\"deny\",status=\"403\"} 1",
        "accord_requests_total{partner=\"\",purpose=\"\",decision=\"refuse\",status=\"401\"} 1",
        "accord_phase_duration_seconds_count{phase=\"total\"} 4",
        "accord_phase_duration_seconds_count{phase=\"upstream\"} 2",
        "accord_phase_duration_seconds_count{phase=\"audit\"} 4",
        "accord_audit_appends_in_flight 0",
        "# TYPE accord_phase_duration_seconds histogram",
    ] {
        assert!(text.contains(line), "missing `{line}` in\n{text}");
    }
    assert!(text.contains("accord_build_info{version=\""));
    assert!(text.contains("accord_policy_info{version=\"sha256:"));
    assert!(!text.contains(&h.patient()), "no patient ids in metrics");
}

#[tokio::test]
async fn a_policy_reload_applies_a_good_set_and_keeps_the_last_good_one_on_errors() {
    let h = Harness::start().await;
    let admin = admin(&h, true).await;
    let before = call(&admin, Method::GET, "/policies", Some(TOKEN))
        .await
        .json()
        .unwrap();

    let applied = call(&admin, Method::POST, "/policies/reload", Some(TOKEN)).await;
    assert_eq!(applied.status, 200, "{}", applied.text());
    assert_eq!(applied.json().unwrap()["version"], before["version"]);

    let broken = h.dir.path().join("policies/agreements/broken.toml");
    std::fs::write(&broken, "id = \"broken\"\nversion = \"not a number\"\n").unwrap();
    let refused = call(&admin, Method::POST, "/policies/reload", Some(TOKEN)).await;
    assert_eq!(refused.status, 422, "{}", refused.text());
    let body = refused.json().unwrap();
    assert_eq!(body["reloaded"], false);
    assert!(
        body["errors"].as_str().unwrap().contains("broken.toml"),
        "{body}"
    );
    assert_eq!(
        body["version"], before["version"],
        "the last good set stays"
    );

    let still = h
        .client("maple-primary")
        .get(&h.url(&format!("Patient/{}", h.patient())), "TREAT")
        .await
        .unwrap();
    assert_eq!(still.status, 200);
    let metrics = call(&admin, Method::GET, "/metrics", Some(TOKEN))
        .await
        .text();
    assert!(
        metrics.contains("accord_policy_reloads_total{result=\"ok\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("accord_policy_reloads_total{result=\"failed\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn shutdown_stops_accepting_and_lets_requests_in_flight_finish() {
    let h = Harness::start().await;
    h.upstream.store().set_delay(Duration::from_millis(800));
    let url = h.url(&format!("Patient/{}", h.patient()));
    let client = h.client("maple-primary");
    let in_flight = tokio::spawn({
        let url = url.clone();
        async move { client.get(&url, "TREAT").await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    let addr = h.addr();
    // Move the server out; the rest of `h` keeps the upstream, certificates
    // and audit log alive.
    let gateway = h.gateway;
    let pki = &h.pki;
    let shutdown = tokio::spawn(gateway.shutdown(Duration::from_secs(5)));
    tokio::time::sleep(Duration::from_millis(100)).await;

    let late = PartnerClient::new(
        &pki.ca_cert_pem,
        Some((
            &pki.clients["maple-primary"].cert_pem,
            &pki.clients["maple-primary"].key_pem,
        )),
    )
    .unwrap()
    .get(
        &format!("https://localhost:{}/fhir/metadata", addr.port()),
        "TREAT",
    )
    .await;
    assert!(late.is_err(), "the listener no longer accepts: {late:?}");

    let response = in_flight.await.unwrap().unwrap();
    assert_eq!(response.status, 200, "the request in flight completes");
    shutdown.await.unwrap();
    let records = accord_audit::read_records(&h.audit_dir).unwrap();
    assert_eq!(records.len(), 1, "the drained request was audited");
}

#[tokio::test]
async fn a_rotated_server_certificate_is_presented_to_new_connections() {
    let h = Harness::start().await;
    let admin = admin(&h, true).await;
    let url = h.url(&format!("Patient/{}", h.patient()));
    let partner = &h.pki.clients["maple-primary"];
    let identity = Some((partner.cert_pem.as_str(), partner.key_pem.as_str()));

    // A new server certificate from another CA: clients trusting only the
    // new CA can tell which certificate they were shown.
    let rotated = DevPki::generate(&["localhost", "127.0.0.1"], &[]).unwrap();
    let trusts_new = PartnerClient::new(&rotated.ca_cert_pem, identity).unwrap();
    let trusts_old = h.client("maple-primary");
    assert!(trusts_new.get(&url, "TREAT").await.is_err());

    // Load while rotating: requests keep being served throughout.
    let load = tokio::spawn({
        let url = url.clone();
        let client = h.client("maple-primary");
        let both = PartnerClient::new(
            &format!("{}{}", h.pki.ca_cert_pem, rotated.ca_cert_pem),
            identity,
        )
        .unwrap();
        async move {
            let mut served = 0;
            for _ in 0..20 {
                let response = both.get(&url, "TREAT").await.unwrap();
                assert_eq!(response.status, 200);
                served += 1;
            }
            drop(client);
            served
        }
    });

    let pki_dir = h.dir.path().join("pki");
    std::fs::write(pki_dir.join("server.pem"), &rotated.server.cert_pem).unwrap();
    std::fs::write(pki_dir.join("server.key"), &rotated.server.key_pem).unwrap();
    let reload = call(&admin, Method::POST, "/tls/reload", Some(TOKEN)).await;
    assert_eq!(reload.status, 200, "{}", reload.text());

    let response = trusts_new.get(&url, "TREAT").await.unwrap();
    assert_eq!(response.status, 200, "the new certificate, same partner CA");
    assert!(
        trusts_old.get(&url, "TREAT").await.is_err(),
        "the old one is gone"
    );
    assert_eq!(load.await.unwrap(), 20);

    // A broken file is refused and the certificate in force stays.
    std::fs::write(pki_dir.join("server.pem"), "not pem").unwrap();
    let refused = call(&admin, Method::POST, "/tls/reload", Some(TOKEN)).await;
    assert_eq!(refused.status, 422, "{}", refused.text());
    assert_eq!(trusts_new.get(&url, "TREAT").await.unwrap().status, 200);
}

/// `/audit/*` on the admin listener: the CLI's queries through the running
/// gateway's own audit store.
#[tokio::test]
async fn the_admin_api_answers_audit_queries_from_the_running_gateway() {
    let h = Harness::start().await;
    let admin = AdminServer::start(
        loopback(),
        admin_state(&h, true).with_audit_store(h.audit.clone()),
    )
    .await
    .unwrap();
    let patient = h.patient();
    let other = accord_testkit::population::patient_id(2);
    let client = h.client("maple-primary");
    let mut receipts = Vec::new();
    for _ in 0..2 {
        let read = client
            .get(&h.url(&format!("Patient/{patient}")), "TREAT")
            .await
            .unwrap();
        assert_eq!(read.status, 200);
        receipts.push(read.header("x-audit-seq").unwrap().parse::<u64>().unwrap());
    }
    let elsewhere = client
        .get(&h.url(&format!("Patient/{other}")), "TREAT")
        .await
        .unwrap();
    assert_eq!(elsewhere.status, 200);

    let by_patient = format!("/audit/query?patient=Patient%2F{patient}");
    assert_eq!(
        call(&admin, Method::GET, &by_patient, None).await.status,
        401,
        "audit queries need the token"
    );
    let answer = call(&admin, Method::GET, &by_patient, Some(TOKEN)).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let body = answer.json().unwrap();
    let seqs: Vec<u64> = body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, receipts, "exactly the patient's records: {body}");
    assert_eq!(body["count"], 2);

    let csv = call(
        &admin,
        Method::GET,
        &format!("/audit/query?patient=Patient/{patient}&decision=permit&since=1h&format=csv"),
        Some(TOKEN),
    )
    .await;
    assert_eq!(csv.status, 200, "{}", csv.text());
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    let text = csv.text();
    assert_eq!(text.lines().count(), 3, "header and two rows: {text}");
    assert!(text.starts_with("seq,time,partner"), "{text}");

    let disclosures = call(
        &admin,
        Method::GET,
        &format!("/audit/disclosures?patient=Patient/{patient}&since=6y&format=csv"),
        Some(TOKEN),
    )
    .await;
    assert_eq!(disclosures.status, 200, "{}", disclosures.text());
    let text = disclosures.text();
    let rows: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{text}");
    for (row, seq) in rows.iter().zip(&receipts) {
        assert!(row.contains("maple-primary"), "{row}");
        assert!(row.contains(&format!(",{seq},")), "record {seq} in {row}");
    }

    for bad in [
        "/audit/query?decision=maybe",
        "/audit/query?since=last-tuesday",
        "/audit/query?patinet=Patient/1",
        "/audit/query?format=xml",
        "/audit/query?limit=ten",
        "/audit/query?patient=Patient/1&patient=Patient/2",
        "/audit/disclosures?since=6y",
        "/audit/disclosures?patient=123",
        "/audit/prove?seq=zero",
    ] {
        let refused = call(&admin, Method::GET, bad, Some(TOKEN)).await;
        assert_eq!(refused.status, 400, "{bad}: {}", refused.text());
        let error = refused.json().unwrap()["error"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(!error.is_empty(), "{bad}");
    }

    let proof = call(
        &admin,
        Method::GET,
        &format!("/audit/prove?seq={}", receipts[0]),
        Some(TOKEN),
    )
    .await;
    assert_eq!(proof.status, 200, "{}", proof.text());
    let proof: accord_audit::InclusionProof = serde_json::from_slice(&proof.body).unwrap();
    let checkpoint = call(&admin, Method::GET, "/audit/checkpoint", Some(TOKEN))
        .await
        .json()
        .unwrap();
    let key = accord_audit::Verifier::parse(checkpoint["key"].as_str().unwrap()).unwrap();
    let signed = accord_audit::proof::check(&proof, &key).unwrap();
    assert!(signed.size >= receipts[0]);
    assert!(checkpoint["size"].as_u64().unwrap() >= 3, "{checkpoint}");
    assert_eq!(
        call(&admin, Method::GET, "/audit/prove?seq=999", Some(TOKEN))
            .await
            .status,
        404
    );

    let verified = call(&admin, Method::GET, "/audit/verify", Some(TOKEN)).await;
    assert_eq!(verified.status, 200, "{}", verified.text());
    let report = verified.json().unwrap();
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["records"], 3, "{report}");
    assert_eq!(
        call(&admin, Method::POST, "/audit/verify", Some(TOKEN))
            .await
            .status,
        405
    );
}

/// Polls `check` every 50 ms until it holds; fails after 20 s. A deadline
/// for a background reload, not a timing assertion.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "still not the case after 20 s: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Writes `path` whole through a rename, as operators are told to.
fn replace_file(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("tmp-write");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[tokio::test]
async fn an_edited_agreement_is_put_in_force_by_the_file_watch() {
    let h = Harness::start().await;
    let state = admin_state(&h, true);
    let admin = AdminServer::start(loopback(), state.clone()).await.unwrap();
    let _watch = FileWatch::start(state, Duration::from_millis(100))
        .unwrap()
        .unwrap();
    let url = h.url(&format!("Patient/{}", h.patient()));
    let client = h.client("maple-primary");
    assert_eq!(client.get(&url, "TREAT").await.unwrap().status, 200);

    let care = h.dir.path().join("policies/agreements/care.toml");
    let text = std::fs::read_to_string(&care).unwrap();
    assert!(text.contains("status = \"active\""));
    replace_file(
        &care,
        &text.replace("status = \"active\"", "status = \"suspended\""),
    );
    eventually("the suspended agreement refuses reads", || async {
        client.get(&url, "TREAT").await.unwrap().status == 403
    })
    .await;
    let reloads = call(&admin, Method::GET, "/reloads", Some(TOKEN))
        .await
        .json()
        .unwrap();
    assert_eq!(reloads["policies"]["last_reload"]["ok"], true, "{reloads}");
    assert_eq!(
        reloads["policies"]["last_reload"]["trigger"], "watch",
        "{reloads}"
    );
}

#[tokio::test]
async fn a_broken_policy_file_is_refused_by_the_file_watch_and_the_last_good_set_stays() {
    let h = Harness::start().await;
    let state = admin_state(&h, true);
    let admin = AdminServer::start(loopback(), state.clone()).await.unwrap();
    let _watch = FileWatch::start(state, Duration::from_millis(100))
        .unwrap()
        .unwrap();
    let before = call(&admin, Method::GET, "/policies", Some(TOKEN))
        .await
        .json()
        .unwrap();

    let broken = h.dir.path().join("policies/agreements/broken.toml");
    replace_file(&broken, "id = \"broken\"\nversion = \"not a number\"\n");
    eventually("the admin API reports the refused set", || async {
        let body = call(&admin, Method::GET, "/policies", Some(TOKEN))
            .await
            .json()
            .unwrap();
        body["last_reload"]["ok"] == false
    })
    .await;
    let policies = call(&admin, Method::GET, "/policies", Some(TOKEN))
        .await
        .json()
        .unwrap();
    let error = policies["last_reload"]["error"].as_str().unwrap();
    assert!(error.contains("broken.toml"), "{policies}");
    assert_eq!(
        policies["version"], before["version"],
        "the last good set stays"
    );
    let still = h
        .client("maple-primary")
        .get(&h.url(&format!("Patient/{}", h.patient())), "TREAT")
        .await
        .unwrap();
    assert_eq!(still.status, 200);
    let metrics = call(&admin, Method::GET, "/metrics", Some(TOKEN))
        .await
        .text();
    assert!(
        metrics.contains("accord_policy_reloads_total{result=\"failed\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn replaced_server_certificate_files_are_picked_up_by_the_file_watch() {
    let h = Harness::start().await;
    let state = admin_state(&h, true);
    let admin = AdminServer::start(loopback(), state.clone()).await.unwrap();
    let _watch = FileWatch::start(state, Duration::from_millis(100))
        .unwrap()
        .unwrap();
    let url = h.url(&format!("Patient/{}", h.patient()));
    let partner = &h.pki.clients["maple-primary"];
    let identity = Some((partner.cert_pem.as_str(), partner.key_pem.as_str()));
    let rotated = DevPki::generate(&["localhost", "127.0.0.1"], &[]).unwrap();
    let trusts_new = PartnerClient::new(&rotated.ca_cert_pem, identity).unwrap();
    assert!(trusts_new.get(&url, "TREAT").await.is_err());

    let pki_dir = h.dir.path().join("pki");
    replace_file(&pki_dir.join("server.key"), &rotated.server.key_pem);
    replace_file(&pki_dir.join("server.pem"), &rotated.server.cert_pem);
    eventually("new connections are shown the new certificate", || async {
        trusts_new
            .get(&url, "TREAT")
            .await
            .is_ok_and(|r| r.status == 200)
    })
    .await;
    assert!(h.client("maple-primary").get(&url, "TREAT").await.is_err());
    let reloads = call(&admin, Method::GET, "/reloads", Some(TOKEN))
        .await
        .json()
        .unwrap();
    assert_eq!(
        reloads["tls"]["last_reload"]["trigger"], "watch",
        "{reloads}"
    );

    // A broken file is refused; the certificate in force stays.
    replace_file(&pki_dir.join("server.pem"), "not pem");
    eventually("the refused TLS reload is reported", || async {
        let body = call(&admin, Method::GET, "/reloads", Some(TOKEN))
            .await
            .json()
            .unwrap();
        body["tls"]["last_reload"]["ok"] == false
    })
    .await;
    assert_eq!(trusts_new.get(&url, "TREAT").await.unwrap().status, 200);
    let metrics = call(&admin, Method::GET, "/metrics", Some(TOKEN))
        .await
        .text();
    assert!(
        metrics.contains("accord_tls_reloads_total{result=\"failed\"}"),
        "{metrics}"
    );
}
