//! Element redaction: what a grant says must not leave is removed, with the
//! narrative that could repeat it, and the resource is labelled REDACTED so
//! the recipient knows it is incomplete.

use serde_json::{Value, json};

/// HL7 v3 ObservationValue code system, which holds the `REDACTED` label.
const OBSERVATION_VALUE: &str = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue";

/// Removes each `Type.path.to.element` (through arrays; `value[x]` removes
/// every `value*` choice); if anything was removed, also the narrative
/// `text` and adds the `REDACTED` security label. A resource without the
/// elements is released as it is.
pub fn redact(mut resource: Value, paths: &[String]) -> Value {
    let before = resource.clone();
    for path in paths {
        let mut segments = path.split('.');
        let _type = segments.next();
        let segments: Vec<&str> = segments.collect();
        remove(&mut resource, &segments);
    }
    if resource == before {
        return resource;
    }
    if let Some(fields) = resource.as_object_mut() {
        fields.remove("text");
        let meta = fields.entry("meta").or_insert_with(|| json!({}));
        *meta = labelled_meta(std::mem::take(meta));
    }
    resource
}

/// What [`redact_raw`] made of a resource.
#[derive(Debug, PartialEq, Eq)]
pub enum RawRedaction {
    /// None of the elements was there: the resource leaves as it is.
    Unchanged,
    /// The resource without them, labelled (the same content as [`redact`]
    /// produces; members keep the upstream's bytes and order).
    Redacted(Vec<u8>),
}

/// [`redact`] on the bytes of a resource (valid JSON, as checked by the
/// pruned parse), when every path names a top-level element
/// (`Patient.address`, `Observation.value[x]`): those members are left out
/// of a copy, and so is `text`, and `meta` alone is parsed and rebuilt to
/// carry the label. `None` when the bytes are not an object or a path goes
/// deeper: the caller then redacts the parsed resource.
pub fn redact_raw(resource: &[u8], paths: &[String]) -> Option<RawRedaction> {
    let mut elements = Vec::with_capacity(paths.len());
    for path in paths {
        let mut segments = path.split('.');
        let _type = segments.next();
        match (segments.next(), segments.next()) {
            (None, _) => {}
            (Some(element), None) => elements.push(element),
            (Some(_), Some(_)) => return None,
        }
    }
    let members = super::scan::object(resource)?;
    let removed = |key: &str| {
        elements
            .iter()
            .any(|element| match element.strip_suffix("[x]") {
                Some(prefix) => is_choice_of(key, prefix),
                // The primitive's extension twin (`_birthDate`) goes too.
                None => key == *element || key.strip_prefix('_') == Some(*element),
            })
    };
    if !members.iter().any(|m| removed(&m.key)) {
        return Some(RawRedaction::Unchanged);
    }
    let mut out = Vec::with_capacity(resource.len() + 96);
    out.push(b'{');
    let mut labelled = false;
    for member in &members {
        if removed(&member.key) || member.key == "text" {
            continue;
        }
        if out.len() > 1 {
            out.push(b',');
        }
        // Writing a string into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut out, member.key.as_ref());
        out.push(b':');
        if member.key == "meta" && !labelled {
            labelled = true;
            let meta: Value = serde_json::from_slice(member.value).ok()?;
            let _ = serde_json::to_writer(&mut out, &labelled_meta(meta));
        } else {
            out.extend_from_slice(member.value);
        }
    }
    if !labelled {
        if out.len() > 1 {
            out.push(b',');
        }
        out.extend_from_slice(b"\"meta\":");
        let _ = serde_json::to_writer(&mut out, &labelled_meta(json!({})));
    }
    out.push(b'}');
    Some(RawRedaction::Redacted(out))
}

/// `meta` with the `REDACTED` label added (once); anything but an object
/// is left as it is.
fn labelled_meta(mut meta: Value) -> Value {
    if let Some(meta) = meta.as_object_mut() {
        let label = json!({"system": OBSERVATION_VALUE, "code": "REDACTED"});
        match meta.get_mut("security").and_then(Value::as_array_mut) {
            Some(labels) if labels.contains(&label) => {}
            Some(labels) => labels.push(label),
            None => {
                meta.insert("security".into(), json!([label]));
            }
        }
    }
    meta
}

fn remove(value: &mut Value, path: &[&str]) {
    match value {
        Value::Array(items) => {
            for item in items {
                remove(item, path);
            }
        }
        Value::Object(fields) => match path {
            [] => {}
            [last] => match last.strip_suffix("[x]") {
                Some(prefix) => fields.retain(|key, _| !is_choice_of(key, prefix)),
                None => {
                    fields.remove(*last);
                    // The primitive's extension twin (`_birthDate`) goes too.
                    fields.remove(&format!("_{last}"));
                }
            },
            [first, rest @ ..] => {
                let emptied = match fields.get_mut(*first) {
                    Some(next) => {
                        remove(next, rest);
                        is_empty(next)
                    }
                    None => false,
                };
                // FHIR JSON has no empty objects or arrays.
                if emptied {
                    fields.remove(*first);
                }
            }
        },
        _ => {}
    }
}

/// `valueQuantity` is a choice of `value[x]`; `valueSet` is not (the
/// suffix of a choice starts with an upper-case type name).
fn is_choice_of(key: &str, prefix: &str) -> bool {
    key.strip_prefix(prefix)
        .and_then(|rest| rest.chars().next())
        .is_some_and(char::is_uppercase)
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Array(items) => items.is_empty() || items.iter().all(is_empty),
        Value::Object(fields) => fields.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_elements_narrative_and_labels_the_resource() {
        let patient = json!({
            "resourceType": "Patient", "id": "p1",
            "text": {"status": "generated", "div": "<div>12 Main St</div>"},
            "address": [{"line": ["12 Main St"]}],
            "telecom": [{"system": "phone", "value": "555"}],
            "birthDate": "1970-01-01", "_birthDate": {"extension": [{"url": "x", "valueString": "y"}]},
            "name": [{"family": "Doe"}]
        });
        let out = redact(
            patient,
            &["Patient.address".into(), "Patient.birthDate".into()],
        );
        assert!(out.get("address").is_none() && out.get("text").is_none());
        assert!(out.get("birthDate").is_none() && out.get("_birthDate").is_none());
        assert_eq!(out["telecom"][0]["value"], "555");
        assert_eq!(out["meta"]["security"][0]["code"], "REDACTED");
        let parsed: Result<fhirbolt::model::r4::Resource, _> =
            fhirbolt::json::from_str(&out.to_string(), None);
        assert!(
            parsed.is_ok(),
            "a redacted resource stays valid R4: {parsed:?}"
        );
    }

    /// The byte path's output, parsed, against the tree path's.
    fn same_as_tree(text: &str, paths: &[&str]) -> RawRedaction {
        let paths: Vec<String> = paths.iter().map(|p| (*p).to_owned()).collect();
        let tree = redact(serde_json::from_str(text).unwrap(), &paths);
        let raw = redact_raw(text.as_bytes(), &paths).unwrap();
        let bytes = match &raw {
            RawRedaction::Unchanged => text.as_bytes().to_vec(),
            RawRedaction::Redacted(bytes) => bytes.clone(),
        };
        let parsed: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&bytes)));
        assert_eq!(parsed, tree, "{text} {paths:?}");
        raw
    }

    #[test]
    fn bytes_and_tree_redact_alike() {
        let cases: &[(&str, &[&str])] = &[
            // Whitespace everywhere, the extension twin, narrative, no meta.
            (
                " {\n \"resourceType\" : \"Patient\" ,\t\"text\":{\"div\":\"<div>12 Main St</div>\"},\r\n\"address\" : [ {\"line\":[\"12 Main St\"]} ] , \"_address\":[{\"id\":\"x\"}], \"gender\":\"female\" } ",
                &["Patient.address", "Patient.telecom"],
            ),
            // An escaped key is the same element; escaped and unicode values stay.
            (
                r#"{"resourceType":"Patient","addr\u0065ss":[{"city":"Z\u00fcrich \"x\" \\"}],"name":[{"family":"M\u00fcller","given":["\ud83d\ude00"]}]}"#,
                &["Patient.address"],
            ),
            // The same name nested (in an extension, a contained resource)
            // is not the top-level element.
            (
                r#"{"resourceType":"Patient","extension":[{"url":"u","address":1,"valueAddress":{"city":"c"}}],"contained":[{"resourceType":"Patient","address":[{"city":"c"}]}],"telecom":[{"value":"555"}]}"#,
                &["Patient.address", "Patient.telecom"],
            ),
            // Existing meta with labels: the label is added once, in place.
            (
                r#"{"resourceType":"Patient","meta":{"versionId":"1","security":[{"system":"s","code":"N"}]},"telecom":[{"value":"1"}],"id":"p"}"#,
                &["Patient.telecom"],
            ),
            (
                r#"{"resourceType":"Patient","meta":{"security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ObservationValue","code":"REDACTED"}]},"telecom":[]}"#,
                &["Patient.telecom"],
            ),
            (
                r#"{"resourceType":"Patient","meta":{"security":"odd"},"telecom":[{"value":"1"}]}"#,
                &["Patient.telecom"],
            ),
            // Choice elements: every `value*` with an upper-case type, not `valueSet`.
            (
                r#"{"resourceType":"Observation","valueQuantity":{"value":1},"_valueString":{"id":"x"},"valueSet":"keep","value":"keep","status":"final"}"#,
                &["Observation.value[x]"],
            ),
            // Nothing to remove: unchanged, narrative kept.
            (
                r#"{"resourceType":"Patient","text":{"div":"<div/>"},"name":[{"family":"D"}]}"#,
                &["Patient.address", "Patient"],
            ),
            // Removing meta itself still leaves the label.
            (
                r#"{"resourceType":"Patient","meta":{"versionId":"2"},"id":"p"}"#,
                &["Patient.meta"],
            ),
        ];
        for (text, paths) in cases {
            same_as_tree(text, paths);
        }
        assert_eq!(
            same_as_tree(cases[7].0, cases[7].1),
            RawRedaction::Unchanged
        );
    }

    #[test]
    fn bytes_are_left_to_the_tree_for_nested_paths_and_non_objects() {
        let text = br#"{"resourceType":"Observation","note":[{"text":"x"}]}"#;
        assert_eq!(redact_raw(text, &["Observation.note.text".into()]), None);
        assert_eq!(redact_raw(b"[1]", &["Patient.address".into()]), None);
    }

    #[test]
    fn a_resource_without_the_elements_is_left_as_it_is() {
        let patient = json!({"resourceType": "Patient", "id": "p", "text": {"status": "generated", "div": "<div>x</div>"}});
        assert_eq!(redact(patient.clone(), &["Patient.photo".into()]), patient);
    }

    #[test]
    fn removes_nested_and_choice_elements_without_leaving_empty_objects() {
        let observation = json!({
            "resourceType": "Observation", "status": "final", "code": {"text": "x"},
            "valueQuantity": {"value": 1}, "note": [{"text": "private"}],
            "component": [{"code": {"text": "c"}, "valueString": "v"}]
        });
        let out = redact(
            observation,
            &[
                "Observation.value[x]".into(),
                "Observation.note.text".into(),
                "Observation.component.value[x]".into(),
            ],
        );
        assert!(out.get("valueQuantity").is_none());
        assert!(
            out.get("note").is_none(),
            "a note without text is removed whole: {out}"
        );
        assert!(out["component"][0].get("valueString").is_none());
        assert_eq!(out["component"][0]["code"]["text"], "c");
    }
}
