//! Evaluating one search parameter on a resource: walk the element paths,
//! then compare the values found with the search value.

use serde_json::Value;

use super::{Match, ParamKind, SearchParam};

/// One path of the generator's grammar, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Path<'a> {
    /// Too complex to walk; reads (at most) the element named here, the
    /// whole resource when empty.
    Opaque(&'a str),
    Walk {
        segments: Vec<&'a str>,
        /// The last segment is this type of a choice element.
        choice: Option<&'a str>,
        /// Keep items whose child (first) equals the value (second).
        filter: Option<(&'a str, &'a str)>,
        /// Keep references to this type only.
        target: Option<&'a str>,
    },
}

// === impl Path ===

impl<'a> Path<'a> {
    pub(super) fn parse(text: &'a str) -> Path<'a> {
        if let Some(rest) = text.strip_prefix('?') {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.'))
                .unwrap_or(rest.len());
            let element = rest.get(..end).unwrap_or_default();
            // `deceased.exists()` reads `deceased`, not an element `exists`.
            let element = match rest.get(end..) {
                Some(tail) if tail.starts_with('(') => {
                    element.rsplit_once('.').map_or("", |(head, _)| head)
                }
                _ => element,
            };
            return Path::Opaque(element.trim_end_matches('.'));
        }
        let (rest, target) = match text.split_once("->") {
            Some((rest, target)) => (rest, Some(target)),
            None => (text, None),
        };
        let (rest, filter) = match rest.split_once('[') {
            Some((rest, filter)) => (rest, filter.trim_end_matches(']').split_once('=')),
            None => (rest, None),
        };
        let (rest, choice) = match rest.split_once(':') {
            Some((rest, choice)) => (rest, Some(choice)),
            None => (rest, None),
        };
        Path::Walk {
            segments: rest.split('.').collect(),
            choice,
            filter,
            target,
        }
    }

    /// The element this path reads, as a dotted path.
    pub(super) fn element(&self) -> String {
        match self {
            Path::Opaque(element) => (*element).to_owned(),
            Path::Walk { segments, .. } => segments.join("."),
        }
    }

    /// The values at this path; `None` when it cannot be walked.
    fn values(&self, resource: &'a Value) -> Option<Vec<&'a Value>> {
        let Path::Walk {
            segments,
            choice,
            filter,
            target,
        } = self
        else {
            return None;
        };
        let mut values = vec![resource];
        let last = segments.len().saturating_sub(1);
        for (index, segment) in segments.iter().enumerate() {
            let choice = if index == last { *choice } else { None };
            values = values
                .into_iter()
                .flat_map(|v| children(v, segment, choice))
                .collect();
        }
        if let Some((child, wanted)) = filter {
            values.retain(|v| v.get(*child).and_then(Value::as_str) == Some(*wanted));
        }
        if let Some(target) = target {
            values.retain(|v| reference_parts(v).is_some_and(|(ty, _)| ty == Some(*target)));
        }
        Some(values)
    }
}

/// The children of `value` named `name` (arrays flattened). A choice
/// element is named without its type in FHIRPath (`value`) and with it in
/// JSON (`valueQuantity`): every typed spelling is a child, or only `choice`.
fn children<'v>(value: &'v Value, name: &str, choice: Option<&str>) -> Vec<&'v Value> {
    let Some(object) = value.as_object() else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for (key, child) in object {
        let typed = key
            .strip_prefix(name)
            .filter(|t| t.starts_with(|c: char| c.is_ascii_uppercase()));
        let wanted = match (choice, typed) {
            (None, _) if key == name => true,
            (None, Some(_)) => true,
            (Some(choice), Some(ty)) => ty.eq_ignore_ascii_case(choice),
            _ => false,
        };
        if wanted {
            match child {
                Value::Array(items) => found.extend(items),
                other => found.push(other),
            }
        }
    }
    found
}

/// `(type, id)` of a Reference's `reference` (relative, absolute or
/// versioned).
fn reference_parts(value: &Value) -> Option<(Option<&str>, &str)> {
    let reference = value.get("reference")?.as_str()?;
    reference_value(reference)
}

fn reference_value(reference: &str) -> Option<(Option<&str>, &str)> {
    let reference = match reference.split_once("/_history/") {
        Some((head, _)) => head,
        None => reference,
    };
    let mut parts = reference.rsplit('/');
    let id = parts.next().filter(|id| !id.is_empty())?;
    Some((parts.next(), id))
}

pub(super) fn matches(
    param: &SearchParam,
    resource: &Value,
    modifier: Option<&str>,
    value: &str,
) -> Match {
    let mut values = Vec::new();
    let mut opaque = false;
    for path in param.paths {
        match Path::parse(path).values(resource) {
            Some(found) => values.extend(found),
            None => opaque = true,
        }
    }
    if modifier == Some("missing") {
        let missing = match value {
            _ if opaque => return Match::Unknown,
            "true" => true,
            "false" => false,
            _ => return Match::Unknown,
        };
        return if values.is_empty() == missing {
            Match::Yes
        } else {
            Match::No
        };
    }
    let negate = modifier == Some("not") && param.kind == ParamKind::Token;
    let mut answer = Match::No;
    for item in value.split(',') {
        let one = if opaque {
            Match::Unknown
        } else {
            match_any(param.kind, modifier.filter(|_| !negate), item, &values)
        };
        match one {
            Match::Yes => {
                answer = Match::Yes;
                break;
            }
            Match::Unknown => answer = Match::Unknown,
            Match::No => {}
        }
    }
    match (negate, answer) {
        (true, Match::Yes) => Match::No,
        (true, Match::No) => Match::Yes,
        (_, answer) => answer,
    }
}

fn match_any(kind: ParamKind, modifier: Option<&str>, wanted: &str, values: &[&Value]) -> Match {
    let test: fn(&str, Option<&str>, &Value) -> Option<bool> = match kind {
        ParamKind::Token => token,
        ParamKind::Reference => reference,
        ParamKind::String => string,
        ParamKind::Uri => uri,
        _ => return Match::Unknown,
    };
    let mut answer = Match::No;
    for value in values {
        match test(wanted, modifier, value) {
            Some(true) => return Match::Yes,
            Some(false) => {}
            None => answer = Match::Unknown,
        }
    }
    answer
}

/// `[system]|[code]` or `code` against a code, Coding, CodeableConcept,
/// Identifier, ContactPoint or boolean.
fn token(wanted: &str, modifier: Option<&str>, value: &Value) -> Option<bool> {
    if modifier.is_some() {
        return None;
    }
    let (system, code) = match wanted.split_once('|') {
        Some((system, code)) => (Some(system), code),
        None => (None, wanted),
    };
    let code = Some(code).filter(|c| !c.is_empty());
    let pair = |sys: Option<&Value>, val: Option<&Value>| {
        let sys = sys.and_then(Value::as_str);
        let val = val.and_then(Value::as_str);
        let system_ok = match system {
            None => true,
            Some("") => sys.is_none(),
            Some(s) => sys == Some(s),
        };
        system_ok && code.is_none_or(|c| val == Some(c))
    };
    Some(match value {
        Value::String(text) => system.is_none() && code == Some(text.as_str()),
        Value::Bool(flag) => system.is_none() && code == Some(if *flag { "true" } else { "false" }),
        Value::Object(object) => {
            if let Some(codings) = object.get("coding").and_then(Value::as_array) {
                codings.iter().any(|c| pair(c.get("system"), c.get("code")))
            } else if object.contains_key("code") {
                pair(object.get("system"), object.get("code"))
            } else if object.contains_key("value") {
                // Identifier (system|value); a ContactPoint's system is its
                // kind (phone), not a namespace: only the value counts.
                let identifier = !matches!(
                    object.get("system").and_then(Value::as_str),
                    Some("phone" | "fax" | "email" | "pager" | "url" | "sms" | "other")
                );
                if identifier {
                    pair(object.get("system"), object.get("value"))
                } else {
                    system.is_none()
                        && code
                            .is_some_and(|c| object.get("value").and_then(Value::as_str) == Some(c))
                }
            } else {
                false
            }
        }
        _ => return None,
    })
}

/// `Type/id`, `id` or an absolute URL against a Reference; a modifier
/// names the target type.
fn reference(wanted: &str, modifier: Option<&str>, value: &Value) -> Option<bool> {
    let (want_type, want_id) = reference_value(wanted)?;
    let want_type = match (want_type, modifier) {
        (None, Some(ty)) if ty.starts_with(|c: char| c.is_ascii_uppercase()) => Some(ty),
        (_, Some(ty)) if !ty.starts_with(|c: char| c.is_ascii_uppercase()) => return None,
        (ty, _) => ty,
    };
    let Some((ty, id)) = reference_parts(value) else {
        return Some(false);
    };
    Some(id == want_id && want_type.is_none_or(|w| ty == Some(w)))
}

/// Starts-with (default), `exact` or `contains`, case-insensitive except
/// for `exact`, against a string or any string inside a complex value.
fn string(wanted: &str, modifier: Option<&str>, value: &Value) -> Option<bool> {
    let lower = wanted.to_lowercase();
    let test: Box<dyn Fn(&str) -> bool> = match modifier {
        None => Box::new(|s: &str| s.to_lowercase().starts_with(&lower)),
        Some("exact") => Box::new(|s: &str| s == wanted),
        Some("contains") => Box::new(|s: &str| s.to_lowercase().contains(&lower)),
        Some(_) => return None,
    };
    Some(strings(value).into_iter().any(test))
}

fn strings(value: &Value) -> Vec<&str> {
    match value {
        Value::String(s) => vec![s.as_str()],
        Value::Array(items) => items.iter().flat_map(strings).collect(),
        Value::Object(object) => object.values().flat_map(strings).collect(),
        _ => Vec::new(),
    }
}

fn uri(wanted: &str, modifier: Option<&str>, value: &Value) -> Option<bool> {
    if modifier.is_some() {
        return None;
    }
    Some(value.as_str() == Some(wanted))
}
