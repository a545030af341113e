//! Validation of resources partners send (writes) against the R4 model.

use serde_json::Value;

use crate::resource_type::ResourceType;

/// Why a submitted resource was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("body is not JSON: {0}")]
    NotJson(String),
    #[error("body is a `{found}`, the request is for `{expected}`")]
    WrongType {
        expected: ResourceType,
        found: String,
    },
    #[error("body is not a valid R4 `{ty}`: {reason}")]
    NotR4 { ty: ResourceType, reason: String },
    #[error("`{path}` is {what}; FHIR JSON has no empty arrays, empty objects or nulls")]
    EmptyOrNull { path: String, what: &'static str },
    #[error("body is not a valid R4 `{ty}`: {} problem(s), the first at `{}`", .problems.len(), .problems.first().map_or("", |p| p.path.as_str()))]
    Schema {
        ty: ResourceType,
        problems: Vec<crate::schema::SchemaProblem>,
    },
}

/// Checks that `body` is JSON for a resource of type `expected` that the R4
/// model accepts in strict mode (unknown elements and wrong types refused),
/// and returns it parsed.
pub fn validate_resource(body: &[u8], expected: ResourceType) -> Result<Value, ValidationError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| ValidationError::NotJson(e.to_string()))?;
    let found = value
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or("");
    if found != expected.as_str() {
        return Err(ValidationError::WrongType {
            expected,
            found: found.to_owned(),
        });
    }
    // FHIR JSON forbids these, and fhirbolt 0.4 panics on empty arrays
    // instead of returning an error: refuse them before it sees the body.
    reject_empty_or_null(&value, &mut String::from(expected.as_str()))?;
    // The official R4 schema catches what the model lets through (codes,
    // dates, arrays for single values) and says where.
    let problems = crate::schema::check(&value, expected);
    if !problems.is_empty() {
        return Err(ValidationError::Schema {
            ty: expected,
            problems,
        });
    }
    // Defence in depth: any other panic inside the model is a refusal, not a
    // crashed request. fhirbolt's default mode is strict.
    let parsed = std::panic::catch_unwind(|| {
        fhirbolt::json::from_slice::<fhirbolt::model::r4::Resource>(body, None)
    });
    match parsed {
        Ok(Ok(_)) => Ok(value),
        Ok(Err(e)) => Err(ValidationError::NotR4 {
            ty: expected,
            reason: e.to_string(),
        }),
        Err(_) => Err(ValidationError::NotR4 {
            ty: expected,
            reason: "the resource could not be read".to_owned(),
        }),
    }
}

/// Finds the first empty array, empty object or misplaced null. Nulls are
/// allowed only inside arrays (to align primitive values with their `_x`
/// extensions).
fn reject_empty_or_null(value: &Value, path: &mut String) -> Result<(), ValidationError> {
    let fail = |path: &str, what| {
        Err(ValidationError::EmptyOrNull {
            path: path.to_owned(),
            what,
        })
    };
    match value {
        Value::Array(items) if items.is_empty() => fail(path, "an empty array"),
        Value::Array(items) => {
            if items.iter().all(Value::is_null) {
                return fail(path, "an array of nulls");
            }
            for (i, item) in items.iter().enumerate() {
                if !item.is_null() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    reject_empty_or_null(item, path)?;
                    path.truncate(len);
                }
            }
            Ok(())
        }
        Value::Object(fields) if fields.is_empty() => fail(path, "an empty object"),
        Value::Object(fields) => {
            for (name, field) in fields {
                let len = path.len();
                path.push('.');
                path.push_str(name);
                if field.is_null() {
                    return fail(path, "null");
                }
                reject_empty_or_null(field, path)?;
                path.truncate(len);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task() -> ResourceType {
        ResourceType::parse("Task").unwrap()
    }

    #[test]
    fn accepts_a_valid_resource() {
        let body = br#"{"resourceType":"Task","status":"requested","intent":"order"}"#;
        assert!(validate_resource(body, task()).is_ok());
    }

    #[test]
    fn refuses_wrong_type_unknown_elements_and_bad_json() {
        let patient = br#"{"resourceType":"Patient"}"#;
        assert!(matches!(
            validate_resource(patient, task()),
            Err(ValidationError::WrongType { .. })
        ));
        let unknown = br#"{"resourceType":"Task","status":"requested","intent":"order","bogus":1}"#;
        assert!(matches!(
            validate_resource(unknown, task()),
            Err(ValidationError::Schema { .. } | ValidationError::NotR4 { .. })
        ));
        assert!(matches!(
            validate_resource(b"{", task()),
            Err(ValidationError::NotJson(_))
        ));
    }

    #[test]
    fn empty_arrays_objects_and_nulls_are_refused_without_panicking() {
        let cases = [
            (
                r#"{"resourceType":"Task","status":"requested","intent":"order","input":[]}"#,
                "Task.input",
            ),
            (
                r#"{"resourceType":"Task","status":"requested","intent":"order","for":{}}"#,
                "Task.for",
            ),
            (
                r#"{"resourceType":"Task","status":"requested","intent":"order","note":[{"text":"a","extension":[]}]}"#,
                "Task.note[0].extension",
            ),
            (
                r#"{"resourceType":"Task","status":"requested","intent":"order","description":null}"#,
                "Task.description",
            ),
        ];
        for (body, path) in cases {
            match validate_resource(body.as_bytes(), task()) {
                Err(ValidationError::EmptyOrNull { path: found, .. }) => assert_eq!(found, path),
                other => panic!("{body}: {other:?}"),
            }
        }
    }
}
