//! Where each value of a policy file is: TOML (and JSON) documents turned
//! into `serde_json` values plus a map from JSON pointer to source span, so
//! that JSON-Schema errors (which name a JSON pointer) and semantic errors can
//! be reported as `file:line:col`.

use std::collections::HashMap;
use std::ops::Range;

use serde_json::{Map, Number, Value};
use toml::de::{DeTable, DeValue};

use crate::source::{PolicyError, SourceFile};

mod json;

/// A document as JSON, with the span of every key and value.
#[derive(Debug, Clone, Default)]
pub struct SpannedDoc {
    pub value: Value,
    /// JSON pointer → (span of the key naming it, span of the value).
    spans: HashMap<String, (Option<Range<usize>>, Range<usize>)>,
}

// === impl SpannedDoc ===

impl SpannedDoc {
    /// Parses TOML; syntax errors are returned located (all that the parser
    /// can recover from).
    pub fn from_toml(source: &SourceFile) -> Result<SpannedDoc, Vec<PolicyError>> {
        let (table, errors) = DeTable::parse_recoverable(&source.text);
        if !errors.is_empty() {
            return Err(errors
                .iter()
                .map(|e| {
                    let message = e.message().lines().next().unwrap_or("invalid TOML");
                    source.error_hint(
                        e.span(),
                        message.to_owned(),
                        "check quotes, brackets and `=` on this line (TOML syntax)",
                    )
                })
                .collect());
        }
        let mut doc = SpannedDoc::default();
        let span = table.span();
        doc.value = doc.table(table.get_ref(), "");
        doc.spans.insert(String::new(), (None, span));
        Ok(doc)
    }

    /// Parses JSON (a FHIR resource); a syntax error is returned located.
    pub fn from_json(source: &SourceFile) -> Result<SpannedDoc, PolicyError> {
        let value: Value = serde_json::from_str(&source.text).map_err(|e| {
            let mut error = source.error_hint(
                None,
                format!("invalid JSON: {e}"),
                "check commas, quotes and brackets",
            );
            if let Some(loc) = error.location.as_mut() {
                loc.line = e.line().max(1);
                loc.column = e.column().max(1);
            }
            error
        })?;
        let mut doc = SpannedDoc {
            value,
            spans: HashMap::new(),
        };
        json::scan(&source.text, &mut doc);
        Ok(doc)
    }

    fn table(&mut self, table: &DeTable<'_>, pointer: &str) -> Value {
        let mut map = Map::new();
        for (key, value) in table {
            let child = format!("{pointer}/{}", escape(key.get_ref()));
            let json = self.value(value.get_ref(), &child);
            self.spans.insert(child, (Some(key.span()), value.span()));
            map.insert(key.get_ref().to_string(), json);
        }
        Value::Object(map)
    }

    fn value(&mut self, value: &DeValue<'_>, pointer: &str) -> Value {
        match value {
            DeValue::String(s) => Value::String(s.to_string()),
            DeValue::Integer(i) => {
                let text = i.as_str().replace('_', "");
                let digits = if i.radix() == 10 {
                    text.as_str()
                } else {
                    text.get(2..).unwrap_or_default()
                };
                i64::from_str_radix(digits, i.radix())
                    .map_or(Value::Null, |n| Value::Number(n.into()))
            }
            DeValue::Float(f) => f
                .as_str()
                .replace('_', "")
                .parse::<f64>()
                .ok()
                .and_then(Number::from_f64)
                .map_or(Value::Null, Value::Number),
            DeValue::Boolean(b) => Value::Bool(*b),
            // Dates stay recognisable to the schema (`format: date` is not
            // asserted by default), tagged so a string is not taken for one.
            DeValue::Datetime(d) => Value::Object(Map::from_iter([(
                "$datetime".to_owned(),
                Value::String(d.to_string()),
            )])),
            DeValue::Array(items) => Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        let child = format!("{pointer}/{i}");
                        let json = self.value(item.get_ref(), &child);
                        self.spans.insert(child, (None, item.span()));
                        json
                    })
                    .collect(),
            ),
            DeValue::Table(t) => self.table(t, pointer),
        }
    }

    /// Records spans found by another parser (JSON files).
    pub fn insert_span(&mut self, pointer: String, key: Option<Range<usize>>, value: Range<usize>) {
        self.spans.insert(pointer, (key, value));
    }

    /// The span of the value at `pointer`, or of the closest ancestor.
    pub fn value_span(&self, pointer: &str) -> Option<Range<usize>> {
        let mut p = pointer;
        loop {
            if let Some((_, span)) = self.spans.get(p) {
                return Some(span.clone());
            }
            let (parent, _) = p.rsplit_once('/')?;
            p = parent;
        }
    }

    /// The span of the key naming `pointer` (falls back to the value).
    pub fn key_span(&self, pointer: &str) -> Option<Range<usize>> {
        match self.spans.get(pointer) {
            Some((Some(key), _)) => Some(key.clone()),
            _ => self.value_span(pointer),
        }
    }
}

/// Escapes a key for a JSON pointer (RFC 6901).
pub fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_map_back_to_toml_positions() {
        let file = SourceFile::new("a.toml", "x = 1\n[[grant]]\nid = \"g\"\nlist = [1, 2]\n");
        let doc = SpannedDoc::from_toml(&file).unwrap();
        let at = |span: Option<Range<usize>>| {
            let loc = file.location_of(span.unwrap().start);
            (loc.line, loc.column)
        };
        assert_eq!(at(doc.key_span("/grant/0/id")), (3, 1));
        assert_eq!(at(doc.value_span("/grant/0/list/1")), (4, 12));
        assert_eq!(doc.value["grant"][0]["id"], "g");
    }
}
