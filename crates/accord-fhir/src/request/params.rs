//! Search parameters: decoded, validated name/value pairs kept in order.

/// More parameters than any legitimate search needs; beyond this a request
/// is refused rather than forwarded.
const MAX_PARAMS: usize = 256;

/// Decoded search parameters in the order they were given, repeats kept
/// (FHIR gives repeated parameters AND semantics).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchParams(Vec<(String, String)>);

/// A parameter the gateway will not forward.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("`{0}` is not a valid search parameter name")]
    InvalidName(String),
    #[error("format `{0}` is not supported; use application/fhir+json")]
    NotAcceptable(String),
    #[error("more than {MAX_PARAMS} parameters")]
    TooMany,
}

// === impl SearchParams ===

impl SearchParams {
    pub fn parse_query(query: &str) -> Result<Self, ParamError> {
        Self::from_pairs(form_urlencoded::parse(query.as_bytes()))
    }

    pub fn parse_form(body: &[u8]) -> Result<Self, ParamError> {
        Self::from_pairs(form_urlencoded::parse(body))
    }

    fn from_pairs<'a>(
        pairs: impl Iterator<Item = (std::borrow::Cow<'a, str>, std::borrow::Cow<'a, str>)>,
    ) -> Result<Self, ParamError> {
        let mut params = Vec::new();
        for (name, value) in pairs {
            if name.is_empty() && value.is_empty() {
                continue; // `?a=1&&b=2`
            }
            if !is_valid_name(&name) {
                return Err(ParamError::InvalidName(name.into_owned()));
            }
            // The gateway speaks JSON only; `_format` is answered here rather
            // than forwarded, so the upstream's answer is always JSON.
            if name == "_format" {
                if is_json_format(&value) {
                    continue;
                }
                return Err(ParamError::NotAcceptable(value.into_owned()));
            }
            if params.len() == MAX_PARAMS {
                return Err(ParamError::TooMany);
            }
            params.push((name.into_owned(), value.into_owned()));
        }
        Ok(SearchParams(params))
    }

    pub fn extend(&mut self, other: SearchParams) {
        self.0.extend(other.0);
    }

    pub fn push(&mut self, name: &str, value: &str) {
        self.0.push((name.to_owned(), value.to_owned()));
    }

    /// Keeps only the parameters for which `keep(name, value)` holds.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &str) -> bool) {
        self.0.retain(|(name, value)| keep(name, value));
    }

    /// Replaces the value of the parameter at `index` (in [`iter`] order).
    ///
    /// [`iter`]: SearchParams::iter
    pub fn set_value(&mut self, index: usize, value: String) {
        if let Some(slot) = self.0.get_mut(index) {
            slot.1 = value;
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Values of every parameter whose name, without modifier, is `name`.
    pub fn values_of<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> {
        self.iter()
            .filter(move |(n, _)| base_name(n) == name)
            .map(|(_, v)| v)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Re-encodes the parameters as a query string (without `?`).
    pub fn to_query_string(&self) -> String {
        let mut out = form_urlencoded::Serializer::new(String::new());
        for (name, value) in &self.0 {
            out.append_pair(name, value);
        }
        out.finish()
    }
}

/// The `:modifier` of a parameter name, if any (`code:not` → `not`).
pub fn modifier(name: &str) -> Option<&str> {
    let base = base_name(name);
    name.get(base.len()..)?.strip_prefix(':')
}

/// The parameter name without its `:modifier` or `.chain`.
pub fn base_name(name: &str) -> &str {
    let end = name.find([':', '.']).unwrap_or(name.len());
    name.get(..end).unwrap_or(name)
}

fn is_valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
    first_ok
        && name.len() <= 128
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
}

fn is_json_format(value: &str) -> bool {
    matches!(
        value,
        "json" | "application/json" | "application/fhir+json" | "application/json+fhir"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_repeats_and_decodes() {
        let p = SearchParams::parse_query("date=ge2024&date=le2025&code=a%7Cb&name=J+Doe").unwrap();
        let pairs: Vec<_> = p.iter().collect();
        assert_eq!(
            pairs,
            [
                ("date", "ge2024"),
                ("date", "le2025"),
                ("code", "a|b"),
                ("name", "J Doe")
            ]
        );
        assert_eq!(p.values_of("date").count(), 2);
    }

    #[test]
    fn round_trips_through_query_string() {
        let p = SearchParams::parse_query("code=http%3A%2F%2Floinc.org%7C1234-5&_count=5").unwrap();
        let again = SearchParams::parse_query(&p.to_query_string()).unwrap();
        assert_eq!(p, again);
    }

    #[test]
    fn refuses_bad_names_and_non_json_formats() {
        assert!(matches!(
            SearchParams::parse_query("a%20b=1"),
            Err(ParamError::InvalidName(_))
        ));
        assert!(matches!(
            SearchParams::parse_query("=1"),
            Err(ParamError::InvalidName(_))
        ));
        assert!(matches!(
            SearchParams::parse_query("_format=xml"),
            Err(ParamError::NotAcceptable(_))
        ));
        let p = SearchParams::parse_query("_format=json&_id=1").unwrap();
        assert_eq!(p.len(), 1, "json _format is consumed, not forwarded");
    }

    #[test]
    fn base_name_strips_modifiers_and_chains() {
        assert_eq!(base_name("code:not"), "code");
        assert_eq!(base_name("subject.name"), "subject");
        assert_eq!(base_name("_id"), "_id");
        assert_eq!(modifier("code:not"), Some("not"));
        assert_eq!(modifier("subject:Patient"), Some("Patient"));
        assert_eq!(modifier("code"), None);
        assert_eq!(modifier("subject.name"), None);
    }

    #[test]
    fn caps_parameter_count() {
        let q = vec!["a=1"; MAX_PARAMS + 1].join("&");
        assert_eq!(SearchParams::parse_query(&q), Err(ParamError::TooMany));
    }
}
