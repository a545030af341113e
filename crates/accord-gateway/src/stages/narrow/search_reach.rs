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
    let redacted: Vec<String> = scope
        .redactions(ty)
        .iter()
        .map(|r| choice_as_read(ty, r))
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

/// A redacted path as parameters read it: a choice element redacted as
/// `value[x]` or as one of its types (`valueQuantity`) is read as `value`
/// (whatever its type; refusing more is the safe side).
fn choice_as_read(ty: ResourceType, redacted: &str) -> String {
    let redacted = redacted.replace("[x]", "");
    let (first, rest) = match redacted.split_once('.') {
        Some((first, rest)) => (first, Some(rest)),
        None => (redacted.as_str(), None),
    };
    let choice = (1..first.len()).find_map(|at| {
        let (name, typed) = first.split_at_checked(at)?;
        (typed.starts_with(|c: char| c.is_ascii_uppercase())
            && accord_fhir::elements::is_choice_element(ty.as_str(), name))
        .then_some(name)
    });
    match (choice, rest) {
        (Some(name), Some(rest)) => format!("{name}.{rest}"),
        (Some(name), None) => name.to_owned(),
        (None, _) => redacted.clone(),
    }
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
    use super::{choice_as_read, overlaps};
    use accord_fhir::ResourceType;

    #[test]
    fn an_element_overlaps_what_contains_it_and_what_it_contains() {
        assert!(overlaps("address.postalCode", "address"));
        assert!(overlaps("address", "address.postalCode"));
        assert!(overlaps("", "address"));
        assert!(!overlaps("addressee", "address"));
        assert!(!overlaps("gender", "address"));
    }

    #[test]
    fn a_redacted_choice_element_is_read_by_its_name() {
        let observation = ResourceType::parse("Observation").unwrap();
        assert_eq!(choice_as_read(observation, "value[x]"), "value");
        assert_eq!(choice_as_read(observation, "valueQuantity"), "value");
        assert_eq!(
            choice_as_read(observation, "valueQuantity.unit"),
            "value.unit"
        );
        assert_eq!(choice_as_read(observation, "performer"), "performer");
        assert_eq!(choice_as_read(observation, "status"), "status");
    }
}
