//! OperationOutcome: how every refusal and error reaches a partner.

use serde_json::{Value, json};

/// Issue severity (R4 `issue-severity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Fatal,
    Error,
    Warning,
    Information,
}

/// Issue type (the R4 `issue-type` codes Accord uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueType {
    Invalid,
    Structure,
    Value,
    Security,
    Login,
    Forbidden,
    Processing,
    NotSupported,
    NotFound,
    TooLong,
    Exception,
    Timeout,
    Transient,
    Throttled,
}

/// A FHIR OperationOutcome with one or more issues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationOutcome {
    issues: Vec<Issue>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Issue {
    severity: Severity,
    code: IssueType,
    diagnostics: String,
    /// FHIRPath of the element the issue is about, when known.
    expression: Option<String>,
}

// === impl OperationOutcome ===

impl OperationOutcome {
    /// An outcome with a single `error` issue.
    pub fn error(code: IssueType, diagnostics: impl Into<String>) -> Self {
        OperationOutcome {
            issues: vec![Issue {
                severity: Severity::Error,
                code,
                diagnostics: diagnostics.into(),
                expression: None,
            }],
        }
    }

    /// Adds an `error` issue about the element at `expression`.
    #[must_use]
    pub fn with_issue(
        mut self,
        code: IssueType,
        diagnostics: impl Into<String>,
        expression: impl Into<String>,
    ) -> Self {
        self.issues.push(Issue {
            severity: Severity::Error,
            code,
            diagnostics: diagnostics.into(),
            expression: Some(expression.into()),
        });
        self
    }

    pub fn to_json(&self) -> Value {
        let issues: Vec<Value> = self
            .issues
            .iter()
            .map(|issue| {
                let mut rendered = json!({
                    "severity": issue.severity.as_str(),
                    "code": issue.code.as_str(),
                    "diagnostics": issue.diagnostics,
                });
                if let (Some(expression), Some(fields)) =
                    (&issue.expression, rendered.as_object_mut())
                {
                    fields.insert("expression".into(), json!([expression]));
                }
                rendered
            })
            .collect();
        json!({ "resourceType": "OperationOutcome", "issue": issues })
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_json().to_string().into_bytes()
    }
}

// === impl Severity ===

impl Severity {
    pub fn as_str(&self) -> &'static str {
        match self {
            Severity::Fatal => "fatal",
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Information => "information",
        }
    }
}

// === impl IssueType ===

impl IssueType {
    pub fn as_str(&self) -> &'static str {
        match self {
            IssueType::Invalid => "invalid",
            IssueType::Structure => "structure",
            IssueType::Value => "value",
            IssueType::Security => "security",
            IssueType::Login => "login",
            IssueType::Forbidden => "forbidden",
            IssueType::Processing => "processing",
            IssueType::NotSupported => "not-supported",
            IssueType::NotFound => "not-found",
            IssueType::TooLong => "too-long",
            IssueType::Exception => "exception",
            IssueType::Timeout => "timeout",
            IssueType::Transient => "transient",
            IssueType::Throttled => "throttled",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_an_r4_operation_outcome() {
        let oo = OperationOutcome::error(IssueType::Forbidden, "no agreement grants `read`");
        let json = oo.to_json();
        assert_eq!(json["resourceType"], "OperationOutcome");
        assert_eq!(json["issue"][0]["severity"], "error");
        assert_eq!(json["issue"][0]["code"], "forbidden");
        assert_eq!(
            json["issue"][0]["diagnostics"],
            "no agreement grants `read`"
        );
        let parsed: Result<fhirbolt::model::r4::Resource, _> =
            fhirbolt::json::from_slice(&oo.to_bytes(), None);
        assert!(parsed.is_ok(), "{parsed:?}");
    }
}
