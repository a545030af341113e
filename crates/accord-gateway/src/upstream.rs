//! Everything the gateway asks the upstream FHIR server(s), apart from the
//! partner's own request: the pooled client, paging, the lookups the
//! filter needs (referral membership, Medications, Encounters), one server
//! per member, and the consent feed.
//!
//! No module here imports a stage: stages call the upstream, never the
//! other way round.

pub mod client;
pub mod consent_feed;
pub mod federation;
pub mod lookup;
pub mod medications;
pub mod paging;
pub mod referral;
