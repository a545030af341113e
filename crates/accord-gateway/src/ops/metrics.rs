//! What the gateway counts, for operators: requests by partner, purpose,
//! decision and status; latency histograms per phase; audit append latency,
//! failures and appends waiting; policy reloads; build info. Rendered in the
//! Prometheus text exposition format (version 0.0.4) by hand — it is a few
//! lines of `name{labels} value` and needs no framework.
//!
//! Also the access log: one line per request, written where the metrics are
//! recorded. It names the interaction and resource type, never the target
//! (a URL can carry patient ids) and never a patient.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use accord_audit::{AppendDone, AuditError, AuditRecord, AuditSink, Receipt};
use accord_policy::{Decision, PolicySet};
use http::StatusCode;

use crate::caps::{CapKey, CapKind};
use crate::request::RequestContext;

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How long after a failed audit append the gateway reports itself not
/// ready; a later successful append clears it.
const AUDIT_FAILURE_WINDOW: Duration = Duration::from_secs(30);

/// Phases with a latency histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// The whole request, accept of the request head to response.
    Total,
    /// The upstream exchange, body included.
    Upstream,
    /// The durable audit append (fsync included).
    Audit,
}

/// Outcome of a policy reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadResult {
    Ok,
    Failed,
}

/// The gateway's counters; shared by the data path and the admin listener.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
    audit_in_flight: AtomicI64,
}

#[derive(Debug, Default)]
struct Inner {
    requests: BTreeMap<RequestKey, u64>,
    phases: BTreeMap<Phase, Histogram>,
    audit_failures: u64,
    last_audit_failure: Option<Instant>,
    reloads_ok: u64,
    reloads_failed: u64,
    tls_reloads_ok: u64,
    tls_reloads_failed: u64,
    policy_version: String,
    agreements: usize,
    partners: usize,
    /// (agreement, partner, cap kind) → (used today, daily limit).
    caps: BTreeMap<(String, String, &'static str), (u64, u64)>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct RequestKey {
    partner: String,
    purpose: String,
    decision: &'static str,
    status: u16,
}

#[derive(Debug, Clone, Default)]
struct Histogram {
    /// Cumulative counts are computed at render time; these are per bucket.
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// An [`AuditSink`] that times every append into [`Metrics`].
pub struct MeteredSink {
    inner: Arc<dyn AuditSink>,
    metrics: Arc<Metrics>,
}

// === impl Metrics ===

impl Metrics {
    pub fn new(policies: &PolicySet) -> Self {
        let metrics = Metrics::default();
        metrics.set_policies(policies);
        metrics
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Counters stay usable even if a holder panicked.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records a finished request and writes its access-log line. Called
    /// once per request, after the audit phase, with the status sent.
    pub fn observe(&self, ctx: &RequestContext, status: StatusCode) {
        let elapsed = ctx.started.elapsed();
        let decision = match &ctx.decision {
            Some(Decision::Permit(_)) => "permit",
            Some(Decision::Deny(_)) => "deny",
            None => "refuse",
        };
        let partner = ctx.partner.as_ref().map(ToString::to_string);
        let purpose = ctx.purpose.as_ref().map(ToString::to_string);
        // INVARIANT: no target, query or patient id in this line.
        tracing::info!(
            target: "accord::access",
            request_id = %ctx.request_id,
            partner = partner.as_deref().unwrap_or("-"),
            purpose = purpose.as_deref().unwrap_or("-"),
            method = %ctx.method,
            interaction = ctx.interaction.map_or("-", |k| k.as_str()),
            resource_type = ctx.resource_type.map_or("-", |t| t.as_str()),
            decision,
            status = status.as_u16(),
            error_source = ctx.error_source.map_or("-", |s| s.as_str()),
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            "request"
        );
        let key = RequestKey {
            partner: partner.unwrap_or_default(),
            purpose: purpose.unwrap_or_default(),
            decision,
            status: status.as_u16(),
        };
        let mut inner = self.lock();
        *inner.requests.entry(key).or_insert(0) += 1;
        inner
            .phases
            .entry(Phase::Total)
            .or_default()
            .observe(elapsed);
    }

    /// Records the duration of one phase of a request.
    pub fn observe_phase(&self, phase: Phase, elapsed: Duration) {
        self.lock()
            .phases
            .entry(phase)
            .or_default()
            .observe(elapsed);
    }

    /// Records a policy reload; on success, the set now in force.
    pub fn policy_reload(&self, result: ReloadResult, policies: Option<&PolicySet>) {
        match result {
            ReloadResult::Ok => self.lock().reloads_ok += 1,
            ReloadResult::Failed => self.lock().reloads_failed += 1,
        }
        if let Some(policies) = policies {
            self.set_policies(policies);
        }
    }

    /// Records a reload of the server certificate, key and partner CA.
    pub fn tls_reload(&self, result: ReloadResult) {
        match result {
            ReloadResult::Ok => self.lock().tls_reloads_ok += 1,
            ReloadResult::Failed => self.lock().tls_reloads_failed += 1,
        }
    }

    fn set_policies(&self, policies: &PolicySet) {
        let mut inner = self.lock();
        inner.policy_version = policies.version().to_string();
        inner.agreements = policies.agreements().len();
        inner.partners = policies.partners().count();
    }

    /// `Some(age)` if an audit append failed within the readiness window.
    pub fn recent_audit_failure(&self) -> Option<Duration> {
        let at = self.lock().last_audit_failure?;
        let age = at.elapsed();
        (age < AUDIT_FAILURE_WINDOW).then_some(age)
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let inner = self.lock().clone_for_render();
        let mut out = String::new();
        header(
            &mut out,
            "accord_build_info",
            "gauge",
            "build of this gateway",
        );
        let _ = writeln!(
            out,
            "accord_build_info{{version=\"{}\"}} 1",
            escape(env!("CARGO_PKG_VERSION"))
        );
        header(
            &mut out,
            "accord_requests_total",
            "counter",
            "partner requests by partner, purpose, decision and status",
        );
        for (key, count) in &inner.requests {
            let _ = writeln!(
                out,
                "accord_requests_total{{partner=\"{}\",purpose=\"{}\",decision=\"{}\",status=\"{}\"}} {count}",
                escape(&key.partner),
                escape(&key.purpose),
                key.decision,
                key.status
            );
        }
        header(
            &mut out,
            "accord_phase_duration_seconds",
            "histogram",
            "latency per phase: total, upstream, audit (durable append)",
        );
        for (phase, histogram) in &inner.phases {
            histogram.render(&mut out, "accord_phase_duration_seconds", phase.as_str());
        }
        header(
            &mut out,
            "accord_audit_append_failures_total",
            "counter",
            "audit appends that failed (each answered 503)",
        );
        let _ = writeln!(
            out,
            "accord_audit_append_failures_total {}",
            inner.audit_failures
        );
        header(
            &mut out,
            "accord_audit_appends_in_flight",
            "gauge",
            "audit appends waiting for their fsync (the group-commit queue)",
        );
        let _ = writeln!(
            out,
            "accord_audit_appends_in_flight {}",
            self.audit_in_flight.load(Ordering::Relaxed).max(0)
        );
        header(
            &mut out,
            "accord_policy_reloads_total",
            "counter",
            "policy reloads by result; a failed reload keeps the last good set",
        );
        let _ = writeln!(
            out,
            "accord_policy_reloads_total{{result=\"ok\"}} {}",
            inner.reloads_ok
        );
        let _ = writeln!(
            out,
            "accord_policy_reloads_total{{result=\"failed\"}} {}",
            inner.reloads_failed
        );
        header(
            &mut out,
            "accord_tls_reloads_total",
            "counter",
            "server certificate and partner CA reloads by result; a failed reload keeps the certificates in force",
        );
        let _ = writeln!(
            out,
            "accord_tls_reloads_total{{result=\"ok\"}} {}",
            inner.tls_reloads_ok
        );
        let _ = writeln!(
            out,
            "accord_tls_reloads_total{{result=\"failed\"}} {}",
            inner.tls_reloads_failed
        );
        header(
            &mut out,
            "accord_policy_info",
            "gauge",
            "the policy set in force",
        );
        let _ = writeln!(
            out,
            "accord_policy_info{{version=\"{}\",agreements=\"{}\",partners=\"{}\"}} 1",
            escape(&inner.policy_version),
            inner.agreements,
            inner.partners
        );
        header(
            &mut out,
            "accord_cap_used",
            "gauge",
            "volume counted today (UTC) against a grant's daily cap, by agreement, partner and kind",
        );
        for ((agreement, partner, kind), (used, _)) in &inner.caps {
            let _ = writeln!(
                out,
                "accord_cap_used{{agreement=\"{}\",partner=\"{}\",kind=\"{kind}\"}} {used}",
                escape(agreement),
                escape(partner)
            );
        }
        header(
            &mut out,
            "accord_cap_limit",
            "gauge",
            "a grant's daily volume cap, by agreement, partner and kind",
        );
        for ((agreement, partner, kind), (_, limit)) in &inner.caps {
            let _ = writeln!(
                out,
                "accord_cap_limit{{agreement=\"{}\",partner=\"{}\",kind=\"{kind}\"}} {limit}",
                escape(agreement),
                escape(partner)
            );
        }
        out
    }

    /// Records a cap counter after it changed (or was checked).
    pub fn cap_usage(&self, key: &CapKey, kind: CapKind, used: u64, limit: u64) {
        self.lock().caps.insert(
            (key.agreement.clone(), key.partner.clone(), kind.as_str()),
            (used, limit),
        );
    }
}

impl Inner {
    fn clone_for_render(&self) -> Inner {
        Inner {
            requests: self.requests.clone(),
            phases: self.phases.clone(),
            audit_failures: self.audit_failures,
            last_audit_failure: self.last_audit_failure,
            reloads_ok: self.reloads_ok,
            reloads_failed: self.reloads_failed,
            tls_reloads_ok: self.tls_reloads_ok,
            tls_reloads_failed: self.tls_reloads_failed,
            policy_version: self.policy_version.clone(),
            agreements: self.agreements,
            partners: self.partners,
            caps: self.caps.clone(),
        }
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Label values: backslash, double quote and newline are escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

// === impl Phase ===

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Total => "total",
            Phase::Upstream => "upstream",
            Phase::Audit => "audit",
        }
    }
}

// === impl Histogram ===

impl Histogram {
    fn observe(&mut self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        if let Some(slot) = BUCKETS
            .iter()
            .position(|le| secs <= *le)
            .and_then(|i| self.buckets.get_mut(i))
        {
            *slot += 1;
        }
        self.count += 1;
        self.sum += secs;
    }

    fn render(&self, out: &mut String, name: &str, phase: &str) {
        let mut cumulative = 0;
        for (le, count) in BUCKETS.iter().zip(self.buckets.iter()) {
            cumulative += count;
            let _ = writeln!(
                out,
                "{name}_bucket{{phase=\"{phase}\",le=\"{le}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{phase=\"{phase}\",le=\"+Inf\"}} {}",
            self.count
        );
        let _ = writeln!(out, "{name}_sum{{phase=\"{phase}\"}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{phase=\"{phase}\"}} {}", self.count);
    }
}

// === impl MeteredSink ===

impl MeteredSink {
    pub fn new(inner: Arc<dyn AuditSink>, metrics: Arc<Metrics>) -> Self {
        MeteredSink { inner, metrics }
    }
}

impl std::fmt::Debug for MeteredSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeteredSink").finish_non_exhaustive()
    }
}

impl AuditSink for MeteredSink {
    fn append(&self, record: &AuditRecord) -> Result<Receipt, AuditError> {
        self.metrics.audit_in_flight.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let result = self.inner.append(record);
        observe_append(&self.metrics, started, &result);
        result
    }

    fn append_detached(&self, record: &AuditRecord, done: AppendDone) -> Result<(), AppendDone> {
        self.metrics.audit_in_flight.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let metrics = Arc::clone(&self.metrics);
        let timed: AppendDone = Box::new(move |result| {
            observe_append(&metrics, started, &result);
            done(result);
        });
        // An inner sink that cannot hands the wrapper back unused: undo the
        // count; the caller falls back to `append`.
        self.inner.append_detached(record, timed).inspect_err(|_| {
            self.metrics.audit_in_flight.fetch_sub(1, Ordering::Relaxed);
        })
    }
}

/// Times one finished append (started with `audit_in_flight` raised).
fn observe_append(metrics: &Metrics, started: Instant, result: &Result<Receipt, AuditError>) {
    metrics.audit_in_flight.fetch_sub(1, Ordering::Relaxed);
    let elapsed = started.elapsed();
    let mut inner = metrics.lock();
    inner
        .phases
        .entry(Phase::Audit)
        .or_default()
        .observe(elapsed);
    match result {
        Ok(_) => inner.last_audit_failure = None,
        Err(_) => {
            inner.audit_failures += 1;
            inner.last_audit_failure = Some(Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_labels_escaped() {
        let metrics = Metrics::default();
        metrics.observe_phase(Phase::Upstream, Duration::from_millis(3));
        metrics.observe_phase(Phase::Upstream, Duration::from_secs(60));
        let text = metrics.render();
        assert!(
            text.contains(
                "accord_phase_duration_seconds_bucket{phase=\"upstream\",le=\"0.005\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("accord_phase_duration_seconds_bucket{phase=\"upstream\",le=\"+Inf\"} 2"),
            "{text}"
        );
        assert!(text.contains("accord_phase_duration_seconds_count{phase=\"upstream\"} 2"));
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn reloads_are_counted_by_result() {
        let metrics = Metrics::default();
        metrics.policy_reload(ReloadResult::Failed, None);
        let text = metrics.render();
        assert!(text.contains("accord_policy_reloads_total{result=\"failed\"} 1"));
        assert!(text.contains("accord_policy_reloads_total{result=\"ok\"} 0"));
        assert!(text.contains("accord_build_info{version=\""));
    }
}
