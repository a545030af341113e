//! Building an [`AccessRequest`] from a parsed FHIR request.

use std::fmt;

use accord_fhir::{
    FhirRequest, Interaction, InteractionKind, OperationTarget, Purpose, ResourceType,
};
use time::OffsetDateTime;

use super::AccessRequest;
use crate::ids::PartnerId;

// === impl AccessRequest ===

impl<'a> AccessRequest<'a> {
    /// The policy view of a parsed FHIR request.
    pub fn from_fhir(
        partner: &'a PartnerId,
        purpose: &'a Purpose,
        request: &'a FhirRequest,
        at: OffsetDateTime,
    ) -> Self {
        let operation = match &request.interaction {
            Interaction::Operation { name, .. } => Some(name.as_str()),
            _ => None,
        };
        AccessRequest {
            partner,
            purpose,
            interaction: request.interaction.kind(),
            resource_type: request.resource_type(),
            at,
            patient: patient_of(request),
            operation,
        }
    }

    /// A search or history that names no patient.
    pub fn is_population_level(&self) -> bool {
        matches!(
            self.interaction,
            InteractionKind::Search | InteractionKind::History
        ) && self.patient.is_none()
    }
}

/// The single patient a request is about, when it says.
fn patient_of(request: &FhirRequest) -> Option<String> {
    let patient = |id: &dyn fmt::Display| Some(format!("Patient/{id}"));
    match &request.interaction {
        Interaction::Read { ty, id }
        | Interaction::VRead { ty, id, .. }
        | Interaction::HistoryInstance { ty, id }
        | Interaction::Update { ty, id }
        | Interaction::Patch { ty, id }
        | Interaction::Delete { ty, id }
            if *ty == ResourceType::PATIENT =>
        {
            patient(id)
        }
        Interaction::SearchCompartment {
            compartment, id, ..
        } if *compartment == ResourceType::PATIENT => patient(id),
        Interaction::Operation {
            target: OperationTarget::Instance(ty, id),
            ..
        } if *ty == ResourceType::PATIENT => patient(id),
        Interaction::SearchType { ty } => {
            let names: &[&str] = if *ty == ResourceType::PATIENT {
                &["_id"]
            } else {
                &["patient", "subject"]
            };
            let values: Vec<&str> = request
                .params
                .iter()
                .filter(|(name, _)| {
                    let base = name.strip_suffix(":Patient").unwrap_or(name);
                    names.contains(&base)
                })
                .map(|(_, v)| v)
                .collect();
            match values.as_slice() {
                [one] if !one.contains(',') => {
                    let id = one.strip_prefix("Patient/").unwrap_or(one);
                    (!id.contains('/') && !id.is_empty()).then(|| format!("Patient/{id}"))
                }
                _ => None,
            }
        }
        _ => None,
    }
}
