//! A Patient compartment search (`Patient/123/Observation`) is served as
//! the type search that names the patient (`Observation?patient=Patient/123`),
//! rewritten before the decision. Then a patient out of reach and a
//! patient who does not exist take the same path as any type search and
//! get the same answer (issue 15, item 6), and the partner's client gets
//! data instead of a refusal.
//!
//! The type search names the patient through one of the compartment's own
//! parameters, so it finds no more than the compartment holds. A
//! compartment search that cannot be rewritten (another compartment, all
//! types) stays one; narrowing refuses it, for every patient alike.

use accord_fhir::compartment::patient_search_params;
use accord_fhir::{FhirRequest, Interaction, ResourceType};

/// Rewrites a Patient compartment search of one type in place.
pub fn as_type_search(request: &mut FhirRequest) {
    let Interaction::SearchCompartment {
        compartment,
        id,
        ty: Some(ty),
    } = &request.interaction
    else {
        return;
    };
    if *compartment != ResourceType::PATIENT {
        return;
    }
    let (ty, id) = (*ty, id.as_str().to_owned());
    let (name, value) = if ty == ResourceType::PATIENT {
        ("_id", id)
    } else {
        let params: Vec<&str> = patient_search_params(ty).collect();
        let Some(name) = ["patient", "subject"]
            .into_iter()
            .find(|p| params.contains(p))
            .or_else(|| params.first().copied())
        else {
            return;
        };
        (name, format!("Patient/{id}"))
    };
    request.params.push(name, &value);
    request.interaction = Interaction::SearchType { ty };
}

#[cfg(test)]
mod tests {
    use super::*;
    use accord_fhir::{Method, ResourceId, SearchParams};

    fn compartment(ty: &str) -> FhirRequest {
        FhirRequest {
            method: Method::Get,
            interaction: Interaction::SearchCompartment {
                compartment: ResourceType::PATIENT,
                id: ResourceId::parse("p1").unwrap(),
                ty: Some(ResourceType::parse(ty).unwrap()),
            },
            params: SearchParams::parse_query("_count=2").unwrap(),
        }
    }

    #[test]
    fn a_patient_compartment_search_names_the_patient() {
        let mut request = compartment("Observation");
        as_type_search(&mut request);
        assert_eq!(request.relative_path(), "Observation");
        assert_eq!(
            request.params.to_query_string(),
            "_count=2&subject=Patient%2Fp1"
        );
        let mut request = compartment("Patient");
        as_type_search(&mut request);
        assert_eq!(request.params.to_query_string(), "_count=2&_id=p1");
    }
}
