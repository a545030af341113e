//! FHIR R4 AuditEvent export following IHE Basic Audit Log Patterns (BALP):
//! one AuditEvent per patient for RESTful interactions, with the partner
//! (requestor) and the gateway as agents, the patient and the resource or
//! query as entities, and the policy decision recorded in entity details.
//!
//! INVARIANT: never emits an empty array or an empty string (fhirbolt 0.4
//! panics on empty arrays; FHIR forbids both).

use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::record::{AuditRecord, DecisionKind};

const BALP: &str = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.";
const DCM: &str = "http://dicom.nema.org/resources/ontology/DCM";
const ENTITY_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-entity-type";
const OBJECT_ROLE: &str = "http://terminology.hl7.org/CodeSystem/object-role";
const RESTFUL: &str = "http://hl7.org/fhir/restful-interaction";
const PURPOSE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActReason";

/// An AuditEvent fhirbolt would not accept.
#[derive(Debug, thiserror::Error)]
#[error("AuditEvent does not validate as FHIR R4: {0}")]
pub struct AuditEventError(pub String);

/// Checks one AuditEvent with fhirbolt's R4 model.
pub fn validate_audit_event(json: &str) -> Result<(), AuditEventError> {
    match fhirbolt::json::from_str::<fhirbolt::model::r4::Resource>(json, None) {
        Ok(fhirbolt::model::r4::Resource::AuditEvent(_)) => Ok(()),
        Ok(_) => Err(AuditEventError("not an AuditEvent".into())),
        Err(e) => Err(AuditEventError(e.to_string())),
    }
}

/// The AuditEvents for one record: one per patient named, or one without
/// a patient when it names none. `gateway` names this deployment.
pub fn audit_events(record: &AuditRecord, gateway: &str) -> Vec<Value> {
    // Attempts name their patient too: a denied read of a patient's record
    // is an access event about that patient.
    let patients = record.concerned_patients();
    if patients.is_empty() {
        return vec![event(record, gateway, None, 0)];
    }
    patients
        .iter()
        .enumerate()
        .map(|(i, p)| event(record, gateway, Some(p), i))
        .collect()
}

fn interaction(record: &AuditRecord) -> &str {
    record.interaction.as_deref().unwrap_or("")
}

fn is_query(record: &AuditRecord) -> bool {
    matches!(
        interaction(record),
        "search"
            | "search-type"
            | "search-system"
            | "search-compartment"
            | "history"
            | "history-instance"
            | "history-type"
            | "history-system"
            | "operation"
            | "batch"
            | "transaction"
    )
}

fn action(record: &AuditRecord) -> &'static str {
    match interaction(record) {
        "create" => "C",
        "update" | "patch" => "U",
        "delete" => "D",
        "read" | "vread" | "capabilities" => "R",
        _ if record.method.eq_ignore_ascii_case("GET") && !is_query(record) => "R",
        _ => "E",
    }
}

fn profile(record: &AuditRecord, with_patient: bool) -> String {
    let kind = match action(record) {
        "C" => "Create",
        "U" => "Update",
        "D" => "Delete",
        "R" => "Read",
        _ => "Query",
    };
    format!("{BALP}{}{kind}", if with_patient { "Patient" } else { "" })
}

fn outcome(record: &AuditRecord) -> &'static str {
    if record.status >= 500 {
        "8"
    } else if record.decision != DecisionKind::Permit || record.status >= 400 {
        "4"
    } else {
        "0"
    }
}

/// Inserts `key: value` when the text is not empty.
fn put_str(map: &mut Map<String, Value>, key: &str, value: Option<&str>) {
    if let Some(v) = value.filter(|v| !v.is_empty()) {
        map.insert(key.into(), Value::String(v.to_owned()));
    }
}

fn coding(system: &str, code: &str, display: &str) -> Value {
    json!({"system": system, "code": code, "display": display})
}

fn detail(kind: &str, value: &str) -> Option<Value> {
    (!value.is_empty()).then(|| json!({"type": kind, "valueString": value}))
}

fn event(record: &AuditRecord, gateway: &str, patient: Option<&str>, n: usize) -> Value {
    let mut ev = Map::new();
    ev.insert("resourceType".into(), json!("AuditEvent"));
    ev.insert("id".into(), json!(format!("accord-{}-{n}", record.seq)));
    ev.insert(
        "meta".into(),
        json!({"profile": [profile(record, patient.is_some())]}),
    );
    ev.insert(
        "type".into(),
        coding(
            "http://terminology.hl7.org/CodeSystem/audit-event-type",
            "rest",
            "RESTful Operation",
        ),
    );
    let sub = interaction(record);
    if KNOWN_INTERACTIONS.contains(&sub) {
        ev.insert("subtype".into(), json!([{"system": RESTFUL, "code": sub}]));
    }
    ev.insert("action".into(), json!(action(record)));
    let recorded = record
        .time
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into());
    ev.insert("recorded".into(), json!(recorded));
    ev.insert("outcome".into(), json!(outcome(record)));
    put_str(&mut ev, "outcomeDesc", Some(record.rule.as_str()));
    if let Some(p) = record.purpose.as_deref().filter(|p| !p.is_empty()) {
        ev.insert(
            "purposeOfEvent".into(),
            json!([{"coding": [{"system": PURPOSE, "code": p}]}]),
        );
    }
    ev.insert(
        "agent".into(),
        Value::Array(vec![requestor(record), gateway_agent(gateway)]),
    );
    ev.insert(
        "source".into(),
        json!({
            "site": gateway,
            "observer": {"display": "Accord gateway", "identifier": {"system": "urn:accord:gateway", "value": gateway}},
            "type": [coding("http://terminology.hl7.org/CodeSystem/security-source-type", "4", "Application Server")],
        }),
    );
    ev.insert("entity".into(), Value::Array(entities(record, patient)));
    Value::Object(ev)
}

const KNOWN_INTERACTIONS: &[&str] = &[
    "read",
    "vread",
    "update",
    "patch",
    "delete",
    "history",
    "history-instance",
    "history-type",
    "history-system",
    "create",
    "search",
    "search-type",
    "search-system",
    "capabilities",
    "transaction",
    "batch",
    "operation",
];

fn requestor(record: &AuditRecord) -> Value {
    let mut who = Map::new();
    if let Some(partner) = record.partner.as_deref().filter(|p| !p.is_empty()) {
        who.insert(
            "identifier".into(),
            json!({"system": "urn:accord:partner", "value": partner}),
        );
    } else if let Some(spki) = record.client_spki.as_deref().filter(|p| !p.is_empty()) {
        who.insert(
            "identifier".into(),
            json!({"system": "urn:accord:spki-sha256", "value": spki}),
        );
    }
    let name = record
        .partner_name
        .as_deref()
        .or(record.partner.as_deref())
        .filter(|n| !n.is_empty())
        .unwrap_or("unidentified client");
    who.insert("display".into(), json!(name));
    let mut agent = Map::new();
    agent.insert(
        "type".into(),
        json!({"coding": [coding(DCM, "110153", "Source Role ID")]}),
    );
    agent.insert("who".into(), Value::Object(who));
    agent.insert("requestor".into(), json!(true));
    let address = record
        .peer
        .rsplit_once(':')
        .map_or(record.peer.as_str(), |(ip, _)| ip)
        .trim_start_matches('[')
        .trim_end_matches(']');
    if !address.is_empty() {
        agent.insert("network".into(), json!({"address": address, "type": "2"}));
    }
    Value::Object(agent)
}

fn gateway_agent(gateway: &str) -> Value {
    json!({
        "type": {"coding": [coding(DCM, "110152", "Destination Role ID")]},
        "who": {"identifier": {"system": "urn:accord:gateway", "value": gateway}, "display": "Accord gateway"},
        "requestor": false,
    })
}

fn entities(record: &AuditRecord, patient: Option<&str>) -> Vec<Value> {
    let mut out = Vec::new();
    if let Some(patient) = patient {
        out.push(json!({
            "what": {"reference": patient},
            "type": coding(ENTITY_TYPE, "1", "Person"),
            "role": coding(OBJECT_ROLE, "1", "Patient"),
        }));
    }
    let path = record.path.as_deref().unwrap_or(record.target.as_str());
    let mut target = Map::new();
    target.insert("type".into(), coding(ENTITY_TYPE, "2", "System Object"));
    if is_query(record) {
        target.insert("role".into(), coding(OBJECT_ROLE, "24", "Query"));
        let query = match record.query.as_deref() {
            Some(q) if !q.is_empty() => format!("{path}?{q}"),
            _ => record.target.clone(),
        };
        if !query.is_empty() {
            target.insert(
                "query".into(),
                json!(base64::engine::general_purpose::STANDARD.encode(query)),
            );
        }
    } else {
        target.insert("role".into(), coding(OBJECT_ROLE, "4", "Domain Resource"));
        if let Some(reference) = record.resource.clone().or_else(|| resource_reference(path)) {
            target.insert("what".into(), json!({"reference": reference}));
        }
    }
    put_str(&mut target, "description", Some(path));
    let mut details: Vec<Value> = Vec::new();
    details.extend(detail("decision", record.decision.as_str()));
    details.extend(detail("rule", &record.rule));
    // `agreement` is the first of `agreements`: name each agreement once.
    let mut agreements: Vec<&crate::record::AgreementRef> = Vec::new();
    for a in record.agreement.iter().chain(record.agreements.iter()) {
        if !agreements.contains(&a) {
            agreements.push(a);
        }
    }
    for a in agreements {
        details.extend(detail(
            "agreement",
            &format!("{} v{} ({})", a.id, a.version, a.grant),
        ));
    }
    details.extend(detail(
        "policy-hash",
        record.policy_hash.as_deref().unwrap_or(""),
    ));
    details.extend(detail("audit-seq", &record.seq.to_string()));
    details.extend(detail("request-id", &record.request_id));
    details.extend(detail("http-status", &record.status.to_string()));
    let release = patient.and_then(|p| record.patients.iter().find(|r| r.patient == p));
    if patient.is_some() && release.is_none() {
        details.extend(detail("resources", "none released"));
    }
    if let Some(release) = release {
        let counts: Vec<String> = release
            .resources
            .iter()
            .map(|r| {
                format!(
                    "{} released={} withheld={} redacted={}",
                    r.resource_type, r.released, r.withheld, r.redacted
                )
            })
            .collect();
        details.extend(detail("resources", &counts.join("; ")));
        details.extend(detail("sensitivity", &release.sensitivity.join(",")));
    }
    target.insert("detail".into(), Value::Array(details));
    out.push(Value::Object(target));
    out
}

/// `Type/id` (or `Type/id/_history/v`) from a request path such as
/// `/fhir/Patient/pat-1`: the segments from the first resource type on,
/// never the gateway's base path. `None` for a type-level path (a create
/// the record does not name the result of, a search).
fn resource_reference(path: &str) -> Option<String> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let at = segments
        .iter()
        .position(|s| accord_fhir::ResourceType::parse(s).is_ok())?;
    let rest = segments.get(at..)?;
    match rest {
        [ty, id] => Some(format!("{ty}/{id}")),
        [ty, id, "_history", version] => Some(format!("{ty}/{id}/_history/{version}")),
        _ => None,
    }
}
