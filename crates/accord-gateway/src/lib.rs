//! The Accord data path.
//!
//! This crate owns everything between a partner's TLS connection and the
//! upstream FHIR server: the listener, and the phases every request runs
//! through — identify, parse, decide, forward, filter, audit, respond — each
//! in a module of that name.
//!
//! It must never release a byte the decision does not allow, and never
//! release anything before the request's audit record is durable.

pub mod admin;
pub mod audit;
pub mod batch;
pub mod bounded;
pub mod caps;
pub mod compartment_search;
pub mod config;
pub mod consent_feed;
pub mod context;
pub mod decide;
pub mod error;
pub mod federation;
pub mod filter;
pub mod forward;
pub mod identify;
pub mod lookup;
pub mod medications;
pub mod metrics;
pub mod narrow;
pub mod paging;
pub mod parse;
pub mod pipeline;
pub mod policy_store;
pub mod referral;
pub mod release_page;
pub mod respond;
pub mod scope;
pub mod search_reach;
pub mod server;
pub mod subset;
pub mod tls;
pub mod validate;
pub mod watch;
pub mod witness_client;
pub mod write;
pub mod write_reach;

#[cfg(test)]
mod test_support;

pub use config::{GatewayConfig, Limits, TlsFiles};
pub use error::{ErrorSource, GatewayError};
pub use parse::PURPOSE_HEADER;
pub use policy_store::PolicyStore;
pub use respond::{AUDIT_SEQ_HEADER, REQUEST_ID_HEADER};
pub use server::{GatewayServer, StartError};
