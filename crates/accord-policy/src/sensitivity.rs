//! Sensitivity categories: value sets (code system + codes or code ranges)
//! and HL7 security labels that mark data as sensitive (42 CFR Part 2,
//! mental health, HIV/STI, ...). A curated default set ships in
//! policies/sensitivity/default.toml (embedded, sources cited there).

use std::collections::BTreeSet;

use serde::Deserialize;

pub use crate::coding::Coding;
use crate::facts::{CodeText, ResourceFacts};
use crate::ids::CategoryId;

/// One sensitivity category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Category {
    pub id: CategoryId,
    pub name: String,
    /// Where the definition comes from (regulation, code system, value set).
    pub sources: Vec<String>,
    /// Released only when the patient's consent covers the recipient and
    /// purpose (42 CFR Part 2), not merely when a grant names it.
    pub requires_consent: bool,
    pub security_labels: BTreeSet<Coding>,
    pub codes: Vec<CodeSet>,
    pub source: String,
}

/// Codes of one system: listed codes and inclusive ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeSet {
    pub system: String,
    pub codes: BTreeSet<String>,
    /// Inclusive; a range `F10`–`F19` also covers `F19.20` (descendants).
    pub ranges: Vec<(String, String)>,
    /// Lower-cased words matched, as whole words, in the display of a
    /// coding of this system or in a concept's plain text: an RxNorm
    /// product not listed still names its ingredient ("buprenorphine 8 MG
    /// Sublingual Tablet"). A match only ever withholds more.
    pub terms: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SensitivityFile {
    #[serde(default)]
    pub category: Vec<CategoryEntry>,
    #[serde(default)]
    pub extend: Vec<ExtendEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CategoryEntry {
    pub id: toml::Spanned<CategoryId>,
    pub name: String,
    pub sources: Vec<String>,
    #[serde(default)]
    pub requires_consent: bool,
    #[serde(default)]
    pub security_labels: Vec<toml::Spanned<String>>,
    #[serde(default)]
    pub codes: Vec<CodeSetEntry>,
}

/// Codes, terms or labels added to a category defined in another file
/// (a privacy officer's own additions beside the shipped tables).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExtendEntry {
    pub category: toml::Spanned<CategoryId>,
    #[serde(default)]
    pub sources: Vec<String>,
    #[serde(default)]
    pub security_labels: Vec<toml::Spanned<String>>,
    #[serde(default)]
    pub codes: Vec<CodeSetEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CodeSetEntry {
    pub system: String,
    #[serde(default)]
    pub codes: Vec<String>,
    #[serde(default)]
    pub ranges: Vec<toml::Spanned<Vec<String>>>,
    #[serde(default)]
    pub terms: Vec<toml::Spanned<String>>,
}

/// The shipped default categories.
pub const DEFAULT_SENSITIVITY: &str = include_str!("../../../policies/sensitivity/default.toml");

// === impl Category ===

impl Category {
    /// Whether a resource with these facts falls in this category: by a
    /// security label, a listed code, or a display term.
    pub fn matches(&self, facts: &ResourceFacts) -> bool {
        facts
            .security_labels
            .iter()
            .any(|l| self.security_labels.contains(l))
            || facts
                .codes
                .iter()
                .any(|c| self.codes.iter().any(|set| set.contains(c)))
            || facts
                .code_texts
                .iter()
                .any(|t| self.codes.iter().any(|set| set.names(t)))
    }

    /// The code systems this category's tables cover.
    pub fn systems(&self) -> impl Iterator<Item = &str> {
        self.codes.iter().map(|set| set.system.as_str())
    }
}

// === impl CodeSet ===

impl CodeSet {
    /// Whether `text` (a display of this system's coding, or a plain text)
    /// names one of the terms as whole words.
    pub fn names(&self, text: &CodeText) -> bool {
        if text.system.as_deref().is_some_and(|s| s != self.system) {
            return false;
        }
        self.terms
            .iter()
            .any(|term| contains_words(&text.text, term))
    }

    pub fn contains(&self, coding: &Coding) -> bool {
        if coding.system != self.system {
            return false;
        }
        if self.codes.contains(&coding.code) {
            return true;
        }
        // Compared as normalised character streams: this runs for every
        // coding of every resource a filter releases, so nothing is
        // allocated (a `String` per side per range was most of its cost).
        let code = || normalise(&coding.code);
        self.ranges.iter().any(|(lo, hi)| {
            normalise(lo).cmp(code()).is_le()
                && (code().cmp(normalise(hi)).is_le() || starts_with(code(), normalise(hi)))
        })
    }
}

/// Whether `phrase` occurs in `text` with no letter or digit right before
/// or after it ("methadone" in "methadone 10 MG", not in "methadonex").
fn contains_words(text: &str, phrase: &str) -> bool {
    let is_word = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    text.match_indices(phrase).any(|(at, _)| {
        let before = text.get(..at).and_then(|s| s.chars().next_back());
        let after = text.get(at + phrase.len()..).and_then(|s| s.chars().next());
        !is_word(before) && !is_word(after)
    })
}

/// ICD-style codes compare without the dot and case-insensitively.
fn normalise(code: &str) -> impl Iterator<Item = char> + '_ {
    code.chars()
        .filter(|c| *c != '.')
        .map(|c| c.to_ascii_uppercase())
}

fn starts_with(mut text: impl Iterator<Item = char>, prefix: impl Iterator<Item = char>) -> bool {
    prefix.into_iter().all(|p| text.next() == Some(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_their_descendants_only() {
        let set = CodeSet {
            system: "icd".into(),
            codes: BTreeSet::new(),
            ranges: vec![("F10".into(), "F19".into())],
            terms: Vec::new(),
        };
        let c = |code: &str| Coding::new("icd", code);
        assert!(set.contains(&c("F10")));
        assert!(set.contains(&c("F10.20")));
        assert!(set.contains(&c("F19.99")));
        assert!(!set.contains(&c("F20")));
        assert!(!set.contains(&c("F09")));
        assert!(!set.contains(&Coding::new("snomed", "F10")));
        assert!(set.contains(&c("f1.9")), "without the dot, any case");
        assert!(!set.contains(&c("F1")), "shorter than the low end");
    }

    #[test]
    fn display_terms_match_whole_words_of_their_system_or_plain_text() {
        let set = CodeSet {
            system: "rx".into(),
            codes: BTreeSet::new(),
            ranges: Vec::new(),
            terms: vec![
                "buprenorphine".into(),
                "human immunodeficiency virus".into(),
            ],
        };
        let t = |system: Option<&str>, text: &str| CodeText {
            system: system.map(str::to_owned),
            text: text.into(),
        };
        assert!(set.names(&t(Some("rx"), "buprenorphine 8 mg sublingual tablet")));
        assert!(set.names(&t(None, "suboxone (buprenorphine/naloxone)")));
        assert!(set.names(&t(None, "human immunodeficiency virus infection")));
        assert!(
            !set.names(&t(Some("other"), "buprenorphine")),
            "another system's display"
        );
        assert!(
            !set.names(&t(Some("rx"), "norbuprenorphine")),
            "not a whole word"
        );
    }
}
