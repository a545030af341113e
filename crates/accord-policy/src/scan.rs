//! The sensitivity scan: which codes a deployment's data carries, code
//! system by code system, and how the sensitivity tables classify each, so
//! a privacy officer sees the gaps before go-live.
//!
//! Pure: it classifies resources it is given with the same
//! [`ResourceFacts`] and [`Category::matches`](crate::Category::matches)
//! the gateway's filter uses (the CLI fetches them from the upstream).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

use crate::PolicySet;
use crate::facts::ResourceFacts;
use crate::sensitivity::Coding;

/// What a scan found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ScanReport {
    /// Resources read.
    pub resources: u64,
    /// Resources per sensitivity category.
    pub by_category: BTreeMap<String, u64>,
    /// Per code system, in system order: each code seen with how often, its
    /// display, and the categories it put its resources in.
    pub systems: Vec<SystemReport>,
    /// Resources no table could classify (no code in a covered system), per
    /// resource type.
    pub unclassified: BTreeMap<String, u64>,
    /// Prescriptions naming a Medication by reference, whose codes the scan
    /// could not see (the gateway reads them; the scan reports them).
    pub medication_references: u64,
}

/// The codes of one code system.
#[derive(Debug, Clone, Serialize)]
pub struct SystemReport {
    pub system: String,
    /// Whether any category's table covers this system.
    pub covered: bool,
    /// Most frequent first.
    pub codes: Vec<CodeReport>,
}

/// One code seen in the data.
#[derive(Debug, Clone, Serialize)]
pub struct CodeReport {
    pub code: String,
    pub display: Option<String>,
    pub count: u64,
    /// The categories this code (by itself) falls in; empty: not sensitive
    /// by this code.
    pub categories: Vec<String>,
}

#[derive(Default)]
struct Seen {
    count: u64,
    display: Option<String>,
}

/// Classifies every resource (Bundles are opened; `Bundle.entry.resource`
/// counts, the Bundle itself does not).
pub fn scan<'a>(
    policies: &PolicySet,
    resources: impl IntoIterator<Item = &'a Value>,
) -> ScanReport {
    let mut report = ScanReport::default();
    let mut seen: BTreeMap<Coding, Seen> = BTreeMap::new();
    let mut queue: Vec<&Value> = resources.into_iter().collect();
    while let Some(resource) = queue.pop() {
        if resource.get("resourceType").and_then(Value::as_str) == Some("Bundle") {
            queue.extend(
                resource
                    .get("entry")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|e| e.get("resource")),
            );
            continue;
        }
        report.resources += 1;
        let facts = ResourceFacts::of(resource);
        for category in policies.categories_of(&facts) {
            *report
                .by_category
                .entry(category.id.to_string())
                .or_default() += 1;
        }
        if facts.medication_reference.is_some() {
            report.medication_references += 1;
        }
        if !policies.classifiable(&facts) && facts.medication_reference.is_none() {
            let ty = resource
                .get("resourceType")
                .and_then(Value::as_str)
                .unwrap_or("(no type)");
            *report.unclassified.entry(ty.to_owned()).or_default() += 1;
        }
        for coding in &facts.codes {
            seen.entry(coding.clone()).or_default().count += 1;
        }
        remember_displays(resource, &mut seen);
    }
    let covered: BTreeSet<&str> = policies.categories().flat_map(|c| c.systems()).collect();
    let mut systems: BTreeMap<String, Vec<CodeReport>> = BTreeMap::new();
    for (coding, seen) in seen {
        let alone = ResourceFacts {
            codes: vec![coding.clone()],
            code_texts: seen
                .display
                .iter()
                .map(|d| crate::facts::CodeText {
                    system: Some(coding.system.clone()),
                    text: d.to_lowercase(),
                })
                .collect(),
            ..ResourceFacts::default()
        };
        let categories = policies
            .categories_of(&alone)
            .into_iter()
            .map(|c| c.id.to_string())
            .collect();
        systems.entry(coding.system).or_default().push(CodeReport {
            code: coding.code,
            display: seen.display,
            count: seen.count,
            categories,
        });
    }
    report.systems = systems
        .into_iter()
        .map(|(system, mut codes)| {
            codes.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.code.cmp(&b.code)));
            SystemReport {
                covered: covered.contains(system.as_str()),
                system,
                codes,
            }
        })
        .collect();
    report
}

/// The first display seen for each coding.
fn remember_displays(value: &Value, seen: &mut BTreeMap<Coding, Seen>) {
    match value {
        Value::Object(fields) => {
            if let (Some(Value::String(system)), Some(Value::String(code)), Some(Value::String(d))) = (
                fields.get("system"),
                fields.get("code"),
                fields.get("display"),
            ) && let Some(entry) = seen.get_mut(&Coding::new(system, code))
                && entry.display.is_none()
            {
                entry.display = Some(d.clone());
            }
            for inner in fields.values() {
                if inner.is_object() || inner.is_array() {
                    remember_displays(inner, seen);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| remember_displays(i, seen)),
        _ => {}
    }
}

// === impl ScanReport ===

impl ScanReport {
    /// The report in words, for a privacy officer: per code system, the
    /// sensitive codes found, then the codes no category matched (most
    /// frequent first, at most `limit` per system), then what could not be
    /// classified at all.
    pub fn render(&self, limit: usize) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let _ = writeln!(out, "Scanned {} resources.", self.resources);
        if self.by_category.is_empty() {
            let _ = writeln!(out, "No resource falls in a sensitive category.");
        }
        for (category, count) in &self.by_category {
            let _ = writeln!(out, "  {count:>7}  in category {category}");
        }
        for system in &self.systems {
            let total: u64 = system.codes.iter().map(|c| c.count).sum();
            let coverage = if system.covered {
                "covered by the sensitivity tables"
            } else {
                "NOT covered by any sensitivity table"
            };
            let _ = writeln!(
                out,
                "\n{} — {} distinct codes, {total} uses, {coverage}",
                system.system,
                system.codes.len()
            );
            let sensitive: Vec<&CodeReport> = system
                .codes
                .iter()
                .filter(|c| !c.categories.is_empty())
                .collect();
            let ordinary: Vec<&CodeReport> = system
                .codes
                .iter()
                .filter(|c| c.categories.is_empty())
                .collect();
            if !sensitive.is_empty() {
                let _ = writeln!(out, "  sensitive:");
                for code in sensitive.iter().take(limit) {
                    let _ = writeln!(
                        out,
                        "  {:>7}  {}  {}  → {}",
                        code.count,
                        code.code,
                        code.display.as_deref().unwrap_or("(no display)"),
                        code.categories.join(", ")
                    );
                }
            }
            if !ordinary.is_empty() {
                let _ = writeln!(
                    out,
                    "  {} (most frequent first):",
                    if system.covered {
                        "not in any category"
                    } else {
                        "unclassified"
                    }
                );
                for code in ordinary.iter().take(limit) {
                    let _ = writeln!(
                        out,
                        "  {:>7}  {}  {}",
                        code.count,
                        code.code,
                        code.display.as_deref().unwrap_or("(no display)")
                    );
                }
                if ordinary.len() > limit {
                    let _ = writeln!(out, "  … and {} more", ordinary.len() - limit);
                }
            }
        }
        if !self.unclassified.is_empty() {
            let _ = writeln!(
                out,
                "\nResources the tables cannot classify (no code in a covered code system):"
            );
            for (ty, count) in &self.unclassified {
                let _ = writeln!(out, "  {count:>7}  {ty}");
            }
            let _ = writeln!(
                out,
                "Agreements withhold these for the types in their [unclassified] list (Condition and the medication types by default)."
            );
        }
        if self.medication_references > 0 {
            let _ = writeln!(
                out,
                "\n{} prescriptions name their drug by medicationReference; the gateway reads that Medication to classify them.",
                self.medication_references
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn codes_are_listed_per_system_with_their_categories_and_gaps() {
        let policies = PolicySet::load_dir(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies"),
        )
        .unwrap();
        let bundle = json!({"resourceType": "Bundle", "entry": [
            {"resource": {"resourceType": "Condition", "subject": {"reference": "Patient/1"},
                "code": {"coding": [{"system": "http://snomed.info/sct", "code": "5602001", "display": "Opioid abuse (disorder)"}]}}},
            {"resource": {"resourceType": "Condition", "subject": {"reference": "Patient/1"},
                "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006", "display": "Diabetes"}]}}},
            {"resource": {"resourceType": "Condition", "subject": {"reference": "Patient/2"},
                "code": {"coding": [{"system": "urn:local", "code": "X1", "display": "Local"}]}}}
        ]});
        let report = scan(&policies, [&bundle]);
        assert_eq!(report.resources, 3);
        assert_eq!(report.by_category.get("part2"), Some(&1));
        assert_eq!(report.unclassified.get("Condition"), Some(&1));
        let snomed = report
            .systems
            .iter()
            .find(|s| s.system == "http://snomed.info/sct")
            .unwrap();
        assert!(snomed.covered);
        let opioid = snomed.codes.iter().find(|c| c.code == "5602001").unwrap();
        assert_eq!(opioid.categories, vec!["part2".to_owned()]);
        let local = report
            .systems
            .iter()
            .find(|s| s.system == "urn:local")
            .unwrap();
        assert!(!local.covered);
        let text = report.render(10);
        assert!(text.contains("NOT covered"), "{text}");
        assert!(text.contains("5602001"), "{text}");
    }
}
