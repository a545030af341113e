//! Test and demo support for Accord.
//!
//! Owns: a deterministic synthetic FHIR R4 population ([`population`]), an
//! in-memory FHIR R4 server over plain HTTP ([`fhir_server`]), a throwaway
//! development PKI ([`pki`]) and a TLS partner client ([`client`]).
//!
//! Must never: sit on the data path of a real deployment (the gateway,
//! policy and audit crates take it as a dev-dependency only; the CLI uses it
//! only for `accord demo`), hold real patient data, or stand in for a
//! production FHIR server or certificate authority. Its keys are for tests.

pub mod client;
pub mod fhir_server;
pub mod pki;
pub mod population;
