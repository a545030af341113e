//! A pruned parse of a resource: the tree a verdict reads, without the
//! text, numbers, dates and narrative that make up most of its bytes.
//!
//! Kept: the string values of [`KEPT`] keys: `resourceType` and `id`
//! (types, contained resources, the Patient compartment), `reference`
//! (patients, contained references), `system` + `code` (codes for
//! sensitivity, `meta.security` labels) and `display` + `text` (the words
//! a category's display terms match), `source` (`meta.source`: whose
//! record it is), and the objects and arrays on the
//! way to them (so element paths still lead where they did). An object or
//! array member with nothing kept inside (`text`, `valueQuantity`) is left
//! out, which saves most of the tree's allocations; array items are always
//! kept, so a contained resource without a type still withholds its
//! container. INVARIANT: every check in `verdict.rs`, `scope.rs` and
//! `accord_policy::check_resource` reads only these; a check that needs
//! another key must add it here, or be given the full resource.
//!
//! A key repeated in an object with anything kept under it makes the parse
//! fail (the resource is withheld): the gateway must not decide on one copy
//! while the partner reads the other. (A copy with nothing kept under it
//! adds nothing the decision could have read.)

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Keys whose string values are kept.
const KEPT: &[&str] = &[
    "resourceType",
    "id",
    "reference",
    "system",
    "code",
    "display",
    "text",
    "source",
];

/// The key serde_json uses for a number under `arbitrary_precision`.
const ARBITRARY_PRECISION_NUMBER: &str = "$serde_json::private::Number";

/// The pruned tree of the JSON `text`; `None` if it is not valid JSON or
/// repeats a key that matters.
pub fn prune(text: &[u8]) -> Option<Value> {
    let mut deserializer = serde_json::Deserializer::from_slice(text);
    let value = Pruned {
        keep_strings: false,
    }
    .deserialize(&mut deserializer)
    .ok()?;
    deserializer.end().ok()?;
    Some(value.unwrap_or(Value::Null))
}

/// One value; strings are kept only under a [`KEPT`] key.
#[derive(Clone, Copy)]
struct Pruned {
    keep_strings: bool,
}

impl<'de> DeserializeSeed<'de> for Pruned {
    type Value = Option<Value>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Pruned {
    type Value = Option<Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(self.keep_strings.then(|| Value::String(s.to_owned())))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        let inner = Pruned {
            keep_strings: false,
        };
        while let Some(item) = seq.next_element_seed(inner)? {
            if let Some(item) = item {
                items.push(item);
            }
        }
        Ok(Some(Value::Array(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = Map::new();
        while let Some(Key(key)) = map.next_key()? {
            // serde_json's `arbitrary_precision` (enabled in this build by
            // other crates) hands numbers over as a one-member map.
            if key == ARBITRARY_PRECISION_NUMBER {
                map.next_value::<de::IgnoredAny>()?;
                return Ok(None);
            }
            let seed = Pruned {
                keep_strings: KEPT.contains(&key.as_ref()),
            };
            if let Some(value) = map.next_value_seed(seed)?
                && !is_empty_container(&value)
                && fields.insert(key.into_owned(), value).is_some()
            {
                return Err(de::Error::custom("repeated key"));
            }
        }
        Ok(Some(Value::Object(fields)))
    }
}

/// An object or array with nothing kept inside.
fn is_empty_container(value: &Value) -> bool {
    match value {
        Value::Object(fields) => fields.is_empty(),
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

/// An object key, borrowed from the input when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Key(Cow::Borrowed(s)))
    }
    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Key(Cow::Owned(s.to_owned())))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn keeps_what_a_verdict_reads_and_drops_the_rest() {
        let text = json!({
            "resourceType": "Observation", "id": "o1",
            "meta": {"security": [{"system": "s", "code": "ETH", "display": "x"}], "lastUpdated": "2020"},
            "text": {"status": "generated", "div": "<div>long narrative</div>"},
            "code": {"coding": [{"system": "http://loinc.org", "code": "1-8", "display": "d"}], "text": "t"},
            "subject": {"reference": "Patient/p1", "display": "Jane"},
            "valueQuantity": {"value": 1.5, "unit": "mg"},
            "contained": [{"resourceType": "Medication", "id": "m"}, {"status": "x"}]
        })
        .to_string();
        let pruned = prune(text.as_bytes()).unwrap();
        assert_eq!(
            pruned,
            json!({
                "resourceType": "Observation", "id": "o1",
                "meta": {"security": [{"system": "s", "code": "ETH", "display": "x"}]},
                "code": {"coding": [{"system": "http://loinc.org", "code": "1-8", "display": "d"}], "text": "t"},
                "subject": {"reference": "Patient/p1", "display": "Jane"},
                "contained": [{"resourceType": "Medication", "id": "m"}, {}]
            })
        );
    }

    #[test]
    fn a_repeated_key_that_matters_fails_the_parse() {
        let twice = r#"{"resourceType":"Observation","subject":{"reference":"Patient/a"},"subject":{"reference":"Patient/b"}}"#;
        assert_eq!(prune(twice.as_bytes()), None);
        let escaped = r#"{"resourceType":"Observation","subject":{"reference":"Patient/a"},"sub\u006aect":{"reference":"Patient/b"}}"#;
        assert_eq!(
            prune(escaped.as_bytes()),
            None,
            "an escaped spelling is the same key"
        );
        assert!(
            prune(br#"{"a":1,"a":2}"#).is_some(),
            "dropped values do not matter"
        );
        assert_eq!(prune(b"{\"a\": 1} trailing"), None);
    }
}
