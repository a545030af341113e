//! The forward stage: the narrowed request goes to the upstream — the one
//! server, or with one server per member every server the grant reaches —
//! over the pooled client (`upstream/client.rs`). The request sent is the
//! one rebuilt from the typed form, never the partner's bytes.

use http::header;

use crate::error::GatewayError;
use crate::request::RequestContext;
use crate::stages::{Fetched, Gateway, Narrowed, Permitted};
use crate::upstream::paging::read_to_end;

// === impl Gateway ===

impl Gateway {
    /// The forward stage: asks the upstream; with several members'
    /// servers, learns whose server each resource came from.
    pub(super) async fn forward<'p>(
        &self,
        ctx: &mut RequestContext,
        permitted: &Permitted,
        narrowed: Narrowed<'p>,
    ) -> Result<Fetched<'p>, GatewayError> {
        let response = match &self.federation {
            Some(federation) => {
                let forwarded = federation
                    .send(
                        &narrowed.fhir,
                        narrowed.body.clone(),
                        &narrowed.headers,
                        permitted
                            .obligations
                            .as_ref()
                            .and_then(|o| o.source.as_ref()),
                        &ctx.request_id,
                        &mut ctx.upstream_wait,
                    )
                    .await?;
                narrowed
                    .scope
                    .learn_origins(forwarded.origins, forwarded.ambiguous);
                forwarded.response
            }
            None => {
                let first = self
                    .upstream
                    .send(
                        &narrowed.fhir,
                        narrowed.body.clone(),
                        narrowed.headers.get(header::IF_MATCH),
                        &ctx.request_id,
                        &mut ctx.upstream_wait,
                    )
                    .await?;
                // A search the gateway pages itself is read to its end.
                match narrowed.page {
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
        ctx.resource = super::record::acted_on(&narrowed.fhir, &response.headers, &response.body);
        Ok(Fetched { narrowed, response })
    }
}
