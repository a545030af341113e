//! The Accord data path.
//!
//! This crate owns everything between a partner's TLS connection and the
//! upstream FHIR server. It reads top to bottom:
//!
//! - [`server`], [`tls`]: the listener, TLS, connection limits and deadlines;
//! - [`stages`]: the stages every request runs through, each a module that
//!   takes the previous stage's value and returns the next — identify →
//!   parse → decide → narrow → forward → filter → record → respond;
//! - [`request`]: the per-request types the stages share (a leaf: it
//!   imports no stage);
//! - [`upstream`]: the pooled client, paging, the gateway's own lookups
//!   (referrals, Medications, Encounters), several members' servers and the
//!   consent feed;
//! - [`ops`]: the admin listener, metrics, the file watcher, the witness
//!   client.
//!
//! No module imports a module that imports it back
//! (`tools/check-module-cycles.py`, run by CI).
//!
//! It must never release a byte the decision does not allow, and never
//! release anything before the request's audit record is durable.

pub mod bounded;
pub mod caps;
pub mod config;
pub mod error;
pub mod ops;
pub mod policy_store;
pub mod request;
pub mod scope;
pub mod server;
pub mod stages;
pub mod tls;
pub mod upstream;

#[cfg(test)]
mod test_support;

pub use config::{GatewayConfig, Limits, TlsFiles};
pub use error::{ErrorSource, GatewayError};
pub use policy_store::PolicyStore;
pub use server::{GatewayServer, StartError};
pub use stages::parse::PURPOSE_HEADER;
pub use stages::respond::{AUDIT_SEQ_HEADER, REQUEST_ID_HEADER};
