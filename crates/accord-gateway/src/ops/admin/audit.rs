//! `/audit/*`: the privacy officer's queries on the admin listener, the
//! same as `accord audit query | disclosures | prove | verify`, answered
//! through the running gateway's own audit store (sled holds its index
//! exclusively, so a second handle is not an option). The query and report
//! code is `accord_audit`'s, shared with the CLI.

use std::collections::BTreeMap;
use std::sync::Arc;

use accord_audit::query::{FilterText, Known, checked, is_patient_reference, parse_time};
use accord_audit::report::{accounting, table};
use accord_audit::{AuditError, AuditStore, Checkpoint, IndexError, VerifyOptions, proof, verify};
use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::Full;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::json_response;

/// Query parameters each endpoint accepts; anything else is a 400, so a
/// misspelled filter never widens an answer silently.
const QUERY_PARAMS: &[&str] = &[
    "patient",
    "partner",
    "agreement",
    "purpose",
    "decision",
    "since",
    "until",
    "limit",
    "format",
];
const DISCLOSURE_PARAMS: &[&str] = &["patient", "since", "format"];

/// A 4xx/5xx answer: status and a message for the JSON `error` field.
#[derive(Debug)]
struct Failure(StatusCode, String);

impl Failure {
    fn bad(message: impl Into<String>) -> Self {
        Failure(StatusCode::BAD_REQUEST, message.into())
    }
}

impl From<IndexError> for Failure {
    fn from(e: IndexError) -> Self {
        match e {
            IndexError::Busy => Failure(
                StatusCode::SERVICE_UNAVAILABLE,
                "the audit index is lent to an `accord audit` tool; retry in a moment".into(),
            ),
            e => Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        }
    }
}

impl From<AuditError> for Failure {
    fn from(e: AuditError) -> Self {
        Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

/// Whether `path` is one of ours.
pub(crate) fn is_audit_path(path: &str) -> bool {
    matches!(
        path,
        "/audit/query"
            | "/audit/disclosures"
            | "/audit/checkpoint"
            | "/audit/prove"
            | "/audit/verify"
    )
}

/// Answers a GET on one of the `/audit/*` paths.
pub(crate) async fn handle(
    store: Option<&Arc<AuditStore>>,
    path: &str,
    query: Option<&str>,
) -> Response<Full<Bytes>> {
    let Some(store) = store.cloned() else {
        return error(Failure(
            StatusCode::SERVICE_UNAVAILABLE,
            "this admin listener has no audit store to query".into(),
        ));
    };
    let params = match params(query) {
        Ok(params) => params,
        Err(failure) => return error(failure),
    };
    let path = path.to_owned();
    tracing::info!(endpoint = %path, "admin audit request");
    // Index reads, log scans and fsyncs: off the async threads.
    let answered = tokio::task::spawn_blocking(move || answer(&store, &path, &params)).await;
    match answered {
        Ok(Ok(response)) => response,
        Ok(Err(failure)) => error(failure),
        Err(_) => error(Failure(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the audit query failed".into(),
        )),
    }
}

fn answer(
    store: &AuditStore,
    path: &str,
    params: &BTreeMap<String, String>,
) -> Result<Response<Full<Bytes>>, Failure> {
    match path {
        "/audit/query" => audit_query(store, params),
        "/audit/disclosures" => disclosures(store, params),
        "/audit/checkpoint" => {
            only(params, &[])?;
            checkpoint(store)
        }
        "/audit/prove" => {
            only(params, &["seq"])?;
            prove(store, params)
        }
        "/audit/verify" => {
            only(params, &[])?;
            run_verify(store)
        }
        _ => Err(Failure(StatusCode::NOT_FOUND, "not found".into())),
    }
}

/// Decoded query parameters; a repeated one is refused (which of two
/// patients was meant?).
fn params(query: Option<&str>) -> Result<BTreeMap<String, String>, Failure> {
    let mut out = BTreeMap::new();
    for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if out.insert(name.to_string(), value.to_string()).is_some() {
            return Err(Failure::bad(format!("`{name}` is given more than once")));
        }
    }
    Ok(out)
}

fn only(params: &BTreeMap<String, String>, allowed: &[&str]) -> Result<(), Failure> {
    match params.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(unknown) => Err(Failure::bad(format!(
            "unknown parameter `{unknown}`; this endpoint takes {}",
            if allowed.is_empty() {
                "none".to_owned()
            } else {
                allowed.join(", ")
            }
        ))),
        None => Ok(()),
    }
}

fn format<'a>(params: &'a BTreeMap<String, String>, allowed: &[&str]) -> Result<&'a str, Failure> {
    let format = params.get("format").map_or("json", String::as_str);
    if allowed.contains(&format) {
        Ok(format)
    } else {
        Err(Failure::bad(format!(
            "`format` must be one of {}, not `{format}`",
            allowed.join(", ")
        )))
    }
}

fn audit_query(
    store: &AuditStore,
    params: &BTreeMap<String, String>,
) -> Result<Response<Full<Bytes>>, Failure> {
    only(params, QUERY_PARAMS)?;
    let format = format(params, &["json", "csv"])?;
    let limit = params
        .get("limit")
        .map(|l| {
            l.parse::<usize>()
                .map_err(|_| Failure::bad(format!("`limit` must be a number, not `{l}`")))
        })
        .transpose()?;
    let text = FilterText {
        patient: params.get("patient").cloned(),
        partner: params.get("partner").cloned(),
        agreement: params.get("agreement").cloned(),
        purpose: params.get("purpose").cloned(),
        decision: params.get("decision").cloned(),
        since: params.get("since").cloned(),
        until: params.get("until").cloned(),
        limit,
    };
    let filter = text
        .parse(OffsetDateTime::now_utc())
        .map_err(|e| Failure::bad(e.to_string()))?;
    let known = store.with_index(Known::from_index)?;
    filter
        .check_known(&known)
        .map_err(|e| Failure::bad(e.to_string()))?;
    // Checked against the signed checkpoints: the answer holds every
    // record, `warnings` names any that do not match.
    let answer = store.with_index(|index| checked(index, &filter))?;
    let records = answer.records;
    Ok(match format {
        "csv" => body(
            StatusCode::OK,
            "text/csv; charset=utf-8",
            table::to_csv(&records),
        ),
        _ => json_response(
            StatusCode::OK,
            &json!({"count": records.len(), "records": records, "warnings": answer.warnings}),
        ),
    })
}

fn disclosures(
    store: &AuditStore,
    params: &BTreeMap<String, String>,
) -> Result<Response<Full<Bytes>>, Failure> {
    only(params, DISCLOSURE_PARAMS)?;
    let format = format(params, &["json", "csv", "html", "text"])?;
    let patient = params
        .get("patient")
        .ok_or_else(|| Failure::bad("`patient` is required (`Patient/<id>`)"))?;
    if !is_patient_reference(patient) {
        return Err(Failure::bad(format!(
            "`patient` must be a reference `Patient/<id>`, not `{patient}`"
        )));
    }
    let now = OffsetDateTime::now_utc();
    let since = params
        .get("since")
        .map(|t| parse_time(t, now))
        .transpose()
        .map_err(|e| Failure::bad(format!("`since`: {e}")))?;
    let report = store.with_index(|index| accounting(index, patient, since, now))?;
    Ok(match format {
        "csv" => body(StatusCode::OK, "text/csv; charset=utf-8", report.to_csv()),
        "html" => body(StatusCode::OK, "text/html; charset=utf-8", report.to_html()),
        "text" => body(
            StatusCode::OK,
            "text/plain; charset=utf-8",
            report.to_text(),
        ),
        _ => json_response(
            StatusCode::OK,
            &serde_json::to_value(&report).unwrap_or_default(),
        ),
    })
}

fn latest_checkpoint(store: &AuditStore) -> Result<(String, Checkpoint), Failure> {
    let path = store
        .dir()
        .join(accord_audit::store::LATEST_CHECKPOINT_FILE);
    let note = match std::fs::read_to_string(&path) {
        Ok(note) => note,
        // Nothing signed yet: sign now.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => store.checkpoint()?,
        Err(e) => {
            return Err(Failure(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("read {}: {e}", path.display()),
            ));
        }
    };
    let checkpoint = store
        .verifier()
        .open(&note)
        .map_err(|e| Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok((note, checkpoint))
}

fn checkpoint(store: &AuditStore) -> Result<Response<Full<Bytes>>, Failure> {
    let (note, cp) = latest_checkpoint(store)?;
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "origin": cp.origin,
            "size": cp.size,
            "root": cp.root.to_hex(),
            "note": note,
            "key": store.verifier().encode(),
        }),
    ))
}

fn prove(
    store: &AuditStore,
    params: &BTreeMap<String, String>,
) -> Result<Response<Full<Bytes>>, Failure> {
    let seq = params
        .get("seq")
        .ok_or_else(|| Failure::bad("`seq` is required"))?;
    let seq: u64 = seq
        .parse()
        .ok()
        .filter(|s| *s > 0)
        .ok_or_else(|| Failure::bad(format!("`seq` must be a record number, not `{seq}`")))?;
    if !store
        .dir()
        .join(accord_audit::store::LATEST_CHECKPOINT_FILE)
        .exists()
    {
        // Nothing signed yet (a young log): sign now.
        store.checkpoint()?;
    }
    let proof = match proof::prove(store.dir(), seq) {
        // Written after the last checkpoint: sign one now and prove again.
        Err(AuditError::NotCovered { .. }) => {
            store.checkpoint()?;
            proof::prove(store.dir(), seq)
        }
        other => other,
    };
    match proof {
        Ok(proof) => Ok(json_response(
            StatusCode::OK,
            &serde_json::to_value(&proof).unwrap_or_default(),
        )),
        Err(AuditError::NotCovered { size, .. }) => Err(Failure(
            StatusCode::NOT_FOUND,
            format!("record {seq} is not in the log (it holds {size} records)"),
        )),
        Err(e) => Err(e.into()),
    }
}

fn run_verify(store: &AuditStore) -> Result<Response<Full<Bytes>>, Failure> {
    let report = verify(store.dir(), store.verifier(), &VerifyOptions::default())?;
    let problems: Vec<Value> = report
        .problems
        .iter()
        .map(|p| Value::String(p.to_string()))
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "ok": report.is_ok(),
            "records": report.records,
            "segments": report.segments,
            "root": report.root.to_hex(),
            "checkpoints": report.checkpoints,
            "signed_size": report.signed_size,
            "torn_tail": report.torn_tail.as_ref().map(|t| json!({
                "segment": t.segment.display().to_string(),
                "offset": t.offset,
                "bytes": t.bytes,
            })),
            "problems": problems,
        }),
    ))
}

fn body(status: StatusCode, content_type: &'static str, text: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    response
}

fn error(Failure(status, message): Failure) -> Response<Full<Bytes>> {
    json_response(status, &json!({"error": message}))
}
