//! FHIR logical ids and version ids.

use std::fmt;

/// A FHIR logical id: 1 to 64 characters from `[A-Za-z0-9\-\.]`
/// (R4 `id` datatype).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResourceId(String);

/// The text is not a valid FHIR id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a valid FHIR id (1-64 of A-Z a-z 0-9 - .)")]
pub struct InvalidId(pub String);

// === impl ResourceId ===

impl ResourceId {
    pub fn parse(text: &str) -> Result<Self, InvalidId> {
        let valid = (1..=64).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            // `.` and `..` are valid ids by the regex but are path traversal
            // everywhere else; no server uses them.
            && text.bytes().any(|b| b != b'.');
        if valid {
            Ok(ResourceId(text.to_owned()))
        } else {
            Err(InvalidId(text.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl serde::Serialize for ResourceId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_fhir_ids() {
        for ok in ["pat-0001", "a", "1.2.3", &"x".repeat(64)] {
            assert!(ResourceId::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_what_the_id_grammar_forbids() {
        for bad in [
            "",
            "a/b",
            "a b",
            "é",
            "..",
            ".",
            "a%2F",
            &"x".repeat(65),
            "a_b",
        ] {
            assert!(ResourceId::parse(bad).is_err(), "{bad}");
        }
    }
}
