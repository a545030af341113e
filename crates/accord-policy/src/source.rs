//! Policy source files and errors that point into them as `file:line:col`.

use std::fmt;
use std::ops::Range;

/// One policy file's name (as shown to people) and text.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub name: String,
    pub text: String,
}

/// A position in a policy file, 1-based.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    pub line: usize,
    pub column: usize,
}

/// An error in a policy file, located where it can be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PolicyError {
    pub location: Option<Location>,
    pub message: String,
    /// What to do about it, in plain words.
    pub hint: Option<String>,
}

/// Where a part of a policy is written, for lints and explanations. Not part
/// of its meaning: equality ignores it (moving a rule is not changing it).
#[derive(Debug, Clone, Default)]
pub struct Written(pub Option<Location>);

impl PartialEq for Written {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Written {}

impl fmt::Display for Written {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(location) => location.fmt(f),
            None => f.write_str("<unknown>"),
        }
    }
}

// === impl SourceFile ===

impl SourceFile {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        SourceFile {
            name: name.into(),
            text: text.into(),
        }
    }

    /// The 1-based line and column of a byte offset.
    pub fn location_of(&self, offset: usize) -> Location {
        let before = self.text.get(..offset).unwrap_or(&self.text);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
        Location {
            file: self.name.clone(),
            line,
            column,
        }
    }

    /// Where `span` is written in this file.
    pub fn written(&self, span: Range<usize>) -> Written {
        Written(Some(self.location_of(span.start)))
    }

    /// An error at `span` in this file (or at the file, without a span).
    pub fn error(&self, span: Option<Range<usize>>, message: impl Into<String>) -> PolicyError {
        PolicyError {
            location: Some(match span {
                Some(span) => self.location_of(span.start),
                None => Location {
                    file: self.name.clone(),
                    line: 1,
                    column: 1,
                },
            }),
            message: message.into(),
            hint: None,
        }
    }

    /// An error with a hint.
    pub fn error_hint(
        &self,
        span: Option<Range<usize>>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> PolicyError {
        self.error(span, message).with_hint(hint)
    }

    /// Deserializes this file as TOML, locating any error.
    pub fn parse_toml<T: serde::de::DeserializeOwned>(&self) -> Result<T, PolicyError> {
        toml::from_str(&self.text).map_err(|e| {
            // toml's message embeds its own excerpt; keep the first line,
            // the location is ours.
            let message = e
                .message()
                .lines()
                .next()
                .unwrap_or("invalid TOML")
                .to_owned();
            self.error(e.span(), message)
        })
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

// === impl PolicyError ===

impl PolicyError {
    /// An error about the policy folder itself (a missing file).
    pub fn unlocated(message: impl Into<String>) -> Self {
        PolicyError {
            location: None,
            message: message.into(),
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// `file:line:col: message` and, on the next line, the hint.
    pub fn to_string_with_hint(&self) -> String {
        match &self.hint {
            Some(hint) => format!("{self}\n  hint: {hint}"),
            None => self.to_string(),
        }
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Some(location) => write!(f, "{location}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_offsets_as_line_and_column() {
        let file = SourceFile::new("a.toml", "x = 1\nyy = 2\n");
        let loc = file.location_of(7);
        assert_eq!((loc.line, loc.column), (2, 2));
        assert_eq!(file.error(Some(7..8), "bad").to_string(), "a.toml:2:2: bad");
    }

    #[test]
    fn toml_errors_carry_the_position_of_the_offending_key() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Shape {
            name: String,
        }
        let file = SourceFile::new("p.toml", "name = \"a\"\nnmae = \"b\"\n");
        let err = file.parse_toml::<Shape>().unwrap_err().to_string();
        assert!(err.starts_with("p.toml:2:1: unknown field `nmae`"), "{err}");
    }
}
