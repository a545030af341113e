//! batch and transaction Bundles (`POST [base]`): every entry is decided on
//! its own, as if it were a separate request, through the same phases.
//!
//! - **batch**: entries run one by one through the whole pipeline (each
//!   forwarded on its own and audited on its own); refused entries answer
//!   with their own status and OperationOutcome in the batch-response.
//! - **transaction**: every entry is checked first (parse, decide, narrow,
//!   write checks; each check audited). Any refusal refuses the whole
//!   transaction with one OperationOutcome, one issue per refused entry
//!   (`Bundle.entry[i]`), and nothing is forwarded. A fully permitted
//!   transaction goes upstream as one transaction, rebuilt from the checked
//!   entries. Transactions may only create (`POST Type`) and update
//!   (`PUT Type/id`): the transaction-response carries each entry's status,
//!   location and version, not the resources (read them back to see what
//!   the agreement releases).

use accord_fhir::{BaseRewrite, FhirRequest, Interaction};
use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};
use serde_json::{Value, json};

use crate::error::GatewayError;
use crate::stages::filter::Releasable;
use crate::stages::filter::redisclosure::{NOTICE_HEADER, notice_entry};
use crate::upstream::client::UpstreamResponse;

mod run;

/// Most entries one Bundle may hold.
pub const MAX_ENTRIES: usize = 100;

/// Which kind of Bundle was posted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleKind {
    Batch,
    Transaction,
}

/// One entry's request, as the partner wrote it.
#[derive(Debug, Clone)]
pub struct EntryRequest {
    pub method: http::Method,
    /// Relative to the FHIR base (`Patient/1`, `Observation?patient=1`).
    pub url: String,
    /// The entry's resource, for POST and PUT.
    pub body: Bytes,
    /// `request.ifMatch`, sent as `If-Match` like a partner's own header.
    pub if_match: Option<String>,
    /// Why the entry is refused before it is decided (conditional
    /// interactions, which the gateway does not support).
    pub refused: Option<String>,
}

/// A posted batch or transaction.
#[derive(Debug, Clone)]
pub struct BundleRequest {
    pub kind: BundleKind,
    pub entries: Vec<EntryRequest>,
}

/// Reads a posted Bundle; anything but a batch or transaction of
/// well-formed entries is a bad request.
pub fn parse_bundle(body: &[u8]) -> Result<BundleRequest, GatewayError> {
    let bundle: Value = serde_json::from_slice(body)
        .map_err(|_| GatewayError::bad_request("the body is not a JSON Bundle"))?;
    if bundle.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return Err(GatewayError::bad_request(
            "POST to the base takes a batch or transaction Bundle",
        ));
    }
    let kind = match bundle.get("type").and_then(Value::as_str) {
        Some("batch") => BundleKind::Batch,
        Some("transaction") => BundleKind::Transaction,
        _ => {
            return Err(GatewayError::bad_request(
                "Bundle.type must be `batch` or `transaction`",
            ));
        }
    };
    let entries = bundle
        .get("entry")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if entries.len() > MAX_ENTRIES {
        return Err(GatewayError::bad_request(format!(
            "at most {MAX_ENTRIES} entries per Bundle"
        )));
    }
    let mut requests = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let bad = |why: &str| {
            GatewayError::bad_request(format!("Bundle.entry[{i}]: {why}"))
                .with_details(vec![(format!("Bundle.entry[{i}]"), why.to_owned())])
        };
        let method = match entry.pointer("/request/method").and_then(Value::as_str) {
            Some("GET") => http::Method::GET,
            Some("POST") => http::Method::POST,
            Some("PUT") => http::Method::PUT,
            Some("PATCH") => http::Method::PATCH,
            Some("DELETE") => http::Method::DELETE,
            _ => {
                return Err(bad(
                    "`request.method` must be GET, POST, PUT, PATCH or DELETE",
                ));
            }
        };
        let url = entry
            .pointer("/request/url")
            .and_then(Value::as_str)
            .map(|u| u.trim_start_matches('/'))
            .filter(|u| !u.is_empty() && !u.contains("://"))
            .ok_or_else(|| bad("`request.url` must be a URL relative to the FHIR base"))?;
        let body = match entry.get("resource") {
            Some(resource) if matches!(method, http::Method::POST | http::Method::PUT) => {
                Bytes::from(serde_json::to_vec(resource).map_err(|_| GatewayError::internal())?)
            }
            _ => Bytes::new(),
        };
        let if_match = entry
            .pointer("/request/ifMatch")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let refused = ["ifNoneExist", "ifNoneMatch", "ifModifiedSince"]
            .into_iter()
            .find(|field| entry.pointer(&format!("/request/{field}")).is_some())
            .map(|field| format!("conditional requests (`request.{field}`) are not supported"));
        requests.push(EntryRequest {
            method,
            url: url.to_owned(),
            body,
            if_match,
            refused,
        });
    }
    Ok(BundleRequest {
        kind,
        entries: requests,
    })
}

/// Why an entry cannot be part of a transaction, before it is decided.
pub fn transaction_entry_refusal(entry: &EntryRequest) -> Option<GatewayError> {
    if matches!(entry.method, http::Method::POST | http::Method::PUT) {
        None
    } else {
        Some(GatewayError::forbidden(
            "transactions may only create (POST) and update (PUT); send reads in a batch",
        ))
    }
}

/// One OperationOutcome refusing a whole transaction, an issue per refused
/// entry.
pub fn transaction_refusal(refused: &[(usize, GatewayError)]) -> GatewayError {
    let status = refused
        .first()
        .map_or(StatusCode::FORBIDDEN, |(_, e)| e.status);
    let details = refused
        .iter()
        .map(|(i, e)| (format!("Bundle.entry[{i}]"), e.message.clone()))
        .collect();
    let mut error = GatewayError::forbidden(format!(
        "the transaction is refused as a whole: {} of its entries are not permitted",
        refused.len()
    ))
    .with_details(details);
    // A transaction refused only because of bad entries is the partner's
    // bad request, not a policy refusal.
    if !status.is_server_error() {
        error.status = status;
    }
    error
}

/// The batch-response: each entry's own answer, in order.
pub fn batch_response(results: &[Result<Releasable, GatewayError>]) -> Value {
    let entries: Vec<Value> = results
        .iter()
        .map(|result| match result {
            Ok(released) => released_entry(released),
            Err(error) => json!({
                "response": {
                    "status": status_line(error.status),
                    "outcome": error.outcome().to_json(),
                }
            }),
        })
        .collect();
    let mut bundle = json!({"resourceType": "Bundle", "type": "batch-response"});
    if let (false, Some(fields)) = (entries.is_empty(), bundle.as_object_mut()) {
        fields.insert("entry".into(), Value::Array(entries));
    }
    bundle
}

fn released_entry(released: &Releasable) -> Value {
    let mut response = json!({"status": status_line(released.status)});
    copy_header(
        &released.headers,
        header::LOCATION,
        "location",
        &mut response,
    );
    copy_header(&released.headers, header::ETAG, "etag", &mut response);
    if released.headers.contains_key(NOTICE_HEADER)
        && let (Some(notice), Some(fields)) = (
            notice_entry().get("resource").cloned(),
            response.as_object_mut(),
        )
    {
        // The 42 CFR 2.32 notice a single read carries in a header travels
        // as the entry's outcome here.
        fields.insert("outcome".into(), notice);
    }
    let mut entry = json!({ "response": response });
    if !released.body.is_empty()
        && let (Ok(resource), Some(fields)) = (
            serde_json::from_slice::<Value>(&released.body),
            entry.as_object_mut(),
        )
    {
        fields.insert("resource".into(), resource);
    }
    entry
}

fn copy_header(headers: &HeaderMap, name: header::HeaderName, field: &str, out: &mut Value) {
    if let (Some(value), Some(fields)) = (
        headers.get(&name).and_then(|v| v.to_str().ok()),
        out.as_object_mut(),
    ) {
        fields.insert(field.to_owned(), value.into());
    }
}

fn status_line(status: StatusCode) -> String {
    format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    )
    .trim_end()
    .to_owned()
}

/// The transaction sent upstream, rebuilt from the checked entries (their
/// typed requests and the checked, stamped bodies).
pub fn transaction_bundle(
    prepared: &[(FhirRequest, Bytes, Option<String>)],
) -> Result<Bytes, GatewayError> {
    let mut entries = Vec::new();
    for (request, body, if_match) in prepared {
        let (method, url) = match &request.interaction {
            Interaction::Create { .. } => ("POST", request.relative_path()),
            Interaction::Update { .. } => ("PUT", request.relative_path()),
            _ => return Err(GatewayError::internal()),
        };
        let resource: Value = serde_json::from_slice(body).map_err(|_| GatewayError::internal())?;
        let mut entry_request = json!({"method": method, "url": url});
        if let (Some(if_match), Some(fields)) = (if_match, entry_request.as_object_mut()) {
            fields.insert("ifMatch".into(), if_match.clone().into());
        }
        entries.push(json!({"resource": resource, "request": entry_request}));
    }
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
    serde_json::to_vec(&bundle)
        .map(Bytes::from)
        .map_err(|_| GatewayError::internal())
}

/// The transaction-response a partner gets: per entry its status, version
/// and location (rewritten to the gateway; dropped if elsewhere), no
/// resources.
pub fn filter_transaction_response(
    upstream: UpstreamResponse,
    rewrite: &BaseRewrite,
) -> Result<Value, GatewayError> {
    if upstream.status.is_server_error() {
        return Err(GatewayError::upstream_invalid());
    }
    if upstream.status.is_client_error() {
        let mut error = GatewayError::bad_request("the FHIR server refused the transaction");
        if matches!(
            upstream.status,
            StatusCode::CONFLICT
                | StatusCode::PRECONDITION_FAILED
                | StatusCode::UNPROCESSABLE_ENTITY
        ) {
            error.status = upstream.status;
        }
        return Err(error);
    }
    let bundle: Value =
        serde_json::from_slice(&upstream.body).map_err(|_| GatewayError::upstream_invalid())?;
    if bundle.get("type").and_then(Value::as_str) != Some("transaction-response") {
        return Err(GatewayError::upstream_invalid());
    }
    let entries: Vec<Value> = bundle
        .get("entry")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|entry| {
            let mut response = serde_json::Map::new();
            for field in ["status", "etag", "lastModified"] {
                if let Some(value) = entry.pointer(&format!("/response/{field}")) {
                    response.insert(field.to_owned(), value.clone());
                }
            }
            if let Some(location) = entry
                .pointer("/response/location")
                .and_then(Value::as_str)
                .and_then(|l| {
                    if l.contains("://") {
                        rewrite.rewrite(l)
                    } else {
                        Some(l.to_owned())
                    }
                })
            {
                response.insert("location".to_owned(), location.into());
            }
            json!({ "response": response })
        })
        .collect();
    let mut out = json!({"resourceType": "Bundle", "type": "transaction-response"});
    if let (false, Some(fields)) = (entries.is_empty(), out.as_object_mut()) {
        fields.insert("entry".into(), Value::Array(entries));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_batches_and_transactions_of_relative_requests_are_read() {
        let body = br#"{"resourceType":"Bundle","type":"batch","entry":[
            {"request":{"method":"GET","url":"Patient/1"}},
            {"request":{"method":"POST","url":"Task"},"resource":{"resourceType":"Task"}}]}"#;
        let bundle = parse_bundle(body).unwrap();
        assert_eq!(bundle.kind, BundleKind::Batch);
        assert_eq!(bundle.entries.len(), 2);
        assert!(bundle.entries[0].body.is_empty());
        assert!(!bundle.entries[1].body.is_empty());
        for bad in [
            r#"{"resourceType":"Bundle","type":"searchset"}"#,
            r#"{"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"GET","url":"https://elsewhere/Patient/1"}}]}"#,
            r#"{"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"HEAD","url":"Patient/1"}}]}"#,
        ] {
            assert!(parse_bundle(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_refused_transaction_names_every_refused_entry() {
        let error = transaction_refusal(&[
            (1, GatewayError::forbidden("a")),
            (3, GatewayError::forbidden("b")),
        ]);
        let outcome = error.outcome().to_json();
        let expressions: Vec<&str> = outcome["issue"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|i| i["expression"][0].as_str())
            .collect();
        assert_eq!(expressions, ["Bundle.entry[1]", "Bundle.entry[3]"]);
    }
}
