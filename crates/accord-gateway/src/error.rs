//! Every way a request can fail, who failed, and the OperationOutcome the
//! partner sees. This is the only place statuses and outcomes are chosen.

use accord_fhir::{IssueType, OperationOutcome};

use crate::bounded::{MESSAGE, SHORT, bounded_owned};

/// Issues listed in one OperationOutcome at most.
const DETAILS: usize = 100;
use http::StatusCode;

/// Who caused a failure (pingora's downstream / upstream / internal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorSource {
    /// The partner's request was refused.
    Partner,
    /// The upstream FHIR server failed.
    Upstream,
    /// The gateway itself could not complete the request.
    Gateway,
}

/// A request that ends in an OperationOutcome instead of data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayError {
    pub source: ErrorSource,
    pub status: StatusCode,
    pub issue: IssueType,
    /// Shown to the partner: never internals, never a hint of what exists
    /// beyond what the partner may see.
    pub message: String,
    /// Further problems, each about one element (`(path, message)`): what
    /// a partner needs to fix an invalid body.
    pub details: Vec<(String, String)>,
    /// Seconds the partner should wait (`Retry-After`), for 429s.
    pub retry_after: Option<u64>,
    /// Set when an existing resource out of reach is answered like a
    /// missing one: why it was withheld (a reason code such as
    /// `outside_cohort`). For the audit record only — the partner sees
    /// "not found", the log says the truth (a denial, and which rule).
    pub withheld: Option<&'static str>,
}

// === impl ErrorSource ===

impl ErrorSource {
    pub fn as_str(&self) -> &'static str {
        match self {
            ErrorSource::Partner => "partner",
            ErrorSource::Upstream => "upstream",
            ErrorSource::Gateway => "gateway",
        }
    }
}

// === impl GatewayError ===

impl GatewayError {
    fn new(
        source: ErrorSource,
        status: StatusCode,
        issue: IssueType,
        message: impl Into<String>,
    ) -> Self {
        GatewayError {
            source,
            status,
            issue,
            message: message.into(),
            details: Vec::new(),
            retry_after: None,
            withheld: None,
        }
    }

    /// A volume cap of the partner's agreement is used up for today.
    pub fn throttled(message: impl Into<String>, retry_after: u64) -> Self {
        let mut error = Self::new(
            ErrorSource::Partner,
            StatusCode::TOO_MANY_REQUESTS,
            IssueType::Throttled,
            message,
        );
        error.retry_after = Some(retry_after);
        error
    }

    // --- the partner's fault ---

    pub fn no_certificate() -> Self {
        Self::new(
            ErrorSource::Partner,
            StatusCode::UNAUTHORIZED,
            IssueType::Login,
            "a client certificate is required",
        )
    }

    pub fn unknown_certificate() -> Self {
        Self::new(
            ErrorSource::Partner,
            StatusCode::UNAUTHORIZED,
            IssueType::Login,
            "the client certificate does not identify a partner",
        )
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(
            ErrorSource::Partner,
            StatusCode::FORBIDDEN,
            IssueType::Forbidden,
            message,
        )
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(
            ErrorSource::Partner,
            StatusCode::BAD_REQUEST,
            IssueType::Invalid,
            message,
        )
    }

    /// An existing resource the partner may not see, answered exactly as
    /// a missing one; `reason` (a withhold code) goes to the audit record.
    pub fn withheld_as_missing(reason: &'static str) -> Self {
        let mut error = Self::not_found("resource not found");
        error.withheld = Some(reason);
        error
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(
            ErrorSource::Partner,
            StatusCode::NOT_FOUND,
            IssueType::NotFound,
            message,
        )
    }

    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(
            ErrorSource::Partner,
            StatusCode::METHOD_NOT_ALLOWED,
            IssueType::NotSupported,
            message,
        )
    }

    pub fn not_acceptable(message: impl Into<String>) -> Self {
        Self::new(
            ErrorSource::Partner,
            StatusCode::NOT_ACCEPTABLE,
            IssueType::NotSupported,
            message,
        )
    }

    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(
            ErrorSource::Partner,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            IssueType::NotSupported,
            message,
        )
    }

    pub fn body_too_large(limit: usize) -> Self {
        Self::new(
            ErrorSource::Partner,
            StatusCode::PAYLOAD_TOO_LARGE,
            IssueType::TooLong,
            format!("request body exceeds {limit} bytes"),
        )
    }

    pub fn headers_too_large(limit: usize) -> Self {
        Self::new(
            ErrorSource::Partner,
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            IssueType::TooLong,
            format!("request headers exceed {limit} bytes"),
        )
    }

    pub fn too_many_headers(limit: usize) -> Self {
        Self::new(
            ErrorSource::Partner,
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            IssueType::TooLong,
            format!("a request may carry at most {limit} header lines"),
        )
    }

    /// The body did not arrive within `gateway.limits.body_read_timeout`.
    pub fn body_too_slow(limit: std::time::Duration) -> Self {
        Self::new(
            ErrorSource::Partner,
            StatusCode::REQUEST_TIMEOUT,
            IssueType::Timeout,
            format!(
                "the request body did not arrive within {} seconds",
                limit.as_secs()
            ),
        )
    }

    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(
            ErrorSource::Partner,
            StatusCode::UNPROCESSABLE_ENTITY,
            IssueType::Processing,
            message,
        )
    }

    // --- the upstream's fault ---

    pub fn upstream_unavailable() -> Self {
        Self::new(
            ErrorSource::Upstream,
            StatusCode::BAD_GATEWAY,
            IssueType::Transient,
            "the upstream FHIR server could not be reached",
        )
    }

    /// One member's FHIR server failed during a fan-out: the whole request
    /// fails (never a silently partial answer), naming the member.
    pub fn member_failed(member: &str, cause: &GatewayError) -> Self {
        Self::new(
            ErrorSource::Upstream,
            cause.status,
            IssueType::Transient,
            format!(
                "the FHIR server of `{member}` did not answer ({}); no partial result is given, try again",
                cause.status
            ),
        )
    }

    pub fn upstream_invalid() -> Self {
        Self::new(
            ErrorSource::Upstream,
            StatusCode::BAD_GATEWAY,
            IssueType::Exception,
            "the upstream FHIR server sent a response the gateway cannot check",
        )
    }

    pub fn upstream_timeout() -> Self {
        Self::new(
            ErrorSource::Upstream,
            StatusCode::GATEWAY_TIMEOUT,
            IssueType::Timeout,
            "the upstream FHIR server did not answer in time",
        )
    }

    // --- the gateway's own ---

    pub fn audit_unavailable() -> Self {
        Self::new(
            ErrorSource::Gateway,
            StatusCode::SERVICE_UNAVAILABLE,
            IssueType::Transient,
            "the audit log cannot be written; no data is released",
        )
    }

    pub fn internal() -> Self {
        Self::new(
            ErrorSource::Gateway,
            StatusCode::INTERNAL_SERVER_ERROR,
            IssueType::Exception,
            "internal gateway error",
        )
    }

    /// The same error with one issue per problem element.
    #[must_use]
    pub fn with_details(mut self, details: Vec<(String, String)>) -> Self {
        self.details = details;
        self
    }

    /// The OperationOutcome for the partner; every text in it bounded
    /// (it may echo what the partner sent).
    pub fn outcome(&self) -> OperationOutcome {
        self.details.iter().take(DETAILS).fold(
            OperationOutcome::error(self.issue, bounded_owned(&self.message, MESSAGE)),
            |outcome, (path, message)| {
                outcome.with_issue(
                    self.issue,
                    bounded_owned(message, MESSAGE),
                    bounded_owned(path, SHORT),
                )
            },
        )
    }
}

impl std::fmt::Display for GatewayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.status,
            self.source.as_str(),
            self.message
        )
    }
}
