//! FHIR R4 Consent JSON → [`Consent`], each problem located.

use std::collections::BTreeSet;

use accord_fhir::{Purpose, ResourceType, ValidationError};
use serde_json::Value;

use super::actors::{ConsentActors, UnknownActor};
use super::{Consent, ConsentRule, Provision, parse_fhir_datetime, str_at};
use crate::sensitivity::Coding;
use crate::source::{PolicyError, SourceFile};
use crate::spans::SpannedDoc;

const STATUSES: [&str; 6] = [
    "draft",
    "proposed",
    "active",
    "rejected",
    "inactive",
    "entered-in-error",
];

/// The top-level elements of R4 Consent.
const ELEMENTS: [&str; 22] = [
    "resourceType",
    "id",
    "meta",
    "implicitRules",
    "language",
    "text",
    "contained",
    "extension",
    "modifierExtension",
    "identifier",
    "status",
    "scope",
    "category",
    "patient",
    "dateTime",
    "performer",
    "organization",
    "sourceAttachment",
    "sourceReference",
    "policy",
    "policyRule",
    "verification",
];

struct Ctx<'a> {
    source: &'a SourceFile,
    doc: &'a SpannedDoc,
    errors: &'a mut Vec<PolicyError>,
}

impl Ctx<'_> {
    fn err(&mut self, pointer: &str, message: String, hint: &str) {
        self.errors.push(
            self.source
                .error_hint(self.doc.value_span(pointer), message, hint),
        );
    }

    fn err_key(&mut self, pointer: &str, message: String, hint: &str) {
        self.errors.push(
            self.source
                .error_hint(self.doc.key_span(pointer), message, hint),
        );
    }
}

/// Compiles one Consent; pushes every error found.
pub(crate) fn compile_consent(
    source: &SourceFile,
    doc: &SpannedDoc,
    actors: &ConsentActors,
    errors: &mut Vec<PolicyError>,
) -> Option<Consent> {
    let before = errors.len();
    let mut cx = Ctx {
        source,
        doc,
        errors,
    };
    let value = &doc.value;
    let Some(object) = value.as_object() else {
        cx.err(
            "",
            "a Consent must be a JSON object".into(),
            "see hl7.org/fhir/R4/consent.html",
        );
        return None;
    };
    if str_at(value, "/resourceType") != Some("Consent") {
        cx.err(
            "/resourceType",
            "`resourceType` must be `Consent`".into(),
            "files in policies/consents/ hold FHIR R4 Consent resources",
        );
    }
    for key in object.keys() {
        if !ELEMENTS.contains(&key.as_str()) && key != "provision" {
            cx.err_key(
                &format!("/{}", crate::spans::escape(key)),
                format!("`{key}` is not an element of Consent in FHIR R4"),
                "remove it or correct its spelling (hl7.org/fhir/R4/consent.html)",
            );
        }
    }
    let id = match str_at(value, "/id") {
        Some(id) if accord_fhir::ResourceId::parse(id).is_ok() => id.to_owned(),
        _ => {
            cx.err(
                "/id",
                "a Consent needs a valid `id`".into(),
                "e.g. \"id\": \"optout-123\"",
            );
            String::new()
        }
    };
    let status = str_at(value, "/status").unwrap_or_default();
    if !STATUSES.contains(&status) {
        cx.err(
            "/status",
            format!("`status` `{status}` is not a Consent status"),
            "one of: draft, proposed, active, rejected, inactive, entered-in-error",
        );
    }
    if value.pointer("/scope").is_none() {
        cx.err(
            "",
            "a Consent needs a `scope`".into(),
            "use patient-privacy for data sharing consent",
        );
    }
    if value.pointer("/category/0").is_none() {
        cx.err(
            "",
            "a Consent needs at least one `category`".into(),
            "e.g. LOINC 59284-0 (patient consent)",
        );
    }
    let patient = match str_at(value, "/patient/reference") {
        Some(r)
            if r.strip_prefix("Patient/")
                .is_some_and(|id| accord_fhir::ResourceId::parse(id).is_ok()) =>
        {
            r.to_owned()
        }
        _ => {
            cx.err(
                "/patient",
                "`patient.reference` must be `Patient/<id>`".into(),
                "consents are indexed by patient",
            );
            String::new()
        }
    };
    let date_time = match str_at(value, "/dateTime").map(parse_fhir_datetime) {
        Some(Some(t)) => Some(t),
        _ => {
            cx.err(
                "/dateTime",
                "`dateTime` must be a FHIR dateTime (2026-03-01 or 2026-03-01T09:00:00Z)".into(),
                "the most recent consent wins, so each needs its date",
            );
            None
        }
    };
    let root = match value.get("provision") {
        Some(p) => provision(&mut cx, p, "/provision", actors, 0),
        None => {
            cx.err(
                "",
                "a Consent needs a `provision`".into(),
                "say `\"provision\": {\"type\": \"deny\"}` for an opt-out",
            );
            None
        }
    };
    check_r4(&mut cx, before);
    if cx.errors.len() > before {
        return None;
    }
    Some(Consent {
        id: format!("Consent/{id}"),
        patient,
        active: status == "active",
        date_time: date_time?,
        root: root?,
        source: source.name.clone(),
    })
}

fn provision(
    cx: &mut Ctx<'_>,
    value: &Value,
    pointer: &str,
    actors: &ConsentActors,
    depth: usize,
) -> Option<Provision> {
    const KEYS: [&str; 12] = [
        "id",
        "extension",
        "modifierExtension",
        "type",
        "period",
        "actor",
        "action",
        "securityLabel",
        "purpose",
        "class",
        "code",
        "provision",
    ];
    let before = cx.errors.len();
    let Some(object) = value.as_object() else {
        cx.err(
            pointer,
            "a provision must be an object".into(),
            "see Consent.provision in FHIR R4",
        );
        return None;
    };
    if depth > 16 {
        cx.err(
            pointer,
            "provisions are nested too deeply".into(),
            "at most 16 levels",
        );
        return None;
    }
    for key in object.keys() {
        if !KEYS.contains(&key.as_str()) && key != "dataPeriod" && key != "data" {
            cx.err_key(
                &format!("{pointer}/{}", crate::spans::escape(key)),
                format!("`{key}` is not an element of Consent.provision in FHIR R4"),
                "remove it or correct its spelling",
            );
        }
    }
    let kind = match str_at(value, "/type") {
        Some("permit") => ConsentRule::Permit,
        Some("deny") => ConsentRule::Deny,
        Some(other) => {
            cx.err(
                &format!("{pointer}/type"),
                format!("provision type `{other}` is neither `permit` nor `deny`"),
                "use permit or deny",
            );
            ConsentRule::Deny
        }
        None if depth == 0 => {
            cx.err(
                pointer,
                "the root provision needs a `type`".into(),
                "permit (opt-in) or deny (opt-out)",
            );
            ConsentRule::Deny
        }
        None => ConsentRule::Permit,
    };
    let mut period = None;
    if let Some(p) = value.get("period") {
        let mut bound = |key: &str| match str_at(p, &format!("/{key}")) {
            None => None,
            Some(text) => {
                let parsed = parse_fhir_datetime(text);
                if parsed.is_none() {
                    cx.err(
                        &format!("{pointer}/period/{key}"),
                        format!("`{text}` is not a FHIR dateTime"),
                        "e.g. 2026-03-01 or 2026-03-01T09:00:00Z",
                    );
                }
                parsed
            }
        };
        period = Some((bound("start"), bound("end")));
    }
    let known = actors;
    let mut named = BTreeSet::new();
    for (i, actor) in value
        .get("actor")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let at = format!("{pointer}/actor/{i}/reference/reference");
        match str_at(actor, "/reference/reference") {
            Some(reference) => match known.partner(reference) {
                Ok(p) => {
                    named.insert(p.clone());
                }
                Err(UnknownActor::NotAPartner) => cx.err(
                    &at,
                    format!("actor `{reference}` is not a partner in partners.toml"),
                    "name a partner as `Organization/<partner id>` or by its `organization` in partners.toml",
                ),
                Err(UnknownActor::Ambiguous) => cx.err(
                    &at,
                    format!("actor `{reference}` names two partners in partners.toml"),
                    "one partner's id is another partner's `organization`: correct partners.toml",
                ),
            },
            None => cx.err(
                &at,
                "an actor must reference a partner's Organization".into(),
                "e.g. {\"reference\": {\"reference\": \"Organization/maple-primary\"}}",
            ),
        }
    }
    let mut purposes = BTreeSet::new();
    for (i, purpose) in value
        .get("purpose")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        match str_at(purpose, "/code").map(Purpose::parse) {
            Some(Ok(p)) => {
                purposes.insert(p);
            }
            _ => cx.err(&format!("{pointer}/purpose/{i}"), "a purpose must be an HL7 v3 PurposeOfUse Coding".into(), "e.g. {\"system\": \"http://terminology.hl7.org/CodeSystem/v3-ActReason\", \"code\": \"TREAT\"}"),
        }
    }
    let mut labels = BTreeSet::new();
    for (i, label) in value
        .get("securityLabel")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        match (str_at(label, "/system"), str_at(label, "/code")) {
            (Some(s), Some(c)) => {
                labels.insert(Coding::new(s, c));
            }
            _ => cx.err(
                &format!("{pointer}/securityLabel/{i}"),
                "a security label needs `system` and `code`".into(),
                "e.g. v3-ActCode ETH for substance-use data",
            ),
        }
    }
    let mut provisions = Vec::new();
    for (i, child) in value
        .get("provision")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        if let Some(p) = provision(
            cx,
            child,
            &format!("{pointer}/provision/{i}"),
            known,
            depth + 1,
        ) {
            provisions.push(p);
        }
    }
    (cx.errors.len() == before).then_some(Provision {
        kind,
        period,
        actors: named,
        purposes,
        labels,
        provisions,
    })
}

/// Validates the file as an R4 Consent with the official R4 JSON Schema and
/// fhirbolt's R4 model (what the gateway applies to resources partners
/// write), so a consent Accord accepts is one any R4 server accepts. The
/// checks above explain the common mistakes with hints; these catch the
/// rest (unknown elements at any depth, wrong types, codes outside their
/// value sets). A place already reported above is not reported twice.
fn check_r4(cx: &mut Ctx<'_>, before: usize) {
    let reported = |cx: &Ctx<'_>| -> Vec<(usize, usize)> {
        cx.errors
            .iter()
            .skip(before)
            .filter_map(|e| e.location.as_ref().map(|l| (l.line, l.column)))
            .collect()
    };
    let already = reported(cx);
    let Ok(consent) = ResourceType::parse("Consent") else {
        return;
    };
    if !cx.doc.value.is_object() {
        return;
    }
    let problems = accord_fhir::schema::check(&cx.doc.value, consent);
    let hint = "see hl7.org/fhir/R4/consent.html (checked with the official R4 JSON Schema)";
    for problem in &problems {
        let span = if problem.message.starts_with("Additional properties") {
            cx.doc.key_span(&problem.pointer)
        } else {
            cx.doc.value_span(&problem.pointer)
        };
        let error =
            cx.source
                .error_hint(span, format!("{}: {}", problem.path, problem.message), hint);
        let at = error.location.as_ref().map(|l| (l.line, l.column));
        if at.is_some_and(|at| already.contains(&at)) {
            continue;
        }
        cx.errors.push(error);
    }
    if !problems.is_empty() || cx.errors.len() > before {
        return;
    }
    match accord_fhir::validate_resource(cx.source.text.as_bytes(), consent) {
        Ok(_) => {}
        Err(ValidationError::EmptyOrNull { path, what }) => {
            let pointer = pointer_of(&path);
            cx.err(
                &pointer,
                format!("`{path}` is {what}"),
                "FHIR JSON has no empty arrays, empty objects or nulls: remove it",
            );
        }
        Err(e) => {
            let text = e.to_string();
            let mut error = cx.source.error_hint(None, text.clone(), hint);
            if let (Some(loc), Some((line, column))) = (error.location.as_mut(), line_column(&text))
            {
                loc.line = line;
                loc.column = column;
            }
            cx.errors.push(error);
        }
    }
}

/// `Consent.provision.actor[0]` → `/provision/actor/0`.
fn pointer_of(fhir_path: &str) -> String {
    let mut out = String::new();
    for part in fhir_path.split('.').skip(1) {
        let (name, rest) = part.split_once('[').unwrap_or((part, ""));
        out.push('/');
        out.push_str(&crate::spans::escape(name));
        for index in rest.split('[') {
            let index = index.trim_end_matches(']');
            if !index.is_empty() {
                out.push('/');
                out.push_str(index);
            }
        }
    }
    out
}

/// `... at line 3 column 14` in a serde_json (fhirbolt) message.
fn line_column(message: &str) -> Option<(usize, usize)> {
    let rest = message.rsplit_once("line ")?.1;
    let (line, rest) = rest.split_once(" column ")?;
    let column: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some((line.parse().ok()?, column.parse().ok()?))
}
