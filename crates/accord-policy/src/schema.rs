//! The JSON Schemas of policy files (policies/schema/*.json, embedded), and
//! their errors mapped back to `file:line:col`.
//!
//! The schema catches shape errors (unknown keys, wrong types, missing keys,
//! bad enum values) all at once; the compiler then checks meaning
//! (references, dates, FHIR element paths).

use std::sync::OnceLock;

use jsonschema::Validator;
use jsonschema::error::ValidationErrorKind;

use crate::source::{PolicyError, SourceFile};
use crate::spans::SpannedDoc;

/// Which kind of policy file a document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaKind {
    Agreement,
    Partners,
    Cohort,
    Sensitivity,
    Instances,
    Test,
}

// === impl SchemaKind ===

impl SchemaKind {
    /// The schema's file name under policies/schema/.
    pub fn file_name(self) -> &'static str {
        match self {
            SchemaKind::Agreement => "agreement.schema.json",
            SchemaKind::Partners => "partners.schema.json",
            SchemaKind::Cohort => "cohort.schema.json",
            SchemaKind::Sensitivity => "sensitivity.schema.json",
            SchemaKind::Instances => "instances.schema.json",
            SchemaKind::Test => "test.schema.json",
        }
    }

    /// The embedded schema text.
    pub fn text(self) -> &'static str {
        match self {
            SchemaKind::Agreement => include_str!("../../../policies/schema/agreement.schema.json"),
            SchemaKind::Partners => include_str!("../../../policies/schema/partners.schema.json"),
            SchemaKind::Cohort => include_str!("../../../policies/schema/cohort.schema.json"),
            SchemaKind::Sensitivity => {
                include_str!("../../../policies/schema/sensitivity.schema.json")
            }
            SchemaKind::Instances => include_str!("../../../policies/schema/instances.schema.json"),
            SchemaKind::Test => include_str!("../../../policies/schema/test.schema.json"),
        }
    }

    fn validator(self) -> Option<&'static Validator> {
        static CELLS: [OnceLock<Option<Validator>>; 6] = [const { OnceLock::new() }; 6];
        let index = self as usize;
        CELLS
            .get(index)?
            .get_or_init(|| {
                let schema: serde_json::Value = serde_json::from_str(self.text()).ok()?;
                jsonschema::validator_for(&schema).ok()
            })
            .as_ref()
    }
}

/// Validates `doc` (parsed from `source`) against the schema of `kind`;
/// every violation, located.
pub fn validate(kind: SchemaKind, source: &SourceFile, doc: &SpannedDoc) -> Vec<PolicyError> {
    let Some(validator) = kind.validator() else {
        return vec![PolicyError::unlocated(format!(
            "internal error: the embedded schema `{}` does not compile",
            kind.file_name()
        ))];
    };
    let hint_schema = format!(
        "the allowed keys and values are in policies/schema/{}",
        kind.file_name()
    );
    let mut errors = Vec::new();
    let found: Vec<_> = validator.iter_errors(&doc.value).collect();
    // A misspelled key is also a missing one: report it once, at the
    // misspelling, suggesting the missing key.
    let missing = |pointer: &str| -> Vec<String> {
        found
            .iter()
            .filter(|e| e.instance_path().as_str() == pointer)
            .filter_map(|e| match e.kind() {
                ValidationErrorKind::Required { property } => property.as_str().map(str::to_owned),
                _ => None,
            })
            .collect()
    };
    let misspelled: Vec<String> = found
        .iter()
        .filter(|e| matches!(e.kind(), ValidationErrorKind::AdditionalProperties { .. }))
        .map(|e| e.instance_path().as_str().to_owned())
        .collect();
    for error in &found {
        let pointer = error.instance_path().as_str().to_owned();
        match error.kind() {
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                let missing = missing(&pointer);
                for key in unexpected {
                    let child = format!("{pointer}/{}", crate::spans::escape(key));
                    let hint = match missing.first() {
                        Some(m) => format!("did you mean `{m}`? {hint_schema}"),
                        None => format!("remove it or correct its spelling; {hint_schema}"),
                    };
                    errors.push(source.error_hint(
                        doc.key_span(&child),
                        format!("unknown key `{}`", display_path(&child)),
                        hint,
                    ));
                }
            }
            ValidationErrorKind::Required { .. } if misspelled.contains(&pointer) => {}
            ValidationErrorKind::Enum { options } => {
                let value = doc
                    .value
                    .pointer(&pointer)
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                    .unwrap_or_default();
                let names: Vec<&str> = options
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|o| o.as_str())
                    .collect();
                let options: Vec<String> = names.iter().map(|o| format!("`{o}`")).collect();
                errors.push(source.error_hint(
                    doc.value_span(&pointer),
                    format!(
                        "`{value}` is not a value of `{}`{}; one of {}",
                        display_path(&pointer),
                        crate::suggest::did_you_mean(&value, names.iter().copied()),
                        options.join(", ")
                    ),
                    hint_schema.clone(),
                ));
            }
            ValidationErrorKind::Type { .. }
                if is_date_key(&pointer) && !error.to_string().contains("$datetime") =>
            {
                errors.push(source.error_hint(
                    doc.value_span(&pointer),
                    format!("`{}` must be a date", display_path(&pointer)),
                    "write a TOML date without quotes, e.g. 2026-01-31, or a date-time with offset, e.g. 2026-01-31T08:00:00-05:00",
                ));
            }
            _ => {
                let at = display_path(&pointer);
                let message = if at.is_empty() {
                    error.to_string()
                } else {
                    format!("`{at}`: {error}")
                };
                errors.push(source.error_hint(
                    doc.value_span(&pointer),
                    message,
                    hint_schema.clone(),
                ));
            }
        }
    }
    errors
}

fn is_date_key(pointer: &str) -> bool {
    ["/effective", "/expires", "/at"]
        .iter()
        .any(|k| pointer.ends_with(k))
}

/// `/grant/0/interactions` → `grant[0].interactions`.
pub fn display_path(pointer: &str) -> String {
    let mut out = String::new();
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if segment.bytes().all(|b| b.is_ascii_digit()) && !segment.is_empty() {
            out.push_str(&format!("[{segment}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&segment);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_schema_compiles() {
        for kind in [
            SchemaKind::Agreement,
            SchemaKind::Partners,
            SchemaKind::Cohort,
            SchemaKind::Sensitivity,
            SchemaKind::Instances,
            SchemaKind::Test,
        ] {
            assert!(kind.validator().is_some(), "{}", kind.file_name());
        }
    }

    #[test]
    fn unknown_keys_are_located_at_the_key() {
        let file = SourceFile::new(
            "p.toml",
            "[[partner]]\nid = \"a\"\nname = \"A\"\nstatus = \"active\"\nstatsu = 1\n",
        );
        let doc = SpannedDoc::from_toml(&file).unwrap();
        let errors = validate(SchemaKind::Partners, &file, &doc);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(
            errors[0].to_string(),
            "p.toml:5:1: unknown key `partner[0].statsu`"
        );
    }

    #[test]
    fn paths_read_like_toml() {
        assert_eq!(
            display_path("/grant/0/interactions"),
            "grant[0].interactions"
        );
    }
}
