//! Which partner a Consent's `provision.actor` names.
//!
//! Consents are written by people (policies/consents/) and by source
//! systems (the EHR's Consents the gateway's consent feed pulls). A person
//! names the partner by its id in partners.toml (`Organization/maple-primary`);
//! a source system names the partner's Organization resource on the FHIR
//! server, which is what each partner's `organization` in partners.toml
//! records (`Organization/org-maple-primary`). Both name the same partner.
//! Anything else is not a partner: the consent cannot be applied, so it is
//! an error (files) or a rejected consent (pulled: its patient's data is
//! withheld until it is corrected).

use std::collections::HashMap;

use crate::ids::PartnerId;
use crate::partner::Partner;

/// Actor references → partners, built from partners.toml.
#[derive(Debug, Clone, Default)]
pub struct ConsentActors {
    /// `None`: the reference names two different partners (one by id, one
    /// by its upstream Organization), so it cannot be trusted to mean
    /// either.
    by_reference: HashMap<String, Option<PartnerId>>,
}

/// An actor reference that names no single partner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnknownActor {
    /// Neither `Organization/<partner id>` nor any partner's `organization`.
    NotAPartner,
    /// One partner's id and another partner's `organization`.
    Ambiguous,
}

impl ConsentActors {
    /// The references each partner answers to: `Organization/<id>` and,
    /// when partners.toml gives one, its `organization`.
    pub fn new<'a>(partners: impl IntoIterator<Item = &'a Partner>) -> Self {
        let mut by_reference: HashMap<String, Option<PartnerId>> = HashMap::new();
        let mut add = |reference: String, id: &PartnerId| {
            by_reference
                .entry(reference)
                .and_modify(|known| {
                    if known.as_ref() != Some(id) {
                        *known = None;
                    }
                })
                .or_insert_with(|| Some(id.clone()));
        };
        for partner in partners {
            add(format!("Organization/{}", partner.id), &partner.id);
            if let Some(organization) = &partner.organization {
                add(organization.clone(), &partner.id);
            }
        }
        ConsentActors { by_reference }
    }

    /// The partner `reference` (an actor's `reference.reference`) names.
    pub fn partner(&self, reference: &str) -> Result<&PartnerId, UnknownActor> {
        match self.by_reference.get(reference) {
            Some(Some(id)) => Ok(id),
            Some(None) => Err(UnknownActor::Ambiguous),
            None => Err(UnknownActor::NotAPartner),
        }
    }
}

/// A partner with nothing but an id and, optionally, its upstream
/// Organization (for consent tests).
#[cfg(test)]
pub(crate) fn test_partner(id: &str, organization: Option<&str>) -> Partner {
    Partner {
        id: PartnerId::parse(id).unwrap(),
        name: id.to_owned(),
        identifiers: Vec::new(),
        organization: organization.map(str::to_owned),
        source_systems: Vec::new(),
        contact: None,
        address: None,
        status: crate::partner::PartnerStatus::Active,
        spki_sha256: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::test_partner as partner;
    use super::*;

    #[test]
    fn a_partner_is_named_by_its_id_or_its_upstream_organization() {
        let partners = [
            partner("maple-primary", Some("Organization/org-maple-primary")),
            partner("st-brigid", None),
        ];
        let actors = ConsentActors::new(&partners);
        let maple = PartnerId::parse("maple-primary").unwrap();
        assert_eq!(actors.partner("Organization/maple-primary"), Ok(&maple));
        assert_eq!(actors.partner("Organization/org-maple-primary"), Ok(&maple));
        assert_eq!(
            actors
                .partner("Organization/st-brigid")
                .map(PartnerId::as_str),
            Ok("st-brigid")
        );
        assert_eq!(
            actors.partner("Organization/org-st-brigid"),
            Err(UnknownActor::NotAPartner),
            "no `organization` configured: only the partner id names it"
        );
        assert_eq!(
            actors.partner("Organization/org-unknown"),
            Err(UnknownActor::NotAPartner)
        );
        assert_eq!(
            actors.partner("org-maple-primary"),
            Err(UnknownActor::NotAPartner)
        );
    }

    #[test]
    fn a_reference_naming_two_partners_names_neither() {
        // `b`'s upstream Organization has the id of partner `a`.
        let partners = [partner("a", None), partner("b", Some("Organization/a"))];
        let actors = ConsentActors::new(&partners);
        assert_eq!(
            actors.partner("Organization/a"),
            Err(UnknownActor::Ambiguous)
        );
        assert_eq!(
            actors.partner("Organization/b").map(PartnerId::as_str),
            Ok("b")
        );
    }
}
