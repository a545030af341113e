//! Agreements exported as FHIR R4 `Contract` resources, for exchange with
//! other systems (`accord policy export`).
//!
//! R4 Contract rather than R5 `Permission`: partners and upstream servers
//! speak R4, and Permission (and the Data Access Policies IG built on it)
//! is R5 and still draft. The mapping (policies/README.md has the table):
//! - the agreement → `Contract` (`identifier`, `version`, `title`,
//!   `applies` = term, `status`, `legallyBindingAttachment` = the signed
//!   document); the Accord status is kept verbatim in an extension because
//!   R4 has no "suspended";
//! - parties → contained `Organization`s (name, identifiers);
//! - each grant → a `term` whose `offer.party` are the recipients, `asset`
//!   the resource types (with cohort, search constraints and redacted
//!   elements in words), `action` the interactions (`intent` and
//!   `reasonCode` = purposes of use), `securityLabel` the sensitive
//!   categories it may include (and REDACT when it redacts);
//! - each forbid → a `term` whose `action` has `doNotPerform: true`.

use serde_json::{Value, json};

use crate::PolicySet;
use crate::agreement::{Agreement, AgreementStatus, Forbid, Grant};
use crate::ids::PartnerId;
use crate::render::{day, instant};

/// Identifier systems for Accord's own ids.
const AGREEMENT_SYSTEM: &str = "urn:accord:agreement";
const RULE_SYSTEM: &str = "urn:accord:rule";
const PARTNER_SYSTEM: &str = "urn:accord:partner";
/// Where the Accord lifecycle status (draft, active, suspended,
/// terminated) is kept beside the nearest R4 Contract status.
pub const STATUS_EXTENSION: &str =
    "https://accord.example/fhir/StructureDefinition/agreement-status";
const RESOURCE_TYPES: &str = "http://hl7.org/fhir/resource-types";
const INTERACTIONS: &str = "http://hl7.org/fhir/restful-interaction";
const OBLIGATION_POLICY: &str = "http://terminology.hl7.org/CodeSystem/v3-ObligationPolicy";
const CONFIDENTIALITY: &str = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";

/// One agreement as an R4 Contract.
pub fn contract(set: &PolicySet, a: &Agreement) -> Value {
    let applies = json!({"start": start(a.term.effective), "end": end(a.term.expires)});
    let mut terms: Vec<Value> = a
        .grants
        .iter()
        .map(|g| grant_term(set, a, g, &applies))
        .collect();
    terms.extend(a.forbids.iter().map(|f| forbid_term(a, f, &applies)));
    let mut contract = json!({
        "resourceType": "Contract",
        "id": fhir_id(a.id.as_str()),
        "extension": [{"url": STATUS_EXTENSION, "valueCode": a.status.as_str()}],
        "identifier": [{"system": AGREEMENT_SYSTEM, "value": a.id.as_str()}],
        "version": a.version.to_string(),
        "status": contract_status(a.status),
        "title": a.title,
        "applies": applies,
        "contained": a.parties.iter().map(|p| organization(set, p)).collect::<Vec<_>>(),
        "term": terms,
    });
    if let (Some(doc), Some(object)) = (&a.document, contract.as_object_mut()) {
        let attachment = if doc.contains("://") {
            json!({"url": doc, "title": doc})
        } else {
            json!({"title": doc})
        };
        object.insert("legallyBindingAttachment".to_owned(), attachment);
    }
    contract
}

/// Every agreement as a `collection` Bundle of Contracts.
pub fn contracts_bundle(set: &PolicySet) -> Value {
    let entries: Vec<Value> = set
        .agreements()
        .iter()
        .map(|a| json!({"resource": contract(set, a)}))
        .collect();
    json!({
        "resourceType": "Bundle",
        "type": "collection",
        "entry": entries,
    })
}

/// R4 Contract status for an Accord status. R4 has no "suspended": a
/// suspended agreement grants nothing, so it is exported as `revoked` (not
/// in force) and the extension says it is only suspended.
fn contract_status(status: AgreementStatus) -> &'static str {
    match status {
        AgreementStatus::Draft => "offered",
        AgreementStatus::Active => "executed",
        AgreementStatus::Suspended => "revoked",
        AgreementStatus::Terminated => "terminated",
    }
}

/// FHIR ids allow `[A-Za-z0-9.-]`; policy ids also allow `_`.
fn fhir_id(id: &str) -> String {
    id.replace('_', "-")
}

/// Dates at midnight UTC as dates, other instants in full.
fn start(t: time::OffsetDateTime) -> String {
    if t.time() == time::Time::MIDNIGHT {
        day(t)
    } else {
        instant(t)
    }
}

/// The exclusive end as FHIR's inclusive `Period.end`: the last day when
/// the term ends at midnight.
fn end(t: time::OffsetDateTime) -> String {
    if t.time() == time::Time::MIDNIGHT {
        crate::render::last_day(t)
    } else {
        instant(t)
    }
}

fn organization(set: &PolicySet, id: &PartnerId) -> Value {
    let mut identifiers = vec![json!({"system": PARTNER_SYSTEM, "value": id.as_str()})];
    let mut name = id.as_str().to_owned();
    if let Some(p) = set.partner(id) {
        name = p.name.clone();
        for token in &p.identifiers {
            match token.split_once('|') {
                Some((system, value)) if !system.is_empty() && !value.is_empty() => {
                    identifiers.push(json!({"system": system, "value": value}));
                }
                _ if !token.is_empty() => identifiers.push(json!({"value": token})),
                _ => {}
            }
        }
    }
    json!({
        "resourceType": "Organization",
        "id": fhir_id(id.as_str()),
        "identifier": identifiers,
        "name": name,
    })
}

fn party_refs<'a>(parties: impl IntoIterator<Item = &'a PartnerId>, role: &str) -> Value {
    let references: Vec<Value> = parties
        .into_iter()
        .map(|p| json!({"reference": format!("#{}", fhir_id(p.as_str()))}))
        .collect();
    json!({"reference": references, "role": {"text": role}})
}

fn purposes_concept<'a>(
    purposes: impl IntoIterator<Item = &'a accord_fhir::Purpose>,
) -> Vec<Value> {
    purposes
        .into_iter()
        .map(|p| {
            json!({"coding": [{"system": accord_fhir::purpose::PURPOSE_OF_USE_SYSTEM, "code": p.as_str()}]})
        })
        .collect()
}

fn interaction_codes(kinds: impl IntoIterator<Item = String>) -> Value {
    let codings: Vec<Value> = kinds
        .into_iter()
        .map(|k| {
            let code = match k.as_str() {
                "search" => "search-type".to_owned(),
                "history" => "history-instance".to_owned(),
                op if op.starts_with('$') => "operation".to_owned(),
                other => other.to_owned(),
            };
            json!({"system": INTERACTIONS, "code": code, "display": k})
        })
        .collect();
    json!({"coding": codings})
}

fn types_concepts<'a>(
    types: impl IntoIterator<Item = &'a accord_fhir::ResourceType>,
) -> Vec<Value> {
    types
        .into_iter()
        .map(|t| json!({"coding": [{"system": RESOURCE_TYPES, "code": t.as_str()}]}))
        .collect()
}

fn grant_term(set: &PolicySet, a: &Agreement, g: &Grant, applies: &Value) -> Value {
    let purposes: Vec<_> = a.purposes.iter().filter(|p| g.covers_purpose(p)).collect();
    let mut conditions = Vec::new();
    if let Some(c) = &g.cohort {
        conditions.push(format!("only patients in cohort `{c}`"));
    }
    for c in &g.constraints {
        conditions.push(format!("only `{}`", c.text));
    }
    if !g.population_search {
        conditions.push("searches must name a patient".to_owned());
    }
    if let Some(n) = g.caps.resources_per_day {
        conditions.push(format!("at most {n} resources per day"));
    }
    if let Some(n) = g.caps.requests_per_day {
        conditions.push(format!("at most {n} requests per day"));
    }
    let mut asset = json!({"type": types_concepts(&g.resources)});
    if !conditions.is_empty() {
        put(&mut asset, "condition", json!(conditions.join("; ")));
    }
    if !g.redact.is_empty() {
        put(
            &mut asset,
            "text",
            json!(format!("withheld elements: {}", g.redact.join(", "))),
        );
    }
    let mut labels = Vec::new();
    for id in &g.sensitive {
        let category = set.categories().find(|c| &c.id == id);
        let codings: Vec<Value> = category
            .map(|c| {
                c.security_labels
                    .iter()
                    .map(|l| json!({"system": l.system, "code": l.code}))
                    .collect()
            })
            .unwrap_or_default();
        let mut label = json!({
            "classification": {"system": CONFIDENTIALITY, "code": "R", "display": "restricted"},
            "category": [{"code": id.as_str(), "display": category.map_or(id.as_str(), |c| c.name.as_str())}],
        });
        if !codings.is_empty() {
            put(&mut label, "control", json!(codings));
        }
        labels.push(label);
    }
    if !g.redact.is_empty() {
        labels.push(json!({
            "classification": {"system": CONFIDENTIALITY, "code": "N", "display": "normal"},
            "control": [{"system": OBLIGATION_POLICY, "code": "REDACT", "display": "redact"}],
        }));
    }
    if !labels.is_empty() {
        let numbers: Vec<usize> = (0..labels.len()).collect();
        put(&mut asset, "securityLabelNumber", json!(numbers));
    }
    let mut term = json!({
        "identifier": {"system": RULE_SYSTEM, "value": format!("{}/{}", a.id, g.id)},
        "applies": applies,
        "type": {"coding": [{"system": RULE_SYSTEM, "code": "grant"}]},
        "offer": {
            "party": [party_refs(&g.recipients, "recipient")],
            "text": format!("{} may {} {}", list(g.recipients.iter().map(|p| p.as_str())), g.interaction_names().join(", "), list(g.resources.iter().map(|t| t.as_str()))),
        },
        "asset": [asset],
        "action": [{
            "type": interaction_codes(g.interaction_names()),
            "subject": [party_refs(&g.recipients, "recipient")],
            "intent": {"text": format!("purposes of use: {}", list(purposes.iter().map(|p| p.as_str())))},
            "status": {"text": "permitted"},
            "reasonCode": purposes_concept(purposes.iter().copied()),
        }],
    });
    if let Some(source) = &g.source
        && let Some(parties) = term
            .pointer_mut("/offer/party")
            .and_then(Value::as_array_mut)
    {
        parties.push(party_refs([source], "source"));
    }
    if !labels.is_empty() {
        put(&mut term, "securityLabel", json!(labels));
    }
    term
}

fn forbid_term(a: &Agreement, f: &Forbid, applies: &Value) -> Value {
    let kinds: Vec<String> = f
        .interactions
        .iter()
        .map(|k| k.as_str().to_owned())
        .collect();
    let mut action = json!({
        "doNotPerform": true,
        "type": if kinds.is_empty() { json!({"text": "any interaction"}) } else { interaction_codes(kinds) },
        "subject": [party_refs(&f.recipients, "recipient")],
        "intent": {"text": "any purpose of use"},
        "status": {"text": "forbidden"},
        "reason": [f.reason],
    });
    if !f.purposes.is_empty() {
        put(
            &mut action,
            "intent",
            json!({"text": format!("purposes of use: {}", list(f.purposes.iter().map(|p| p.as_str())))}),
        );
        put(
            &mut action,
            "reasonCode",
            json!(purposes_concept(&f.purposes)),
        );
    }
    let mut asset = json!({"text": f.reason});
    if !f.resources.is_empty() {
        put(&mut asset, "type", json!(types_concepts(&f.resources)));
    }
    let mut term = json!({
        "identifier": {"system": RULE_SYSTEM, "value": format!("{}/{}", a.id, f.id)},
        "applies": applies,
        "type": {"coding": [{"system": RULE_SYSTEM, "code": "forbid"}]},
        "offer": {"text": format!("never: {}", f.reason)},
        "asset": [asset],
        "action": [action],
    });
    if !f.sensitive.is_empty() {
        let labels: Vec<Value> = f
            .sensitive
            .iter()
            .map(|c| json!({
                "classification": {"system": CONFIDENTIALITY, "code": "R", "display": "restricted"},
                "category": [{"code": c.as_str()}],
            }))
            .collect();
        if let Some(asset) = term.pointer_mut("/asset/0") {
            put(
                asset,
                "securityLabelNumber",
                json!((0..labels.len()).collect::<Vec<_>>()),
            );
        }
        put(&mut term, "securityLabel", json!(labels));
    }
    term
}

/// Sets `key` on a JSON object built above (never anything else).
fn put(object: &mut Value, key: &str, value: Value) {
    if let Some(map) = object.as_object_mut() {
        map.insert(key.to_owned(), value);
    }
}

fn list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    items.into_iter().collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests;
