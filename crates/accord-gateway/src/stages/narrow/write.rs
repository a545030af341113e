//! Writes (referral feedback loops): what a partner sends is checked like
//! what it reads, then stamped with who sent it.

use accord_fhir::compartment::{PatientLinks, patient_links};
use accord_fhir::{FhirRequest, Interaction, ValidationError, validate_resource};
use accord_policy::PartnerId;
use bytes::Bytes;
use serde_json::{Value, json};

use crate::error::GatewayError;
use crate::request::PARTNER_TAG_SYSTEM;
use crate::scope::Scope;

/// Checks a create or update body and returns what to forward; other
/// interactions pass their (empty) body through.
///
/// The body must be a valid R4 resource of the type (and, for updates, the
/// id) the URL names; patient data must name patients within the partner's
/// reach; the partner is recorded in `meta.source` and a `meta.tag`.
pub fn prepare_write(
    request: &FhirRequest,
    body: Bytes,
    scope: &Scope<'_>,
    partner: &PartnerId,
) -> Result<Bytes, GatewayError> {
    let (ty, id) = match &request.interaction {
        Interaction::Create { ty } => (*ty, None),
        Interaction::Update { ty, id } => (*ty, Some(id)),
        // A JSON Patch cannot be checked against the grant before it is
        // applied upstream.
        Interaction::Patch { .. } => {
            return Err(GatewayError::forbidden(
                "patch is not supported; send the whole resource with PUT",
            ));
        }
        _ => return Ok(body),
    };
    let mut resource = validate_resource(&body, ty).map_err(|e| match e {
        // Not a resource of the right type at all: a malformed request.
        ValidationError::NotJson(_) | ValidationError::WrongType { .. } => {
            GatewayError::bad_request(e.to_string())
        }
        // A resource that breaks R4's rules: unprocessable, whatever the rule.
        ValidationError::NotR4 { .. } | ValidationError::EmptyOrNull { .. } => {
            GatewayError::unprocessable(e.to_string())
        }
        ValidationError::Schema { ref problems, .. } => {
            let details = problems
                .iter()
                .map(|p| (p.path.clone(), p.message.clone()))
                .collect();
            GatewayError::unprocessable(e.to_string()).with_details(details)
        }
    })?;
    if let Some(id) = id {
        let body_id = resource.get("id").and_then(Value::as_str);
        if body_id != Some(id.as_str()) {
            return Err(GatewayError::bad_request(format!(
                "the resource id must be `{id}`, as in the URL"
            )));
        }
    }
    match patient_links(&resource) {
        PatientLinks::NotPatientData => {}
        PatientLinks::Undetermined => {
            return Err(GatewayError::forbidden(format!(
                "a `{ty}` must reference its patient (e.g. `Patient/123`)"
            )));
        }
        PatientLinks::Patients(patients) => {
            if let Some(outside) = patients.iter().find(|p| !scope.patient_in_cohort(p)) {
                return Err(GatewayError::forbidden(format!(
                    "patient `{outside}` is outside your agreement"
                )));
            }
        }
    }
    stamp(&mut resource, partner);
    serde_json::to_vec(&resource)
        .map(Bytes::from)
        .map_err(|_| GatewayError::internal())
}

/// Records the writing partner in `meta.source` and a `meta.tag`.
fn stamp(resource: &mut Value, partner: &PartnerId) {
    let Some(fields) = resource.as_object_mut() else {
        return;
    };
    let meta = fields.entry("meta").or_insert_with(|| json!({}));
    let Some(meta) = meta.as_object_mut() else {
        return;
    };
    meta.insert(
        "source".into(),
        format!("{PARTNER_TAG_SYSTEM}:{partner}").into(),
    );
    let tag = json!({"system": PARTNER_TAG_SYSTEM, "code": partner.as_str()});
    match meta.get_mut("tag").and_then(Value::as_array_mut) {
        Some(tags) => {
            tags.retain(|t| t.get("system").and_then(Value::as_str) != Some(PARTNER_TAG_SYSTEM));
            tags.push(tag);
        }
        None => {
            meta.insert("tag".into(), json!([tag]));
        }
    }
}
