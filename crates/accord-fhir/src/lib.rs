//! FHIR R4 vocabulary for Accord.
//!
//! This crate owns the words the rest of Accord speaks: resource types and
//! ids, the RESTful request grammar, purposes of use, OperationOutcome,
//! Bundle link rewriting and R4 validation of submitted resources.
//!
//! It must never do I/O or hold policy: it only parses, names and renders,
//! and everything it parses comes from the network and may be hostile.

pub mod compartment;
pub mod elements;
pub mod id;
pub mod links;
pub mod outcome;
pub mod purpose;
pub mod request;
pub mod resource_type;
pub mod schema;
pub mod search_params;
pub mod validate;

pub use elements::{ElementPathError, check_element_path};
pub use id::{InvalidId, ResourceId};
pub use links::BaseRewrite;
pub use outcome::{IssueType, OperationOutcome, Severity};
pub use purpose::{Purpose, PurposeError};
pub use request::{
    FhirRequest, Interaction, InteractionKind, Method, OperationName, OperationTarget, ParamError,
    RequestError, SearchParams,
};
pub use resource_type::{ResourceType, UnknownResourceType};
pub use validate::{ValidationError, validate_resource};
