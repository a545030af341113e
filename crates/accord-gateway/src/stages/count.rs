//! Counting against a grant's daily volume caps (`caps.rs` keeps the
//! counters): a request when it is permitted, resources when they are
//! released. Over a cap → 429 with `Retry-After`, recorded as a denial
//! naming the cap.

use std::sync::Arc;

use accord_policy::{Caps, Decision, Permit};
use time::OffsetDateTime;

use crate::caps::{CapExceeded, CapKey, CapKind};
use crate::error::GatewayError;
use crate::request::RequestContext;
use crate::stages::{Gateway, Permitted};

/// Whose volume counters a permit spends: its agreement's, for this
/// recipient; `None` when the grant has no caps.
pub(super) fn cap_key(decision: &Decision) -> Option<CapKey> {
    let Decision::Permit(Permit::Grant { agreement, .. }) = decision else {
        return None;
    };
    let obligations = decision.obligations()?;
    let caps = obligations.caps;
    if caps.requests_per_day.is_none() && caps.resources_per_day.is_none() {
        return None;
    }
    Some(CapKey {
        agreement: agreement.to_string(),
        partner: obligations.partner.to_string(),
    })
}

// === impl Gateway ===

impl Gateway {
    /// Counts the permitted request against `requests_per_day`.
    pub(super) async fn count_request(
        &self,
        ctx: &mut RequestContext,
        permitted: &Permitted,
    ) -> Result<(), GatewayError> {
        let Some(key) = &permitted.cap_key else {
            return Ok(());
        };
        self.caps
            .admit_request(key, &permitted.caps, permitted.at)
            .map_err(|exceeded| self.throttle(ctx, key, exceeded))?;
        self.flush_caps().await;
        self.observe_caps(key, &permitted.caps, permitted.at);
        Ok(())
    }

    /// Counts the released resources against `resources_per_day`.
    pub(super) async fn count_released(
        &self,
        ctx: &mut RequestContext,
        permitted: &Permitted,
    ) -> Result<(), GatewayError> {
        let Some(key) = &permitted.cap_key else {
            return Ok(());
        };
        self.caps
            .take_resources(
                key,
                &permitted.caps,
                u64::from(ctx.report.released),
                permitted.at,
            )
            .map_err(|exceeded| self.throttle(ctx, key, exceeded))?;
        self.flush_caps().await;
        self.observe_caps(key, &permitted.caps, permitted.at);
        Ok(())
    }

    /// The refusal for a used-up cap; the audit record names the cap.
    fn throttle(
        &self,
        ctx: &mut RequestContext,
        key: &CapKey,
        exceeded: CapExceeded,
    ) -> GatewayError {
        ctx.cap = Some(format!(
            "{} = {} of agreement `{}` for `{}`",
            exceeded.kind.as_str(),
            exceeded.limit,
            key.agreement,
            key.partner
        ));
        GatewayError::throttled(exceeded.to_string(), exceeded.retry_after)
    }

    /// Makes the counters durable before the answer goes out, so a
    /// restart cannot forget what was released.
    async fn flush_caps(&self) {
        let caps = Arc::clone(&self.caps);
        if tokio::task::spawn_blocking(move || caps.flush())
            .await
            .is_err()
        {
            tracing::error!("volume-cap flush task failed");
        }
    }

    fn observe_caps(&self, key: &CapKey, caps: &Caps, now: OffsetDateTime) {
        for (kind, limit) in [
            (CapKind::Requests, caps.requests_per_day),
            (CapKind::Resources, caps.resources_per_day),
        ] {
            if let Some(limit) = limit {
                let used = self.caps.used(key, kind, now);
                self.metrics.cap_usage(key, kind, used, limit);
            }
        }
    }
}
