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
    }
    resource
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
