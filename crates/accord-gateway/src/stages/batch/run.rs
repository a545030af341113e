//! Running a batch or transaction Bundle: each entry goes through the
//! stages as a request of its own (and is recorded as `<request id>-<index>`);
//! a transaction's entries go only through its check pass, stopped after
//! narrow, before the rebuilt transaction is sent as one.

use std::future::Future;
use std::pin::Pin;

use accord_fhir::{FhirRequest, Interaction};
use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::Full;

use super::{BundleKind, EntryRequest};
use crate::error::GatewayError;
use crate::request::{Releasable, RequestContext};
use crate::stages::filter::gateway_made;
use crate::stages::parse::PURPOSE_HEADER;
use crate::stages::respond::Outcome;
use crate::stages::{Gateway, Parsed};

/// The whole request of one entry, boxed: a batch entry runs the stages,
/// which may run a Bundle again.
type EntryRun<'s> = Pin<Box<dyn Future<Output = Result<Releasable, GatewayError>> + Send + 's>>;

// === impl Gateway ===

impl Gateway {
    /// A batch or transaction Bundle: every entry decided (and recorded) as
    /// a request of its own; see `stages/batch.rs`.
    pub(in crate::stages) async fn run_bundle(
        &self,
        ctx: &mut RequestContext,
        parsed: &Parsed,
    ) -> Result<Releasable, GatewayError> {
        let bundle = super::parse_bundle(&parsed.body)?;
        match bundle.kind {
            BundleKind::Batch => {
                let mut results = Vec::new();
                for (index, entry) in bundle.entries.iter().enumerate() {
                    let mut entry_ctx = self.entry_context(ctx, index, entry);
                    let result = match self.entry_request(parsed, index, entry) {
                        Ok(request) => self.run_entry(&mut entry_ctx, request).await,
                        Err(error) => Err(error),
                    };
                    results.push(self.record_entry(ctx, &mut entry_ctx, result).await?);
                }
                gateway_made(StatusCode::OK, &super::batch_response(&results))
            }
            BundleKind::Transaction => self.run_transaction(ctx, parsed, &bundle.entries).await,
        }
    }

    /// Every entry checked (and recorded) first; any refusal refuses the
    /// whole transaction, else it goes upstream as one, rebuilt from the
    /// checked entries.
    async fn run_transaction(
        &self,
        ctx: &mut RequestContext,
        parsed: &Parsed,
        entries: &[EntryRequest],
    ) -> Result<Releasable, GatewayError> {
        let mut prepared = Vec::new();
        let mut refused = Vec::new();
        for (index, entry) in entries.iter().enumerate() {
            if let Some(error) = super::transaction_entry_refusal(entry) {
                refused.push((index, error));
                continue;
            }
            let mut entry_ctx = self.entry_context(ctx, index, entry);
            let checked = match self.entry_request(parsed, index, entry) {
                Ok(request) => self.check(&mut entry_ctx, request).await,
                Err(error) => Err(error),
            };
            let (checked, forwarded) = match checked {
                Ok(forwarded) => (Ok(Releasable::empty(StatusCode::OK)), forwarded),
                Err(error) => (Err(error), None),
            };
            match self.record_entry(ctx, &mut entry_ctx, checked).await? {
                Ok(_) => prepared
                    .extend(forwarded.map(|(fhir, body)| (fhir, body, entry.if_match.clone()))),
                Err(error) => refused.push((index, error)),
            }
        }
        if !refused.is_empty() {
            return Err(super::transaction_refusal(&refused));
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
                super::transaction_bundle(&prepared)?,
                None,
                &ctx.request_id,
                &mut ctx.upstream_wait,
            )
            .await?;
        gateway_made(
            StatusCode::OK,
            &super::filter_transaction_response(upstream, &self.rewrite)?,
        )
    }

    fn run_entry<'s>(
        &'s self,
        ctx: &'s mut RequestContext,
        request: Request<Full<Bytes>>,
    ) -> EntryRun<'s> {
        Box::pin(self.run(ctx, request))
    }

    /// The context of entry `index`: a request of its own, from the same
    /// connection.
    fn entry_context(
        &self,
        outer: &RequestContext,
        index: usize,
        entry: &EntryRequest,
    ) -> RequestContext {
        outer.entry(
            format!("{}-{index}", outer.request_id),
            entry.method.to_string(),
            format!("{}/{}", self.base_path, entry.url),
        )
    }

    /// Entry `index` as the HTTP request it stands for, with the Bundle's
    /// purpose of use and `Accept`.
    fn entry_request(
        &self,
        parsed: &Parsed,
        index: usize,
        entry: &EntryRequest,
    ) -> Result<Request<Full<Bytes>>, GatewayError> {
        let target = format!("{}/{}", self.base_path, entry.url);
        let mut builder = Request::builder().method(entry.method.clone()).uri(&target);
        for name in [PURPOSE_HEADER, header::ACCEPT.as_str()] {
            for value in parsed.headers.get_all(name) {
                builder = builder.header(name, value);
            }
        }
        if !entry.body.is_empty() {
            builder = builder.header(header::CONTENT_TYPE, "application/fhir+json");
        }
        if let Some(if_match) = &entry.if_match {
            builder = builder.header(header::IF_MATCH, if_match);
        }
        match builder.body(Full::new(entry.body.clone())) {
            Ok(_) if entry.refused.is_some() => Err(GatewayError::forbidden(
                entry.refused.clone().unwrap_or_default(),
            )),
            Ok(request) => Ok(request),
            Err(_) => Err(GatewayError::bad_request(format!(
                "Bundle.entry[{index}]: `request.url` is not a valid URL"
            ))),
        }
    }

    /// Records one entry like a request of its own. `Err` only when its
    /// audit record cannot be written (then nothing of the Bundle is
    /// released); the entry's own refusal is the inner `Err`.
    async fn record_entry(
        &self,
        outer: &mut RequestContext,
        entry: &mut RequestContext,
        result: Result<Releasable, GatewayError>,
    ) -> Result<Result<Releasable, GatewayError>, GatewayError> {
        let recorded = self.record(entry, result).await;
        // The Bundle's own record counts every entry's upstream calls.
        outer.upstream_wait.include(entry.upstream_wait);
        match (recorded.outcome, recorded.seq) {
            (Outcome::Refuse(error), None) => Err(error),
            (Outcome::Release(released), _) => Ok(Ok(released)),
            (Outcome::Refuse(error), Some(_)) => Ok(Err(error)),
        }
    }
}
