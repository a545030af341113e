//! 42 CFR §2.32: Part 2 records disclosed with the patient's consent must
//! be accompanied by the notice prohibiting redisclosure.
//!
//! Runs after the filter, only when the filter released a resource in a
//! Part 2 category (the scope remembers), so other responses pay nothing.
//! Each Part 2 resource is labelled in `meta.security` with the v3-ActCode
//! `42CFRPart2` (the governing policy) and the refrain `NORDSCLCD` (no
//! redisclosure without consent directive). The notice text travels:
//! - in a searchset: as one more entry, `search.mode = outcome`, holding an
//!   OperationOutcome (severity `information`) with the notice — the place
//!   FHIR gives a server to say something about a search's results;
//! - otherwise (a single resource, a history Bundle, where `search` may not
//!   appear): in the [`NOTICE_HEADER`] response header, because a resource
//!   has no element that could carry free text without changing its
//!   meaning.

use http::HeaderValue;
use serde_json::{Value, json};

use super::Releasable;
use super::meta::add_meta_coding;
use crate::error::GatewayError;
// The labels are the scope's vocabulary too (it recognises Part 2 data by them).
use crate::scope::Scope;
pub use crate::scope::{ACT_CODE, PART2_POLICY};

/// Response header carrying the §2.32 notice outside a searchset.
pub const NOTICE_HEADER: &str = "x-redisclosure-notice";

/// The refrain: no redisclosure without the patient's consent.
pub const NO_REDISCLOSURE: &str = "NORDSCLCD";

/// Statement 1 of 42 CFR §2.32(a)(1)(i), as revised by the 2024 final rule
/// (89 FR 12472, Feb. 16, 2024; compliance date Feb. 16, 2026), on one line.
pub const NOTICE: &str = "This record which has been disclosed to you is protected by Federal confidentiality rules (42 CFR part 2). \
These rules prohibit you from using or disclosing this record, or testimony that describes the information contained in this record, \
in any civil, criminal, administrative, or legislative proceedings by any Federal, State, or local authority, against the patient, \
unless authorized by the consent of the patient, except as provided at 42 CFR 2.12(c)(5) or as authorized by a court in accordance \
with 42 CFR 2.64 or 2.65. In addition, the Federal rules prohibit you from making any other use or disclosure of this record unless \
at least one of the following applies: (A) Further use or disclosure is expressly permitted by the written consent of the individual \
whose information is being disclosed in this record or as otherwise permitted by 42 CFR part 2. (B) You are a covered entity or \
business associate and have received the record for treatment, payment, or health care operations, or (C) You have received the \
record from a covered entity or business associate as permitted by 45 CFR part 164, subparts A and E. A general authorization for \
the release of medical or other information is NOT sufficient to meet the required elements of written consent to further use or \
redisclose the record (see 42 CFR 2.31).";

/// Where the notice comes from, cited in the OperationOutcome.
pub const CITATION: &str = "42 CFR 2.32(a)(1)(i) (2024 final rule, 89 FR 12472)";

/// Labels the Part 2 resources of `released` and attaches the notice, if
/// the filter released any.
pub fn attach_notice(
    mut released: Releasable,
    scope: &Scope<'_>,
) -> Result<Releasable, GatewayError> {
    if !scope.part2_released() || released.body.is_empty() {
        return Ok(released);
    }
    let mut json: Value =
        serde_json::from_slice(&released.body).map_err(|_| GatewayError::internal())?;
    let is_searchset = json.get("resourceType").and_then(Value::as_str) == Some("Bundle")
        && json.get("type").and_then(Value::as_str) == Some("searchset");
    let labelled = if json.get("resourceType").and_then(Value::as_str) == Some("Bundle") {
        label_entries(&mut json, scope)
    } else {
        label_if_part2(&mut json, scope)
    };
    if !labelled {
        return Ok(released);
    }
    if is_searchset {
        if let Some(entries) = json.get_mut("entry").and_then(Value::as_array_mut) {
            entries.push(notice_entry());
        }
    } else {
        released
            .headers
            .insert(NOTICE_HEADER, HeaderValue::from_static(NOTICE));
    }
    released.body = serde_json::to_vec(&json)
        .map_err(|_| GatewayError::internal())?
        .into();
    Ok(released)
}

fn label_entries(bundle: &mut Value, scope: &Scope<'_>) -> bool {
    let mut labelled = false;
    for entry in bundle
        .get_mut("entry")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        if let Some(resource) = entry.get_mut("resource") {
            labelled |= label_if_part2(resource, scope);
        }
    }
    labelled
}

/// Labels `resource` if it (or a resource it contains) is Part 2 data.
fn label_if_part2(resource: &mut Value, scope: &Scope<'_>) -> bool {
    let contains_part2 = resource
        .get("contained")
        .and_then(Value::as_array)
        .is_some_and(|inner| inner.iter().any(|r| scope.is_part2(r)));
    if !(contains_part2 || scope.is_part2(resource)) {
        return false;
    }
    add_labels(resource);
    true
}

/// Adds both labels to `meta.security`, each at most once.
pub fn add_labels(resource: &mut Value) {
    let Some(fields) = resource.as_object_mut() else {
        return;
    };
    for (code, display) in [
        (PART2_POLICY, "42 CFR Part2"),
        (NO_REDISCLOSURE, "no redisclosure without consent directive"),
    ] {
        add_meta_coding(fields, "security", (ACT_CODE, code, display));
    }
}

/// The searchset entry carrying the notice.
pub fn notice_entry() -> Value {
    json!({
        "resource": {
            "resourceType": "OperationOutcome",
            "issue": [{
                "severity": "information",
                "code": "informational",
                "details": {
                    "coding": [{"system": ACT_CODE, "code": NO_REDISCLOSURE}],
                    "text": NOTICE
                },
                "diagnostics": CITATION
            }]
        },
        "search": {"mode": "outcome"}
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_added_once() {
        let mut resource = json!({
            "resourceType": "Condition",
            "meta": {"security": [{"system": ACT_CODE, "code": "NORDSCLCD"}]}
        });
        add_labels(&mut resource);
        add_labels(&mut resource);
        let codes: Vec<&str> = resource["meta"]["security"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["code"].as_str().unwrap())
            .collect();
        assert_eq!(codes, ["NORDSCLCD", "42CFRPart2"]);
    }

    #[test]
    fn the_notice_is_a_valid_header_value_and_outcome() {
        assert!(HeaderValue::from_str(NOTICE).is_ok());
        let outcome = notice_entry()["resource"].to_string();
        assert!(
            accord_fhir::validate_resource(
                outcome.as_bytes(),
                accord_fhir::ResourceType::parse("OperationOutcome").unwrap()
            )
            .is_ok()
        );
    }
}
