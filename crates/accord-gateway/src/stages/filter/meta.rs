//! Codings the gateway adds to a released resource's `meta` (the §2.32
//! labels, the SUBSETTED tag). Reading a resource's codes is the policy's
//! job: `accord_policy::ResourceFacts`.

use serde_json::{Map, Value, json};

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
