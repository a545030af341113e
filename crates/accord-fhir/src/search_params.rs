//! FHIR R4 search parameters: which elements a parameter reads, and whether
//! a resource matches a parameter value.
//!
//! The table is generated from the official SearchParameter definitions
//! (`tools/gen-search-params.py`). Two readers: a grant's `constraints`
//! (`Observation?category=laboratory`) are evaluated on every resource
//! before it is released, and search or sort parameters that read an
//! element a grant redacts are refused.
//!
//! Matching is deliberately partial: token, reference, string, uri and
//! `_id` values with the common modifiers. Anything else answers
//! [`Match::Unknown`], which callers treat as "does not match" (fail
//! closed).

use serde_json::Value;

use crate::resource_type::ResourceType;

mod eval;
#[rustfmt::skip]
mod table;

/// Type → its `(code, kind, [paths])` entries.
type Table = &'static [(
    &'static str,
    &'static [(&'static str, ParamKind, &'static [&'static str])],
)];

/// A search parameter's type, as in `SearchParameter.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    Number,
    Date,
    String,
    Token,
    Reference,
    Composite,
    Quantity,
    Uri,
    Special,
}

/// One search parameter of one resource type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchParam {
    pub code: &'static str,
    pub kind: ParamKind,
    /// Paths in the generator's grammar (see tools/gen-search-params.py).
    paths: &'static [&'static str],
}

/// Whether a resource matches a search value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    Yes,
    No,
    /// The value, modifier or expression is beyond what is evaluated here.
    Unknown,
}

/// The search parameter `code` of `ty`, or of every resource (`_id`,
/// `_tag`, ...); `None` when R4 defines no such parameter.
pub fn search_param(ty: ResourceType, code: &str) -> Option<SearchParam> {
    [ty.as_str(), "DomainResource", "Resource"]
        .into_iter()
        .find_map(|name| lookup(name, code))
}

fn lookup(ty: &str, code: &str) -> Option<SearchParam> {
    let index = table::SEARCH_PARAMS
        .binary_search_by(|(name, _)| (*name).cmp(ty))
        .ok()?;
    let (_, params) = table::SEARCH_PARAMS.get(index)?;
    params
        .iter()
        .find(|(c, _, _)| *c == code)
        .map(|(code, kind, paths)| SearchParam {
            code,
            kind: *kind,
            paths,
        })
}

// === impl SearchParam ===

impl SearchParam {
    /// The element paths (without the type prefix, e.g. `address.postalCode`)
    /// this parameter reads; an empty path means the whole resource (an
    /// expression too complex to place).
    pub fn elements(&self) -> Vec<String> {
        self.paths
            .iter()
            .map(|p| eval::Path::parse(p).element())
            .collect()
    }

    /// Whether `resource` matches `value` (a comma list: any of them) under
    /// `modifier` (`exact`, `contains`, `not`, `missing`, a type).
    pub fn matches(&self, resource: &Value, modifier: Option<&str>, value: &str) -> Match {
        eval::matches(self, resource, modifier, value)
    }
}

/// Whether `resource` satisfies every `(name, value)` of a constraint (the
/// parameters are ANDed). `Unknown` for a parameter R4 does not define.
pub fn satisfies(resource: &Value, ty: ResourceType, params: &[(String, String)]) -> Match {
    let mut answer = Match::Yes;
    for (name, value) in params {
        let (code, modifier) = match name.split_once(':') {
            Some((code, modifier)) => (code, Some(modifier)),
            None => (name.as_str(), None),
        };
        let result = match search_param(ty, code) {
            Some(param) => param.matches(resource, modifier, value),
            None => Match::Unknown,
        };
        match result {
            Match::No => return Match::No,
            Match::Unknown => answer = Match::Unknown,
            Match::Yes => {}
        }
    }
    answer
}

#[cfg(test)]
mod tests;
