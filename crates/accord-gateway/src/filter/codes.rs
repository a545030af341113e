//! The codes a resource carries, for the sensitivity check.
//!
//! A resource is sensitive if *any* of its codings is in a sensitive value
//! set, wherever it sits: `reasonCode` of an Encounter or a prescription,
//! a `component`, a contained Condition. Reading only the usual top-level
//! elements (`code`, `category`, ...) let an unlabelled opioid-use-disorder
//! diagnosis in `Encounter.reasonCode` leave without the Part 2 checks.

use accord_policy::Coding;
use serde_json::{Map, Value, json};

/// Every `system` + `code` pair anywhere in `resource` (Codings, and the
/// codings of CodeableConcepts, at any depth, contained resources included).
pub fn every_coding(resource: &Value) -> Vec<Coding> {
    let mut out = Vec::new();
    collect(resource, &mut out);
    out
}

/// The `meta.security` labels of the contained resources: a label on a
/// contained diagnosis marks the container that carries it.
pub fn contained_labels(resource: &Value) -> Vec<Coding> {
    resource
        .get("contained")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|inner| inner.pointer("/meta/security").and_then(Value::as_array))
        .flatten()
        .filter_map(|label| {
            let system = label.get("system")?.as_str()?;
            let code = label.get("code")?.as_str()?;
            Some(Coding::new(system, code))
        })
        .collect()
}

/// Adds the coding `system|code` to the list `meta.<list>` (`security`,
/// `tag`) of a resource, once; creates `meta` and the list if missing and
/// leaves a `meta` or list of another shape alone.
pub fn add_meta_coding(
    resource: &mut Map<String, Value>,
    list: &str,
    (system, code, display): (&str, &str, &str),
) {
    let meta = resource
        .entry("meta")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(meta) = meta.as_object_mut() else {
        return;
    };
    let codings = meta.entry(list).or_insert_with(|| Value::Array(Vec::new()));
    let Some(codings) = codings.as_array_mut() else {
        return;
    };
    let present = codings.iter().any(|c| {
        c.get("system").and_then(Value::as_str) == Some(system)
            && c.get("code").and_then(Value::as_str) == Some(code)
    });
    if !present {
        codings.push(json!({"system": system, "code": code, "display": display}));
    }
}

fn collect(value: &Value, out: &mut Vec<Coding>) {
    match value {
        Value::Object(fields) => {
            if let (Some(Value::String(system)), Some(Value::String(code))) =
                (fields.get("system"), fields.get("code"))
            {
                out.push(Coding::new(system, code));
            }
            for inner in fields.values() {
                if inner.is_object() || inner.is_array() {
                    collect(inner, out);
                }
            }
        }
        Value::Array(items) => {
            for inner in items {
                collect(inner, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn finds_codes_in_any_element_and_in_contained_resources() {
        let plan = json!({
            "resourceType": "CarePlan",
            "category": [{"coding": [{"system": "s", "code": "top"}]}],
            "activity": [{"detail": {"reasonCode": [{"coding": [{"system": "s", "code": "deep"}]}]}}],
            "contained": [{"resourceType": "Condition", "code": {"coding": [{"system": "s", "code": "inner"}]}}]
        });
        let codes: Vec<String> = every_coding(&plan).iter().map(|c| c.code.clone()).collect();
        assert_eq!(codes.len(), 3, "{codes:?}");
        for code in ["top", "deep", "inner"] {
            assert!(codes.iter().any(|c| c == code), "{code} in {codes:?}");
        }
    }
}
