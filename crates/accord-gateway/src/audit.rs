//! Phase 6, audit: one durable record per request, before anything is sent.

use std::sync::Arc;

use accord_audit::{
    AgreementRef, AuditRecord, AuditSink, DecisionKind, RECORD_SCHEMA_VERSION, Receipt,
};
use accord_policy::{Decision, Permit};
use http::StatusCode;
use time::OffsetDateTime;

use crate::context::RequestContext;
use crate::error::GatewayError;

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
            (DecisionKind::Permit, decision.rule(), agreement)
        }
        Some(decision @ Decision::Deny(_)) => (DecisionKind::Deny, decision.rule(), None),
        None => (
            DecisionKind::Refuse,
            "refused before a decision".to_owned(),
            None,
        ),
    };
    AuditRecord {
        schema: RECORD_SCHEMA_VERSION,
        seq: 0,
        time: now,
        request_id: ctx.request_id.clone(),
        partner: ctx.partner.as_ref().map(ToString::to_string),
        client_spki: ctx.client_pin.as_ref().map(|p| p.as_str().to_owned()),
        peer: ctx.peer.to_string(),
        purpose: ctx.purpose.as_ref().map(ToString::to_string),
        method: ctx.method.clone(),
        target: ctx.target.clone(),
        interaction: ctx.interaction.map(|k| k.as_str().to_owned()),
        resource_type: ctx.resource_type.map(|t| t.as_str().to_owned()),
        decision,
        rule,
        agreement,
        status: status.as_u16(),
        error_source: ctx.error_source.map(|s| s.as_str().to_owned()),
        latency_us: u64::try_from(ctx.started.elapsed().as_micros()).unwrap_or(u64::MAX),
        ..AuditRecord::default()
    }
}

/// Appends durably on a blocking thread (the sink fsyncs).
pub async fn append(
    sink: &Arc<dyn AuditSink>,
    record: AuditRecord,
) -> Result<Receipt, GatewayError> {
    let sink = Arc::clone(sink);
    let appended = tokio::task::spawn_blocking(move || sink.append(&record)).await;
    match appended {
        Ok(Ok(receipt)) => Ok(receipt),
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
