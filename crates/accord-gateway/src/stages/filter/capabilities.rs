//! The CapabilityStatement a partner sees: the gateway's own, listing what
//! this partner may do, never the upstream's (whose URLs, formats and
//! operations describe a server the partner cannot reach).

use accord_fhir::{InteractionKind, ResourceType};
use serde_json::{Map, Value, json};

use crate::scope::Scope;

/// CapabilityStatement interaction codes for the kinds agreements grant.
const INTERACTIONS: &[(InteractionKind, &str)] = &[
    (InteractionKind::Read, "read"),
    (InteractionKind::VRead, "vread"),
    (InteractionKind::Update, "update"),
    (InteractionKind::History, "history-instance"),
    (InteractionKind::Create, "create"),
    (InteractionKind::Search, "search-type"),
];

/// Builds the gateway's CapabilityStatement from the upstream's: only the
/// types and interactions this partner is granted, JSON only, the
/// gateway's own URL.
pub fn capabilities(upstream: &Value, scope: &Scope<'_>, gateway_base: &str) -> Value {
    let upstream_types = upstream
        .pointer("/rest/0/resource")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    let mut resources = Vec::new();
    for entry in upstream_types {
        let Some(ty) = entry
            .get("type")
            .and_then(Value::as_str)
            .and_then(|t| ResourceType::parse(t).ok())
        else {
            continue;
        };
        let interactions: Vec<Value> = INTERACTIONS
            .iter()
            .filter(|(kind, _)| scope.permits(*kind, ty))
            .map(|(_, code)| json!({ "code": code }))
            .collect();
        if interactions.is_empty() {
            continue;
        }
        let mut resource = Map::new();
        resource.insert("type".into(), ty.as_str().into());
        resource.insert("interaction".into(), Value::Array(interactions));
        let params: Vec<Value> = entry
            .get("searchParam")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| Some(json!({"name": p.get("name")?, "type": p.get("type")?})))
            .collect();
        if !params.is_empty() && scope.permits(InteractionKind::Search, ty) {
            resource.insert("searchParam".into(), Value::Array(params));
        }
        resources.push(Value::Object(resource));
    }
    let date = upstream
        .get("date")
        .cloned()
        .unwrap_or_else(|| "2026-01-01".into());
    let mut rest = Map::new();
    rest.insert("mode".into(), "server".into());
    if !resources.is_empty() {
        rest.insert("resource".into(), Value::Array(resources));
    }
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": date,
        "kind": "instance",
        "software": {"name": "Accord", "version": env!("CARGO_PKG_VERSION")},
        "implementation": {
            "description": "Accord data-sharing gateway: access under data-use agreements, every access audited",
            "url": gateway_base,
        },
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json"],
        "rest": [Value::Object(rest)],
    })
}
