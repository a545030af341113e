//! `accord demo --upstream URL`: put the demo population into a real FHIR
//! server (sekmet, HAPI, …) instead of the in-memory one.
//!
//! Resources go as FHIR transaction Bundles of `PUT [type]/[id]` entries,
//! so ids are kept (the tour and the example cohorts name patients by id)
//! and a second run updates instead of duplicating. Chunks keep each
//! Bundle small enough for servers with request-size limits.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

/// Entries per transaction Bundle.
const CHUNK: usize = 200;
/// A transaction of `CHUNK` resources on a small server takes seconds.
const TIMEOUT: Duration = Duration::from_secs(60);
/// Enough for any transaction-response; more means a misbehaving server.
const MAX_RESPONSE: usize = 16 << 20;

/// Loads `resources` into the FHIR server at `base`. Returns how many.
pub async fn load_into(base: &str, resources: &[Value]) -> anyhow::Result<usize> {
    let base = base.trim_end_matches('/');
    let uri: Uri = base
        .parse()
        .map_err(|_| anyhow::anyhow!("--upstream `{base}` is not a URL"))?;
    let tls = accord_gateway::tls::upstream_client_config(None)?;
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .build();
    let client = Client::builder(TokioExecutor::new()).build(connector);
    let mut loaded = 0;
    for chunk in resources.chunks(CHUNK) {
        let bundle = transaction(chunk);
        let body = Bytes::from(serde_json::to_vec(&bundle)?);
        let request = Request::post(uri.clone())
            .header(header::CONTENT_TYPE, "application/fhir+json")
            .header(header::ACCEPT, "application/fhir+json")
            .body(Full::new(body))?;
        let exchange = async {
            let response = client.request(request).await?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_RESPONSE)
                .collect()
                .await
                .map_err(|e| anyhow::anyhow!("reading the answer: {e}"))?
                .to_bytes();
            anyhow::Ok((status, body))
        };
        let (status, body) = tokio::time::timeout(TIMEOUT, exchange)
            .await
            .map_err(|_| anyhow::anyhow!("{base} did not answer within {TIMEOUT:?}"))??;
        check_answer(base, status, &body)?;
        loaded += chunk.len();
    }
    Ok(loaded)
}

/// A transaction Bundle that puts every resource under its own id.
fn transaction(resources: &[Value]) -> Value {
    let entries: Vec<Value> = resources
        .iter()
        .filter_map(|resource| {
            let rtype = resource.get("resourceType")?.as_str()?;
            let id = resource.get("id")?.as_str()?;
            Some(json!({
                "resource": resource,
                "request": {"method": "PUT", "url": format!("{rtype}/{id}")},
            }))
        })
        .collect();
    json!({"resourceType": "Bundle", "type": "transaction", "entry": entries})
}

/// A transaction either succeeds as a whole or the server says why.
fn check_answer(base: &str, status: StatusCode, body: &[u8]) -> anyhow::Result<()> {
    if status.is_success() {
        return Ok(());
    }
    let detail = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|outcome| {
            let issues = outcome.get("issue")?.as_array()?;
            let texts: Vec<String> = issues
                .iter()
                .filter_map(|issue| {
                    issue
                        .get("diagnostics")
                        .or_else(|| issue.get("details")?.get("text"))
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
                .collect();
            Some(texts.join("; "))
        })
        .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(300).collect());
    anyhow::bail!("{base} refused the demo data ({status}): {detail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_resource_is_put_under_its_own_id() {
        let bundle = transaction(&[
            json!({"resourceType": "Patient", "id": "pat-0001"}),
            json!({"resourceType": "Observation", "id": "obs-1", "status": "final"}),
        ]);
        assert_eq!(bundle["type"], "transaction");
        assert_eq!(bundle["entry"][0]["request"]["method"], "PUT");
        assert_eq!(bundle["entry"][0]["request"]["url"], "Patient/pat-0001");
        assert_eq!(bundle["entry"][1]["request"]["url"], "Observation/obs-1");
        assert_eq!(bundle["entry"][1]["resource"]["status"], "final");
    }

    #[test]
    fn a_refusal_names_the_servers_reason() {
        let outcome = json!({"resourceType": "OperationOutcome", "issue": [
            {"severity": "error", "code": "invalid", "diagnostics": "bad Patient.gender"}
        ]});
        let err = check_answer(
            "http://fhir.example/fhir",
            StatusCode::BAD_REQUEST,
            &serde_json::to_vec(&outcome).unwrap(),
        )
        .unwrap_err();
        let message = err.to_string();
        assert!(message.contains("400"), "{message}");
        assert!(message.contains("bad Patient.gender"), "{message}");
    }
}
