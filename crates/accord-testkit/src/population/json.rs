//! Small builders for recurring FHIR JSON fragments.

use serde_json::{Value, json};

use super::codes::{ACT_CODE, CONFIDENTIALITY};
use super::dates::Day;

/// Security labels a record carries in `meta.security`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Labels {
    /// No labels.
    None,
    /// A record from a 42 CFR Part 2 program: ETH (substance abuse
    /// information sensitivity) plus confidentiality R (restricted).
    Part2,
}

/// `meta` with version 1, `lastUpdated` on `day` and the given labels.
pub(crate) fn meta(day: Day, labels: Labels) -> Value {
    match labels {
        Labels::None => json!({ "versionId": "1", "lastUpdated": day.last_updated() }),
        Labels::Part2 => json!({
            "versionId": "1",
            "lastUpdated": day.last_updated(),
            "security": [
                coding(ACT_CODE, "ETH", "substance abuse information sensitivity"),
                coding(CONFIDENTIALITY, "R", "restricted"),
            ],
        }),
    }
}

/// `{"reference": "Type/id"}`.
pub(crate) fn reference(resource_type: &str, id: &str) -> Value {
    json!({ "reference": format!("{resource_type}/{id}") })
}

/// A Coding.
pub(crate) fn coding(system: &str, code: &str, display: &str) -> Value {
    json!({ "system": system, "code": code, "display": display })
}

/// A CodeableConcept with a single Coding.
pub(crate) fn concept(system: &str, code: &str, display: &str) -> Value {
    json!({ "coding": [coding(system, code, display)] })
}

/// A UCUM Quantity.
pub(crate) fn quantity(value: impl Into<Value>, unit: &str) -> Value {
    let value: Value = value.into();
    json!({ "value": value, "unit": unit, "system": super::codes::UCUM, "code": unit })
}

/// An NPI with its Luhn check digit (prefix 80840, as CMS defines it), so
/// the identifiers pass the same check a real registry lookup would.
pub(crate) fn npi(base9: u64) -> String {
    let base = format!("{:09}", base9 % 1_000_000_000);
    let payload = format!("80840{base}");
    let mut sum = 0u32;
    // Double every second digit starting from the rightmost payload digit
    // (the check digit will sit to its right).
    for (i, c) in payload.chars().rev().enumerate() {
        let d = c.to_digit(10).unwrap_or(0);
        sum += if i % 2 == 0 {
            let dd = d * 2;
            if dd > 9 { dd - 9 } else { dd }
        } else {
            d
        };
    }
    let check = (10 - sum % 10) % 10;
    format!("{base}{check}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npi_check_digit_matches_cms_example() {
        // CMS's published example NPI.
        assert_eq!(npi(123_456_789), "1234567893");
    }
}
