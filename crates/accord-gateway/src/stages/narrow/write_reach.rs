//! Writes reach only patients in reach: before an update or delete is
//! forwarded, the resource as it stands upstream is read and every patient
//! it belongs to must be within the partner's reach; every patient the new
//! body names must be in reach too, and must exist.
//!
//! The answers do not tell "out of reach" from "does not exist": an
//! existing resource out of reach is answered exactly like a missing one
//! (404), and a body naming a patient out of reach exactly like one naming
//! a patient who does not exist (403). An update never creates: `PUT` of
//! an unknown id is answered 404 like `PUT` of a resource out of reach, or
//! the status would tell them apart.

use std::collections::BTreeSet;

use accord_fhir::compartment::{PatientLinks, patient_links};
use accord_fhir::{FhirRequest, Interaction, Method, ResourceId, ResourceType, SearchParams};
use accord_policy::PolicySet;
use bytes::Bytes;
use http::StatusCode;
use serde_json::Value;

use crate::error::GatewayError;
use crate::request::RequestContext;
use crate::scope::Scope;
use crate::stages::Gateway;
use crate::upstream::referral::MAX_PATIENTS_PER_REQUEST;

/// The answer for an existing resource out of reach: that of a missing one.
fn missing() -> GatewayError {
    GatewayError::withheld_as_missing("outside_reach")
}

fn outside(patient: &str) -> GatewayError {
    GatewayError::forbidden(format!("patient `{patient}` is outside your agreement"))
}

// === impl Gateway ===

impl Gateway {
    /// Checks a create, update or delete (`body` as it will be forwarded)
    /// against the reach of `scope`; other interactions pass.
    pub(crate) async fn check_write_reach(
        &self,
        fhir: &FhirRequest,
        body: &Bytes,
        scope: &Scope<'_>,
        policies: &PolicySet,
        ctx: &mut RequestContext,
    ) -> Result<(), GatewayError> {
        let (existing, new_body) = match &fhir.interaction {
            Interaction::Create { .. } => (None, true),
            Interaction::Update { ty, id } => (Some((*ty, id)), true),
            Interaction::Delete { ty, id } => (Some((*ty, id)), false),
            _ => return Ok(()),
        };
        let mut held = BTreeSet::new();
        if let Some((ty, id)) = existing {
            let current = self.read_upstream(ty, id, ctx).await?.ok_or_else(missing)?;
            match patient_links(&current) {
                PatientLinks::NotPatientData => {}
                PatientLinks::Undetermined => return Err(missing()),
                PatientLinks::Patients(patients) => held = patients,
            }
        }
        let mut named = BTreeSet::new();
        if new_body {
            let resource: Value =
                serde_json::from_slice(body).map_err(|_| GatewayError::internal())?;
            if let PatientLinks::Patients(patients) = patient_links(&resource) {
                named = patients;
            }
        }
        if held.len() + named.len() > MAX_PATIENTS_PER_REQUEST {
            return Err(GatewayError::forbidden(format!(
                "a write may name at most {MAX_PATIENTS_PER_REQUEST} patients"
            )));
        }
        let all: BTreeSet<String> = held.union(&named).cloned().collect();
        if let Some(parties) = scope.referral_parties() {
            self.resolve_referrals(scope, policies, &parties, all, ctx)
                .await?;
        }
        if held.iter().any(|p| !scope.patient_in_reach(p)) {
            return Err(missing());
        }
        for patient in &named {
            // The Patient being written names itself; it exists (checked above).
            let exists = existing.is_some_and(|(ty, id)| {
                ty == ResourceType::PATIENT && id.as_str() == patient.as_str()
            }) || self.patient_exists(patient, ctx).await?;
            if !exists || !scope.patient_in_reach(patient) {
                return Err(outside(patient));
            }
        }
        Ok(())
    }

    /// Whether the upstream holds `Patient/<id>`.
    async fn patient_exists(
        &self,
        patient: &str,
        ctx: &mut RequestContext,
    ) -> Result<bool, GatewayError> {
        let Ok(id) = ResourceId::parse(patient) else {
            return Ok(false);
        };
        Ok(self
            .read_upstream(ResourceType::PATIENT, &id, ctx)
            .await?
            .is_some())
    }

    /// The current version of `ty/id` upstream; `None` when there is none.
    async fn read_upstream(
        &self,
        ty: ResourceType,
        id: &ResourceId,
        ctx: &mut RequestContext,
    ) -> Result<Option<Value>, GatewayError> {
        let request = FhirRequest {
            method: Method::Get,
            interaction: Interaction::Read { ty, id: id.clone() },
            params: SearchParams::default(),
        };
        let response = self
            .upstream
            .send(
                &request,
                Bytes::new(),
                None,
                &ctx.request_id,
                &mut ctx.upstream_wait,
            )
            .await?;
        match response.status {
            StatusCode::NOT_FOUND | StatusCode::GONE => Ok(None),
            status if status.is_success() => serde_json::from_slice(&response.body)
                .map(Some)
                .map_err(|_| GatewayError::upstream_invalid()),
            status => {
                tracing::warn!(%status, "upstream read before a write failed");
                Err(GatewayError::upstream_invalid())
            }
        }
    }
}
