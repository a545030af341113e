//! Stage 7, record (→ `Recorded`), the audit: one durable record per request,
//! before anything is sent.

use std::sync::Arc;

use accord_audit::{
    AgreementRef, AppendDone, AuditError, AuditRecord, AuditSink, DecisionKind, PatientRelease,
    RECORD_SCHEMA_VERSION, Receipt, TypeCounts,
};
use accord_fhir::{FhirRequest, Interaction, InteractionKind};
use accord_policy::{Decision, Permit};
use http::StatusCode;
use time::OffsetDateTime;

use crate::bounded::{MESSAGE, SHORT, TARGET, bounded, bounded_owned};
use crate::error::GatewayError;
use crate::request::{Releasable, RequestContext};
use crate::stages::Gateway;
use crate::stages::respond::Outcome;

/// record: the request's outcome, with the sequence number of its durable
/// audit record (`None` only when the outcome is that the record could not
/// be written).
#[derive(Debug)]
pub struct Recorded {
    pub outcome: Outcome,
    pub seq: Option<u64>,
}

/// Builds the record for `ctx` ending in `status`.
pub fn record(ctx: &RequestContext, status: StatusCode, now: OffsetDateTime) -> AuditRecord {
    let (decision, rule, agreement) = match &ctx.decision {
        Some(decision @ Decision::Permit(permit)) => {
            let agreement = match permit {
                Permit::Grant {
                    agreement,
                    agreement_version,
                    grant,
                    ..
                } => Some(AgreementRef {
                    id: agreement.to_string(),
                    version: *agreement_version,
                    grant: grant.to_string(),
                }),
                Permit::Capabilities => None,
            };
            match (&ctx.refusal, ctx.withheld_as_missing) {
                // Permitted, but the resource asked for is one the partner
                // may not see: answered "not found", recorded as the denial
                // it is, with the reason.
                (_, Some(reason)) => (
                    DecisionKind::Deny,
                    format!(
                        "deny: withheld ({reason}), answered as not found (after {})",
                        decision.rule()
                    ),
                    agreement,
                ),
                // Permitted, then refused (a request shape, a failed
                // upstream): nothing was released, and the record says so
                // rather than reading as a disclosure.
                (Some(why), None) => (
                    DecisionKind::Refuse,
                    format!(
                        "refuse: {} (after {})",
                        bounded(why, MESSAGE),
                        decision.rule()
                    ),
                    agreement,
                ),
                (None, None) => (
                    DecisionKind::Permit,
                    bounded_owned(&decision.rule(), MESSAGE),
                    agreement,
                ),
            }
        }
        Some(decision @ Decision::Deny(_)) => (
            DecisionKind::Deny,
            bounded_owned(&decision.rule(), MESSAGE),
            None,
        ),
        // A batch or transaction has no decision of its own: each entry
        // was decided and audited under `<request id>-<index>`.
        None if ctx.interaction == Some(InteractionKind::Batch) && status.is_success() => (
            DecisionKind::Permit,
            "bundle: every entry decided and audited on its own".to_owned(),
            None,
        ),
        None => {
            let why = ctx.refusal.as_deref().unwrap_or("no decision was reached");
            (
                DecisionKind::Refuse,
                format!("refuse: {}", bounded(why, MESSAGE)),
                None,
            )
        }
    };
    let mut rules: Vec<String> = ctx
        .decision
        .as_ref()
        .and_then(Decision::obligations)
        .map(|o| {
            o.rules
                .iter()
                .map(|r| format!("{:?} `{}` in {}", r.kind, r.rule, r.file).to_lowercase())
                .collect()
        })
        .unwrap_or_default();
    // A volume cap turns the permit into a denial, naming the cap.
    let (decision, rule) = match &ctx.cap {
        Some(cap) => {
            let rule = format!("cap: {cap}");
            rules.push(rule.clone());
            (DecisionKind::Deny, rule)
        }
        None => (decision, rule),
    };
    let target = bounded_owned(&ctx.target, TARGET);
    let (path, query) = match ctx.target.split_once('?') {
        Some((path, query)) => (
            bounded_owned(path, TARGET),
            Some(bounded_owned(query, TARGET)),
        ),
        None => (target.clone(), None),
    };
    AuditRecord {
        schema: RECORD_SCHEMA_VERSION,
        seq: 0,
        time: now,
        request_id: ctx.request_id.clone(),
        partner: ctx.partner.as_ref().map(ToString::to_string),
        client_spki: ctx.client_pin.as_ref().map(|p| p.as_str().to_owned()),
        client_cert_sha256: ctx.client_cert_sha256.clone(),
        peer: ctx.peer.to_string(),
        purpose: ctx.purpose.as_ref().map(ToString::to_string),
        method: bounded_owned(&ctx.method, SHORT),
        target,
        interaction: ctx.interaction.map(|k| k.as_str().to_owned()),
        resource_type: ctx.resource_type.map(|t| t.as_str().to_owned()),
        decision,
        rule,
        rules,
        agreements: agreement.iter().cloned().collect(),
        agreement,
        policy_hash: ctx.policy_version.clone(),
        partner_name: ctx.partner_name.clone(),
        partner_address: ctx.partner_address.clone(),
        path: Some(path),
        query,
        patients: released_patients(ctx),
        bytes: ctx.bytes,
        status: status.as_u16(),
        error_source: ctx.error_source.map(|s| s.as_str().to_owned()),
        upstream_latency_us: ctx.upstream_wait.micros(),
        latency_us: u64::try_from(ctx.started.elapsed().as_micros()).unwrap_or(u64::MAX),
        quarantine: None,
        phase: ctx.intent_seq.map(|_| "outcome".to_owned()),
        intent_seq: ctx.intent_seq,
        withheld: ctx.report.withheld_reasons.clone(),
        subjects: ctx.subjects.iter().cloned().collect(),
        resource: ctx.resource.clone(),
    }
}

/// The resource an interaction acted on, `Type/id` (`/_history/<v>` for a
/// vread): from the request, or for a create from the upstream's answer
/// (its `Location`, else the id of the body it returned).
pub fn acted_on(fhir: &FhirRequest, headers: &http::HeaderMap, body: &[u8]) -> Option<String> {
    match &fhir.interaction {
        Interaction::Read { ty, id }
        | Interaction::Update { ty, id }
        | Interaction::Patch { ty, id }
        | Interaction::Delete { ty, id } => Some(format!("{ty}/{id}")),
        Interaction::VRead { ty, id, version } => Some(format!("{ty}/{id}/_history/{version}")),
        Interaction::Create { ty } => created(ty.as_str(), headers, body),
        _ => None,
    }
}

/// `Type/id` of a created resource: `Location: …/Type/id/_history/v`, or
/// the returned body's `id`.
fn created(ty: &str, headers: &http::HeaderMap, body: &[u8]) -> Option<String> {
    let from_location = headers
        .get(http::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|location| {
            let segments: Vec<&str> = location.split('/').collect();
            let at = segments.iter().rposition(|s| *s == ty)?;
            let id = segments.get(at + 1).filter(|id| !id.is_empty())?;
            accord_fhir::ResourceId::parse(id).ok()?;
            Some(format!("{ty}/{id}"))
        });
    from_location.or_else(|| {
        let value: serde_json::Value = serde_json::from_slice(body).ok()?;
        let id = value.get("id")?.as_str()?;
        accord_fhir::ResourceId::parse(id).ok()?;
        Some(format!("{ty}/{id}"))
    })
}

/// The record a write leaves before it is forwarded: who asks to change
/// what, under which rule. If it cannot be made durable, the write is
/// never sent.
pub fn intent(ctx: &RequestContext, now: OffsetDateTime) -> AuditRecord {
    let mut record = record(ctx, StatusCode::ACCEPTED, now);
    record.phase = Some("intent".to_owned());
    record.intent_seq = None;
    record.rule = format!("intent: {}", record.rule);
    record.patients = Vec::new();
    record.bytes = 0;
    record
}

/// Per patient, the resources released, withheld and redacted, by type,
/// and the sensitivity categories of what was released.
fn released_patients(ctx: &RequestContext) -> Vec<PatientRelease> {
    ctx.report
        .by_patient
        .iter()
        .filter(|(patient, _)| !patient.is_empty())
        .map(|(patient, types)| PatientRelease {
            patient: format!("Patient/{patient}"),
            sensitivity: ctx
                .report
                .sensitivity
                .get(patient)
                .map(|categories| categories.iter().map(ToString::to_string).collect())
                .unwrap_or_default(),
            resources: types
                .iter()
                .map(|(ty, counts)| TypeCounts {
                    resource_type: ty.clone(),
                    released: counts.released,
                    withheld: counts.withheld,
                    redacted: counts.redacted,
                })
                .collect(),
        })
        .collect()
}

/// Appends durably (the sink fsyncs) and waits without holding a thread:
/// the sink's writer wakes this task. A sink that can only block runs on a
/// blocking thread instead.
pub async fn append(
    sink: &Arc<dyn AuditSink>,
    record: AuditRecord,
) -> Result<Receipt, GatewayError> {
    let record = Arc::new(record);
    match append_once(sink, Arc::clone(&record)).await {
        Ok(Ok(receipt)) => Ok(receipt),
        Ok(Err(AuditError::TooLarge { bytes, limit })) => {
            // Bounded fields keep records far below the limit; if one still
            // grows past it (a response naming very many patients), the
            // request is refused and a smaller record says so: never a
            // record the log cannot hold, never an unaudited refusal.
            tracing::error!(
                bytes,
                limit,
                "audit record over the limit; recording a refusal instead"
            );
            let smaller = Arc::new(too_large(&record, bytes));
            match append_once(sink, smaller).await {
                Ok(Ok(_)) => Err(GatewayError::audit_unavailable()),
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "audit append failed; releasing nothing");
                    Err(GatewayError::audit_unavailable())
                }
                Err(e) => {
                    tracing::error!(error = %e, "audit task failed; releasing nothing");
                    Err(GatewayError::audit_unavailable())
                }
            }
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "audit append failed; releasing nothing");
            Err(GatewayError::audit_unavailable())
        }
        Err(e) => {
            tracing::error!(error = %e, "audit task failed; releasing nothing");
            Err(GatewayError::audit_unavailable())
        }
    }
}

/// One append; the outer `Err` is a lost task, the inner the store's answer.
async fn append_once(
    sink: &Arc<dyn AuditSink>,
    record: Arc<AuditRecord>,
) -> Result<Result<Receipt, AuditError>, String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let done: AppendDone = Box::new(move |result| {
        let _ = tx.send(result);
    });
    match sink.append_detached(&record, done) {
        Ok(()) => rx
            .await
            .map_err(|_| "the audit store dropped the append".to_owned()),
        Err(_) => {
            let sink = Arc::clone(sink);
            tokio::task::spawn_blocking(move || sink.append(&record))
                .await
                .map_err(|e| e.to_string())
        }
    }
}

/// The record of a request whose own record was too large: who, what,
/// refused, and why; no per-patient detail.
fn too_large(record: &AuditRecord, bytes: u64) -> AuditRecord {
    AuditRecord {
        decision: DecisionKind::Refuse,
        rule: format!(
            "refuse: the audit record of this request would be {bytes} bytes, over the log's record limit; nothing was released"
        ),
        rules: Vec::new(),
        patients: Vec::new(),
        query: record.query.as_deref().map(|q| bounded_owned(q, SHORT)),
        target: bounded_owned(&record.target, SHORT),
        status: StatusCode::SERVICE_UNAVAILABLE.as_u16(),
        bytes: 0,
        ..record.clone()
    }
}

// === impl Gateway ===

impl Gateway {
    /// The record stage, on every exit: one durable record of what
    /// happened. When it cannot be written the outcome becomes that
    /// failure.
    pub(super) async fn record(
        &self,
        ctx: &mut RequestContext,
        result: Result<Releasable, GatewayError>,
    ) -> Recorded {
        let status = match &result {
            Ok(released) => {
                ctx.bytes = released.body.len() as u64;
                released.status
            }
            Err(error) => {
                ctx.refused(error);
                error.status
            }
        };
        let outcome = match result {
            Ok(released) => Outcome::Release(released),
            Err(error) => Outcome::Refuse(error),
        };
        match append(&self.audit, record(ctx, status, OffsetDateTime::now_utc())).await {
            Ok(receipt) => Recorded {
                outcome,
                seq: Some(receipt.seq),
            },
            // INVARIANT: when the record is not durable, the outcome (and
            // any data in it) is dropped here, unsent.
            Err(error) => Recorded {
                outcome: Outcome::Refuse(error),
                seq: None,
            },
        }
    }

    /// Makes a write's intent durable before anything is forwarded; the
    /// outcome record then names it. `Err` (503, nothing sent) when the
    /// log cannot take it.
    pub(super) async fn record_intent(&self, ctx: &mut RequestContext) -> Result<(), GatewayError> {
        let receipt = append(&self.audit, intent(ctx, OffsetDateTime::now_utc())).await?;
        ctx.intent_seq = Some(receipt.seq);
        Ok(())
    }
}
