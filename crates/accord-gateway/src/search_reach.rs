//! Search criteria are not an oracle: a search or sort parameter whose R4
//! definition reads an element the grant redacts would reveal that element
//! through which results come back (`Patient?address-postalcode=…` when
//! `Patient.address` is redacted). Such parameters are refused, whoever
//! the search is about, with an OperationOutcome naming the parameter.

use accord_fhir::request::base_name;
use accord_fhir::search_params::search_param;
use accord_fhir::{FhirRequest, ResourceType};

use crate::error::GatewayError;
use crate::scope::Scope;

/// Result parameters that select no resources (`_sort` is checked by the
/// parameters it sorts on).
const RESULT_PARAMS: &[&str] = &[
    "_count",
    "_offset",
    "_include",
    "_revinclude",
    "_summary",
    "_elements",
    "_total",
    "_format",
    "_pretty",
    "_contained",
    "_containedType",
];

/// Refuses a search on `ty` with a parameter that reads a redacted element.
pub fn check_search_params(
    request: &FhirRequest,
    ty: ResourceType,
    scope: &Scope<'_>,
) -> Result<(), GatewayError> {
    // A choice element is redacted as `value[x]`; parameters read it as
    // `value` (whatever its type).
    let redacted: Vec<String> = scope
        .redactions(ty)
        .iter()
        .map(|r| r.replace("[x]", ""))
        .collect();
    if redacted.is_empty() {
        return Ok(());
    }
    for (name, value) in request.params.iter() {
        let base = base_name(name);
        let codes: Vec<&str> = match base {
            "_sort" => value
                .split(',')
                .map(|c| c.trim_start_matches('-'))
                .collect(),
            _ if RESULT_PARAMS.contains(&base) => continue,
            _ => vec![base],
        };
        for code in codes {
            // A parameter R4 does not define is the upstream's to refuse.
            let Some(param) = search_param(ty, code) else {
                continue;
            };
            for element in param.elements() {
                if let Some(hidden) = redacted.iter().find(|r| overlaps(&element, r)) {
                    return Err(GatewayError::forbidden(format!(
                        "parameter `{name}` reads `{ty}.{hidden}`, which your agreement withholds"
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Whether reading `element` reads (part of) `redacted`: one contains the
/// other; the empty element is the whole resource.
fn overlaps(element: &str, redacted: &str) -> bool {
    let within = |inner: &str, outer: &str| {
        outer.is_empty()
            || inner == outer
            || inner
                .strip_prefix(outer)
                .is_some_and(|rest| rest.starts_with('.'))
    };
    within(element, redacted) || within(redacted, element)
}

#[cfg(test)]
mod tests {
    use super::overlaps;

    #[test]
    fn an_element_overlaps_what_contains_it_and_what_it_contains() {
        assert!(overlaps("address.postalCode", "address"));
        assert!(overlaps("address", "address.postalCode"));
        assert!(overlaps("", "address"));
        assert!(!overlaps("addressee", "address"));
        assert!(!overlaps("gender", "address"));
        assert!(overlaps("value", &"value[x]".replace("[x]", "")));
    }
}
