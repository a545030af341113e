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
    // fhirbolt's default mode is strict.
    fhirbolt::json::from_slice::<fhirbolt::model::r4::Resource>(body, None).map_err(|e| {
        ValidationError::NotR4 {
            ty: expected,
            reason: e.to_string(),
        }
    })?;
    Ok(value)
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
            Err(ValidationError::NotR4 { .. })
        ));
        assert!(matches!(
            validate_resource(b"{", task()),
            Err(ValidationError::NotJson(_))
        ));
    }
}
