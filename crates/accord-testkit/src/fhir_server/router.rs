//! Maps an HTTP request to a FHIR interaction and runs it.

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde_json::{Value, json};

use super::outcome::{FHIR_JSON, FhirError, json_response};
use super::store::{RecordedRequest, StoreError, valid_id};
use super::{ServerState, capability, params, search};

/// Largest request body accepted.
const BODY_LIMIT: usize = 8 * 1024 * 1024;

/// Handles one request; never fails (errors become OperationOutcomes).
pub(crate) async fn handle(
    state: &ServerState,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let path_and_query = request.uri().path_and_query().map_or_else(
        || request.uri().path().to_owned(),
        |pq| pq.as_str().to_owned(),
    );
    state.store.record(RecordedRequest {
        method: request.method().to_string(),
        path_and_query,
    });
    let delay = state.store.delay();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if let Some(status) = state.store.failure() {
        return FhirError::new(status, "transient", "failure injected by the test server")
            .into_response();
    }
    route(state, request)
        .await
        .unwrap_or_else(FhirError::into_response)
}

async fn route(
    state: &ServerState,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, FhirError> {
    let path = request.uri().path().to_owned();
    let Some(rest) = path.strip_prefix("/fhir") else {
        return Err(FhirError::not_found(format!(
            "no FHIR endpoint at `{path}`; the base is `/fhir`"
        )));
    };
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    if !rest.is_empty() && !rest.starts_with('/') {
        return Err(FhirError::not_found(format!(
            "no FHIR endpoint at `{path}`"
        )));
    }
    if let Some(operation) = segments.iter().find(|s| s.starts_with('$')) {
        return Err(operation_unsupported(operation));
    }
    let method = request.method().clone();
    match segments.as_slice() {
        [] if method == Method::POST => {
            let body = read_json_body(request).await?;
            transaction(state, body)
        }
        [] => Err(FhirError::method_not_allowed(&method, &path)),
        ["metadata"] if method == Method::GET => {
            Ok(json_response(StatusCode::OK, &capability(&state.base_url)))
        }
        ["metadata"] => Err(FhirError::method_not_allowed(&method, &path)),
        [t, ..] if !params::is_supported(t) => {
            Err(FhirError::not_found(format!("unknown resource type `{t}`")))
        }
        [t] if method == Method::GET => {
            let pairs = query_pairs(request.uri().query());
            search_response(state, t, pairs)
        }
        [t] if method == Method::POST => {
            let t = (*t).to_owned();
            let body = read_json_body(request).await?;
            create(state, &t, body)
        }
        [t, "_search"] if method == Method::POST => {
            let t = (*t).to_owned();
            let mut pairs = query_pairs(request.uri().query());
            if let Some(content_type) = request.headers().get(header::CONTENT_TYPE)
                && !content_type
                    .as_bytes()
                    .starts_with(b"application/x-www-form-urlencoded")
            {
                return Err(unsupported_media());
            }
            let body = read_body(request).await?;
            pairs.extend(form_urlencoded::parse(&body).into_owned());
            search_response(state, &t, pairs)
        }
        [_] | [_, "_search" | "_history"] => Err(FhirError::method_not_allowed(&method, &path)),
        [_, id, ..] if !valid_id(id) => Err(FhirError::bad_request(format!("invalid id `{id}`"))),
        [t, id] if method == Method::GET => read(state, t, id),
        [t, id] if method == Method::PUT => {
            let (t, id) = ((*t).to_owned(), (*id).to_owned());
            let body = read_json_body(request).await?;
            update(state, &t, &id, body)
        }
        [t, id, "_history"] if method == Method::GET => history(state, t, id),
        [t, id, "_history", version] if method == Method::GET => vread(state, t, id, version),
        [_, _] | [_, _, "_history"] | [_, _, "_history", _] => {
            Err(FhirError::method_not_allowed(&method, &path))
        }
        _ => Err(FhirError::not_found(format!(
            "no FHIR endpoint at `{path}`"
        ))),
    }
}

fn operation_unsupported(name: &str) -> FhirError {
    FhirError::not_supported(
        StatusCode::NOT_FOUND,
        format!("operation `{name}` is not supported"),
    )
}

fn unsupported_media() -> FhirError {
    FhirError::not_supported(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported content type",
    )
}

fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

async fn read_body(request: Request<Incoming>) -> Result<Bytes, FhirError> {
    Limited::new(request.into_body(), BODY_LIMIT)
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .map_err(|e| {
            FhirError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-costly",
                format!("cannot read body: {e}"),
            )
        })
}

async fn read_json_body(request: Request<Incoming>) -> Result<Value, FhirError> {
    if let Some(content_type) = request.headers().get(header::CONTENT_TYPE)
        && !content_type.to_str().unwrap_or_default().contains("json")
    {
        return Err(unsupported_media());
    }
    let body = read_body(request).await?;
    serde_json::from_slice(&body)
        .map_err(|e| FhirError::bad_request(format!("body is not valid JSON: {e}")))
}

fn search_response(
    state: &ServerState,
    resource_type: &str,
    pairs: Vec<(String, String)>,
) -> Result<Response<Full<Bytes>>, FhirError> {
    let search = search::parse(resource_type, pairs)?;
    Ok(json_response(
        StatusCode::OK,
        &search.execute(&state.store, &state.base_url),
    ))
}

fn read(state: &ServerState, t: &str, id: &str) -> Result<Response<Full<Bytes>>, FhirError> {
    let resource = state
        .store
        .read(t, id)
        .ok_or_else(|| FhirError::not_found(format!("`{t}/{id}` is not known")))?;
    Ok(with_version_headers(
        state,
        json_response(StatusCode::OK, &resource),
        &resource,
        false,
    ))
}

fn vread(
    state: &ServerState,
    t: &str,
    id: &str,
    version: &str,
) -> Result<Response<Full<Bytes>>, FhirError> {
    let resource = state.store.vread(t, id, version).ok_or_else(|| {
        FhirError::not_found(format!("`{t}/{id}/_history/{version}` is not known"))
    })?;
    Ok(with_version_headers(
        state,
        json_response(StatusCode::OK, &resource),
        &resource,
        false,
    ))
}

fn history(state: &ServerState, t: &str, id: &str) -> Result<Response<Full<Bytes>>, FhirError> {
    let versions = state.store.history(t, id);
    if versions.is_empty() {
        return Err(FhirError::not_found(format!("`{t}/{id}` is not known")));
    }
    let entries: Vec<Value> = versions
        .iter()
        .map(|r| {
            let version = r.pointer("/meta/versionId").and_then(Value::as_str).unwrap_or("1");
            json!({
                "fullUrl": format!("{}/{t}/{id}", state.base_url),
                "resource": r,
                "request": { "method": if version == "1" { "POST" } else { "PUT" }, "url": format!("{t}/{id}") },
                "response": { "status": "200 OK", "etag": format!("W/\"{version}\"") },
            })
        })
        .collect();
    let mut bundle = json!({
        "resourceType": "Bundle",
        "type": "history",
        "total": entries.len(),
        "link": [{ "relation": "self", "url": format!("{}/{t}/{id}/_history", state.base_url) }],
    });
    if !entries.is_empty()
        && let Some(object) = bundle.as_object_mut()
    {
        object.insert("entry".into(), Value::Array(entries));
    }
    Ok(json_response(StatusCode::OK, &bundle))
}

fn check_body_type(t: &str, body: &Value) -> Result<(), FhirError> {
    match body.get("resourceType").and_then(Value::as_str) {
        Some(actual) if actual == t => {}
        Some(actual) => {
            return Err(FhirError::bad_request(format!(
                "body is a `{actual}`, the URL says `{t}`"
            )));
        }
        None => return Err(FhirError::bad_request("body has no `resourceType`")),
    }
    // FHIR JSON never has empty arrays, and fhirbolt 0.4 panics on them
    // (`{"name": []}`), so refuse them before it sees the body.
    if let Some(path) = empty_array(body, String::new()) {
        return Err(FhirError::unprocessable(format!(
            "empty array at `{path}`: FHIR JSON arrays must not be empty"
        )));
    }
    // Validate against the R4 model, as a real server would. The unwind
    // guard turns any other parser panic into a 422 instead of a dropped
    // connection.
    let body = body.clone();
    let parsed = std::panic::catch_unwind(move || {
        fhirbolt::json::from_json_value::<fhirbolt::model::r4::Resource>(body, None).map(|_| ())
    });
    match parsed {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(FhirError::unprocessable(format!(
            "not a valid R4 `{t}`: {e}"
        ))),
        Err(_) => Err(FhirError::unprocessable(format!(
            "not a valid R4 `{t}`: parser failed"
        ))),
    }
}

/// The path of the first empty array in `value`, if any.
fn empty_array(value: &Value, path: String) -> Option<String> {
    match value {
        Value::Array(items) if items.is_empty() => Some(path),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| empty_array(item, format!("{path}[{i}]"))),
        Value::Object(object) => object.iter().find_map(|(key, item)| {
            let child = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            empty_array(item, child)
        }),
        _ => None,
    }
}

fn create(state: &ServerState, t: &str, body: Value) -> Result<Response<Full<Bytes>>, FhirError> {
    check_body_type(t, &body)?;
    let stored = state.store.create(body).map_err(store_error)?;
    Ok(with_version_headers(
        state,
        json_response(StatusCode::CREATED, &stored),
        &stored,
        true,
    ))
}

fn update(
    state: &ServerState,
    t: &str,
    id: &str,
    body: Value,
) -> Result<Response<Full<Bytes>>, FhirError> {
    check_body_type(t, &body)?;
    match body.get("id").and_then(Value::as_str) {
        Some(body_id) if body_id == id => {}
        Some(body_id) => {
            return Err(FhirError::bad_request(format!(
                "body id `{body_id}` differs from URL id `{id}`"
            )));
        }
        None => return Err(FhirError::bad_request("update body has no `id`")),
    }
    let (stored, created) = state.store.update(body).map_err(store_error)?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(with_version_headers(
        state,
        json_response(status, &stored),
        &stored,
        true,
    ))
}

/// `POST [base]` with a transaction Bundle of creates (`POST Type`) and
/// updates (`PUT Type/id`): every entry is checked before any is applied,
/// so a bad entry changes nothing.
fn transaction(state: &ServerState, bundle: Value) -> Result<Response<Full<Bytes>>, FhirError> {
    if bundle.get("resourceType").and_then(Value::as_str) != Some("Bundle")
        || bundle.get("type").and_then(Value::as_str) != Some("transaction")
    {
        return Err(FhirError::bad_request(
            "POST to the base takes a transaction Bundle",
        ));
    }
    let entries = bundle
        .get("entry")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut writes = Vec::new();
    for entry in &entries {
        let method = entry.pointer("/request/method").and_then(Value::as_str);
        let url = entry
            .pointer("/request/url")
            .and_then(Value::as_str)
            .unwrap_or("");
        let resource = entry.get("resource").cloned().unwrap_or(Value::Null);
        let segments: Vec<&str> = url.split('/').filter(|s| !s.is_empty()).collect();
        match (method, segments.as_slice()) {
            (Some("POST"), [t]) => {
                check_body_type(t, &resource)?;
                writes.push((None, resource));
            }
            (Some("PUT"), [t, id]) => {
                check_body_type(t, &resource)?;
                if resource.get("id").and_then(Value::as_str) != Some(*id) {
                    return Err(FhirError::bad_request(format!(
                        "entry for `{url}` has another id"
                    )));
                }
                writes.push((Some(()), resource));
            }
            _ => {
                return Err(FhirError::bad_request(format!(
                    "transaction entries must be POST Type or PUT Type/id, not `{url}`"
                )));
            }
        }
    }
    let mut response_entries = Vec::new();
    for (update, resource) in writes {
        let (stored, status) = match update {
            None => (
                state.store.create(resource).map_err(store_error)?,
                "201 Created",
            ),
            Some(()) => match state.store.update(resource).map_err(store_error)? {
                (stored, true) => (stored, "201 Created"),
                (stored, false) => (stored, "200 OK"),
            },
        };
        let field = |k: &str| {
            stored
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let version = stored
            .pointer("/meta/versionId")
            .and_then(Value::as_str)
            .unwrap_or("1")
            .to_owned();
        response_entries.push(json!({
            "resource": stored,
            "response": {
                "status": status,
                "location": format!("{}/{}/{}/_history/{version}", state.base_url, field("resourceType"), field("id")),
                "etag": format!("W/\"{version}\""),
            }
        }));
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({"resourceType": "Bundle", "type": "transaction-response", "entry": response_entries}),
    ))
}

fn store_error(e: StoreError) -> FhirError {
    FhirError::bad_request(e.to_string())
}

/// Adds `ETag` (and for writes `Location`) for a stored resource.
fn with_version_headers(
    state: &ServerState,
    mut response: Response<Full<Bytes>>,
    resource: &Value,
    location: bool,
) -> Response<Full<Bytes>> {
    let field = |k: &str| resource.get(k).and_then(Value::as_str).unwrap_or_default();
    let version = resource
        .pointer("/meta/versionId")
        .and_then(Value::as_str)
        .unwrap_or("1");
    let headers = response.headers_mut();
    if let Ok(etag) = HeaderValue::from_str(&format!("W/\"{version}\"")) {
        headers.insert(header::ETAG, etag);
    }
    if location
        && let Ok(url) = HeaderValue::from_str(&format!(
            "{}/{}/{}/_history/{version}",
            state.base_url,
            field("resourceType"),
            field("id")
        ))
    {
        headers.insert(header::LOCATION, url);
    }
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    response
}
