//! The data path for one request, phase by phase:
//! identify → parse → decide → (validate) → forward → filter → audit → respond.
//!
//! As in pingora, the audit phase runs on every exit, refusals and errors
//! included; nothing is sent before its record is durable.

use std::collections::BTreeSet;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use accord_audit::AuditSink;
use accord_fhir::{BaseRewrite, FhirRequest, Interaction, InteractionKind};
use accord_policy::{Caps, Decision, PartnerId, Permit, PolicySet, SpkiPin};
use bytes::Bytes;
use http::request::Parts;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use ring::rand::{SecureRandom, SystemRandom};
use time::OffsetDateTime;

use crate::audit;
use crate::batch::{self, BundleKind, EntryRequest};
use crate::caps::{CapExceeded, CapKey, CapKind, VolumeCaps};
use crate::config::Limits;
use crate::context::RequestContext;
use crate::decide::{Refusal, decide, denial};
use crate::error::GatewayError;
use crate::filter::redisclosure::attach_notice;
use crate::filter::{Checks, Releasable, empty_searchset, filter, gateway_made};
use crate::forward::Upstream;
use crate::identify::identify;
use crate::lookup::read_by_ids;
use crate::medications::{read_medications, referenced_encounters, referenced_medications};
use crate::narrow::{Narrowing, check_shape, named_patients, narrow, subjects};
use crate::paging::read_to_end;
use crate::parse::{parse_purpose, parse_request};
use crate::policy_store::PolicyStore;
use crate::referral::{MAX_PATIENTS_PER_REQUEST, ReferralResolver, patients_in_response};
use crate::release_page::Page;
use crate::respond::{Outcome, respond};
use crate::scope::Scope;
use crate::subset::Subset;
use crate::write::prepare_write;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// A Bundle entry's outcome; the outer `Err` is an audit failure.
type EntryResult = Result<Result<Releasable, GatewayError>, GatewayError>;

/// What the gateway knows about a connection once TLS is up.
#[derive(Debug, Clone)]
pub struct Connection {
    pub peer: SocketAddr,
    /// Pin of the verified client certificate's key, if one was presented.
    pub client_pin: Option<SpkiPin>,
    /// SHA-256 fingerprint of that certificate (for the audit record).
    pub client_cert_sha256: Option<String>,
}

/// Everything the data path needs; shared by all connections.
pub struct Gateway {
    pub(crate) policies: Arc<PolicyStore>,
    pub(crate) audit: Arc<dyn AuditSink>,
    pub(crate) metrics: Arc<crate::metrics::Metrics>,
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
    pub(crate) federation: Option<crate::federation::Federation>,
    /// The upstream's base URL and aliases, for following its paging links.
    pub(crate) upstream_bases: Vec<String>,
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
        let outcome = match self.run(&mut ctx, request, None).await {
            Ok(released) => Outcome::Release(released),
            Err(error) => {
                ctx.refused(&error);
                Outcome::Refuse(error)
            }
        };
        let status = match &outcome {
            Outcome::Release(released) => {
                ctx.bytes = released.body.len() as u64;
                released.status
            }
            Outcome::Refuse(error) => error.status,
        };
        let record = audit::record(&ctx, status, OffsetDateTime::now_utc());
        let response = match audit::append(&self.audit, record).await {
            Ok(receipt) => respond(outcome, &ctx.request_id, Some(receipt.seq)),
            // INVARIANT: when the record is not durable, the outcome (and any
            // data in it) is dropped here, unsent.
            Err(error) => respond(Outcome::Refuse(error), &ctx.request_id, None),
        };
        // logging phase: metrics and the access-log line, on every exit
        self.metrics.observe(&ctx, response.status());
        response
    }

    /// The phases for one request. With `check_only`, stops after the
    /// write checks and hands back the request as it would be forwarded
    /// (transaction entries are all checked before any is sent).
    async fn run<B>(
        &self,
        ctx: &mut RequestContext,
        request: Request<B>,
        check_only: Option<&mut Option<(FhirRequest, Bytes)>>,
    ) -> Result<Releasable, GatewayError>
    where
        B: hyper::body::Body<Data = Bytes>,
        B::Error: Into<BoxError>,
    {
        let policies = self.policies.current();

        // identify
        let partner =
            identify(&policies, ctx.client_pin.as_ref()).map_err(|(error, partner)| {
                ctx.partner = partner;
                error
            })?;
        ctx.partner = Some(partner.clone());
        if let Some(known) = policies.partner(&partner) {
            ctx.partner_name = Some(known.name.clone());
            ctx.partner_address = known.address.clone();
        }
        ctx.policy_version = Some(policies.version().as_str().to_owned());

        // parse
        let (parts, body) = request.into_parts();
        self.check_header_size(&parts)?;
        let body = self.read_body(&parts, body).await?;
        let mut fhir = parse_request(&parts, &body, &self.base_path)?;
        ctx.interaction = Some(fhir.interaction.kind());
        ctx.resource_type = fhir.resource_type();
        let purpose = parse_purpose(&parts.headers)?;
        ctx.purpose = Some(purpose.clone());
        crate::compartment_search::as_type_search(&mut fhir);
        ctx.subjects = subjects(&fhir, &partner, &purpose);
        crate::validate::validate(&fhir)?;
        if fhir.interaction == Interaction::BatchOrTransaction {
            if check_only.is_some() {
                return Err(GatewayError::bad_request(
                    "a Bundle entry cannot be another batch or transaction",
                ));
            }
            return self.run_bundle(ctx, &parts, &body).await;
        }

        // decide
        let now = OffsetDateTime::now_utc();
        let decision = decide(&policies, &partner, &purpose, &fhir, now);
        let refused = denial(&decision);
        ctx.decision = Some(decision);
        let self_link = self.self_link(&fhir);
        match refused {
            None => {}
            Some(Refusal::Forbidden(error)) => return Err(error),
            Some(Refusal::AsIfNoData) => {
                // A request refused for its shape (an ungranted include, a
                // chain) is refused the same way whoever the patient is;
                // answering "no data" first would tell this patient apart.
                // Checked under the grant that permits the request for a
                // patient in reach, so its redactions (refused search
                // parameters) and included types count here too.
                let mut type_level =
                    accord_policy::AccessRequest::from_fhir(&partner, &purpose, &fhir, now);
                type_level.patient = None;
                let type_level = policies.decide(&type_level);
                let scope =
                    Scope::new(&policies, &partner, &purpose, now, type_level.obligations());
                check_shape(&fhir, &scope)?;
                return self.no_data(&fhir, &self_link);
            }
        }

        // count: the grant's daily volume caps
        let cap_key = ctx.decision.as_ref().and_then(cap_key);
        let obligations = ctx.decision.as_ref().and_then(|d| d.obligations()).cloned();
        let caps = obligations.as_ref().map(|o| o.caps).unwrap_or_default();
        if let Some(key) = &cap_key {
            self.caps
                .admit_request(key, &caps, now)
                .map_err(|exceeded| self.throttle(ctx, key, exceeded))?;
            self.flush_caps().await;
            self.observe_caps(key, &caps, now);
        }

        // narrow
        let scope = Scope::new(&policies, &partner, &purpose, now, obligations.as_ref())
            .with_owner(self.upstream_owner.as_ref());
        let referral_parties = scope.referral_parties();
        let mut narrowing = Narrowing::Forward;
        if let Some(parties) = &referral_parties {
            narrowing = self
                .narrow_to_referrals(&mut fhir, &scope, &policies, parties, ctx)
                .await?;
        }
        if narrowing == Narrowing::NoMatch || narrow(&mut fhir, &scope)? == Narrowing::NoMatch {
            return gateway_made(StatusCode::OK, &empty_searchset(&self_link));
        }
        // The filter decides on whole resources; any subsetting is done
        // after it (see subset.rs).
        let subset = Subset::take(&mut fhir.params)?;
        // Type searches are paged by the gateway over what it releases.
        let page = match fhir.interaction {
            Interaction::SearchType { .. } => Some(Page::take(&mut fhir.params)?),
            _ => None,
        };
        let body = prepare_write(&fhir, body, &scope, &partner)?;
        self.check_write_reach(&fhir, &body, &scope, &policies, ctx)
            .await?;
        if let Some(slot) = check_only {
            *slot = Some((fhir, body));
            return Ok(Releasable {
                status: StatusCode::OK,
                headers: http::HeaderMap::new(),
                body: Bytes::new(),
            });
        }

        // record the intent: no record, no effect
        if is_write(&fhir) {
            self.record_intent(ctx).await?;
        }

        // forward
        let upstream = match &self.federation {
            Some(federation) => {
                let forwarded = federation
                    .send(
                        &fhir,
                        body,
                        &parts.headers,
                        obligations.as_ref().and_then(|o| o.source.as_ref()),
                        &ctx.request_id,
                        &mut ctx.upstream_wait,
                    )
                    .await?;
                scope.learn_origins(forwarded.origins, forwarded.ambiguous);
                forwarded.response
            }
            None => {
                let first = self
                    .upstream
                    .send(
                        &fhir,
                        body,
                        parts.headers.get(header::IF_MATCH),
                        &ctx.request_id,
                        &mut ctx.upstream_wait,
                    )
                    .await?;
                match page {
                    Some(_) => {
                        read_to_end(
                            &self.upstream,
                            &self.upstream_bases,
                            first,
                            &mut ctx.upstream_wait,
                        )
                        .await?
                    }
                    None => first,
                }
            }
        };

        // filter
        ctx.resource = audit::acted_on(&fhir, &upstream.headers, &upstream.body);
        if let Some(parties) = &referral_parties {
            let patients = patients_in_response(&upstream.body);
            self.resolve_referrals(&scope, &policies, parties, patients, ctx)
                .await?;
        }
        if scope.needs_origins() && self.upstream_owner.is_none() && self.federation.is_none() {
            let encounters = referenced_encounters(&upstream.body);
            if !encounters.is_empty() {
                let found = read_by_ids(
                    &self.upstream,
                    "Encounter",
                    &encounters,
                    &ctx.request_id,
                    &mut ctx.upstream_wait,
                )
                .await;
                scope.learn_encounters(found);
            }
        }
        let medications = referenced_medications(&upstream.body);
        if !medications.is_empty() {
            // A Medication lives on the server of the prescription that
            // names it: ask every member's.
            for upstream in self.lookup_upstreams() {
                let found = read_medications(
                    upstream,
                    &medications,
                    &ctx.request_id,
                    &mut ctx.upstream_wait,
                )
                .await;
                scope.learn_medications(found);
            }
        }
        let checks = match fhir.interaction {
            Interaction::Capabilities => Checks::Capabilities(&scope),
            Interaction::Create { .. } | Interaction::Update { .. } => Checks::Written(&scope),
            _ => Checks::Resources(&scope),
        };
        let released = filter(
            upstream,
            &checks,
            &self.rewrite,
            (&self_link, page.as_ref()),
            &mut ctx.report,
        )?;
        let released = attach_notice(released, &scope)?;
        let released = match &subset {
            Some(subset) => subset.apply(released)?,
            None => released,
        };
        if let Some(key) = &cap_key {
            self.caps
                .take_resources(key, &caps, u64::from(ctx.report.released), now)
                .map_err(|exceeded| self.throttle(ctx, key, exceeded))?;
            self.flush_caps().await;
            self.observe_caps(key, &caps, now);
        }
        Ok(released)
    }

    /// A batch or transaction Bundle: every entry decided (and audited) as
    /// a request of its own; see `batch.rs`.
    async fn run_bundle(
        &self,
        ctx: &mut RequestContext,
        parts: &Parts,
        body: &Bytes,
    ) -> Result<Releasable, GatewayError> {
        let bundle = batch::parse_bundle(body)?;
        match bundle.kind {
            BundleKind::Batch => {
                let mut results = Vec::new();
                for (index, entry) in bundle.entries.iter().enumerate() {
                    results.push(self.run_entry(ctx, parts, index, entry, None).await?);
                }
                gateway_made(StatusCode::OK, &batch::batch_response(&results))
            }
            BundleKind::Transaction => {
                let mut prepared = Vec::new();
                let mut refused = Vec::new();
                for (index, entry) in bundle.entries.iter().enumerate() {
                    if let Some(error) = batch::transaction_entry_refusal(entry) {
                        refused.push((index, error));
                        continue;
                    }
                    let mut slot = None;
                    match self
                        .run_entry(ctx, parts, index, entry, Some(&mut slot))
                        .await?
                    {
                        Ok(_) => prepared
                            .extend(slot.map(|(fhir, body)| (fhir, body, entry.if_match.clone()))),
                        Err(error) => refused.push((index, error)),
                    }
                }
                if !refused.is_empty() {
                    return Err(batch::transaction_refusal(&refused));
                }
                let request = FhirRequest {
                    method: accord_fhir::Method::Post,
                    interaction: Interaction::BatchOrTransaction,
                    params: accord_fhir::SearchParams::default(),
                };
                self.record_intent(ctx).await?;
                let upstream = self
                    .upstream
                    .send(
                        &request,
                        batch::transaction_bundle(&prepared)?,
                        None,
                        &ctx.request_id,
                        &mut ctx.upstream_wait,
                    )
                    .await?;
                gateway_made(
                    StatusCode::OK,
                    &batch::filter_transaction_response(upstream, &self.rewrite)?,
                )
            }
        }
    }

    /// Runs one Bundle entry as a request of its own, and audits it. `Err`
    /// only when its audit record cannot be written (then nothing of the
    /// Bundle is released); the entry's own refusal is the inner `Err`.
    fn run_entry<'s>(
        &'s self,
        outer: &'s mut RequestContext,
        parts: &'s Parts,
        index: usize,
        entry: &'s EntryRequest,
        check_only: Option<&'s mut Option<(FhirRequest, Bytes)>>,
    ) -> Pin<Box<dyn Future<Output = EntryResult> + Send + 's>> {
        Box::pin(async move {
            let target = format!("{}/{}", self.base_path, entry.url);
            let mut ctx = outer.entry(
                format!("{}-{index}", outer.request_id),
                entry.method.to_string(),
                target.clone(),
            );
            let mut builder = Request::builder().method(entry.method.clone()).uri(&target);
            for name in [crate::parse::PURPOSE_HEADER, header::ACCEPT.as_str()] {
                for value in parts.headers.get_all(name) {
                    builder = builder.header(name, value);
                }
            }
            if !entry.body.is_empty() {
                builder = builder.header(header::CONTENT_TYPE, "application/fhir+json");
            }
            if let Some(if_match) = &entry.if_match {
                builder = builder.header(header::IF_MATCH, if_match);
            }
            let result = match builder.body(Full::new(entry.body.clone())) {
                Ok(_) if entry.refused.is_some() => Err(GatewayError::forbidden(
                    entry.refused.clone().unwrap_or_default(),
                )),
                Ok(request) => self.run(&mut ctx, request, check_only).await,
                Err(_) => Err(GatewayError::bad_request(format!(
                    "Bundle.entry[{index}]: `request.url` is not a valid URL"
                ))),
            };
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
            let record = audit::record(&ctx, status, OffsetDateTime::now_utc());
            // The Bundle's own record counts every entry's upstream calls.
            outer.upstream_wait.include(ctx.upstream_wait);
            audit::append(&self.audit, record).await?;
            Ok(result)
        })
    }

    /// The servers the gateway's own lookups ask: every member's, or the
    /// one upstream.
    fn lookup_upstreams(&self) -> Vec<&Upstream> {
        match &self.federation {
            Some(federation) => federation.members().iter().map(|m| &m.upstream).collect(),
            None => vec![&self.upstream],
        }
    }

    /// Makes the write's intent durable before anything is forwarded; the
    /// outcome record then names it. `Err` (503, nothing sent) when the
    /// log cannot take it.
    async fn record_intent(&self, ctx: &mut RequestContext) -> Result<(), GatewayError> {
        let receipt =
            audit::append(&self.audit, audit::intent(ctx, OffsetDateTime::now_utc())).await?;
        ctx.intent_seq = Some(receipt.seq);
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

    /// Resolves referral-cohort membership of `patients` into `scope`. At
    /// most [`MAX_PATIENTS_PER_REQUEST`] are looked up; the rest stay
    /// unresolved, so their data is withheld. An upstream failure fails the
    /// request: nothing is released.
    pub(crate) async fn resolve_referrals(
        &self,
        scope: &Scope<'_>,
        policies: &PolicySet,
        parties: &BTreeSet<PartnerId>,
        patients: BTreeSet<String>,
        ctx: &mut RequestContext,
    ) -> Result<(), GatewayError> {
        let unresolved: BTreeSet<String> = scope
            .unresolved_referrals(patients)
            .into_iter()
            .take(MAX_PATIENTS_PER_REQUEST)
            .collect();
        if unresolved.is_empty() {
            return Ok(());
        }
        let answers = self
            .referrals
            .resolve(
                &self.upstream,
                policies,
                (parties, &scope.referral_senders()),
                &unresolved,
                &ctx.request_id,
                &mut ctx.upstream_wait,
            )
            .await?;
        scope.learn_referrals(answers);
        Ok(())
    }

    /// Resolves the referral cohort for what the request names; a
    /// population search is narrowed to the cohort's listed members, like a
    /// search that names its patients (`NoMatch` when there are none).
    async fn narrow_to_referrals(
        &self,
        fhir: &mut FhirRequest,
        scope: &Scope<'_>,
        policies: &PolicySet,
        parties: &BTreeSet<PartnerId>,
        ctx: &mut RequestContext,
    ) -> Result<Narrowing, GatewayError> {
        let named = named_patients(fhir);
        let Interaction::SearchType { ty } = fhir.interaction else {
            self.resolve_referrals(scope, policies, parties, named, ctx)
                .await?;
            return Ok(Narrowing::Forward);
        };
        if !named.is_empty() || !scope.population_search(ty) {
            self.resolve_referrals(scope, policies, parties, named, ctx)
                .await?;
            return Ok(Narrowing::Forward);
        }
        let members = self
            .referral_population(scope, policies, parties, ctx)
            .await?;
        if members.is_empty() {
            return Ok(Narrowing::NoMatch);
        }
        let (name, values) = if ty == accord_fhir::ResourceType::PATIENT {
            ("_id", members.iter().cloned().collect::<Vec<_>>())
        } else {
            (
                "patient",
                members.iter().map(|p| format!("Patient/{p}")).collect(),
            )
        };
        fhir.params.push(name, &values.join(","));
        Ok(Narrowing::Forward)
    }

    /// Every member of a referral cohort, for a population search, learned
    /// into `scope`; refused when the list cannot be read whole or is too
    /// long to send as one search.
    async fn referral_population(
        &self,
        scope: &Scope<'_>,
        policies: &PolicySet,
        parties: &BTreeSet<PartnerId>,
        ctx: &mut RequestContext,
    ) -> Result<BTreeSet<String>, GatewayError> {
        let members = self
            .referrals
            .all_members(
                &self.upstream,
                policies,
                (parties, &scope.referral_senders()),
                &ctx.request_id,
                &mut ctx.upstream_wait,
            )
            .await?
            .filter(|m| m.len() <= MAX_PATIENTS_PER_REQUEST)
            .ok_or_else(|| {
                GatewayError::forbidden(
                    "the agreement's referral cohort cannot be listed whole: name a patient (e.g. `?patient=Patient/123`)",
                )
            })?;
        scope.learn_referrals(members.iter().map(|p| (p.clone(), true)).collect());
        Ok(members)
    }

    /// The answer for a patient who has no data: an empty searchset for a
    /// search, "not found" for anything else.
    fn no_data(&self, request: &FhirRequest, self_link: &str) -> Result<Releasable, GatewayError> {
        if request.interaction.kind() == InteractionKind::Search {
            gateway_made(StatusCode::OK, &empty_searchset(self_link))
        } else {
            Err(GatewayError::not_found("resource not found"))
        }
    }

    /// The partner's request as a gateway URL: the `self` link of any
    /// Bundle it gets back (before narrowing, so it reveals nothing).
    fn self_link(&self, request: &FhirRequest) -> String {
        let mut link = format!(
            "{}/{}",
            self.rewrite.gateway_base(),
            request.relative_path()
        );
        if !request.params.is_empty() {
            link.push('?');
            link.push_str(&request.params.to_query_string());
        }
        link
    }

    fn check_header_size(&self, parts: &Parts) -> Result<(), GatewayError> {
        let size: usize = parts
            .headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 4)
            .sum::<usize>()
            + parts.uri.to_string().len();
        if size > self.limits.max_header_bytes {
            return Err(GatewayError::headers_too_large(
                self.limits.max_header_bytes,
            ));
        }
        Ok(())
    }

    async fn read_body<B>(&self, parts: &Parts, body: B) -> Result<Bytes, GatewayError>
    where
        B: hyper::body::Body<Data = Bytes>,
        B::Error: Into<BoxError>,
    {
        let limit = self.limits.max_body_bytes;
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > limit as u64) {
            return Err(GatewayError::body_too_large(limit));
        }
        let deadline = self.limits.body_read_timeout;
        let Ok(collected) =
            tokio::time::timeout(deadline, Limited::new(body, limit).collect()).await
        else {
            return Err(GatewayError::body_too_slow(deadline));
        };
        match collected {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                Err(GatewayError::body_too_large(limit))
            }
            Err(e) => {
                tracing::debug!(error = %e, "request body unreadable");
                Err(GatewayError::bad_request(
                    "the request body could not be read",
                ))
            }
        }
    }

    fn request_id(&self) -> String {
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

/// Whose volume counters a permit spends: its agreement's, for this
/// recipient; `None` when the grant has no caps.
fn cap_key(decision: &Decision) -> Option<CapKey> {
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
