//! The data path for one request, as typed stages, each a module of this
//! name that takes the previous stage's value and returns the next:
//!
//! ```text
//! identify → parse → decide → narrow → forward → filter → record → respond
//! Identified → Parsed → Permitted → Narrowed → Fetched → Releasable → Recorded
//! ```
//!
//! A stage that has the whole answer already (a patient with no data, a
//! narrowed search that can match nothing) hands back [`Step::Answer`] and
//! the runner skips to `record`; a transaction's check pass is the same
//! stages stopped after `narrow` (`Gateway::check`).
//!
//! As in pingora, the record stage runs on every exit, refusals and errors
//! included; nothing is sent before its record is durable.

use std::collections::BTreeSet;
use std::sync::Arc;

use accord_audit::AuditSink;
use accord_fhir::{BaseRewrite, FhirRequest, Interaction, Purpose};
use accord_policy::{Caps, Obligations, PartnerId, PolicySet};
use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body_util::Full;
use ring::rand::{SecureRandom, SystemRandom};
use time::OffsetDateTime;

use crate::caps::{CapKey, VolumeCaps};
use crate::config::Limits;
use crate::error::GatewayError;
use crate::ops::metrics::Metrics;
use crate::policy_store::PolicyStore;
use crate::request::{Connection, Releasable, RequestContext};
use crate::scope::Scope;
use crate::upstream::client::{Upstream, UpstreamResponse};
use crate::upstream::federation::Federation;
use crate::upstream::referral::ReferralResolver;

pub mod batch;
mod count;
pub mod decide;
pub mod filter;
mod forward;
pub mod identify;
pub mod narrow;
pub mod parse;
pub mod record;
pub mod respond;

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Everything the data path needs; shared by all connections.
pub struct Gateway {
    pub(crate) policies: Arc<PolicyStore>,
    pub(crate) audit: Arc<dyn AuditSink>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) upstream: Upstream,
    pub(crate) base_path: String,
    pub(crate) rewrite: BaseRewrite,
    pub(crate) limits: Limits,
    pub(crate) random: SystemRandom,
    pub(crate) referrals: ReferralResolver,
    pub(crate) caps: Arc<VolumeCaps>,
    /// The member whose server the upstream is (`gateway.upstream_owner`).
    pub(crate) upstream_owner: Option<PartnerId>,
    /// One server per member (`[[gateway.upstreams]]`), if configured.
    pub(crate) federation: Option<Federation>,
    /// The upstream's base URL and aliases, for following its paging links.
    pub(crate) upstream_bases: Vec<String>,
}

/// What a stage hands on: the next stage's input, or the whole answer.
#[derive(Debug)]
pub enum Step<T> {
    Next(T),
    /// The answer is known without the later stages (it is still recorded).
    Answer(Releasable),
}

/// identify: who is asking, under which policy set.
#[derive(Debug)]
pub struct Identified {
    pub policies: Arc<PolicySet>,
    pub partner: PartnerId,
}

/// parse: the typed request, its purpose of use and its body.
#[derive(Debug)]
pub struct Parsed {
    pub headers: HeaderMap,
    pub fhir: FhirRequest,
    pub purpose: Purpose,
    pub body: Bytes,
}

/// decide: a permitted request — what the permit obliges, and whose caps
/// it spends. The request itself travels on in [`Parsed`].
#[derive(Debug)]
pub struct Permitted {
    pub policies: Arc<PolicySet>,
    pub partner: PartnerId,
    pub purpose: Purpose,
    pub at: OffsetDateTime,
    /// What the permit obliges (none for capabilities).
    pub obligations: Option<Obligations>,
    /// Whose volume counters it spends, if the grant has caps.
    pub cap_key: Option<CapKey>,
    pub caps: Caps,
    /// The partner's request as a gateway URL (before narrowing).
    pub self_link: String,
}

/// narrow: the request exactly as it will be forwarded, and the scope that
/// will judge its answer.
#[derive(Debug)]
pub struct Narrowed<'p> {
    pub scope: Scope<'p>,
    pub fhir: FhirRequest,
    pub body: Bytes,
    pub headers: HeaderMap,
    /// `_elements`/`_summary`, taken off the request, applied after the filter.
    pub subset: Option<filter::subset::Subset>,
    /// `_count`/`_offset` of a type search, taken off the request: the
    /// gateway pages over what it releases.
    pub page: Option<crate::request::page::Page>,
    /// The parties of a referral cohort, if the grant has one.
    pub referral_parties: Option<BTreeSet<PartnerId>>,
}

/// forward: the upstream's answer, still unfiltered.
#[derive(Debug)]
pub struct Fetched<'p> {
    pub narrowed: Narrowed<'p>,
    pub response: UpstreamResponse,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("upstream", &self.upstream.base_url())
            .field("base_path", &self.base_path)
            .finish_non_exhaustive()
    }
}

// === impl Gateway ===

impl Gateway {
    /// Serves one request. Never fails: every outcome is a response, and
    /// every response but the audit failure itself carries an audit receipt.
    pub async fn handle<B>(
        &self,
        connection: &Connection,
        request: Request<B>,
    ) -> Response<Full<Bytes>>
    where
        B: hyper::body::Body<Data = Bytes>,
        B::Error: Into<BoxError>,
    {
        let target = request
            .uri()
            .path_and_query()
            .map_or_else(|| request.uri().path().to_owned(), ToString::to_string);
        let mut ctx = RequestContext::new(
            self.request_id(),
            connection,
            request.method().to_string(),
            target,
        );
        let result = self.run(&mut ctx, request).await;
        let recorded = self.record(&mut ctx, result).await;
        let response = respond::respond(recorded.outcome, &ctx.request_id, recorded.seq);
        // logging: metrics and the access-log line, on every exit
        self.metrics.observe(&ctx, response.status());
        response
    }

    /// The stages from identify to filter, top to bottom.
    async fn run<B>(
        &self,
        ctx: &mut RequestContext,
        request: Request<B>,
    ) -> Result<Releasable, GatewayError>
    where
        B: hyper::body::Body<Data = Bytes>,
        B::Error: Into<BoxError>,
    {
        let identified = self.identify(ctx)?;
        let parsed = self.parse(ctx, request).await?;
        if parsed.fhir.interaction == Interaction::BatchOrTransaction {
            return self.run_bundle(ctx, &parsed).await;
        }
        let permitted = match self.decide(ctx, identified, &parsed)? {
            Step::Next(permitted) => permitted,
            Step::Answer(answer) => return Ok(answer),
        };
        self.count_request(ctx, &permitted).await?;
        let narrowed = match self.narrow(ctx, &permitted, parsed).await? {
            Step::Next(narrowed) => narrowed,
            Step::Answer(answer) => return Ok(answer),
        };
        if is_write(&narrowed.fhir) {
            // no record, no effect: the intent is durable before the write
            self.record_intent(ctx).await?;
        }
        let fetched = self.forward(ctx, &permitted, narrowed).await?;
        let released = self.filter(ctx, &permitted, fetched).await?;
        self.count_released(ctx, &permitted).await?;
        Ok(released)
    }

    /// A transaction entry's check pass: the same stages stopped after
    /// narrow. `Some` is the request as it would be forwarded; `None` when
    /// a stage already had the answer (nothing of this entry to send).
    async fn check<B>(
        &self,
        ctx: &mut RequestContext,
        request: Request<B>,
    ) -> Result<Option<(FhirRequest, Bytes)>, GatewayError>
    where
        B: hyper::body::Body<Data = Bytes>,
        B::Error: Into<BoxError>,
    {
        let identified = self.identify(ctx)?;
        let parsed = self.parse(ctx, request).await?;
        if parsed.fhir.interaction == Interaction::BatchOrTransaction {
            return Err(GatewayError::bad_request(
                "a Bundle entry cannot be another batch or transaction",
            ));
        }
        let Step::Next(permitted) = self.decide(ctx, identified, &parsed)? else {
            return Ok(None);
        };
        self.count_request(ctx, &permitted).await?;
        let Step::Next(narrowed) = self.narrow(ctx, &permitted, parsed).await? else {
            return Ok(None);
        };
        Ok(Some((narrowed.fhir, narrowed.body)))
    }

    pub(crate) fn request_id(&self) -> String {
        let mut bytes = [0u8; 12];
        if self.random.fill(&mut bytes).is_err() {
            // The system RNG failing is not a reason to refuse service; ids
            // need to be unique, not secret.
            let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
            return format!("t{nanos:x}");
        }
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Whether the request may change the upstream: a create, update, patch
/// or delete, or an operation invoked with anything but GET.
fn is_write(fhir: &FhirRequest) -> bool {
    match fhir.interaction {
        Interaction::Create { .. }
        | Interaction::Update { .. }
        | Interaction::Patch { .. }
        | Interaction::Delete { .. } => true,
        Interaction::Operation { .. } => fhir.method != accord_fhir::Method::Get,
        _ => false,
    }
}
