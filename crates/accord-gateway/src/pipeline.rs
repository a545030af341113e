//! The data path for one request, phase by phase:
//! identify → parse → decide → (validate) → forward → filter → audit → respond.
//!
//! As in pingora, the audit phase runs on every exit, refusals and errors
//! included; nothing is sent before its record is durable.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use accord_audit::AuditSink;
use accord_fhir::{BaseRewrite, FhirRequest, Interaction, InteractionKind};
use accord_policy::SpkiPin;
use bytes::Bytes;
use http::request::Parts;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use ring::rand::{SecureRandom, SystemRandom};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::audit;
use crate::config::Limits;
use crate::context::RequestContext;
use crate::decide::{Refusal, decide, denial};
use crate::error::GatewayError;
use crate::filter::{Checks, Releasable, ReleaseReport, empty_searchset, filter, gateway_made};
use crate::forward::Upstream;
use crate::identify::identify;
use crate::narrow::{Narrowing, check_shape, narrow};
use crate::parse::{parse_purpose, parse_request};
use crate::policy_store::PolicyStore;
use crate::respond::{Outcome, respond};
use crate::scope::Scope;
use crate::write::prepare_write;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What the gateway knows about a connection once TLS is up.
#[derive(Debug, Clone)]
pub struct Connection {
    pub peer: SocketAddr,
    /// Pin of the verified client certificate's key, if one was presented.
    pub client_pin: Option<SpkiPin>,
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
        let mut ctx = RequestContext {
            request_id: self.request_id(),
            started: Instant::now(),
            peer: connection.peer,
            method: request.method().to_string(),
            target: request
                .uri()
                .path_and_query()
                .map_or_else(|| request.uri().path().to_owned(), ToString::to_string),
            client_pin: connection.client_pin.clone(),
            partner: None,
            purpose: None,
            interaction: None,
            resource_type: None,
            decision: None,
            error_source: None,
            refusal: None,
            report: ReleaseReport::default(),
            partner_name: None,
            policy_version: None,
            bytes: 0,
        };
        let outcome = match self.run(&mut ctx, request).await {
            Ok(released) => Outcome::Release(released),
            Err(error) => {
                ctx.error_source = Some(error.source);
                ctx.refusal = Some(error.message.clone());
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

    async fn run<B>(
        &self,
        ctx: &mut RequestContext,
        request: Request<B>,
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
        ctx.partner_name = policies.partner(&partner).map(|p| p.name.clone());
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
                let scope = Scope::new(&policies, &partner, &purpose, now, None);
                check_shape(&fhir, &scope)?;
                return self.no_data(&fhir, &ctx.request_id, now, &self_link);
            }
        }

        // narrow
        let obligations = ctx.decision.as_ref().and_then(|d| d.obligations()).cloned();
        let scope = Scope::new(&policies, &partner, &purpose, now, obligations.as_ref());
        if narrow(&mut fhir, &scope)? == Narrowing::NoMatch {
            let updated = now.format(&Rfc3339).unwrap_or_default();
            return gateway_made(
                StatusCode::OK,
                &empty_searchset(&ctx.request_id, &updated, &self_link),
            );
        }
        let body = prepare_write(&fhir, body, &scope, &partner)?;

        // forward
        let upstream = self
            .upstream
            .send(
                &fhir,
                body,
                parts.headers.get(header::IF_MATCH),
                &ctx.request_id,
            )
            .await?;

        // filter
        let checks = match fhir.interaction {
            Interaction::Capabilities => Checks::Capabilities(&scope),
            Interaction::Create { .. } | Interaction::Update { .. } => Checks::Written(&scope),
            _ => Checks::Resources(&scope),
        };
        filter(
            upstream,
            &checks,
            &self.rewrite,
            &self_link,
            &mut ctx.report,
        )
    }

    /// The answer for a patient who has no data: an empty searchset for a
    /// search, "not found" for anything else.
    fn no_data(
        &self,
        request: &FhirRequest,
        request_id: &str,
        now: OffsetDateTime,
        self_link: &str,
    ) -> Result<Releasable, GatewayError> {
        if request.interaction.kind() == InteractionKind::Search {
            let updated = now.format(&Rfc3339).unwrap_or_default();
            gateway_made(
                StatusCode::OK,
                &empty_searchset(request_id, &updated, self_link),
            )
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
        match Limited::new(body, limit).collect().await {
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
