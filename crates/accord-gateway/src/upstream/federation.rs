//! Partnerships whose members each keep their own FHIR server: one
//! upstream per member (`[[gateway.upstreams]]`), each the record of its
//! owner.
//!
//! - **searches and histories** go to every member's server the permitting
//!   grant reaches (only its `source`'s when it names one), every page read
//!   (up to [`MAX_PAGES`] per server); the entries are merged into one
//!   Bundle the filter then checks like any other, each entry known as its
//!   server's owner's record;
//! - **reads** go to the same servers: the one that holds the id answers; an
//!   id held by two servers is refused as ambiguous;
//! - **updates, patches and deletes** go to the server that holds the
//!   resource; **creates** to the grant's source, or the member named in
//!   the `X-Accord-Target` header;
//! - one server failing fails the whole request (502 naming the member):
//!   never a silently partial answer.

use std::collections::{BTreeSet, HashMap};

use accord_fhir::{FhirRequest, Interaction};
use accord_policy::PartnerId;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{Value, json};

use crate::error::GatewayError;
use crate::upstream::client::{Upstream, UpstreamResponse, UpstreamWait};
use crate::upstream::paging::{next_link, relative_to};

/// Pages read from one member's server for one search.
pub const MAX_PAGES: usize = 20;
/// The header that names the member whose server receives a create.
pub const TARGET_HEADER: &str = "x-accord-target";

/// One member's server.
#[derive(Debug, Clone)]
pub struct Member {
    pub owner: PartnerId,
    pub upstream: Upstream,
    /// The server's base and aliases, for following its paging links.
    pub bases: Vec<String>,
}

/// Every member's server.
#[derive(Debug, Clone)]
pub struct Federation {
    members: Vec<Member>,
}

/// A federated answer, and whose server each resource came from
/// (`Type/id` → owner; an id two servers hold is in `ambiguous`).
#[derive(Debug)]
pub struct Forwarded {
    pub response: UpstreamResponse,
    pub origins: HashMap<String, PartnerId>,
    pub ambiguous: BTreeSet<String>,
}

// === impl Federation ===

impl Federation {
    pub fn new(members: Vec<Member>) -> Self {
        Federation { members }
    }

    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// Sends a partner's request to the servers `source` allows (all when
    /// `None`).
    pub async fn send(
        &self,
        request: &FhirRequest,
        body: Bytes,
        headers: &HeaderMap,
        source: Option<&PartnerId>,
        request_id: &str,
        waited: &mut UpstreamWait,
    ) -> Result<Forwarded, GatewayError> {
        let candidates: Vec<&Member> = self
            .members
            .iter()
            .filter(|m| source.is_none_or(|s| *s == m.owner))
            .collect();
        let if_match = headers.get(http::header::IF_MATCH);
        match request.interaction {
            Interaction::SearchType { .. }
            | Interaction::SearchSystem
            | Interaction::SearchCompartment { .. }
            | Interaction::HistoryType { .. }
            | Interaction::HistorySystem
            | Interaction::HistoryInstance { .. } => {
                self.fan_out(&candidates, request, request_id, waited).await
            }
            Interaction::Read { .. } | Interaction::VRead { .. } => {
                let (member, response) = self
                    .holder(&candidates, request, request_id, waited)
                    .await?;
                Ok(single(member, response))
            }
            Interaction::Update { .. } | Interaction::Patch { .. } | Interaction::Delete { .. } => {
                let read = read_of(request);
                let (member, found) = self.holder(&candidates, &read, request_id, waited).await?;
                let Some(member) = member else {
                    return Ok(single(None, found));
                };
                let response = member
                    .upstream
                    .send(request, body, if_match, request_id, waited)
                    .await
                    .map_err(|e| GatewayError::member_failed(member.owner.as_str(), &e))?;
                Ok(single(Some(member), response))
            }
            Interaction::Create { .. } => {
                let member = target(&candidates, headers)?;
                let response = member
                    .upstream
                    .send(request, body, if_match, request_id, waited)
                    .await
                    .map_err(|e| GatewayError::member_failed(member.owner.as_str(), &e))?;
                Ok(single(Some(member), response))
            }
            Interaction::Capabilities => {
                let member = candidates.first().copied().or(self.members.first());
                let Some(member) = member else {
                    return Err(GatewayError::upstream_unavailable());
                };
                let response = member
                    .upstream
                    .send(request, body, None, request_id, waited)
                    .await?;
                Ok(single(None, response))
            }
            Interaction::Operation { .. } | Interaction::BatchOrTransaction => {
                Err(GatewayError::method_not_allowed(
                    "operations and transactions are not served across several members' servers; send them to one member's gateway",
                ))
            }
        }
    }

    /// Every page of the search from every candidate server, merged.
    async fn fan_out(
        &self,
        candidates: &[&Member],
        request: &FhirRequest,
        request_id: &str,
        waited: &mut UpstreamWait,
    ) -> Result<Forwarded, GatewayError> {
        let mut entries = Vec::new();
        let mut origins = HashMap::new();
        let mut ambiguous = BTreeSet::new();
        let mut bundle_type = "searchset".to_owned();
        for member in candidates {
            let fail = |e: &GatewayError| GatewayError::member_failed(member.owner.as_str(), e);
            let first = member
                .upstream
                .send(request, Bytes::new(), None, request_id, waited)
                .await
                .map_err(|e| fail(&e))?;
            let mut page = crate::upstream::lookup::searchset(first).map_err(|e| fail(&e))?;
            if let Some(t) = page.get("type").and_then(Value::as_str) {
                bundle_type = t.to_owned();
            }
            let mut pages = 1;
            loop {
                let next = next_link(&page).and_then(|l| relative_to(l, &member.bases));
                for entry in take_entries(&mut page) {
                    if let Some(key) = entry.get("resource").and_then(key_of) {
                        if origins.get(&key).is_some_and(|o| *o != member.owner) {
                            ambiguous.insert(key.clone());
                        }
                        origins.insert(key, member.owner.clone());
                    }
                    entries.push(entry);
                }
                let Some(target) = next else { break };
                if pages >= MAX_PAGES {
                    tracing::warn!(member = %member.owner, "fan-out stopped after {MAX_PAGES} pages");
                    return Err(GatewayError::unprocessable(format!(
                        "the search matches more than {MAX_PAGES} pages at `{}`; narrow it (for example by patient or date)",
                        member.owner
                    )));
                }
                pages += 1;
                let started = std::time::Instant::now();
                let response = member.upstream.get(&target).await;
                waited.add(started.elapsed());
                page = crate::upstream::lookup::searchset(response.map_err(|e| fail(&e))?)
                    .map_err(|e| fail(&e))?;
            }
        }
        let merged = json!({
            "resourceType": "Bundle",
            "type": bundle_type,
            "total": entries.len(),
            "entry": entries,
        });
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/fhir+json"),
        );
        Ok(Forwarded {
            response: UpstreamResponse {
                status: StatusCode::OK,
                headers,
                body: Bytes::from(merged.to_string()),
            },
            origins,
            ambiguous,
        })
    }

    /// The server that holds what `request` reads: the one that answers
    /// 2xx; none (the first 404 is returned); two is ambiguous.
    async fn holder<'m>(
        &self,
        candidates: &[&'m Member],
        request: &FhirRequest,
        request_id: &str,
        waited: &mut UpstreamWait,
    ) -> Result<(Option<&'m Member>, UpstreamResponse), GatewayError> {
        let mut found: Option<(&Member, UpstreamResponse)> = None;
        let mut missing = None;
        for member in candidates {
            let response = member
                .upstream
                .send(request, Bytes::new(), None, request_id, waited)
                .await
                .map_err(|e| GatewayError::member_failed(member.owner.as_str(), &e))?;
            if response.status.is_success() {
                if found.is_some() {
                    return Err(GatewayError::unprocessable(
                        "this id names resources on more than one member's server; ask for it with a search that names the patient",
                    ));
                }
                found = Some((member, response));
            } else if response.status == StatusCode::NOT_FOUND
                || response.status == StatusCode::GONE
            {
                missing.get_or_insert(response);
            } else {
                return Err(GatewayError::member_failed(
                    member.owner.as_str(),
                    &GatewayError::upstream_invalid(),
                ));
            }
        }
        match (found, missing) {
            (Some((member, response)), _) => Ok((Some(member), response)),
            (None, Some(response)) => Ok((None, response)),
            (None, None) => Ok((None, not_found())),
        }
    }
}

/// The answer of one server (or none), with its origin.
fn single(member: Option<&Member>, response: UpstreamResponse) -> Forwarded {
    let mut origins = HashMap::new();
    if let Some(member) = member
        && let Ok(body) = serde_json::from_slice::<Value>(&response.body)
        && let Some(key) = key_of(&body)
    {
        origins.insert(key, member.owner.clone());
    }
    Forwarded {
        response,
        origins,
        ambiguous: BTreeSet::new(),
    }
}

/// The read that finds the server holding what an update, patch or delete
/// changes.
fn read_of(request: &FhirRequest) -> FhirRequest {
    let interaction = match &request.interaction {
        Interaction::Update { ty, id }
        | Interaction::Patch { ty, id }
        | Interaction::Delete { ty, id } => Interaction::Read {
            ty: *ty,
            id: id.clone(),
        },
        other => other.clone(),
    };
    FhirRequest {
        method: accord_fhir::Method::Get,
        interaction,
        params: accord_fhir::SearchParams::default(),
    }
}

/// The server a create goes to: the only candidate, or the one the
/// partner names.
fn target<'m>(candidates: &[&'m Member], headers: &HeaderMap) -> Result<&'m Member, GatewayError> {
    let named = headers.get(TARGET_HEADER).and_then(|v| v.to_str().ok());
    match (candidates, named) {
        ([only], None) => Ok(only),
        (_, Some(name)) => candidates
            .iter()
            .find(|m| m.owner.as_str() == name)
            .copied()
            .ok_or_else(|| {
                GatewayError::forbidden(format!(
                    "`{name}` is not a member whose server this grant lets you write to"
                ))
            }),
        (_, None) => Err(GatewayError::bad_request(format!(
            "this write could go to several members' servers: name one in the {TARGET_HEADER} header ({})",
            candidates
                .iter()
                .map(|m| m.owner.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

fn take_entries(bundle: &mut Value) -> Vec<Value> {
    match bundle.get_mut("entry").map(Value::take) {
        Some(Value::Array(entries)) => entries,
        _ => Vec::new(),
    }
}

/// `Type/id` of a resource.
pub fn key_of(resource: &Value) -> Option<String> {
    Some(format!(
        "{}/{}",
        resource.get("resourceType")?.as_str()?,
        resource.get("id")?.as_str()?
    ))
}

fn not_found() -> UpstreamResponse {
    UpstreamResponse {
        status: StatusCode::NOT_FOUND,
        headers: HeaderMap::new(),
        body: Bytes::from_static(br#"{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"not-found"}]}"#),
    }
}
