//! FHIR R4 element paths that agreements may redact.
//!
//! Checked against the element table accord-fhir generates from the
//! official R4 StructureDefinitions (`tools/gen-elements.py`): every
//! resource type, backbone element, choice type (`value[x]` and
//! `valueQuantity`) and data type child (`Patient.name.given`).

use accord_fhir::{ElementPathError, check_element_path};

/// Checks `path` (`Patient.address`, `Patient.name.given`,
/// `Observation.valueQuantity`) against FHIR R4; `Err` says why, in words
/// (`unknown element Patient.adress (did you mean Patient.address?)`).
pub fn check_path(path: &str) -> Result<(), String> {
    check_element_path(path).map_err(|e| match e {
        ElementPathError::UnknownType(ty) => {
            format!("`{ty}` in `{path}` is not a FHIR R4 resource type")
        }
        other => other.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_paths_pass_and_typos_get_suggestions() {
        assert!(check_path("Patient.address").is_ok());
        assert!(check_path("Patient.name.given").is_ok());
        assert!(check_path("Observation.valueQuantity").is_ok());
        assert!(check_path("Observation.note").is_ok());
        assert!(check_path("Coverage.subscriberId").is_ok());
        let err = check_path("Patient.adress").unwrap_err();
        assert_eq!(
            err,
            "unknown element Patient.adress (did you mean Patient.address?)"
        );
        assert!(check_path("Patient.name.middle").is_err());
        assert!(check_path("Spaceship.hull").is_err());
    }
}
