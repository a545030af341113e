//! `accord policy test`: table-driven expectations in policies/tests/*.toml.
//!
//! ```toml
//! [[case]]
//! name = "primary care reads labs for treatment"
//! partner = "maple-primary"
//! purpose = "TREAT"
//! request = "GET /Observation?patient=Patient/123"
//! at = 2026-06-15T12:00:00Z
//! expect = "permit"                 # or "deny"
//! agreement = "care-coordination-2026"
//! rule = "clinical-record"          # the grant (permit)
//! redactions = ["Patient.address"]  # exact, when given
//! ```

use std::path::Path;

use accord_fhir::Purpose;
use serde::{Deserialize, Serialize};

use crate::PolicySet;
use crate::consent::ConsentIndex;
use crate::decide::{AccessRequest, Decision};
use crate::explain::parse_request_line;
use crate::ids::PartnerId;
use crate::load::{PolicyErrors, parse_checked};
use crate::schema::SchemaKind;
use crate::source::{PolicyError, SourceFile};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    #[serde(default)]
    case: Vec<toml::Spanned<Case>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    partner: String,
    purpose: String,
    request: String,
    at: toml::value::Datetime,
    #[serde(default)]
    consents: Option<String>,
    expect: String,
    #[serde(default)]
    agreement: Option<String>,
    #[serde(default)]
    rule: Option<String>,
    #[serde(default)]
    reason_contains: Option<String>,
    #[serde(default)]
    redactions: Option<Vec<String>>,
    #[serde(default)]
    constraints: Option<Vec<String>>,
    #[serde(default)]
    sensitive: Option<Vec<String>>,
    #[serde(default)]
    population_search: Option<bool>,
    #[serde(default)]
    cohort: Option<String>,
}

/// The outcome of one case.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    /// `file:line:col` of the case.
    pub location: String,
    pub name: String,
    pub failures: Vec<String>,
}

/// All cases of all files.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TestReport {
    pub cases: Vec<CaseResult>,
}

// === impl TestReport ===

impl TestReport {
    pub fn passed(&self) -> usize {
        self.cases.iter().filter(|c| c.failures.is_empty()).count()
    }

    pub fn failed(&self) -> usize {
        self.cases.len() - self.passed()
    }

    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for c in &self.cases {
            if c.failures.is_empty() {
                out.push_str(&format!("ok    {}  ({})\n", c.name, c.location));
            } else {
                out.push_str(&format!("FAIL  {}  ({})\n", c.name, c.location));
                for f in &c.failures {
                    out.push_str(&format!("        {f}\n"));
                }
            }
        }
        out.push_str(&format!(
            "\n{} passed, {} failed\n",
            self.passed(),
            self.failed()
        ));
        out
    }
}

/// Reads `dir/tests/*.toml`.
pub fn read_tests(dir: &Path) -> Result<Vec<SourceFile>, PolicyErrors> {
    let folder = dir.join("tests");
    let mut out = Vec::new();
    let entries = std::fs::read_dir(&folder).map_err(|e| {
        PolicyErrors(vec![PolicyError::unlocated(format!(
            "{}: {e}",
            folder.display()
        ))])
    })?;
    let mut paths: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    for path in paths {
        let text = std::fs::read_to_string(&path).map_err(|e| {
            PolicyErrors(vec![PolicyError::unlocated(format!(
                "{}: {e}",
                path.display()
            ))])
        })?;
        out.push(SourceFile::new(path.display().to_string(), text));
    }
    Ok(out)
}

/// Runs every case; malformed test files are errors (located).
pub fn run_tests(set: &PolicySet, files: &[SourceFile]) -> Result<TestReport, PolicyErrors> {
    let mut errors = Vec::new();
    let mut report = TestReport::default();
    for file in files {
        let Some(parsed) = parse_checked::<TestFile>(file, SchemaKind::Test, &mut errors) else {
            continue;
        };
        for case in parsed.case {
            let location = file.location_of(case.span().start).to_string();
            let case = case.into_inner();
            let failures = run_case(set, &case);
            report.cases.push(CaseResult {
                location,
                name: case.name,
                failures,
            });
        }
    }
    if errors.is_empty() {
        Ok(report)
    } else {
        Err(PolicyErrors(errors))
    }
}

fn run_case(set: &PolicySet, case: &Case) -> Vec<String> {
    let mut failures = Vec::new();
    let partner = match PartnerId::parse(&case.partner) {
        Ok(p) => p,
        Err(e) => return vec![e.to_string()],
    };
    if set.partner(&partner).is_none() {
        return vec![format!(
            "partner `{partner}` is not in partners.toml{}: the test would pass or fail for the wrong reason",
            crate::suggest::did_you_mean(partner.as_str(), set.partners().map(|p| p.id.as_str()))
        )];
    }
    let purpose = match Purpose::parse(&case.purpose) {
        Ok(p) => p,
        Err(e) => return vec![e.to_string()],
    };
    let request = match parse_request_line(&case.request) {
        Ok(r) => r,
        Err(e) => return vec![format!("request `{}`: {e}", case.request)],
    };
    let at = match crate::load::instant_of(&case.at) {
        Ok(at) => at,
        Err(e) => return vec![e],
    };
    let none = ConsentIndex::default();
    let consents = match case.consents.as_deref() {
        Some("none") => &none,
        _ => set.consents().as_ref(),
    };
    let decision = set.decide_with_narrowing(
        &AccessRequest::from_fhir(&partner, &purpose, &request, at),
        consents,
    );
    let got = if decision.is_permit() {
        "permit"
    } else {
        "deny"
    };
    if got != case.expect {
        failures.push(format!(
            "expected {}, got {got}: {}",
            case.expect,
            decision.rule()
        ));
        return failures;
    }
    if let Decision::Deny(d) = &decision {
        if let Some(text) = &case.reason_contains
            && !d.reason.to_string().contains(text.as_str())
        {
            failures.push(format!(
                "denial reason `{}` does not contain `{text}`",
                d.reason
            ));
        }
        if let Some(a) = &case.agreement
            && !decision.rule().contains(&format!("`{a}`"))
        {
            failures.push(format!(
                "denial `{}` does not name agreement `{a}`",
                decision.rule()
            ));
        }
        return failures;
    }
    let Some(o) = decision.obligations() else {
        return failures;
    };
    let grant = o.rules.first();
    if let Some(a) = &case.agreement
        && grant.and_then(|g| g.agreement.as_ref()).map(|x| x.as_str()) != Some(a.as_str())
    {
        failures.push(format!("expected agreement `{a}`, got {}", decision.rule()));
    }
    if let Some(r) = &case.rule
        && grant.map(|g| g.rule.as_str()) != Some(r.as_str())
    {
        failures.push(format!("expected grant `{r}`, got {}", decision.rule()));
    }
    let sorted = |v: &[String]| {
        let mut v = v.to_vec();
        v.sort();
        v
    };
    if let Some(want) = &case.redactions
        && sorted(want) != sorted(&o.redactions)
    {
        failures.push(format!(
            "expected redactions {}, got {}",
            words(want),
            words(&o.redactions)
        ));
    }
    if let Some(want) = &case.constraints {
        let got: Vec<String> = o.constraints.iter().map(|c| c.text.clone()).collect();
        if sorted(want) != sorted(&got) {
            failures.push(format!(
                "expected constraints {}, got {}",
                words(want),
                words(&got)
            ));
        }
    }
    if let Some(want) = &case.sensitive {
        let got: Vec<String> = o
            .sensitive_allowed
            .iter()
            .map(ToString::to_string)
            .collect();
        if sorted(want) != sorted(&got) {
            failures.push(format!(
                "expected sensitive categories {}, got {}",
                words(want),
                words(&got)
            ));
        }
    }
    if let Some(want) = case.population_search
        && want != o.population_search
    {
        failures.push(format!("expected population_search = {want}"));
    }
    if let Some(want) = &case.cohort
        && o.cohort.as_ref().map(|c| c.as_str()) != Some(want.as_str())
    {
        let got = o
            .cohort
            .as_ref()
            .map_or_else(|| "no cohort".to_owned(), |c| format!("`{c}`"));
        failures.push(format!("expected cohort `{want}`, got {got}"));
    }
    failures
}

/// `` `a`, `b` `` or `none`, for messages.
fn words(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items
            .iter()
            .map(|i| format!("`{i}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
