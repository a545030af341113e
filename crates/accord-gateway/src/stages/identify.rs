//! Stage 1, identify (→ `Identified`): the client certificate's key names
//! the partner.

use accord_policy::{PartnerId, PartnerStatus, PolicySet, SpkiPin};
use ring::digest;

use crate::error::GatewayError;
use crate::request::RequestContext;
use crate::stages::{Gateway, Identified};

/// The lowercase hex SHA-256 of a certificate's DER SubjectPublicKeyInfo,
/// or `None` if the certificate cannot be parsed (the TLS layer already
/// verified its chain, so this does not happen in practice).
pub fn spki_pin(cert_der: &[u8]) -> Option<SpkiPin> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).ok()?;
    let spki = cert.tbs_certificate.subject_pki.raw;
    let hash = digest::digest(&digest::SHA256, spki);
    let hex: String = hash.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    SpkiPin::parse(&hex).ok()
}

/// The lowercase hex SHA-256 of a certificate's DER encoding: its
/// fingerprint, as `openssl x509 -fingerprint -sha256` prints it (without
/// the colons).
pub fn cert_fingerprint(cert_der: &[u8]) -> String {
    digest::digest(&digest::SHA256, cert_der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Maps the connection's certificate pin to an active partner.
///
/// On refusal the partner is still returned when known (a suspended
/// partner's attempts are audited under its name).
pub fn identify(
    policies: &PolicySet,
    pin: Option<&SpkiPin>,
) -> Result<PartnerId, (GatewayError, Option<PartnerId>)> {
    let pin = pin.ok_or((GatewayError::no_certificate(), None))?;
    let partner = policies
        .partner_by_pin(pin)
        .ok_or((GatewayError::unknown_certificate(), None))?;
    match partner.status {
        PartnerStatus::Active => Ok(partner.id.clone()),
        status => Err((
            GatewayError::forbidden(format!("partner `{}` is {}", partner.id, status.as_str())),
            Some(partner.id.clone()),
        )),
    }
}

// === impl Gateway ===

impl Gateway {
    /// The identify stage: the partner behind the connection, under the
    /// policy set current when the request started (one set decides the
    /// whole request, even if a reload lands meanwhile).
    pub(super) fn identify(&self, ctx: &mut RequestContext) -> Result<Identified, GatewayError> {
        let policies = self.policies.current();
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
        Ok(Identified { policies, partner })
    }
}
