//! The FHIR R4 RESTful grammar: method + path + query → a typed interaction.
//!
//! Anything this module does not recognise is an error, never a pass-through:
//! the gateway forwards only requests it rebuilt from the typed form.

use std::fmt;

use crate::id::{InvalidId, ResourceId};
use crate::resource_type::{ResourceType, UnknownResourceType};

mod params;

pub use params::{ParamError, SearchParams, base_name, modifier};

/// The HTTP methods FHIR REST uses. Others (HEAD, OPTIONS, TRACE, ...) are
/// refused before they reach this type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

/// One FHIR RESTful interaction, with its target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interaction {
    /// `GET [base]/metadata`
    Capabilities,
    /// `GET [base]/[type]/[id]`
    Read { ty: ResourceType, id: ResourceId },
    /// `GET [base]/[type]/[id]/_history/[vid]`
    VRead {
        ty: ResourceType,
        id: ResourceId,
        version: ResourceId,
    },
    /// `PUT [base]/[type]/[id]`
    Update { ty: ResourceType, id: ResourceId },
    /// `PATCH [base]/[type]/[id]`
    Patch { ty: ResourceType, id: ResourceId },
    /// `DELETE [base]/[type]/[id]`
    Delete { ty: ResourceType, id: ResourceId },
    /// `POST [base]/[type]`
    Create { ty: ResourceType },
    /// `GET [base]/[type]?...` or `POST [base]/[type]/_search`
    SearchType { ty: ResourceType },
    /// `GET [base]?...` or `POST [base]/_search`
    SearchSystem,
    /// `GET [base]/[compartment]/[id]/[type]` or `.../*`
    SearchCompartment {
        compartment: ResourceType,
        id: ResourceId,
        ty: Option<ResourceType>,
    },
    /// `GET [base]/[type]/[id]/_history`
    HistoryInstance { ty: ResourceType, id: ResourceId },
    /// `GET [base]/[type]/_history`
    HistoryType { ty: ResourceType },
    /// `GET [base]/_history`
    HistorySystem,
    /// `[base]/$op`, `[base]/[type]/$op`, `[base]/[type]/[id]/$op`
    Operation {
        name: OperationName,
        target: OperationTarget,
    },
    /// `POST [base]` with a batch or transaction Bundle.
    BatchOrTransaction,
}

/// What an operation is invoked on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperationTarget {
    System,
    Type(ResourceType),
    Instance(ResourceType, ResourceId),
}

/// An operation name such as `$everything`, stored without the `$`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct OperationName(String);

/// The coarse kind of an interaction, the unit agreements grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum InteractionKind {
    Capabilities,
    Read,
    VRead,
    Search,
    History,
    Create,
    Update,
    Patch,
    Delete,
    Operation,
    Batch,
}

/// A parsed FHIR REST request: the interaction and its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FhirRequest {
    pub method: Method,
    pub interaction: Interaction,
    pub params: SearchParams,
}

/// Why a request is not a FHIR interaction Accord understands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error(transparent)]
    UnknownType(#[from] UnknownResourceType),
    #[error(transparent)]
    InvalidId(#[from] InvalidId),
    #[error("`{path}` is not a FHIR REST path")]
    MalformedPath { path: String },
    #[error("{method:?} is not allowed on `{path}`")]
    MethodNotAllowed { method: Method, path: String },
    #[error("`{0}` is not a valid operation name")]
    InvalidOperation(String),
    #[error(transparent)]
    Param(#[from] ParamError),
}

// === impl FhirRequest ===

impl FhirRequest {
    /// Parses a request relative to the FHIR base.
    ///
    /// `path` is what follows the base path (`Patient/1`, no leading slash
    /// needed); `query` is the raw query string without `?`; `form_body` is
    /// the body of a `POST .../_search` sent as
    /// `application/x-www-form-urlencoded`, whose parameters join the query's.
    pub fn parse(
        method: Method,
        path: &str,
        query: Option<&str>,
        form_body: Option<&[u8]>,
    ) -> Result<Self, RequestError> {
        let segments = split_path(path)?;
        let interaction = route(method, &segments, path)?;
        let mut params = SearchParams::parse_query(query.unwrap_or(""))?;
        let is_search = matches!(
            interaction,
            Interaction::SearchType { .. } | Interaction::SearchSystem
        );
        if let (true, Method::Post, Some(body)) = (is_search, method, form_body) {
            params.extend(SearchParams::parse_form(body)?);
        }
        Ok(FhirRequest {
            method,
            interaction,
            params,
        })
    }

    /// The path of this interaction relative to a FHIR base, rebuilt from
    /// the typed form (never copied from the partner's request).
    /// Searches are always sent as GET, so `_search` never appears.
    pub fn relative_path(&self) -> String {
        self.interaction.relative_path()
    }

    /// The resource type the interaction acts on, when it has one.
    pub fn resource_type(&self) -> Option<ResourceType> {
        self.interaction.resource_type()
    }
}

// === impl Interaction ===

impl Interaction {
    pub fn kind(&self) -> InteractionKind {
        match self {
            Interaction::Capabilities => InteractionKind::Capabilities,
            Interaction::Read { .. } => InteractionKind::Read,
            Interaction::VRead { .. } => InteractionKind::VRead,
            Interaction::Update { .. } => InteractionKind::Update,
            Interaction::Patch { .. } => InteractionKind::Patch,
            Interaction::Delete { .. } => InteractionKind::Delete,
            Interaction::Create { .. } => InteractionKind::Create,
            Interaction::SearchType { .. }
            | Interaction::SearchSystem
            | Interaction::SearchCompartment { .. } => InteractionKind::Search,
            Interaction::HistoryInstance { .. }
            | Interaction::HistoryType { .. }
            | Interaction::HistorySystem => InteractionKind::History,
            Interaction::Operation { .. } => InteractionKind::Operation,
            Interaction::BatchOrTransaction => InteractionKind::Batch,
        }
    }

    pub fn resource_type(&self) -> Option<ResourceType> {
        match self {
            Interaction::Read { ty, .. }
            | Interaction::VRead { ty, .. }
            | Interaction::Update { ty, .. }
            | Interaction::Patch { ty, .. }
            | Interaction::Delete { ty, .. }
            | Interaction::Create { ty }
            | Interaction::SearchType { ty }
            | Interaction::HistoryInstance { ty, .. }
            | Interaction::HistoryType { ty } => Some(*ty),
            Interaction::SearchCompartment { ty, .. } => *ty,
            Interaction::Operation { target, .. } => match target {
                OperationTarget::System => None,
                OperationTarget::Type(ty) | OperationTarget::Instance(ty, _) => Some(*ty),
            },
            Interaction::Capabilities
            | Interaction::SearchSystem
            | Interaction::HistorySystem
            | Interaction::BatchOrTransaction => None,
        }
    }

    fn relative_path(&self) -> String {
        match self {
            Interaction::Capabilities => "metadata".to_owned(),
            Interaction::Read { ty, id }
            | Interaction::Update { ty, id }
            | Interaction::Patch { ty, id }
            | Interaction::Delete { ty, id } => format!("{ty}/{id}"),
            Interaction::VRead { ty, id, version } => format!("{ty}/{id}/_history/{version}"),
            Interaction::Create { ty } | Interaction::SearchType { ty } => ty.to_string(),
            Interaction::SearchSystem | Interaction::BatchOrTransaction => String::new(),
            Interaction::SearchCompartment {
                compartment,
                id,
                ty,
            } => match ty {
                Some(ty) => format!("{compartment}/{id}/{ty}"),
                None => format!("{compartment}/{id}/*"),
            },
            Interaction::HistoryInstance { ty, id } => format!("{ty}/{id}/_history"),
            Interaction::HistoryType { ty } => format!("{ty}/_history"),
            Interaction::HistorySystem => "_history".to_owned(),
            Interaction::Operation { name, target } => match target {
                OperationTarget::System => format!("${name}"),
                OperationTarget::Type(ty) => format!("{ty}/${name}"),
                OperationTarget::Instance(ty, id) => format!("{ty}/{id}/${name}"),
            },
        }
    }
}

// === impl InteractionKind ===

impl InteractionKind {
    /// The name agreements use for this kind (`read`, `search`, ...).
    pub fn as_str(&self) -> &'static str {
        match self {
            InteractionKind::Capabilities => "capabilities",
            InteractionKind::Read => "read",
            InteractionKind::VRead => "vread",
            InteractionKind::Search => "search",
            InteractionKind::History => "history",
            InteractionKind::Create => "create",
            InteractionKind::Update => "update",
            InteractionKind::Patch => "patch",
            InteractionKind::Delete => "delete",
            InteractionKind::Operation => "operation",
            InteractionKind::Batch => "batch",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    pub const ALL: [InteractionKind; 11] = [
        InteractionKind::Capabilities,
        InteractionKind::Read,
        InteractionKind::VRead,
        InteractionKind::Search,
        InteractionKind::History,
        InteractionKind::Create,
        InteractionKind::Update,
        InteractionKind::Patch,
        InteractionKind::Delete,
        InteractionKind::Operation,
        InteractionKind::Batch,
    ];

    /// Whether the interaction changes data upstream.
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            InteractionKind::Create
                | InteractionKind::Update
                | InteractionKind::Patch
                | InteractionKind::Delete
                | InteractionKind::Batch
        )
    }
}

impl fmt::Display for InteractionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for InteractionKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

// === impl OperationName ===

impl OperationName {
    /// Parses `$name`: a letter then letters, digits or `-`.
    pub fn parse(segment: &str) -> Result<Self, RequestError> {
        let invalid = || RequestError::InvalidOperation(segment.to_owned());
        let name = segment.strip_prefix('$').ok_or_else(invalid)?;
        let mut chars = name.chars();
        let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
        if starts_with_letter
            && name.len() <= 64
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            Ok(OperationName(name.to_owned()))
        } else {
            Err(invalid())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OperationName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for OperationName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "${}", self.0)
    }
}

// === routing ===

/// Splits the path into segments, refusing empty, dot and encoded segments:
/// nothing in the FHIR grammar needs them and each is a known way to make a
/// proxy and a server disagree about which resource is meant.
fn split_path(path: &str) -> Result<Vec<&str>, RequestError> {
    let trimmed = path.trim_start_matches('/');
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    if trimmed.is_empty() {
        return Ok(Vec::new());
    }
    let segments: Vec<&str> = trimmed.split('/').collect();
    let acceptable = |s: &&str| {
        !s.is_empty()
            && *s != "."
            && *s != ".."
            && s.bytes()
                .all(|b| b.is_ascii_graphic() && b != b'%' && b != b'\\')
    };
    if segments.iter().all(acceptable) {
        Ok(segments)
    } else {
        Err(RequestError::MalformedPath {
            path: path.to_owned(),
        })
    }
}

fn route(method: Method, segments: &[&str], path: &str) -> Result<Interaction, RequestError> {
    use Method::{Delete, Get, Patch, Post, Put};

    let not_allowed = || RequestError::MethodNotAllowed {
        method,
        path: path.to_owned(),
    };
    let malformed = || RequestError::MalformedPath {
        path: path.to_owned(),
    };
    let operation = |segment: &str, target| -> Result<Interaction, RequestError> {
        match method {
            Get | Post => Ok(Interaction::Operation {
                name: OperationName::parse(segment)?,
                target,
            }),
            _ => Err(not_allowed()),
        }
    };

    match segments {
        [] => match method {
            Get => Ok(Interaction::SearchSystem),
            Post => Ok(Interaction::BatchOrTransaction),
            _ => Err(not_allowed()),
        },
        ["metadata"] => match method {
            Get => Ok(Interaction::Capabilities),
            _ => Err(not_allowed()),
        },
        ["_history"] => match method {
            Get => Ok(Interaction::HistorySystem),
            _ => Err(not_allowed()),
        },
        ["_search"] => match method {
            Post => Ok(Interaction::SearchSystem),
            _ => Err(not_allowed()),
        },
        [op] if op.starts_with('$') => operation(op, OperationTarget::System),
        [ty] => {
            let ty = ResourceType::parse(ty)?;
            match method {
                Get => Ok(Interaction::SearchType { ty }),
                Post => Ok(Interaction::Create { ty }),
                // Conditional update/patch/delete act on whatever a search
                // matches: not supported through the gateway.
                _ => Err(not_allowed()),
            }
        }
        [ty, "_search"] => {
            let ty = ResourceType::parse(ty)?;
            match method {
                Post => Ok(Interaction::SearchType { ty }),
                _ => Err(not_allowed()),
            }
        }
        [ty, "_history"] => {
            let ty = ResourceType::parse(ty)?;
            match method {
                Get => Ok(Interaction::HistoryType { ty }),
                _ => Err(not_allowed()),
            }
        }
        [ty, op] if op.starts_with('$') => {
            operation(op, OperationTarget::Type(ResourceType::parse(ty)?))
        }
        [ty, id] => {
            let ty = ResourceType::parse(ty)?;
            let id = ResourceId::parse(id)?;
            match method {
                Get => Ok(Interaction::Read { ty, id }),
                Put => Ok(Interaction::Update { ty, id }),
                Patch => Ok(Interaction::Patch { ty, id }),
                Delete => Ok(Interaction::Delete { ty, id }),
                Post => Err(not_allowed()),
            }
        }
        [ty, id, "_history"] => {
            let ty = ResourceType::parse(ty)?;
            let id = ResourceId::parse(id)?;
            match method {
                Get => Ok(Interaction::HistoryInstance { ty, id }),
                _ => Err(not_allowed()),
            }
        }
        [ty, id, op] if op.starts_with('$') => {
            let ty = ResourceType::parse(ty)?;
            operation(op, OperationTarget::Instance(ty, ResourceId::parse(id)?))
        }
        [compartment, id, ty] => {
            let compartment = ResourceType::parse(compartment)?;
            let id = ResourceId::parse(id)?;
            let ty = match *ty {
                "*" => None,
                other => Some(ResourceType::parse(other)?),
            };
            match method {
                Get => Ok(Interaction::SearchCompartment {
                    compartment,
                    id,
                    ty,
                }),
                _ => Err(not_allowed()),
            }
        }
        [ty, id, "_history", version] => {
            let ty = ResourceType::parse(ty)?;
            let id = ResourceId::parse(id)?;
            let version = ResourceId::parse(version)?;
            match method {
                Get => Ok(Interaction::VRead { ty, id, version }),
                _ => Err(not_allowed()),
            }
        }
        _ => Err(malformed()),
    }
}

#[cfg(test)]
mod tests;
