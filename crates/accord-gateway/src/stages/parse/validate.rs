//! The whole request is validated before anything about its patients is
//! asked. A patient out of reach is answered as one with no data without
//! asking the upstream; if a malformed parameter were left for the upstream
//! to refuse, a patient with no data would get its 400 while one out of
//! reach got an empty answer, and the difference would tell them apart
//! (issue 15, item 5). So every parameter is checked here, against the R4
//! SearchParameter definitions, for every patient alike.

use accord_fhir::request::{SearchParams, base_name};
use accord_fhir::search_params::{ParamKind, search_param};
use accord_fhir::{FhirRequest, Interaction, ResourceType};

use crate::error::GatewayError;
use crate::stages::filter::subset::Subset;

/// Parameters that shape the result rather than select resources.
const RESULT_PARAMS: &[&str] = &[
    "_count",
    "_offset",
    "_include",
    "_revinclude",
    "_summary",
    "_elements",
    "_total",
    "_sort",
    "_format",
    "_pretty",
];

/// Parameters narrowing refuses with its own words (`_has`, `_filter`,
/// ...): known here, so the refusal stays narrowing's.
const REFUSED_LATER: &[&str] = &["_has", "_filter", "_query", "_contained", "_containedType"];

/// What a read may carry (FHIR R4 §3.1.0.1.1: the subsetting and format
/// parameters).
const READ_PARAMS: &[&str] = &["_summary", "_elements", "_format", "_pretty"];

/// Comparison prefixes of number, date and quantity values.
const PREFIXES: &[&str] = &["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"];

/// Refuses (400) a request whose parameters are unknown or malformed,
/// before the decision looks at its patients.
pub fn validate(request: &FhirRequest) -> Result<(), GatewayError> {
    // `_summary` and `_elements` are the gateway's to apply (subset.rs):
    // checked by the same parser that later takes them off.
    // `_summary=count` is narrowing's to refuse (counts would include
    // withheld data), in its own words.
    let mut subsetting = request.params.clone();
    subsetting.retain(|name, value| !(base_name(name) == "_summary" && value == "count"));
    Subset::take(&mut subsetting)?;
    match &request.interaction {
        Interaction::SearchType { ty } => validate_search(&request.params, *ty),
        Interaction::Read { .. } | Interaction::VRead { .. } => {
            for (name, _) in request.params.iter() {
                if !READ_PARAMS.contains(&base_name(name)) {
                    return Err(GatewayError::bad_request(format!(
                        "`{name}` is not a parameter of a read (only _summary, _elements, _format)"
                    )));
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn validate_search(params: &SearchParams, ty: ResourceType) -> Result<(), GatewayError> {
    for (name, value) in params.iter() {
        let base = base_name(name);
        if value.is_empty() {
            return Err(GatewayError::bad_request(format!("`{name}` has no value")));
        }
        // Chains and reach-around parameters are narrowing's to refuse.
        if name.contains('.') || REFUSED_LATER.contains(&base) {
            continue;
        }
        match base {
            "_count" | "_offset" => {
                if value.parse::<u32>().is_err() {
                    return Err(GatewayError::bad_request(format!(
                        "`{name}={value}` is not a whole number"
                    )));
                }
            }
            "_total" if !matches!(value, "none" | "estimate" | "accurate") => {
                return Err(GatewayError::bad_request(format!(
                    "`_total={value}` is not a total mode (none, estimate, accurate)"
                )));
            }
            "_sort" => {
                for code in value.split(',').map(|c| c.trim_start_matches('-')) {
                    if search_param(ty, code).is_none() {
                        return Err(unknown(code, ty));
                    }
                }
            }
            _ if RESULT_PARAMS.contains(&base) => {}
            _ => {
                let Some(param) = search_param(ty, base) else {
                    return Err(unknown(base, ty));
                };
                check_values(name, value, param.kind)?;
            }
        }
    }
    Ok(())
}

fn unknown(code: &str, ty: ResourceType) -> GatewayError {
    GatewayError::bad_request(format!("unknown search parameter `{code}` for `{ty}`"))
}

/// Numbers and dates have a syntax a server refuses values against; the
/// other kinds take any text.
fn check_values(name: &str, value: &str, kind: ParamKind) -> Result<(), GatewayError> {
    let check: fn(&str) -> bool = match kind {
        ParamKind::Number => |v| v.parse::<f64>().is_ok_and(f64::is_finite),
        ParamKind::Date => is_date,
        _ => return Ok(()),
    };
    for item in value.split(',') {
        let bare = PREFIXES
            .iter()
            .find_map(|p| item.strip_prefix(p))
            .unwrap_or(item);
        if !check(bare) {
            return Err(GatewayError::bad_request(format!(
                "`{name}`: `{item}` is not a valid value"
            )));
        }
    }
    Ok(())
}

/// A FHIR date or dateTime: a year, optionally `-MM`, `-DD`, then a time.
fn is_date(value: &str) -> bool {
    let date = value.split('T').next().unwrap_or_default();
    let mut parts = date.split('-');
    let year_ok = parts
        .next()
        .is_some_and(|y| y.len() == 4 && y.bytes().all(|b| b.is_ascii_digit()));
    let rest_ok = parts.all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit()));
    year_ok && rest_ok && date.len() <= 10
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search(query: &str) -> Result<(), GatewayError> {
        let params = SearchParams::parse_query(query).unwrap_or_default();
        validate_search(&params, ResourceType::parse("Observation").unwrap())
    }

    #[test]
    fn known_parameters_with_valid_values_pass() {
        assert!(search("patient=Patient/1&code=1234-5&_count=10&_sort=-date").is_ok());
        assert!(search("date=ge2024-01-01&value-quantity=gt5").is_ok());
        assert!(search("subject.name=x&_has:Condition:subject:code=1").is_ok());
    }

    #[test]
    fn unknown_or_malformed_parameters_are_refused() {
        for query in [
            "bogus=1",
            "_count=abc",
            "_count=-1",
            "_total=maybe",
            "_sort=bogus",
            "date=yesterday",
            "code=",
        ] {
            assert_eq!(
                search(query).map_err(|e| e.status.as_u16()),
                Err(400),
                "{query}"
            );
        }
    }
}
