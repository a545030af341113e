//! Comparing one search value against one resource, by parameter kind.

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime};

use super::params::ParamKind;

/// One parsed search value (a comma-separated alternative).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Matcher {
    /// `system|code`: `None` = any; `Some("")` = must have no system.
    Token {
        system: Option<String>,
        code: Option<String>,
    },
    /// A reference target: optional type and the id.
    Reference {
        resource_type: Option<String>,
        id: String,
    },
    /// A date range `[start, end)` in Unix seconds with a comparison prefix.
    Date {
        prefix: DatePrefix,
        start: i64,
        end: i64,
    },
    /// Lowercased prefix.
    String(String),
}

/// The FHIR date comparison prefixes this server supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DatePrefix {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
}

/// Parses one search value of the given kind; `Err` carries the reason.
pub(crate) fn parse_value(kind: ParamKind, value: &str) -> Result<Matcher, String> {
    match kind {
        ParamKind::Token => Ok(match value.split_once('|') {
            Some((system, code)) => Matcher::Token {
                system: Some(system.to_owned()),
                code: (!code.is_empty()).then(|| code.to_owned()),
            },
            None => Matcher::Token {
                system: None,
                code: Some(value.to_owned()),
            },
        }),
        ParamKind::Reference => {
            let (resource_type, id) = split_reference(value);
            if id.is_empty() {
                return Err(format!("invalid reference `{value}`"));
            }
            Ok(Matcher::Reference { resource_type, id })
        }
        ParamKind::Date => parse_date_value(value),
        ParamKind::String => Ok(Matcher::String(value.to_lowercase())),
    }
}

fn parse_date_value(value: &str) -> Result<Matcher, String> {
    let prefixes = [
        ("eq", DatePrefix::Eq),
        ("ne", DatePrefix::Ne),
        ("gt", DatePrefix::Gt),
        ("lt", DatePrefix::Lt),
        ("ge", DatePrefix::Ge),
        ("le", DatePrefix::Le),
    ];
    let (prefix, rest) = prefixes
        .iter()
        .find_map(|(p, prefix)| value.strip_prefix(p).map(|rest| (*prefix, rest)))
        .unwrap_or((DatePrefix::Eq, value));
    if rest.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Err(format!("unsupported date prefix in `{value}`"));
    }
    let (start, end) = date_range(rest).ok_or_else(|| format!("invalid date `{value}`"))?;
    Ok(Matcher::Date { prefix, start, end })
}

/// `Type/id`, an absolute URL ending in `Type/id`, or a bare `id`.
pub(crate) fn split_reference(value: &str) -> (Option<String>, String) {
    let mut parts = value.rsplit('/');
    let id = parts.next().unwrap_or_default().to_owned();
    let resource_type = parts.next().filter(|t| !t.is_empty()).map(str::to_owned);
    // `Patient/1/_history/2`: a versioned reference still names Patient/1.
    if resource_type.as_deref() == Some("_history") {
        let id = parts.next().unwrap_or_default().to_owned();
        let resource_type = parts.next().map(str::to_owned);
        return (resource_type, id);
    }
    (resource_type, id)
}

/// The instant range `[start, end)` a FHIR date, dateTime or instant covers.
pub(crate) fn date_range(text: &str) -> Option<(i64, i64)> {
    // A `+` in a timezone offset arrives as a space if the client did not
    // percent-encode it.
    let text = text.replace(' ', "+");
    let bytes = text.as_bytes();
    let year: i32 = text.get(0..4)?.parse().ok()?;
    match text.len() {
        4 => Some((ymd(year, 1, 1)?, ymd(year.checked_add(1)?, 1, 1)?)),
        7 if bytes.get(4) == Some(&b'-') => {
            let month: u8 = text.get(5..7)?.parse().ok()?;
            let (next_year, next_month) = if month == 12 {
                (year + 1, 1)
            } else {
                (year, month + 1)
            };
            Some((ymd(year, month, 1)?, ymd(next_year, next_month, 1)?))
        }
        10 if bytes.get(4) == Some(&b'-') && bytes.get(7) == Some(&b'-') => {
            let month: u8 = text.get(5..7)?.parse().ok()?;
            let day: u8 = text.get(8..10)?.parse().ok()?;
            let start = ymd(year, month, day)?;
            Some((start, start + 86_400))
        }
        _ => {
            let parsed = OffsetDateTime::parse(&text, &Rfc3339)
                .or_else(|_| OffsetDateTime::parse(&format!("{text}Z"), &Rfc3339))
                .ok()?;
            let t = parsed.unix_timestamp();
            Some((t, t + 1))
        }
    }
}

fn ymd(year: i32, month: u8, day: u8) -> Option<i64> {
    let date = Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()?;
    Some(date.midnight().assume_utc().unix_timestamp())
}

/// Every value at a dotted path, arrays flattened; the first path that
/// yields anything wins.
pub(crate) fn values_at<'a>(resource: &'a Value, paths: &[&str]) -> Vec<&'a Value> {
    for path in paths {
        let mut current = vec![resource];
        for segment in path.split('.') {
            let mut next = Vec::new();
            for value in current {
                match value.get(segment) {
                    Some(Value::Array(items)) => next.extend(items.iter()),
                    Some(item) => next.push(item),
                    None => {}
                }
            }
            current = next;
        }
        if !current.is_empty() {
            return current;
        }
    }
    Vec::new()
}

/// Whether `matcher` matches any of `values`; `type_filter` restricts a
/// reference's target type (`subject:Patient`).
pub(crate) fn matches(matcher: &Matcher, values: &[&Value], type_filter: Option<&str>) -> bool {
    if let Matcher::Date {
        prefix: DatePrefix::Ne,
        ..
    } = matcher
    {
        // `ne` holds when the element is present and no value equals the date.
        return !values.is_empty() && values.iter().all(|v| match_one(matcher, v, type_filter));
    }
    values
        .iter()
        .any(|value| match_one(matcher, value, type_filter))
}

fn match_one(matcher: &Matcher, value: &Value, type_filter: Option<&str>) -> bool {
    match matcher {
        Matcher::Token { system, code } => match_token(system.as_deref(), code.as_deref(), value),
        Matcher::Reference { resource_type, id } => {
            let Some(reference) = value.get("reference").and_then(Value::as_str) else {
                return false;
            };
            let (actual_type, actual_id) = split_reference(reference);
            actual_id == *id
                && resource_type
                    .as_ref()
                    .is_none_or(|t| actual_type.as_ref() == Some(t))
                && type_filter.is_none_or(|t| actual_type.as_deref() == Some(t))
        }
        Matcher::Date { prefix, start, end } => {
            let Some((rs, re)) = value.as_str().and_then(date_range) else {
                return false;
            };
            match prefix {
                DatePrefix::Eq => rs >= *start && re <= *end,
                DatePrefix::Ne => !(rs >= *start && re <= *end),
                DatePrefix::Gt => re > *end,
                DatePrefix::Lt => rs < *start,
                DatePrefix::Ge => re > *start,
                DatePrefix::Le => rs < *end,
            }
        }
        Matcher::String(prefix) => value
            .as_str()
            .is_some_and(|s| s.to_lowercase().starts_with(prefix.as_str())),
    }
}

fn match_token(system: Option<&str>, code: Option<&str>, value: &Value) -> bool {
    let pair_matches = |actual_system: Option<&str>, actual_code: Option<&str>| {
        let system_ok = match system {
            None => true,
            Some("") => actual_system.is_none(),
            Some(s) => actual_system == Some(s),
        };
        system_ok && code.is_none_or(|c| actual_code == Some(c))
    };
    match value {
        Value::String(s) => pair_matches(None, Some(s)),
        Value::Bool(b) => pair_matches(None, Some(if *b { "true" } else { "false" })),
        Value::Object(object) => {
            let field = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
            if let Some(Value::Array(codings)) = object.get("coding") {
                codings.iter().any(|c| {
                    pair_matches(field(c, "system").as_deref(), field(c, "code").as_deref())
                })
            } else if object.contains_key("code") {
                pair_matches(
                    field(value, "system").as_deref(),
                    field(value, "code").as_deref(),
                )
            } else {
                // An Identifier.
                pair_matches(
                    field(value, "system").as_deref(),
                    field(value, "value").as_deref(),
                )
            }
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn dates_cover_their_precision() {
        let day = date_range("2024-03-05").unwrap();
        assert_eq!(day.1 - day.0, 86_400);
        let year = date_range("2024").unwrap();
        assert_eq!(year.0, date_range("2024-01").unwrap().0);
        assert_eq!(
            date_range("2024-12").unwrap().1,
            date_range("2025").unwrap().0
        );
        assert!(date_range("2024-03-05T10:00:00Z").is_some());
        assert!(date_range("2024-03-05T10:00:00 05:00").is_some());
        assert!(date_range("2024-13").is_none());
        assert!(date_range("yesterday").is_none());
        assert!(date_range("").is_none());
    }

    #[test]
    fn date_prefixes() {
        let v = json!("2024-03-05T10:00:00Z");
        let m = |s: &str| matches(&parse_value(ParamKind::Date, s).unwrap(), &[&v], None);
        assert!(m("2024-03-05") && m("2024") && m("ge2024-03-05") && m("le2024-03-05"));
        assert!(!m("gt2024-03-05") && !m("lt2024-03-05") && m("lt2024-03-06") && m("ne2024-03-06"));
        assert!(parse_value(ParamKind::Date, "sa2024").is_err());
    }

    #[test]
    fn tokens_and_references() {
        let concept = json!({"coding": [{"system": "http://loinc.org", "code": "8867-4"}]});
        let t = |s: &str| {
            matches(
                &parse_value(ParamKind::Token, s).unwrap(),
                &[&concept],
                None,
            )
        };
        assert!(t("8867-4") && t("http://loinc.org|8867-4") && t("http://loinc.org|"));
        assert!(!t("|8867-4") && !t("http://snomed.info/sct|8867-4"));
        let r = json!({"reference": "Patient/pat-0001"});
        let m = |s: &str| parse_value(ParamKind::Reference, s).unwrap();
        assert!(matches(&m("pat-0001"), &[&r], None));
        assert!(matches(&m("Patient/pat-0001"), &[&r], Some("Patient")));
        assert!(matches(&m("http://x/fhir/Patient/pat-0001"), &[&r], None));
        assert!(!matches(&m("Group/pat-0001"), &[&r], None));
        assert!(!matches(&m("pat-0001"), &[&r], Some("Group")));
    }
}
